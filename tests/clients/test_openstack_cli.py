"""The real `openstack` CLI (python-openstackclient 10.5.0) against the server.

Follows the conformance command list of the spec (§7): create / list / show /
set / delete of all five VPN resources, `-f json`, `--long`, `-c COLUMN`, the
in-use delete failures and the "No ... found" client error. The tests in this
module run in order and share one scenario (state in the module-level dict).
Every step checks results (CLI output and the server's stored object over raw
HTTP), not only exit codes.
"""

from __future__ import annotations

import pytest

from conftest import PATHS, STATUSES, assert_keys, cli_failed, cli_ok

S: dict = {}  # scenario state shared by the ordered tests below


def need(*keys):
    missing = [k for k in keys if k not in S]
    if missing:
        pytest.fail(f"earlier scenario step did not produce {missing}", pytrace=False)
    return [S[k] for k in keys]


def output_of(r) -> str:
    """OSC prints per-item delete failures on stdout and the summary on stderr."""
    return (r.stdout or "") + "\n" + (r.err or "")


# ---------------------------------------------------------------- IKE policy


def test_ike_policy_create(cli, api, world):
    out = cli.ok(
        "vpn", "ike", "policy", "create", "ike1",
        "--auth-algorithm", "sha256", "--encryption-algorithm", "aes-256",
        "--phase1-negotiation-mode", "main", "--ike-version", "v2", "--pfs", "group14",
        "--description", "d ike", "-f", "json",
    )
    assert isinstance(out, dict), out
    assert out["Name"] == "ike1"
    assert out["Authentication Algorithm"] == "sha256"
    assert out["Encryption Algorithm"] == "aes-256"
    assert out["Phase1 Negotiation Mode"] == "main"
    assert out["IKE Version"] == "v2"
    assert out["Perfect Forward Secrecy (PFS)"] == "group14"
    assert out["Description"] == "d ike"
    assert out["Lifetime"] == {"units": "seconds", "value": 3600}
    assert out["Project"] == world.projects["demo"]
    S["ike1"] = out["ID"]

    stored = api.show("ikepolicy", out["ID"])
    assert_keys("ikepolicy", stored)
    assert stored["pfs"] == "group14" and stored["ike_version"] == "v2"
    assert stored["lifetime"] == {"units": "seconds", "value": 3600}
    assert stored["project_id"] == world.projects["demo"]


def test_ike_policy_set_and_show_columns(cli, api):
    (ike1,) = need("ike1")
    r = cli("vpn", "ike", "policy", "set", "ike1", "--pfs", "group5")
    assert r.rc == 0, r.err
    assert api.show("ikepolicy", ike1)["pfs"] == "group5"

    out = cli.ok(
        "vpn", "ike", "policy", "show", "ike1", "-f", "json",
        "-c", "ID", "-c", "Perfect Forward Secrecy (PFS)", "-c", "IKE Version",
    )
    assert out == {"ID": ike1, "Perfect Forward Secrecy (PFS)": "group5", "IKE Version": "v2"}


def test_ike_policy_list_long_and_short(cli, world):
    (ike1,) = need("ike1")
    long_r, short_r = cli.many(
        ("vpn", "ike", "policy", "list", "--long", "-f", "json"),
        ("vpn", "ike", "policy", "list", "-f", "json", "-c", "ID", "-c", "Name"),
    )
    rows = cli_ok(long_r, "ike policy list --long")
    assert isinstance(rows, list)
    mine = [r for r in rows if r["ID"] == ike1]
    assert len(mine) == 1, rows
    row = mine[0]
    assert row["Name"] == "ike1"
    assert row["Perfect Forward Secrecy (PFS)"] == "group5"
    assert row["Description"] == "d ike"
    assert row["Phase1 Negotiation Mode"] == "main"
    assert row["Project"] == world.projects["demo"]
    assert row["Lifetime"] == {"units": "seconds", "value": 3600}

    rows = cli_ok(short_r, "ike policy list -c ID -c Name")
    assert {"ID": ike1, "Name": "ike1"} in rows
    assert all(set(r) == {"ID", "Name"} for r in rows), rows


# -------------------------------------------------------------- IPsec policy


