"""Realization tracking over HTTP, driven as gateway nodes would drive it.

Nodes are registered with `vpnaas node add`, fetch their configuration from the
node API, and report realized generations, failures and tunnel state; the NSX
state endpoint and the Neutron `status` must follow, reproducing every example
of seed 000 (the NSX admin guide's "Check the Realized State of an IPSec VPN
Session"). The server under test runs with a short node timeout (see conftest).
"""

import threading
import time

import pytest
import requests

from conftest import HTTP_TIMEOUT, Api

NODE_TIMEOUT = 2.0  # must match the server's --node-timeout in conftest


class Node:
    def __init__(self, world, name, gateway):
        info = world.server.admin("node", "add", name, "--gateway", gateway)
        self.id = info["id"]
        self.token = info["token"]
        self.gateway_id = info["gateway_id"]
        self.url = world.url
        assert len(self.token) >= 32

    def _h(self, token=None):
        return {"Authorization": f"Bearer {token or self.token}"}

    def config(self, known=None, wait=None, token=None, node_id=None):
        params = {}
        if known is not None:
            params["known"] = known
        if wait is not None:
            params["wait"] = wait
        return requests.get(
            f"{self.url}/internal/v1/nodes/{node_id or self.id}/config",
            params=params,
            headers=self._h(token),
            timeout=HTTP_TIMEOUT + (wait or 0),
        )

    def report(self, generation, tunnels=(), failures=()):
        r = requests.post(
            f"{self.url}/internal/v1/nodes/{self.id}/report",
            json={
                "realized_generation": generation,
                "tunnels": list(tunnels),
                "failures": list(failures),
                "agent": "test-node",
            },
            headers=self._h(),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 204, r.text
        return r

    def sync(self, up_ids=()):
        """Fetch the latest config and report it realized (tunnels in up_ids established)."""
        r = self.config()
        assert r.status_code == 200, r.text
        cfg = r.json()
        tunnels = [
            {
                "id": t["id"],
                "ike_state": "ESTABLISHED" if t["id"] in up_ids else "CONNECTING",
                "child_sas_installed": 1 if t["id"] in up_ids else 0,
                "child_sas_expected": 1,
                "bytes_in": 1000,
                "bytes_out": 2000,
                "packets_in": 10,
                "packets_out": 20,
            }
            for t in cfg["tunnels"]
        ]
        self.report(cfg["generation"], tunnels=tunnels)
        return cfg


class Site:
    """A gateway with its own Neutron objects and one connection."""

    def __init__(self, world, api: Api, name, octet):
        srv = world.server
        self.gateway = srv.admin(
            "gateway", "create", name, "--project", "demo", "--external-v4", f"172.30.{octet}.1"
        )["id"]
        subnet = srv.admin("subnet", "create", f"{name}-net", "--gateway", name, "--cidr", f"10.{octet}.0.0/24")["id"]
        self.api = api
        self.ike = api.create("ikepolicy", {"name": f"{name}-ike"})["id"]
        self.ipsec = api.create("ipsecpolicy", {"name": f"{name}-ipsec"})["id"]
        self.service = api.create("vpnservice", {"name": f"{name}-svc", "router_id": self.gateway})["id"]
        self.local = api.create("endpoint_group", {"name": f"{name}-l", "type": "subnet", "endpoints": [subnet]})["id"]
        self.peer = api.create("endpoint_group", {"name": f"{name}-p", "type": "cidr", "endpoints": [f"10.{octet + 100}.0.0/24"]})["id"]
        r = api.post(
            "/v2.0/vpn/ipsec-site-connections",
            {"ipsec_site_connection": {
                "name": f"{name}-conn", "vpnservice_id": self.service, "ikepolicy_id": self.ike,
                "ipsecpolicy_id": self.ipsec, "peer_address": f"198.51.100.{octet}", "peer_id": f"peer-{octet}",
                "psk": f"psk-{name}", "local_ep_group_id": self.local, "peer_ep_group_id": self.peer}},
        )
        assert r.status_code == 201, r.text
        self.conn = r.json()["ipsec_site_connection"]
        self.conn_id = self.conn["id"]
        self.create_request = r.headers["x-nsx-requestid"]
        assert r.headers["x-openstack-request-id"] == "req-" + self.create_request


def nsx_state(world, session_id, request_id=None):
    params = {"request_id": request_id} if request_id else None
    return requests.get(
        f"{world.url}/api/v1/vpn/ipsec/sessions/{session_id}/state",
        params=params,
        auth=("admin", world.server.admin_password),
        headers={"Accept": "application/json"},
        timeout=HTTP_TIMEOUT,
    )


def conn_status(api, conn_id):
    return api.show("ipsec_site_connection", conn_id)["status"]


@pytest.fixture(scope="module")
def rapi(world):
    return Api(world)


def test_node_api_authenticates_and_isolates(world, rapi):
    a = Site(world, rapi, "iso-a", 41)
    b = Site(world, rapi, "iso-b", 42)
    na = Node(world, "iso-a-n1", "iso-a")
    nb = Node(world, "iso-b-n1", "iso-b")
    assert na.config(token="not-a-token").status_code == 401
    assert requests.get(f"{world.url}/internal/v1/nodes/{na.id}/config", timeout=HTTP_TIMEOUT).status_code == 401
    assert na.config(node_id=nb.id).status_code == 403
    cfg = na.config().json()
    ids = [t["id"] for t in cfg["tunnels"]]
    assert ids == [a.conn_id] and b.conn_id not in ids
    t = cfg["tunnels"][0]
    assert t["psk"] == "psk-iso-a"
    assert t["local_address"] == "172.30.41.1" and t["peer_address"] == "198.51.100.41"
    assert t["local_ts"] == ["10.41.0.0/24"] and t["remote_ts"] == ["10.141.0.0/24"]
    assert t["ike"]["version"] == "v1" and t["ike"]["encryption"] == ["aes-128"]
    assert t["child"]["pfs_groups"] == ["group5"] and t["dpd"] == {"action": "hold", "interval": 30, "timeout": 120}
    assert t["enabled"] is True and cfg["generation"] >= t["generation"]


def test_long_poll_answers_on_commit(world, rapi):
    s = Site(world, rapi, "poll", 43)
    n = Node(world, "poll-n1", "poll")
    # Realize it first: Neutron refuses updates while the connection is PENDING_CREATE.
    g = n.sync()["generation"]
    assert conn_status(rapi, s.conn_id) == "DOWN"  # realized, tunnel not up
    # Nothing new: the wait ends with 204.
    t0 = time.monotonic()
    assert n.config(known=g, wait=1).status_code == 204
    assert time.monotonic() - t0 >= 0.9
    result = {}

    def waiter():
        t = time.monotonic()
        result["resp"] = n.config(known=g, wait=30)
        result["elapsed"] = time.monotonic() - t

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.5)
    r = rapi.put(f"/v2.0/vpn/ipsec-site-connections/{s.conn_id}", {"ipsec_site_connection": {"mtu": 1400}})
    assert r.status_code == 200, r.text
    th.join(timeout=40)
    resp = result["resp"]
    assert resp.status_code == 200
    assert resp.json()["generation"] > g
    assert resp.json()["tunnels"][0]["mtu"] == 1400
    assert result["elapsed"] < 5, result
    # A write to another gateway does not wake this node.
    g2 = resp.json()["generation"]
    other = Site(world, rapi, "poll-other", 44)
    assert other.conn_id
    assert n.config(known=g2, wait=1).status_code == 204


