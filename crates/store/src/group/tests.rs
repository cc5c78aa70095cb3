//! Group commit: concurrent writes share commits, each acknowledged only after
//! its own is durable; a failing member leaves the others alone; a failing
//! commit fails every member. On the engine the test run asks for (SQLite, or
//! PostgreSQL with `VPNAAS_TEST_PG`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use model::{Error, Gateway};

use super::Group;
use crate::testing::{TestDb, fresh};
use crate::{Cipher, NewMeta, Scope, Store, WriteCtx};

async fn open() -> (TestDb, Store) {
    let db = fresh().await;
    let store = Store::open(db.db.clone(), Cipher::from_key(&[1; 32]))
        .await
        .unwrap();
    (db, store)
}

fn group(store: &Store) -> Arc<Group> {
    store.pools().group.clone()
}

fn meta(name: &str) -> NewMeta {
    NewMeta {
        id: None,
        project_id: "p1".into(),
        name: name.into(),
        description: String::new(),
    }
}

fn gw(octet: u8) -> Gateway {
    Gateway::with_addresses(Some(format!("192.0.2.{octet}").parse().unwrap()), None)
}

/// Waits until `n` writers queue for the gate.
async fn until_pending(group: &Group, n: usize) {
    for _ in 0..2000 {
        if group.pending() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("only {} of {n} writers queued", group.pending());
}

/// Fails a test that would otherwise hang on a stranded batch.
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 20 s"))
}

