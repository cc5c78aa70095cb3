//! NSX runtime APIs over the composed server, with simulated nodes posting
//! real reports on the node API: session statistics (counters that rise
//! between reports, summed over nodes, partial while a node is silent), their
//! reset (the next read counts from zero, a rekey since makes the raw counters
//! count), the sessions summary, the detailed status on `/status`, and the
//! refusals (unknown id, bad action/source, disabled service).

use axum::http::Method;
use model::realization::{DownReason, IkeState, NodeConfig, NodeReport, TunnelStatus};
use serde_json::{Value, json};

use crate::harness::*;

/// A tunnel report of `id`, up with the given counters (bytes in, rekeys);
/// out-counters are twice the in-counters, packets a hundredth of bytes.
fn up(id: &str, bytes_in: u64, child_rekeys: u64) -> TunnelStatus {
    TunnelStatus {
        id: id.into(),
        ike_state: IkeState::Established,
        child_sas_installed: 1,
        child_sas_expected: 1,
        bytes_in,
        bytes_out: 2 * bytes_in,
        packets_in: bytes_in / 100,
        packets_out: bytes_in / 50,
        child_rekeys,
        ike_rekeys: 1,
        established_seconds: Some(3600),
        last_status_change_ms: Some(1_700_000_000_000),
        log: vec!["IKE_SA established".into(), "CHILD_SA installed".into()],
        ..TunnelStatus::default()
    }
}

/// Reports `tunnels` for `node` at its gateway's current generation.
async fn report(s: &TestServer, node: &SimNode, tunnels: Vec<TunnelStatus>) {
    let cfg: NodeConfig = serde_json::from_value(s.node_config(node, "").await.expect(200)).unwrap();
    s.report(
        node,
        &NodeReport {
            realized_generation: Some(cfg.generation),
            tunnels,
            agent: Some("composed-test".into()),
            ..NodeReport::default()
        },
    )
    .await;
}

async fn stats(s: &TestServer, id: &str) -> Value {
    s.nsx(Method::GET, &format!("{VPN}/sessions/{id}/statistics"), None)
        .await
        .expect(200)
}

fn bytes_in(v: &Value) -> u64 {
    v["aggregate_traffic_counters"]["bytes_in"].as_u64().unwrap()
}

