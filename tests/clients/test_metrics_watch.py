"""`GET /metrics` and the SSE watch stream `GET /v2.0/vpn/watch`, from outside.

A real `vpnaas agent --backend sim` is the node of two gateways of their own
(one per project, so nodes other tests register elsewhere don't change what
these see). /metrics is parsed with the Prometheus project's own text parser
(prometheus_client.parser); the watch stream is read as raw SSE over requests.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import shutil

from conftest import HTTP_TIMEOUT, PG, Api, Server, _bin_path

WATCH = "/v2.0/vpn/watch"


def scrape(url: str, token: str | None = None, headers: dict | None = None) -> dict:
    """{(name, frozenset(labels)): value} of every sample of /metrics."""
    h = dict(headers or {})
    if token:
        h["X-Auth-Token"] = token
    r = requests.get(url + "/metrics", headers=h, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float | None:
    """The one sample `name` whose labels include `labels` (None: absent)."""
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) <= 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0] if hits else None


class Stream:
    """A watch stream read in a thread: its events go into a queue."""

    def __init__(self, url: str, token: str, timeout: int = 60):
        self.events: queue.Queue = queue.Queue()
        self.resp = requests.get(url + WATCH, params={"timeout": timeout},
                                 headers={"X-Auth-Token": token, "Accept": "text/event-stream"},
                                 stream=True, timeout=HTTP_TIMEOUT)
        assert self.resp.status_code == 200, self.resp.text
        assert self.resp.headers["content-type"].startswith("text/event-stream"), self.resp.headers
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        ev: dict = {}
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line == "":
                    if "data" in ev:
                        self.events.put((ev.get("event"), ev.get("id"), json.loads(ev["data"])))
                    ev = {}
                elif line.startswith(":"):
                    continue  # keep-alive comment
                else:
                    k, _, v = line.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
        except (requests.RequestException, OSError, AttributeError, ValueError):
            # closed by the test (urllib3 drops its file object under the
            # reading thread) or by the server
            pass
        self.events.put(None)

    def until(self, pred, timeout: float = 20.0) -> list:
        """Events until one satisfies `pred` (returned last); fails on timeout."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if e is None:
                break
            seen.append(e)
            if pred(e):
                return seen
        raise AssertionError(f"no matching event within {timeout}s; saw {seen}")

    def drain(self, quiet: float = 1.5) -> list:
        """Every event until the stream is quiet for `quiet` seconds."""
        seen = []
        while True:
            try:
                e = self.events.get(timeout=quiet)
            except queue.Empty:
                return seen
            if e is None:
                return seen
            seen.append(e)

    def close(self):
        self.resp.close()


@pytest.fixture(scope="module")
def site(world, tmp_path_factory):
    """Two gateways (demo's, other's), each with a subnet and one sim node."""
    srv = world.server
    gws = {}
    nodes = []
    for proj, n in (("demo", 1), ("other", 2)):
        gw = srv.admin("gateway", "create", f"mw-gw-{proj}", "--project", proj,
                       "--external-v4", f"172.24.77.{n}")["id"]
        srv.admin("subnet", "create", f"mw-sub-{proj}", "--gateway", f"mw-gw-{proj}",
                  "--cidr", f"10.187.{n}.0/24")
        node = srv.admin("node", "add", f"mw-node-{proj}", "--gateway", f"mw-gw-{proj}")
        gws[proj] = gw
        nodes.append({"id": node["id"], "token": node["token"], "project": proj})
    d = tmp_path_factory.mktemp("mw-agent")
    f = d / "nodes.jsonl"
    f.write_text("".join(json.dumps({"id": n["id"], "token": n["token"]}) + "\n" for n in nodes))
    log = open(d / "agent.log", "w")
    # A short apply delay: the watcher sees the change in progress before it is in sync.
    agent = subprocess.Popen(
        [str(_bin_path()), "agent", "--backend", "sim", "--server", world.url, "--nodes-file", str(f),
         "--heartbeat", "1", "--wait", "5", "--sim-delay-ms", "1500"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"gateways": gws, "nodes": {n["project"]: n["id"] for n in nodes}, "agent_log": d / "agent.log"}
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(timeout=10)
        log.close()


def connection(api: Api, user: str, gateway: str, n: int) -> dict:
    """A new ipsec-site-connection of `user` on `gateway` (policies, service, groups)."""
    subnets = {s["name"]: s["id"] for s in api.get("/v2.0/subnets", user=user).json()["subnets"]}
    sub = subnets[f"mw-sub-{user}"]
    ike = api.create("ikepolicy", {"name": f"mw-ike-{n}"}, user=user)
    ipsec = api.create("ipsecpolicy", {"name": f"mw-ipsec-{n}"}, user=user)
    svc = api.create("vpnservice", {"name": f"mw-svc-{n}", "router_id": gateway}, user=user)
    local = api.create("endpoint_group", {"name": f"mw-l-{n}", "type": "subnet", "endpoints": [sub]}, user=user)
    peer = api.create("endpoint_group", {"name": f"mw-p-{n}", "type": "cidr",
                                         "endpoints": [f"10.178.{n}.0/24"]}, user=user)
    return api.create("ipsec_site_connection", {
        "name": f"mw-c-{n}", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"],
        "ipsecpolicy_id": ipsec["id"], "peer_address": f"198.51.100.{70 + n}", "peer_id": f"198.51.100.{70 + n}",
        "psk": f"mw-secret-{n}", "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"],
    }, user=user)


