//! The agent's node-API client (`agent::api`) against the real node API router,
//! served on 127.0.0.1 by the server's own listener: bearer tokens, 401 / 403,
//! the long-poll loop (200 on a change, nothing while nothing changes), reports
//! and heartbeats reaching the server's realization state, and riding out a
//! server restart.
//!
//! These tests live here rather than in the agent crate because `vpnaas`
//! depends on `agent`: the agent's own tests can't build the composed server.

use std::time::Duration;

use agent::api::{ApiError, NodeApi, poll_config, push_reports};
use axum::http::Method;
use model::realization::{NodeConfig, NodeReport};
use serde_json::{Value, json};
use tokio::sync::watch;
use vpnaas::admin;

use crate::harness::*;

fn client(url: &str, node: &str, token: &str) -> NodeApi {
    NodeApi::new(reqwest::Client::new(), url, node, token).expect("a node API client")
}

/// What `vpnaas node list` says about one node.
async fn node_row(s: &TestServer, id: &str) -> Value {
    let nodes = admin::node_list(&s.state.store).await.expect("node list");
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .cloned()
        .expect("the node is listed")
}

/// Polls `f` every 50 ms for up to 10 s.
async fn eventually<F: Future<Output = bool>>(what: &str, f: impl Fn() -> F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn wrong_token_foreign_node_and_bad_ids_are_errors() {
    let s = TestServer::new().await;
    s.gateway("a", 61).await;
    s.gateway("b", 62).await;
    let na = s.node("a-n1", "a").await;
    let nb = s.node("b-n1", "b").await;
    let serving = s.listen("127.0.0.1:0".parse().unwrap()).await;
    let url = format!("http://{}", serving.addr);

    let bad = client(&url, &na.id, "not-a-token");
    assert!(matches!(
        bad.config(None, Duration::ZERO).await,
        Err(ApiError::Status { status: 401, .. })
    ));
    assert!(matches!(
        bad.report(&NodeReport::default()).await,
        Err(ApiError::Status { status: 401, .. })
    ));
    // A's token on B's paths: the real server refuses config and reports alike.
    let foreign = client(&url, &nb.id, &na.token);
    assert!(matches!(
        foreign.config(None, Duration::ZERO).await,
        Err(ApiError::Status { status: 403, .. })
    ));
    assert!(matches!(
        foreign.report(&NodeReport::default()).await,
        Err(ApiError::Status { status: 403, .. })
    ));
    // ... and the refused report was not taken as B's heartbeat.
    assert_eq!(node_row(&s, &nb.id).await["last_seen_ms"], 0);
    // Its own paths work, and a node id that could leave the path is refused
    // before any request.
    let own = client(&url, &na.id, &na.token);
    let cfg = own
        .config(None, Duration::ZERO)
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!((cfg.node_id.as_str(), cfg.tunnels.len()), (na.id.as_str(), 0));
    assert!(matches!(
        NodeApi::new(reqwest::Client::new(), &url, "../etc", &na.token),
        Err(ApiError::NodeId(_))
    ));
    serving.stop().await;
}

#[tokio::test]
async fn long_polls_reports_and_survives_a_server_restart() {
    let s = TestServer::new().await;
    let site = s.site("ag", 60).await;
    let n = s.node("ag-n1", "ag").await;
    let serving = s.listen("127.0.0.1:0".parse().unwrap()).await;
    let addr = serving.addr;
    let api = client(&format!("http://{addr}/"), &n.id, &n.token);

    let (cfg_tx, mut cfg_rx) = watch::channel::<Option<NodeConfig>>(None);
    let (rep_tx, rep_rx) = watch::channel(NodeReport::default());
    tokio::spawn(poll_config(api.clone(), cfg_tx, Duration::from_secs(1)));
    tokio::spawn(push_reports(api.clone(), rep_rx, Duration::from_millis(300)));

    tokio::time::timeout(Duration::from_secs(5), cfg_rx.changed())
        .await
        .expect("a first snapshot")
        .unwrap();
    let first = cfg_rx.borrow_and_update().clone().unwrap();
    assert_eq!(first.tunnels.len(), 1);
    assert_eq!(first.tunnels[0].id, site.conn);
    // Nothing new: the client keeps long-polling (204s) without a new value.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!cfg_rx.has_changed().unwrap());

    // The report of the applied snapshot reaches the server: realized, not up.
    rep_tx.send_replace(NodeReport {
        node_error: None,
        realized_generation: Some(first.generation),
        ..NodeReport::default()
    });
    eventually("the connection realized (DOWN)", || async {
        s.conn_status(&site.conn).await == "DOWN"
    })
    .await;
    assert_eq!(node_row(&s, &n.id).await["realized_generation"], first.generation);
    // Heartbeats keep coming while nothing changes.
    let seen = node_row(&s, &n.id).await["last_seen_ms"].as_i64().unwrap();
    eventually("a heartbeat", || async {
        node_row(&s, &n.id).await["last_seen_ms"].as_i64().unwrap() > seen
    })
    .await;

    // A commit for the node's gateway ends the long-poll with the new snapshot.
    let conn = format!("{CONN}/{}", site.conn);
    s.neutron(
        Method::PUT,
        &conn,
        Some(json!({"ipsec_site_connection": {"mtu": 1400}})),
    )
    .await
    .expect(200);
    tokio::time::timeout(Duration::from_secs(5), cfg_rx.changed())
        .await
        .expect("the change within the long-poll")
        .unwrap();
    let second = cfg_rx.borrow_and_update().clone().unwrap();
    assert!(second.generation > first.generation);
    assert_eq!(second.tunnels[0].mtu, 1400);
    rep_tx.send_replace(NodeReport {
        node_error: None,
        realized_generation: Some(second.generation),
        ..NodeReport::default()
    });
    eventually("the update realized", || async {
        s.conn_status(&site.conn).await == "DOWN"
    })
    .await;

    // The server goes away; a change commits meanwhile ...
    serving.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.neutron(
        Method::PUT,
        &conn,
        Some(json!({"ipsec_site_connection": {"mtu": 1300}})),
    )
    .await
    .expect(200);
    // ... and it comes back on the same address: config and reports resume.
    let serving = s.listen(addr).await;
    tokio::time::timeout(Duration::from_secs(15), cfg_rx.changed())
        .await
        .expect("config after the restart")
        .unwrap();
    let third = cfg_rx.borrow_and_update().clone().unwrap();
    assert_eq!(third.tunnels[0].mtu, 1300);
    rep_tx.send_replace(NodeReport {
        node_error: None,
        realized_generation: Some(third.generation),
        ..NodeReport::default()
    });
    eventually("a report after the restart", || async {
        node_row(&s, &n.id).await["realized_generation"] == third.generation
    })
    .await;
    serving.stop().await;
}
