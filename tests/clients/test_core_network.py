"""The core network API (issue 11) as real clients drive it.

An operator's whole flow from the `openstack` CLI: an admin makes an external
network with a subnet; a project member makes a network and subnet, a router
with that external network as its gateway (its address allocated from the
external subnet), attaches the subnet, lists the router's ports, and builds a
VPN service, endpoint groups and a connection on it. Then the in-use
refusals (Neutron's and neutron-vpnaas's types and messages), and teardown
in reverse order. The same with openstacksdk's `conn.network`, and the
error answers of the new endpoints over raw HTTP.

The tests of this module run in order and share one scenario (`S`); CLI
calls cost ~2 s each, so the checks that need no CLI go over raw HTTP.
"""

from __future__ import annotations

import ipaddress

import pytest

from conftest import assert_neutron_error, cli_ok

S: dict = {}

EXT_CIDR = "198.51.100.0/29"  # hosts .1-.6; .1 is the subnet's gateway address
NET, SUB, SUB2, RTR = "cn-net", "cn-sub", "cn-sub2", "cn-router"


def need(*keys):
    missing = [k for k in keys if k not in S]
    if missing:
        pytest.fail(f"earlier scenario step did not produce {missing}", pytrace=False)
    return [S[k] for k in keys]


def output_of(r) -> str:
    return (r.stdout or "") + "\n" + (r.err or "")


def test_admin_makes_an_external_network(cli, api):
    net = cli.ok("network", "create", "--external", "cn-ext", "-f", "json", user="admin")
    assert net["router:external"] is True and net["status"] == "ACTIVE", net
    sub = cli.ok("subnet", "create", "--network", "cn-ext", "--subnet-range", EXT_CIDR,
                 "--no-dhcp", "cn-ext-v4", "-f", "json", user="admin")
    assert sub["gateway_ip"] == "198.51.100.1" and sub["enable_dhcp"] is False, sub
    assert sub["network_id"] == net["id"]
    S["ext"], S["ext_sub"] = net["id"], sub["id"]
    # a member sees the external network (Neutron's get_network policy) ...
    r = api.get(f"/v2.0/networks/{net['id']}", user="demo")
    assert r.status_code == 200 and r.json()["network"]["subnets"] == [sub["id"]], r.text
    # ... and finds it with the filter `openstack network list --external` sends
    listed = api.get("/v2.0/networks", params={"router:external": "True"}, user="demo").json()["networks"]
    assert net["id"] in {n["id"] for n in listed} and all(n["router:external"] for n in listed), listed
    # ... but may not make one
    r = api.post("/v2.0/networks", {"network": {"name": "x", "router:external": True}}, user="demo")
    assert_neutron_error(r, 403, "PolicyNotAuthorized", "rule:create_network:router:external is disallowed by policy")


def test_member_builds_network_subnet_and_router(cli, api, world):
    net_r, rtr_r = cli.many(
        ("network", "create", NET, "-f", "json"),
        ("router", "create", RTR, "-f", "json"),
    )
    net, rtr = cli_ok(net_r, "network create"), cli_ok(rtr_r, "router create")
    assert net["subnets"] == [] and net["project_id"] == world.projects["demo"], net
    assert rtr["external_gateway_info"] is None and rtr["status"] == "ACTIVE", rtr
    S["net"], S["router"] = net["id"], rtr["id"]

    sub_r, sub2_r = cli.many(
        ("subnet", "create", "--network", NET, "--subnet-range", "10.60.0.0/24", SUB, "-f", "json"),
        ("subnet", "create", "--network", NET, "--subnet-range", "10.61.0.0/24", SUB2, "-f", "json"),
    )
    sub, sub2 = cli_ok(sub_r, "subnet create"), cli_ok(sub2_r, "subnet create 2")
    assert sub["gateway_ip"] == "10.60.0.1" and sub["ip_version"] == 4, sub
    assert sub["allocation_pools"] == [{"start": "10.60.0.2", "end": "10.60.0.254"}], sub
    S["sub"], S["sub2"] = sub["id"], sub2["id"]
    shown = api.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert sorted(shown["subnets"]) == sorted([sub["id"], sub2["id"]]), shown

    # overlap within the network: Neutron's message
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.60.0.128/25",
                                               "ip_version": 4}})
    assert_neutron_error(r, 400, "InvalidInput", (
        f"Invalid input for operation: Requested subnet with cidr: 10.60.0.128/25 for network: "
        f"{net['id']} overlaps with another subnet."))


