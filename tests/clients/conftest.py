"""Session fixtures for the real-client conformance tests.

One real `vpnaas` server is started for the whole pytest session (on
127.0.0.1, a port chosen by the kernel) on a database in a temporary
directory; identity and network objects are created with the server's
admin subcommands. Helpers drive the real `openstack` CLI, openstacksdk and
raw HTTP (requests) against it.

Environment:
  VPNAAS_BIN        path of the server binary (default: target/ci/vpnaas)
  VPNAAS_TEST_TLS=1 serve HTTPS with a throwaway CA made here with openssl; every
                    client (requests, keystoneauth, the openstack CLI, nsxlib)
                    verifies the server against that CA
  VPNAAS_TEST_PG    a PostgreSQL admin URL (scripts/pg.sh start prints one): every
                    server runs on a fresh database of its own on that server
                    instead of a SQLite file
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"vpnaas listening on (https?://127\.0\.0\.1:(\d+))")
TLS = os.environ.get("VPNAAS_TEST_TLS") == "1"
PG = os.environ.get("VPNAAS_TEST_PG") or None
STARTUP_TIMEOUT = 30.0
CLI_TIMEOUT = 90.0
HTTP_TIMEOUT = 30.0
NODE_TIMEOUT = 2  # seconds; the server's --node-timeout (env VPNAAS_NODE_TIMEOUT)

# Statuses a vpnservice / ipsec_site_connection may report (spec §5).
STATUSES = {
    "ACTIVE",
    "DOWN",
    "ERROR",
    "PENDING_CREATE",
    "PENDING_UPDATE",
    "PENDING_DELETE",
}
PENDING = {"PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE"}

# Collection paths (spec §1).
PATHS = {
    "ikepolicy": "/v2.0/vpn/ikepolicies",
    "ipsecpolicy": "/v2.0/vpn/ipsecpolicies",
    "vpnservice": "/v2.0/vpn/vpnservices",
    "endpoint_group": "/v2.0/vpn/endpoint-groups",
    "ipsec_site_connection": "/v2.0/vpn/ipsec-site-connections",
}
PLURALS = {
    "ikepolicy": "ikepolicies",
    "ipsecpolicy": "ipsecpolicies",
    "vpnservice": "vpnservices",
    "endpoint_group": "endpoint_groups",
    "ipsec_site_connection": "ipsec_site_connections",
}

# Response attributes of each resource (spec §2).
COMMON_KEYS = {"id", "tenant_id", "project_id", "name", "description"}
EXPECTED_KEYS = {
    "ikepolicy": COMMON_KEYS
    | {"auth_algorithm", "encryption_algorithm", "phase1_negotiation_mode", "lifetime", "ike_version", "pfs"},
    "ipsecpolicy": COMMON_KEYS
    | {"transform_protocol", "auth_algorithm", "encryption_algorithm", "encapsulation_mode", "lifetime", "pfs"},
    "vpnservice": COMMON_KEYS
    | {"subnet_id", "router_id", "flavor_id", "admin_state_up", "external_v4_ip", "external_v6_ip", "status"},
    "endpoint_group": COMMON_KEYS | {"type", "endpoints"},
    "ipsec_site_connection": COMMON_KEYS
    | {
        "peer_address", "peer_id", "local_id", "route_mode", "tunnel_addresses", "mtu", "auth_mode", "psk", "initiator",
        "dpd", "admin_state_up", "status", "status_description", "vpnservice_id", "ikepolicy_id", "ipsecpolicy_id",
        "peer_cidrs", "local_ep_group_id", "peer_ep_group_id",
    },
}


def assert_keys(resource: str, obj: dict) -> None:
    missing = EXPECTED_KEYS[resource] - set(obj)
    assert not missing, f"{resource} response lacks {sorted(missing)}: {obj!r}"
    assert obj["tenant_id"] == obj["project_id"], f"tenant_id != project_id: {obj!r}"


_SERVER = None  # the running Server, for the failure-report hook


def pytest_configure(config):
    # openstacksdk's own deprecation chatter is not about the server
    config.addinivalue_line("filterwarnings", "ignore:::openstack.*")
    config.addinivalue_line("filterwarnings", "ignore:::keystoneauth1.*")


def _bin_path() -> Path:
    raw = os.environ.get("VPNAAS_BIN", "target/ci/vpnaas")
    p = Path(raw)
    if not p.is_absolute():
        p = (REPO_ROOT / p).resolve()
    return p


def make_test_pki(d: Path) -> dict:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and one client
    certificate, made with Debian's openssl. Returns their paths."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
        "-subj", "/CN=vpnaas test CA")
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
            "-subj", f"/CN=vpnaas test {name}")
        run("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / f"{name}.pem"),
            "-days", "2", "-extfile", str(d / f"{name}.ext"))
    return {k: d / f"{k}" for k in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


_SESSION_PKI: dict | None = None


def session_pki() -> dict:
    """One throwaway CA and certificates for every server of this pytest run
    (the CA path goes into REQUESTS_CA_BUNDLE, which is process-wide)."""
    global _SESSION_PKI
    if _SESSION_PKI is None:
        import atexit

        d = Path(tempfile.mkdtemp(prefix="vpnaas-pki-"))
        atexit.register(shutil.rmtree, d, True)
        _SESSION_PKI = make_test_pki(d)
    return _SESSION_PKI


def _client_bin(name: str) -> str:
    """A console script installed next to the running interpreter (the venv)."""
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name!r} not found next to {sys.executable} nor on PATH")


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------


# The PostgreSQL databases this run created; dropped when the session ends (a
# test may read a stopped server's database).
_PG_DATABASES: list[str] = []


def pytest_sessionfinish(session, exitstatus):
    for name in _PG_DATABASES:
        try:
            psql(PG, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass


def _pg_with_database(url: str, name: str) -> str:
    """`url` with its database replaced by `name`."""
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def psql(url: str, sql: str) -> str:
    """Runs one statement with the `psql` client; returns its output."""
    res = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{res.stderr}")
    return res.stdout


def _sql_literal(v) -> str:
    if isinstance(v, bool) or isinstance(v, int):
        return str(int(v))
    return "'" + str(v).replace("'", "''") + "'"


class Server:
    def __init__(self, binary: Path, workdir: Path, extra_args: list[str] | None = None,
                 pg_name: str | None = None):
        """A server on a new database in `workdir` (SQLite) or on the test
        run's PostgreSQL server; `pg_name` reuses that PostgreSQL database
        (a restart: with SQLite, the same `workdir` is the same database)."""
        self.binary = binary
        self.workdir = workdir
        self.extra_args = list(extra_args or [])  # more `serve` flags
        if PG:
            # A database of its own on the test run's PostgreSQL server.
            if pg_name:
                self.pg_name = pg_name
            else:
                self.pg_name = "t_" + secrets.token_hex(12)
                psql(PG, f"CREATE DATABASE {self.pg_name}")
                _PG_DATABASES.append(self.pg_name)
            self.db = _pg_with_database(PG, self.pg_name)
            self.key_file = workdir / "vpnaas.key"
            self.db_args = ["--db", self.db, "--key-file", str(self.key_file)]
        else:
            self.pg_name = None
            self.db = workdir / "vpnaas.db"
            self.db_args = ["--db", str(self.db)]
        self.log_path = workdir / "server.log"
        self.admin_password = "adm-" + secrets.token_hex(12)
        self.proc: subprocess.Popen | None = None
        self.tls = TLS
        self.pki: dict | None = None
        self.ca_file: str | None = None
        self.url: str | None = None
        self.port: int | None = None
        self._log = open(self.log_path, "a", buffering=1, encoding="utf-8", errors="replace")
        self._log_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- log -------------------------------------------------------------
    def _write_log(self, tag: str, line: str) -> None:
        with self._log_lock:
            try:
                self._log.write(f"[{tag}] {line.rstrip()}\n")
            except ValueError:  # closed during teardown
                pass

    def _drain(self, stream, tag: str) -> None:
        for raw in iter(stream.readline, b""):
            self._write_log(tag, raw.decode("utf-8", "replace"))
        stream.close()

    def log_text(self, tail: int | None = 200) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return f"<no server log: {e}>"
        lines = text.splitlines()
        if tail is not None and len(lines) > tail:
            lines = [f"... ({len(lines) - tail} earlier lines in {self.log_path})"] + lines[-tail:]
        return "\n".join(lines)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        env = dict(os.environ)
        env["VPNAAS_ADMIN_PASSWORD"] = self.admin_password
        env.setdefault("RUST_BACKTRACE", "1")
        # short transport-node timeout for test_realization.py (its NODE_TIMEOUT)
        env["VPNAAS_NODE_TIMEOUT"] = str(NODE_TIMEOUT)
        cmd = [
            str(self.binary),
            *self.db_args,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-password",
            self.admin_password,
        ]
        if self.tls:
            if self.pki is None:
                self.pki = session_pki()
            self.ca_file = str(self.pki["ca.pem"])
            # requests (and so keystoneauth, openstacksdk, nsxlib, the CLI) verify with it
            os.environ["REQUESTS_CA_BUNDLE"] = self.ca_file
            os.environ["OS_CACERT"] = self.ca_file
            cmd[-2:-2] = [
                "--tls-cert", str(self.pki["server.pem"]),
                "--tls-key", str(self.pki["server.key"]),
                "--tls-client-ca", str(self.pki["ca.pem"]),
            ]
        cmd[-2:-2] = self.extra_args
        self._write_log("test", "starting: " + " ".join(cmd[:-1]) + " <password>")
        self.proc = subprocess.Popen(
            cmd,
            cwd=str(self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        t_err = threading.Thread(target=self._drain, args=(self.proc.stderr, "stderr"), daemon=True)
        t_err.start()
        self._threads.append(t_err)

        # The first stdout line announces the URL; read it with a timeout.
        first: dict = {}

        def read_first():
            line = self.proc.stdout.readline()
            first["line"] = line.decode("utf-8", "replace")

        reader = threading.Thread(target=read_first, daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        if reader.is_alive() or "line" not in first:
            self.stop()
            raise RuntimeError(
                f"server did not print its listening line within {STARTUP_TIMEOUT:.0f}s\n"
                + self.log_text()
            )
        line = first["line"]
        self._write_log("stdout", line)
        m = LISTEN_RE.search(line)
        if not m:
            self.stop()
            raise RuntimeError(
                f"unexpected first stdout line from server: {line!r}\n" + self.log_text()
            )
        self.url = m.group(1)
        self.port = int(m.group(2))
        t_out = threading.Thread(target=self._drain, args=(self.proc.stdout, "stdout"), daemon=True)
        t_out.start()
        self._threads.append(t_out)

        # Wait until it answers HTTP (identity version document).
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} during startup\n" + self.log_text()
                )
            try:
                r = requests.get(self.url + "/v3", timeout=2)
                if r.status_code < 500:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not answering GET /v3 ({last})\n" + self.log_text())

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)
        self._write_log("test", f"server exited with {proc.returncode}")
        with self._log_lock:
            self._log.close()

    # -- the database, behind the server's back ---------------------------------
    def execute(self, sql: str, params: tuple = ()) -> int:
        """Runs one INSERT/UPDATE/DELETE (`?` placeholders) on the server's
        database directly, as time passing or an operator would; returns the
        number of rows it changed."""
        if not self.pg_name:
            import sqlite3
            with sqlite3.connect(str(self.db), timeout=10) as db:
                return db.execute(sql, params).rowcount
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, sql
        text = parts[0] + "".join(_sql_literal(v) + p for v, p in zip(params, parts[1:]))
        out = psql(self.db, f"WITH done AS ({text} RETURNING 1) SELECT count(*) FROM done")
        return int(out.strip())

    def stored_bytes(self) -> list[tuple[str, bytes]]:
        """Everything the database holds, as bytes, with where it came from:
        the SQLite files, or a `pg_dump` of the PostgreSQL database."""
        if not self.pg_name:
            return [(p.name, p.read_bytes()) for p in self.workdir.iterdir()
                    if p.name.startswith("vpnaas.db") and not p.name.endswith(".admin-password")]
        res = subprocess.run(["pg_dump", self.db], capture_output=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {res.stderr.decode(errors='replace')}")
        return [("pg_dump", res.stdout)]

    # -- admin subcommands (act on the DB file directly) ----------------------
    def admin(self, *args: str) -> dict:
        cmd = [str(self.binary), *self.db_args, *args]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        self._write_log("admin", f"$ vpnaas {' '.join(args)} -> rc={res.returncode}")
        if res.returncode != 0:
            raise RuntimeError(
                f"admin command failed (rc={res.returncode}): {' '.join(args)}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}"
            )
        out = res.stdout.strip()
        try:
            # ONE JSON object on stdout; tolerate log lines before it.
            last = [ln for ln in out.splitlines() if ln.strip()][-1]
            obj = json.loads(last)
        except (IndexError, json.JSONDecodeError):
            try:
                obj = json.loads(out)
            except json.JSONDecodeError:
                raise RuntimeError(
                    f"admin command {' '.join(args)} did not print a JSON object: {out!r}"
                )
        if not isinstance(obj, dict) or "id" not in obj:
            raise RuntimeError(f"admin command {' '.join(args)} printed {obj!r} (no 'id')")
        return obj


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    global _SERVER
    binary = _bin_path()
    if not binary.exists():
        pytest.fail(
            f"server binary {binary} not found; build it (cargo build --profile ci) "
            "or set VPNAAS_BIN",
            pytrace=False,
        )
    workdir = Path(tempfile.mkdtemp(prefix="vpnaas-clients-"))
    srv = Server(binary, workdir)
    _SERVER = srv
    try:
        srv.start()
    except Exception as e:
        _SERVER = None
        srv.stop()
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()
    _SERVER = None
    if srv.proc is not None and srv.proc.returncode not in (0, -signal.SIGTERM, 143):
        # Keep the directory for inspection; tell where.
        print(f"\nvpnaas server exited with {srv.proc.returncode}; log kept at {srv.log_path}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER is not None:
        report.sections.append(("vpnaas server log (tail)", _SERVER.log_text(tail=60)))


# --------------------------------------------------------------------------
# identity + topology fixture
# --------------------------------------------------------------------------


@dataclass
class User:
    name: str
    password: str
    project: str
    project_id: str | None = None
    id: str | None = None


@dataclass
class World:
    server: Server
    users: dict = field(default_factory=dict)  # name -> User
    projects: dict = field(default_factory=dict)  # name -> id
    routers: dict = field(default_factory=dict)  # name -> id
    subnets: dict = field(default_factory=dict)  # name -> id

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth_url(self) -> str:
        return self.server.url + "/v3"


@pytest.fixture(scope="session")
def world(server) -> World:
    w = World(server=server)
    admin = User("admin", server.admin_password, "admin")
    w.users["admin"] = admin

    for pname in ("demo", "other"):
        w.projects[pname] = server.admin("project", "create", pname)["id"]
    for uname, pw, proj, role in (
        ("demo", "secret", "demo", "member"),
        ("other", "secret2", "other", "member"),
        ("reader", "secret3", "demo", "reader"),  # reader-only role on project demo
    ):
        u = server.admin(
            "user", "create", uname, "--password", pw, "--project", proj, "--role", role
        )
        w.users[uname] = User(uname, pw, proj, w.projects[proj], u["id"])

    def gw(name, project, v4, v6=None):
        args = ["gateway", "create", name, "--project", project, "--external-v4", v4]
        if v6:
            args += ["--external-v6", v6]
        w.routers[name] = server.admin(*args)["id"]

    def sn(name, gateway, cidr):
        w.subnets[name] = server.admin(
            "subnet", "create", name, "--gateway", gateway, "--cidr", cidr
        )["id"]

    gw("router1", "demo", "172.24.4.10", "2001:db8:ffff::10")
    sn("subnet1", "router1", "10.1.0.0/24")
    sn("subnet6", "router1", "2001:db8:1::/64")
    gw("router2", "other", "172.24.4.20")
    sn("subnet2", "router2", "10.12.0.0/24")
    # A demo gateway with only an IPv4 external address (IPv6 peer must fail).
    gw("router4", "demo", "172.24.4.40")
    sn("subnet4", "router4", "10.4.0.0/24")

    # project ids as seen by keystone (admin's project came from `serve`)
    tok = Api(w)
    body = tok.token_body("admin")
    w.projects["admin"] = body["token"]["project"]["id"]
    admin.project_id = w.projects["admin"]
    admin.id = body["token"]["user"]["id"]
    return w


# --------------------------------------------------------------------------
# raw HTTP helper
# --------------------------------------------------------------------------


def password_auth_body(user: User) -> dict:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": user.name,
                        "password": user.password,
                        "domain": {"name": "Default"},
                    }
                },
            },
            "scope": {"project": {"name": user.project, "domain": {"name": "Default"}}},
        }
    }


class Api:
    """Raw `requests` access with tokens from POST /v3/auth/tokens."""

    _tokens: dict = {}

    def __init__(self, world: World):
        self.world = world
        self.session = requests.Session()

    def token_response(self, user: str | User) -> requests.Response:
        u = self.world.users[user] if isinstance(user, str) else user
        return self.session.post(
            self.world.auth_url + "/auth/tokens",
            json=password_auth_body(u),
            timeout=HTTP_TIMEOUT,
        )

    def token_body(self, user: str) -> dict:
        r = self.token_response(user)
        assert r.status_code == 201, f"token for {user}: {r.status_code} {r.text}"
        return r.json()

    def token(self, user: str = "demo") -> str:
        key = (self.world.url, user)
        tok = Api._tokens.get(key)
        if tok is None:
            r = self.token_response(user)
            assert r.status_code == 201, f"token for {user}: {r.status_code} {r.text}"
            tok = r.headers["X-Subject-Token"]
            Api._tokens[key] = tok
        return tok

    def request(
        self,
        method: str,
        path: str,
        user: str | None = "demo",
        json_body=None,
        data=None,
        params=None,
        headers: dict | None = None,
    ) -> requests.Response:
        h = {"Accept": "application/json"}
        if user is not None:
            h["X-Auth-Token"] = self.token(user)
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None:
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        return self.session.request(
            method, self.world.url + path, data=data, params=params, headers=h, timeout=HTTP_TIMEOUT
        )

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- convenience for fixtures -------------------------------------------
    def create(self, resource: str, body: dict, user: str = "demo") -> dict:
        r = self.post(PATHS[resource], {resource: body}, user=user)
        assert r.status_code == 201, f"create {resource} {body}: {r.status_code} {r.text}"
        return r.json()[resource]

    def show(self, resource: str, obj_id: str, user: str = "demo") -> dict:
        r = self.get(f"{PATHS[resource]}/{obj_id}", user=user)
        assert r.status_code == 200, f"show {resource} {obj_id}: {r.status_code} {r.text}"
        return r.json()[resource]

    def remove(self, resource: str, obj_id: str, user: str = "demo") -> None:
        r = self.delete(f"{PATHS[resource]}/{obj_id}", user=user)
        assert r.status_code in (204, 404), f"delete {resource} {obj_id}: {r.status_code} {r.text}"

    def wait_settled(self, resource: str, obj_id: str, user: str = "demo", timeout: float = 20.0) -> dict:
        """Poll until the object's status is not PENDING_*; return the object."""
        deadline = time.monotonic() + timeout
        obj = self.show(resource, obj_id, user=user)
        while obj.get("status") in PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            obj = self.show(resource, obj_id, user=user)
        return obj


