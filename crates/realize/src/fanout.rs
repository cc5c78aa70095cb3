//! Fan-out of changes to the nodes' long-polls, at a cost that grows with the
//! work, not the fleet.
//!
//! - One follower task per process wakes on every commit
//!   ([`store::Store::subscribe`]) and on a periodic re-check (writers the
//!   store is not told about), reads only the gateways whose generation moved
//!   since it last looked (one indexed query), and bumps a `watch` channel per
//!   gateway that some node waits on. A long-poll waits on its own gateway's
//!   channel only: a commit wakes the nodes of the gateways it changed.
//! - The configuration of a gateway is built once per change and shared by
//!   every node of the gateway that asks for it (single-flight: the first
//!   asker builds, the others await the same build), serialized once; each
//!   answer only puts its own `node_id` in front.
//!
//! Memory is bounded by the gateways nodes currently wait on: a gateway's
//! channel and its build go when its last waiting long-poll ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use model::Result;
use model::realization::Tunnel;
use serde::Serialize;
use tokio::sync::{OnceCell, watch};

use crate::Realizer;

/// The per-process fan-out state, shared by every clone of a [`Realizer`].
pub(crate) struct Fanout {
    /// The follower task, started by the first long-poll.
    follower: OnceCell<()>,
    /// The gateways some long-poll waits on.
    gateways: Mutex<HashMap<String, Watched>>,
    /// How many gateway configurations were built.
    builds: AtomicU64,
}

/// A gateway some long-poll waits on.
struct Watched {
    /// The highest generation of the gateway read: by the first long-poll
    /// (its own read, [`Waiter::seed`]), then by the follower.
    changes: watch::Sender<i64>,
    /// Whether a long-poll's own read was put in `changes`: later long-polls
    /// then need no read of their own (what commits after it reaches them
    /// through the follower).
    seeded: bool,
    /// The latest build of its configuration.
    build: Option<Arc<Build>>,
}

/// One shared build of a gateway's configuration.
struct Build {
    /// The gateway generation it was started for: its snapshot is taken after
    /// that generation was seen committed, so it contains it.
    floor: i64,
    cell: OnceCell<Arc<Built>>,
}

/// A gateway's configuration as every node of it gets it, but for `node_id`.
pub(crate) struct Built {
    /// `NodeConfig` without its first field, `node_id`, serialized:
    /// `{"gateway_id":…,"generation":…,"tunnels":[…]}`.
    rest: Bytes,
    /// The gateway's registered nodes in the snapshot built from: a node
    /// not among them (unregistered while it waited, or registered since)
    /// has its registration looked at before it is answered.
    nodes: std::collections::HashSet<String>,
}

/// The fields of [`model::realization::NodeConfig`] after `node_id`, in its
/// order: serialized behind `{"node_id":…,` they are byte for byte what
/// serializing the whole `NodeConfig` gives.
#[derive(Serialize)]
struct Rest<'a> {
    gateway_id: &'a str,
    generation: i64,
    tunnels: &'a [Tunnel],
}

impl Built {
    pub(crate) fn new(
        gateway_id: &str,
        generation: i64,
        tunnels: &[Tunnel],
        nodes: std::collections::HashSet<String>,
    ) -> Result<Built> {
        let rest = serde_json::to_vec(&Rest {
            gateway_id,
            generation,
            tunnels,
        })
        .map_err(|e| model::Error::internal("encode node configuration", e))?;
        Ok(Built {
            rest: rest.into(),
            nodes,
        })
    }

    /// Whether `node_id` was a registered node of the gateway in the
    /// snapshot this was built from.
    pub(crate) fn has_node(&self, node_id: &str) -> bool {
        self.nodes.contains(node_id)
    }

    /// The `NodeConfig` of `node_id`, serialized.
    pub(crate) fn body(&self, node_id: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.rest.len() + node_id.len() + 16);
        body.extend_from_slice(b"{\"node_id\":");
        // Serializing a string cannot fail.
        serde_json::to_writer(&mut body, node_id).expect("a string serializes");
        body.push(b',');
        body.extend_from_slice(&self.rest[1..]);
        body
    }

    /// The `200` answer to `node_id`'s long-poll (what `Json(NodeConfig)` answers).
    pub(crate) fn response(&self, node_id: &str) -> Response {
        ([(CONTENT_TYPE, "application/json")], self.body(node_id)).into_response()
    }
}

/// A long-poll's interest in its gateway: ends (and, if it was the last, frees
/// the gateway's channel and build) when dropped.
pub(crate) struct Waiter {
    rx: watch::Receiver<i64>,
    /// Whether the gateway's channel already holds a long-poll's own read.
    seeded: bool,
    gateway: String,
    fanout: Arc<Fanout>,
}

impl Waiter {
    /// Whether this waiter must read the gateway's generation itself (and
    /// [`Waiter::seed`] it): the gateway's channel does not hold such a read yet.
    pub(crate) fn must_read(&self) -> bool {
        !self.seeded
    }

    /// Puts this waiter's own read of the gateway's generation (made after it
    /// registered) in the gateway's channel, for the long-polls that follow.
    pub(crate) fn seed(&mut self, generation: i64) {
        if let Some(w) = self.fanout.lock().get_mut(&self.gateway) {
            raise(&w.changes, generation);
            w.seeded = true;
        }
        self.seeded = true;
    }

