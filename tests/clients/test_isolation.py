"""Who may do what: every endpoint x method x caller, with the exact status.

The table covers the Neutron VPN resources (collections and items, GET / POST /
PUT / DELETE), `/v2.0/routers` and `/v2.0/subnets`, `/v2.0/extensions`, the NSX
resources under `/api/v1/vpn/ipsec/` (plus a session's `/state` and
`/status`) and Keystone's `/v3/auth/tokens` introspection, each called by seven
callers: no token, a bad token, an expired token, a member of another project,
a reader of the owning project, a member of the owning project, and an admin.

Rules checked (spec §6, §6.1; ARCHITECTURE.md "Invariants"):
- no / bad / expired token on Neutron: 401 with Keystone's body (as
  keystonemiddleware answers in front of Neutron);
- another project's object is indistinguishable from a missing one, for every
  method, including objects that are in use (a PUT or DELETE of an in-use
  policy would otherwise answer 409 and so confirm that the id exists): same
  status, same error type, same message apart from the id the caller supplied.
  The same holds for a create that names another project's object by id;
- a reader-only token: POST is 403 (`create_<r>` is ADMIN_OR_PROJECT_MEMBER),
  GET/PUT/DELETE of an item 404 (Neutron pretends an object the caller may not
  `get_<r>` does not exist), lists are empty;
- NSX is admin-only: missing/bad/expired credentials 403 error_code 403
  (nsxlib: InvalidCredentials), any non-admin 403 error_code 401;
- every answer carries the API's envelope, and nothing answers 5xx.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from http import HTTPStatus
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import requests

from conftest import HTTP_TIMEOUT, PATHS, PLURALS, assert_neutron_error

IKE, IPSEC, SVC, EPG, CONN = (
    PATHS[k] for k in ("ikepolicy", "ipsecpolicy", "vpnservice", "endpoint_group", "ipsec_site_connection")
)
VPN = "/api/v1/vpn/ipsec"
KEYSTONE_401 = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}
NSX_ERROR_KEYS = {"httpStatus", "error_code", "module_name", "error_message"}

CALLERS = ("none", "bad", "expired", "other", "reader", "member", "admin")
UNAUTHENTICATED = ("none", "bad", "expired")
USER_OF = {"other": "other", "reader": "reader", "member": "demo", "admin": "admin"}

# Rows whose expectation follows the token-introspection policy that is being
# tightened (Keystone's `identity:validate_token` = admin or token subject: a
# non-admin may only inspect its own tokens, anyone else's is 403). Search for
# this name to adjust them.
INTROSPECTION_POLICY = "keystone-introspection-policy"


# --------------------------------------------------------------------------
# callers
# --------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def expired_token(world) -> str:
    """A token of user demo on project demo whose expiry lies in the past.

    The server stores only SHA-256(token) with its expiry (`tokens` table,
    crates/store/migrations/0001_initial.sql). Writing a row with an
    `expires_at` an hour ago simulates the passage of time: it is what a token
    issued a day ago looks like now. A fresh random token is written for each
    use, so the server's 5 s validation cache never holds it, and the row is
    there when the request arrives (issuing tokens prunes expired rows).
    """
    tok = secrets.token_urlsafe(32)
    demo = world.users["demo"]
    now = _now_ms()
    world.server.execute(
        "INSERT INTO tokens (token_hash, user_id, project_id, audit_id, issued_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (hashlib.sha256(tok.encode()).hexdigest(), demo.id, demo.project_id,
         secrets.token_hex(8), now - 25 * 3600 * 1000, now - 3600 * 1000),
    )
    return tok


def caller_headers(api, world, caller: str) -> dict:
    if caller == "none":
        return {}
    if caller == "bad":
        return {"X-Auth-Token": "bad-" + secrets.token_hex(16)}
    if caller == "expired":
        return {"X-Auth-Token": expired_token(world)}
    return {"X-Auth-Token": api.token(USER_OF[caller])}


def call(world, method: str, path: str, headers: dict, body=None, params=None) -> requests.Response:
    h = {"Accept": "application/json", **headers}
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    return requests.request(method, world.url + path, headers=h, data=data, params=params,
                            timeout=HTTP_TIMEOUT)


# --------------------------------------------------------------------------
# envelopes
# --------------------------------------------------------------------------


def where(r: requests.Response) -> str:
    return f"{r.request.method} {r.request.path_url}"


def json_body(r: requests.Response):
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype == "application/json", f"{where(r)}: Content-Type {ctype!r}: {r.text[:300]!r}"
    try:
        return r.json()
    except ValueError:
        raise AssertionError(f"{where(r)}: body is not JSON: {r.text[:300]!r}")


def check_keystone_error(r: requests.Response, status: int) -> dict | None:
    if r.request.method == "HEAD":
        return None
    body = json_body(r)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where(r)}: not Keystone's envelope: {body}"
    err = body["error"]
    assert err.get("code") == status and err.get("title") and err.get("message"), f"{where(r)}: {body}"
    if status == 401:
        assert body == KEYSTONE_401, f"{where(r)}: {body}"
        assert r.headers.get("WWW-Authenticate", "").startswith("Keystone uri="), r.headers
    return body


def check_nsx_error(r: requests.Response, status: int, code: int | None) -> dict:
    body = json_body(r)
    assert isinstance(body, dict) and NSX_ERROR_KEYS <= set(body), f"{where(r)}: not an NSX error: {body}"
    assert r.status_code == status, f"{where(r)}: HTTP {r.status_code}, want {status}"
    # NSX names the status (`FORBIDDEN`, `NOT_FOUND`, ...)
    want = HTTPStatus(status).name
    assert body["httpStatus"] == want, f"{where(r)}: httpStatus {body['httpStatus']!r}, want {want!r}"
    if code is not None:
        assert body["error_code"] == code, f"{where(r)}: error_code {body['error_code']}, want {code}: {body}"
    return body


def masked(r: requests.Response, *ids: str) -> str:
    """The response body with the given ids masked, for comparing answers."""
    text = r.text
    for i in ids:
        if i:
            text = text.replace(i, "<id>")
    return text


# --------------------------------------------------------------------------
# objects
# --------------------------------------------------------------------------


def conn_body(peer: str, svc: str, ike: str, ipsec: str, local: str, remote: str, name="iso-conn") -> dict:
    return {
        "name": name, "vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "local_ep_group_id": local, "peer_ep_group_id": remote,
        "peer_address": peer, "peer_id": peer, "psk": "iso-psk",
    }


class Ctx(dict):
    """Ids of the fixture objects, plus what the rows need to run."""

    api: Any
    world: Any
    nsx: Callable  # nsx(method, path, body=None) as admin
    cleanup: list


def _project_set(api, world, user: str, router: str, subnet: str, peer_net: str, peer: str) -> dict:
    ids: dict = {}
    ids["ike"] = api.create("ikepolicy", {"name": f"iso-ike-{user}"}, user=user)["id"]
    ids["ipsec"] = api.create("ipsecpolicy", {"name": f"iso-ipsec-{user}"}, user=user)["id"]
    ids["svc"] = api.create("vpnservice", {"name": f"iso-svc-{user}", "router_id": world.routers[router]},
                            user=user)["id"]
    ids["epg_local"] = api.create("endpoint_group", {"name": f"iso-local-{user}", "type": "subnet",
                                                     "endpoints": [world.subnets[subnet]]}, user=user)["id"]
    ids["epg_peer"] = api.create("endpoint_group", {"name": f"iso-peer-{user}", "type": "cidr",
                                                    "endpoints": [peer_net]}, user=user)["id"]
    ids["conn"] = api.create("ipsec_site_connection", conn_body(
        peer, ids["svc"], ids["ike"], ids["ipsec"], ids["epg_local"], ids["epg_peer"], name=f"iso-conn-{user}"),
        user=user)["id"]
    return ids


@pytest.fixture(scope="module")
def ctx(api, world):
    c = Ctx()
    c.api, c.world, c.cleanup = api, world, []
    # project demo (member demo, reader reader): every object in use but the connection
    demo = _project_set(api, world, "demo", "router1", "subnet1", "10.70.0.0/24", "172.24.4.71")
    # project other (member other)
    other = _project_set(api, world, "other", "router2", "subnet2", "10.71.0.0/24", "172.24.4.72")
    c.update({k: v for k, v in demo.items()})
    c.update({f"other_{k}": v for k, v in other.items()})

    # NSX objects, made by the admin (project admin)
    admin_headers = {"X-Auth-Token": api.token("admin")}

    def nsx(method, path, body=None):
        return call(world, method, VPN + path, admin_headers, body)

    c.nsx = nsx
    gw = world.server.admin("gateway", "create", "iso-nsx-gw", "--project", "admin",
                            "--external-v4", "172.24.4.73")["id"]
    c["nsx_gw"] = gw

    def mk(seg, body):
        r = nsx("POST", f"/{seg}", body)
        assert r.status_code == 201, f"POST {seg}: {r.status_code} {r.text}"
        return r.json()["id"]

    c["nsx_ike"] = mk("ike-profiles", {"display_name": "iso-nsx-ike"})
    c["nsx_tun"] = mk("tunnel-profiles", {"display_name": "iso-nsx-tun"})
    c["nsx_dpd"] = mk("dpd-profiles", {"display_name": "iso-nsx-dpd"})
    c["nsx_svc"] = mk("services", {"display_name": "iso-nsx-svc", "logical_router_id": gw})
    c["nsx_lep"] = mk("local-endpoints", {"display_name": "iso-nsx-lep", "local_address": "172.24.4.73",
                                          "ipsec_vpn_service_id": {"target_id": c["nsx_svc"]}})
    c["nsx_pep"] = mk("peer-endpoints", {
        "display_name": "iso-nsx-pep", "peer_address": "203.0.113.70", "peer_id": "203.0.113.70",
        "psk": "iso-nsx-psk", "dpd_profile_id": c["nsx_dpd"], "ike_profile_id": c["nsx_ike"],
        "ipsec_tunnel_profile_id": c["nsx_tun"]})
    c["nsx_sess"] = mk("sessions", nsx_session_body(c))
    # a demo token only ever used as the subject of introspection calls
    c["subject"] = api.token_response("demo").headers["X-Subject-Token"]

    yield c

    for kind, oid in reversed(c.cleanup):
        if kind.startswith("nsx:"):
            nsx("DELETE", f"/{kind[4:]}/{oid}")
        else:
            api.remove(kind, oid, user="admin")
    for seg, key in (("sessions", "nsx_sess"), ("peer-endpoints", "nsx_pep"), ("local-endpoints", "nsx_lep"),
                     ("services", "nsx_svc"), ("dpd-profiles", "nsx_dpd"), ("tunnel-profiles", "nsx_tun"),
                     ("ike-profiles", "nsx_ike")):
        r = nsx("DELETE", f"/{seg}/{c[key]}")
        assert r.status_code in (200, 404), r.text
    for prefix, user in (("", "demo"), ("other_", "other")):
        for res, key in (("ipsec_site_connection", "conn"), ("endpoint_group", "epg_local"),
                         ("endpoint_group", "epg_peer"), ("vpnservice", "svc"), ("ipsecpolicy", "ipsec"),
                         ("ikepolicy", "ike")):
            api.remove(res, c[prefix + key], user=user)


def nsx_session_body(c, name="iso-nsx-sess", rules=("10.80.0.0/24", "10.81.0.0/24")) -> dict:
    return {"display_name": name, "resource_type": "PolicyBasedIPSecVPNSession",
            "local_endpoint_id": c["nsx_lep"], "peer_endpoint_id": c["nsx_pep"],
            "policy_rules": [{"sources": [{"subnet": rules[0]}], "destinations": [{"subnet": rules[1]}]}]}


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------


@dataclass
class Expect:
    status: int
    # the 404 (or other error) must equal the answer for a random id in place of `target`
    like_missing: bool = False
    code: int | None = None  # NSX error_code
    type: str | None = None  # Neutron error type
    check: Callable | None = None  # check(ctx, response)
    mark: str | None = None


@dataclass
class Row:
    id: str
    api: str  # neutron | nsx | keystone
    method: str
    path: Callable  # path(ctx, target) -> str
    expect: dict  # caller -> Expect
    target: Callable | None = None  # target(ctx, caller) -> id the URL/body names
    body: Callable | None = None  # body(ctx, target) -> JSON
    created: str | None = None  # cleanup kind of objects a 201 makes
    headers: Callable | None = None  # extra headers(ctx, caller) -> dict
    after: Callable | None = None  # after(ctx, caller, response): extra checks


def list_check(key: str, visible: tuple, hidden: tuple):
    def check(c, r):
        ids = {o["id"] for o in r.json()[key]}
        for k in visible:
            assert c[k] in ids, f"{where(r)}: {k} {c[k]} missing from the list"
        for k in hidden:
            assert c[k] not in ids, f"{where(r)}: {k} {c[k]} listed to a caller who may not see it"
    return check


def has_key(key: str):
    def check(c, r):
        assert key in r.json(), f"{where(r)}: no {key!r} in {r.text[:300]}"
    return check


def neutron_expect(**by_caller) -> dict:
    e = {k: Expect(401) for k in UNAUTHENTICATED}
    e.update(by_caller)
    return e


def nsx_expect(admin: Expect) -> dict:
    e = {k: Expect(403, code=403) for k in UNAUTHENTICATED}
    e.update({k: Expect(403, code=401) for k in ("other", "reader", "member")})
    e["admin"] = admin
    return e


NOT_VISIBLE = Expect(404, like_missing=True)

# (singular, collection path, fixture key, POST body builder, PUT body, member PUT, member DELETE)
NEUTRON = [
    ("ikepolicy", IKE, "ike",
     lambda c: {"name": "iso-new"},
     {"description": "x"}, Expect(409, type="IKEPolicyInUse"), Expect(409, type="IKEPolicyInUse")),
    ("ipsecpolicy", IPSEC, "ipsec",
     lambda c: {"name": "iso-new"},
     {"description": "x"}, Expect(409, type="IPsecPolicyInUse"), Expect(409, type="IPsecPolicyInUse")),
    ("vpnservice", SVC, "svc",
     lambda c: {"name": "iso-new", "router_id": c.world.routers["router1"]},
     {"description": "x"}, Expect(200), Expect(409, type="VPNServiceInUse")),
    ("endpoint_group", EPG, "epg_local",
     lambda c: {"name": "iso-new", "type": "subnet", "endpoints": [c.world.subnets["subnet1"]]},
     {"description": "x"}, Expect(200), Expect(400, type="EndpointGroupInUse")),
    ("ipsec_site_connection", CONN, "conn",
     lambda c: conn_body("172.24.4.79", c["svc"], c["ike"], c["ipsec"], c["epg_local"], c["epg_peer"],
                         name="iso-new"),
     {"description": "x"}, Expect(200), Expect(204)),
]

# What another project's member gets for a POST naming the demo project's objects:
# exactly what it gets for the same body naming ids that exist nowhere.
FOREIGN_POST = {
    "ikepolicy": Expect(201),
    "ipsecpolicy": Expect(201),
    "vpnservice": Expect(404, like_missing=True),  # router_id: demo's router1
    "endpoint_group": Expect(400, like_missing=True, type="NonExistingSubnetInEndpointGroup"),  # demo's subnet
    "ipsec_site_connection": Expect(404, like_missing=True, type="VPNServiceNotFound"),  # demo's service ...
}
FOREIGN_POST_TARGET = {
    "vpnservice": lambda c: c.world.routers["router1"],
    "endpoint_group": lambda c: c.world.subnets["subnet1"],
    "ipsec_site_connection": lambda c: c["svc"],
}


def disposable_conn(c, caller) -> str:
    """A demo connection for a DELETE that may succeed; other callers get the fixture's."""
    if caller not in ("member", "admin"):
        return c["conn"]
    obj = c.api.create("ipsec_site_connection", conn_body(
        "172.24.4.78", c["svc"], c["ike"], c["ipsec"], c["epg_local"], c["epg_peer"], name="iso-disposable"))
    c.cleanup.append(("ipsec_site_connection", obj["id"]))
    return obj["id"]