def test_ipsec_policy_create_set_list_show(cli, api):
    out = cli.ok(
        "vpn", "ipsec", "policy", "create", "ipsec1",
        "--auth-algorithm", "sha256", "--encryption-algorithm", "aes-256",
        "--encapsulation-mode", "tunnel", "--transform-protocol", "esp", "--pfs", "group14",
        "-f", "json",
    )
    assert out["Name"] == "ipsec1"
    assert out["Authentication Algorithm"] == "sha256"
    assert out["Encryption Algorithm"] == "aes-256"
    assert out["Encapsulation Mode"] == "tunnel"
    assert out["Transform Protocol"] == "esp"
    assert out["Perfect Forward Secrecy (PFS)"] == "group14"
    assert out["Lifetime"] == {"units": "seconds", "value": 3600}
    S["ipsec1"] = ipsec_id = out["ID"]
    assert_keys("ipsecpolicy", api.show("ipsecpolicy", ipsec_id))

    r = cli("vpn", "ipsec", "policy", "set", "ipsec1", "--name", "ipsec1b", "--transform-protocol", "ah")
    assert r.rc == 0, r.err
    stored = api.show("ipsecpolicy", ipsec_id)
    assert stored["name"] == "ipsec1b" and stored["transform_protocol"] == "ah"
    assert stored["pfs"] == "group14", "unrelated attribute changed by PUT"

    list_r, show_r = cli.many(
        ("vpn", "ipsec", "policy", "list", "-f", "json"),
        ("vpn", "ipsec", "policy", "show", "ipsec1b", "-f", "json"),
    )
    rows = cli_ok(list_r, "ipsec policy list")
    row = [r for r in rows if r["ID"] == ipsec_id]
    assert len(row) == 1, rows
    assert row[0]["Name"] == "ipsec1b" and row[0]["Transform Protocol"] == "ah"

    out = cli_ok(show_r, "ipsec policy show")
    assert out["ID"] == ipsec_id and out["Transform Protocol"] == "ah"


# --------------------------------------------------------------- VPN service


def test_vpn_service_create(cli, api, world):
    out = cli.ok("vpn", "service", "create", "vpn1", "--router", "router1", "--description", "svc", "-f", "json")
    assert out["Name"] == "vpn1"
    assert out["Router"] == world.routers["router1"]
    assert out["Description"] == "svc"
    assert out["Subnet"] is None
    assert out["State"] is True
    assert out["Status"] in STATUSES
    assert out["Project"] == world.projects["demo"]
    assert out["Ext v4 IP"] == "172.24.4.10"
    assert out["Ext v6 IP"] == "2001:db8:ffff::10"
    S["vpn1"] = out["ID"]
    stored = api.show("vpnservice", out["ID"])
    assert_keys("vpnservice", stored)
    assert stored["router_id"] == world.routers["router1"]
    assert stored["admin_state_up"] is True


# ------------------------------------------------------------ endpoint groups


def test_endpoint_groups_create(cli, api, world):
    local_r, peer_r = cli.many(
        ("vpn", "endpoint", "group", "create", "local-epg", "--type", "subnet", "--value", "subnet1", "-f", "json"),
        (
            "vpn", "endpoint", "group", "create", "peer-epg", "--type", "cidr",
            "--value", "10.2.0.0/24", "--value", "10.3.0.0/24", "-f", "json",
        ),
    )
    out = cli_ok(local_r, "endpoint group create local-epg")
    assert out["Type"] == "subnet"
    assert out["Endpoints"] == [world.subnets["subnet1"]]
    S["local-epg"] = out["ID"]

    out = cli_ok(peer_r, "endpoint group create peer-epg")
    assert out["Type"] == "cidr"
    assert out["Endpoints"] == ["10.2.0.0/24", "10.3.0.0/24"]
    S["peer-epg"] = out["ID"]
    stored = api.show("endpoint_group", out["ID"])
    assert_keys("endpoint_group", stored)
    assert stored["endpoints"] == ["10.2.0.0/24", "10.3.0.0/24"] and stored["type"] == "cidr"


# ------------------------------------------------------ IPsec site connection


def test_connection_create(cli, api):
    ike1, ipsec1, vpn1, lepg, pepg = need("ike1", "ipsec1", "vpn1", "local-epg", "peer-epg")
    out = cli.ok(
        "vpn", "ipsec", "site", "connection", "create", "conn1",
        "--vpnservice", "vpn1", "--ikepolicy", "ike1", "--ipsecpolicy", "ipsec1b",
        "--peer-address", "172.24.4.233", "--peer-id", "172.24.4.233", "--psk", "secret",
        "--local-endpoint-group", "local-epg", "--peer-endpoint-group", "peer-epg",
        "--mtu", "1400", "--initiator", "bi-directional", "--local-id", "myid", "-f", "json",
    )
    assert out["Name"] == "conn1"
    assert out["VPN Service"] == vpn1
    assert out["IKE Policy"] == ike1
    assert out["IPSec Policy"] == ipsec1
    assert out["Local Endpoint Group ID"] == lepg
    assert out["Peer Endpoint Group ID"] == pepg
    assert out["Peer Address"] == "172.24.4.233"
    assert out["Peer ID"] == "172.24.4.233"
    assert out["Pre-shared Key"] == "secret"
    assert out["MTU"] == 1400
    assert out["Initiator"] == "bi-directional"
    assert out["Local ID"] == "myid"
    assert out["Authentication Algorithm"] == "psk"
    assert out["Route Mode"] == "static"
    assert out["DPD"] == {"action": "hold", "interval": 30, "timeout": 120}
    assert out["Peer CIDRs"] == []
    assert out["State"] is True
    assert out["Status"] in STATUSES
    S["conn1"] = out["ID"]

    stored = api.show("ipsec_site_connection", out["ID"])
    assert_keys("ipsec_site_connection", stored)
    assert stored["mtu"] == 1400, "mtu sent as the string '1400' by OSC must be stored as an int"
    assert stored["peer_cidrs"] == []
    assert stored["dpd"] == {"action": "hold", "interval": 30, "timeout": 120}