def test_seed_in_progress_then_in_sync(world, rapi):
    s = Site(world, rapi, "seed-a", 45)
    n1 = Node(world, "seed-a-n1", "seed-a")
    n2 = Node(world, "seed-a-n2", "seed-a")
    assert conn_status(rapi, s.conn_id) == "PENDING_CREATE"
    cfg = n1.sync(up_ids=[s.conn_id])
    n2.report(cfg["generation"] - 1)  # alive, but behind
    r = nsx_state(world, s.conn_id, s.create_request)
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["state"] == "in_progress"
    assert st["failure_message"] == "The state realization is in progress at transport nodes."
    by = {d["sub_system_id"]: d for d in st["details"]}
    assert set(by) == {n1.id, n2.id}
    assert by[n1.id] == {"sub_system_type": "TransportNode", "sub_system_id": n1.id, "state": "in_sync"}
    d2 = by[n2.id]
    assert d2["sub_system_type"] == "TransportNode" and d2["state"] == "in_progress"
    assert d2["failure_message"].startswith("CCP Id:")
    assert d2["failure_message"].endswith(", Message:State realization is in progress at the node.")
    # n1 carries the tunnel: the connection is ACTIVE already.
    assert conn_status(rapi, s.conn_id) == "ACTIVE"

    n2.sync(up_ids=[s.conn_id])
    st = nsx_state(world, s.conn_id, s.create_request).json()
    assert st["state"] == "in_sync"
    assert "failure_message" not in st
    assert sorted(d["state"] for d in st["details"]) == ["in_sync", "in_sync"]
    assert all(set(d) == {"sub_system_type", "sub_system_id", "state"} for d in st["details"])

    # A later change: its request is in progress until the nodes report it,
    # while the earlier request stays in sync.
    r = rapi.put(f"/v2.0/vpn/ipsec-site-connections/{s.conn_id}", {"ipsec_site_connection": {"name": "seed-a-renamed"}})
    assert r.status_code == 200
    req2 = r.headers["x-nsx-requestid"]
    assert req2 != s.create_request
    assert nsx_state(world, s.conn_id, s.create_request).json()["state"] == "in_sync"
    assert nsx_state(world, s.conn_id, req2).json()["state"] == "in_progress"
    assert nsx_state(world, s.conn_id).json()["state"] == "in_progress"  # latest change
    assert conn_status(rapi, s.conn_id) == "PENDING_UPDATE"
    n1.sync(up_ids=[s.conn_id])
    n2.sync(up_ids=[s.conn_id])
    assert nsx_state(world, s.conn_id, req2).json()["state"] == "in_sync"
    assert conn_status(rapi, s.conn_id) == "ACTIVE"
    # The service's own request id works through the session too (shared span).
    r = rapi.put(f"/v2.0/vpn/vpnservices/{s.service}", {"vpnservice": {"description": "touched"}})
    assert r.status_code == 200, r.text
    assert nsx_state(world, s.conn_id, r.headers["x-nsx-requestid"]).json()["state"] == "in_progress"


