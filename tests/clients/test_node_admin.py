"""`vpnaas node delete`: an operator retires a gateway node. Checked from
outside: the node's token stops authenticating at once on the running server,
`node list` no longer shows it, names that several nodes share are refused
(nothing is deleted), and a missing node is an error, not a silent success.
"""

from __future__ import annotations

import json
import subprocess
import time

import requests

from conftest import HTTP_TIMEOUT


def admin_fails(world, *args: str) -> str:
    srv = world.server
    res = subprocess.run([str(srv.binary), *srv.db_args, *args], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode != 0, f"{args}: expected a failure, got {res.stdout}"
    return res.stderr


def config_status(world, node) -> int:
    r = requests.get(f"{world.url}/internal/v1/nodes/{node['id']}/config",
                     headers={"Authorization": f"Bearer {node['token']}"}, timeout=HTTP_TIMEOUT)
    return r.status_code


def listed(world) -> set[str]:
    srv = world.server
    res = subprocess.run([str(srv.binary), *srv.db_args, "node", "list"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL, check=True)
    return {n["id"] for n in json.loads(res.stdout)}


def test_a_deleted_node_is_gone_and_its_token_refused(world):
    srv = world.server
    srv.admin("gateway", "create", "na-gw", "--project", "demo", "--external-v4", "172.24.4.90")
    node = srv.admin("node", "add", "na-node", "--gateway", "na-gw")
    assert config_status(world, node) == 200
    assert node["id"] in listed(world)

    out = srv.admin("node", "delete", "na-node")
    assert out == {"id": node["id"], "name": "na-node", "gateway_id": node["gateway_id"], "deleted": True}
    assert config_status(world, node) == 401, "a deleted node's token still authenticates"
    assert node["id"] not in listed(world)
    assert "no node" in admin_fails(world, "node", "delete", node["id"])


def test_a_shared_name_is_refused_and_an_id_always_works(world):
    srv = world.server
    srv.admin("gateway", "create", "na-gw2", "--project", "demo", "--external-v4", "172.24.4.91")
    a = srv.admin("node", "add", "na-twin", "--gateway", "na-gw2")
    b = srv.admin("node", "add", "na-twin", "--gateway", "na-gw2")
    err = admin_fails(world, "node", "delete", "na-twin")
    assert a["id"] in err and b["id"] in err, err
    assert {a["id"], b["id"]} <= listed(world), "a refused delete removed a node"
    srv.admin("node", "delete", a["id"])
    assert config_status(world, a) == 401 and config_status(world, b) == 200
    srv.admin("node", "delete", "na-twin")  # now only one has the name
    assert config_status(world, b) == 401


def test_a_long_poll_waiting_when_its_node_is_deleted_gets_no_later_change(world, api):
    """The snapshot of a change made after the deletion never reaches the
    deleted node (it would carry the new pre-shared key): its waiting
    long-poll answers 401 instead."""
    import threading

    srv = world.server
    gw = srv.admin("gateway", "create", "na-gw3", "--project", "demo", "--external-v4", "172.24.4.92")["id"]
    node = srv.admin("node", "add", "na-waiter", "--gateway", "na-gw3")
    h = {"Authorization": f"Bearer {node['token']}"}
    url = f"{world.url}/internal/v1/nodes/{node['id']}/config"
    known = requests.get(url, headers=h, timeout=HTTP_TIMEOUT).json()["generation"]
    got = {}

    def poll():
        r = requests.get(url, params={"known": known, "wait": 20}, headers=h, timeout=30)
        got["status"], got["body"] = r.status_code, r.text

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)  # the long-poll is waiting (authenticated) by now
    srv.admin("node", "delete", node["id"])
    ike = api.create("ikepolicy", {"name": "na-ike"})
    ipsec = api.create("ipsecpolicy", {"name": "na-ipsec"})
    svc = api.create("vpnservice", {"name": "na-svc", "router_id": gw})
    conn = api.create("ipsec_site_connection", {
        "name": "na-conn", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"], "ipsecpolicy_id": ipsec["id"],
        "peer_address": "192.0.2.92", "peer_id": "192.0.2.92", "psk": "after-the-delete-psk",
        "route_mode": "route", "tunnel_addresses": ["169.254.92.1/30"], "peer_cidrs": ["10.92.0.0/24"]})
    t.join(timeout=30)
    try:
        assert got.get("status") == 401, got
        assert "after-the-delete-psk" not in got["body"]
        assert json.loads(got["body"])["error"]["code"] == 401
    finally:
        for res, i in (("ipsec_site_connection", conn["id"]), ("vpnservice", svc["id"]),
                       ("ipsecpolicy", ipsec["id"]), ("ikepolicy", ike["id"])):
            api.remove(res, i)


def test_a_report_of_a_generation_never_committed_is_refused(world):
    """A node can't claim a generation the server never committed (it would
    show later changes in_sync before any node fetched them)."""
    srv = world.server
    srv.admin("gateway", "create", "na-gw4", "--project", "demo", "--external-v4", "172.24.4.93")
    node = srv.admin("node", "add", "na-reporter", "--gateway", "na-gw4")
    h = {"Authorization": f"Bearer {node['token']}"}
    cfg = requests.get(f"{world.url}/internal/v1/nodes/{node['id']}/config", headers=h, timeout=HTTP_TIMEOUT).json()
    url = f"{world.url}/internal/v1/nodes/{node['id']}/report"
    for bad in (-5, cfg["generation"] + 10**9):
        r = requests.post(url, json={"realized_generation": bad, "tunnels": []}, headers=h, timeout=HTTP_TIMEOUT)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == 400 and "realized_generation" in r.json()["error"]["message"]
    r = requests.post(url, json={"realized_generation": cfg["generation"], "tunnels": []}, headers=h,
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 204, r.text
    srv.admin("node", "delete", node["id"])
