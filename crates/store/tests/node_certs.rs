//! Nodes registered by client certificate, and the migration that allows them.

use std::str::FromStr;

use model::realization::NodeReport;
use model::*;
use sqlx::Connection;
use store::Store;
use store::nodes::NodeCredentials;

mod common;
use common::{cipher, gateway};

#[tokio::test]
async fn node_by_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), cipher()).await.unwrap();
    let gw = gateway(&store, "p1", "gw", 1).await.meta.id;
    let fp = "AB".repeat(32);
    let creds = NodeCredentials {
        token_hash: None,
        cert_sha256: Some(fp.clone()),
    };
    let node = store.node_register("n1", &gw, &creds).await.unwrap();
    assert_eq!(node.cert_sha256.as_deref(), Some(&*fp.to_ascii_lowercase()));
    let found = store.node_by_cert(&fp).await.unwrap().unwrap();
    assert_eq!(found, node);
    assert!(store.node_by_cert(&"cd".repeat(32)).await.unwrap().is_none());
    // A node without a token can't be found by any token.
    assert!(store.node_by_token("").await.unwrap().is_none());

    // One certificate, one node.
    let again = store.node_register("n2", &gw, &creds).await;
    assert!(matches!(again, Err(Error::AlreadyExists { .. })), "{again:?}");
    // A node needs some credential.
    let none = store.node_register("n3", &gw, &NodeCredentials::default()).await;
    assert!(matches!(none, Err(Error::Invalid(_))), "{none:?}");

    // Token nodes are unchanged.
    let t = store.node_create("n4", &gw, "hash-4").await.unwrap();
    assert_eq!(t.cert_sha256, None);
    assert_eq!(store.node_by_token("hash-4").await.unwrap().unwrap(), t);
    let states = store.node_states(Some(&gw)).await.unwrap();
    assert_eq!(states.len(), 2);
}

/// A database created before migration 0003 keeps its nodes and their reports.
#[tokio::test]
async fn migration_keeps_nodes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    // Migrations 0001 and 0002 only, as an older release left the database.
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).unwrap();
    for f in ["0001_initial.sql", "0002_nodes.sql"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(f),
            old.join(f),
        )
        .unwrap();
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    // A gateway, a node and its report, written with the old schema.
    sqlx::query(
        "INSERT INTO resources (id, kind, project_id, name, description, body, secret, revision, \
         generation, created_at, updated_at, created_by, updated_by) VALUES \
         ('gw1', 'gateway', 'p1', 'gw', '', '{\"external_v4\":\"192.0.2.1\"}', NULL, 1, 0, 0, 0, 't', 't')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("INSERT INTO nodes (id, name, gateway_id, token_hash, created_at) VALUES ('n1', 'n1', 'gw1', 'h1', 5)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO node_status (node_id, realized_generation, last_seen, failures, tunnels, agent) \
         VALUES ('n1', 7, 9, '[]', '[]', 'old-agent')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = Store::open(&path, cipher()).await.unwrap();
    let node = store.node_by_token("h1").await.unwrap().expect("node kept");
    assert_eq!(
        (node.id.as_str(), node.gateway_id.as_str(), node.created_at),
        ("n1", "gw1", 5)
    );
    assert_eq!(node.cert_sha256, None);
    let states = store.node_states(None).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!((states[0].realized_generation, states[0].last_seen), (Some(7), 9));
    // The rebuilt tables keep their constraints: reports follow their node.
    store
        .node_report(
            "n1",
            &NodeReport {
                node_error: None,
                realized_generation: Some(8),
                ..NodeReport::default()
            },
        )
        .await
        .unwrap();
    store.node_delete("n1").await.unwrap();
    assert!(store.node_states(None).await.unwrap().is_empty());
    assert!(
        store.node_report("n1", &NodeReport::default()).await.is_err(),
        "foreign key to nodes"
    );
}