@pytest.fixture(scope="session")
def api(world) -> Api:
    return Api(world)


def assert_neutron_error(
    resp: requests.Response,
    status: int | tuple,
    type_: str | tuple | None = None,
    message: str | None = None,
    contains: str | tuple | None = None,
) -> dict:
    """Check a Neutron error envelope; return the inner NeutronError dict."""
    where = f"{resp.request.method} {resp.request.path_url}"
    assert resp.status_code != 500, f"{where}: HTTP 500: {resp.text[:500]}"
    statuses = (status,) if isinstance(status, int) else tuple(status)
    assert resp.status_code in statuses, (
        f"{where}: expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
    )
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", (
        f"{where}: error Content-Type {ctype!r}, want application/json"
    )
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"{where}: error body is not JSON: {resp.text[:500]!r}")
    assert isinstance(body, dict) and "NeutronError" in body, (
        f"{where}: no NeutronError envelope: {body!r}"
    )
    err = body["NeutronError"]
    assert isinstance(err, dict), f"{where}: NeutronError is not an object: {err!r}"
    for k in ("type", "message", "detail"):
        assert k in err, f"{where}: NeutronError lacks {k!r}: {err!r}"
    assert isinstance(err["message"], str) and err["message"], f"{where}: empty message: {err!r}"
    if type_ is not None:
        types = (type_,) if isinstance(type_, str) else tuple(type_)
        assert err["type"] in types, f"{where}: type {err['type']!r}, want {types}: {err!r}"
    if message is not None:
        assert err["message"] == message, (
            f"{where}: message mismatch\n  got:  {err['message']!r}\n  want: {message!r}"
        )
    if contains is not None:
        parts = (contains,) if isinstance(contains, str) else tuple(contains)
        for part in parts:
            assert part in err["message"], (
                f"{where}: message {err['message']!r} does not contain {part!r}"
            )
    return err


