"""Keystone v3 subset, version discovery, authentication failures and
tenant isolation (spec §3, §5 401 bodies, §6 project scoping, §6.1 policy)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests

from conftest import PATHS, User, assert_neutron_error, cli_failed, cli_ok, password_auth_body

KEYSTONE_401 = "The request you have made requires authentication."


# ------------------------------------------------------------ discovery


def test_identity_version_document(world):
    r = requests.get(world.auth_url, headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    assert v["id"].startswith("v3"), v
    assert v["status"] == "stable"
    assert any(link["rel"] == "self" for link in v["links"]), v


def test_network_version_document(world):
    r = requests.get(world.url + "/", headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    versions = r.json()["versions"]
    assert any(v["id"] == "v2.0" and v["status"] == "CURRENT" for v in versions), versions


# ---------------------------------------------------------------- tokens


def test_password_token_has_catalog(api, world):
    r = api.token_response("demo")
    assert r.status_code == 201, r.text
    assert r.headers.get("X-Subject-Token"), r.headers
    tok = r.json()["token"]
    assert tok["methods"] == ["password"]
    assert tok["user"]["name"] == "demo"
    assert tok["user"]["domain"]["name"] == "Default"
    assert tok["project"]["name"] == "demo"
    assert tok["project"]["id"] == world.projects["demo"]
    assert "member" in {role["name"] for role in tok["roles"]}
    expires = dt.datetime.fromisoformat(tok["expires_at"].replace("Z", "+00:00"))
    assert expires > dt.datetime.now(dt.timezone.utc), tok["expires_at"]
    endpoints = {
        (svc["type"], ep["interface"], ep["region_id"]): ep["url"]
        for svc in tok["catalog"]
        for ep in svc["endpoints"]
    }
    assert endpoints.get(("network", "public", "RegionOne")) == world.url, endpoints
    assert endpoints.get(("identity", "public", "RegionOne"), "").rstrip("/") == world.auth_url, endpoints


def test_admin_token_has_admin_role(api, world):
    tok = api.token_body("admin")["token"]
    assert tok["project"]["name"] == "admin"
    assert "admin" in {role["name"] for role in tok["roles"]}


@pytest.mark.parametrize(
    "who",
    [
        User("demo", "wrong-password", "demo"),
        User("nosuchuser", "secret", "demo"),
        User("demo", "secret", "other"),  # not a member of that project
    ],
    ids=["wrong-password", "unknown-user", "foreign-project"],
)
def test_bad_credentials_401(api, who):
    r = api.token_response(who)
    assert r.status_code == 401, f"{r.status_code} {r.text}"
    assert "X-Subject-Token" not in r.headers
    body = r.json()
    assert body["error"]["code"] == 401, body


def test_cli_wrong_password_fails(cli):
    r = cli.fails("vpn", "ike", "policy", "list", "-f", "json", user="demo", password="wrong")
    assert "401" in r.err or "authentication" in r.err.lower(), r.err


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Auth-Token": "bogus-" + uuid.uuid4().hex}, {"X-Auth-Token": ""}],
    ids=["no-token", "bogus-token", "empty-token"],
)
@pytest.mark.parametrize("path", [PATHS["ikepolicy"], PATHS["ipsec_site_connection"] + "/" + str(uuid.uuid4())])
def test_unauthenticated_network_request_401(world, headers, path):
    h = {"Accept": "application/json", **headers}
    r = requests.get(world.url + path, headers=h, timeout=10)
    assert r.status_code == 401, f"{r.status_code} {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json")
    body = r.json()
    assert body == {"error": {"code": 401, "title": "Unauthorized", "message": KEYSTONE_401}}, body
    assert r.headers.get("WWW-Authenticate", "").startswith("Keystone uri="), r.headers


def test_unauthenticated_write_401(world):
    r = requests.post(
        world.url + PATHS["ikepolicy"],
        json={"ikepolicy": {"name": "x"}},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == 401


# ------------------------------------------------------- tenant isolation


@pytest.fixture(scope="module")
def demo_objs(api, world):
    ike = api.create("ikepolicy", {"name": "iso-ike", "description": "isolation"})
    svc = api.create("vpnservice", {"name": "iso-svc", "router_id": world.routers["router1"]})
    other_ike = api.create("ikepolicy", {"name": "iso-other-ike", "description": "isolation"}, user="other")
    yield {"ike": ike, "svc": svc, "other_ike": other_ike}
    api.remove("vpnservice", svc["id"])
    api.remove("ikepolicy", ike["id"])
    api.remove("ikepolicy", other_ike["id"], user="other")


def test_other_cannot_see_or_touch_demo_objects_raw(api, demo_objs):
    ike_id = demo_objs["ike"]["id"]
    svc_id = demo_objs["svc"]["id"]
    r = api.get(PATHS["ikepolicy"], user="other")
    assert r.status_code == 200
    ids = {p["id"] for p in r.json()["ikepolicies"]}
    assert ike_id not in ids and demo_objs["other_ike"]["id"] in ids
    r = api.get(PATHS["vpnservice"], user="other")
    assert svc_id not in {s["id"] for s in r.json()["vpnservices"]}
    # same answer as for an object that does not exist
    # (§6: other projects' ids -> 404 NotFound, as for nonexistent ids; §5 allows
    # the generic HTTPNotFound of the policy layer for PUT/DELETE)
    ike_nf = ("IKEPolicyNotFound", "HTTPNotFound")
    svc_nf = ("VPNServiceNotFound", "HTTPNotFound")
    r = api.get(f"{PATHS['ikepolicy']}/{ike_id}", user="other")
    assert_neutron_error(r, 404, ike_nf)
    r = api.put(f"{PATHS['ikepolicy']}/{ike_id}", {"ikepolicy": {"name": "stolen"}}, user="other")
    assert_neutron_error(r, 404, ike_nf)
    r = api.delete(f"{PATHS['ikepolicy']}/{ike_id}", user="other")
    assert_neutron_error(r, 404, ike_nf)
    r = api.get(f"{PATHS['vpnservice']}/{svc_id}", user="other")
    assert_neutron_error(r, 404, svc_nf)
    r = api.put(f"{PATHS['vpnservice']}/{svc_id}", {"vpnservice": {"name": "stolen"}}, user="other")
    assert_neutron_error(r, 404, svc_nf)
    r = api.delete(f"{PATHS['vpnservice']}/{svc_id}", user="other")
    assert_neutron_error(r, 404, svc_nf)
    # a project filter does not widen a non-admin's view
    r = api.get(PATHS["ikepolicy"], user="other", params={"project_id": demo_objs["ike"]["project_id"]})
    assert r.status_code == 200 and r.json()["ikepolicies"] == [], r.text
    # untouched
    assert api.show("ikepolicy", ike_id)["name"] == "iso-ike"
    assert api.show("vpnservice", svc_id)["name"] == "iso-svc"


def test_other_cannot_use_demo_router(api, world):
    r = api.post(PATHS["vpnservice"], {"vpnservice": {"router_id": world.routers["router1"]}}, user="other")
    assert_neutron_error(r, 404)
    r = api.get("/v2.0/routers", user="other")
    assert r.status_code == 200, r.text
    assert world.routers["router1"] not in {x["id"] for x in r.json()["routers"]}
    r = api.get("/v2.0/routers/" + world.routers["router1"], user="other")
    assert r.status_code == 404, r.text


def test_non_admin_cannot_create_for_other_project(api, world):
    r = api.post(PATHS["ikepolicy"], {"ikepolicy": {"name": "x", "project_id": world.projects["other"]}}, user="demo")
    assert_neutron_error(
        r,
        400,
        message="Specifying 'project_id' other than the authenticated project in request is not allowed for the current user.",
    )
    r = api.post(PATHS["ikepolicy"], {"ikepolicy": {"name": "x", "tenant_id": world.projects["other"]}}, user="demo")
    assert_neutron_error(r, 400, contains="Specifying 'project_id' other than the authenticated project")
    # the own project explicitly is fine
    p = api.create("ikepolicy", {"name": "own-explicit", "project_id": world.projects["demo"]})
    assert p["project_id"] == p["tenant_id"] == world.projects["demo"]
    api.remove("ikepolicy", p["id"])


def test_admin_sees_all_projects_and_filters(api, world, demo_objs):
    ike_id = demo_objs["ike"]["id"]
    other_id = demo_objs["other_ike"]["id"]
    r = api.get(PATHS["ikepolicy"], user="admin", params={"description": "isolation"})
    assert r.status_code == 200, r.text
    by_id = {p["id"]: p for p in r.json()["ikepolicies"]}
    assert ike_id in by_id and other_id in by_id
    assert by_id[ike_id]["project_id"] == world.projects["demo"]
    assert by_id[other_id]["project_id"] == world.projects["other"]

    r = api.get(PATHS["ikepolicy"], user="admin", params={"project_id": world.projects["other"], "description": "isolation"})
    assert [p["id"] for p in r.json()["ikepolicies"]] == [other_id]
    r = api.get(PATHS["ikepolicy"], user="admin", params={"tenant_id": world.projects["demo"], "description": "isolation"})
    assert [p["id"] for p in r.json()["ikepolicies"]] == [ike_id]

    # admin may read and create on behalf of another project
    assert api.show("ikepolicy", ike_id, user="admin")["name"] == "iso-ike"
    p = api.create("ikepolicy", {"name": "admin-made", "project_id": world.projects["other"]}, user="admin")
    assert p["project_id"] == world.projects["other"]
    r = api.get(PATHS["ikepolicy"], user="other", params={"name": "admin-made"})
    assert [x["id"] for x in r.json()["ikepolicies"]] == [p["id"]]
    api.remove("ikepolicy", p["id"], user="admin")

    r = api.post(
        PATHS["ikepolicy"],
        {"ikepolicy": {"name": "y", "project_id": world.projects["other"], "tenant_id": world.projects["demo"]}},
        user="admin",
    )
    assert_neutron_error(r, 400, message="'project_id' and 'tenant_id' do not match")


def test_tenant_isolation_cli(cli, world, demo_objs):
    ike_id = demo_objs["ike"]["id"]
    other_id = demo_objs["other_ike"]["id"]
    as_other = {"user": "other"}
    list_r, show_r, set_r, del_r, admin_r = cli.many(
        ("vpn", "ike", "policy", "list", "-f", "json", as_other),
        ("vpn", "ike", "policy", "show", ike_id, as_other),
        ("vpn", "ike", "policy", "set", ike_id, "--name", "stolen", as_other),
        ("vpn", "ike", "policy", "delete", "iso-ike", as_other),
        ("vpn", "ike", "policy", "list", "--long", "-f", "json", {"user": "admin"}),
    )
    rows = cli_ok(list_r, "ike policy list (other)")
    ids = {r["ID"] for r in rows}
    assert ike_id not in ids and other_id in ids, rows

    cli_failed(show_r, "ike policy show (other)")
    assert f"No VpnIkePolicy found for {ike_id}" in show_r.err, show_r.err
    cli_failed(set_r, "ike policy set (other)")
    assert f"No VpnIkePolicy found for {ike_id}" in set_r.err, set_r.err
    cli_failed(del_r, "ike policy delete (other)")
    assert "No VpnIkePolicy found for iso-ike" in (del_r.stdout + del_r.err), del_r.stdout + del_r.err

    rows = cli_ok(admin_r, "ike policy list --long (admin)")
    projects = {r["ID"]: r["Project"] for r in rows}
    assert projects.get(ike_id) == world.projects["demo"], rows
    assert projects.get(other_id) == world.projects["other"], rows


def test_reader_role_is_denied(api, world, demo_objs):
    """§6.1: ADMIN_OR_PROJECT_MEMBER; a reader-only token is denied."""
    tok = api.token_body("reader")["token"]
    assert {r["name"] for r in tok["roles"]} >= {"reader"}
    r = api.post(PATHS["ikepolicy"], {"ikepolicy": {"name": "by-reader"}}, user="reader")
    assert_neutron_error(r, 403)
    r = api.put(f"{PATHS['ikepolicy']}/{demo_objs['ike']['id']}", {"ikepolicy": {"name": "by-reader"}}, user="reader")
    assert r.status_code in (403, 404), r.text
    assert_neutron_error(r, r.status_code)
    r = api.delete(f"{PATHS['ikepolicy']}/{demo_objs['ike']['id']}", user="reader")
    assert r.status_code in (403, 404), r.text
    # list: items the caller may not get are silently dropped
    r = api.get(PATHS["ikepolicy"], user="reader")
    assert r.status_code == 200, r.text
    assert demo_objs["ike"]["id"] not in {p["id"] for p in r.json()["ikepolicies"]}
    assert api.show("ikepolicy", demo_objs["ike"]["id"])["name"] == "iso-ike"
