//! No status that lies (issue 12, items 2 and 3 server side): a node that
//! can't drive charon takes its connections out of `PENDING_*` at its first
//! report (ERROR, which Neutron lets be updated; NSX `failed`), a down tunnel
//! says why (Neutron `status_description`, ours and read-only; NSX
//! `ike_status.fail_reason`), and a node that never reported is named
//! `unknown` beside the ones that did.

use axum::http::Method;
use model::realization::{DownReason, IkeState, NodeReport, TunnelStatus};
use serde_json::json;

use crate::harness::*;

async fn conn(s: &TestServer, id: &str) -> serde_json::Value {
    s.neutron(Method::GET, &format!("{CONN}/{id}"), None)
        .await
        .expect(200)["ipsec_site_connection"]
        .clone()
}

#[tokio::test]
async fn a_node_without_charon_is_error_with_its_reason_and_updatable() {
    let s = TestServer::new().await;
    let site = s.site("truth-a", 61).await;
    let n = s.node("truth-a-n1", "truth-a").await;
    assert_eq!(s.conn_status(&site.conn).await, "PENDING_CREATE");

    // The agent's first report: charon's socket is missing, nothing applied.
    let why = "charon unreachable: cannot connect to charon's VICI socket /var/run/charon.vici";
    s.report(
        &n,
        &NodeReport {
            realized_generation: None,
            node_error: Some(why.into()),
            tunnels: vec![TunnelStatus {
                id: site.conn.clone(),
                down_reason: Some(DownReason::NodeFailure),
                message: Some(why.into()),
                ..TunnelStatus::default()
            }],
            ..NodeReport::default()
        },
    )
    .await;
    let c = conn(&s, &site.conn).await;
    assert_eq!(c["status"], "ERROR", "{c}");
    assert_eq!(
        c["status_description"],
        format!("NODE_FAILURE: node truth-a-n1: {why}"),
        "{c}"
    );
    // ERROR is not a pending state: the operator may change the connection.
    let r = s
        .neutron(
            Method::PUT,
            &format!("{CONN}/{}", site.conn),
            Some(json!({"ipsec_site_connection": {"description": "while charon is away"}})),
        )
        .await
        .expect(200);
    assert_eq!(r["ipsec_site_connection"]["status"], "ERROR", "{r}");

    let st = s.nsx_state(&site.conn, None).await.expect(200);
    assert_eq!(st["state"], "failed", "{st}");
    let msg = st["details"][0]["failure_message"].as_str().unwrap();
    assert!(msg.starts_with("CCP Id:") && msg.ends_with(why), "{msg}");
    let status = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}/status", site.conn), None)
        .await
        .expect(200);
    assert_eq!(status["session_status"], "DOWN", "{status}");
    assert_eq!(
        status["ike_status"]["fail_reason"],
        format!("NODE_FAILURE: {why}"),
        "{status}"
    );

    // charon is back and the tunnel is up: ACTIVE, no description.
    s.sync(&n, &[&site.conn]).await;
    let c = conn(&s, &site.conn).await;
    assert_eq!(c["status"], "ACTIVE", "{c}");
    assert_eq!(c["status_description"], serde_json::Value::Null, "{c}");
}