# --------------------------------------------------------------------------
# openstack CLI helper
# --------------------------------------------------------------------------

class CliResult(namedtuple("_CliResult", ["rc", "out", "err"])):
    """(rc, parsed JSON or text of stdout, stderr); `.stdout` is the raw stdout."""

    stdout: str = ""

    @classmethod
    def make(cls, rc: int, out, err: str, stdout: str) -> "CliResult":
        r = cls(rc, out, err)
        r.stdout = stdout
        return r


def os_env(world: World, user: str | User, password: str | None = None) -> dict:
    u = world.users[user] if isinstance(user, str) else user
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        {
            "OS_AUTH_URL": world.auth_url,
            "OS_USERNAME": u.name,
            "OS_PASSWORD": password if password is not None else u.password,
            "OS_PROJECT_NAME": u.project,
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": "RegionOne",
            "OS_INTERFACE": "public",
            # never read a clouds.yaml from the machine
            "OS_CLIENT_CONFIG_FILE": os.devnull,
        }
    )
    env.pop("OS_CLOUD", None)
    if world.server.ca_file:
        env["OS_CACERT"] = world.server.ca_file
    return env


class Cli:
    def __init__(self, world: World):
        self.world = world
        self.exe = _client_bin("openstack")
        self.calls = 0

    def __call__(self, *args: str, user: str = "demo", password: str | None = None) -> CliResult:
        cmd = [self.exe, *args]
        self.calls += 1
        t0 = time.monotonic()
        res = subprocess.run(
            cmd,
            env=os_env(self.world, user, password),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        dt = time.monotonic() - t0
        if self.world.server:
            self.world.server._write_log(
                "cli", f"$ openstack {' '.join(args)} (as {user}) -> rc={res.returncode} {dt:.1f}s"
            )
        out: object = res.stdout
        s = res.stdout.strip()
        if s[:1] in ("{", "["):
            try:
                out = json.loads(s)
            except json.JSONDecodeError:
                pass
        return CliResult.make(res.returncode, out, res.stderr, res.stdout)

    def many(self, *calls, workers: int = 2) -> list:
        """Run independent CLI calls concurrently (each ~2 s of client start-up).

        Each call is a tuple of arguments, optionally ending with a dict of
        keyword arguments for __call__ (user=, password=). Results keep order.
        """
        from concurrent.futures import ThreadPoolExecutor

        def run(call):
            call = tuple(call)
            kw = call[-1] if call and isinstance(call[-1], dict) else {}
            args = call[:-1] if kw else call
            return self(*args, **kw)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(run, calls))

    def ok(self, *args: str, user: str = "demo"):
        """Run and require exit 0; return the parsed JSON (or text)."""
        r = self(*args, user=user)
        assert r.rc == 0, (
            f"openstack {' '.join(args)} (as {user}) failed rc={r.rc}\n"
            f"stdout: {r.stdout}\nstderr: {r.err}"
        )
        return r.out

    def fails(self, *args: str, user: str = "demo", password: str | None = None) -> CliResult:
        r = self(*args, user=user, password=password)
        assert r.rc != 0, (
            f"openstack {' '.join(args)} (as {user}) unexpectedly succeeded\nstdout: {r.stdout}"
        )
        return r