def test_connection_list_and_show(cli):
    conn1, vpn1 = need("conn1", "vpn1")
    short_r, long_r, show_r = cli.many(
        ("vpn", "ipsec", "site", "connection", "list", "-f", "json", "-c", "Name", "-c", "Status"),
        ("vpn", "ipsec", "site", "connection", "list", "--long", "-f", "json"),
        ("vpn", "ipsec", "site", "connection", "show", "conn1", "-f", "json"),
    )
    rows = cli_ok(short_r, "connection list -c Name -c Status")
    assert all(set(r) == {"Name", "Status"} for r in rows), rows
    mine = [r for r in rows if r["Name"] == "conn1"]
    assert len(mine) == 1 and mine[0]["Status"] in STATUSES, rows

    rows = cli_ok(long_r, "connection list --long")
    mine = [r for r in rows if r["ID"] == conn1]
    assert len(mine) == 1, rows
    row = mine[0]
    assert row["VPN Service"] == vpn1
    assert row["MTU"] == 1400
    assert row["Pre-shared Key"] == "secret"
    assert row["Local ID"] == "myid"
    assert row["Peer CIDRs"] == []
    assert row["DPD"] == {"action": "hold", "interval": 30, "timeout": 120}

    out = cli_ok(show_r, "connection show conn1")
    assert out["ID"] == conn1 and out["Status"] in STATUSES


def test_status_settles_down_without_transport(api):
    """A gateway with no transport nodes cannot carry the tunnel: DOWN, not PENDING."""
    vpn1, conn1 = need("vpn1", "conn1")
    svc = api.wait_settled("vpnservice", vpn1)
    conn = api.wait_settled("ipsec_site_connection", conn1)
    assert svc["status"] == "DOWN", svc
    assert conn["status"] == "DOWN", conn


def test_connection_set(cli, api):
    (conn1,) = need("conn1")
    r = cli("vpn", "ipsec", "site", "connection", "set", "conn1",
            "--mtu", "1300", "--name", "conn1b", "--disable", "--description", "x")
    assert r.rc == 0, f"set failed: {r.err}"
    out = cli.ok("vpn", "ipsec", "site", "connection", "show", "conn1b", "-f", "json")
    assert out["ID"] == conn1
    assert out["MTU"] == 1300
    assert out["State"] is False
    assert out["Description"] == "x"
    assert out["Status"] in STATUSES
    stored = api.show("ipsec_site_connection", conn1)
    assert stored["name"] == "conn1b" and stored["mtu"] == 1300 and stored["admin_state_up"] is False
    # untouched attributes keep their values
    assert stored["local_id"] == "myid" and stored["psk"] == "secret"
    assert stored["dpd"] == {"action": "hold", "interval": 30, "timeout": 120}


def test_service_set_show_list(cli, api):
    (vpn1,) = need("vpn1")
    r = cli("vpn", "service", "set", "vpn1", "--name", "vpn1b", "--disable")
    assert r.rc == 0, f"set failed: {r.err}"
    show_r, list_r = cli.many(
        ("vpn", "service", "show", "vpn1b", "-f", "json"),
        ("vpn", "service", "list", "-f", "json"),
    )
    out = cli_ok(show_r, "service show vpn1b")
    assert out["ID"] == vpn1
    assert out["Name"] == "vpn1b"
    assert out["State"] is False
    assert out["Description"] == "svc"
    assert out["Status"] in STATUSES
    rows = cli_ok(list_r, "service list")
    mine = [r for r in rows if r["ID"] == vpn1]
    assert len(mine) == 1, rows
    assert mine[0]["Name"] == "vpn1b" and mine[0]["State"] is False
    assert api.show("vpnservice", vpn1)["admin_state_up"] is False


