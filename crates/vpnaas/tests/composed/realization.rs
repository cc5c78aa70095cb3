//! Realization with simulated gateway nodes: the node API (authentication,
//! isolation per gateway, long-poll), and how reports drive the Neutron
//! `status` (PENDING_* → ACTIVE / DOWN / ERROR) and the NSX session `/state`
//! (`in_progress` → `in_sync`, `failed`, disabled, deleted), as in the NSX admin
//! guide's "Check the Realized State of an IPSec VPN Session" examples.

use std::time::{Duration, Instant};

use axum::http::Method;
use model::realization::{Failure, NodeReport};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn node_api_authenticates_and_isolates_gateways() {
    let s = TestServer::new().await;
    let a = s.site("iso-a", 41).await;
    let b = s.site("iso-b", 42).await;
    let na = s.node("iso-a-n1", "iso-a").await;
    let nb = s.node("iso-b-n1", "iso-b").await;
    let path = format!("/internal/v1/nodes/{}/config", na.id);
    for auth in [Auth::None, Auth::Bearer("not-a-token")] {
        let r = s.call(Method::GET, &path, auth, None).await;
        let body = r.expect(401);
        assert_eq!(body["error"]["code"], 401, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // One node's token does not open another node's paths.
    let r = s.call(Method::GET, &path, Auth::Bearer(&nb.token), None).await;
    assert_eq!(r.expect(403)["error"]["code"], 403);

    let cfg = s.node_config(&na, "").await.expect(200);
    assert_eq!(cfg["node_id"], na.id.as_str());
    assert_eq!(cfg["gateway_id"], a.gateway.id.as_str());
    let tunnels = cfg["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 1, "only its own gateway's tunnels: {cfg}");
    let t = &tunnels[0];
    assert_eq!(t["id"], a.conn.as_str());
    assert_ne!(t["id"], b.conn.as_str());
    assert_eq!(t["psk"], "psk-iso-a");
    assert_eq!(t["local_address"], "172.30.41.1");
    assert_eq!(t["peer_address"], "198.51.100.41");
    assert_eq!(t["local_ts"], json!(["10.41.0.0/24"]));
    assert_eq!(t["remote_ts"], json!(["10.141.0.0/24"]));
    assert_eq!(t["ike"]["version"], "v1");
    assert_eq!(t["ike"]["encryption"], json!(["aes-128"]));
    assert_eq!(t["child"]["pfs_groups"], json!(["group5"]));
    assert_eq!(
        t["dpd"],
        json!({"action": "hold", "interval": 30, "timeout": 120})
    );
    assert_eq!(t["enabled"], true);
    assert!(cfg["generation"].as_i64() >= t["generation"].as_i64());
}

#[tokio::test]
async fn long_poll_answers_on_a_commit_to_its_gateway_only() {
    let s = TestServer::new().await;
    let site = s.site("poll", 43).await;
    let n = s.node("poll-n1", "poll").await;
    let g = s.sync(&n, &[]).await.generation;
    // Nothing new: 204 at once without a wait.
    assert_eq!(
        s.node_config(&n, &format!("?known={g}")).await.expect(204),
        serde_json::Value::Null
    );

    let started = Instant::now();
    let query = format!("?known={g}&wait=10");
    let poll = s.node_config(&n, &query);
    let change = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.neutron(
            Method::PUT,
            &format!("{CONN}/{}", site.conn),
            Some(json!({"ipsec_site_connection": {"mtu": 1400}})),
        )
        .await
        .expect(200);
    };
    let (r, ()) = tokio::join!(poll, change);
    let cfg = r.expect(200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered on the commit"
    );
    assert!(cfg["generation"].as_i64().unwrap() > g);
    assert_eq!(cfg["tunnels"][0]["mtu"], 1400);

    // A write to another gateway does not wake this node.
    let g2 = cfg["generation"].as_i64().unwrap();
    let query = format!("?known={g2}&wait=1");
    let poll = s.node_config(&n, &query);
    let other = s.site("poll-other", 44);
    let (r, _) = tokio::join!(poll, other);
    r.expect(204);
}

#[tokio::test]
async fn reports_drive_neutron_status_and_nsx_state() {
    let s = TestServer::new().await;
    let site = s.site("seed-a", 45).await;
    let n1 = s.node("seed-a-n1", "seed-a").await;
    let n2 = s.node("seed-a-n2", "seed-a").await;
    assert_eq!(s.conn_status(&site.conn).await, "PENDING_CREATE");
    // No node has answered yet.
    let st = s
        .nsx_state(&site.conn, Some(&site.create_request))
        .await
        .expect(200);
    assert_eq!(
        st,
        json!({"state": "unknown",
               "failure_message": "Unable to get response from any CCP node. Please retry operation after some time."})
    );

    s.sync(&n1, &[&site.conn]).await;
    // n2 is alive (a heartbeat) but has applied nothing yet.
    s.report(
        &n2,
        &NodeReport {
            node_error: None,
            realized_generation: Some(0),
            ..NodeReport::default()
        },
    )
    .await;
    let st = s
        .nsx_state(&site.conn, Some(&site.create_request))
        .await
        .expect(200);
    assert_eq!(st["state"], "in_progress", "{st}");
    assert_eq!(
        st["failure_message"],
        "The state realization is in progress at transport nodes."
    );
    let details = st["details"].as_array().unwrap();
    let of = |id: &str| {
        details
            .iter()
            .find(|d| d["sub_system_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        of(&n1.id),
        json!({"sub_system_type": "TransportNode", "sub_system_id": n1.id, "state": "in_sync"})
    );
    let d2 = of(&n2.id);
    assert_eq!(d2["state"], "in_progress");
    assert!(
        d2["failure_message"].as_str().unwrap().starts_with("CCP Id:"),
        "{d2}"
    );
    // n1 carries the tunnel up: the connection is ACTIVE already.
    assert_eq!(s.conn_status(&site.conn).await, "ACTIVE");

    s.sync(&n2, &[&site.conn]).await;
    let st = s
        .nsx_state(&site.conn, Some(&site.create_request))
        .await
        .expect(200);
    assert_eq!(st["state"], "in_sync", "{st}");
    assert!(st.get("failure_message").is_none());

    // A later change is in progress until the nodes report it; the earlier
    // request stays in sync.
    let r = s
        .neutron(
            Method::PUT,
            &format!("{CONN}/{}", site.conn),
            Some(json!({"ipsec_site_connection": {"name": "seed-a-renamed"}})),
        )
        .await;
    let req2 = r.header("x-nsx-requestid").to_string();
    r.expect(200);
    assert_ne!(req2, site.create_request);
    let state_of = |rid: Option<String>| {
        let s = &s;
        let conn = site.conn.clone();
        async move { s.nsx_state(&conn, rid.as_deref()).await.expect(200)["state"].clone() }
    };
    assert_eq!(state_of(Some(site.create_request.clone())).await, "in_sync");
    assert_eq!(state_of(Some(req2.clone())).await, "in_progress");
    assert_eq!(state_of(None).await, "in_progress");
    assert_eq!(s.conn_status(&site.conn).await, "PENDING_UPDATE");
    s.sync(&n1, &[&site.conn]).await;
    s.sync(&n2, &[&site.conn]).await;
    assert_eq!(state_of(Some(req2)).await, "in_sync");
    assert_eq!(s.conn_status(&site.conn).await, "ACTIVE");
    let svc = s
        .neutron(Method::GET, &format!("{SVC}/{}", site.service), None)
        .await
        .expect(200);
    assert_eq!(svc["vpnservice"]["status"], "ACTIVE");
    // An unknown request id is NSX's 404.
    s.nsx_state(&site.conn, Some("00000000-0000-4000-8000-000000000000"))
        .await
        .nsx_error(404, 600);
}

#[tokio::test]
async fn a_silent_node_is_unknown() {
    let timeout = Duration::from_millis(300);
    let s = TestServer::with_node_timeout(timeout).await;
    let site = s.site("seed-b", 46).await;
    let n1 = s.node("seed-b-n1", "seed-b").await;
    let n2 = s.node("seed-b-n2", "seed-b").await;
    s.sync(&n2, &[]).await;
    tokio::time::sleep(timeout + Duration::from_millis(200)).await;
    s.sync(&n1, &[]).await;
    let st = s
        .nsx_state(&site.conn, Some(&site.create_request))
        .await
        .expect(200);
    assert_eq!(st["state"], "unknown", "{st}");
    assert_eq!(
        st["failure_message"],
        "The state realization is unknown at transport nodes"
    );
    let details = st["details"].as_array().unwrap();
    let of = |id: &str| {
        details
            .iter()
            .find(|d| d["sub_system_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(of(&n1.id)["state"], "in_sync");
    let d2 = of(&n2.id);
    assert_eq!(d2["state"], "unknown");
    let msg = d2["failure_message"].as_str().unwrap();
    assert!(msg.starts_with("CCP Id:"), "{msg}");
    assert!(
        msg.ends_with(
            ", Message: Unable to get response from the node. Please retry operation after some time."
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn a_failure_is_error_and_failed_until_fixed() {
    let s = TestServer::new().await;
    let site = s.site("seed-f", 48).await;
    let n = s.node("seed-f-n1", "seed-f").await;
    let g = s.node_config(&n, "").await.expect(200)["generation"]
        .as_i64()
        .unwrap();
    s.report(
        &n,
        &NodeReport {
            node_error: None,
            realized_generation: Some(g),
            failures: vec![Failure {
                entity_id: site.conn.clone(),
                message: "charon: load-conn failed: invalid proposal".into(),
            }],
            ..NodeReport::default()
        },
    )
    .await;
    let st = s.nsx_state(&site.conn, None).await.expect(200);
    assert_eq!(st["state"], "failed", "{st}");
    assert_eq!(st["details"][0]["state"], "failed");
    let msg = st["details"][0]["failure_message"].as_str().unwrap();
    assert!(msg.contains("load-conn failed: invalid proposal"), "{msg}");
    assert_eq!(s.conn_status(&site.conn).await, "ERROR");

    s.sync(&n, &[]).await; // fixed, tunnel not up yet
    assert_eq!(
        s.nsx_state(&site.conn, None).await.expect(200)["state"],
        "in_sync"
    );
    assert_eq!(s.conn_status(&site.conn).await, "DOWN");
    s.sync(&n, &[&site.conn]).await;
    assert_eq!(s.conn_status(&site.conn).await, "ACTIVE");
}

#[tokio::test]
async fn a_disabled_service_stops_its_tunnels_and_a_delete_removes_them() {
    let s = TestServer::new().await;
    let site = s.site("seed-d", 49).await;
    let n = s.node("seed-d-n1", "seed-d").await;
    s.sync(&n, &[]).await;
    let svc = format!("{SVC}/{}", site.service);
    s.neutron(
        Method::PUT,
        &svc,
        Some(json!({"vpnservice": {"admin_state_up": false}})),
    )
    .await
    .expect(200);
    let e = s.nsx_state(&site.conn, None).await.nsx_error(400, 110199);
    assert_eq!(
        e["error_message"],
        format!(
            "VPN service {} associated with the session {} is disabled. Can not get the realization status.",
            site.service, site.conn
        )
    );
    let cfg = s.node_config(&n, "").await.expect(200);
    assert_eq!(
        cfg["tunnels"][0]["enabled"], false,
        "the node must stop carrying it"
    );
    assert_eq!(s.conn_status(&site.conn).await, "DOWN");

    s.neutron(
        Method::PUT,
        &svc,
        Some(json!({"vpnservice": {"admin_state_up": true}})),
    )
    .await
    .expect(200);
    let r = s
        .neutron(Method::DELETE, &format!("{CONN}/{}", site.conn), None)
        .await;
    let delete_request = r.header("x-nsx-requestid").to_string();
    r.expect(204);
    let e = s
        .nsx_state(&site.conn, Some(&delete_request))
        .await
        .nsx_error(404, 600);
    assert!(e["error_message"].as_str().unwrap().contains(&site.conn), "{e}");
    assert_eq!(s.node_config(&n, "").await.expect(200)["tunnels"], json!([]));
}
