//! What a change costs the node API: the SQL statements issued and the
//! configurations built between a commit to one gateway and the answers to
//! that gateway's waiting long-polls, counted from sqlx's own statement log
//! (`sqlx::query` events), with few and with many other gateways whose nodes
//! wait too.
//!
//! The property (issue 10 item 5): a change costs the nodes in its span, not
//! the fleet. The commit wakes only its gateway's long-polls; they share one
//! build of the configuration; no statement is issued per waiting node, and
//! the statements and rows read are the same with 5 or 65 gateways waiting.
//!
//! A test binary of its own, with one test: the statement log is
//! process-global, and nothing else may run while it records.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use model::realization::NodeConfig;
use realize::{RealizeConfig, Realizer};
use store::nodes::Node;
use store::testing::statements::{self, Statement, quiet};
use store::{Cipher, NewMeta, Scope, Store, WriteCtx};
use tower::ServiceExt;

/// The follower's read of the gateways that changed.
fn is_follow(s: &Statement) -> bool {
    s.sql.contains("FROM gateway_generations WHERE generation > $1")
}

/// A per-node read of its gateway's generation.
fn is_per_node(s: &Statement) -> bool {
    s.sql.contains("FROM gateway_generations WHERE gateway_id")
}

struct Fleet {
    store: Store,
    /// The gateway that changes, and its nodes with their tokens.
    busy: String,
    busy_nodes: Vec<(Node, String)>,
    /// One node (with its token) on each other gateway.
    others: Vec<(Node, String)>,
}

async fn gateway(store: &Store, name: &str) -> String {
    let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
    let meta = NewMeta {
        id: None,
        project_id: "p".into(),
        name: name.into(),
        description: String::new(),
    };
    let body = model::Gateway::with_addresses(Some("192.0.2.1".parse().unwrap()), None);
    let id = tx.insert(meta, body).await.unwrap().meta.id;
    tx.commit().await.unwrap();
    id
}

async fn node(store: &Store, name: &str, gateway: &str) -> (Node, String) {
    let (token, hash) = store::new_token();
    (store.node_create(name, gateway, &hash).await.unwrap(), token)
}

impl Fleet {
    async fn grow(&mut self, to: usize) {
        for i in self.others.len()..to {
            let gw = gateway(&self.store, &format!("gw-{i}")).await;
            let n = node(&self.store, &format!("gw-{i}-n"), &gw).await;
            self.others.push(n);
        }
    }
}

async fn poll(app: Router, node: Node, token: String, known: i64) -> (StatusCode, Option<NodeConfig>) {
    let req = Request::get(format!(
        "/internal/v1/nodes/{}/config?known={known}&wait=60",
        node.id
    ))
    .header("authorization", format!("Bearer {token}"))
    .body(Body::empty())
    .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).ok())
}

/// What one change to `fleet.busy` costs while every node of the fleet waits.
struct Cost {
    log: Vec<Statement>,
    builds: u64,
}

async fn change_with_everyone_waiting(fleet: &Fleet) -> Cost {
    let r = Realizer::new(fleet.store.clone(), RealizeConfig::default());
    let app = realize::http::router().with_state(r.clone());
    let known = fleet.store.generation_current().await.unwrap();
    let spawn = |(n, t): &(Node, String)| tokio::spawn(poll(app.clone(), n.clone(), t.clone(), known));
    let busy: Vec<_> = fleet.busy_nodes.iter().map(spawn).collect();
    let others: Vec<_> = fleet.others.iter().map(spawn).collect();
    let all = busy.len() + others.len();
    let limit = Instant::now() + Duration::from_secs(20);
    while r.config_requests() < all {
        assert!(
            Instant::now() < limit,
            "{} of {all} long-polls waiting",
            r.config_requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    quiet().await;
    assert_eq!(r.config_builds(), 0, "nothing newer than known yet");

    statements::start();
    let mut tx = fleet.store.begin(&WriteCtx::new("test")).await.unwrap();
    let mut gw: model::Record<model::Gateway> = tx.get(&Scope::All, &fleet.busy).await.unwrap();
    gw.body.external_v4 = Some("192.0.2.2".parse().unwrap());
    tx.update(gw).await.unwrap();
    let generation = tx.commit().await.unwrap();
    let mut answers = Vec::new();
    for h in busy {
        let (status, cfg) = tokio::time::timeout(Duration::from_secs(20), h)
            .await
            .expect("the change's gateway answers")
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        answers.push(cfg.expect("a NodeConfig"));
    }
    // The other gateways' nodes are not woken.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = statements::stop();
    assert!(
        others.iter().all(|h| !h.is_finished()),
        "another gateway answered"
    );

    for (cfg, (n, _)) in answers.iter().zip(&fleet.busy_nodes) {
        assert_eq!(cfg.node_id, n.id);
        assert_eq!(cfg.gateway_id, fleet.busy);
        assert!(cfg.generation >= generation, "{} < {generation}", cfg.generation);
        assert_eq!(cfg.generation, answers[0].generation, "one shared snapshot");
        let fresh = r.node_config(n).await.unwrap();
        assert_eq!(cfg.tunnels, fresh.tunnels);
    }
    // Shutting down answers the others "nothing new".
    r.stop();
    for h in others {
        let (status, _) = h.await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    Cost {
        log,
        builds: r.config_builds(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_costs_its_gateway_not_the_fleet() {
    statements::install();
    let db = store::testing::fresh().await;
    let store = Store::open(db.db.clone(), Cipher::from_key(&[5; 32]))
        .await
        .unwrap();
    let busy = gateway(&store, "busy").await;
    let mut busy_nodes = Vec::new();
    for i in 0..40 {
        busy_nodes.push(node(&store, &format!("busy-n{i}"), &busy).await);
    }
    let mut fleet = Fleet {
        store,
        busy,
        busy_nodes,
        others: Vec::new(),
    };
    fleet.grow(4).await;
    let small = change_with_everyone_waiting(&fleet).await;
    fleet.grow(64).await;
    let large = change_with_everyone_waiting(&fleet).await;

    for (size, cost) in [("5 gateways", &small), ("65 gateways", &large)] {
        // 40 nodes answered from one build.
        assert_eq!(cost.builds, 1, "{size}");
        // Not one statement per waiting node.
        let per_node: Vec<_> = cost.log.iter().filter(|s| is_per_node(s)).collect();
        assert!(per_node.is_empty(), "{size}: {per_node:#?}");
        // The follower reads only the changed gateway (once per wake: the
        // commit, maybe a periodic re-check).
        let follow: Vec<_> = cost.log.iter().filter(|s| is_follow(s)).collect();
        assert!((1..=3).contains(&follow.len()), "{size}: {follow:#?}");
        assert!(follow.iter().all(|s| s.rows <= 1), "{size}: {follow:#?}");
    }
    // Everything else (the write, the one build) is the same at both sizes,
    // rows included. Compared as multisets: statements of different
    // connections interleave by timing (on PostgreSQL the NOTIFY can wake the
    // builder before the writer's COMMIT is recorded).
    let rest = |c: &Cost| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = c
            .log
            .iter()
            .filter(|s| !is_follow(s))
            .map(|s| (s.sql.clone(), s.rows))
            .collect();
        v.sort();
        v
    };
    assert_eq!(rest(&small), rest(&large));
    assert!(rest(&large).len() < 30, "{:#?}", large.log);
}