def cli_ok(r: CliResult, what: str = ""):
    """Require exit 0 of a result from Cli.many; return its parsed output."""
    assert r.rc == 0, f"openstack {what} failed rc={r.rc}\nstdout: {r.stdout}\nstderr: {r.err}"
    return r.out


def cli_failed(r: CliResult, what: str = "") -> CliResult:
    assert r.rc != 0, f"openstack {what} unexpectedly succeeded\nstdout: {r.stdout}"
    return r


@pytest.fixture(scope="module")
def nsx(world):
    """A vmware-nsxlib client of the world server, as an NSX plugin makes it."""
    nsx_v3 = pytest.importorskip("vmware_nsxlib.v3")
    from vmware_nsxlib.v3 import config as nsx_config

    logging.getLogger("vmware_nsxlib").setLevel(logging.ERROR)
    cfg = nsx_config.NsxLibConfig(
        nsx_api_managers=[world.url],
        username="admin",
        password=world.server.admin_password,
        insecure=world.server.ca_file is None,
        ca_file=world.server.ca_file,
        max_attempts=2,
        http_timeout=5,
        http_read_timeout=10,
    )
    return nsx_v3.NsxLib(cfg)


@pytest.fixture(scope="session")
def cli(world) -> Cli:
    return Cli(world)


# --------------------------------------------------------------------------
# openstacksdk helper
# --------------------------------------------------------------------------


def sdk_connect(world: World, user: str = "demo"):
    import openstack

    u = world.users[user]
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="password",
        auth_url=world.auth_url,
        username=u.name,
        password=u.password,
        project_name=u.project,
        user_domain_name="Default",
        project_domain_name="Default",
        identity_api_version="3",
        region_name="RegionOne",
        interface="public",
        cacert=world.server.ca_file,
    )


@pytest.fixture(scope="session")
def sdk(world):
    """Factory: sdk('demo') -> cached openstack.connection.Connection."""
    conns: dict = {}

    def factory(user: str = "demo"):
        if user not in conns:
            conns[user] = sdk_connect(world, user)
        return conns[user]

    yield factory
    for c in conns.values():
        try:
            c.close()
        except Exception:
            pass
