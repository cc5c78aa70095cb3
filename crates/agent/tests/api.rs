//! The node API client against a stand-in server on 127.0.0.1: bearer token,
//! long-poll parameters, 200/204 handling, reports and heartbeats, and riding out
//! a server restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::api::{ApiError, NodeApi, poll_config, push_reports};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::realization::{NodeConfig, NodeReport};
use tokio::sync::watch;

#[derive(Default)]
struct Mock {
    generation: i64,
    reports: Vec<NodeReport>,
    queries: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<Mock>>;

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer tok-1")
}

async fn config(
    State(m): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if id != "node-1" {
        return StatusCode::FORBIDDEN.into_response();
    }
    let known: Option<i64> = q.get("known").map(|k| k.parse().unwrap());
    let wait: u64 = q.get("wait").map_or(0, |w| w.parse().unwrap());
    m.lock().unwrap().queries.push(q);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let g = m.lock().unwrap().generation;
        if known.is_none_or(|k| g > k) {
            return Json(NodeConfig {
                node_id: id,
                gateway_id: "gw".into(),
                generation: g,
                tunnels: vec![],
            })
            .into_response();
        }
        if tokio::time::Instant::now() >= deadline {
            return StatusCode::NO_CONTENT.into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn report(State(m): State<Shared>, h: HeaderMap, Json(r): Json<NodeReport>) -> StatusCode {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED;
    }
    m.lock().unwrap().reports.push(r);
    StatusCode::NO_CONTENT
}

async fn serve(m: Shared, addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/internal/v1/nodes/{id}/config", get(config))
        .route("/internal/v1/nodes/{id}/report", post(report))
        .with_state(m);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn wrong_token_and_foreign_node_are_errors() {
    let m = Shared::default();
    let (addr, _t) = serve(m, "127.0.0.1:0".parse().unwrap()).await;
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let bad = NodeApi::new(http.clone(), &url, "node-1", "nope").unwrap();
    assert!(matches!(
        bad.config(None, Duration::ZERO).await,
        Err(ApiError::Status { status: 401, .. })
    ));
    let other = NodeApi::new(http.clone(), &url, "node-2", "tok-1").unwrap();
    assert!(matches!(
        other.report(&NodeReport::default()).await,
        Ok(()) // the stand-in only checks the token on reports
    ));
    assert!(matches!(
        other.config(None, Duration::ZERO).await,
        Err(ApiError::Status { status: 403, .. })
    ));
    assert!(NodeApi::new(http, &url, "../etc", "tok-1").is_err());
}

#[tokio::test]
async fn long_polls_reports_and_survives_a_server_restart() {
    let m = Shared::default();
    m.lock().unwrap().generation = 3;
    let (addr, server) = serve(m.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let api = NodeApi::new(
        reqwest::Client::new(),
        &format!("http://{addr}/"),
        "node-1",
        "tok-1",
    )
    .unwrap();

    let (cfg_tx, mut cfg_rx) = watch::channel(None);
    let (rep_tx, rep_rx) = watch::channel(NodeReport::default());
    tokio::spawn(poll_config(api.clone(), cfg_tx, Duration::from_secs(1)));
    tokio::spawn(push_reports(api.clone(), rep_rx, Duration::from_millis(300)));

    cfg_rx.changed().await.unwrap();
    assert_eq!(cfg_rx.borrow_and_update().as_ref().unwrap().generation, 3);
    // Nothing new: the client keeps long-polling with known=3 (204s), no new value.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!cfg_rx.has_changed().unwrap());
    {
        let q = &m.lock().unwrap().queries;
        assert!(q.len() >= 2);
        assert_eq!(q[0].get("known"), None);
        assert_eq!(q[1].get("known").map(String::as_str), Some("3"));
        assert_eq!(q[1].get("wait").map(String::as_str), Some("1"));
    }
    m.lock().unwrap().generation = 5;
    tokio::time::timeout(Duration::from_secs(5), cfg_rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cfg_rx.borrow_and_update().as_ref().unwrap().generation, 5);

    // Reports: on change at once, and as heartbeats.
    rep_tx.send_replace(NodeReport {
        realized_generation: Some(5),
        ..NodeReport::default()
    });
    eventually("report of generation 5", || {
        m.lock()
            .unwrap()
            .reports
            .iter()
            .any(|r| r.realized_generation == Some(5))
    })
    .await;
    let n = m.lock().unwrap().reports.len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(m.lock().unwrap().reports.len() >= n + 2, "heartbeats keep coming");

    // The server goes away (keeping its state, like a restart on the same DB)...
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    m.lock().unwrap().generation = 8;
    rep_tx.send_replace(NodeReport {
        realized_generation: Some(8),
        ..NodeReport::default()
    });
    // ... and comes back on the same port: config and reports resume on their own.
    let (_addr, _server) = serve(m.clone(), addr).await;
    tokio::time::timeout(Duration::from_secs(15), cfg_rx.changed())
        .await
        .expect("config after restart")
        .unwrap();
    assert_eq!(cfg_rx.borrow().as_ref().unwrap().generation, 8);
    eventually("report after restart", || {
        m.lock()
            .unwrap()
            .reports
            .iter()
            .any(|r| r.realized_generation == Some(8))
    })
    .await;
}