#[tokio::test]
async fn statistics_rise_reset_and_sum_over_nodes() {
    let s = TestServer::new().await;
    let site = s.site("stats-a", 61).await;
    let n1 = s.node("stats-a-n1", "stats-a").await;
    let n2 = s.node("stats-a-n2", "stats-a").await;

    // Nobody reported: partial, zero, down with a reason.
    let st = stats(&s, &site.conn).await;
    assert_eq!(st["ipsec_vpn_session_id"], site.conn.as_str());
    assert_eq!(st["display_name"], "stats-a-conn");
    assert_eq!(st["partial_stats"], true);
    assert_eq!(bytes_in(&st), 0);
    assert_eq!(st["ike_status"]["ike_session_state"], "DOWN");
    let policies = st["policy_statistics"].as_array().unwrap();
    assert_eq!(policies.len(), 1, "{st}");
    assert_eq!(policies[0]["policy_id"], site.conn.as_str());
    let t = &policies[0]["tunnel_statistics"][0];
    assert_eq!(t["local_subnet"], "10.61.0.0/24");
    assert_eq!(t["peer_subnet"], "10.161.0.0/24");
    assert_eq!(t["tunnel_status"], "DOWN");
    assert!(!t["tunnel_down_reason"].as_str().unwrap().is_empty(), "{t}");
    for k in [
        "integrity_failures",
        "replay_errors",
        "dropped_packets_in",
        "packets_received_other_error",
    ] {
        assert_eq!(t[k], 0, "{k}");
    }
    assert_eq!(st["ike_traffic_statistics"]["fail_count"], 0);

    // n1 carries it; n2 is still silent: partial, n1's counters only.
    report(&s, &n1, vec![up(&site.conn, 1000, 0)]).await;
    let st = stats(&s, &site.conn).await;
    assert_eq!(st["partial_stats"], true);
    assert_eq!(bytes_in(&st), 1000);
    assert_eq!(st["aggregate_traffic_counters"]["bytes_out"], 2000);
    assert_eq!(st["aggregate_traffic_counters"]["packets_in"], 10);
    assert_eq!(st["ike_status"]["ike_session_state"], "UP");
    assert_eq!(st["ike_status"]["transport_node_id"], n1.id.as_str());
    let t = &st["policy_statistics"][0]["tunnel_statistics"][0];
    assert_eq!(t["tunnel_status"], "UP");
    assert_eq!(t["tunnel_down_reason"], "");
    assert_eq!(t["bytes_in"], 1000, "one pair: the session's counters");
    assert_eq!(
        st["policy_statistics"][0]["aggregate_traffic_counters"]["bytes_in"],
        1000
    );

    // Both report; traffic rises between reports and is summed.
    report(&s, &n2, vec![up(&site.conn, 500, 0)]).await;
    report(&s, &n1, vec![up(&site.conn, 4000, 0)]).await;
    let st = stats(&s, &site.conn).await;
    assert_eq!(st["partial_stats"], false, "{st}");
    assert_eq!(bytes_in(&st), 4500);
    let nodes = st["transport_node_statistics"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let n1s = nodes
        .iter()
        .find(|n| n["transport_node_id"] == n1.id.as_str())
        .unwrap();
    assert_eq!(n1s["traffic_counters"]["bytes_in"], 4000);
    assert_eq!(n1s["reachable"], true);
    assert_eq!(n1s["child_rekeys"], 0);

    // Reset: 200, no body; the next read starts from zero.
    let r = s
        .nsx(
            Method::POST,
            &format!("{VPN}/sessions/{}/statistics?action=reset", site.conn),
            None,
        )
        .await;
    assert_eq!(r.expect(200), Value::Null);
    let st = stats(&s, &site.conn).await;
    assert_eq!(bytes_in(&st), 0, "{st}");
    assert_eq!(st["aggregate_traffic_counters"]["packets_out"], 0);
    assert_eq!(st["policy_statistics"][0]["tunnel_statistics"][0]["bytes_in"], 0);

    // More traffic counts from the reset.
    report(&s, &n1, vec![up(&site.conn, 4300, 0)]).await;
    report(&s, &n2, vec![up(&site.conn, 600, 0)]).await;
    assert_eq!(bytes_in(&stats(&s, &site.conn).await), 400);
    // n1 rekeys its CHILD SA: charon's counters restart at 0 and everything
    // the new SA counted is after the reset.
    report(&s, &n1, vec![up(&site.conn, 50, 1)]).await;
    let st = stats(&s, &site.conn).await;
    assert_eq!(bytes_in(&st), 150, "50 on n1's new SA + 100 on n2 {st}");

    // The summary counts from the same stored baselines.
    let again = s
        .nsx(Method::GET, &format!("{VPN}/sessions/summary"), None)
        .await
        .expect(200);
    assert_eq!(again["aggregate_traffic_counters"]["bytes_in"], 150);

    // The detailed status: per node, with reasons and the IKE log.
    report(
        &s,
        &n2,
        vec![TunnelStatus {
            id: site.conn.clone(),
            ike_state: IkeState::Down,
            child_sas_expected: 1,
            message: Some("received AUTHENTICATION_FAILED notify error".into()),
            down_reason: Some(DownReason::AuthenticationFailed),
            log: vec!["authentication of 'peer-61' with pre-shared key failed".into()],
            ..TunnelStatus::default()
        }],
    )
    .await;
    let status = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}/status", site.conn), None)
        .await
        .expect(200);
    assert_eq!(status["session_status"], "UP", "n1 still carries it: {status}");
    let per = status["transport_node_status"].as_array().unwrap();
    let d2 = per
        .iter()
        .find(|n| n["transport_node_id"] == n2.id.as_str())
        .unwrap();
    assert_eq!(d2["ike_session_state"], "DOWN");
    assert_eq!(
        d2["fail_reason"],
        "Authentication failed: received AUTHENTICATION_FAILED notify error"
    );
    assert_eq!(
        d2["log"][0],
        "authentication of 'peer-61' with pre-shared key failed"
    );
    let d1 = per
        .iter()
        .find(|n| n["transport_node_id"] == n1.id.as_str())
        .unwrap();
    assert_eq!(d1["ike_session_state"], "UP");
    assert!(d1.get("fail_reason").is_none(), "{d1}");
    assert_eq!(d1["established_seconds"], 3600);
    assert_eq!(d1["child_rekeys"], 1);

    // Only n2 reports now, down: the tunnel's reason is its reason.
    report(&s, &n1, vec![]).await;
    let st = stats(&s, &site.conn).await;
    let t = &st["policy_statistics"][0]["tunnel_statistics"][0];
    assert_eq!(t["tunnel_status"], "DOWN");
    assert_eq!(
        t["tunnel_down_reason"],
        "Authentication failed: received AUTHENTICATION_FAILED notify error"
    );
}

