"""The whole README flow from the unmodified `openstack` CLI and from openstacksdk,
with no `vpnaas` admin subcommand after bootstrap (issue 11, item 3).

The bootstrap admin makes a project, a member user in it and an external
network with a subnet; the member logs in, builds network + subnet + router
with an external gateway + router interface through the core API, then the VPN
objects on that router, checks what the core API shows of them and the in-use
refusals, and tears everything down in reverse order; the admin then removes
the user and the project.
"""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from conftest import User, cli_ok


def _id(out) -> str:
    assert isinstance(out, dict) and out.get("id"), out
    return out["id"]


@pytest.fixture(scope="module")
def walker(world, cli):
    """A project and a member user made with the openstack CLI as the bootstrap admin."""
    tag = uuid.uuid4().hex[:6]
    project = f"walk-{tag}"
    name = f"walker-{tag}"
    password = "walk-" + uuid.uuid4().hex
    p = cli.ok("project", "create", project, "--description", "made by the CLI", "-f", "json", user="admin")
    u = cli.ok(
        "user", "create", name, "--password", password, "--project", project, "-f", "json", user="admin"
    )
    cli.ok("role", "add", "--project", project, "--user", name, "member", user="admin")
    user = User(name, password, project)
    world.users[name] = user
    yield {"project": _id(p), "project_name": project, "user": _id(u), "name": name, "tag": tag}
    world.users.pop(name, None)