def test_router_gateway_and_interface(cli, api):
    net, router, sub, ext, ext_sub = need("net", "router", "sub", "ext", "ext_sub")
    cli.ok("router", "set", "--external-gateway", "cn-ext", RTR)
    cli.ok("router", "add", "subnet", RTR, SUB)
    shown = cli.ok("router", "show", RTR, "-f", "json")
    info = shown["external_gateway_info"]
    assert info["network_id"] == ext, info
    assert info["external_fixed_ips"] == [{"subnet_id": ext_sub, "ip_address": "198.51.100.2"}], info
    S["router_ip"] = "198.51.100.2"

    ports = cli.ok("port", "list", "--router", RTR, "-f", "json")
    by_ip = {p["Fixed IP Addresses"][0]["ip_address"]: p for p in ports}
    assert set(by_ip) == {"10.60.0.1", "198.51.100.2"}, ports
    assert by_ip["10.60.0.1"]["Fixed IP Addresses"][0]["subnet_id"] == sub
    by_subnet = cli.ok("port", "list", "--fixed-ip", f"subnet={sub}", "-f", "json")
    assert [p["Fixed IP Addresses"][0]["ip_address"] for p in by_subnet] == ["10.60.0.1"], by_subnet
    raw = api.get("/v2.0/ports", params={"device_id": router}).json()["ports"]
    owners = {p["device_owner"]: p for p in raw}
    assert set(owners) == {"network:router_interface", "network:router_gateway"}, raw
    assert owners["network:router_interface"]["network_id"] == net
    assert owners["network:router_gateway"]["network_id"] == ext
    # port ids are derived, so stable: the same on every read, and shown by id
    again = api.get("/v2.0/ports", params={"device_id": router, "device_owner": "network:router_interface"})
    assert [p["id"] for p in again.json()["ports"]] == [owners["network:router_interface"]["id"]]
    one = api.get(f"/v2.0/ports/{owners['network:router_interface']['id']}")
    assert one.status_code == 200 and one.json()["port"]["device_id"] == router, one.text

    # a second interface on the same subnet, or the subnet on another router: 400
    r = api.put(f"/v2.0/routers/{router}/add_router_interface", {"subnet_id": sub})
    assert_neutron_error(r, 400, "BadRequest")


def test_unattached_subnet_is_not_connected_to_router(api):
    router, sub2 = need("router", "sub2")
    r = api.post("/v2.0/vpn/vpnservices", {"vpnservice": {"router_id": router, "subnet_id": sub2}})
    assert_neutron_error(r, 400, "SubnetIsNotConnectedToRouter",
                         f"Subnet {sub2} is not connected to Router {router}")


def test_vpn_on_the_router(cli, api):
    router, sub, router_ip = need("router", "sub", "router_ip")
    ike = api.create("ikepolicy", {"name": "cn-ike"})
    ipsec = api.create("ipsecpolicy", {"name": "cn-ipsec"})
    svc = cli.ok("vpn", "service", "create", "--router", RTR, "cn-svc", "-f", "json")
    assert svc["Router"] == router, svc
    assert api.show("vpnservice", svc["ID"])["external_v4_ip"] == router_ip
    local = api.create("endpoint_group", {"name": "cn-local", "type": "subnet", "endpoints": [sub]})
    peer = api.create("endpoint_group", {"name": "cn-peer", "type": "cidr", "endpoints": ["10.99.0.0/24"]})
    conn = api.create("ipsec_site_connection", {
        "name": "cn-conn", "vpnservice_id": svc["ID"], "ikepolicy_id": ike["id"],
        "ipsecpolicy_id": ipsec["id"], "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"],
        "peer_address": "203.0.113.60", "peer_id": "203.0.113.60", "psk": "cn-secret"})
    S.update(ike=ike["id"], ipsec=ipsec["id"], svc=svc["ID"], local=local["id"], peer=peer["id"],
             conn=conn["id"])


def test_in_use_refusals(cli, api):
    router, sub, net, ext, svc, local = need("router", "sub", "net", "ext", "svc", "local")
    r = cli.fails("router", "remove", "subnet", RTR, SUB)
    assert f"Subnet {sub} is used by endpoint group {local}" in output_of(r), output_of(r)
    r = api.put(f"/v2.0/routers/{router}/remove_router_interface", {"subnet_id": sub})
    assert_neutron_error(r, 409, "SubnetInUseByEndpointGroup", f"Subnet {sub} is used by endpoint group {local}")
    r = api.put(f"/v2.0/routers/{router}", {"router": {"external_gateway_info": {}}})
    assert_neutron_error(r, 409, "RouterInUseByVPNService", f"Router {router} is used by VPNService {svc}")
    r = api.delete(f"/v2.0/routers/{router}")
    assert_neutron_error(r, 409, "RouterInUseByVPNService", f"Router {router} is used by VPNService {svc}")
    r = api.delete(f"/v2.0/subnets/{sub}")
    assert_neutron_error(r, 409, "SubnetInUse")
    r = api.delete(f"/v2.0/networks/{net}")
    assert_neutron_error(r, 409, "NetworkInUse", (
        f"Unable to complete operation on network {net}. There are one or more ports still in use on the network."))
    r = api.delete(f"/v2.0/networks/{ext}", user="admin")
    assert_neutron_error(r, 409, "NetworkInUse")
    # nothing was half-done
    assert api.show("vpnservice", svc)["router_id"] == router
    shown = api.get(f"/v2.0/routers/{router}").json()["router"]
    assert shown["external_gateway_info"]["network_id"] == ext, shown
    assert len(api.get(f"/v2.0/networks/{net}").json()["network"]["subnets"]) == 2


