//! Desired state stays durable whatever happens to node reports, and the
//! database files are private to their owner.

use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;
use std::time::Duration;

use model::realization::NodeReport;
use sqlx::Connection;

mod common;
use common::{gateway, open};

/// Defect: a report dropped while waiting for the write lock used to leave the
/// shared writer at `synchronous = NORMAL`, so later API writes were not fsynced.
#[tokio::test]
async fn dropped_report_leaves_writer_durable() {
    let (_dir, path, store) = open().await;
    assert_eq!(store.writer_durability().await.unwrap(), "2", "FULL after open");
    let gw = gateway(&store, "p1", "gw", 1).await.meta.id;
    let node = store.node_create("n1", &gw, "hash-1").await.unwrap();

    // Another connection (think: an admin CLI command) holds the write lock.
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display())).unwrap();
    let mut holder = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();

    // The reporting client goes away while its report waits for the lock.
    let report = NodeReport {
        node_error: None,
        realized_generation: Some(1),
        ..NodeReport::default()
    };
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), store.node_report(&node.id, &report)).await;
    assert!(dropped.is_err(), "the report must have been waiting for the lock");

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    assert_eq!(
        store.writer_durability().await.unwrap(),
        "2",
        "the durable writer must stay at synchronous = FULL"
    );
    // A durable write afterwards still goes through the FULL writer.
    gateway(&store, "p1", "gw2", 1).await;
    assert_eq!(store.writer_durability().await.unwrap(), "2");
    // And reports still work.
    store.node_report(&node.id, &report).await.unwrap();
    assert_eq!(store.writer_durability().await.unwrap(), "2");
}

#[tokio::test]
async fn database_files_are_private() {
    let (_dir, path, store) = open().await;
    // Make sure the WAL and shared-memory files exist.
    gateway(&store, "p1", "gw", 1).await;
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
