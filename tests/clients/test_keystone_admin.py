"""The Keystone admin subset (/v3/projects, /v3/users, /v3/roles,
/v3/role_assignments, grants, /v3/domains, password change) as the real
`openstack` CLI and openstacksdk drive it, and its refusals in Keystone's
envelope. Runs on the session server; every object it makes is named `ks-*`
and removed again, so the other suites' world is untouched."""

from __future__ import annotations

import secrets

import pytest
import requests

from conftest import HTTP_TIMEOUT, User, cli_ok, password_auth_body

FORBIDDEN_PREFIX = "You are not authorized to perform the requested action: "


def keystone_error(r: requests.Response, status: int, message: str | None = None,
                   contains: str | None = None) -> dict:
    where = f"{r.request.method} {r.request.path_url}"
    assert r.status_code == status, f"{where}: want {status}, got {r.status_code}: {r.text[:400]}"
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype == "application/json", f"{where}: Content-Type {ctype!r}: {r.text[:200]!r}"
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == status and err["title"] and err["message"], body
    if message is not None:
        assert err["message"] == message, err
    if contains is not None:
        assert contains in err["message"], err
    return err


class Keystone:
    """Raw /v3 calls with a token of any user (not cached: these tests revoke)."""

    def __init__(self, world):
        self.world = world
        self.s = requests.Session()

    def login(self, user: User) -> requests.Response:
        return self.s.post(self.world.auth_url + "/auth/tokens", json=password_auth_body(user),
                           timeout=HTTP_TIMEOUT)

    def token(self, user: User) -> str:
        r = self.login(user)
        assert r.status_code == 201, f"login {user.name}: {r.status_code} {r.text}"
        return r.headers["X-Subject-Token"]

    def call(self, method: str, path: str, token: str | None, body=None, data=None, params=None):
        h = {"Accept": "application/json"}
        if token:
            h["X-Auth-Token"] = token
        if data is not None:
            h["Content-Type"] = "application/json"
        return self.s.request(method, self.world.auth_url + path, json=body, data=data, params=params,
                              headers=h, timeout=HTTP_TIMEOUT)


@pytest.fixture(scope="module")
def ks(world):
    return Keystone(world)


@pytest.fixture(scope="module")
def admin_token(ks, world):
    return ks.token(world.users["admin"])


def name(prefix: str) -> str:
    return f"ks-{prefix}-{secrets.token_hex(3)}"


def make_user(ks, admin_token, project: str, role: str | None, password: str = "pw-1") -> User:
    """A user by the API, granted `role` on `project` (a name)."""
    uname = name("user")
    r = ks.call("POST", "/users", admin_token, {"user": {"name": uname, "password": password}})
    assert r.status_code == 201, r.text
    u = User(uname, password, project, id=r.json()["user"]["id"])
    if role:
        pid = ks.call("GET", "/projects", admin_token, params={"name": project}).json()["projects"][0]["id"]
        u.project_id = pid
        r = ks.call("PUT", f"/projects/{pid}/users/{u.id}/roles/{role}", admin_token)
        assert r.status_code == 204, r.text
    return u


# --------------------------------------------------------------- the CLI


def test_cli_project_lifecycle(cli, ks, admin_token):
    pname = name("proj")
    p = cli.ok("project", "create", pname, "--description", "first", "-f", "json", user="admin")
    assert p["name"] == pname and p["description"] == "first", p
    assert p["domain_id"] == "default" and p["enabled"] is True and p["is_domain"] is False, p
    listed, shown, dup = cli.many(
        ("project", "list", "-f", "json", {"user": "admin"}),
        ("project", "show", pname, "-f", "json", {"user": "admin"}),
        ("project", "create", pname, {"user": "admin"}),
    )
    assert pname in {x["Name"] for x in cli_ok(listed, "project list")}
    assert cli_ok(shown, "project show")["id"] == p["id"]
    assert dup.rc != 0 and "409" in dup.err, dup.err
    cli.ok("project", "set", pname, "--name", pname + "b", "--description", "second", "--disable",
           user="admin")
    after = cli.ok("project", "show", p["id"], "-f", "json", user="admin")
    assert (after["name"], after["description"], after["enabled"]) == (pname + "b", "second", False), after
    cli.ok("project", "delete", pname + "b", user="admin")
    keystone_error(ks.call("GET", f"/projects/{p['id']}", admin_token), 404,
                   message=f"Could not find project: {p['id']}.")