def test_teardown_in_reverse_order(cli, api):
    router, sub, sub2, net, ext, ext_sub = need("router", "sub", "sub2", "net", "ext", "ext_sub")
    for res, key in (("ipsec_site_connection", "conn"), ("endpoint_group", "local"),
                     ("endpoint_group", "peer"), ("vpnservice", "svc"), ("ipsecpolicy", "ipsec"),
                     ("ikepolicy", "ike")):
        r = api.delete(f"/v2.0/vpn/{ {'ipsec_site_connection': 'ipsec-site-connections', 'endpoint_group': 'endpoint-groups', 'vpnservice': 'vpnservices', 'ipsecpolicy': 'ipsecpolicies', 'ikepolicy': 'ikepolicies'}[res] }/{S[key]}")
        assert r.status_code == 204, (res, r.text)
    cli.ok("router", "remove", "subnet", RTR, SUB)
    assert api.get("/v2.0/ports", params={"device_id": router}).json()["ports"][0]["device_owner"] \
        == "network:router_gateway"
    cli.ok("router", "unset", "--external-gateway", RTR)
    assert api.get(f"/v2.0/routers/{router}").json()["router"]["external_gateway_info"] is None
    assert api.get("/v2.0/ports", params={"device_id": router}).json()["ports"] == []
    cli.ok("router", "delete", RTR)
    cli.ok("network", "delete", NET)
    for path in (f"/v2.0/routers/{router}", f"/v2.0/networks/{net}", f"/v2.0/subnets/{sub}",
                 f"/v2.0/subnets/{sub2}"):
        assert api.get(path).status_code == 404, path
    cli.ok("network", "delete", "cn-ext", user="admin")
    assert api.get(f"/v2.0/subnets/{ext_sub}", user="admin").status_code == 404


def test_openstacksdk_network_proxy(sdk, api):
    admin, conn = sdk("admin"), sdk("demo")
    ext = admin.network.create_network(name="sdk-ext", is_router_external=True)
    ext_sub = admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr="198.51.100.16/30")
    try:
        net = conn.network.create_network(name="sdk-net")
        sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.62.0.0/24",
                                         gateway_ip="10.62.0.254")
        assert sub.gateway_ip == "10.62.0.254"
        router = conn.network.create_router(name="sdk-router", external_gateway_info={"network_id": ext.id})
        fixed = router.external_gateway_info["external_fixed_ips"]
        assert fixed == [{"subnet_id": ext_sub.id, "ip_address": "198.51.100.18"}], fixed
        answer = conn.network.add_interface_to_router(router, subnet_id=sub.id)
        assert answer["subnet_id"] == sub.id and answer["subnet_ids"] == [sub.id], answer
        assert answer["network_id"] == net.id and answer["id"] == router.id, answer
        assert answer["tenant_id"] == answer["project_id"] == router.project_id, answer
        ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
        assert [p.id for p in ports] == [answer["port_id"]], ports
        assert ports[0].fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.62.0.254"}]
        # the external /30 has one host address left after its gateway's: taken
        r = api.post("/v2.0/routers", {"router": {"name": "sdk-r2",
                                                  "external_gateway_info": {"network_id": ext.id}}})
        assert_neutron_error(r, 409, "IpAddressGenerationFailure",
                             f"No more IP addresses available on network {ext.id}.")
        assert not [x for x in api.get("/v2.0/routers", params={"name": "sdk-r2"}).json()["routers"]]
        conn.network.remove_interface_from_router(router, subnet_id=sub.id)
        assert not list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
        conn.network.delete_router(router)
        conn.network.delete_network(net)
        assert conn.network.find_subnet(sub.id) is None
    finally:
        admin.network.delete_network(ext)


