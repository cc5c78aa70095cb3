"""The NSX Manager IPSec VPN API, driven by the real vmware-nsxlib client.

vmware-nsxlib (pinned in requirements.txt) talks to the real server exactly as
it talks to NSX Manager: session/create, health check, then `nsx.vpn_ipsec`
calls (spec: shared/specs/nsx-vpn-api.md, section 4). Raw `requests` checks
cover what nsxlib does not expose (headers, list envelope and paging,
`included_fields`, PSK hiding) and the cross-view promise: both APIs are views
of one store.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid

import pytest
import requests

from conftest import HTTP_TIMEOUT, PATHS

nsx_v3 = pytest.importorskip("vmware_nsxlib.v3")
from vmware_nsxlib.v3 import exceptions as nsx_exc  # noqa: E402

VPN = "/api/v1/vpn/ipsec"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NSX_ERROR_KEYS = {"httpStatus", "error_code", "module_name", "error_message"}


@pytest.fixture(scope="module")
def nsx_gateway(world) -> str:
    """A gateway (NSX logical router) registered with the admin CLI."""
    return world.server.admin(
        "gateway", "create", "nsx-gw1", "--project", "admin", "--external-v4", "172.24.4.60"
    )["id"]


class Raw:
    """`requests` with HTTP basic auth, as curl users of NSX Manager do."""

    def __init__(self, world, user="admin", password=None):
        self.url = world.url
        self.auth = (user, password if password is not None else world.users[user].password)

    def __call__(self, method, path, body=None, raw=None, **kw):
        headers = {"Accept": "application/json"}
        data = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        return requests.request(
            method, self.url + path, data=data, headers=headers, auth=self.auth,
            timeout=HTTP_TIMEOUT, **kw,
        )


@pytest.fixture(scope="module")
def raw(world) -> Raw:
    return Raw(world)


def assert_nsx_error(r: requests.Response, status: int, code: int | None = None) -> dict:
    where = f"{r.request.method} {r.request.path_url}"
    assert r.status_code == status, f"{where}: want {status}, got {r.status_code}: {r.text[:400]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), where
    body = r.json()
    assert NSX_ERROR_KEYS <= set(body), f"{where}: not an NSX error: {body}"
    if code is not None:
        assert body["error_code"] == code, f"{where}: {body}"
    return body


def assert_request_id(r: requests.Response) -> str:
    rid = r.headers.get("x-nsx-requestid")
    assert rid and UUID_RE.match(rid), f"{r.request.method} {r.request.path_url}: x-nsx-requestid {rid!r}"
    return rid


# ---------------------------------------------------------------------------
# vmware-nsxlib, as in spec section 4
# ---------------------------------------------------------------------------


def test_nsxlib_boot_and_version(nsx):
    assert nsx.get_version().startswith("3.2")


def test_nsxlib_defaults_out_of_the_box(nsx):
    vpn = nsx.vpn_ipsec
    for res, name in (
        (vpn.ike_profile, "nsx-default-l3vpn-ike-profile"),
        (vpn.tunnel_profile, "nsx-default-l3vpn-tunnel-profile"),
        (vpn.dpd_profile, "nsx-default-l3vpn-dpd-profile"),
    ):
        found = res.find_by_display_name(name)
        assert len(found) == 1, name
        assert found[0]["_system_owned"] is True
        with pytest.raises(nsx_exc.ManagerError):
            res.delete(found[0]["id"])
    ike = vpn.ike_profile.find_by_display_name("nsx-default-l3vpn-ike-profile")[0]
    assert (ike["ike_version"], ike["encryption_algorithms"], ike["digest_algorithms"], ike["dh_groups"]) == (
        "IKE_V2", ["AES_128"], ["SHA2_256"], ["GROUP14"])


def test_nsxlib_conformance(nsx, nsx_gateway, api):
    vpn = nsx.vpn_ipsec
    ike = vpn.ike_profile.create(
        "ike1", description="d", encryption_algorithm="AES_128", digest_algorithm="SHA2_256",
        ike_version="IKE_V2", dh_group="GROUP14", sa_life_time=86400, tags=[{"scope": "s", "tag": "t"}])
    assert ike["resource_type"] == "IPSecVPNIKEProfile" and ike["_revision"] == 0
    assert ike["tags"] == [{"scope": "s", "tag": "t"}] and ike["description"] == "d"
    for k in ("_create_time", "_last_modified_time", "_create_user", "_last_modified_user"):
        assert k in ike
    assert ike["_system_owned"] is False and ike["_protection"] == "NOT_PROTECTED"
    tun = vpn.tunnel_profile.create(
        "tun1", encryption_algorithm="AES_GCM_128", digest_algorithm="SHA2_256", pfs=True,
        dh_group="GROUP14", sa_life_time=3600)
    assert tun["resource_type"] == "IPSecVPNTunnelProfile"
    assert tun["enable_perfect_forward_secrecy"] is True and tun["encryption_algorithms"] == ["AES_GCM_128"]
    dpd = vpn.dpd_profile.create("dpd1", enabled=True, timeout=60)
    assert dpd["dpd_probe_interval"] == 60 and dpd["resource_type"] == "IPSecVPNDPDProfile"
    svc = vpn.service.create("svc1", nsx_gateway, enabled=True, ike_log_level="INFO")
    assert svc["logical_router_id"] == nsx_gateway and svc["ike_log_level"] == "INFO"
    lep = vpn.local_endpoint.create("lep1", "1.1.1.1", svc["id"], local_id="1.1.1.1")
    assert lep["ipsec_vpn_service_id"]["target_id"] == svc["id"]
    pep = vpn.peer_endpoint.create(
        "pep1", "2.2.2.2", "2.2.2.2", authentication_mode="PSK", dpd_profile_id=dpd["id"],
        ike_profile_id=ike["id"], ipsec_tunnel_profile_id=tun["id"],
        connection_initiation_mode="INITIATOR", psk="secret")
    assert "psk" not in pep
    rules = [vpn.session.get_rule_obj(["10.0.1.0/24"], ["10.0.2.0/24"])]
    sess = vpn.session.create("sess1", lep["id"], pep["id"], rules)
    assert sess["resource_type"] == "PolicyBasedIPSecVPNSession" and sess["_revision"] == 0
    assert sess["ipsec_vpn_service_id"] == svc["id"]
    rule = sess["policy_rules"][0]
    assert (rule["action"], rule["enabled"], rule["logged"]) == ("PROTECT", True, False) and rule["id"]
    assert [s["id"] for s in vpn.session.list()["results"]] == [sess["id"]]
    assert vpn.ike_profile.find_by_display_name("ike1")[0]["id"] == ike["id"]
    assert vpn.session.get_id_by_name_or_id("sess1") == sess["id"]

    u = vpn.session.update(sess["id"], name="sess1b", enabled=False)
    assert u["_revision"] == 1 and u["display_name"] == "sess1b" and u["enabled"] is False
    assert u["policy_rules"][0]["id"] == rule["id"]
    assert vpn.dpd_profile.update(dpd["id"], timeout=30)["dpd_probe_interval"] == 30
    assert vpn.peer_endpoint.update(pep["id"], psk="s2")["_revision"] == 1
    assert vpn.local_endpoint.update(lep["id"], local_id="3.3.3.3")["local_id"] == "3.3.3.3"
    # The status call never raises in nsxlib (None on any error).
    vpn.session.get_status(sess["id"])

    # A stale _revision is refused with 412 -> StaleRevision.
    body = vpn.session.get(sess["id"])
    body["_revision"] = 0
    with pytest.raises(nsx_exc.StaleRevision):
        nsx.client.update("vpn/ipsec/sessions/" + sess["id"], body=body)
    # Unknown id -> 404 -> ResourceNotFound with NSX's code.
    with pytest.raises(nsx_exc.ResourceNotFound) as e:
        vpn.session.get("does-not-exist")
    assert str(e.value.error_code) == "600"
    # In-use deletes are refused (400/500030 -> ResourceInUse).
    for res, obj in ((vpn.ike_profile, ike), (vpn.tunnel_profile, tun), (vpn.dpd_profile, dpd),
                     (vpn.service, svc), (vpn.local_endpoint, lep), (vpn.peer_endpoint, pep)):
        with pytest.raises(nsx_exc.ResourceInUse):
            res.delete(obj["id"])

    # The changes reached the canonical connection (seen through Neutron, as admin).
    neutron = api.show("ipsec_site_connection", sess["id"], user="admin")
    assert neutron["psk"] == "s2" and neutron["local_id"] == "3.3.3.3"
    assert neutron["dpd"]["interval"] == 30 and neutron["admin_state_up"] is False
    assert neutron["peer_address"] == "2.2.2.2" and neutron["vpnservice_id"] == svc["id"]
    assert neutron["ikepolicy_id"] == ike["id"] and neutron["ipsecpolicy_id"] == tun["id"]

    for res, i in ((vpn.session, sess["id"]), (vpn.peer_endpoint, pep["id"]),
                   (vpn.local_endpoint, lep["id"]), (vpn.service, svc["id"]),
                   (vpn.dpd_profile, dpd["id"]), (vpn.tunnel_profile, tun["id"]),
                   (vpn.ike_profile, ike["id"])):
        res.delete(i)  # nsxlib accepts only 200
    assert vpn.session.list()["results"] == []
    with pytest.raises(nsx_exc.ResourceNotFound):
        vpn.ike_profile.get(ike["id"])


# ---------------------------------------------------------------------------
# raw HTTP: headers, envelope, paging, PSK
# ---------------------------------------------------------------------------


def test_session_create_cookie_and_xsrf(world):
    pw = world.server.admin_password
    r = requests.post(world.url + "/api/session/create",
                      data=f"j_username=admin&j_password={pw}",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert re.match(r"JSESSIONID=[^;]+;", cookie) and "Path=/" in cookie and "HttpOnly" in cookie
    xsrf = r.headers["X-XSRF-TOKEN"]
    jsid = cookie.split(";")[0]
    h = {"Cookie": jsid + ";", "Content-Type": "application/json"}
    g = requests.get(world.url + VPN + "/ike-profiles", headers=h, timeout=HTTP_TIMEOUT)
    assert g.status_code == 200
    p = requests.post(world.url + VPN + "/dpd-profiles", data="{}", headers=h, timeout=HTTP_TIMEOUT)
    assert_nsx_error(p, 403, 98)
    p = requests.post(world.url + VPN + "/dpd-profiles", data='{"display_name": "via-session"}',
                      headers={**h, "X-XSRF-TOKEN": xsrf}, timeout=HTTP_TIMEOUT)
    assert p.status_code == 201, p.text
    assert p.json()["_create_user"] == "admin"
    d = requests.delete(world.url + VPN + "/dpd-profiles/" + p.json()["id"],
                        headers={**h, "X-XSRF-TOKEN": xsrf}, timeout=HTTP_TIMEOUT)
    assert d.status_code == 200
    bad = requests.post(world.url + "/api/session/create", data="j_username=admin&j_password=nope",
                        timeout=HTTP_TIMEOUT)
    assert_nsx_error(bad, 403, 403)
    assert "Date" in bad.headers


def test_auth_errors(world):
    assert_nsx_error(requests.get(world.url + VPN + "/sessions", timeout=HTTP_TIMEOUT), 403, 403)
    assert_nsx_error(Raw(world, "admin", "wrong")("GET", VPN + "/sessions"), 403, 403)
    # NSX calls are admin-scoped: a project member is refused.
    assert_nsx_error(Raw(world, "demo")("GET", VPN + "/sessions"), 403)
    health = requests.get(world.url + "/api/v1/reverse-proxy/node/health", timeout=HTTP_TIMEOUT)
    assert health.status_code == 200 and health.json() == {"healthy": True}


def test_request_ids_and_psk_hiding(raw, nsx_gateway):
    r = raw("POST", VPN + "/dpd-profiles", {"display_name": "rid-dpd"})
    assert r.status_code == 201
    create_rid = assert_request_id(r)
    dpd = r.json()
    r = raw("POST", VPN + "/peer-endpoints", {
        "display_name": "rid-pep", "peer_address": "2.2.2.9", "peer_id": "peer9",
        "psk": "very-secret", "dpd_profile_id": dpd["id"]})
    assert r.status_code == 201, r.text
    assert_request_id(r)
    pep = r.json()
    assert "psk" not in pep and "very-secret" not in r.text
    # Defaults filled in for the profiles not given.
    ike_default = raw("GET", VPN + "/ike-profiles?included_fields=id,display_name").json()["results"]
    assert pep["ike_profile_id"] in [p["id"] for p in ike_default
                                     if p["display_name"] == "nsx-default-l3vpn-ike-profile"]
    got = raw("GET", VPN + "/peer-endpoints/" + pep["id"])
    assert got.status_code == 200 and "psk" not in got.json() and "very-secret" not in got.text
    assert "x-nsx-requestid" not in got.headers  # reads don't write
    listed = raw("GET", VPN + "/peer-endpoints")
    assert "very-secret" not in listed.text
    shown = raw("GET", VPN + "/peer-endpoints/" + pep["id"] + "?action=show-sensitive-data")
    assert shown.json()["psk"] == "very-secret"
    body = got.json()
    body["peer_id"] = "peer9b"
    r = raw("PUT", VPN + "/peer-endpoints/" + pep["id"], body)
    assert r.status_code == 200, r.text
    put_rid = assert_request_id(r)
    assert put_rid != create_rid
    # The key survived a PUT without it.
    shown = raw("GET", VPN + "/peer-endpoints/" + pep["id"] + "?action=show-sensitive-data")
    assert shown.json()["psk"] == "very-secret" and shown.json()["peer_id"] == "peer9b"
    for seg, i in (("peer-endpoints", pep["id"]), ("dpd-profiles", dpd["id"])):
        r = raw("DELETE", f"{VPN}/{seg}/{i}")
        assert r.status_code == 200, r.text
        assert_request_id(r)


def test_list_envelope_paging_and_fields(raw):
    made = []
    for i in range(5):
        r = raw("POST", VPN + "/dpd-profiles", {"display_name": f"page-{i}", "dpd_probe_interval": 10 + i})
        assert r.status_code == 201
        made.append(r.json()["id"])
    try:
        first = raw("GET", VPN + "/dpd-profiles?page_size=2").json()
        assert set(first) >= {"results", "result_count", "cursor", "sort_ascending"}
        total = first["result_count"]
        assert total >= 6 and len(first["results"]) == 2
        seen = [o["id"] for o in first["results"]]
        cursor = first["cursor"]
        pages = 1
        while cursor:
            page = raw("GET", VPN + f"/dpd-profiles?page_size=2&cursor={cursor}").json()
            assert page["result_count"] == total and len(page["results"]) <= 2
            seen += [o["id"] for o in page["results"]]
            cursor = page.get("cursor")
            pages += 1
        assert pages == (total + 1) // 2
        assert len(seen) == total == len(set(seen)) and set(made) <= set(seen)
        r = raw("GET", VPN + "/dpd-profiles?included_fields=id,dpd_probe_interval"
                             "&sort_by=dpd_probe_interval&sort_ascending=false").json()
        assert r["sort_by"] == "dpd_probe_interval" and r["sort_ascending"] is False
        assert all(set(o) == {"id", "dpd_probe_interval"} for o in r["results"])
        values = [o["dpd_probe_interval"] for o in r["results"]]
        assert values == sorted(values, reverse=True)
        assert_nsx_error(raw("GET", VPN + "/dpd-profiles?page_size=-1"), 400, 255)
    finally:
        for i in made:
            raw("DELETE", f"{VPN}/dpd-profiles/{i}")


def test_bad_input_gets_nsx_errors(raw):
    for body in ({"encryption_algorithms": ["AES_512"]}, {"sa_life_time": "long"},
                 {"encryption_algorithms": "AES_128"}, {"display_name": ["x"]}):
        assert_nsx_error(raw("POST", VPN + "/ike-profiles", body), 400, 255)
    assert_nsx_error(raw("POST", VPN + "/ike-profiles", raw="{nope"), 400, 255)
    assert_nsx_error(raw("POST", VPN + "/ike-profiles", raw="[1, 2]"), 400, 255)
    assert_nsx_error(raw("POST", VPN + "/ike-profiles", raw=json.dumps({"x": "y" * (2 << 20)})), 413)
    # A rule across fields: AES-GCM IKE needs IKE_V2.
    assert_nsx_error(raw("POST", VPN + "/ike-profiles",
                         {"encryption_algorithms": ["AES_GCM_128"], "ike_version": "IKE_V1"}), 400, 110001)
    # Unknown references and ids.
    missing = str(uuid.uuid4())
    assert_nsx_error(raw("POST", VPN + "/services", {"logical_router_id": missing}), 404, 600)
    nf = assert_nsx_error(raw("GET", VPN + "/sessions/" + missing), 404, 600)
    assert nf["error_message"] == (f"The requested object : {missing} could not be found. "
                                   "Object identifiers are case sensitive.")
    assert nf["httpStatus"] == "NOT_FOUND" and nf["module_name"] == "common-services"
    stale = assert_nsx_error(raw("PUT", VPN + "/dpd-profiles/" + missing, {"_revision": 0}), 404, 600)
    assert stale["error_message"].startswith("The requested object")


def test_put_requires_current_revision(raw):
    r = raw("POST", VPN + "/dpd-profiles", {"display_name": "rev"})
    obj = r.json()
    path = VPN + "/dpd-profiles/" + obj["id"]
    no_rev = dict(obj)
    del no_rev["_revision"]
    body = assert_nsx_error(raw("PUT", path, no_rev), 412, 206)
    assert body == {"httpStatus": "PRECONDITION_FAILED", "error_code": 206,
                    "module_name": "common-services",
                    "error_message": "The object was modified by somebody else. Please retry."}
    obj["retry_count"] = 7
    r = raw("PUT", path, obj)
    assert r.status_code == 200 and r.json()["_revision"] == 1 and r.json()["retry_count"] == 7
    assert_nsx_error(raw("PUT", path, obj), 412, 206)
    assert raw("DELETE", path).status_code == 200


# ---------------------------------------------------------------------------
# one store, two views
# ---------------------------------------------------------------------------


def test_nsx_ike_profile_in_neutron_list(raw, api):
    r = raw("POST", VPN + "/ike-profiles", {"display_name": "cross-ike", "encryption_algorithms": ["AES_256"],
                                            "digest_algorithms": ["SHA2_384"], "dh_groups": ["GROUP19"]})
    ike = r.json()
    try:
        listed = api.get(PATHS["ikepolicy"], user="admin").json()["ikepolicies"]
        mine = [p for p in listed if p["id"] == ike["id"]]
        assert len(mine) == 1, listed
        p = mine[0]
        assert (p["name"], p["encryption_algorithm"], p["auth_algorithm"], p["pfs"], p["ike_version"]) == (
            "cross-ike", "aes-256", "sha384", "group19", "v2")
        assert p["lifetime"] == {"units": "seconds", "value": 86400}
        # Not another project's business.
        demo = api.get(PATHS["ikepolicy"], user="demo").json()["ikepolicies"]
        assert ike["id"] not in [x["id"] for x in demo]
    finally:
        raw("DELETE", VPN + "/ike-profiles/" + ike["id"])


def test_neutron_connection_readable_as_nsx_session(raw, api, world):
    ike = api.create("ikepolicy", {"name": "x-ike", "ike_version": "v2", "auth_algorithm": "sha256"})
    ipsec = api.create("ipsecpolicy", {"name": "x-ipsec", "encryption_algorithm": "3des"})
    svc = api.create("vpnservice", {"name": "x-svc", "router_id": world.routers["router1"]})
    local = api.create("endpoint_group", {"name": "x-local", "type": "subnet",
                                          "endpoints": [world.subnets["subnet1"]]})
    peer = api.create("endpoint_group", {"name": "x-peer", "type": "cidr", "endpoints": ["10.77.0.0/24"]})
    conn = api.create("ipsec_site_connection", {
        "name": "x-conn", "peer_address": "198.51.100.7", "peer_id": "198.51.100.7", "psk": "neutron-psk",
        "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"], "ipsecpolicy_id": ipsec["id"],
        "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"]})
    try:
        r = raw("GET", VPN + "/sessions/" + conn["id"])
        assert r.status_code == 200, r.text
        s = r.json()
        assert s["resource_type"] == "PolicyBasedIPSecVPNSession" and s["display_name"] == "x-conn"
        assert s["ipsec_vpn_service_id"] == svc["id"] and s["enabled"] is True
        # NSX requires both; a Neutron connection names the views derived from it.
        assert s["local_endpoint_id"] == conn["id"] and s["peer_endpoint_id"] == conn["id"]
        assert s["policy_rules"][0]["sources"] == [{"subnet": "10.1.0.0/24"}]
        assert s["policy_rules"][0]["destinations"] == [{"subnet": "10.77.0.0/24"}]
        assert "neutron-psk" not in r.text
        assert conn["id"] in [x["id"] for x in raw("GET", VPN + "/sessions").json()["results"]]
        # The Neutron policies show through NSX, without what NSX can't name (3DES).
        tp = raw("GET", VPN + "/tunnel-profiles/" + ipsec["id"]).json()
        assert tp["encryption_algorithms"] == [] and tp["digest_algorithms"] == ["SHA1"]
        ip = raw("GET", VPN + "/ike-profiles/" + ike["id"]).json()
        assert ip["ike_version"] == "IKE_V2" and ip["digest_algorithms"] == ["SHA2_256"]
        # A PUT of what GET showed changes only what it says (here: the name).
        s["display_name"] = "x-conn-renamed"
        r = raw("PUT", VPN + "/sessions/" + conn["id"], s)
        assert r.status_code == 200, r.text
        after = api.show("ipsec_site_connection", conn["id"])
        assert after["name"] == "x-conn-renamed" and after["psk"] == "neutron-psk"
        assert after["local_ep_group_id"] == local["id"] and after["peer_ep_group_id"] == peer["id"]
        # A Neutron policy in use is in use for NSX too.
        assert_nsx_error(raw("DELETE", VPN + "/tunnel-profiles/" + ipsec["id"]), 400, 500030)
    finally:
        api.remove("ipsec_site_connection", conn["id"])
        for res, obj in (("endpoint_group", local), ("endpoint_group", peer), ("vpnservice", svc),
                         ("ipsecpolicy", ipsec), ("ikepolicy", ike)):
            api.remove(res, obj["id"])


def test_neutron_connection_through_nsxlib(nsx, raw, api, world):
    """nsxlib reads, lists and updates a connection made through Neutron, and
    reads the local and peer endpoints its session names."""
    vpn = nsx.vpn_ipsec
    ike = api.create("ikepolicy", {"name": "nl-ike"})
    ipsec = api.create("ipsecpolicy", {"name": "nl-ipsec"})
    svc = api.create("vpnservice", {"name": "nl-svc", "router_id": world.routers["router1"]})
    local = api.create("endpoint_group", {"name": "nl-local", "type": "subnet",
                                          "endpoints": [world.subnets["subnet1"]]})
    peer = api.create("endpoint_group", {"name": "nl-peer", "type": "cidr", "endpoints": ["10.78.0.0/24"]})
    conn = api.create("ipsec_site_connection", {
        "name": "nl-conn", "peer_address": "198.51.100.8", "peer_id": "peer-nl", "psk": "nl-psk",
        "initiator": "response-only", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"],
        "ipsecpolicy_id": ipsec["id"], "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"]})
    try:
        s = vpn.session.get(conn["id"])
        assert s["local_endpoint_id"] == conn["id"] and s["peer_endpoint_id"] == conn["id"]
        listed = [x for x in vpn.session.list()["results"] if x["id"] == conn["id"]]
        assert len(listed) == 1 and listed[0]["local_endpoint_id"] == conn["id"]
        assert all("local_endpoint_id" in x and "peer_endpoint_id" in x for x in vpn.session.list()["results"])

        lep = vpn.local_endpoint.get(s["local_endpoint_id"])
        assert lep["resource_type"] == "IPSecVPNLocalEndpoint" and lep["id"] == conn["id"]
        assert lep["ipsec_vpn_service_id"]["target_id"] == svc["id"]
        assert ipaddress.ip_address(lep["local_address"]).version == 4
        assert lep["local_id"] == lep["local_address"]
        pep = vpn.peer_endpoint.get(s["peer_endpoint_id"])
        assert pep["resource_type"] == "IPSecVPNPeerEndpoint" and pep["id"] == conn["id"]
        assert (pep["peer_address"], pep["peer_id"], pep["connection_initiation_mode"]) == (
            "198.51.100.8", "peer-nl", "RESPOND_ONLY")
        assert pep["ike_profile_id"] == ike["id"] and pep["ipsec_tunnel_profile_id"] == ipsec["id"]
        # DPD is the connection's own settings, not a profile; the key is never shown.
        assert "dpd_profile_id" not in pep and "psk" not in pep
        # Views, not objects: not listed.
        assert conn["id"] not in [x["id"] for x in vpn.peer_endpoint.list()["results"]]
        assert conn["id"] not in [x["id"] for x in vpn.local_endpoint.list()["results"]]

        # nsxlib's update: GET, change, PUT the whole body back (endpoint ids included).
        vpn.session.update(conn["id"], name="nl-renamed", enabled=False)
        after = api.show("ipsec_site_connection", conn["id"])
        assert after["name"] == "nl-renamed" and after["admin_state_up"] is False
        assert after["psk"] == "nl-psk" and after["peer_address"] == "198.51.100.8"
        assert after["local_ep_group_id"] == local["id"] and after["peer_ep_group_id"] == peer["id"]
        s = vpn.session.get(conn["id"])
        assert s["enabled"] is False and s["peer_endpoint_id"] == conn["id"]
        # Naming other endpoints is a change only Neutron can make.
        s["peer_endpoint_id"] = str(uuid.uuid4())
        assert_nsx_error(raw("PUT", VPN + "/sessions/" + conn["id"], s), 400)
    finally:
        api.remove("ipsec_site_connection", conn["id"])
        for res, obj in (("endpoint_group", local), ("endpoint_group", peer), ("vpnservice", svc),
                         ("ipsecpolicy", ipsec), ("ikepolicy", ike)):
            api.remove(res, obj["id"])


def test_nsx_session_visible_in_neutron(raw, api, nsx_gateway):
    svc = raw("POST", VPN + "/services", {"display_name": "v-svc", "logical_router_id": nsx_gateway}).json()
    lep = raw("POST", VPN + "/local-endpoints", {"display_name": "v-lep", "local_address": "172.24.4.60",
                                                 "ipsec_vpn_service_id": {"target_id": svc["id"]}}).json()
    pep = raw("POST", VPN + "/peer-endpoints", {"display_name": "v-pep", "peer_address": "203.0.113.5",
                                                "peer_id": "peer.example", "psk": "k1",
                                                "connection_initiation_mode": "RESPOND_ONLY"}).json()
    r = raw("POST", VPN + "/sessions", {
        "display_name": "v-sess", "resource_type": "PolicyBasedIPSecVPNSession",
        "local_endpoint_id": lep["id"], "peer_endpoint_id": pep["id"],
        "policy_rules": [{"sources": [{"subnet": "10.5.0.0/24"}], "destinations": [{"subnet": "10.6.0.0/24"}]}]})
    assert r.status_code == 201, r.text
    sess = r.json()
    try:
        c = api.show("ipsec_site_connection", sess["id"], user="admin")
        assert c["name"] == "v-sess" and c["peer_address"] == "203.0.113.5" and c["peer_id"] == "peer.example"
        assert c["initiator"] == "response-only" and c["vpnservice_id"] == svc["id"]
        assert c["local_id"] == "172.24.4.60"
        # IPv6 rules against IPv4 rules: the canonical (model) rule refuses.
        body = raw("GET", VPN + "/sessions/" + sess["id"]).json()
        body["policy_rules"][0]["destinations"] = [{"subnet": "2001:db8:9::/64"}]
        assert_nsx_error(raw("PUT", VPN + "/sessions/" + sess["id"], body), 400, 110001)
    finally:
        for seg, i in (("sessions", sess["id"]), ("peer-endpoints", pep["id"]),
                       ("local-endpoints", lep["id"]), ("services", svc["id"])):
            assert raw("DELETE", f"{VPN}/{seg}/{i}").status_code == 200