def test_cli_user_lifecycle(cli, ks, admin_token, world):
    uname = name("user")
    u = cli.ok("user", "create", uname, "--password", "pw-one", "--email", f"{uname}@example.org",
               "--project", "demo", "-f", "json", user="admin")
    assert u["name"] == uname and u["email"] == f"{uname}@example.org", u
    assert u["default_project_id"] == world.projects["demo"] and u["enabled"] is True, u
    assert "password" not in u
    # (`role add` is the next test's; a grant by the API keeps this one short)
    r = ks.call("PUT", f"/projects/{world.projects['demo']}/users/{u['id']}/roles/member", admin_token)
    assert r.status_code == 204, r.text
    me = User(uname, "pw-one", "demo")
    tok = ks.token(me)

    # A new password: the old one and the old token stop working.
    cli.ok("user", "set", uname, "--password", "pw-two", user="admin")
    assert ks.login(me).status_code == 401
    keystone_error(ks.call("GET", f"/users/{u['id']}", tok), 401)
    me.password = "pw-two"
    tok = ks.token(me)
    assert ks.call("GET", f"/users/{u['id']}", tok).status_code == 200

    # Disabled: the token fails at once, and so does logging in.
    cli.ok("user", "set", uname, "--disable", user="admin")
    keystone_error(ks.call("GET", f"/users/{u['id']}", tok), 401)
    assert ks.login(me).status_code == 401
    cli.ok("user", "set", uname, "--enable", "--name", uname + "b", user="admin")
    me.name = uname + "b"
    tok = ks.token(me)

    listed, shown = cli.many(
        ("user", "list", "-f", "json", {"user": "admin"}),
        ("user", "show", uname + "b", "-f", "json", {"user": "admin"}),
    )
    assert uname + "b" in {x["Name"] for x in cli_ok(listed, "user list")}
    shown = cli_ok(shown, "user show")
    assert shown["enabled"] is True and shown["domain_id"] == "default", shown

    # Deleted: the token fails at once.
    cli.ok("user", "delete", uname + "b", user="admin")
    keystone_error(ks.call("GET", "/projects/" + world.projects["demo"], tok), 401)
    keystone_error(ks.call("GET", f"/users/{u['id']}", admin_token), 404,
                   message=f"Could not find user: {u['id']}.")


def test_cli_roles_and_assignments(cli, ks, admin_token, world):
    u = make_user(ks, admin_token, "demo", None)
    roles, added = cli.many(
        ("role", "list", "-f", "json", {"user": "admin"}),
        ("role", "add", "--project", "demo", "--user", u.name, "reader", {"user": "admin"}),
    )
    assert {"admin", "member", "reader"} <= {x["Name"] for x in cli_ok(roles, "role list")}
    cli_ok(added, "role add")
    tok = ks.token(u)
    mine, admins = cli.many(
        ("role", "assignment", "list", "--user", u.name, "--project", "demo", "--names", "-f", "json",
         {"user": "admin"}),
        ("role", "assignment", "list", "--project", "admin", "--names", "-f", "json", {"user": "admin"}),
    )
    assert [(a["Role"], a["User"], a["Project"]) for a in cli_ok(mine, "assignment list")] == [
        ("reader", f"{u.name}@Default", "demo@Default")
    ]
    assert ("admin", "admin@Default") in {(a["Role"], a["User"]) for a in cli_ok(admins, "assignment list")}

    # Removing the role ends the user's token on that project at once.
    cli.ok("role", "remove", "--project", "demo", "--user", u.name, "reader", user="admin")
    keystone_error(ks.call("GET", f"/users/{u.id}", tok), 401)
    assert cli.ok("role", "assignment", "list", "--user", u.id, "-f", "json", user="admin") == []
    assert ks.call("DELETE", f"/users/{u.id}", admin_token).status_code == 204


def test_cli_domains_and_implied_roles(cli):
    listed, shown, implied = cli.many(
        ("domain", "list", "-f", "json", {"user": "admin"}),
        ("domain", "show", "default", "-f", "json", {"user": "admin"}),
        ("implied", "role", "list", "-f", "json", {"user": "admin"}),
    )
    rules = {(r["Prior Role Name"], r["Implied Role Name"]) for r in cli_ok(implied, "implied role list")}
    assert rules == {("admin", "member"), ("member", "reader")}, rules
    assert [(d["ID"], d["Name"], d["Enabled"]) for d in cli_ok(listed, "domain list")] == [
        ("default", "Default", True)
    ]
    assert cli_ok(shown, "domain show")["name"] == "Default"


