"""NSX runtime APIs as vmware-nsxlib-style callers use them: session statistics,
their reset and the sessions summary (issue 12 item 4).

The session is made with the real vmware-nsxlib client; the statistics and
summary calls are nsxlib's raw `client.get` / `client.create` (nsxlib has no
wrapper for them), plus raw `requests` for what a client library hides
(status codes, empty bodies, error envelopes). A transport node registered
with `vpnaas node add` posts reports on the node API with counters that rise,
as an agent's do (the simulated agent backend reports zero counters).
"""

from __future__ import annotations


import pytest
import requests

from conftest import HTTP_TIMEOUT

nsx_v3 = pytest.importorskip("vmware_nsxlib.v3")
from vmware_nsxlib.v3 import exceptions as nsx_exc  # noqa: E402

VPN = "/api/v1/vpn/ipsec"
NSX_ERROR_KEYS = {"httpStatus", "error_code", "module_name", "error_message"}
ZERO_COUNTERS = (
    "dropped_packets_in", "dropped_packets_out", "integrity_failures", "encryption_failures",
    "decryption_failures", "replay_errors", "sa_mismatch_errors_in", "sa_mismatch_errors_out",
    "nomatching_policy_errors", "seq_number_overflow_error", "packets_sent_other_error",
    "packets_received_other_error",
)