def test_cli_walks_the_whole_flow(world, cli, walker, api):
    me, tag = walker["name"], walker["tag"]
    admin = "admin"

    # Roles: the token of a member lists member and the implied reader.
    assignments = cli.ok(
        "role", "assignment", "list", "--user", me, "--project", walker["project_name"], "--names", "-f", "json",
        user=admin,
    )
    assert [a["Role"] for a in assignments] == ["member"], assignments
    token = cli.ok("token", "issue", "-f", "json", user=me)
    assert token["project_id"] == walker["project"], token

    # The admin's external network, where gateway addresses come from.
    ext = cli.ok("network", "create", f"ext-{tag}", "--external", "-f", "json", user=admin)
    assert ext["router:external"] is True, ext
    ext_sub = cli.ok(
        "subnet", "create", f"ext-sub-{tag}", "--network", ext["id"], "--subnet-range", "203.0.113.0/24",
        "--no-dhcp", "-f", "json", user=admin,
    )

    # The member's network, subnet, router with a gateway and an interface.
    net = cli.ok("network", "create", f"net-{tag}", "-f", "json", user=me)
    assert net["project_id"] == walker["project"] and net["status"] == "ACTIVE", net
    sub = cli.ok(
        "subnet", "create", f"sub-{tag}", "--network", net["id"], "--subnet-range", "10.77.0.0/24",
        "-f", "json", user=me,
    )
    assert sub["cidr"] == "10.77.0.0/24" and sub["gateway_ip"] == "10.77.0.1" and sub["ip_version"] == 4, sub
    overlap = cli.fails(
        "subnet", "create", f"sub2-{tag}", "--network", net["id"], "--subnet-range", "10.77.0.128/25", user=me
    )
    assert "overlaps with another subnet" in overlap.err, overlap.err
    router = cli.ok("router", "create", f"r-{tag}", "-f", "json", user=me)
    cli.ok("router", "set", router["id"], "--external-gateway", ext["id"], user=me)
    cli.ok("router", "add", "subnet", router["id"], sub["id"], user=me)
    shown = cli.ok("router", "show", router["id"], "-f", "json", user=me)
    gw = shown["external_gateway_info"]
    assert gw["network_id"] == ext["id"], shown
    (fixed,) = gw["external_fixed_ips"]
    assert fixed["subnet_id"] == ext_sub["id"], gw
    assert ipaddress.ip_address(fixed["ip_address"]) in ipaddress.ip_network("203.0.113.0/24"), gw
    ports = cli.ok("port", "list", "--router", router["id"], "--long", "-f", "json", user=me)
    interfaces = [p for p in ports if p["Device Owner"] == "network:router_interface"]
    assert len(interfaces) == 1, ports
    assert sub["id"] in str(interfaces[0]["Fixed IP Addresses"]), interfaces

    # The VPN objects on that router.
    # (the VPN commands print display names: "ID", "Status", ...)
    ike = cli.ok("vpn", "ike", "policy", "create", f"ike-{tag}", "--ike-version", "v2", "-f", "json", user=me)
    ipsec = cli.ok("vpn", "ipsec", "policy", "create", f"ipsec-{tag}", "-f", "json", user=me)
    svc = cli.ok("vpn", "service", "create", f"vpn-{tag}", "--router", router["id"], "-f", "json", user=me)
    shown = api.show("vpnservice", svc["ID"], user=me)
    assert shown["external_v4_ip"] == fixed["ip_address"] and shown["router_id"] == router["id"], shown
    local = cli.ok(
        "vpn", "endpoint", "group", "create", f"local-{tag}", "--type", "subnet", "--value", sub["id"],
        "-f", "json", user=me,
    )
    peer = cli.ok(
        "vpn", "endpoint", "group", "create", f"peer-{tag}", "--type", "cidr", "--value", "10.78.0.0/24",
        "-f", "json", user=me,
    )
    conn = cli.ok(
        "vpn", "ipsec", "site", "connection", "create", f"conn-{tag}", "--vpnservice", svc["ID"],
        "--ikepolicy", ike["ID"], "--ipsecpolicy", ipsec["ID"], "--peer-address", "198.51.100.77",
        "--peer-id", "198.51.100.77", "--psk", "walk-psk", "--local-endpoint-group", local["ID"],
        "--peer-endpoint-group", peer["ID"], "-f", "json", user=me,
    )
    assert conn["Status"] == "DOWN", conn  # no node carries this new gateway

    # In use: the router (a VPN service) and its interface (an endpoint group).
    r = cli.fails("router", "delete", router["id"], user=me)
    assert "VPN" in r.err or "in use" in r.err, r.err
    r = cli.fails("router", "remove", "subnet", router["id"], sub["id"], user=me)
    assert "in use" in r.err.lower() or "used" in r.err.lower(), r.err
    # Another project sees none of it.
    for what in (("network", net["id"]), ("subnet", sub["id"]), ("router", router["id"])):
        r = cli.fails(what[0], "show", what[1], user="other")
        assert "No " in r.err or "not found" in r.err.lower() or "could not be found" in r.err.lower(), r.err

    # Teardown in reverse order.
    cli_ok(cli("vpn", "ipsec", "site", "connection", "delete", conn["ID"], user=me))
    for c in cli.many(
        ("vpn", "endpoint", "group", "delete", local["ID"], {"user": me}),
        ("vpn", "endpoint", "group", "delete", peer["ID"], {"user": me}),
        ("vpn", "service", "delete", svc["ID"], {"user": me}),
        ("vpn", "ike", "policy", "delete", ike["ID"], {"user": me}),
        ("vpn", "ipsec", "policy", "delete", ipsec["ID"], {"user": me}),
    ):
        cli_ok(c, "vpn delete")
    cli.ok("router", "remove", "subnet", router["id"], sub["id"], user=me)
    cli.ok("router", "unset", "--external-gateway", router["id"], user=me)
    cli.ok("router", "delete", router["id"], user=me)
    cli.ok("subnet", "delete", sub["id"], user=me)
    cli.ok("network", "delete", net["id"], user=me)
    assert cli.ok("router", "list", "-f", "json", user=me) == []
    # What is left visible to the member: at most the admin's external network.
    assert [n["ID"] for n in cli.ok("network", "list", "-f", "json", user=me)] in ([], [ext["id"]])
    cli.ok("network", "delete", ext["id"], user=admin)

    # The admin removes the user and the project; the user's token stops working.
    cli.ok("user", "delete", me, user=admin)
    r = cli.fails("network", "list", user=me)
    cli.ok("project", "delete", walker["project_name"], user=admin)
    listed = cli.ok("project", "list", "-f", "json", user=admin)
    assert walker["project_name"] not in [p["Name"] for p in listed], listed


