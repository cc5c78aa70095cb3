//! Node reports arriving together are written together (a few multi-row
//! upserts instead of a commit each), and batching changes nothing a node or
//! a reader can see: every report is answered, the last report of a node
//! wins, and a report that can't be stored fails alone.

use std::str::FromStr;
use std::time::Duration;

use model::realization::NodeReport;
use sqlx::Connection;

mod common;
use common::{gateway, open};

fn report(generation: i64) -> NodeReport {
    NodeReport {
        realized_generation: Some(generation),
        ..NodeReport::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_waiting_together_are_each_answered_and_stored() {
    let (_dir, path, store) = open().await;
    let gw = gateway(&store, "p", "gw", 1).await.meta.id;
    let mut nodes = Vec::new();
    for i in 0..1200 {
        nodes.push(
            store
                .node_create(&format!("n{i}"), &gw, &format!("h{i}"))
                .await
                .unwrap()
                .id,
        );
    }
    store.node_create("gone", &gw, "h-gone").await.unwrap();
    let gone = store
        .node_states(Some(&gw))
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.node.name == "gone")
        .unwrap();
    store.node_delete(&gone.node.id).await.unwrap();

    // Hold the write lock elsewhere so that every report below queues into
    // one batch (more than one multi-row chunk of them).
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display())).unwrap();
    let mut holder = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in nodes.iter().enumerate() {
        let (s, id) = (store.clone(), id.clone());
        set.spawn(async move { (id.clone(), s.node_report(&id, &report(i as i64)).await) });
    }
    // Two reports of one node in the batch: the later one wins.
    {
        let (s, id) = (store.clone(), nodes[0].clone());
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (id.clone(), s.node_report(&id, &report(9999)).await)
        });
    }
    // A deleted node's report fails, alone.
    {
        let (s, id) = (store.clone(), gone.node.id.clone());
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (id.clone(), s.node_report(&id, &report(1)).await)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    let mut failed = Vec::new();
    let mut answered = 0;
    while let Some(done) = set.join_next().await {
        let (id, r) = done.unwrap();
        answered += 1;
        if r.is_err() {
            failed.push(id);
        }
    }
    assert_eq!(answered, 1202);
    assert_eq!(
        failed,
        vec![gone.node.id.clone()],
        "only the deleted node's report fails"
    );
    let states = store.node_states(Some(&gw)).await.unwrap();
    assert_eq!(states.len(), 1200);
    for n in &states {
        let i = nodes.iter().position(|id| *id == n.node.id).unwrap() as i64;
        let want = if i == 0 { 9999 } else { i };
        assert_eq!(n.realized_generation, Some(want), "node {i}");
        assert!(n.last_seen > 0);
    }
}