    /// The highest generation of the gateway the follower has read since this
    /// waiter last looked (0 before any).
    pub(crate) fn seen(&mut self) -> i64 {
        *self.rx.borrow_and_update()
    }

    /// Waits for the follower to read a newer generation of the gateway.
    pub(crate) async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The channel outlives every waiter: unreachable, but never spin.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = self.fanout.gateways.lock().unwrap_or_else(|e| e.into_inner());
        // Receivers are only made under this lock: 1 is this waiter's own.
        if map
            .get(&self.gateway)
            .is_some_and(|w| w.changes.receiver_count() <= 1)
        {
            map.remove(&self.gateway);
        }
    }
}

impl Fanout {
    pub(crate) fn new() -> Fanout {
        Fanout {
            follower: OnceCell::new(),
            gateways: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
        }
    }

    pub(crate) fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.lock().values().map(|w| w.changes.receiver_count()).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched>> {
        self.gateways.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers interest in `gateway`'s changes. Read the gateway's
    /// generation only after this: a change committed later is then seen by
    /// the waiter.
    pub(crate) async fn watch(r: &Realizer, gateway: &str) -> Result<Waiter> {
        let fanout = r.fanout.clone();
        // The follower's starting point is read before any waiter registers,
        // so whatever commits after a waiter's own read is above it.
        fanout
            .follower
            .get_or_try_init(|| async {
                let commits = r.store.subscribe();
                let after = r.store.gateway_generation_max().await?;
                let fanout = Arc::downgrade(&r.fanout);
                tokio::spawn(follow(r.store.clone(), commits, fanout, recheck(r), after));
                Ok::<_, model::Error>(())
            })
            .await?;
        let (rx, seeded) = {
            let mut map = fanout.lock();
            let w = map.entry(gateway.to_string()).or_insert_with(|| Watched {
                changes: watch::channel(0).0,
                seeded: false,
                build: None,
            });
            (w.changes.subscribe(), w.seeded)
        };
        Ok(Waiter {
            rx,
            seeded,
            gateway: gateway.to_string(),
            fanout,
        })
    }

    /// The configuration of `waiter`'s gateway from a snapshot containing its
    /// generation `floor` (which the caller saw committed): the build in
    /// flight or done for that generation or a later one, else a new one.
    pub(crate) async fn config(r: &Realizer, waiter: &Waiter, floor: i64) -> Result<Arc<Built>> {
        let gateway = waiter.gateway.as_str();
        let build = {
            let mut map = r.fanout.lock();
            let watched = map
                .get_mut(gateway)
                .expect("the waiter keeps its gateway watched");
            match &watched.build {
                Some(b) if b.floor >= floor => b.clone(),
                _ => {
                    let b = Arc::new(Build {
                        floor,
                        cell: OnceCell::new(),
                    });
                    watched.build = Some(b.clone());
                    b
                }
            }
        };
        let built = build
            .cell
            .get_or_try_init(|| async {
                r.fanout.builds.fetch_add(1, Ordering::Relaxed);
                let (generation, tunnels, nodes) = r.gateway_tunnels(gateway).await?;
                Ok::<_, model::Error>(Arc::new(Built::new(gateway, generation, &tunnels, nodes)?))
            })
            .await?;
        Ok(built.clone())
    }
}

/// Moves a gateway's channel up to `generation` (waking its long-polls), never down.
fn raise(changes: &watch::Sender<i64>, generation: i64) {
    changes.send_if_modified(|g| {
        let newer = generation > *g;
        if newer {
            *g = generation;
        }
        newer
    });
}

/// How often the follower re-reads without being woken: today's long-poll
/// re-check period (writers the store is not told about: another process on
/// the same SQLite file; on PostgreSQL only a listener reconnecting).
fn recheck(r: &Realizer) -> Duration {
    if r.store.sees_other_writers() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    }
}

/// The follower: on every commit (or re-check), one read of the gateways that
/// changed since `after`, and a bump of the channels of those some long-poll
/// waits on. Ends with the last clone of its [`Realizer`] (at the next
/// commit or re-check).
async fn follow(
    store: store::Store,
    mut commits: watch::Receiver<i64>,
    fanout: Weak<Fanout>,
    recheck: Duration,
    mut after: i64,
) {
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(recheck) => {}
        }
        let Some(fanout) = fanout.upgrade() else { return };
        // Nobody waits: nothing to read now; what changed meanwhile is read
        // (from `after`) once someone does.
        if fanout.lock().is_empty() {
            continue;
        }
        let changed = match store.gateway_generations_since(after).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "reading changed gateways failed; retrying on the next commit or re-check");
                continue;
            }
        };
        let map = fanout.lock();
        for (gateway, generation) in changed {
            after = after.max(generation);
            if let Some(w) = map.get(&gateway) {
                raise(&w.changes, generation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::realization::NodeConfig;

    #[test]
    fn shared_body_is_the_node_config_byte_for_byte() {
        let cfg: NodeConfig = serde_json::from_value(serde_json::json!({
            "node_id": "n-\"1\"\\é",
            "gateway_id": "gw",
            "generation": 42,
            "tunnels": [],
        }))
        .unwrap();
        let built = Built::new(&cfg.gateway_id, cfg.generation, &cfg.tunnels, Default::default()).unwrap();
        assert_eq!(built.body(&cfg.node_id), serde_json::to_vec(&cfg).unwrap());
    }
}