def build_rows() -> list[Row]:
    rows: list[Row] = []
    for res, path, key, post, put, member_put, member_delete in NEUTRON:
        plural = PLURALS[res]
        other_key = "other_" + key
        rows.append(Row(f"{res}-list", "neutron", "GET", lambda c, t, p=path: p, neutron_expect(
            other=Expect(200, check=list_check(plural, (other_key,), (key,))),
            reader=Expect(200, check=list_check(plural, (), (key, other_key))),
            member=Expect(200, check=list_check(plural, (key,), (other_key,))),
            admin=Expect(200, check=list_check(plural, (key, other_key), ())),
        )))
        rows.append(Row(
            f"{res}-create", "neutron", "POST", lambda c, t, p=path: p, neutron_expect(
                other=FOREIGN_POST[res],
                reader=Expect(403, type="PolicyNotAuthorized"),
                member=Expect(201, check=has_key(res)),
                admin=Expect(201, check=has_key(res)),
            ),
            target=lambda c, caller, r=res: FOREIGN_POST_TARGET[r](c) if r in FOREIGN_POST_TARGET else None,
            body=lambda c, t, r=res, b=post: {r: b(c)},
            created=res,
        ))
        item = lambda c, t, p=path: f"{p}/{t}"  # noqa: E731
        rows.append(Row(f"{res}-show", "neutron", "GET", item, neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE,
            member=Expect(200, check=has_key(res)), admin=Expect(200, check=has_key(res)),
        ), target=lambda c, caller, k=key: c[k]))
        rows.append(Row(f"{res}-update", "neutron", "PUT", item, neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE, member=member_put, admin=member_put,
        ), target=lambda c, caller, k=key: c[k], body=lambda c, t, r=res, b=put: {r: b}))
        rows.append(Row(f"{res}-delete", "neutron", "DELETE", item, neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE, member=member_delete, admin=member_delete,
        ), target=(disposable_conn if res == "ipsec_site_connection" else (lambda c, caller, k=key: c[k]))))
        # an id that exists nowhere: 404 for everyone authenticated, admin included
        for method in ("GET", "PUT", "DELETE"):
            rows.append(Row(f"{res}-{method.lower()}-missing", "neutron", method, item, neutron_expect(
                other=Expect(404), reader=Expect(404), member=Expect(404), admin=Expect(404),
            ), target=lambda c, caller: str(uuid.uuid4()),
                body=(lambda c, t, r=res, b=put: {r: b}) if method == "PUT" else None))

    for res, key, fixture in (("router", "routers", "router1"), ("subnet", "subnets", "subnet1")):
        coll = f"/v2.0/{key}"
        other_fixture = {"router1": "router2", "subnet1": "subnet2"}[fixture]
        attr = "routers" if res == "router" else "subnets"

        def names_check(visible, hidden, attr=attr, key=key):
            def check(c, r):
                ids = {o["id"] for o in r.json()[key]}
                for n in visible:
                    assert getattr(c.world, attr)[n] in ids, f"{where(r)}: {n} not listed"
                for n in hidden:
                    assert getattr(c.world, attr)[n] not in ids, f"{where(r)}: {n} listed"
            return check

        rows.append(Row(f"{res}-list", "neutron", "GET", lambda c, t, p=coll: p, neutron_expect(
            other=Expect(200, check=names_check((other_fixture,), (fixture,))),
            reader=Expect(200, check=names_check((), (fixture, other_fixture))),
            member=Expect(200, check=names_check((fixture,), (other_fixture,))),
            admin=Expect(200, check=names_check((fixture, other_fixture), ())),
        )))
        rows.append(Row(f"{res}-show", "neutron", "GET", lambda c, t, p=coll: f"{p}/{t}", neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE,
            member=Expect(200, check=has_key(res)), admin=Expect(200, check=has_key(res)),
        ), target=lambda c, caller, a=attr, f=fixture: getattr(c.world, a)[f]))

    rows.extend(core_network_rows())

    for path, key in (("/v2.0/extensions", "extensions"), ("/v2.0/extensions/vpnaas", "extension")):
        ok = Expect(200, check=has_key(key))
        rows.append(Row(f"extensions{path[16:].replace('/', '-')}", "neutron", "GET", lambda c, t, p=path: p,
                        neutron_expect(other=ok, reader=ok, member=ok, admin=ok)))

    # ---- NSX
    nsx_segs = [
        ("ike-profiles", "nsx_ike", lambda c: {"display_name": "iso-new"}),
        ("tunnel-profiles", "nsx_tun", lambda c: {"display_name": "iso-new"}),
        ("dpd-profiles", "nsx_dpd", lambda c: {"display_name": "iso-new"}),
        ("services", "nsx_svc", None),  # one service per logical router: no second POST
        ("local-endpoints", "nsx_lep", lambda c: {
            "display_name": "iso-new", "local_address": "172.24.4.73",
            "ipsec_vpn_service_id": {"target_id": c["nsx_svc"]}}),
        ("peer-endpoints", "nsx_pep", lambda c: {
            "display_name": "iso-new", "peer_address": "203.0.113.71", "peer_id": "203.0.113.71", "psk": "k"}),
        ("sessions", "nsx_sess", lambda c: nsx_session_body(c, "iso-new", ("10.82.0.0/24", "10.83.0.0/24"))),
    ]
    for seg, key, post in nsx_segs:
        coll = f"{VPN}/{seg}"
        rows.append(Row(f"nsx-{seg}-list", "nsx", "GET", lambda c, t, p=coll: p,
                        nsx_expect(Expect(200, check=nsx_list_check(key)))))
        if post is not None:
            rows.append(Row(f"nsx-{seg}-create", "nsx", "POST", lambda c, t, p=coll: p,
                            nsx_expect(Expect(201)), body=lambda c, t, b=post: b(c), created="nsx:" + seg))
        item = lambda c, t, p=coll: f"{p}/{t}"  # noqa: E731
        rows.append(Row(f"nsx-{seg}-show", "nsx", "GET", item, nsx_expect(Expect(200)),
                        target=lambda c, caller, k=key: c[k]))
        rows.append(Row(f"nsx-{seg}-update", "nsx", "PUT", item, nsx_expect(Expect(200)),
                        target=lambda c, caller, k=key: c[k],
                        body=lambda c, t, s=seg: c.nsx("GET", f"/{s}/{t}").json()))
        in_use = Expect(200) if seg == "sessions" else Expect(400, code=500030)
        rows.append(Row(f"nsx-{seg}-delete", "nsx", "DELETE", item, nsx_expect(in_use),
                        target=(disposable_session if seg == "sessions" else (lambda c, caller, k=key: c[k]))))
        rows.append(Row(f"nsx-{seg}-show-missing", "nsx", "GET", item, nsx_expect(Expect(404, code=600)),
                        target=lambda c, caller: str(uuid.uuid4())))
    for sub in ("state", "status"):
        for name, key in (("nsx-session", "nsx_sess"), ("neutron-connection", "conn")):
            rows.append(Row(f"nsx-sessions-{sub}-{name}", "nsx", "GET",
                            lambda c, t, s=sub: f"{VPN}/sessions/{t}/{s}", nsx_expect(Expect(200)),
                            target=lambda c, caller, k=key: c[k]))
        rows.append(Row(f"nsx-sessions-{sub}-missing", "nsx", "GET",
                        lambda c, t, s=sub: f"{VPN}/sessions/{t}/{s}", nsx_expect(Expect(404, code=600)),
                        target=lambda c, caller: str(uuid.uuid4())))

    # ---- Keystone token introspection; the subject is a token of user demo
    def subject(c, caller):
        return c["subject"]

    def fresh_subject(c, caller):
        return c.api.token_response("demo").headers["X-Subject-Token"]

    def subject_alive_after_refusal(c, caller, r):
        if r.status_code >= 400:
            h = {"X-Auth-Token": c.api.token("admin"), "X-Subject-Token": r.request.headers["X-Subject-Token"]}
            chk = call(c.world, "HEAD", "/v3/auth/tokens", h)
            assert chk.status_code == 200, f"a refused DELETE revoked the token anyway: {chk.status_code}"

    denied = Expect(403, mark=INTROSPECTION_POLICY)
    for method, ok, target in (("GET", 200, subject), ("HEAD", 200, subject), ("DELETE", 204, fresh_subject)):
        e = {k: Expect(401) for k in UNAUTHENTICATED}
        e.update(other=denied, reader=denied, member=Expect(ok), admin=Expect(ok))
        rows.append(Row(f"tokens-{method.lower()}", "keystone", method, lambda c, t: "/v3/auth/tokens", e,
                        target=target, headers=lambda c, caller, t: {"X-Subject-Token": t},
                        after=subject_alive_after_refusal if method == "DELETE" else None))
    return rows