#[tokio::test]
async fn a_down_tunnel_names_its_reason_in_both_apis() {
    let s = TestServer::new().await;
    let site = s.site("truth-b", 62).await;
    let n = s.node("truth-b-n1", "truth-b").await;
    let cfg = s.sync(&n, &[]).await;
    let words = "received AUTHENTICATION_FAILED notify error";
    s.report(
        &n,
        &NodeReport {
            realized_generation: Some(cfg.generation),
            tunnels: vec![TunnelStatus {
                id: site.conn.clone(),
                ike_state: IkeState::Down,
                child_sas_expected: 1,
                down_reason: Some(DownReason::AuthenticationFailed),
                message: Some(words.into()),
                last_status_change_ms: Some(1_700_000_000_000),
                log: vec![format!("[IKE] {words}")],
                ..TunnelStatus::default()
            }],
            ..NodeReport::default()
        },
    )
    .await;
    let c = conn(&s, &site.conn).await;
    assert_eq!(c["status"], "DOWN", "{c}");
    assert_eq!(c["status_description"], format!("AUTHENTICATION_FAILED: {words}"));
    let status = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}/status", site.conn), None)
        .await
        .expect(200);
    assert_eq!(
        status["ike_status"]["fail_reason"],
        format!("AUTHENTICATION_FAILED: {words}"),
        "{status}"
    );
    // Listed and filtered by fields like `status`.
    let l = s
        .neutron(
            Method::GET,
            &format!("{CONN}?fields=id&fields=status_description"),
            None,
        )
        .await
        .expect(200);
    let row = &l["ipsec_site_connections"][0];
    assert_eq!(keys(row), vec!["id", "status_description"], "{l}");
    assert_eq!(
        row["status_description"],
        format!("AUTHENTICATION_FAILED: {words}")
    );

    // Disabled: administratively down, whatever the node said last.
    s.neutron(
        Method::PUT,
        &format!("{CONN}/{}", site.conn),
        Some(json!({"ipsec_site_connection": {"admin_state_up": false}})),
    )
    .await
    .expect(200);
    let c = conn(&s, &site.conn).await;
    assert_eq!(c["status"], "DOWN");
    assert_eq!(
        c["status_description"],
        "ADMINISTRATIVELY_DOWN: the connection is administratively down"
    );
}

#[tokio::test]
async fn status_description_is_read_only() {
    let s = TestServer::new().await;
    let site = s.site("truth-c", 63).await;
    // The same refusal as for Neutron's own read-only `status`.
    let put = |attr: &'static str| {
        let s = &s;
        let id = site.conn.clone();
        async move {
            s.neutron(
                Method::PUT,
                &format!("{CONN}/{id}"),
                Some(json!({"ipsec_site_connection": {attr: "x"}})),
            )
            .await
            .neutron_error(400, "HTTPBadRequest")
        }
    };
    assert_eq!(
        put("status_description").await,
        put("status").await.replace("status", "status_description")
    );
    let body = json!({"ipsec_site_connection": {
        "vpnservice_id": site.service, "ikepolicy_id": site.ike, "ipsecpolicy_id": site.ipsec,
        "peer_address": "198.51.100.9", "peer_id": "198.51.100.9", "psk": "x",
        "local_ep_group_id": site.local, "peer_ep_group_id": site.peer,
        "status_description": "forged"}});
    let m = s
        .neutron(Method::POST, CONN, Some(body))
        .await
        .neutron_error(400, "HTTPBadRequest");
    assert_eq!(m, "Attribute 'status_description' not allowed in POST");
}

#[tokio::test]
async fn a_node_that_never_reported_is_named_unknown() {
    let s = TestServer::new().await;
    let site = s.site("truth-d", 64).await;
    let ok = s.node("truth-d-n1", "truth-d").await;
    let quiet = s.node("truth-d-n2", "truth-d").await; // registered, never reports
    s.sync(&ok, &[&site.conn]).await;
    let st = s
        .nsx_state(&site.conn, Some(&site.create_request))
        .await
        .expect(200);
    assert_eq!(st["state"], "unknown", "{st}");
    let details = st["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{st}");
    let d = details
        .iter()
        .find(|d| d["sub_system_id"] == quiet.id.as_str())
        .unwrap();
    assert_eq!(d["state"], "unknown");
    let m = d["failure_message"].as_str().unwrap();
    assert!(m.starts_with("CCP Id:"), "{m}");
    assert!(m.contains("never reported"), "{m}");
    assert!(m.ends_with("Please retry operation after some time."), "{m}");
    // The node carrying the tunnel decides the Neutron status.
    assert_eq!(s.conn_status(&site.conn).await, "ACTIVE");
}