# -------------------------------------------------------------------------
# /metrics
# -------------------------------------------------------------------------


def test_metrics_refused_without_admin_credentials(world, api):
    r = requests.get(world.url + "/metrics", timeout=HTTP_TIMEOUT)
    assert r.status_code == 401, r.text
    assert "error" in r.json()
    r = requests.get(world.url + "/metrics", headers={"X-Auth-Token": "not-a-token"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401, r.text
    # A member's valid token: per-connection series name every project's connections.
    r = requests.get(world.url + "/metrics", headers={"X-Auth-Token": api.token("demo")}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 403, r.text
    assert r.json()["NeutronError"]["type"] == "HTTPForbidden", r.text
    # An admin token, also as Prometheus' `authorization` sends it.
    r = requests.get(world.url + "/metrics", headers={"Authorization": "Bearer " + api.token("admin")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


def test_request_counts_move_by_route_template(world, api):
    tok = api.token("admin")
    route = "/v2.0/vpn/ikepolicies/{id}"
    before = value(scrape(world.url, tok), "vpnaas_http_requests_total", route=route, method="GET", code="404") or 0
    for i in range(3):
        r = api.get(f"/v2.0/vpn/ikepolicies/{i:08d}-0000-0000-0000-000000000000", user="demo")
        assert r.status_code == 404
    after = scrape(world.url, tok)
    assert value(after, "vpnaas_http_requests_total", api="neutron", route=route, method="GET", code="404") == before + 3
    # Never a raw path with an id in a label.
    for (name, labels) in after:
        if name.startswith("vpnaas_http_"):
            assert "0000-0000" not in dict(labels).get("route", ""), (name, labels)
    assert value(after, "vpnaas_http_request_duration_seconds_count", route=route, method="GET") >= 3
    # The database hooks: writes wait for their turn and commit; reads wait for a snapshot.
    api.create("ikepolicy", {"name": "mw-counted"})
    assert api.get("/v2.0/vpn/ipsec-site-connections").status_code == 200
    later = scrape(world.url, tok)
    assert value(later, "vpnaas_db_wait_seconds_count", pool="read") > 0
    assert value(later, "vpnaas_db_commit_duration_seconds_count", result="ok") >= 1
    assert value(later, "vpnaas_db_wait_seconds_count", pool="write") >= 1


def test_tunnel_up_gauge_follows_the_sim_agents_reports(world, api, site):
    tok = api.token("admin")
    conn = connection(api, "demo", site["gateways"]["demo"], 1)
    node = site["nodes"]["demo"]
    deadline = time.monotonic() + 30
    up = None
    while time.monotonic() < deadline:
        s = scrape(world.url, tok)
        up = value(s, "vpnaas_tunnel_up", connection=conn["id"], node=node)
        if up == 1:
            break
        time.sleep(0.3)
    assert up == 1, f"vpnaas_tunnel_up for {conn['id']} on {node}: {up}\n" + site["agent_log"].read_text()[-2000:]
    assert value(s, "vpnaas_node_up", node=node) == 1
    assert value(s, "vpnaas_node_realized_generation_lag", node=node) == 0
    assert 0 <= value(s, "vpnaas_node_last_report_age_seconds", node=node) < 5
    assert value(s, "vpnaas_tunnel_bytes_in_total", connection=conn["id"], node=node) == 0  # sim: no traffic
    assert value(s, "vpnaas_node_reports_total", node=node) >= 1
    assert value(s, "vpnaas_node_config_waiters") >= 1  # the sim nodes' long-polls
    # Deleted: its series go with the next report that no longer carries it.
    api.remove("ipsec_site_connection", conn["id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if value(scrape(world.url, tok), "vpnaas_tunnel_up", connection=conn["id"]) is None:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the deleted connection's tunnel_up series stayed")


def test_metrics_listener_serves_without_credentials(tmp_path):
    srv = Server(_bin_path(), tmp_path, extra_args=["--metrics-listen", "127.0.0.1:0"])
    srv.start()
    try:
        m = None
        deadline = time.monotonic() + 10
        while m is None and time.monotonic() < deadline:
            m = re.search(r"metrics \(no credentials\) on (http://127\.0\.0\.1:\d+)/metrics", srv.log_text(None))
            time.sleep(0.1)
        assert m, srv.log_text()
        url = m.group(1)
        s = scrape(url)
        assert value(s, "vpnaas_node_config_waiters") == 0
        r = requests.get(url + "/v2.0/vpn/ikepolicies", timeout=HTTP_TIMEOUT)
        assert r.status_code == 404, r.text  # that listener serves /metrics only
        # The main listener still wants an admin token.
        assert requests.get(srv.url + "/metrics", timeout=HTTP_TIMEOUT).status_code == 401
    finally:
        srv.stop()
    # Not on a public address without saying so.
    (tmp_path / "bad").mkdir()
    bad = Server(_bin_path(), tmp_path / "bad", extra_args=["--metrics-listen", "0.0.0.0:0"])
    with pytest.raises(RuntimeError):
        bad.start()
    bad.stop()
    assert "metrics-listen" in bad.log_text(None)


# -------------------------------------------------------------------------
# the watch stream
# -------------------------------------------------------------------------


def test_watch_refusals(world, api):
    r = requests.get(world.url + WATCH, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401, r.text
    r = requests.get(world.url + WATCH, params={"timeout": "soon"}, headers={"X-Auth-Token": api.token("demo")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 400, r.text
    assert r.json()["NeutronError"]["type"] == "HTTPBadRequest"
    # reader-only: sees no connections in Neutron's default policy
    r = requests.get(world.url + WATCH, headers={"X-Auth-Token": api.token("reader")}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 403, r.text
    assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"


def test_watch_sees_in_progress_then_in_sync_and_pending_then_active(world, api, site):
    demo = Stream(world.url, api.token("demo"))
    other = Stream(world.url, api.token("other"))
    admin = Stream(world.url, api.token("admin"))
    try:
        for s in (demo, other, admin):
            s.drain()  # the current states of what each already sees
        conn = connection(api, "demo", site["gateways"]["demo"], 2)
        cid = conn["id"]
        mine = lambda e: e[2]["id"] == cid  # noqa: E731
        seen = demo.until(lambda e: mine(e) and e[2]["status"] == "ACTIVE")
        states = [(e[2]["realization_state"], e[2]["status"]) for e in seen if mine(e)]
        assert states[0] == ("in_progress", "PENDING_CREATE"), states
        assert states[-1] == ("in_sync", "ACTIVE"), states
        # in order: never back to in_progress once in sync
        first_sync = next(i for i, s in enumerate(states) if s[0] == "in_sync")
        assert all(s[0] == "in_sync" for s in states[first_sync:]), states
        e = next(e for e in seen if mine(e))
        assert e[0] == "state" and e[1] is not None
        assert e[2]["resource"] == "ipsec_site_connection"
        assert e[2]["tenant_id"] == e[2]["project_id"] == world.users["demo"].project_id
        # The admin sees it too.
        admin.until(lambda e: mine(e) and e[2]["status"] == "ACTIVE")
        # Disabled: DOWN, then enabled again: ACTIVE.
        r = api.put(f"/v2.0/vpn/ipsec-site-connections/{cid}", {"ipsec_site_connection": {"admin_state_up": False}})
        assert r.status_code == 200, r.text
        demo.until(lambda e: mine(e) and e[2]["status"] == "DOWN")
        r = api.put(f"/v2.0/vpn/ipsec-site-connections/{cid}", {"ipsec_site_connection": {"admin_state_up": True}})
        assert r.status_code == 200, r.text
        demo.until(lambda e: mine(e) and e[2]["status"] == "ACTIVE")
        # Deleted: removed.
        api.remove("ipsec_site_connection", cid)
        demo.until(lambda e: mine(e) and e[0] == "removed")
        # Another project's member saw nothing of it.
        assert not [e for e in other.drain() if e[2]["id"] == cid]
    finally:
        for s in (demo, other, admin):
            s.close()


def test_watch_starts_with_the_current_states_and_ends_after_timeout(world, api, site):
    conn = connection(api, "other", site["gateways"]["other"], 3)
    try:
        s = Stream(world.url, api.token("other"), timeout=3)
        started = time.monotonic()
        first = s.until(lambda e: e[2]["id"] == conn["id"])
        assert first[-1][0] == "state"
        # Only its own project's connections.
        assert {e[2]["project_id"] for e in first} == {world.users["other"].project_id}
        rest = s.drain(quiet=10)
        assert all(e[2]["project_id"] == world.users["other"].project_id for e in rest)
        assert time.monotonic() - started < 9, "the stream did not end after its timeout"
        s.close()
        # A member's stream counted while open.
        tok = api.token("admin")
        assert value(scrape(world.url, tok), "vpnaas_watch_streams") is not None
    finally:
        api.remove("ipsec_site_connection", conn["id"], user="other")


def test_watch_ends_when_its_token_is_revoked(world, api):
    """A stream does not outlive its credentials: a revoked token ends it
    within the re-validation period (5 s), long before its ?timeout."""
    r = api.token_response("demo")
    assert r.status_code == 201, r.text
    tok = r.headers["X-Subject-Token"]  # a token of its own, not the cached one
    s = Stream(world.url, tok, timeout=120)
    try:
        s.drain(quiet=1.0)
        r = requests.delete(world.auth_url + "/auth/tokens",
                            headers={"X-Auth-Token": tok, "X-Subject-Token": tok}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 204, r.text
        revoked = time.monotonic()
        s.thread.join(timeout=15)
        assert not s.thread.is_alive(), "the stream still runs 15 s after its token was revoked"
        took = time.monotonic() - revoked
        assert took < 12, f"the stream ended {took:.1f}s after the revocation"
    finally:
        s.close()


@pytest.mark.skipif(not PG, reason="needs PostgreSQL (VPNAAS_TEST_PG): replicas share one database")
def test_watch_on_one_replica_sees_a_report_accepted_by_another(world, api, tmp_path):
    """Reports are not notified across replicas; the watch's 1 s tick reads them."""
    first = world.server
    other = Server(_bin_path(), tmp_path, pg_name=first.pg_name)
    shutil.copy(first.key_file, other.key_file)  # one key for every replica
    other.admin_password = first.admin_password
    other.start()
    try:
        srv = first
        srv.admin("gateway", "create", "mw-gw-rep", "--project", "demo", "--external-v4", "172.24.77.9")
        srv.admin("subnet", "create", "mw-sub-rep", "--gateway", "mw-gw-rep", "--cidr", "10.187.9.0/24")
        node = srv.admin("node", "add", "mw-node-rep", "--gateway", "mw-gw-rep")
        routers = {r["name"]: r["id"] for r in api.get("/v2.0/routers").json()["routers"]}
        subnets = {x["name"]: x["id"] for x in api.get("/v2.0/subnets").json()["subnets"]}
        ike = api.create("ikepolicy", {"name": "mw-ike-rep"})
        ipsec = api.create("ipsecpolicy", {"name": "mw-ipsec-rep"})
        svc = api.create("vpnservice", {"name": "mw-svc-rep", "router_id": routers["mw-gw-rep"]})
        local = api.create("endpoint_group", {"name": "mw-l-rep", "type": "subnet",
                                              "endpoints": [subnets["mw-sub-rep"]]})
        peer = api.create("endpoint_group", {"name": "mw-p-rep", "type": "cidr", "endpoints": ["10.179.0.0/24"]})
        stream = Stream(first.url, api.token("demo"))
        conn = None
        try:
            conn = api.create("ipsec_site_connection", {
                "name": "mw-c-rep", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"],
                "ipsecpolicy_id": ipsec["id"], "peer_address": "198.51.100.99", "peer_id": "198.51.100.99",
                "psk": "mw-secret-rep", "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"]})
            mine = lambda e: e[2]["id"] == conn["id"]  # noqa: E731
            stream.until(lambda e: mine(e) and e[2]["status"] == "PENDING_CREATE")
            # The node talks to the other replica only.
            h = {"Authorization": f"Bearer {node['token']}"}
            r = requests.get(f"{other.url}/internal/v1/nodes/{node['id']}/config", headers=h, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, r.text
            cfg = r.json()
            reported = time.monotonic()
            r = requests.post(f"{other.url}/internal/v1/nodes/{node['id']}/report", headers=h, timeout=HTTP_TIMEOUT,
                              json={"realized_generation": cfg["generation"], "failures": [], "agent": "mw-test",
                                    "tunnels": [{"id": t["id"], "ike_state": "ESTABLISHED", "child_sas_installed": 1,
                                                 "child_sas_expected": 1} for t in cfg["tunnels"]]})
            assert r.status_code == 204, r.text
            seen = stream.until(lambda e: mine(e) and e[2]["status"] == "ACTIVE", timeout=10)
            assert time.monotonic() - reported < 5, "the report reached the other replica's watcher late"
            assert [e[2]["realization_state"] for e in seen if mine(e)][-1] == "in_sync"
        finally:
            stream.close()
            # The world server is shared: leave nothing behind (NSX tests list
            # every session).
            if conn is not None:
                api.remove("ipsec_site_connection", conn["id"])
            for kind, obj in (("vpnservice", svc), ("endpoint_group", local), ("endpoint_group", peer),
                              ("ikepolicy", ike), ("ipsecpolicy", ipsec)):
                api.remove(kind, obj["id"])
    finally:
        other.stop()