def test_seed_unknown_examples(world, rapi):
    # One node silent past the timeout, one in sync: unknown with details.
    s = Site(world, rapi, "seed-b", 46)
    n1 = Node(world, "seed-b-n1", "seed-b")
    n2 = Node(world, "seed-b-n2", "seed-b")
    n2.sync()
    time.sleep(NODE_TIMEOUT + 0.6)
    n1.sync()
    st = nsx_state(world, s.conn_id, s.create_request).json()
    assert st["state"] == "unknown"
    assert st["failure_message"] == "The state realization is unknown at transport nodes"
    by = {d["sub_system_id"]: d for d in st["details"]}
    assert by[n1.id]["state"] == "in_sync"
    assert by[n2.id]["state"] == "unknown"
    assert by[n2.id]["failure_message"].startswith("CCP Id:")
    assert by[n2.id]["failure_message"].endswith(
        ", Message: Unable to get response from the node. Please retry operation after some time."
    )
    # No node answers at all: unknown without details.
    c = Site(world, rapi, "seed-c", 47)
    Node(world, "seed-c-n1", "seed-c")  # registered, never reports
    st = nsx_state(world, c.conn_id, c.create_request).json()
    assert st == {
        "state": "unknown",
        "failure_message": "Unable to get response from any CCP node. Please retry operation after some time.",
    }
    assert conn_status(rapi, c.conn_id) == "PENDING_CREATE"


def test_failed_then_error_status(world, rapi):
    s = Site(world, rapi, "seed-f", 48)
    n = Node(world, "seed-f-n1", "seed-f")
    cfg = n.config().json()
    n.report(cfg["generation"], failures=[{"entity_id": s.conn_id, "message": "charon: load-conn failed: invalid proposal"}])
    st = nsx_state(world, s.conn_id).json()
    assert st["state"] == "failed"
    assert st["details"][0]["state"] == "failed"
    assert "load-conn failed: invalid proposal" in st["details"][0]["failure_message"]
    assert conn_status(rapi, s.conn_id) == "ERROR"
    n.sync()  # fixed: no failure, tunnel not (yet) up
    assert nsx_state(world, s.conn_id).json()["state"] == "in_sync"
    assert conn_status(rapi, s.conn_id) == "DOWN"
    n.sync(up_ids=[s.conn_id])
    assert conn_status(rapi, s.conn_id) == "ACTIVE"
    svc = rapi.show("vpnservice", s.service)
    assert svc["status"] == "ACTIVE"


