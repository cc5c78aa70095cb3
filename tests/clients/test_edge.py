"""The HTTP edge, probed from outside with raw sockets and requests: every
HTTP-level failure answers in the envelope of the API its path belongs to,
keep-alive connections survive a refused request, and slow or idle clients are
cut off on time without slowing anyone else down (issue 8, defects 4 and 5,
"timeouts and limits").

The timeout tests start a private server with short timeouts.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, _bin_path

NEUTRON_KEYS = {"type", "message", "detail"}
NSX_KEYS = {"httpStatus", "error_code", "module_name", "error_message"}


def envelope_of(path: str) -> str:
    if path.startswith("/v3"):
        return "keystone"
    if path.startswith("/api/"):
        return "nsx"
    if path.startswith("/internal/"):
        return "node"
    return "neutron"


def assert_envelope(r: requests.Response, path: str, status: int):
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    assert r.headers.get("content-type", "").startswith("application/json"), (path, r.headers, r.text[:200])
    body = r.json()
    kind = envelope_of(path)
    if kind == "neutron":
        assert set(body) == {"NeutronError"} and set(body["NeutronError"]) == NEUTRON_KEYS, body
        assert body["NeutronError"]["message"], body
    elif kind == "nsx":
        assert set(body) == NSX_KEYS and body["error_message"], body
    elif kind == "keystone":
        assert set(body) == {"error"} and body["error"]["code"] == status and body["error"]["message"], body
    else:
        assert set(body) == {"error"} and body["error"]["code"] == status and body["error"]["message"], body
    return body


def http(world, method, path, user="demo", **kw):
    headers = dict(kw.pop("headers", {}) or {})
    if path.startswith("/api/"):
        kw.setdefault("auth", ("admin", world.server.admin_password))
    elif user:
        from conftest import Api

        headers.setdefault("X-Auth-Token", Api(world).token(user))
    return requests.request(method, world.url + path, headers=headers, timeout=30, **kw)


# ------------------------------------------------------------ defect 4

PATHS = [
    "/v2.0/vpn/ikepolicies",
    "/api/v1/vpn/ipsec/ike-profiles",
    "/v3/auth/tokens",
    "/internal/v1/nodes/x/config",
]


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE"])
@pytest.mark.parametrize("path", PATHS)
def test_unsupported_methods_answer_405_in_envelope_with_allow(world, method, path):
    r = http(world, method, path)
    body = assert_envelope(r, path, 405)
    assert r.headers.get("allow"), r.headers
    assert method in json.dumps(body)


@pytest.mark.parametrize(
    "path,status",
    [
        ("/api/v1/vpn/ipsec/ike-profiles/%FF", 400),
        ("/v2.0/vpn/ikepolicies/%FF", 400),
        ("/api/v1/vpn/ipsec/sessions/x/state?barrier_id=abc", 400),
        # The node API authenticates first: without a node token it is 401.
        ("/internal/v1/nodes/x/config?known=abc", 401),
        ("/internal/v1/nodes/x/config?wait=1180591620717411303424", 401),
    ],
)
def test_unparsable_path_or_query_values_answer_in_envelope(world, path, status):
    assert_envelope(http(world, "GET", path), path, status)


def test_unparsable_node_query_values_answer_400_in_envelope(world):
    # A gateway of its own: a node that never reports would hold every
    # connection of a shared gateway in PENDING_* for the other tests.
    world.server.admin("gateway", "create", "edge-probe-gw", "--project", "admin", "--external-v4", "172.24.4.74")
    node = world.server.admin("node", "add", "edge-probe", "--gateway", "edge-probe-gw")
    auth = {"Authorization": f"Bearer {node['token']}"}
    for q in ("known=abc", "wait=1180591620717411303424", "wait=-1"):
        path = f"/internal/v1/nodes/{node['id']}/config?{q}"
        assert_envelope(http(world, "GET", path, user=None, headers=auth), path, 400)


@pytest.mark.parametrize(
    "path,method",
    [
        ("/v3/auth/tokens", "POST"),
        ("/internal/v1/nodes/x/report", "POST"),
        ("/v2.0/vpn/ikepolicies", "POST"),
        ("/api/v1/vpn/ipsec/ike-profiles", "POST"),
    ],
)
def test_oversized_bodies_answer_413_in_envelope(world, path, method):
    big = json.dumps({"x": "y" * (9 << 20)})
    r = http(world, method, path, data=big, headers={"Content-Type": "application/json"})
    assert_envelope(r, path, 413)


@pytest.mark.parametrize("path", PATHS)
def test_overlong_url_and_too_many_headers_answer_in_envelope(world, path):
    r = http(world, "GET", path + "?q=" + "a" * 9000)
    assert_envelope(r, path, 414)
    many = {f"X-Junk-{i}": "v" for i in range(150)}
    r = http(world, "GET", path, headers=many)
    assert_envelope(r, path, 431)


def test_unknown_paths_answer_404_in_their_api_envelope(world):
    for path in ("/v2.0/nothing", "/api/v1/nothing", "/v3/nothing", "/internal/v1/nothing", "/nothing"):
        assert_envelope(http(world, "GET", path), path, 404)


# ------------------------------------------------------------ defect 5


def _raw_request(sock, method, path, body=b"", headers=()):
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += list(headers)
    if not any(h.lower().startswith("content-length:") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def _read_response(sock) -> tuple[int, dict, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n]


def _connect(world):
    host, port = "127.0.0.1", world.server.port
    s = socket.create_connection((host, port), timeout=10)
    if world.server.ca_file:
        ctx = ssl.create_default_context(cafile=world.server.ca_file)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


@pytest.mark.parametrize(
    "path,headers",
    [
        ("/v2.0/vpn/ikepolicies", ()),  # no token
        ("/v2.0/vpn/ikepolicies", ("X-Auth-Token: bogus",)),
        ("/api/v1/vpn/ipsec/ike-profiles", ("Authorization: Basic YWRtaW46d3Jvbmc=",)),
        ("/v3/auth/tokens", ()),  # password auth without a body the server accepts
        ("/internal/v1/nodes/x/report", ("Authorization: Bearer nope",)),
    ],
)
def test_keep_alive_survives_a_refused_write(world, path, headers):
    """Auth refuses before the body is read: the connection must stay usable
    (keystoneauth retries on the same connection) or say `Connection: close`."""
    body = json.dumps({"ikepolicy": {"name": "x" * 100_000}, "auth": {}}).encode()
    with _connect(world) as s:
        # The head first, the body a moment later: the server decides on the
        # head alone, as it would for a client on a slower link.
        _raw_request(s, "POST", path, b"", [*headers, f"Content-Length: {len(body)}"])
        time.sleep(0.2)
        try:
            s.sendall(body)
        except OSError:
            pass
        status, h, _ = _read_response(s)
        assert status in (400, 401, 403), status
        if h.get("connection", "").lower() == "close":
            return
        _raw_request(s, "GET", "/v3")
        status, _, payload = _read_response(s)
        assert status == 200 and b"version" in payload


# ------------------------------------------------------- timeouts and limits


@pytest.fixture(scope="module")
def slow_server():
    """A private server with short header/body/idle timeouts."""
    workdir = Path(tempfile.mkdtemp(prefix="vpnaas-edge-"))
    srv = Server(
        _bin_path(),
        workdir,
        extra_args=["--header-timeout", "2", "--body-timeout", "2", "--idle-timeout", "5"],
    )
    srv.start()
    yield srv
    srv.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _connect_to(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    if srv.ca_file:
        ctx = ssl.create_default_context(cafile=srv.ca_file)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def _closed_after(s, limit: float) -> float | None:
    """Seconds until the server closes `s` (None if it did not within `limit`)."""
    t0 = time.monotonic()
    s.settimeout(limit)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return None
    except OSError:
        return time.monotonic() - t0


def _latencies(srv, n: int) -> list[float]:
    out = []
    with requests.Session() as sess:
        for _ in range(n):
            t0 = time.perf_counter()
            r = sess.get(srv.url + "/v3", timeout=10)
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200
    return out


def test_idle_keep_alive_connection_is_closed(slow_server):
    with _connect_to(slow_server) as s:
        _raw_request(s, "GET", "/v3")
        assert _read_response(s)[0] == 200
        took = _closed_after(s, 12)
        assert took is not None and 4.5 <= took <= 7.5, took


def test_silent_connection_is_held_to_the_header_timeout(slow_server):
    """A connection that never sends a byte owes its first request head like
    any other: closed after the header timeout (2 s), not the idle one (5 s)."""
    with _connect_to(slow_server) as s:
        took = _closed_after(s, 12)
        assert took is not None and took <= 4.0, took


def test_half_sent_body_gets_408_in_envelope(slow_server):
    with _connect_to(slow_server) as s:
        s.sendall(
            b"POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        t0 = time.monotonic()
        status, h, body = _read_response(s)
        assert status == 408 and h.get("connection") == "close"
        assert json.loads(body)["NeutronError"]["type"] == "HTTPRequestTimeout"
        assert time.monotonic() - t0 < 5


def test_hundreds_of_half_sent_requests_are_closed_on_time_without_slowing_others(slow_server):
    baseline = _latencies(slow_server, 50)
    socks = []
    try:
        for i in range(300):
            s = _connect_to(slow_server)
            if i % 3 == 0:
                s.sendall(b"GET /v3 HTTP/1.1\r\nHost: x\r\n")  # head never finished
            elif i % 3 == 1:
                s.sendall(b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
            # else: connected, nothing sent
            socks.append(s)
        t_opened = time.monotonic()
        during = _latencies(slow_server, 50)
        closed = [0]
        lock = threading.Lock()
        late = []

        def wait(s):
            took = _closed_after(s, 12)
            with lock:
                if took is None:
                    late.append(s)
                else:
                    closed[0] += 1

        threads = [threading.Thread(target=wait, args=(s,)) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        elapsed = time.monotonic() - t_opened
    finally:
        for s in socks:
            s.close()
    assert not late, f"{len(late)} of {len(socks)} slow connections still open after 12 s"
    assert elapsed < 12
    p50_before, p50_during = statistics.median(baseline), statistics.median(during)
    print(f"\nslow clients: 300 closed in {elapsed:.1f}s; GET /v3 p50 {p50_before*1e3:.2f} ms idle, "
          f"{p50_during*1e3:.2f} ms with 300 slow connections open")
    assert p50_during <= max(5 * p50_before, p50_before + 0.02), (p50_before, p50_during)


# ------------------------------------------- what hyper itself would answer


def _send_raw(world, data: bytes) -> tuple[int, dict, bytes]:
    with _connect(world) as s:
        s.sendall(data)
        return _read_response(s)


@pytest.mark.parametrize(
    "name,data,status,api",
    [
        ("URL of 300 KiB", b"GET /v2.0/vpn/ikepolicies?x=" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
         414, "neutron"),
        ("1001 header fields", b"GET /v3 HTTP/1.1\r\nHost: x\r\n"
         + b"".join(b"X-%d: 1\r\n" % i for i in range(1001)) + b"\r\n", 431, "keystone"),
        ("one header of 300 KiB", b"GET /api/v1/vpn/ipsec/sessions HTTP/1.1\r\nHost: x\r\nX-Big: "
         + b"a" * 300_000 + b"\r\n\r\n", 431, "nsx"),
        ("two Content-Lengths", b"POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400, "neutron"),
        ("negative Content-Length", b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
         400, "keystone"),
        ("header line without a colon", b"GET /internal/v1/nodes HTTP/1.1\r\nHost: x\r\nbad\r\n\r\n",
         400, "node"),
        ("invalid method", b"G@T /api/v1/vpn/ipsec/sessions HTTP/1.1\r\nHost: x\r\n\r\n", 400, "nsx"),
    ],
)
def test_unparsable_requests_answer_in_the_envelope_of_their_path(world, name, data, status, api):
    code, h, body = _send_raw(world, data)
    assert code == status, (name, code, body[:200])
    assert h.get("content-type", "").startswith("application/json"), (name, h)
    doc = json.loads(body)
    key = {"neutron": "NeutronError", "nsx": "error_code", "keystone": "error", "node": "error"}[api]
    assert key in doc, (name, doc)


def test_expect_continue_with_an_oversized_body_is_refused_at_once(world):
    with _connect(world) as s:
        s.sendall(b"POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n")
        code, h, body = _read_response(s)
        assert code == 413, code  # not "100 Continue"
        assert json.loads(body)["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"


def test_shutdown_answers_waiting_long_polls_and_exits_promptly():
    workdir = Path(tempfile.mkdtemp(prefix="vpnaas-stop-"))
    srv = Server(_bin_path(), workdir)
    srv.start()
    try:
        srv.admin("gateway", "create", "stop-gw", "--project", "admin", "--external-v4", "172.24.4.95")
        node = srv.admin("node", "add", "stop-node", "--gateway", "stop-gw")
        auth = {"Authorization": f"Bearer {node['token']}"}
        url = f"{srv.url}/internal/v1/nodes/{node['id']}/config"
        known = requests.get(url, headers=auth, timeout=10).json()["generation"]
        answers = []

        def poll():
            t0 = time.monotonic()
            try:
                r = requests.get(f"{url}?known={known}&wait=100", headers=auth, timeout=60)
                answers.append((r.status_code, time.monotonic() - t0))
            except requests.RequestException as e:
                answers.append((repr(e), time.monotonic() - t0))

        threads = [threading.Thread(target=poll) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        srv.proc.send_signal(15)
        srv.proc.wait(timeout=30)
        exited = time.monotonic() - t0
        for t in threads:
            t.join(30)
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert [a[0] for a in answers] == [204, 204, 204], answers
    assert exited < 5, exited
