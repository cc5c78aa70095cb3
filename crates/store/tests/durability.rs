//! Desired state stays durable whatever happens to node reports, and the
//! database files are private to their owner.

use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;
use std::time::Duration;

use model::realization::NodeReport;
use model::*;
use sqlx::Connection;
use store::{Cipher, NewMeta, Store, WriteCtx};

async fn open() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open(&path, Cipher::from_key(&[1; 32])).await.unwrap();
    (dir, path, store)
}

async fn gateway(store: &Store, name: &str) -> String {
    store
        .gateway_create(
            &WriteCtx::new("test"),
            NewMeta {
                id: None,
                project_id: "p1".into(),
                name: name.into(),
                description: String::new(),
            },
            Gateway {
                external_v4: Some("192.0.2.1".parse().unwrap()),
                external_v6: None,
            },
        )
        .await
        .unwrap()
        .record
        .meta
        .id
}

/// Defect: a report dropped while waiting for the write lock used to leave the
/// shared writer at `synchronous = NORMAL`, so later API writes were not fsynced.
#[tokio::test]
async fn dropped_report_leaves_writer_durable() {
    let (_dir, path, store) = open().await;
    assert_eq!(store.writer_synchronous().await.unwrap(), 2, "FULL after open");
    let gw = gateway(&store, "gw").await;
    let node = store.node_create("n1", &gw, "hash-1").await.unwrap();

    // Another connection (think: an admin CLI command) holds the write lock.
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display())).unwrap();
    let mut holder = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();

    // The reporting client goes away while its report waits for the lock.
    let report = NodeReport {
        realized_generation: Some(1),
        ..NodeReport::default()
    };
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), store.node_report(&node.id, &report)).await;
    assert!(dropped.is_err(), "the report must have been waiting for the lock");

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    assert_eq!(
        store.writer_synchronous().await.unwrap(),
        2,
        "the durable writer must stay at synchronous = FULL"
    );
    // A durable write afterwards still goes through the FULL writer.
    gateway(&store, "gw2").await;
    assert_eq!(store.writer_synchronous().await.unwrap(), 2);
    // And reports still work.
    store.node_report(&node.id, &report).await.unwrap();
    assert_eq!(store.writer_synchronous().await.unwrap(), 2);
}

#[tokio::test]
async fn database_files_are_private() {
    let (_dir, path, store) = open().await;
    // Make sure the WAL and shared-memory files exist.
    gateway(&store, "gw").await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            0o600,
            "{} has mode {mode:o}",
            std::path::Path::new(&p).display()
        );
    }
}
