"""openstacksdk 4.22.0 (the library under the CLI) against the server.

Covers what the CLI cannot (spec §4, §6): lifetime / dpd dicts and partial
updates, `fields`, filters, pagination, sorting (raw), the legacy
subnet-mode VPN service with peer_cidrs, IPv6 connections, and
ExternalNetworkHasNoSubnet on a v4-only gateway.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from openstack import exceptions as sdk_exc

from conftest import PATHS, STATUSES, assert_keys, assert_neutron_error

TAG = "sdk-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def net(sdk):
    return sdk("demo").network


def neutron_error(exc: sdk_exc.HttpException) -> dict:
    body = exc.response.json()
    assert "NeutronError" in body, body
    return body["NeutronError"]


# ------------------------------------------------------------- policies


def test_ike_policy_defaults(net):
    p = net.create_vpn_ike_policy(name=f"{TAG}-defaults")
    try:
        assert p.auth_algorithm == "sha1"
        assert p.encryption_algorithm == "aes-128"
        assert p.phase1_negotiation_mode == "main"
        assert p.ike_version == "v1"
        assert p.pfs == "group5"
        assert p.lifetime == {"units": "seconds", "value": 3600}
        assert p.description == ""
    finally:
        net.delete_vpn_ike_policy(p)


def test_ipsec_policy_defaults(net):
    p = net.create_vpn_ipsec_policy(name=f"{TAG}-defaults")
    try:
        assert p.transform_protocol == "esp"
        assert p.auth_algorithm == "sha1"
        assert p.encryption_algorithm == "aes-128"
        assert p.encapsulation_mode == "tunnel"
        assert p.pfs == "group5"
        assert p.lifetime == {"units": "seconds", "value": 3600}
    finally:
        net.delete_vpn_ipsec_policy(p)


def test_ike_policy_lifetime_partial_update(net):
    p = net.create_vpn_ike_policy(name=f"{TAG}-ike", lifetime={"units": "seconds", "value": 1800})
    try:
        assert p.lifetime == {"units": "seconds", "value": 1800}
        p2 = net.update_vpn_ike_policy(p, lifetime={"value": 900})
        assert p2.lifetime == {"units": "seconds", "value": 900}
        p3 = net.get_vpn_ike_policy(p.id)
        assert p3.lifetime == {"units": "seconds", "value": 900}
        assert p3.name == f"{TAG}-ike"
    finally:
        net.delete_vpn_ike_policy(p)


def test_ipsec_policy_lifetime_partial_update(net):
    p = net.create_vpn_ipsec_policy(
        name=f"{TAG}-ipsec", lifetime={"units": "seconds", "value": 7200}, pfs="group14"
    )
    try:
        assert p.lifetime == {"units": "seconds", "value": 7200}
        p2 = net.update_vpn_ipsec_policy(p, lifetime={"value": 600})
        assert p2.lifetime == {"units": "seconds", "value": 600}
        assert p2.pfs == "group14"
        assert net.get_vpn_ipsec_policy(p.id).lifetime == {"units": "seconds", "value": 600}
    finally:
        net.delete_vpn_ipsec_policy(p)


def test_get_missing_raises_not_found(net):
    missing = str(uuid.uuid4())
    with pytest.raises(sdk_exc.NotFoundException) as ei:
        net.get_vpn_ike_policy(missing)
    assert f"IKEPolicy {missing} could not be found" in str(ei.value)
    with pytest.raises(sdk_exc.NotFoundException) as ei:
        net.find_vpn_ike_policy("nope-" + TAG, ignore_missing=False)
    assert f"No VpnIkePolicy found for nope-{TAG}" in str(ei.value)


# ------------------------------------------- list: fields, filters, pages


@pytest.fixture(scope="module")
def five_policies(net):
    tag = f"{TAG}-page"
    # names deliberately not in creation order
    names = [f"{tag}-c", f"{tag}-a", f"{tag}-e", f"{tag}-b", f"{tag}-d"]
    made = [
        net.create_vpn_ike_policy(name=n, description=tag, auth_algorithm=alg)
        for n, alg in zip(names, ["sha256", "sha1", "sha256", "sha384", "sha1"])
    ]
    yield tag, made
    for p in made:
        net.delete_vpn_ike_policy(p)


def test_fields_returns_only_requested(net, api, five_policies):
    tag, made = five_policies
    target = made[0]
    got = list(net.vpn_ike_policies(fields=["id", "name"], name=target.name))
    assert len(got) == 1, got
    item = got[0]
    assert item.id == target.id and item.name == target.name
    # attributes not requested did not come back
    assert item.auth_algorithm is None and item.lifetime is None and item.pfs is None

    r = api.get(PATHS["ikepolicy"], params=[("fields", "id"), ("fields", "name"), ("description", tag)])
    assert r.status_code == 200, r.text
    items = r.json()["ikepolicies"]
    assert len(items) == 5
    for it in items:
        assert set(it) == {"id", "name"}, it

    # each of tenant_id and project_id comes back alone when only it is requested (as neutron-server 29)
    for f in ("project_id", "tenant_id"):
        r = api.get(PATHS["ikepolicy"], params=[("fields", f), ("description", tag)])
        assert r.status_code == 200, r.text
        for it in r.json()["ikepolicies"]:
            assert set(it) == {f}, it

    # fields also applies to GET member
    r = api.get(f"{PATHS['ikepolicy']}/{target.id}", params=[("fields", "name"), ("fields", "pfs")])
    assert r.status_code == 200, r.text
    assert r.json()["ikepolicy"] == {"name": target.name, "pfs": "group5"}


def test_filters(net, five_policies):
    tag, made = five_policies
    got = list(net.vpn_ike_policies(name=made[2].name))
    assert [p.id for p in got] == [made[2].id]
    got = list(net.vpn_ike_policies(description=tag, auth_algorithm="sha1"))
    assert sorted(p.id for p in got) == sorted([made[1].id, made[4].id])
    assert list(net.vpn_ike_policies(name=f"{tag}-nonexistent")) == []


def test_pagination_limit_2_returns_all(net, five_policies):
    tag, made = five_policies
    got = list(net.vpn_ike_policies(description=tag, limit=2))
    ids = [p.id for p in got]
    assert len(ids) == 5, ids
    assert set(ids) == {p.id for p in made}


def test_pagination_links_raw(api, five_policies):
    tag, made = five_policies
    params = {"description": tag, "limit": "2"}
    pages = []
    seen = []
    for _ in range(10):
        r = api.get(PATHS["ikepolicy"], params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        items = body["ikepolicies"]
        pages.append(len(items))
        seen += [i["id"] for i in items]
        links = {link["rel"]: link["href"] for link in body.get("ikepolicies_links", [])}
        if len(pages) == 2:
            assert "previous" in links, body
        if "next" not in links:
            break
        q = parse_qs(urlsplit(links["next"]).query)
        assert q.get("limit") == ["2"] and q.get("description") == [tag], links["next"]
        assert q.get("marker") == [items[-1]["id"]], links["next"]
        params = {k: v for k, v in q.items()}
    assert pages == [2, 2, 1], pages
    assert sorted(seen) == sorted(p.id for p in made)


def test_sorting_raw(api, five_policies):
    tag, made = five_policies
    names = sorted(p.name for p in made)
    r = api.get(PATHS["ikepolicy"], params={"description": tag, "sort_key": "name", "sort_dir": "desc"})
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["ikepolicies"]] == names[::-1]
    r = api.get(PATHS["ikepolicy"], params={"description": tag, "sort_key": "name", "sort_dir": "asc"})
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["ikepolicies"]] == names
    # sorted + paginated: the pages concatenate to the sorted order
    params = {"description": tag, "sort_key": "name", "sort_dir": "asc", "limit": "3"}
    r = api.get(PATHS["ikepolicy"], params=params)
    first = r.json()["ikepolicies"]
    r = api.get(PATHS["ikepolicy"], params={**params, "marker": first[-1]["id"]})
    second = r.json()["ikepolicies"]
    assert [i["name"] for i in first + second] == names


def test_page_reverse_raw(api, five_policies):
    tag, made = five_policies
    by_name = sorted(made, key=lambda p: p.name)
    base = {"description": tag, "sort_key": "name", "sort_dir": "asc", "limit": "2"}
    # no marker: the last `limit` items
    r = api.get(PATHS["ikepolicy"], params={**base, "page_reverse": "True"})
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["ikepolicies"]] == [p.name for p in by_name[3:]]
    # with a marker: the `limit` items before it
    r = api.get(PATHS["ikepolicy"], params={**base, "page_reverse": "True", "marker": by_name[3].id})
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["ikepolicies"]] == [p.name for p in by_name[1:3]]


# --------------------------------------------------------- VPN services


@pytest.fixture(scope="module")
def policies(net):
    ike = net.create_vpn_ike_policy(name=f"{TAG}-conn-ike")
    ipsec = net.create_vpn_ipsec_policy(name=f"{TAG}-conn-ipsec")
    yield ike, ipsec
    net.delete_vpn_ike_policy(ike)
    net.delete_vpn_ipsec_policy(ipsec)


def test_service_admin_state_filter(net, world):
    a = net.create_vpn_service(name=f"{TAG}-svc-a", router_id=world.routers["router1"], description=f"{TAG}-svcf")
    b = net.create_vpn_service(
        name=f"{TAG}-svc-b", router_id=world.routers["router1"], description=f"{TAG}-svcf", admin_state_up=False
    )
    try:
        assert a.is_admin_state_up is True and b.is_admin_state_up is False
        assert a.status in STATUSES and b.status in STATUSES
        down = list(net.vpn_services(description=f"{TAG}-svcf", is_admin_state_up=False))
        assert [s.id for s in down] == [b.id]
        up = list(net.vpn_services(description=f"{TAG}-svcf", is_admin_state_up=True))
        assert [s.id for s in up] == [a.id]
        by_router = list(net.vpn_services(router_id=world.routers["router1"], name=f"{TAG}-svc-a"))
        assert [s.id for s in by_router] == [a.id]
    finally:
        net.delete_vpn_service(a)
        net.delete_vpn_service(b)


def test_legacy_service_with_peer_cidrs_and_dpd(net, api, world, policies):
    ike, ipsec = policies
    svc = net.create_vpn_service(
        name=f"{TAG}-legacy", router_id=world.routers["router1"], subnet_id=world.subnets["subnet1"]
    )
    conn = None
    try:
        assert svc.subnet_id == world.subnets["subnet1"]
        assert svc.external_v4_ip == "172.24.4.10"
        conn = net.create_vpn_ipsec_site_connection(
            name=f"{TAG}-legacy-conn",
            vpnservice_id=svc.id,
            ikepolicy_id=ike.id,
            ipsecpolicy_id=ipsec.id,
            peer_address="172.24.4.50",
            peer_id="172.24.4.50",
            psk="s3cret",
            peer_cidrs=["10.5.0.0/24"],
            dpd={"action": "restart", "interval": 10, "timeout": 40},
            mtu=1400,
        )
        assert conn.peer_cidrs == ["10.5.0.0/24"]
        assert conn.dpd == {"action": "restart", "interval": 10, "timeout": 40}
        assert conn.mtu == 1400
        assert conn.local_ep_group_id is None and conn.peer_ep_group_id is None
        assert conn.route_mode == "static" and conn.auth_mode == "psk"
        assert conn.status in STATUSES
        raw = api.show("ipsec_site_connection", conn.id)
        assert_keys("ipsec_site_connection", raw)

        settled = api.wait_settled("ipsec_site_connection", conn.id)
        assert settled["status"] == "DOWN", settled

        # partial dpd update keeps action/interval; peer_cidrs replaced as a set
        conn2 = net.update_vpn_ipsec_site_connection(
            conn, dpd={"timeout": 60}, peer_cidrs=["10.5.0.0/24", "10.6.0.0/24"]
        )
        assert conn2.dpd == {"action": "restart", "interval": 10, "timeout": 60}
        assert sorted(conn2.peer_cidrs) == ["10.5.0.0/24", "10.6.0.0/24"]
        stored = net.get_vpn_ipsec_site_connection(conn.id)
        assert stored.dpd == {"action": "restart", "interval": 10, "timeout": 60}
        assert sorted(stored.peer_cidrs) == ["10.5.0.0/24", "10.6.0.0/24"]

        # interval merged with the stored timeout (60): 60 <= 60 -> rejected
        with pytest.raises(sdk_exc.BadRequestException) as ei:
            net.update_vpn_ipsec_site_connection(conn, dpd={"interval": 60})
        err = neutron_error(ei.value)
        assert err["type"] == "IPsecSiteConnectionDpdIntervalValueError", err
        assert err["message"] == "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval"
    finally:
        if conn is not None:
            net.delete_vpn_ipsec_site_connection(conn)
        net.delete_vpn_service(svc)


def test_ipv6_connection(net, api, world, policies):
    ike, ipsec = policies
    svc = net.create_vpn_service(name=f"{TAG}-v6", router_id=world.routers["router1"])
    local = net.create_vpn_endpoint_group(name=f"{TAG}-v6-local", type="subnet", endpoints=[world.subnets["subnet6"]])
    peer = net.create_vpn_endpoint_group(name=f"{TAG}-v6-peer", type="cidr", endpoints=["2001:db8:2::/64"])
    conn = None
    try:
        assert svc.external_v6_ip == "2001:db8:ffff::10"
        assert local.endpoints == [world.subnets["subnet6"]]
        conn = net.create_vpn_ipsec_site_connection(
            name=f"{TAG}-v6-conn",
            vpnservice_id=svc.id,
            ikepolicy_id=ike.id,
            ipsecpolicy_id=ipsec.id,
            peer_address="2001:db8:99::1",
            peer_id="2001:db8:99::1",
            psk="v6secret",
            local_ep_group_id=local.id,
            peer_ep_group_id=peer.id,
        )
        assert conn.peer_address == "2001:db8:99::1"
        assert conn.local_ep_group_id == local.id and conn.peer_ep_group_id == peer.id
        assert conn.peer_cidrs == []
        assert conn.mtu == 1500
        got = net.get_vpn_ipsec_site_connection(conn.id)
        assert got.peer_address == "2001:db8:99::1" and got.psk == "v6secret"
    finally:
        if conn is not None:
            net.delete_vpn_ipsec_site_connection(conn)
        net.delete_vpn_endpoint_group(local)
        net.delete_vpn_endpoint_group(peer)
        net.delete_vpn_service(svc)


def test_ipv6_peer_on_v4_only_gateway_fails(net, world, policies):
    ike, ipsec = policies
    router4 = world.routers["router4"]
    svc = net.create_vpn_service(name=f"{TAG}-v4only", router_id=router4)
    local = net.create_vpn_endpoint_group(name=f"{TAG}-v4only-local", type="subnet", endpoints=[world.subnets["subnet4"]])
    peer = net.create_vpn_endpoint_group(name=f"{TAG}-v4only-peer", type="cidr", endpoints=["10.9.0.0/24"])
    try:
        assert svc.external_v4_ip == "172.24.4.40" and svc.external_v6_ip is None
        with pytest.raises(sdk_exc.BadRequestException) as ei:
            net.create_vpn_ipsec_site_connection(
                name=f"{TAG}-v4only-conn",
                vpnservice_id=svc.id,
                ikepolicy_id=ike.id,
                ipsecpolicy_id=ipsec.id,
                peer_address="2001:db8:99::2",
                peer_id="peer",
                psk="x",
                local_ep_group_id=local.id,
                peer_ep_group_id=peer.id,
            )
        err = neutron_error(ei.value)
        assert err["type"] == "ExternalNetworkHasNoSubnet", err
        assert err["message"] == f"Router's {router4} external network has no IPv6 subnet", err
        assert list(net.vpn_ipsec_site_connections(name=f"{TAG}-v4only-conn")) == []
    finally:
        net.delete_vpn_endpoint_group(local)
        net.delete_vpn_endpoint_group(peer)
        net.delete_vpn_service(svc)


def test_endpoint_group_update_only_name_description(net, api):
    g = net.create_vpn_endpoint_group(name=f"{TAG}-g", type="cidr", endpoints=["10.77.0.0/24"], description="a")
    try:
        g2 = net.update_vpn_endpoint_group(g, name=f"{TAG}-g2", description="b")
        assert g2.name == f"{TAG}-g2" and g2.description == "b"
        assert g2.endpoints == ["10.77.0.0/24"] and g2.type == "cidr"
        r = api.put(f"{PATHS['endpoint_group']}/{g.id}", {"endpoint_group": {"endpoints": ["10.78.0.0/24"]}})
        assert_neutron_error(r, 400, "HTTPBadRequest", "Cannot update read-only attribute endpoints")
    finally:
        net.delete_vpn_endpoint_group(g)