def test_sdk_walks_the_whole_flow(world, sdk):
    from openstack import connection

    admin = sdk("admin")
    tag = uuid.uuid4().hex[:6]
    project = admin.identity.create_project(name=f"sdk-walk-{tag}", domain_id="default")
    password = "sdk-" + uuid.uuid4().hex
    user = admin.identity.create_user(
        name=f"sdk-walker-{tag}", password=password, default_project_id=project.id, domain_id="default"
    )
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    assert admin.identity.validate_user_has_project_role(project, user, member)

    ext = admin.network.create_network(name=f"sdk-ext-{tag}", is_router_external=True)
    ext_sub = admin.network.create_subnet(
        network_id=ext.id, cidr="198.18.0.0/24", ip_version=4, name=f"sdk-ext-sub-{tag}", is_dhcp_enabled=False
    )

    me = connection.Connection(
        auth_url=world.auth_url, username=user.name, password=password, project_name=project.name,
        user_domain_name="Default", project_domain_name="Default", identity_api_version="3",
        region_name="RegionOne", interface="public", verify=world.server.ca_file or True,
    )
    try:
        net = me.network.create_network(name=f"sdk-net-{tag}")
        sub = me.network.create_subnet(network_id=net.id, cidr="10.88.0.0/24", ip_version=4, name=f"sdk-sub-{tag}")
        router = me.network.create_router(name=f"sdk-r-{tag}", external_gateway_info={"network_id": ext.id})
        assert router.external_gateway_info["network_id"] == ext.id
        (fixed,) = router.external_gateway_info["external_fixed_ips"]
        assert fixed["subnet_id"] == ext_sub.id
        me.network.add_interface_to_router(router, subnet_id=sub.id)
        ports = list(me.network.ports(device_id=router.id, device_owner="network:router_interface"))
        assert [p.fixed_ips[0]["subnet_id"] for p in ports] == [sub.id]

        svc = me.network.create_vpn_service(name=f"sdk-vpn-{tag}", router_id=router.id)
        assert svc.external_v4_ip == fixed["ip_address"]
        local = me.network.create_vpn_endpoint_group(name=f"sdk-l-{tag}", type="subnet", endpoints=[sub.id])
        peer = me.network.create_vpn_endpoint_group(name=f"sdk-p-{tag}", type="cidr", endpoints=["10.89.0.0/24"])
        ike = me.network.create_vpn_ike_policy(name=f"sdk-ike-{tag}")
        ipsec = me.network.create_vpn_ipsec_policy(name=f"sdk-ipsec-{tag}")
        conn = me.network.create_vpn_ipsec_site_connection(
            name=f"sdk-conn-{tag}", vpnservice_id=svc.id, ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id,
            local_ep_group_id=local.id, peer_ep_group_id=peer.id, peer_address="198.51.100.88",
            peer_id="198.51.100.88", psk="sdk-psk",
        )
        assert conn.status == "DOWN"  # no node carries this new gateway

        me.network.delete_vpn_ipsec_site_connection(conn)
        for obj, rm in (
            (local, me.network.delete_vpn_endpoint_group), (peer, me.network.delete_vpn_endpoint_group),
            (svc, me.network.delete_vpn_service), (ike, me.network.delete_vpn_ike_policy),
            (ipsec, me.network.delete_vpn_ipsec_policy),
        ):
            rm(obj)
        me.network.remove_interface_from_router(router, subnet_id=sub.id)
        me.network.delete_router(router)
        me.network.delete_subnet(sub)
        me.network.delete_network(net)
        assert list(me.network.routers()) == []
    finally:
        me.close()
    admin.network.delete_network(ext)
    admin.identity.delete_user(user)
    admin.identity.delete_project(project)
    assert admin.identity.find_project(project.id) is None