def test_endpoint_group_list_set_show(cli, world):
    lepg, pepg = need("local-epg", "peer-epg")
    list_r, set_r = cli.many(
        ("vpn", "endpoint", "group", "list", "--long", "-f", "json"),
        ("vpn", "endpoint", "group", "set", "peer-epg", "--name", "peer-epg2", "--description", "dd"),
    )
    cli_ok(set_r, "endpoint group set peer-epg")
    rows = cli_ok(list_r, "endpoint group list --long")
    by_id = {r["ID"]: r for r in rows}
    assert lepg in by_id and pepg in by_id, rows
    assert by_id[lepg]["Endpoints"] == [world.subnets["subnet1"]]
    assert by_id[pepg]["Endpoints"] == ["10.2.0.0/24", "10.3.0.0/24"]
    assert by_id[pepg]["Project"] == world.projects["demo"]
    assert "Description" in by_id[pepg]

    out = cli.ok("vpn", "endpoint", "group", "show", "peer-epg2", "-f", "json")
    assert out["ID"] == pepg and out["Description"] == "dd" and out["Name"] == "peer-epg2"
    assert out["Endpoints"] == ["10.2.0.0/24", "10.3.0.0/24"]


# ----------------------------------------------------------- negative cases


def test_in_use_deletes_fail(cli, api):
    ike1, ipsec1, vpn1, pepg = need("ike1", "ipsec1", "vpn1", "peer-epg")
    ike_del, ike_set, ipsec_del, epg_del, svc_del = (
        cli_failed(r, "in-use delete/set")
        for r in cli.many(
            ("vpn", "ike", "policy", "delete", "ike1"),
            ("vpn", "ike", "policy", "set", "ike1", "--pfs", "group14"),
            ("vpn", "ipsec", "policy", "delete", "ipsec1b"),
            ("vpn", "endpoint", "group", "delete", "peer-epg2"),
            ("vpn", "service", "delete", "vpn1b"),
        )
    )
    out = output_of(ike_del)
    assert f"IKEPolicy {ike1} is in use by existing IPsecSiteConnection and can't be updated or deleted" in out, out
    assert "409" in out, out

    out = output_of(ike_set)
    assert f"IKEPolicy {ike1} is in use by existing IPsecSiteConnection" in out, out

    out = output_of(ipsec_del)
    assert f"IPsecPolicy {ipsec1} is in use by existing IPsecSiteConnection and can't be updated or deleted" in out, out

    out = output_of(epg_del)
    assert f"Endpoint group {pepg} is in use and cannot be deleted" in out, out

    out = output_of(svc_del)
    assert f"VPNService {vpn1} is still in use" in out, out
    assert "409" in out, out

    # nothing was deleted or changed
    assert api.show("ikepolicy", ike1)["pfs"] == "group5"
    for res, oid in (("ipsecpolicy", ipsec1), ("endpoint_group", pepg), ("vpnservice", vpn1)):
        api.show(res, oid)


def test_show_nonexistent(cli):
    ike_r, conn_r = cli.many(
        ("vpn", "ike", "policy", "show", "doesnotexist"),
        ("vpn", "ipsec", "site", "connection", "show", "doesnotexist"),
    )
    cli_failed(ike_r, "ike policy show doesnotexist")
    assert "No VpnIkePolicy found for doesnotexist" in ike_r.err, ike_r.err
    cli_failed(conn_r, "connection show doesnotexist")
    assert "No VpnIPSecSiteConnection found for doesnotexist" in conn_r.err, conn_r.err


def test_cleanup_in_dependency_order(cli, api):
    ike1, ipsec1, vpn1, lepg, pepg, conn1 = need("ike1", "ipsec1", "vpn1", "local-epg", "peer-epg", "conn1")
    r = cli("vpn", "ipsec", "site", "connection", "delete", "conn1b")
    assert r.rc == 0, output_of(r)
    for r in cli.many(
        ("vpn", "endpoint", "group", "delete", "local-epg", "peer-epg2"),
        ("vpn", "service", "delete", "vpn1b"),
    ):
        assert r.rc == 0, output_of(r)
    for r in cli.many(
        ("vpn", "ike", "policy", "delete", "ike1"),
        ("vpn", "ipsec", "policy", "delete", "ipsec1b"),
    ):
        assert r.rc == 0, output_of(r)
    for res, oid in (
        ("ipsec_site_connection", conn1), ("endpoint_group", lepg), ("endpoint_group", pepg),
        ("vpnservice", vpn1), ("ikepolicy", ike1), ("ipsecpolicy", ipsec1),
    ):
        resp = api.get(f"{PATHS[res]}/{oid}")
        assert resp.status_code == 404, f"{res} {oid} still there after delete: {resp.status_code} {resp.text}"