@pytest.mark.parametrize("body, status, type_, contains", [
    ({"network_id": "x", "cidr": "10.0.0.0/24", "ip_version": 4}, 400, "HTTPBadRequest", "is not a valid UUID"),
    ({"cidr": "10.0.0.0/24", "ip_version": 4}, 400, "HTTPBadRequest", "'network_id' not specified"),
    ({"network_id": "NET", "cidr": "10.0.0.0/33", "ip_version": 4}, 400, "HTTPBadRequest", "not a valid IP subnet"),
    ({"network_id": "NET", "cidr": "10.0.0.0/24", "ip_version": 6}, 400, "InvalidInput", "invalid IP version"),
    ({"network_id": "NET", "cidr": "10.0.0.0/24", "ip_version": 5}, 400, "HTTPBadRequest", "ip_version"),
    ({"network_id": "NET", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.9.0.1"}, 400,
     "HTTPBadRequest", "gateway_ip"),
    ({"network_id": "NET", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "nope"}, 400,
     "HTTPBadRequest", "not a valid IP address"),
])
def test_subnet_create_errors(api, body, status, type_, contains):
    net = api.post("/v2.0/networks", {"network": {"name": "cn-err"}}).json()["network"]["id"]
    try:
        body = {k: (net if v == "NET" else v) for k, v in body.items()}
        r = api.post("/v2.0/subnets", {"subnet": body})
        assert_neutron_error(r, status, type_, contains=contains)
        assert api.get(f"/v2.0/networks/{net}").json()["network"]["subnets"] == []
    finally:
        assert api.delete(f"/v2.0/networks/{net}").status_code == 204


def test_router_and_interface_errors(api, world):
    net = api.post("/v2.0/networks", {"network": {"name": "cn-err2"}}).json()["network"]["id"]
    router = api.post("/v2.0/routers", {"router": {"name": "cn-err-r"}}).json()["router"]["id"]
    try:
        # a subnet without a gateway address can't be an interface
        s = api.post("/v2.0/subnets", {"subnet": {"network_id": net, "cidr": "10.63.0.0/24",
                                                   "ip_version": 4, "gateway_ip": None}}).json()["subnet"]
        assert s["gateway_ip"] is None
        r = api.put(f"/v2.0/routers/{router}/add_router_interface", {"subnet_id": s["id"]})
        assert_neutron_error(r, 400, "BadRequest", f"Bad router request: Subnet {s['id']} does not have a gateway IP.")
        # a subnet already on another router (router1 of the session world)
        r = api.put(f"/v2.0/routers/{router}/add_router_interface", {"subnet_id": world.subnets["subnet1"]})
        assert_neutron_error(r, 400, "BadRequest", contains="is already attached to router")
        # removing an interface that is not there
        r = api.put(f"/v2.0/routers/{router}/remove_router_interface", {"subnet_id": s["id"]})
        assert_neutron_error(r, 404, "RouterInterfaceNotFoundForSubnet")
        for body in ({}, {"subnet_id": "x"}, {"port_id": s["id"]}):
            r = api.put(f"/v2.0/routers/{router}/add_router_interface", body)
            assert_neutron_error(r, 400)
        # a network that is not external as a gateway; a member's enable_snat
        r = api.put(f"/v2.0/routers/{router}", {"router": {"external_gateway_info": {"network_id": net}}})
        assert_neutron_error(r, 400, "BadRequest", f"Bad router request: Network {net} is not an external network.")
        r = api.put(f"/v2.0/routers/{router}", {"router": {"external_gateway_info": {
            "network_id": net, "enable_snat": False}}})
        assert_neutron_error(r, 403, "PolicyNotAuthorized")
        r = api.put(f"/v2.0/routers/{router}", {"router": {"external_gateway_info": {"foo": 1}}})
        assert_neutron_error(r, 400, "HTTPBadRequest")
    finally:
        assert api.delete(f"/v2.0/routers/{router}").status_code == 204
        assert api.delete(f"/v2.0/networks/{net}").status_code == 204


def test_operator_subnets_have_a_network(api, world):
    """`vpnaas subnet create` puts a gateway's subnets in the gateway's own network."""
    s1 = api.get(f"/v2.0/subnets/{world.subnets['subnet1']}").json()["subnet"]
    s6 = api.get(f"/v2.0/subnets/{world.subnets['subnet6']}").json()["subnet"]
    assert s1["network_id"] == s6["network_id"], (s1, s6)
    net = api.get(f"/v2.0/networks/{s1['network_id']}").json()["network"]
    assert sorted(net["subnets"]) == sorted([s1["id"], s6["id"]]), net
    assert s1["gateway_ip"] == "10.1.0.1"
    assert ipaddress.ip_address(s6["gateway_ip"]) == ipaddress.ip_address("2001:db8:1::1")
    ports = api.get("/v2.0/ports", params={"device_id": world.routers["router1"]}).json()["ports"]
    assert {p["fixed_ips"][0]["subnet_id"] for p in ports} == {s1["id"], s6["id"]}, ports