# ------------------------------------------------------------ openstacksdk


def test_sdk_identity_calls(sdk, world):
    conn = sdk("admin")
    pname = name("sdk")
    p = conn.identity.create_project(name=pname, description="by sdk")
    try:
        assert conn.identity.find_project(pname).id == p.id
        conn.identity.update_project(p, description="changed")
        assert conn.identity.get_project(p.id).description == "changed"
        assert "admin" in {u.name for u in conn.identity.users()}
        assert conn.identity.find_role("member").name == "member"
        admin_id = world.users["admin"].id
        got = list(conn.identity.role_assignments(user_id=admin_id, scope_project_id=world.projects["admin"]))
        assert "admin" in {a.role["id"] for a in got}
        assert conn.identity.get_domain("default").name == "Default"
    finally:
        conn.identity.delete_project(p, ignore_missing=False)
    assert conn.identity.find_project(pname) is None


# ------------------------------------------------------------ semantics


def test_implied_roles_in_tokens_and_effective_assignments(ks, admin_token):
    pname = name("imp")
    r = ks.call("POST", "/projects", admin_token, {"project": {"name": pname}})
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    u = make_user(ks, admin_token, pname, "admin")
    body = ks.login(u).json()["token"]
    assert sorted(role["name"] for role in body["roles"]) == ["admin", "member", "reader"], body["roles"]
    direct = ks.call("GET", "/role_assignments", admin_token, params={"user.id": u.id}).json()
    assert [a["role"]["id"] for a in direct["role_assignments"]] == ["admin"], direct
    eff = ks.call("GET", "/role_assignments", admin_token,
                  params={"user.id": u.id, "effective": "true", "include_names": "true"}).json()
    got = {(a["role"]["name"], a["scope"]["project"]["name"]) for a in eff["role_assignments"]}
    assert got == {("admin", pname), ("member", pname), ("reader", pname)}, eff
    implied = [a for a in eff["role_assignments"] if a["role"]["id"] == "reader"][0]
    assert implied["links"]["prior_role"].endswith("/roles/member/implies/reader"), implied
    rule = ks.s.get(implied["links"]["prior_role"], headers={"X-Auth-Token": admin_token},
                    timeout=HTTP_TIMEOUT).json()["role_inference"]
    assert (rule["prior_role"]["name"], rule["implies"]["name"]) == ("member", "reader"), rule
    keystone_error(ks.call("GET", "/roles/reader/implies/admin", admin_token), 404,
                   message="reader does not imply admin.")
    assert ks.call("DELETE", f"/users/{u.id}", admin_token).status_code == 204
    assert ks.call("DELETE", f"/projects/{pid}", admin_token).status_code == 204


def test_member_is_forbidden_admin_calls_but_reads_itself(ks, world):
    demo = world.users["demo"]
    tok = ks.token(demo)
    for method, path, body, rule in (
        ("GET", "/projects", None, "identity:list_projects"),
        ("POST", "/projects", {"project": {"name": "ks-nope"}}, "identity:create_project"),
        ("GET", "/users", None, "identity:list_users"),
        ("POST", "/users", {"user": {"name": "ks-nope"}}, "identity:create_user"),
        ("PATCH", f"/users/{demo.id}", {"user": {"enabled": False}}, "identity:update_user"),
        ("DELETE", f"/projects/{world.projects['other']}", None, "identity:delete_project"),
        ("GET", f"/users/{world.users['admin'].id}", None, "identity:get_user"),
        ("GET", "/role_assignments", None, "identity:list_role_assignments"),
        ("GET", "/roles", None, "identity:list_roles"),
        ("PUT", f"/projects/{demo.project_id}/users/{demo.id}/roles/admin", None, "identity:create_grant"),
    ):
        keystone_error(ks.call(method, path, tok, body), 403, message=FORBIDDEN_PREFIX + rule + ".")
    me = ks.call("GET", f"/users/{demo.id}", tok)
    assert me.status_code == 200 and me.json()["user"]["name"] == "demo", me.text
    own = ks.call("GET", f"/projects/{demo.project_id}", tok)
    assert own.status_code == 200 and own.json()["project"]["name"] == "demo", own.text
    mine = ks.call("GET", f"/users/{demo.id}/projects", tok).json()["projects"]
    assert [p["name"] for p in mine] == ["demo"]
    assert ks.call("GET", "/domains/default", tok).status_code == 200