class Node:
    """A transport node posting reports as an agent does."""

    def __init__(self, world, name, gateway):
        info = world.server.admin("node", "add", name, "--gateway", gateway)
        self.id, self.token, self.url = info["id"], info["token"], world.url

    def report(self, tunnels):
        h = {"Authorization": f"Bearer {self.token}"}
        cfg = requests.get(f"{self.url}/internal/v1/nodes/{self.id}/config", headers=h, timeout=HTTP_TIMEOUT)
        assert cfg.status_code == 200, cfg.text
        r = requests.post(
            f"{self.url}/internal/v1/nodes/{self.id}/report",
            json={"realized_generation": cfg.json()["generation"], "tunnels": tunnels, "agent": "test-node"},
            headers=h, timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 204, r.text


def tunnel(sid, bytes_in, child_rekeys=0, **kw):
    t = {
        "id": sid, "ike_state": "ESTABLISHED", "child_sas_installed": 1, "child_sas_expected": 1,
        "bytes_in": bytes_in, "bytes_out": 2 * bytes_in, "packets_in": bytes_in // 100,
        "packets_out": bytes_in // 50, "child_rekeys": child_rekeys,
    }
    t.update(kw)
    return t


def raw(world, method, path, **kw):
    return requests.request(
        method, world.url + path, auth=("admin", world.server.admin_password),
        headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT, **kw,
    )


def assert_nsx_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers.get("Content-Type", "").startswith("application/json")
    body = r.json()
    assert NSX_ERROR_KEYS <= set(body), body
    assert body["error_code"] == code, body
    return body


@pytest.fixture(scope="module")
def session(nsx, world):
    gw = world.server.admin(
        "gateway", "create", "rt-gw", "--project", "admin", "--external-v4", "172.24.4.70"
    )["id"]
    vpn = nsx.vpn_ipsec
    ike = vpn.ike_profile.create("rt-ike", ike_version="IKE_V2", dh_group="GROUP14")
    tun = vpn.tunnel_profile.create("rt-tun", dh_group="GROUP14")
    dpd = vpn.dpd_profile.create("rt-dpd", enabled=True, timeout=60)
    svc = vpn.service.create("rt-svc", gw, enabled=True)
    lep = vpn.local_endpoint.create("rt-lep", "172.24.4.70", svc["id"], local_id="172.24.4.70")
    pep = vpn.peer_endpoint.create(
        "rt-pep", "192.0.2.70", "192.0.2.70", authentication_mode="PSK", dpd_profile_id=dpd["id"],
        ike_profile_id=ike["id"], ipsec_tunnel_profile_id=tun["id"],
        connection_initiation_mode="INITIATOR", psk="rt-secret")
    rules = [vpn.session.get_rule_obj(["10.70.1.0/24"], ["10.70.2.0/24"])]
    sess = vpn.session.create("rt-sess", lep["id"], pep["id"], rules)
    node = Node(world, "rt-node", gw)
    yield {"id": sess["id"], "rule": sess["policy_rules"][0]["id"], "peer": pep["id"], "node": node}
    for res, i in ((vpn.session, sess["id"]), (vpn.peer_endpoint, pep["id"]),
                   (vpn.local_endpoint, lep["id"]), (vpn.service, svc["id"]),
                   (vpn.dpd_profile, dpd["id"]), (vpn.tunnel_profile, tun["id"]),
                   (vpn.ike_profile, ike["id"])):
        res.delete(i)


def test_statistics_rise_and_reset(nsx, world, session):
    sid, node = session["id"], session["node"]
    path = f"vpn/ipsec/sessions/{sid}/statistics"
    node.report([tunnel(sid, 1000)])
    st = nsx.client.get(path)
    assert st["ipsec_vpn_session_id"] == sid and st["display_name"] == "rt-sess"
    assert st["partial_stats"] is False
    assert st["ike_status"]["ike_session_state"] == "UP"
    assert st["ike_status"]["transport_node_id"] == node.id
    agg = st["aggregate_traffic_counters"]
    assert (agg["bytes_in"], agg["bytes_out"], agg["packets_in"], agg["packets_out"]) == (1000, 2000, 10, 20)
    [pol] = st["policy_statistics"]
    assert pol["policy_id"] == session["rule"]
    [t] = pol["tunnel_statistics"]
    assert (t["local_subnet"], t["peer_subnet"]) == ("10.70.1.0/24", "10.70.2.0/24")
    assert t["tunnel_status"] == "UP" and t["tunnel_down_reason"] == ""
    assert t["bytes_in"] == 1000
    for k in ZERO_COUNTERS:
        assert t[k] == 0, k
    assert st["ike_traffic_statistics"] == {
        "bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0, "fail_count": 0}
    assert nsx.client.get(path + "?source=cached")["aggregate_traffic_counters"]["bytes_in"] == 1000

    # Counters rise with the node's next report.
    node.report([tunnel(sid, 5000)])
    assert nsx.client.get(path)["aggregate_traffic_counters"]["bytes_in"] == 5000

    # Reset: NSX answers 200 with no body; nsxlib's POST accepts it.
    r = raw(world, "POST", f"{VPN}/sessions/{sid}/statistics?action=reset")
    assert r.status_code == 200 and r.content == b"", r.text
    nsx.client.create(path + "?action=reset")
    st = nsx.client.get(path)
    assert st["aggregate_traffic_counters"]["bytes_in"] == 0
    assert st["policy_statistics"][0]["tunnel_statistics"][0]["packets_out"] == 0
    node.report([tunnel(sid, 5600)])
    assert nsx.client.get(path)["aggregate_traffic_counters"]["bytes_in"] == 600
    # A CHILD SA rekey restarts charon's counters: the new SA's are all new.
    node.report([tunnel(sid, 40, child_rekeys=1)])
    assert nsx.client.get(path)["aggregate_traffic_counters"]["bytes_in"] == 40


def test_down_reason_and_detailed_status(nsx, world, session):
    sid, node = session["id"], session["node"]
    node.report([{
        "id": sid, "ike_state": "DOWN", "child_sas_installed": 0, "child_sas_expected": 1,
        "message": "received AUTHENTICATION_FAILED notify error",
        "down_reason": "AUTHENTICATION_FAILED",
        "log": ["tried 1 shared key for '172.24.4.70' - '192.0.2.70', but MAC mismatched"],
    }])
    st = nsx.client.get(f"vpn/ipsec/sessions/{sid}/statistics")
    t = st["policy_statistics"][0]["tunnel_statistics"][0]
    assert t["tunnel_status"] == "DOWN"
    assert t["tunnel_down_reason"] == "Authentication failed: received AUTHENTICATION_FAILED notify error"
    status = nsx.vpn_ipsec.session.get_status(sid)
    assert status["session_status"] == "DOWN"
    [n] = status["transport_node_status"]
    assert n["transport_node_id"] == node.id and n["reachable"] is True
    assert n["ike_session_state"] == "DOWN"
    assert n["fail_reason"].startswith("Authentication failed")
    assert n["log"] == ["tried 1 shared key for '172.24.4.70' - '192.0.2.70', but MAC mismatched"]


def test_summary(nsx, world, session):
    sid, node = session["id"], session["node"]
    node.report([tunnel(sid, 9000, child_rekeys=7)])
    s = nsx.client.get("vpn/ipsec/sessions/summary")
    ss = s["session_summary"]
    assert ss["total_sessions"] >= 1
    assert ss["total_sessions"] == ss["established_sessions"] + ss["failed_sessions"] + ss["degraded_sessions"]
    assert ss["total_sessions"] == len(s["traffic_summary_per_session"])
    [mine] = [p for p in s["traffic_summary_per_session"] if p["ipsec_vpn_session"]["target_id"] == sid]
    assert mine["ipsec_vpn_session"]["target_display_name"] == "rt-sess"
    assert mine["ipsec_vpn_session"]["target_type"] == "PolicyBasedIPSecVPNSession"
    assert mine["traffic_counters"]["bytes_in"] == 9000
    assert s["aggregate_traffic_counters"]["bytes_in"] == sum(
        p["traffic_counters"]["bytes_in"] for p in s["traffic_summary_per_session"])
    assert s["last_update_timestamp"] > 0
    # site_id: the sessions of one peer endpoint.
    s = nsx.client.get(f"vpn/ipsec/sessions/summary?site_id={session['peer']}&source=cached")
    assert s["session_summary"] == {
        "total_sessions": 1, "established_sessions": 1, "failed_sessions": 0, "degraded_sessions": 0}
    assert [p["ipsec_vpn_session"]["target_id"] for p in s["traffic_summary_per_session"]] == [sid]


def test_refusals(nsx, world, session):
    sid = session["id"]
    with pytest.raises(nsx_exc.ResourceNotFound):
        nsx.client.get("vpn/ipsec/sessions/no-such-session/statistics")
    assert_nsx_error(raw(world, "POST", f"{VPN}/sessions/no-such-session/statistics?action=reset"), 404, 600)
    assert_nsx_error(raw(world, "POST", f"{VPN}/sessions/{sid}/statistics"), 400, 255)
    assert_nsx_error(raw(world, "POST", f"{VPN}/sessions/{sid}/statistics?action=clear"), 400, 255)
    assert_nsx_error(raw(world, "GET", f"{VPN}/sessions/{sid}/statistics?source=soon"), 400, 255)
    assert_nsx_error(raw(world, "GET", f"{VPN}/sessions/summary?source=realtime"), 400, 255)
    r = requests.get(f"{world.url}{VPN}/sessions/summary", timeout=HTTP_TIMEOUT)
    assert r.status_code == 403 and NSX_ERROR_KEYS <= set(r.json())


def test_e2e_stats_check_helper(world, session):
    """tests/e2e/stats_check.py, which the strongSwan e2e imports, against
    reports whose counters rise each time the helper asks for traffic."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
    from stats_check import check_statistics

    sid, node = session["id"], session["node"]
    sent = {"n": 0}

    def traffic():
        sent["n"] += 1
        node.report([tunnel(sid, 10_000 + 500 * sent["n"], child_rekeys=9)])

    tls = None
    if world.server.ca_file:
        import ssl
        tls = ssl.create_default_context(cafile=world.server.ca_file)
    st = check_statistics(world.url, ("admin", world.server.admin_password), sid, traffic, tls=tls, timeout=10)
    assert st["aggregate_traffic_counters"]["packets_in"] > 0