/// Creates one gateway in a write of its own: its id and generation.
async fn create(store: &Store, i: usize) -> model::Result<(String, i64)> {
    let mut tx = store.begin(&WriteCtx::new("test")).await?;
    let rec = tx.insert(meta(&format!("gw-{i}")), gw((i % 250) as u8)).await?;
    let generation = tx.commit().await?;
    Ok((rec.meta.id, generation))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits_and_see_their_own() {
    let (_db, store) = open().await;
    let g = group(&store);
    let base = store.generation_current().await.unwrap();
    let commits = g.commits();
    // One write holds the gate while 64 queue behind it, so they batch.
    let mut first = store.begin(&WriteCtx::new("test")).await.unwrap();
    first.insert(meta("first"), gw(1)).await.unwrap();
    let writers: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (id, generation) = create(&store, i).await.unwrap();
                // Acknowledged: committed, and visible to every reader.
                let rec = store.get::<Gateway>(&Scope::All, &id).await.unwrap();
                assert_eq!(rec.meta.generation, generation, "{id}");
                assert!(store.generation_current().await.unwrap() >= generation);
                generation
            })
        })
        .collect();
    until_pending(&g, 64).await;
    let first = soon("first commit", first.commit()).await.unwrap();
    let mut generations = BTreeSet::from([first]);
    for w in writers {
        assert!(generations.insert(soon("a writer", w).await.unwrap()), "distinct");
    }
    // Every write one generation, none skipped, none shared.
    let expected: BTreeSet<i64> = (base + 1..=base + 65).collect();
    assert_eq!(generations, expected);
    assert_eq!(store.generation_current().await.unwrap(), base + 65);
    let batches = g.commits() - commits;
    eprintln!("65 writes in {batches} commits");
    assert!(batches < 65, "65 writes took {batches} commits: none shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_member_leaves_the_rest_of_its_batch() {
    let (_db, store) = open().await;
    let g = group(&store);
    // One batch for the whole test, whatever the machine's speed.
    g.set_bounds(1000, Duration::from_secs(60));
    let taken = create(&store, 0).await.unwrap().0;
    let base = store.generation_current().await.unwrap();
    let commits = g.commits();
    let mut first = store.begin(&WriteCtx::new("test")).await.unwrap();
    first.insert(meta("first"), gw(1)).await.unwrap();
    let writers: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            let taken = taken.clone();
            tokio::spawn(async move {
                let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
                let rec = tx.insert(meta(&format!("gw-{i}")), gw(i as u8)).await.unwrap();
                match i % 3 {
                    // Dropped without committing.
                    0 => {
                        drop(tx);
                        (rec.meta.id, None)
                    }
                    // A statement fails (on PostgreSQL that aborts the
                    // transaction, which its savepoint undoes).
                    1 => {
                        let dup = NewMeta {
                            id: Some(taken),
                            ..meta("dup")
                        };
                        let err = tx.insert(dup, gw(2)).await.unwrap_err();
                        assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
                        (rec.meta.id, None)
                    }
                    _ => {
                        let generation = tx.commit().await.unwrap();
                        (rec.meta.id, Some(generation))
                    }
                }
            })
        })
        .collect();
    until_pending(&g, 30).await;
    let first = soon("first commit", first.commit()).await.unwrap();
    let mut generations = BTreeSet::from([first]);
    for w in writers {
        let (id, generation) = soon("a writer", w).await.unwrap();
        let found = store.get::<Gateway>(&Scope::All, &id).await;
        match generation {
            Some(generation) => {
                assert_eq!(found.unwrap().meta.generation, generation);
                assert!(generations.insert(generation));
            }
            None => assert!(found.is_err(), "{id} was rolled back"),
        }
    }
    // A rolled-back write's generation went with it: the committed ones
    // follow each other.
    let expected: BTreeSet<i64> = (base + 1..=base + 11).collect();
    assert_eq!(generations, expected);
    assert_eq!(store.generation_current().await.unwrap(), base + 11);
    assert_eq!(g.commits() - commits, 1, "one batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_commit_fails_every_member() {
    let (db, store) = open().await;
    let g = group(&store);
    g.set_bounds(1000, Duration::from_secs(60));
    let existing = create(&store, 0).await.unwrap().0;
    let base = store.generation_current().await.unwrap();
    if db.is_postgres() {
        // A reference checked only at commit (SQLite: `defer_foreign_keys`,
        // set inside the write below).
        sqlx::query(
            "ALTER TABLE resource_refs ALTER CONSTRAINT resource_refs_dst_id_fkey \
             DEFERRABLE INITIALLY DEFERRED",
        )
        .execute(store.write_pool())
        .await
        .unwrap();
    }
    // The first member writes a dangling reference: fine until the commit.
    let mut bad = store.begin(&WriteCtx::new("test")).await.unwrap();
    if !db.is_postgres() {
        bad.execute_raw("PRAGMA defer_foreign_keys = ON").await.unwrap();
    }
    bad.execute_raw(&format!(
        "INSERT INTO resource_refs (src_id, dst_id) VALUES ('{existing}', 'nowhere')"
    ))
    .await
    .unwrap();
    let good: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
                let rec = tx.insert(meta(&format!("gw-{i}")), gw(i as u8)).await.unwrap();
                (rec.meta.id, tx.commit().await)
            })
        })
        .collect();
    until_pending(&g, 10).await;
    let err = soon("bad commit", bad.commit()).await.unwrap_err();
    assert!(matches!(err, Error::Internal { .. }), "{err:?}");
    for w in good {
        let (id, committed) = soon("a writer", w).await.unwrap();
        assert!(
            committed.is_err(),
            "{id}: acknowledged, but its batch did not commit"
        );
        assert!(
            store.get::<Gateway>(&Scope::All, &id).await.is_err(),
            "{id} rolled back"
        );
    }
    assert_eq!(store.generation_current().await.unwrap(), base);
    // The writer goes on.
    let (_, generation) = soon("next write", create(&store, 99)).await.unwrap();
    assert_eq!(generation, base + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_writes_strand_nothing() {
    let (_db, store) = open().await;
    // A write dropped as the only member: its batch is rolled back and the
    // write connection free again (the identity writes share it).
    let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
    tx.insert(meta("dropped"), gw(1)).await.unwrap();
    drop(tx);
    soon("writer connection", store.writer_durability())
        .await
        .unwrap();
    // A commit whose request goes away before the commit is done (committed
    // or not, depending on where it was cut): nothing waits on it.
    let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
    tx.insert(meta("gone"), gw(2)).await.unwrap();
    let _ = tokio::time::timeout(Duration::ZERO, tx.commit()).await;
    soon("next write", create(&store, 3)).await.unwrap();
    soon("writer connection", store.writer_durability())
        .await
        .unwrap();
    // A node report (another connection) with a batch left open for a
    // writer that never comes.
    let g = group(&store);
    g.set_bounds(1000, Duration::from_secs(60));
    let gw_id = create(&store, 4).await.unwrap().0;
    let node = store.node_create("n1", &gw_id, "hash-1").await.unwrap();
    let first = store.begin(&WriteCtx::new("test")).await.unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { create(&store, 5).await })
    };
    until_pending(&g, 1).await;
    let report = model::realization::NodeReport {
        node_error: None,
        realized_generation: Some(1),
        ..Default::default()
    };
    let reporter = {
        let store = store.clone();
        tokio::spawn(async move { store.node_report(&node.id, &report).await })
    };
    first.commit().await.unwrap();
    soon("writer", waiter).await.unwrap().unwrap();
    soon("report", reporter).await.unwrap().unwrap();
}