def test_seed_service_disabled_and_deleted(world, rapi):
    s = Site(world, rapi, "seed-d", 49)
    n = Node(world, "seed-d-n1", "seed-d")
    n.sync()
    r = rapi.put(f"/v2.0/vpn/vpnservices/{s.service}", {"vpnservice": {"admin_state_up": False}})
    assert r.status_code == 200, r.text
    r = nsx_state(world, s.conn_id)
    assert r.status_code == 400
    assert r.json() == {
        "httpStatus": "BAD_REQUEST",
        "error_code": 110199,
        "module_name": "VPN",
        "error_message": f"VPN service {s.service} associated with the session {s.conn_id} is disabled. Can not get the realization status.",
    } or {k: r.json()[k] for k in ("httpStatus", "error_code", "module_name", "error_message")} == {
        "httpStatus": "BAD_REQUEST",
        "error_code": 110199,
        "module_name": "VPN",
        "error_message": f"VPN service {s.service} associated with the session {s.conn_id} is disabled. Can not get the realization status.",
    }
    # Disabled: the node must stop carrying it.
    t = n.config().json()["tunnels"][0]
    assert t["enabled"] is False
    assert conn_status(rapi, s.conn_id) == "DOWN"
    r = rapi.put(f"/v2.0/vpn/vpnservices/{s.service}", {"vpnservice": {"admin_state_up": True}})
    assert r.status_code == 200
    r = rapi.delete(f"/v2.0/vpn/ipsec-site-connections/{s.conn_id}")
    assert r.status_code == 204
    delete_request = r.headers["x-nsx-requestid"]
    r = nsx_state(world, s.conn_id, delete_request)
    assert r.status_code == 404
    body = r.json()
    assert body["httpStatus"] == "NOT_FOUND" and body["error_code"] == 600
    assert body["module_name"] == "common-services"
    assert s.conn_id in body["error_message"]
    assert "Object identifiers are case sensitive" in body["error_message"]
    # The node's next configuration no longer has it.
    assert n.config().json()["tunnels"] == []


def test_cli_created_connection_state_via_nsx(world, rapi, cli):
    """A connection made with `openstack vpn ipsec site connection create` is an
    NSX session: its realization state and session read through the NSX API."""
    s = Site(world, rapi, "cli-rz", 50)
    n = Node(world, "cli-rz-n1", "cli-rz")
    r = cli.ok(
        "vpn", "ipsec", "site", "connection", "create", "cli-rz-conn2",
        "--vpnservice", "cli-rz-svc", "--ikepolicy", "cli-rz-ike", "--ipsecpolicy", "cli-rz-ipsec",
        "--peer-address", "198.51.100.150", "--peer-id", "peer-150", "--psk", "cli-secret",
        "--local-endpoint-group", "cli-rz-l", "--peer-endpoint-group", "cli-rz-p", "-f", "json",
    )
    conn_id = r.get("ID") or r["id"]
    # Alive (a heartbeat), but not yet realized the new connection.
    n.report(0)
    st = nsx_state(world, conn_id).json()
    assert st["state"] == "in_progress", st
    assert st["details"][0]["sub_system_id"] == n.id
    cfg = n.sync(up_ids=[conn_id])
    assert sorted(t["id"] for t in cfg["tunnels"]) == sorted([s.conn_id, conn_id])
    st = nsx_state(world, conn_id).json()
    assert st == {"details": [{"sub_system_type": "TransportNode", "sub_system_id": n.id, "state": "in_sync"}],
                  "state": "in_sync"}
    sess = requests.get(
        f"{world.url}/api/v1/vpn/ipsec/sessions/{conn_id}",
        auth=("admin", world.server.admin_password),
        timeout=HTTP_TIMEOUT,
    )
    assert sess.status_code == 200, sess.text
    assert sess.json()["id"] == conn_id and "psk" not in sess.json()
    status = requests.get(
        f"{world.url}/api/v1/vpn/ipsec/sessions/{conn_id}/status",
        params={"source": "realtime"},
        auth=("admin", world.server.admin_password),
        timeout=HTTP_TIMEOUT,
    ).json()
    assert status["session_status"] == "UP"
    assert status["ike_status"]["ike_session_state"] == "UP"
    assert status["aggregate_traffic_counters"]["packets_in"] == 10
    assert conn_status(rapi, conn_id) == "ACTIVE"