def network_of(c, subnet: str) -> str:
    """The network of a session subnet (`vpnaas subnet create` made it)."""
    key = "net:" + subnet
    if key not in c:
        r = call(c.world, "GET", f"/v2.0/subnets/{c.world.subnets[subnet]}",
                 {"X-Auth-Token": c.api.token("admin")})
        c[key] = r.json()["subnet"]["network_id"]
    return c[key]


def interface_port_of(c, router: str, subnet: str) -> str:
    """The id of a session router's interface port on a session subnet."""
    key = f"port:{router}:{subnet}"
    if key not in c:
        r = call(c.world, "GET", "/v2.0/ports", {"X-Auth-Token": c.api.token("admin")},
                 params={"device_id": c.world.routers[router], "device_owner": "network:router_interface"})
        ports = [p for p in r.json()["ports"]
                 if p["fixed_ips"][0]["subnet_id"] == c.world.subnets[subnet]]
        assert len(ports) == 1, r.text
        c[key] = ports[0]["id"]
    return c[key]


def core_network_rows() -> list[Row]:
    """The core network API (issue 11): networks, subnet and router writes,
    router interfaces and ports. Project demo's network/subnet/router (in use:
    the ctx fixture's VPN objects use router1 and subnet1) against project
    other's."""
    rows: list[Row] = []

    def ids_check(key, visible, hidden):
        def check(c, r):
            ids = {o["id"] for o in r.json()[key]}
            for f in visible:
                assert f(c) in ids, f"{where(r)}: {f(c)} not listed"
            for f in hidden:
                assert f(c) not in ids, f"{where(r)}: {f(c)} listed to a caller who may not see it"
        return check

    net1, net2 = (lambda c: network_of(c, "subnet1")), (lambda c: network_of(c, "subnet2"))
    port1 = lambda c: interface_port_of(c, "router1", "subnet1")  # noqa: E731
    port2 = lambda c: interface_port_of(c, "router2", "subnet2")  # noqa: E731
    for key, coll, mine, theirs in (("networks", "/v2.0/networks", net1, net2),
                                    ("ports", "/v2.0/ports", port1, port2)):
        rows.append(Row(f"{key[:-1]}-list", "neutron", "GET", lambda c, t, p=coll: p, neutron_expect(
            other=Expect(200, check=ids_check(key, (theirs,), (mine,))),
            reader=Expect(200, check=ids_check(key, (), (mine, theirs))),
            member=Expect(200, check=ids_check(key, (mine,), (theirs,))),
            admin=Expect(200, check=ids_check(key, (mine, theirs), ())),
        )))
    item = {
        "network": lambda c, t: f"/v2.0/networks/{t}",
        "subnet": lambda c, t: f"/v2.0/subnets/{t}",
        "router": lambda c, t: f"/v2.0/routers/{t}",
        "port": lambda c, t: f"/v2.0/ports/{t}",
    }
    target = {
        "network": lambda c, caller: net1(c),
        "subnet": lambda c, caller: c.world.subnets["subnet1"],
        "router": lambda c, caller: c.world.routers["router1"],
        "port": lambda c, caller: port1(c),
    }
    for res in ("network", "port"):
        rows.append(Row(f"{res}-show", "neutron", "GET", item[res], neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE,
            member=Expect(200, check=has_key(res)), admin=Expect(200, check=has_key(res)),
        ), target=target[res]))
    # (resource, method, id suffix, body, what the owner gets)
    writes = [
        ("network", "PUT", "update", {"network": {"description": "x"}}, Expect(200, check=has_key("network"))),
        ("network", "DELETE", "delete", None, Expect(409, type="NetworkInUse")),
        ("subnet", "PUT", "update", {"subnet": {"description": "x"}}, Expect(200, check=has_key("subnet"))),
        ("subnet", "DELETE", "delete", None, Expect(409, type="SubnetInUse")),
        ("router", "PUT", "update", {"router": {"description": "x"}}, Expect(200, check=has_key("router"))),
        ("router", "DELETE", "delete", None, Expect(409, type="RouterInUseByVPNService")),
    ]
    for res, method, op, body, owner in writes:
        rows.append(Row(f"{res}-{op}", "neutron", method, item[res], neutron_expect(
            other=NOT_VISIBLE, reader=NOT_VISIBLE, member=owner, admin=owner,
        ), target=target[res], body=(lambda c, t, b=body: b) if body else None))
    for action, owner in (("add_router_interface", Expect(400, type="BadRequest")),
                          ("remove_router_interface", Expect(409, type="SubnetInUseByEndpointGroup"))):
        rows.append(Row(f"router-{action}", "neutron", "PUT",
                        lambda c, t, a=action: f"/v2.0/routers/{t}/{a}", neutron_expect(
                            other=NOT_VISIBLE, reader=NOT_VISIBLE, member=owner, admin=owner,
                        ), target=target["router"],
                        body=lambda c, t: {"subnet_id": c.world.subnets["subnet1"]}))
    # an id that exists nowhere: 404 for everyone authenticated
    for res, methods in (("network", ("GET", "PUT", "DELETE")), ("port", ("GET",))):
        for method in methods:
            rows.append(Row(f"{res}-{method.lower()}-missing", "neutron", method, item[res], neutron_expect(
                other=Expect(404), reader=Expect(404), member=Expect(404), admin=Expect(404),
            ), target=lambda c, caller: str(uuid.uuid4()),
                body=(lambda c, t, r=res: {r: {"description": "x"}}) if method == "PUT" else None))
    return rows


