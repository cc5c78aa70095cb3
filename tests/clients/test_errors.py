"""Bad input over raw HTTP with a valid token.

Every case must answer with the Neutron error envelope
`{"NeutronError": {"type", "message", "detail"}}`, Content-Type
application/json, the HTTP code and `type` of the spec (§2.6, §5, §6, §6.2)
and, where the spec gives it, the exact message. Never a 500.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from conftest import PATHS, assert_neutron_error

BAD_NAME = "err-bad"  # every POST below that must fail uses this name
U1, U2, U3 = (str(uuid.uuid4()) for _ in range(3))  # ids that exist nowhere
IKE, IPSEC, SVC, EPG, CONN = (
    PATHS[k] for k in ("ikepolicy", "ipsecpolicy", "vpnservice", "endpoint_group", "ipsec_site_connection")
)


@pytest.fixture(scope="module")
def ctx(api, world):
    """Objects (project demo) the error cases refer to."""
    made: list[tuple[str, str]] = []

    def mk(resource, body):
        obj = api.create(resource, body)
        made.append((resource, obj["id"]))
        return obj["id"]

    c: dict[str, Any] = {"world": world}
    c["ike_free"] = mk("ikepolicy", {"name": "err-ike-free"})
    c["ipsec_free"] = mk("ipsecpolicy", {"name": "err-ipsec-free"})
    c["ike_used"] = mk("ikepolicy", {"name": "err-ike-used"})
    c["ipsec_used"] = mk("ipsecpolicy", {"name": "err-ipsec-used"})
    c["ipsec_ahesp"] = mk("ipsecpolicy", {"name": "err-ipsec-ahesp", "transform_protocol": "ah-esp"})
    c["svc"] = mk("vpnservice", {"name": "err-svc", "router_id": world.routers["router1"]})
    c["svc_legacy"] = mk(
        "vpnservice",
        {"name": "err-svc-legacy", "router_id": world.routers["router1"], "subnet_id": world.subnets["subnet1"]},
    )
    c["epg_local"] = mk("endpoint_group", {"name": "err-local", "type": "subnet", "endpoints": [world.subnets["subnet1"]]})
    c["epg_local_r4"] = mk("endpoint_group", {"name": "err-local-r4", "type": "subnet", "endpoints": [world.subnets["subnet4"]]})
    c["epg_peer"] = mk("endpoint_group", {"name": "err-peer", "type": "cidr", "endpoints": ["10.20.0.0/24"]})
    c["epg_peer6"] = mk("endpoint_group", {"name": "err-peer6", "type": "cidr", "endpoints": ["2001:db8:20::/64"]})
    c["epg_local6"] = mk("endpoint_group", {"name": "err-local6", "type": "subnet", "endpoints": [world.subnets["subnet6"]]})
    c["epg_peer_mixed"] = mk(
        "endpoint_group", {"name": "err-peer-mixed", "type": "cidr", "endpoints": ["10.21.0.0/24", "2001:db8:21::/64"]}
    )
    c["epg_network"] = mk("endpoint_group", {"name": "err-net", "type": "network", "endpoints": [str(uuid.uuid4())]})
    c["conn"] = mk(
        "ipsec_site_connection",
        {
            "name": "err-conn",
            "vpnservice_id": c["svc"],
            "ikepolicy_id": c["ike_used"],
            "ipsecpolicy_id": c["ipsec_used"],
            "local_ep_group_id": c["epg_local"],
            "peer_ep_group_id": c["epg_peer"],
            "peer_address": "172.24.4.60",
            "peer_id": "172.24.4.60",
            "psk": "errpsk",
        },
    )
    yield c
    for resource, oid in reversed(made):
        api.remove(resource, oid)


def conn_body(c, **over):
    """A valid endpoint-group-mode connection body, with overrides (None deletes a key)."""
    b = {
        "name": BAD_NAME,
        "vpnservice_id": c["svc"],
        "ikepolicy_id": c["ike_free"],
        "ipsecpolicy_id": c["ipsec_free"],
        "local_ep_group_id": c["epg_local"],
        "peer_ep_group_id": c["epg_peer"],
        "peer_address": "172.24.4.61",
        "peer_id": "172.24.4.61",
        "psk": "pw",
    }
    b.update(over)
    return {"ipsec_site_connection": {k: v for k, v in b.items() if v is not None}}


def legacy_body(c, **over):
    b = {
        "name": BAD_NAME,
        "vpnservice_id": c["svc_legacy"],
        "ikepolicy_id": c["ike_free"],
        "ipsecpolicy_id": c["ipsec_free"],
        "peer_cidrs": ["10.30.0.0/24"],
        "peer_address": "172.24.4.62",
        "peer_id": "172.24.4.62",
        "psk": "pw",
    }
    b.update(over)
    return {"ipsec_site_connection": {k: v for k, v in b.items() if v is not None}}


def ike(**kw):
    return lambda c: {"ikepolicy": {"name": BAD_NAME, **kw}}


def epg(**kw):
    return lambda c: {"endpoint_group": {"name": BAD_NAME, **kw}}


def svc(**kw):
    return lambda c: {"vpnservice": {"name": BAD_NAME, "router_id": c["world"].routers["router1"], **kw}}


@dataclass
class Case:
    id: str
    method: str
    path: str | Callable
    body: Any = None  # callable(ctx) -> dict (JSON), or bytes/str (raw), or None
    status: int | tuple = 400
    type: str | tuple | None = None
    message: str | Callable | None = None
    contains: str | Callable | None = None
    params: Any = None


V = "Invalid input for {}. Reason: {}."

CASES = [
    # ---- body parsing (§2.6)
    Case("non-json-body", "POST", IKE, b'{"ikepolicy": {"name": ', 400, "MalformedRequestBody",
         "Malformed request body: Cannot understand JSON."),
    Case("non-json-body-put", "PUT", lambda c: f"{IKE}/{c['ike_free']}", b" ", 400, "MalformedRequestBody",
         "Malformed request body: Cannot understand JSON."),
    Case("empty-body", "POST", IKE, b"", 400, "HTTPBadRequest", "Resource body required"),
    # neutron-server 29 answers an update without a body from its body parser
    Case("empty-body-put", "PUT", lambda c: f"{IKE}/{c['ike_free']}", b"", 400, "BadRequest",
         "Bad body request: Invalid format: b''."),
    Case("empty-object-put", "PUT", lambda c: f"{IKE}/{c['ike_free']}", b"{}", 400, "HTTPBadRequest",
         "Resource body required"),
    Case("foreign-project-on-put", "PUT", lambda c: f"{IKE}/{c['ike_free']}",
         lambda c: {"ikepolicy": {"tenant_id": U3}}, 400, "HTTPBadRequest",
         "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user."),
    Case("own-project-on-put", "PUT", lambda c: f"{IKE}/{c['ike_free']}",
         lambda c: {"ikepolicy": {"project_id": c["world"].projects["demo"]}}, 400, "HTTPBadRequest",
         "Cannot update read-only attribute tenant_id"),
    Case("cidr-group-bare-address", "POST", EPG,
         lambda c: {"endpoint_group": {"name": BAD_NAME, "type": "cidr", "endpoints": ["2000::1"]}}, 400,
         "InvalidEndpointInEndpointGroup", "Endpoint '2000::1' is invalid for group type 'cidr': Invalid CIDR"),
    Case("json-array-body", "POST", IKE, b'[{"ikepolicy": {"name": "err-bad"}}]', 400, "HTTPBadRequest"),
    Case("missing-resource-key", "POST", IKE, lambda c: {"ipsecpolicy": {"name": BAD_NAME}}, 400,
         "HTTPBadRequest", "Unable to find 'ikepolicy' in request body"),
    Case("resource-not-object", "POST", IKE, lambda c: {"ikepolicy": "name"}, 400,
         "HTTPBadRequest", contains="contains invalid data"),
    Case("unknown-attribute", "POST", IKE, ike(foo=1), 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'"),
    Case("readonly-status-on-post", "POST", SVC, svc(status="ACTIVE"), 400, "HTTPBadRequest",
         "Attribute 'status' not allowed in POST"),
    Case("auth-mode-not-allowed-on-post", "POST", CONN, lambda c: conn_body(c, auth_mode="psk"), 400,
         "HTTPBadRequest", "Attribute 'auth_mode' not allowed in POST"),
    Case("put-router-id", "PUT", lambda c: f"{SVC}/{c['svc']}",
         lambda c: {"vpnservice": {"router_id": c["world"].routers["router4"]}}, 400, "HTTPBadRequest",
         "Cannot update read-only attribute router_id"),
    Case("put-vpnservice-id", "PUT", lambda c: f"{CONN}/{c['conn']}",
         lambda c: {"ipsec_site_connection": {"vpnservice_id": c["svc_legacy"]}}, 400, "HTTPBadRequest",
         "Cannot update read-only attribute vpnservice_id"),
    Case("put-endpoint-group-type", "PUT", lambda c: f"{EPG}/{c['epg_peer']}",
         lambda c: {"endpoint_group": {"type": "subnet"}}, 400, "HTTPBadRequest",
         "Cannot update read-only attribute type"),
    Case("missing-required-router", "POST", SVC, lambda c: {"vpnservice": {"name": BAD_NAME}}, 400,
         "HTTPBadRequest", "Failed to parse request. Required attribute 'router_id' not specified"),
    Case("missing-required-psk", "POST", CONN, lambda c: conn_body(c, psk=None), 400, "HTTPBadRequest",
         "Failed to parse request. Required attribute 'psk' not specified"),
    # ---- attribute validators (§6.2)
    Case("name-as-int", "POST", IKE, lambda c: {"ikepolicy": {"name": 5}}, 400, "HTTPBadRequest",
         contains="Invalid input for name. Reason: "),
    Case("description-as-int", "POST", IKE, ike(description=5), 400, "HTTPBadRequest",
         V.format("description", "'5' is not a valid string")),
    Case("name-256-chars", "POST", IKE, lambda c: {"ikepolicy": {"name": "n" * 256}}, 400, "HTTPBadRequest",
         V.format("name", "'" + "n" * 256 + "' exceeds maximum length of 255")),
    Case("admin-state-maybe", "POST", SVC, svc(admin_state_up="maybe"), 400, "InvalidInput",
         "Invalid input for operation: 'maybe' cannot be converted to boolean."),
    Case("mtu-not-integer", "POST", CONN, lambda c: conn_body(c, mtu="x"), 400, "InvalidInput",
         "Invalid input for operation: 'x' is not an integer."),
    Case("mtu-negative", "POST", CONN, lambda c: conn_body(c, mtu=-1), 400, "HTTPBadRequest",
         V.format("mtu", "'-1' should be non-negative")),
    Case("ike-version-foo", "POST", IKE, ike(ike_version="foo"), 400, "HTTPBadRequest",
         V.format("ike_version", "foo is not in valid_values")),
    Case("pfs-group1", "POST", IKE, ike(pfs="group1"), 400, "HTTPBadRequest",
         V.format("pfs", "group1 is not in valid_values")),
    Case("ipsec-auth-md5", "POST", IPSEC, lambda c: {"ipsecpolicy": {"name": BAD_NAME, "auth_algorithm": "md5"}},
         400, "HTTPBadRequest", V.format("auth_algorithm", "md5 is not in valid_values")),
    Case("initiator-bogus", "POST", CONN, lambda c: conn_body(c, initiator="bogus"), 400, "HTTPBadRequest",
         V.format("initiator", "bogus is not in valid_values")),
    Case("lifetime-too-small", "POST", IKE, ike(lifetime={"value": 10}), 400, "HTTPBadRequest",
         V.format("lifetime", "'10' is too small - must be at least '60'")),
    Case("lifetime-bad-units", "POST", IKE, ike(lifetime={"units": "minutes"}), 400, "HTTPBadRequest",
         V.format("lifetime", "minutes is not in valid_values")),
    Case("lifetime-unexpected-key", "POST", IKE, ike(lifetime={"foo": 1}), 400, "HTTPBadRequest",
         V.format("lifetime", "Unexpected keys supplied: foo")),
    Case("lifetime-too-small-on-put", "PUT", lambda c: f"{IPSEC}/{c['ipsec_free']}",
         lambda c: {"ipsecpolicy": {"lifetime": {"value": 59}}}, 400, "HTTPBadRequest",
         V.format("lifetime", "'59' is too small - must be at least '60'")),
    Case("dpd-action-invalid", "POST", CONN, lambda c: conn_body(c, dpd={"action": "x"}), 400, "HTTPBadRequest",
         V.format("dpd", "x is not in valid_values")),
    Case("dpd-interval-negative", "POST", CONN, lambda c: conn_body(c, dpd={"interval": -1}), 400,
         "HTTPBadRequest", V.format("dpd", "'-1' should be non-negative")),
    Case("peer-cidrs-invalid", "POST", CONN, lambda c: legacy_body(c, peer_cidrs=["10.0.0.0/33"]), 400,
         "HTTPBadRequest", V.format("peer_cidrs", "'10.0.0.0/33' is not a valid IP subnet")),
    Case("router-id-not-uuid", "POST", SVC, lambda c: {"vpnservice": {"name": BAD_NAME, "router_id": "abc"}},
         400, "HTTPBadRequest", V.format("router_id", "'abc' is not a valid UUID")),
    Case("endpoint-group-type-bogus", "POST", EPG, epg(type="bogus", endpoints=["10.0.0.0/24"]), 400,
         "HTTPBadRequest", V.format("type", "bogus is not in valid_values")),
    # ---- VPN semantics (§5)
    Case("dpd-timeout-not-above-interval", "POST", CONN,
         lambda c: conn_body(c, dpd={"action": "hold", "interval": 30, "timeout": 30}), 400,
         "IPsecSiteConnectionDpdIntervalValueError",
         "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval"),
    Case("dpd-default-timeout-vs-interval", "POST", CONN, lambda c: conn_body(c, dpd={"interval": 200}), 400,
         "IPsecSiteConnectionDpdIntervalValueError",
         "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval"),
    Case("mtu-too-small-v4", "POST", CONN, lambda c: conn_body(c, mtu=60), 400, "IPsecSiteConnectionMtuError",
         "ipsec_site_connection MTU 60 is too small for ipv4"),
    Case("mtu-too-small-v6", "POST", CONN,
         lambda c: conn_body(c, local_ep_group_id=c["epg_local6"], peer_ep_group_id=c["epg_peer6"],
                             peer_address="2001:db8:99::3", mtu=1000),
         400, "IPsecSiteConnectionMtuError", "ipsec_site_connection MTU 1000 is too small for ipv6"),
    Case("epg-bad-cidr", "POST", EPG, epg(type="cidr", endpoints=["10.0.0.0/33"]), 400,
         "InvalidEndpointInEndpointGroup", "Endpoint '10.0.0.0/33' is invalid for group type 'cidr': Invalid CIDR"),
    Case("epg-subnet-not-uuid", "POST", EPG, epg(type="subnet", endpoints=["abc"]), 400,
         "InvalidEndpointInEndpointGroup", "Endpoint 'abc' is invalid for group type 'subnet': Invalid UUID"),
    Case("epg-duplicate-endpoints", "POST", EPG, epg(type="cidr", endpoints=["10.0.0.0/24", "10.0.0.0/24"]), 400,
         "InvalidEndpointInEndpointGroup",
         "Endpoint '10.0.0.0/24' is invalid for group type 'cidr': Endpoints have to be unique"),
    Case("epg-empty-endpoints", "POST", EPG, epg(type="cidr", endpoints=[]), 400,
         "MissingEndpointForEndpointGroup", contains="No endpoints specified for endpoint group '"),
    Case("epg-unknown-subnet", "POST", EPG, epg(type="subnet", endpoints=[U1]), 400,
         "NonExistingSubnetInEndpointGroup", f"Subnet {U1} in endpoint group does not exist"),
    Case("peer-cidrs-with-endpoint-groups", "POST", CONN, lambda c: conn_body(c, peer_cidrs=["10.40.0.0/24"]),
         400, "PeerCidrsInvalid", "Peer CIDRs cannot be specified, when using endpoint groups"),
    Case("missing-peer-endpoint-group", "POST", CONN, lambda c: conn_body(c, peer_ep_group_id=None), 400,
         "MissingRequiredEndpointGroup", "Missing endpoint group peer for IPSec site-to-site connection"),
    Case("missing-both-endpoint-groups", "POST", CONN,
         lambda c: conn_body(c, peer_ep_group_id=None, local_ep_group_id=None), 400,
         "MissingRequiredEndpointGroup", "Missing endpoint groups local and peer for IPSec site-to-site connection"),
    Case("wrong-local-group-type", "POST", CONN, lambda c: conn_body(c, local_ep_group_id=c["epg_peer6"]), 400,
         # template `Endpoint group %(which)s type is ...`; neutron passes the group id as `which`
         "WrongEndpointGroupType", lambda c: f"Endpoint group {c['epg_peer6']} type is 'cidr' and should be 'subnet'"),
    Case("wrong-peer-group-type", "POST", CONN, lambda c: conn_body(c, peer_ep_group_id=c["epg_network"]), 400,
         "WrongEndpointGroupType", lambda c: f"Endpoint group {c['epg_network']} type is 'network' and should be 'cidr'"),
    Case("vpnservice-flavor-unavailable", "POST", SVC, lambda c: svc(flavor_id=U2)(c), 404,
         ("FlavorsPluginNotLoaded", "NoProviderFoundForFlavor")),
    Case("legacy-missing-peer-cidrs", "POST", CONN, lambda c: legacy_body(c, peer_cidrs=None), 400,
         "MissingPeerCidrs", "Missing peer CIDRs for IPsec site-to-site connection"),
    Case("legacy-with-endpoint-groups", "POST", CONN,
         lambda c: legacy_body(c, local_ep_group_id=c["epg_local"], peer_ep_group_id=c["epg_peer"]), 400,
         "InvalidEndpointGroup",
         "Endpoint groups local and peer cannot be specified, when VPN Service has subnet specified"),
    Case("mixed-peer-cidrs", "POST", CONN, lambda c: legacy_body(c, peer_cidrs=["10.31.0.0/24", "2001:db8:31::/64"]),
         400, "MixedIPVersionsForPeerCidrs",
         "Peer CIDRs do not have the same IP version, as required for IPSec site-to-site connection"),
    Case("mixed-local-v4-peer-v6", "POST", CONN, lambda c: conn_body(c, peer_ep_group_id=c["epg_peer6"]), 400,
         "MixedIPVersionsForIPSecConnection", "IP versions are not compatible between peer and local endpoints"),
    Case("mixed-versions-in-peer-group", "POST", CONN, lambda c: conn_body(c, peer_ep_group_id=c["epg_peer_mixed"]),
         400, "MixedIPVersionsForIPSecEndpoints",
         lambda c: f"Endpoints in group {c['epg_peer_mixed']} do not have the same IP version, "
         "as required for IPSec site-to-site connection"),
    Case("local-subnet-not-on-router", "POST", CONN, lambda c: conn_body(c, local_ep_group_id=c["epg_local_r4"]),
         400, "SubnetIsNotConnectedToRouter",
         lambda c: f"Subnet {c['world'].subnets['subnet4']} is not connected to Router {c['world'].routers['router1']}"),
    Case("service-subnet-not-on-router", "POST", SVC, lambda c: svc(subnet_id=c["world"].subnets["subnet4"])(c),
         400, "SubnetIsNotConnectedToRouter",
         lambda c: f"Subnet {c['world'].subnets['subnet4']} is not connected to Router {c['world'].routers['router1']}"),
    Case("ah-esp-rejected-by-driver", "POST", CONN, lambda c: conn_body(c, ipsecpolicy_id=c["ipsec_ahesp"]), 400,
         "IpsecValidationFailure",
         "IPSec does not support IPsec Policy attribute transform_protocol with value 'ah-esp'"),
    Case("peer-address-unresolvable", "POST", CONN, lambda c: conn_body(c, peer_address="nonexistent.invalid"), 400,
         "VPNPeerAddressNotResolved", "Peer address nonexistent.invalid cannot be resolved"),
    Case("peer-cidrs-with-epgs-on-update", "PUT", lambda c: f"{CONN}/{c['conn']}",
         lambda c: {"ipsec_site_connection": {"peer_cidrs": ["10.50.0.0/24"]}}, 400, "PeerCidrsInvalid",
         "Peer CIDRs cannot be specified, when using endpoint groups"),
    Case("dpd-update-merged-with-stored", "PUT", lambda c: f"{CONN}/{c['conn']}",
         lambda c: {"ipsec_site_connection": {"dpd": {"interval": 120}}}, 400,
         "IPsecSiteConnectionDpdIntervalValueError",
         "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval"),
    # ---- references to missing objects
    Case("unknown-router", "POST", SVC, lambda c: {"vpnservice": {"name": BAD_NAME, "router_id": U1}}, 404,
         contains=U1),
    Case("conn-unknown-vpnservice", "POST", CONN, lambda c: conn_body(c, vpnservice_id=U1), 404,
         "VPNServiceNotFound", f"VPNService {U1} could not be found"),
    Case("conn-unknown-ikepolicy", "POST", CONN, lambda c: conn_body(c, ikepolicy_id=U1), 404,
         "IKEPolicyNotFound", f"IKEPolicy {U1} could not be found"),
    Case("conn-unknown-ipsecpolicy", "POST", CONN, lambda c: conn_body(c, ipsecpolicy_id=U2), 404,
         "IPsecPolicyNotFound", f"IPsecPolicy {U2} could not be found"),
    Case("conn-unknown-peer-group", "POST", CONN, lambda c: conn_body(c, peer_ep_group_id=U3), 404,
         "VPNEndpointGroupNotFound", f"Endpoint group {U3} could not be found"),
    # ---- member URLs of unknown ids
    Case("get-unknown-ikepolicy", "GET", f"{IKE}/{U1}", None, 404, "IKEPolicyNotFound", f"IKEPolicy {U1} could not be found"),
    Case("get-non-uuid-ikepolicy", "GET", f"{IKE}/doesnotexist", None, 404, "IKEPolicyNotFound",
         "IKEPolicy doesnotexist could not be found"),
    Case("get-unknown-ipsecpolicy", "GET", f"{IPSEC}/{U1}", None, 404, "IPsecPolicyNotFound",
         f"IPsecPolicy {U1} could not be found"),
    Case("get-unknown-vpnservice", "GET", f"{SVC}/{U1}", None, 404, "VPNServiceNotFound",
         f"VPNService {U1} could not be found"),
    Case("get-unknown-endpoint-group", "GET", f"{EPG}/{U1}", None, 404, "VPNEndpointGroupNotFound",
         f"Endpoint group {U1} could not be found"),
    Case("get-unknown-connection", "GET", f"{CONN}/{U1}", None, 404, "IPsecSiteConnectionNotFound",
         f"ipsec_site_connection {U1} not found"),
    Case("put-unknown-ipsecpolicy", "PUT", f"{IPSEC}/{U2}", lambda c: {"ipsecpolicy": {"name": "x"}}, 404,
         "IPsecPolicyNotFound", f"IPsecPolicy {U2} could not be found"),
    Case("put-unknown-connection", "PUT", f"{CONN}/{U2}", lambda c: {"ipsec_site_connection": {"name": "x"}}, 404,
         "IPsecSiteConnectionNotFound", f"ipsec_site_connection {U2} not found"),
    Case("delete-unknown-vpnservice", "DELETE", f"{SVC}/{U2}", None, 404, "VPNServiceNotFound",
         f"VPNService {U2} could not be found"),
    Case("delete-unknown-endpoint-group", "DELETE", f"{EPG}/{U2}", None, 404, "VPNEndpointGroupNotFound",
         f"Endpoint group {U2} could not be found"),
    Case("delete-unknown-ikepolicy", "DELETE", f"{IKE}/{U3}", None, 404, "IKEPolicyNotFound",
         f"IKEPolicy {U3} could not be found"),
    # ---- in use
    Case("delete-ikepolicy-in-use", "DELETE", lambda c: f"{IKE}/{c['ike_used']}", None, 409, "IKEPolicyInUse",
         lambda c: f"IKEPolicy {c['ike_used']} is in use by existing IPsecSiteConnection and can't be updated or deleted"),
    Case("put-ikepolicy-in-use", "PUT", lambda c: f"{IKE}/{c['ike_used']}", lambda c: {"ikepolicy": {"pfs": "group14"}},
         409, "IKEPolicyInUse",
         lambda c: f"IKEPolicy {c['ike_used']} is in use by existing IPsecSiteConnection and can't be updated or deleted"),
    Case("delete-ipsecpolicy-in-use", "DELETE", lambda c: f"{IPSEC}/{c['ipsec_used']}", None, 409, "IPsecPolicyInUse",
         lambda c: f"IPsecPolicy {c['ipsec_used']} is in use by existing IPsecSiteConnection and can't be updated or deleted"),
    Case("delete-vpnservice-in-use", "DELETE", lambda c: f"{SVC}/{c['svc']}", None, 409, "VPNServiceInUse",
         lambda c: f"VPNService {c['svc']} is still in use"),
    Case("delete-endpoint-group-in-use", "DELETE", lambda c: f"{EPG}/{c['epg_peer']}", None, 400, "EndpointGroupInUse",
         lambda c: f"Endpoint group {c['epg_peer']} is in use and cannot be deleted"),
    # ---- query parameters (§6)
    Case("limit-negative", "GET", IKE, None, 400, "BadRequest",
         "Bad limit request: Limit must be an integer 0 or greater and not '-1'.", params={"limit": "-1"}),
    Case("limit-not-integer", "GET", IKE, None, 400, "BadRequest",
         "Bad limit request: Limit must be an integer 0 or greater and not 'x'.", params={"limit": "x"}),
    Case("sort-dir-sideways", "GET", IKE, None, 400, "HTTPBadRequest",
         "['sideways'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'",
         params={"sort_key": "name", "sort_dir": "sideways"}),
    Case("sort-key-psk", "GET", CONN, None, 400, "HTTPBadRequest", "['psk'] is invalid attribute for sort_keys",
         params={"sort_key": "psk", "sort_dir": "asc"}),
    Case("sort-key-on-endpoint-groups", "GET", EPG, None, 400, "HTTPBadRequest",
         "['name'] is invalid attribute for sort_keys", params={"sort_key": "name", "sort_dir": "asc"}),
    Case("sort-key-dir-count-mismatch", "GET", IKE, None, 400, "HTTPBadRequest",
         "The number of sort_keys and sort_dirs must be same",
         params=[("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc")]),
    Case("filter-peer-cidrs", "GET", CONN, None, 400, "HTTPBadRequest", "['peer_cidrs'] is invalid attribute for filtering",
         params={"peer_cidrs": "10.0.0.0/24"}),
    Case("filter-lifetime", "GET", IKE, None, 400, "HTTPBadRequest", "['lifetime'] is invalid attribute for filtering",
         params={"lifetime": "3600"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(api, ctx, case: Case):
    path = case.path(ctx) if callable(case.path) else case.path
    body = case.body(ctx) if callable(case.body) else case.body
    kw: dict = {"params": case.params}
    if isinstance(body, (dict, list)):
        kw["data"] = json.dumps(body)
    elif isinstance(body, str):
        kw["data"] = body.encode()
    elif isinstance(body, bytes):
        kw["data"] = body
    if case.method in ("POST", "PUT") and "data" not in kw:
        kw["data"] = b""
    resp = api.request(case.method, path, **kw)
    message = case.message(ctx) if callable(case.message) else case.message
    contains = case.contains(ctx) if callable(case.contains) else case.contains
    assert_neutron_error(resp, case.status, case.type, message, contains)


def test_cases_count():
    assert len(CASES) >= 25


def test_oversized_body(api):
    big = {"ikepolicy": {"name": BAD_NAME, "description": "x" * (1024 * 1024 + 4096)}}
    resp = api.request("POST", IKE, data=json.dumps(big).encode())
    assert_neutron_error(resp, (413, 400))


def test_failed_posts_created_nothing(api, ctx):
    for path, key in (
        (IKE, "ikepolicies"), (IPSEC, "ipsecpolicies"), (SVC, "vpnservices"),
        (EPG, "endpoint_groups"), (CONN, "ipsec_site_connections"),
    ):
        r = api.get(path, params={"name": BAD_NAME})
        assert r.status_code == 200, r.text
        assert r.json()[key] == [], f"a failed POST left an object behind: {r.json()[key]}"


def test_rejected_updates_changed_nothing(api, ctx):
    s = api.show("vpnservice", ctx["svc"])
    assert s["router_id"] == ctx["world"].routers["router1"]
    p = api.show("ikepolicy", ctx["ike_used"])
    assert p["pfs"] == "group5"
    g = api.show("endpoint_group", ctx["epg_peer"])
    assert g["type"] == "cidr" and g["endpoints"] == ["10.20.0.0/24"]
    conn = api.show("ipsec_site_connection", ctx["conn"])
    assert conn["vpnservice_id"] == ctx["svc"]


def test_unknown_marker_gives_empty_page(api, ctx):
    r = api.get(IKE, params={"limit": "2", "marker": U1})
    assert r.status_code == 200, r.text
    assert r.json()["ikepolicies"] == []


def test_query_values_are_converted(api, ctx):
    """Filters are converted like the attribute (admin_state_up=True/true/1)."""
    for v in ("True", "true", "1"):
        r = api.get(SVC, params={"admin_state_up": v, "name": "err-svc"})
        assert r.status_code == 200, r.text
        assert [s["id"] for s in r.json()["vpnservices"]] == [ctx["svc"]], v
    r = api.get(SVC, params={"admin_state_up": "false", "name": "err-svc"})
    assert r.json()["vpnservices"] == []
    # mtu=1500 converted to an int filter
    r = api.get(CONN, params={"mtu": "1500", "name": "err-conn"})
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["ipsec_site_connections"]] == [ctx["conn"]]
    # repeated filter = OR
    r = api.get(IKE, params=[("name", "err-ike-free"), ("name", "err-ike-used")])
    assert sorted(x["id"] for x in r.json()["ikepolicies"]) == sorted([ctx["ike_free"], ctx["ike_used"]])
    # an empty filter value is dropped
    all_ids = {x["id"] for x in api.get(IKE).json()["ikepolicies"]}
    r = api.get(IKE, params={"name": ""})
    assert r.status_code == 200, r.text
    assert {x["id"] for x in r.json()["ikepolicies"]} == all_ids
    # unknown field names are simply absent
    r = api.get(IKE, params=[("fields", "id"), ("fields", "bogus"), ("name", "err-ike-free")])
    assert r.status_code == 200, r.text
    assert r.json()["ikepolicies"] == [{"id": ctx["ike_free"]}]


ENC_ALGS = (
    ["3des", "aes-128", "aes-192", "aes-256"]
    + [f"aes-{b}-{m}-{n}" for m in ("ccm", "gcm") for n in (8, 12, 16) for b in (128, 192, 256)]
    + ["aes-128-ctr", "aes-192-ctr", "aes-256-ctr"]
)
PFS_GROUPS = ["group2", "group5"] + [f"group{i}" for i in range(14, 32)]
AUTH_ALGS = ["sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac"]


def test_all_valid_enum_values_accepted(api):
    """Positive control for the enum cases: every value of §2.1/§2.2 is accepted."""
    made = []
    try:
        for i, enc in enumerate(ENC_ALGS):
            made.append(("ikepolicy", api.create("ikepolicy", {"name": f"enum-{i}", "encryption_algorithm": enc})["id"]))
        for pfs in PFS_GROUPS:
            made.append(("ipsecpolicy", api.create("ipsecpolicy", {"name": "enum", "pfs": pfs})["id"]))
        for alg in AUTH_ALGS:
            made.append(("ikepolicy", api.create("ikepolicy", {"name": "enum", "auth_algorithm": alg})["id"]))
            made.append(("ipsecpolicy", api.create("ipsecpolicy", {"name": "enum", "auth_algorithm": alg})["id"]))
        for tp in ("ah", "ah-esp", "esp"):
            made.append(("ipsecpolicy", api.create("ipsecpolicy", {"name": "enum", "transform_protocol": tp})["id"]))
        p = api.create("ipsecpolicy", {"name": "enum", "encapsulation_mode": "transport", "lifetime": None})
        made.append(("ipsecpolicy", p["id"]))
        assert p["encapsulation_mode"] == "transport"
        assert p["lifetime"] == {"units": "seconds", "value": 3600}, "lifetime null -> defaults"
        p = api.create("ikepolicy", {"name": "enum", "phase1_negotiation_mode": "aggressive", "ike_version": "v2"})
        made.append(("ikepolicy", p["id"]))
        assert p["phase1_negotiation_mode"] == "aggressive" and p["ike_version"] == "v2"
        assert len(ENC_ALGS) == 25 and len(PFS_GROUPS) == 20
    finally:
        for res, oid in made:
            api.remove(res, oid)


def test_connection_edge_values_accepted(api, ctx):
    """mtu 0 skips the MTU check; dpd null -> defaults; each dpd action; FQDN peer resolved;
    a host-bits CIDR like 10.0.0.1/24 is a valid peer cidr (§5, §6.2)."""
    made = []
    try:
        c = api.create("ipsec_site_connection", conn_body(ctx, name="edge-mtu0", mtu=0, dpd=None)["ipsec_site_connection"])
        made.append(c["id"])
        assert c["mtu"] == 0
        assert c["dpd"] == {"action": "hold", "interval": 30, "timeout": 120}
        for action in ("clear", "disabled", "hold", "restart", "restart-by-peer"):
            c = api.create(
                "ipsec_site_connection",
                conn_body(ctx, name="edge-dpd", dpd={"action": action, "interval": 5, "timeout": 6})["ipsec_site_connection"],
            )
            made.append(c["id"])
            assert c["dpd"] == {"action": action, "interval": 5, "timeout": 6}
        c = api.create("ipsec_site_connection", conn_body(ctx, name="edge-fqdn", peer_address="localhost")["ipsec_site_connection"])
        made.append(c["id"])
        assert c["peer_address"] in ("127.0.0.1", "::1"), "FQDN peer_address is stored resolved"
        c = api.create(
            "ipsec_site_connection",
            legacy_body(ctx, name="edge-hostbits", peer_cidrs=["10.0.0.1/24"], initiator="response-only")["ipsec_site_connection"],
        )
        made.append(c["id"])
        assert c["initiator"] == "response-only"
        assert len(c["peer_cidrs"]) == 1
    finally:
        for oid in made:
            api.remove("ipsec_site_connection", oid)
