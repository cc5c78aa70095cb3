"""Neutron route mode (ours, issue 12 item 1): `route_mode: "route"` with
`tunnel_addresses` makes an ipsec-site-connection route-based, as an NSX
RouteBasedIPSecVPNSession is; `peer_cidrs` are then the networks routed into
the tunnel interface.

Checked from outside: raw Neutron calls (openstack/openstacksdk send no
`route_mode`, Neutron's read-only attribute) for what the extension accepts
and refuses, openstacksdk and the `openstack` CLI reading such a connection,
the NSX view of it, and the configuration a transport node of its gateway
receives (interface id, addresses, routes, 0/0 selectors). The two-site
tunnel over it is in tests/e2e/route_based_scenario.py.
"""

from __future__ import annotations

import pytest
import requests

from conftest import HTTP_TIMEOUT, PATHS, assert_keys, assert_neutron_error

CONN = PATHS["ipsec_site_connection"]


class Node:
    """A transport node reading its configuration as an agent does."""

    def __init__(self, world, name, gateway):
        info = world.server.admin("node", "add", name, "--gateway", gateway)
        self.id, self.token, self.url = info["id"], info["token"], world.url

    def config(self) -> dict:
        r = requests.get(
            f"{self.url}/internal/v1/nodes/{self.id}/config",
            headers={"Authorization": f"Bearer {self.token}"}, timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def tunnels(self) -> dict:
        return {t["id"]: t for t in self.config()["tunnels"]}

    def report_all_up(self) -> None:
        """Reports every tunnel of the configuration established."""
        cfg = self.config()
        tunnels = [{"id": t["id"], "ike_state": "ESTABLISHED", "child_sas_installed": 1,
                    "child_sas_expected": 1} for t in cfg["tunnels"]]
        r = requests.post(
            f"{self.url}/internal/v1/nodes/{self.id}/report",
            json={"realized_generation": cfg["generation"], "tunnels": tunnels, "agent": "test-node"},
            headers={"Authorization": f"Bearer {self.token}"}, timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def site(api, world):
    gw = world.server.admin(
        "gateway", "create", "rm-gw", "--project", "demo", "--external-v4", "172.24.4.80"
    )["id"]
    world.server.admin("subnet", "create", "rm-lan", "--gateway", "rm-gw", "--cidr", "10.200.0.0/24")
    made = []

    def make(resource, body):
        obj = api.create(resource, body)
        made.append((resource, obj["id"]))
        return obj

    ike = make("ikepolicy", {"name": "rm-ike"})
    ipsec = make("ipsecpolicy", {"name": "rm-ipsec"})
    svc = make("vpnservice", {"name": "rm-svc", "router_id": gw})
    node = Node(world, "rm-node", gw)
    yield {"gw": gw, "ike": ike["id"], "ipsec": ipsec["id"], "svc": svc["id"], "node": node, "made": made}
    for resource, oid in reversed(made):
        r = api.delete(f"{PATHS[resource]}/{oid}")
        assert r.status_code in (204, 404), r.text


def conn_body(site, n, **kw):
    body = {
        "name": f"rm-conn-{n}", "vpnservice_id": site["svc"], "ikepolicy_id": site["ike"],
        "ipsecpolicy_id": site["ipsec"], "peer_address": f"192.0.2.{80 + n}", "peer_id": f"192.0.2.{80 + n}",
        "psk": "rm-secret", "route_mode": "route", "tunnel_addresses": [f"169.254.{40 + n}.1/30"],
        "peer_cidrs": [f"10.{80 + n}.0.0/24"],
    }
    body.update(kw)
    return {"ipsec_site_connection": body}


def create(api, site, n, **kw) -> dict:
    r = api.post(CONN, conn_body(site, n, **kw))
    assert r.status_code == 201, r.text
    c = r.json()["ipsec_site_connection"]
    site["made"].append(("ipsec_site_connection", c["id"]))
    return c


def nsx_get(world, path):
    r = requests.get(world.url + path, auth=("admin", world.server.admin_password),
                     headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def test_route_mode_connection_is_route_based_everywhere(api, world, site, sdk, cli):
    c = create(api, site, 1)
    assert_keys("ipsec_site_connection", c)
    assert c["route_mode"] == "route"
    assert c["tunnel_addresses"] == ["169.254.41.1/30"]
    assert c["peer_cidrs"] == ["10.81.0.0/24"]
    assert c["local_ep_group_id"] is None and c["peer_ep_group_id"] is None

    r = api.get(f"{CONN}/{c['id']}", params=[("fields", "route_mode"), ("fields", "tunnel_addresses")])
    assert r.status_code == 200, r.text
    assert r.json()["ipsec_site_connection"] == {"route_mode": "route", "tunnel_addresses": ["169.254.41.1/30"]}
    r = api.get(CONN, params={"route_mode": "route", "fields": "id"})
    assert {"id": c["id"]} in r.json()["ipsec_site_connections"], r.text

    # Real clients read it unchanged.
    got = sdk().network.get_vpn_ipsec_site_connection(c["id"])
    assert got.route_mode == "route" and got.peer_cidrs == ["10.81.0.0/24"]
    shown = cli("vpn", "ipsec", "site", "connection", "show", c["id"], "-f", "json")
    assert shown.rc == 0, shown.err
    assert shown.out["Route Mode"] == "route", shown.out

    # NSX sees a route-based session with the same interface and routes.
    s = nsx_get(world, f"/api/v1/vpn/ipsec/sessions/{c['id']}")
    assert s["resource_type"] == "RouteBasedIPSecVPNSession", s
    [port] = s["tunnel_ports"]
    assert port["ip_subnets"] == [{"ip_addresses": ["169.254.41.1"], "prefix_length": 30}]
    assert s["peer_cidrs"] == ["10.81.0.0/24"]

    # The gateway's node gets an interface for it: if_id, address, route, 0/0.
    t = site["node"].tunnels()[c["id"]]
    assert t["route"]["if_id"] >= 1
    assert t["route"]["addresses"] == ["169.254.41.1/30"]
    assert t["route"]["routes"] == ["10.81.0.0/24"]
    assert t["local_ts"] == ["0.0.0.0/0"] and t["remote_ts"] == ["0.0.0.0/0"], t

    # A static (policy-based) connection shows Neutron's own shape.
    r = api.get(CONN, params={"route_mode": "static", "fields": "id"})
    assert {"id": c["id"]} not in r.json()["ipsec_site_connections"]


def test_interface_ids_are_distinct_and_kept(api, world, site):
    a = create(api, site, 2)
    b = create(api, site, 3)
    before = site["node"].tunnels()
    ids = {before[a["id"]]["route"]["if_id"], before[b["id"]]["route"]["if_id"]}
    assert len(ids) == 2 and 0 not in ids, before
    port = nsx_get(world, f"/api/v1/vpn/ipsec/sessions/{a['id']}")["tunnel_ports"][0]["tunnel_port_id"]
    site["node"].report_all_up()
    assert api.wait_settled("ipsec_site_connection", a["id"])["status"] == "ACTIVE"

    # The interface's addresses and routes change on update; its id and port do not.
    r = api.put(f"{CONN}/{a['id']}", {"ipsec_site_connection": {
        "tunnel_addresses": ["169.254.52.1/30", "fd00:52::1/64"], "peer_cidrs": ["10.82.0.0/24", "10.182.0.0/24"]}})
    assert r.status_code == 200, r.text
    u = r.json()["ipsec_site_connection"]
    assert u["tunnel_addresses"] == ["169.254.52.1/30", "fd00:52::1/64"] and u["route_mode"] == "route"
    after = site["node"].tunnels()[a["id"]]
    assert after["route"]["if_id"] == before[a["id"]]["route"]["if_id"]
    assert after["route"]["addresses"] == ["169.254.52.1/30", "fd00:52::1/64"]
    assert after["route"]["routes"] == ["10.82.0.0/24", "10.182.0.0/24"]
    # IPv6 inside an IPv4 tunnel: both families' selectors.
    assert after["local_ts"] == ["0.0.0.0/0", "::/0"], after
    s = nsx_get(world, f"/api/v1/vpn/ipsec/sessions/{a['id']}")
    assert s["tunnel_ports"][0]["tunnel_port_id"] == port


@pytest.mark.parametrize(
    "change, field",
    [
        ({"route_mode": "bgp"}, "route_mode"),
        ({"tunnel_addresses": []}, "tunnel_addresses"),
        ({"tunnel_addresses": ["169.254.44.1"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["169.254.44.0/30"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["not-an-address/30"]}, "tunnel_addresses"),
        ({"peer_cidrs": ["0.0.0.0/0"]}, "peer_cidrs"),
        ({"peer_cidrs": ["192.0.2.0/24"]}, "peer_cidrs"),
        ({"peer_cidrs": ["169.254.44.0/24"]}, "peer_cidrs"),
        ({"peer_cidrs": ["10.84.0.0/24", "10.84.0.0/24"]}, "peer_cidrs"),
        ({"route_mode": "static"}, "tunnel_addresses"),
        # The interface's subnet holds the peer: the tunnel's own packets would enter it.
        ({"tunnel_addresses": ["192.0.2.1/24"]}, "tunnel_addresses"),
        # Not unicast hosts of their subnet, or given twice.
        ({"tunnel_addresses": ["169.254.44.3/30"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["127.0.0.2/8"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["224.0.0.9/24"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["::ffff:169.254.44.1/126"]}, "tunnel_addresses"),
        ({"tunnel_addresses": ["169.254.44.1/30", "169.254.44.1/29"]}, "tunnel_addresses"),
        # The gateway's own external address and internal subnet stay out of tunnels.
        ({"tunnel_addresses": ["172.24.4.81/24"]}, "tunnel_addresses"),
        ({"peer_cidrs": ["10.200.0.0/25"]}, "peer_cidrs"),
        # Bounded lists.
        ({"peer_cidrs": [f"10.{i // 256}.{i % 256}.0/24" for i in range(257)]}, "peer_cidrs"),
    ],
)
def test_bad_route_mode_input_is_refused_in_neutrons_envelope(api, site, change, field):
    r = api.post(CONN, conn_body(site, 4, **change))
    body = assert_neutron_error(r, 400)
    assert field in body["message"], body
    listed = api.get(CONN, params={"name": "rm-conn-4"}).json()["ipsec_site_connections"]
    assert listed == [], "a refused create left a row"


def test_route_mode_refuses_endpoint_groups_and_is_set_on_create_only(api, site):
    local = api.create("endpoint_group", {"name": "rm-local", "type": "cidr", "endpoints": ["10.85.0.0/24"]})
    site["made"].append(("endpoint_group", local["id"]))
    r = api.post(CONN, conn_body(site, 5, peer_ep_group_id=local["id"], peer_cidrs=[]))
    body = assert_neutron_error(r, 400)
    assert "endpoint groups" in body["message"], body

    c = create(api, site, 6)
    site["node"].report_all_up()
    assert api.wait_settled("ipsec_site_connection", c["id"])["status"] == "ACTIVE"
    r = api.put(f"{CONN}/{c['id']}", {"ipsec_site_connection": {"route_mode": "static"}})
    body = assert_neutron_error(r, 400)
    assert "route_mode" in body["message"], body
    r = api.put(f"{CONN}/{c['id']}", {"ipsec_site_connection": {"peer_cidrs": ["0.0.0.0/0"]}})
    assert_neutron_error(r, 400)
    assert api.show("ipsec_site_connection", c["id"])["peer_cidrs"] == ["10.86.0.0/24"]


def test_another_projects_route_mode_connection_is_missing(api, site):
    c = create(api, site, 7)
    r = api.get(f"{CONN}/{c['id']}", user="other")
    assert_neutron_error(r, 404)
    r = api.put(f"{CONN}/{c['id']}", {"ipsec_site_connection": {"tunnel_addresses": ["169.254.77.1/30"]}},
                user="other")
    assert_neutron_error(r, 404)


def test_route_mode_connections_of_one_gateway_do_not_collide(api, site):
    first = create(api, site, 8)
    # Another interface in the same subnet, or a route the first already has:
    # refused, in Neutron's envelope, with nothing written.
    for change, field in (({"tunnel_addresses": ["169.254.48.2/30"]}, "tunnel_addresses"),
                          ({"peer_cidrs": ["10.88.0.0/16"]}, "peer_cidrs"),
                          # across kinds: my interface in its routes, my routes over its interface
                          ({"tunnel_addresses": ["10.88.0.5/30"]}, "tunnel_addresses"),
                          ({"peer_cidrs": ["169.254.48.0/24"]}, "peer_cidrs"),
                          # its peer (192.0.2.88) routed into this tunnel
                          ({"peer_cidrs": ["192.0.2.0/24"], "peer_address": "198.51.100.9"}, "peer_cidrs")):
        r = api.post(CONN, conn_body(site, 9, **change))
        body = assert_neutron_error(r, 400)
        assert field in body["message"] and "another route-based connection" in body["message"], body
        assert api.get(CONN, params={"name": "rm-conn-9"}).json()["ipsec_site_connections"] == []
    # An update is held to the same rule.
    second = create(api, site, 9)
    site["node"].report_all_up()
    assert api.wait_settled("ipsec_site_connection", second["id"])["status"] == "ACTIVE"
    r = api.put(f"{CONN}/{second['id']}", {"ipsec_site_connection": {"peer_cidrs": first["peer_cidrs"]}})
    assert_neutron_error(r, 400)


def test_nsx_renames_a_route_mode_connection_but_does_not_reroute_it(api, world, site):
    c = create(api, site, 10)
    path = f"/api/v1/vpn/ipsec/sessions/{c['id']}"
    auth = ("admin", world.server.admin_password)
    s = nsx_get(world, path)
    # nsxlib's read-modify-write of a rename: the echo of the rest passes.
    r = requests.put(world.url + path, json={**s, "display_name": "rm-renamed"}, auth=auth, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "rm-renamed"
    # Its routes and interface are Neutron's to change: refused, not dropped.
    for change in ({"peer_cidrs": ["10.210.0.0/24"]},
                   {"tunnel_ports": [{"ip_subnets": [{"ip_addresses": ["169.254.99.1"], "prefix_length": 30}]}]}):
        cur = nsx_get(world, path)
        r = requests.put(world.url + path, json={**cur, **change}, auth=auth, timeout=HTTP_TIMEOUT)
        assert r.status_code == 400, r.text
        assert "Neutron" in r.json()["error_message"], r.text
    assert api.show("ipsec_site_connection", c["id"])["peer_cidrs"] == ["10.90.0.0/24"]
    assert api.show("ipsec_site_connection", c["id"])["name"] == "rm-renamed"