def nsx_list_check(key: str):
    def check(c, r):
        body = r.json()
        ids = {o["id"] for o in body["results"]}
        assert c[key] in ids, f"{where(r)}: {key} missing from {sorted(ids)}"
        assert body["result_count"] == len(body["results"]) or "cursor" in body, body
    return check


def disposable_session(c, caller) -> str:
    if caller != "admin":
        return c["nsx_sess"]
    r = c.nsx("POST", "/sessions", nsx_session_body(c, "iso-disposable", ("10.84.0.0/24", "10.85.0.0/24")))
    assert r.status_code == 201, r.text
    c.cleanup.append(("nsx:sessions", r.json()["id"]))
    return r.json()["id"]


ROWS = build_rows()
CELLS = [pytest.param(row, caller, id=f"{row.id}-{caller}") for row in ROWS for caller in CALLERS]


def send(c, row: Row, caller: str, target, headers: dict):
    path = row.path(c, target)
    body = row.body(c, target) if row.body else None
    h = dict(headers)
    if row.headers:
        h.update(row.headers(c, caller, target))
    return call(c.world, row.method, path, h, body)


def replace_target(row: Row, target: str, fresh: str) -> Row:
    """The same row with every mention of `target` (in path and body) replaced."""
    def path(c, t):
        return row.path(c, fresh)

    def body(c, t):
        if row.body is None:
            return None
        return json.loads(json.dumps(row.body(c, target)).replace(target, fresh))

    return Row(row.id + "-missing", row.api, row.method, path, row.expect, body=body, headers=row.headers)


