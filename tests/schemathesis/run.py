#!/usr/bin/env python3
"""Fuzz a real `vpnaas serve` against its own OpenAPI document with schemathesis.

Starts the server on 127.0.0.1 (a port chosen by the kernel) on a fresh
database, makes one object of every kind through the APIs (so show, update,
state and status reach real objects instead of 404s; for the Keystone admin
operations a project and a user of their own, never the bootstrap admin's, so
the fuzzer can't rename or re-password the suite's admin), then runs schemathesis
over every operation of the document the server serves at GET /openapi.json,
each with its API's credentials:

  Keystone, Neutron  X-Auth-Token of the admin (a second and third token are the
                     X-Subject-Token of token show/check and of token revoke)
  NSX                HTTP basic auth of the admin
  node API           the bearer token of a registered node, on its own path

Checks: not_a_server_error (no 5xx), status_code_conformance (every status is
documented for its operation), response_schema_conformance,
content_type_conformance and response_headers_conformance (every body and
documented header is what the document says). Afterwards the
server must still be healthy: the process alive, the NSX health probe and a
Neutron list answering, a new token issued, and no panic in its log.

The server runs with --auth-throttle-failures 0: the fuzzer sends random
passwords to POST /v3/auth/tokens and /api/session/create, and per-address
throttling would otherwise turn every later NSX request from 127.0.0.1 into a
(documented) 429 within seconds.

Usage:
  VPNAAS_BIN=target/debug/vpnaas .venv-test/bin/python tests/schemathesis/run.py [-n 20] [-- schemathesis args]

The bounded run in scripts/test.sh is the default (-n 20, about a minute); the
long run (README.md, "The API document") is e.g. `-n 500 -- --max-time 3600`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"vpnaas listening on (http://127\.0\.0\.1:\d+)")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance"
NEUTRON = "/v2.0/vpn"
NSX = "/api/v1/vpn/ipsec"


def log(msg: str) -> None:
    print(f"[schemathesis] {msg}", flush=True)


class Server:
    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.db = workdir / "vpnaas.db"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.password = ""

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("VPNAAS_ADMIN_PASSWORD", None)  # the server generates one (<db>.admin-password)
        env.setdefault("RUST_BACKTRACE", "1")
        logf = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [str(self.binary), "--db", str(self.db), "serve", "--listen", "127.0.0.1:0",
             "--auth-throttle-failures", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf, env=env,
        )
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        m = LISTEN_RE.search(line)
        if not m:
            self.stop()
            raise SystemExit(f"unexpected first line from the server: {line!r}\n{self.log_tail()}")
        self.url = m.group(1)
        # Keep draining stdout so the server never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=logf)
        self.proc.stdout.close()
        self._drain = drain
        deadline = time.monotonic() + 30
        pw_file = Path(str(self.db) + ".admin-password")
        while time.monotonic() < deadline:
            try:
                if pw_file.exists() and requests.get(self.url + "/v3", timeout=2).status_code == 200:
                    self.password = pw_file.read_text().strip()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("server did not come up\n" + self.log_tail())

    def admin(self, *args: str) -> dict:
        out = subprocess.run([str(self.binary), "--db", str(self.db), *args],
                             capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_drain", None):
            self._drain.wait(timeout=5)


def token(url: str, password: str) -> str:
    r = requests.post(url + "/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def fixtures(s: Server, tok: str) -> dict:
    """One object of every kind (two of each connection/session: one to delete).
    Returns {operation id: path id}, for Keystone {operation id: {parameter: value}}."""
    gw = s.admin("gateway", "create", "gw1", "--project", "admin",
                 "--external-v4", "192.0.2.1", "--external-v6", "2001:db8::1")
    sub = s.admin("subnet", "create", "net1", "--gateway", "gw1", "--cidr", "10.1.0.0/24")
    s.admin("gateway", "create", "gw2", "--project", "admin", "--external-v4", "192.0.2.2")
    # The node is gw2's: gw1 has none, so its services and connections are DOWN
    # (not PENDING_*, which Neutron refuses to update) whatever the fuzzer reports.
    node = s.admin("node", "add", "n1", "--gateway", "gw2")
    h = {"X-Auth-Token": tok}

    def neutron(coll: str, key: str, body: dict) -> str:
        r = requests.post(f"{s.url}{NEUTRON}/{coll}", headers=h, json={key: body}, timeout=30)
        if r.status_code != 201:
            raise SystemExit(f"fixture {coll}: {r.status_code} {r.text}")
        return r.json()[key]["id"]

    auth = ("admin", s.password)

    def nsx(seg: str, body: dict) -> str:
        r = requests.post(f"{s.url}{NSX}/{seg}", auth=auth, json=body, timeout=30)
        if r.status_code != 201:
            raise SystemExit(f"fixture {seg}: {r.status_code} {r.text}")
        return r.json()["id"]

    ike = neutron("ikepolicies", "ikepolicy", {"name": "ike"})
    ipsec = neutron("ipsecpolicies", "ipsecpolicy", {"name": "ipsec"})
    svc = neutron("vpnservices", "vpnservice", {"name": "svc", "router_id": gw["id"]})
    local = neutron("endpoint-groups", "endpoint_group",
                    {"name": "l", "type": "subnet", "endpoints": [sub["id"]]})
    peer = neutron("endpoint-groups", "endpoint_group",
                   {"name": "p", "type": "cidr", "endpoints": ["10.2.0.0/24"]})
    conns = [neutron("ipsec-site-connections", "ipsec_site_connection", {
        "name": f"c{i}", "vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": f"198.51.100.{i}", "peer_id": f"198.51.100.{i}", "psk": "secret",
        "local_ep_group_id": local, "peer_ep_group_id": peer}) for i in (1, 2)]

    dpd = nsx("dpd-profiles", {"display_name": "dpd"})
    ikep = nsx("ike-profiles", {"display_name": "ikep", "ike_version": "IKE_V2"})
    tun = nsx("tunnel-profiles", {"display_name": "tun"})
    nsvc = nsx("services", {"display_name": "nsvc", "logical_router_id": gw["id"]})
    le = nsx("local-endpoints", {"display_name": "le", "local_address": "192.0.2.1",
                                 "ipsec_vpn_service_id": {"target_id": nsvc}})
    pe = nsx("peer-endpoints", {"display_name": "pe", "peer_address": "203.0.113.1",
                                "peer_id": "203.0.113.1", "psk": "secret", "ike_profile_id": ikep,
                                "ipsec_tunnel_profile_id": tun, "dpd_profile_id": dpd})
    sessions = [nsx("sessions", {
        "display_name": f"s{i}", "resource_type": "PolicyBasedIPSecVPNSession",
        "ipsec_vpn_service_id": nsvc, "local_endpoint_id": le, "peer_endpoint_id": pe,
        "policy_rules": [{"sources": [{"subnet": "10.1.0.0/24"}],
                          "destinations": [{"subnet": f"10.{50 + i}.0.0/24"}]}]}) for i in (1, 2)]

    ids = {
        "neutron_ikepolicy": ike, "neutron_ipsecpolicy": ipsec, "neutron_vpnservice": svc,
        "neutron_endpoint_group": peer, "neutron_ipsec_site_connection": conns[0],
        "neutron_router": gw["id"], "neutron_subnet": sub["id"],
        # the network `vpnaas subnet create` put the subnet in
        "neutron_network": sub["network_id"],
        "nsx_dpd_profiles": dpd, "nsx_ike_profiles": ikep, "nsx_tunnel_profiles": tun,
        "nsx_services": nsvc, "nsx_local_endpoints": le, "nsx_peer_endpoints": pe,
        "nsx_sessions": sessions[0],
    }
    by_op: dict = {}
    for prefix, oid in ids.items():
        for verb in ("show", "update", "delete"):
            by_op[f"{prefix}_{verb}"] = oid
    # Leaves are deleted for real, once: the second ones, so the first stay for the others.
    by_op["neutron_ipsec_site_connection_delete"] = conns[1]
    by_op["nsx_sessions_delete"] = sessions[1]
    for action in ("add_router_interface", "remove_router_interface"):
        by_op[f"neutron_router_{action}"] = gw["id"]
    by_op["nsx_session_state"] = sessions[0]
    by_op["nsx_session_status"] = conns[0]  # a Neutron connection is a session too
    by_op["node_config"] = by_op["node_report"] = node["id"]
    by_op["__node_token"] = node["token"]
    by_op.update(keystone_fixtures(s, h))
    return by_op


def keystone_fixtures(s: Server, h: dict[str, str]) -> dict[str, dict[str, str]]:
    """The Keystone admin subset's path parameters: a project and a user of
    their own (with a grant), never the bootstrap admin's, so whatever the
    fuzzer renames, re-passwords, disables or revokes, the suite's admin
    still logs in (the server refuses deleting or disabling the bootstrap
    admin anyway). Deletes get a second project and user, deleted once."""

    def create(coll: str, key: str, body: dict) -> str:
        r = requests.post(f"{s.url}/v3/{coll}", headers=h, json={key: body}, timeout=30)
        if r.status_code != 201:
            raise SystemExit(f"fixture {coll}: {r.status_code} {r.text}")
        return r.json()[key]["id"]

    proj = create("projects", "project", {"name": "fuzz-project"})
    proj_del = create("projects", "project", {"name": "fuzz-project-delete"})
    user = create("users", "user", {"name": "fuzz-user", "password": "fuzz-user-password",
                                    "default_project_id": proj})
    user_del = create("users", "user", {"name": "fuzz-user-delete"})
    r = requests.put(f"{s.url}/v3/projects/{proj}/users/{user}/roles/member", headers=h, timeout=30)
    if r.status_code != 204:
        raise SystemExit(f"fixture grant: {r.status_code} {r.text}")
    grant = {"project_id": proj, "user_id": user, "role_id": "member"}
    by_op: dict[str, dict[str, str]] = {
        "keystone_domain_show": {"domain_id": "default"},
        "keystone_project_delete": {"project_id": proj_del},
        "keystone_grant_list": {"project_id": proj, "user_id": user},
        "keystone_user_delete": {"user_id": user_del},
        "keystone_role_show": {"role_id": "member"},
        "keystone_role_implies": {"role_id": "admin"},
        "keystone_role_inference_show": {"role_id": "admin", "implied_id": "member"},
    }
    for verb in ("show", "update"):
        by_op[f"keystone_project_{verb}"] = {"project_id": proj}
        by_op[f"keystone_user_{verb}"] = {"user_id": user}
    for op in ("user_projects", "user_password_change"):
        by_op[f"keystone_{op}"] = {"user_id": user}
    for op in ("show", "check", "create", "delete"):
        by_op[f"keystone_grant_{op}"] = grant
    return by_op


def toml_str(v: str) -> str:
    return json.dumps(v)  # a JSON string is a TOML basic string


def config(doc: dict, base: str, tok: str, password: str, ids: dict, subjects: tuple[str, str]) -> str:
    """One [[operations]] block per operation: its API's credentials and, where
    a fixture exists, the id of a real object."""
    lines = [f"base-url = {toml_str(base)}", "", "[headers]", f"X-Auth-Token = {toml_str(tok)}", ""]
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            oid = op["operationId"]
            tag = (op.get("tags") or [""])[0]
            params: dict[str, object] = {}
            fixed = ids.get(oid)
            if isinstance(fixed, dict):
                params.update(fixed)
            elif fixed is not None and "{id}" in path:
                params["id"] = fixed
            block = ["[[operations]]", f"include-operation-id = {toml_str(oid)}"]
            if tag == "nsx":
                # As a header: schemathesis applies an operation's `auth.basic`
                # to every operation, which would hide the node API's bearer.
                basic = base64.b64encode(f"admin:{password}".encode()).decode()
                block.append(f"headers = {{ Authorization = {toml_str('Basic ' + basic)} }}")
            elif tag == "node":
                block.append(f"headers = {{ Authorization = {toml_str('Bearer ' + ids['__node_token'])} }}")
                params["wait"] = 0  # no long-polls: they would only wait
            elif oid == "neutron_vpn_watch":
                params["timeout"] = 0  # the SSE stream ends at once instead of streaming forever
            elif oid in ("keystone_token_show", "keystone_token_check"):
                params["X-Subject-Token"] = subjects[0]
            elif oid == "keystone_token_revoke":
                params["X-Subject-Token"] = subjects[1]
            if params:
                inner = ", ".join(f"{toml_str(k)} = {json.dumps(v)}" for k, v in params.items())
                block.append(f"parameters = {{ {inner} }}")
            if len(block) > 2:  # a block must set something
                lines += block + [""]
    return "\n".join(lines)


def healthy(s: Server) -> list[str]:
    problems = []
    if not s.alive():
        return [f"the server exited ({s.proc.returncode})"]
    try:
        r = requests.get(s.url + "/api/v1/reverse-proxy/node/health", timeout=10)
        if r.status_code != 200 or r.json() != {"healthy": True}:
            problems.append(f"health probe: {r.status_code} {r.text}")
        tok = token(s.url, s.password)
        r = requests.get(s.url + NEUTRON + "/ipsec-site-connections", headers={"X-Auth-Token": tok}, timeout=30)
        if r.status_code != 200:
            problems.append(f"Neutron list: {r.status_code} {r.text[:200]}")
        r = requests.get(s.url + NSX + "/sessions", auth=("admin", s.password), timeout=30)
        if r.status_code != 200:
            problems.append(f"NSX list: {r.status_code} {r.text[:200]}")
    except (requests.RequestException, ValueError) as e:
        problems.append(f"not answering: {e!r}")
    if "panicked" in s.log_path.read_text(errors="replace"):
        problems.append("a panic in the server log")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--max-examples", type=int, default=20, help="test cases per operation and phase")
    ap.add_argument("--report-dir", default=None, help="keep schemathesis' JUnit/HAR reports here")
    ap.add_argument("extra", nargs="*", help="more schemathesis `run` arguments (after --)")
    a = ap.parse_args()
    binary = Path(os.environ.get("VPNAAS_BIN", REPO / "target/ci/vpnaas")).resolve()
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if not st:
        raise SystemExit("schemathesis not found next to the interpreter (pip install -r tests/clients/requirements.txt)")
    work = Path(tempfile.mkdtemp(prefix="vpnaas-schemathesis-"))
    s = Server(binary, work)
    s.start()
    try:
        tok = token(s.url, s.password)
        ids = fixtures(s, tok)
        subjects = (token(s.url, s.password), token(s.url, s.password))
        doc = requests.get(s.url + "/openapi.json", timeout=30).json()
        cfg = work / "schemathesis.toml"
        cfg.write_text(config(doc, s.url, tok, s.password, ids, subjects))
        ops = sum(1 for item in doc["paths"].values() for op in item.values() if isinstance(op, dict))
        log(f"{binary.name} at {s.url}: {ops} operations, {a.max_examples} examples each per phase")
        reports = Path(a.report_dir) if a.report_dir else work / "reports"
        cmd = [st, "--config-file", str(cfg), "run", s.url + "/openapi.json",
               "--checks", CHECKS, "--max-examples", str(a.max_examples),
               "--workers", "2", "--no-color", "--report", "junit,har", "--report-dir", str(reports),
               *a.extra]
        rc = subprocess.run(cmd, cwd=work, timeout=3 * 3600).returncode
        problems = healthy(s)
        for p in problems:
            log(f"unhealthy after the run: {p}")
        if rc != 0:
            log(f"schemathesis found problems (exit {rc}); reports in {reports}")
        if problems:
            log("server log tail:\n" + s.log_tail())
        ok = rc == 0 and not problems
        log("0 server errors, 0 responses outside the document, server healthy" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        s.stop()
        if not a.report_dir and os.environ.get("VPNAAS_KEEP_SCHEMATHESIS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