#[tokio::test]
async fn summary_counts_what_is_up_down_and_degraded() {
    let s = TestServer::new().await;
    let a = s.site("sum-a", 62).await;
    let b = s.site("sum-b", 63).await;
    let c = s.site("sum-c", 64).await;
    let na = s.node("sum-a-n", "sum-a").await;
    let nb = s.node("sum-b-n", "sum-b").await;
    let nc = s.node("sum-c-n", "sum-c").await;
    report(&s, &na, vec![up(&a.conn, 1000, 0)]).await;
    report(&s, &nb, vec![up(&b.conn, 200, 0)]).await;
    let degraded = TunnelStatus {
        child_sas_expected: 2,
        ..up(&c.conn, 30, 0)
    };
    report(&s, &nc, vec![degraded]).await;

    let sum = s
        .nsx(Method::GET, &format!("{VPN}/sessions/summary"), None)
        .await
        .expect(200);
    assert_eq!(
        sum["session_summary"],
        json!({"total_sessions": 3, "established_sessions": 2, "failed_sessions": 0, "degraded_sessions": 1})
    );
    assert_eq!(sum["aggregate_traffic_counters"]["bytes_in"], 1230);
    let per = sum["traffic_summary_per_session"].as_array().unwrap();
    assert_eq!(per.len(), 3);
    let of = |id: &str| {
        per.iter()
            .find(|p| p["ipsec_vpn_session"]["target_id"] == id)
            .unwrap()
    };
    assert_eq!(of(&a.conn)["traffic_counters"]["bytes_in"], 1000);
    assert_eq!(
        of(&b.conn)["ipsec_vpn_session"]["target_display_name"],
        "sum-b-conn"
    );
    assert_eq!(
        of(&b.conn)["ipsec_vpn_session"]["target_type"],
        "PolicyBasedIPSecVPNSession"
    );
    assert!(sum["last_update_timestamp"].as_i64().unwrap() > 0);

    // b goes down; a's statistics are reset.
    report(&s, &nb, vec![]).await;
    s.nsx(
        Method::POST,
        &format!("{VPN}/sessions/{}/statistics?action=reset", a.conn),
        None,
    )
    .await
    .expect(200);
    let sum = s
        .nsx(
            Method::GET,
            &format!("{VPN}/sessions/summary?source=cached"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(sum["session_summary"]["failed_sessions"], 1);
    assert_eq!(sum["session_summary"]["established_sessions"], 1);
    assert_eq!(sum["aggregate_traffic_counters"]["bytes_in"], 30);

    // A site_id (peer endpoint) no session is made from: nothing.
    let sum = s
        .nsx(Method::GET, &format!("{VPN}/sessions/summary?site_id=nope"), None)
        .await
        .expect(200);
    assert_eq!(sum["session_summary"]["total_sessions"], 0);
    assert_eq!(sum["traffic_summary_per_session"], json!([]));
    // As NSX, the summary is only cached.
    s.nsx(
        Method::GET,
        &format!("{VPN}/sessions/summary?source=realtime"),
        None,
    )
    .await
    .nsx_error(400, 255);
}

#[tokio::test]
async fn runtime_refusals_are_nsx_envelopes() {
    let s = TestServer::new().await;
    let site = s.site("stats-r", 65).await;
    let missing = "00000000-0000-4000-8000-000000000000";
    s.nsx(Method::GET, &format!("{VPN}/sessions/{missing}/statistics"), None)
        .await
        .nsx_error(404, 600);
    s.nsx(
        Method::POST,
        &format!("{VPN}/sessions/{missing}/statistics?action=reset"),
        None,
    )
    .await
    .nsx_error(404, 600);
    // Another kind's id is no session either.
    s.nsx(
        Method::GET,
        &format!("{VPN}/sessions/{}/statistics", site.ike),
        None,
    )
    .await
    .nsx_error(404, 600);
    for q in ["", "?action=clear", "?action="] {
        s.nsx(
            Method::POST,
            &format!("{VPN}/sessions/{}/statistics{q}", site.conn),
            None,
        )
        .await
        .nsx_error(400, 255);
    }
    s.nsx(
        Method::GET,
        &format!("{VPN}/sessions/{}/statistics?source=later", site.conn),
        None,
    )
    .await
    .nsx_error(400, 255);
    // Unauthenticated: refused.
    let r = s
        .call(
            Method::GET,
            &format!("{VPN}/sessions/{}/statistics", site.conn),
            Auth::None,
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    let r = s
        .call(Method::GET, &format!("{VPN}/sessions/summary"), Auth::None, None)
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    // A disabled service: refused as the realization state is.
    s.neutron(
        Method::PUT,
        &format!("{SVC}/{}", site.service),
        Some(json!({"vpnservice": {"admin_state_up": false}})),
    )
    .await
    .expect(200);
    s.nsx(
        Method::GET,
        &format!("{VPN}/sessions/{}/statistics", site.conn),
        None,
    )
    .await
    .nsx_error(400, 110_199);
    s.nsx(
        Method::POST,
        &format!("{VPN}/sessions/{}/statistics?action=reset", site.conn),
        None,
    )
    .await
    .nsx_error(400, 110_199);
    // ... while its status simply shows it down.
    let st = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}/status", site.conn), None)
        .await
        .expect(200);
    assert_eq!(st["session_status"], "DOWN");
}