@pytest.mark.parametrize("row,caller", CELLS)
def test_access(ctx, api, world, row: Row, caller: str):
    exp: Expect = row.expect[caller]
    target = row.target(ctx, caller) if row.target else None
    headers = caller_headers(api, world, caller)
    r = send(ctx, row, caller, target, headers)
    assert r.status_code < 500, f"{where(r)} as {caller}: HTTP {r.status_code}: {r.text[:500]}"
    tag = f" [{exp.mark}]" if exp.mark else ""
    assert r.status_code == exp.status, (
        f"{where(r)} as {caller}: want {exp.status}, got {r.status_code}{tag}: {r.text[:500]}"
    )

    if r.status_code == 201 and row.created:
        obj = r.json()
        oid = obj["id"] if row.api == "nsx" else obj[row.created]["id"]
        ctx.cleanup.append((row.created, oid))

    # the envelope
    if row.api == "keystone" or (row.api == "neutron" and r.status_code == 401):
        if r.status_code >= 400:
            check_keystone_error(r, r.status_code)
        elif row.method == "GET":
            assert "token" in json_body(r), f"{where(r)}: {r.text[:300]}"
    elif row.api == "neutron":
        if r.status_code >= 400:
            assert_neutron_error(r, exp.status, exp.type)
        elif r.status_code != 204:
            json_body(r)
        else:
            assert r.content == b"", f"{where(r)}: 204 with a body {r.content[:100]!r}"
    else:
        if r.status_code >= 400:
            check_nsx_error(r, exp.status, exp.code)
        elif row.method == "DELETE":
            assert r.content in (b"", b"{}") or isinstance(json_body(r), dict), where(r)
        else:
            assert isinstance(json_body(r), dict), where(r)
    if exp.check:
        exp.check(ctx, r)
    if row.after:
        row.after(ctx, caller, r)

    # another project's object answers exactly like an id that exists nowhere
    if exp.like_missing:
        assert target, row.id
        fresh = str(uuid.uuid4())
        ref = send(ctx, replace_target(row, target, fresh), caller, fresh,
                   caller_headers(api, world, caller))
        assert (ref.status_code, masked(ref, fresh)) == (r.status_code, masked(r, target)), (
            f"{where(r)} as {caller} tells an existing object from a missing one:\n"
            f"  existing: {r.status_code} {r.text[:400]}\n  missing:  {ref.status_code} {ref.text[:400]}"
        )