def test_password_change_by_the_user(cli, ks, admin_token):
    u = make_user(ks, admin_token, "demo", "member", password="orig-pw")
    tok = ks.token(u)
    path = f"/users/{u.id}/password"
    keystone_error(ks.call("POST", path, tok, {"user": {"password": "new-pw", "original_password": "wrong"}}),
                   401, message="Error when changing user password: Invalid user / password")
    keystone_error(ks.call("POST", path, tok, {"user": {"password": "new-pw"}}), 400)
    keystone_error(ks.call("POST", path, tok, data="{garbage"), 400)
    r = cli("user", "password", "set", "--password", "new-pw", "--original-password", "orig-pw", user=u)
    assert r.rc == 0, r.err
    keystone_error(ks.call("GET", f"/users/{u.id}", tok), 401)
    assert ks.login(u).status_code == 401
    u.password = "new-pw"
    assert ks.login(u).status_code == 201
    assert ks.call("DELETE", f"/users/{u.id}", admin_token).status_code == 204


def test_duplicates_unknown_ids_and_bad_bodies(ks, admin_token, world):
    keystone_error(ks.call("POST", "/projects", admin_token, {"project": {"name": "demo"}}), 409,
                   contains="Conflict occurred attempting to store project - ")
    keystone_error(ks.call("POST", "/users", admin_token, {"user": {"name": "demo"}}), 409,
                   message="Conflict occurred attempting to store user - "
                           "Duplicate entry found with name demo at domain ID default.")
    for path, kind in (("/projects/nosuch", "project"), ("/users/nosuch", "user"),
                       ("/roles/nosuch", "role"), ("/domains/nosuch", "domain")):
        keystone_error(ks.call("GET", path, admin_token), 404, message=f"Could not find {kind}: nosuch.")
    demo = world.users["demo"]
    keystone_error(ks.call("PUT", f"/projects/{demo.project_id}/users/{demo.id}/roles/nosuch", admin_token),
                   404, message="Could not find role: nosuch.")
    keystone_error(ks.call("DELETE", f"/projects/{demo.project_id}/users/{demo.id}/roles/admin", admin_token),
                   404, contains="Could not find role assignment with role: admin")
    assert ks.call("HEAD", f"/projects/{demo.project_id}/users/{demo.id}/roles/member",
                   admin_token).status_code == 204
    for method, path in (("POST", "/projects"), ("POST", "/users"), ("PATCH", f"/users/{demo.id}"),
                         ("PATCH", f"/projects/{demo.project_id}")):
        keystone_error(ks.call(method, path, admin_token, data="{garbage"), 400)
    keystone_error(ks.call("POST", "/users", admin_token, {"user": {"name": 5}}), 400,
                   message="Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'")
    keystone_error(ks.call("POST", "/projects", admin_token, {"nope": {}}), 400,
                   message="'project' is a required property")
    keystone_error(ks.call("PATCH", f"/projects/{demo.project_id}", admin_token, {"project": {}}), 400)


def test_the_operator_cannot_be_locked_out(ks, admin_token, world):
    admin = world.users["admin"]
    pid = world.projects["admin"]
    for method, path, body, text in (
        ("DELETE", f"/users/{admin.id}", None, "bootstrap admin"),
        ("PATCH", f"/users/{admin.id}", {"user": {"enabled": False}}, "bootstrap admin"),
        ("DELETE", f"/projects/{pid}", None, "bootstrap admin project"),
        ("PATCH", f"/projects/{pid}", {"project": {"enabled": False}}, "bootstrap admin project"),
        ("DELETE", f"/projects/{pid}/users/{admin.id}/roles/admin", None, "lock"),
    ):
        keystone_error(ks.call(method, path, admin_token, body), 403, contains=text)
    # A second admin can't demote itself on its own project either.
    u = make_user(ks, admin_token, "admin", "admin")
    tok = ks.token(u)
    keystone_error(ks.call("DELETE", f"/projects/{pid}/users/{u.id}/roles/admin", tok), 403,
                   contains="your own admin role")
    assert ks.call("DELETE", f"/users/{u.id}", tok).status_code == 204
    assert ks.login(admin).status_code == 201


def test_a_project_owning_objects_is_not_deleted(ks, admin_token, world):
    pid = world.projects["demo"]
    err = keystone_error(ks.call("DELETE", f"/projects/{pid}", admin_token), 409)
    assert "gateway" in err["message"] and "Delete them first" in err["message"], err
    assert ks.call("GET", f"/projects/{pid}", admin_token).status_code == 200