def test_table_covers_every_caller_and_endpoint():
    assert all(set(row.expect) == set(CALLERS) for row in ROWS)
    ids = {row.id for row in ROWS}
    for res in PLURALS:
        for op in ("list", "create", "show", "update", "delete"):
            assert f"{res}-{op}" in ids
    assert len(CELLS) >= 500, len(CELLS)


# --------------------------------------------------------------------------
# references to another project's objects, filters, a real expired token
# --------------------------------------------------------------------------


def _other_conn(c, **over) -> dict:
    b = conn_body("172.24.4.77", c["other_svc"], c["other_ike"], c["other_ipsec"], c["other_epg_local"],
                  c["other_epg_peer"], name="iso-xref")
    b.update(over)
    return {"ipsec_site_connection": b}


# (id, method, path(ctx), body(ctx) naming the foreign object, foreign id(ctx), user)
XREF = [
    ("svc-on-foreign-router", "POST", lambda c: SVC,
     lambda c: {"vpnservice": {"router_id": c.world.routers["router1"]}}, lambda c: c.world.routers["router1"], "other"),
    ("svc-on-foreign-subnet", "POST", lambda c: SVC,
     lambda c: {"vpnservice": {"router_id": c.world.routers["router2"], "subnet_id": c.world.subnets["subnet1"]}},
     lambda c: c.world.subnets["subnet1"], "other"),
    ("epg-foreign-subnet", "POST", lambda c: EPG,
     lambda c: {"endpoint_group": {"type": "subnet", "endpoints": [c.world.subnets["subnet1"]]}},
     lambda c: c.world.subnets["subnet1"], "other"),
    ("conn-foreign-vpnservice", "POST", lambda c: CONN, lambda c: _other_conn(c, vpnservice_id=c["svc"]),
     lambda c: c["svc"], "other"),
    ("conn-foreign-ikepolicy", "POST", lambda c: CONN, lambda c: _other_conn(c, ikepolicy_id=c["ike"]),
     lambda c: c["ike"], "other"),
    ("conn-foreign-ipsecpolicy", "POST", lambda c: CONN, lambda c: _other_conn(c, ipsecpolicy_id=c["ipsec"]),
     lambda c: c["ipsec"], "other"),
    ("conn-foreign-local-group", "POST", lambda c: CONN,
     lambda c: _other_conn(c, local_ep_group_id=c["epg_local"]), lambda c: c["epg_local"], "other"),
    ("conn-foreign-peer-group", "POST", lambda c: CONN,
     lambda c: _other_conn(c, peer_ep_group_id=c["epg_peer"]), lambda c: c["epg_peer"], "other"),
    ("conn-update-foreign-local-group", "PUT", lambda c: f"{CONN}/{c['other_conn']}",
     lambda c: {"ipsec_site_connection": {"local_ep_group_id": c["epg_local"]}}, lambda c: c["epg_local"], "other"),
    ("conn-update-foreign-peer-group", "PUT", lambda c: f"{CONN}/{c['other_conn']}",
     lambda c: {"ipsec_site_connection": {"peer_ep_group_id": c["epg_peer"]}}, lambda c: c["epg_peer"], "other"),
    # objects the admin made through the NSX API belong to the admin's project
    ("conn-admin-nsx-ike-profile", "POST", lambda c: CONN, lambda c: _other_conn(c, ikepolicy_id=c["nsx_ike"]),
     lambda c: c["nsx_ike"], "other"),
    ("conn-nsx-default-tunnel-profile", "POST", lambda c: CONN,
     lambda c: _other_conn(c, ipsecpolicy_id="8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e02"),
     lambda c: "8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e02", "other"),
    ("conn-admin-nsx-service", "POST", lambda c: CONN, lambda c: _other_conn(c, vpnservice_id=c["nsx_svc"]),
     lambda c: c["nsx_svc"], "other"),
    # the core network API: another project's network, subnet, router
    ("subnet-on-foreign-network", "POST", lambda c: "/v2.0/subnets",
     lambda c: {"subnet": {"network_id": network_of(c, "subnet1"), "cidr": "10.77.0.0/24", "ip_version": 4}},
     lambda c: network_of(c, "subnet1"), "other"),
    ("interface-foreign-subnet", "PUT", lambda c: f"/v2.0/routers/{c.world.routers['router2']}/add_router_interface",
     lambda c: {"subnet_id": c.world.subnets["subnet1"]}, lambda c: c.world.subnets["subnet1"], "other"),
    ("remove-interface-foreign-subnet", "PUT",
     lambda c: f"/v2.0/routers/{c.world.routers['router2']}/remove_router_interface",
     lambda c: {"subnet_id": c.world.subnets["subnet1"]}, lambda c: c.world.subnets["subnet1"], "other"),
]


@pytest.mark.parametrize("case", XREF, ids=[x[0] for x in XREF])
def test_foreign_reference_answers_like_missing(ctx, api, case):
    _, method, path, body, foreign, user = case
    fid = foreign(ctx)
    fresh = str(uuid.uuid4())
    b = body(ctx)
    r = api.request(method, path(ctx), user=user, json_body=b)
    ref = api.request(method, path(ctx), user=user, json_body=json.loads(json.dumps(b).replace(fid, fresh)))
    for resp in (r, ref):
        if resp.status_code == 201:  # must not happen; clean up before failing
            key = next(iter(b))
            ctx.cleanup.append((key, resp.json()[key]["id"]))
    assert r.status_code in (400, 404), f"{method} naming a foreign object: {r.status_code} {r.text[:400]}"
    assert_neutron_error(r, r.status_code)
    assert (ref.status_code, masked(ref, fresh)) == (r.status_code, masked(r, fid)), (
        f"existing: {r.status_code} {r.text[:400]}\nmissing:  {ref.status_code} {ref.text[:400]}"
    )


@pytest.mark.parametrize("user", ["other", "reader"])
def test_filters_and_fields_do_not_widen_the_view(ctx, api, world, user):
    for res, key in (("ikepolicy", "ike"), ("ipsec_site_connection", "conn"), ("vpnservice", "svc")):
        plural = PLURALS[res]
        for params in ([("id", ctx[key])], [("tenant_id", world.projects["demo"])],
                       [("project_id", world.projects["demo"])], [("fields", "id"), ("id", ctx[key])],
                       [("name", f"iso-{key}-demo")]):
            r = api.get(PATHS[res], user=user, params=params)
            assert r.status_code == 200, r.text
            ids = {o.get("id") for o in r.json()[plural]}
            assert ctx[key] not in ids, f"{res} {params} as {user}: {r.text[:300]}"
        # a foreign marker pages like an unknown one
        fresh = str(uuid.uuid4())
        pages = [api.get(PATHS[res], user=user, params={"marker": m, "limit": "1"}) for m in (ctx[key], fresh)]
        assert [p.status_code for p in pages] == [200, 200], [p.text for p in pages]
        assert pages[0].json()[plural] == pages[1].json()[plural], [p.text for p in pages]
        fresh = str(uuid.uuid4())
        r = api.get(f"{PATHS[res]}/{ctx[key]}", user=user, params={"fields": "name"})
        ref = api.get(f"{PATHS[res]}/{fresh}", user=user, params={"fields": "name"})
        assert r.status_code == 404 and masked(r, ctx[key]) == masked(ref, fresh), (r.text, ref.text)


BODY_ERRORS = [
    ("tenant-id-on-put", {"ikepolicy": {"tenant_id": "x"}}),
    ("unknown-attribute", {"ikepolicy": {"foo": 1}}),
    ("bad-lifetime", {"ikepolicy": {"lifetime": {"value": 10}}}),
    ("wrong-resource-key", {"ipsecpolicy": {"name": "x"}}),
    ("valid", {"ikepolicy": {"name": "x"}}),
]


@pytest.mark.parametrize("user", ["other", "reader"])
@pytest.mark.parametrize("body", [b for _, b in BODY_ERRORS], ids=[i for i, _ in BODY_ERRORS])
def test_put_answer_does_not_depend_on_existence(ctx, api, user, body):
    """Whatever the body, a PUT of another project's in-use policy answers like a PUT of a missing id."""
    fresh = str(uuid.uuid4())
    r = api.put(f"{IKE}/{ctx['ike']}", body, user=user)
    ref = api.put(f"{IKE}/{fresh}", body, user=user)
    assert_neutron_error(r, (400, 404))
    assert (r.status_code, masked(r, ctx["ike"])) == (ref.status_code, masked(ref, fresh)), (r.text, ref.text)


def test_create_for_another_project_does_not_tell_projects_apart(ctx, api, world):
    """A member naming another project in `tenant_id` gets the same 400 for a real project as for none."""
    answers = []
    for project in (world.projects["demo"], uuid.uuid4().hex):
        r = api.post(IKE, {"ikepolicy": {"name": "iso-x", "tenant_id": project}}, user="other")
        assert_neutron_error(r, 400)
        answers.append(masked(r, project))
    assert answers[0] == answers[1], answers


def test_really_expired_token_is_refused(api, world):
    """A real token whose expiry passes is refused. Setting `expires_at` into the
    past in the database simulates the passage of time; the token is never used
    before that, so the server's validation cache does not hold it."""
    r = api.token_response("demo")
    assert r.status_code == 201, r.text
    tok = r.headers["X-Subject-Token"]
    n = world.server.execute("UPDATE tokens SET expires_at = ? WHERE token_hash = ?",
                             (_now_ms() - 1000, hashlib.sha256(tok.encode()).hexdigest()))
    assert n == 1, "token row not found by its SHA-256"
    for path in (IKE, "/v2.0/routers", VPN + "/sessions"):
        r = call(world, "GET", path, {"X-Auth-Token": tok})
        if path.startswith(VPN):
            check_nsx_error(r, 403, 403)
            assert r.status_code == 403
        else:
            assert r.status_code == 401, r.text
            check_keystone_error(r, 401)
