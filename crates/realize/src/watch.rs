//! Change notification for watchers: the realization state and the status of
//! every connection a caller may see, as a sequence of changes (the server's
//! SSE watch stream renders it; see `docs/watch.md`).
//!
//! Why it is state-based, not a log of events:
//! - A watcher gets the current state of each visible connection first, then
//!   one [`Change`] per connection whose state differs from what it was last
//!   sent. Whatever happened between two looks is coalesced into the latest
//!   state, so a slow consumer costs the server one map of states and the
//!   changes of one look, never a growing queue: nothing is computed while
//!   the consumer has not taken what was computed last (the stream is
//!   pulled, see [`Watch::next`]).
//! - A watcher that reconnects needs no event log: it starts again from the
//!   current states.
//!
//! When it looks again ([`Wakeups`]): on every commit this process sees
//! ([`store::Store::subscribe`]: its own, and on PostgreSQL every replica's),
//! on every node report this process accepts ([`crate::Realizer::report_accepted`]),
//! and every [`TICK`] regardless: reports another replica accepted are not
//! notified (they are soft state, written without `pg_notify`), and a node
//! falling silent turns `unknown` without anything being written. Looks are
//! at least [`MIN_GAP`] apart, so a burst of reports is one look.
//!
//! Each look is one snapshot: the visible connections, their services and
//! those services' gateways' node states and generations (one query per
//! kind, [`store::read`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use model::realization::NodeReport;
use model::{Connection, Record, Result, Status};
use store::Scope;
use store::nodes::{Node, NodeState};
use store::read::{Keys, Need, Refs};
use tokio::time::Instant;

use crate::Realizer;
use crate::state::{self, RealizationState, StatusIndex};

/// Longest time between two looks without a wake-up.
pub const TICK: Duration = Duration::from_secs(1);

/// Shortest time between two looks (coalesces bursts of commits and reports).
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// What a watcher knows about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionState {
    /// The connection's id (Neutron ipsec-site-connection / NSX session).
    pub id: String,
    /// Its project.
    pub project_id: String,
    /// Realization of its latest change across its gateway's nodes.
    pub realization: RealizationState,
    /// Its derived Neutron status (`ACTIVE`, `DOWN`, `PENDING_*`, `ERROR`).
    pub status: Status,
    /// The generation of its latest change (what `realization` is about).
    pub generation: i64,
}

/// One change a watcher is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A connection appeared or its state changed: its state now.
    State(ConnectionState),
    /// A connection the watcher was told about is gone (deleted, or no
    /// longer visible to it).
    Removed {
        /// The connection's id.
        id: String,
    },
}

/// Told about every node report this process accepts (the server's metrics).
pub trait ReportObserver: Send + Sync + 'static {
    /// `node`'s report was stored.
    fn accepted(&self, node: &Node, report: &NodeReport);
}

/// The per-process report notification shared by every clone of a [`Realizer`].
pub(crate) struct Reports {
    /// Counts accepted reports; watchers wake when it moves.
    seen: tokio::sync::watch::Sender<u64>,
    observer: OnceLock<Arc<dyn ReportObserver>>,
    /// Open [`Watch`]es (a diagnostic for metrics).
    watchers: AtomicUsize,
}

impl Reports {
    pub(crate) fn new() -> Reports {
        Reports {
            seen: tokio::sync::watch::channel(0).0,
            observer: OnceLock::new(),
            watchers: AtomicUsize::new(0),
        }
    }
}

impl Realizer {
    /// Installs the observer of accepted reports (once: false if one was
    /// installed already).
    pub fn set_report_observer(&self, o: Arc<dyn ReportObserver>) -> bool {
        self.reports.observer.set(o).is_ok()
    }

    /// A node's report was stored: wakes watchers and tells the observer.
    pub fn report_accepted(&self, node: &Node, report: &NodeReport) {
        self.reports.seen.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(o) = self.reports.observer.get() {
            o.accepted(node, report);
        }
    }

    /// The state of every connection visible to `scope`, by id, from one snapshot.
    pub async fn connection_states(&self, scope: &Scope) -> Result<BTreeMap<String, ConnectionState>> {
        let mut snap = self.store.snapshot().await?;
        let conns: Vec<Record<Connection>> = snap.list_in(scope).await?;
        let mut refs = Refs::default();
        let need = Need {
            status: true,
            ..Need::default()
        };
        snap.load(&mut refs, Keys::of(&conns), need).await?;
        drop(snap);
        let now = store::now_ms();
        let mut by_gateway: HashMap<&str, Vec<NodeState>> = HashMap::new();
        for n in &refs.node_states {
            by_gateway.entry(&n.node.gateway_id).or_default().push(n.clone());
        }
        let index = StatusIndex::new(
            refs.node_states.clone(),
            refs.gateway_generations.clone(),
            self.cfg.node_timeout,
            now,
        );
        let mut out = BTreeMap::new();
        for c in &conns {
            let service = refs.service_of(&c.body);
            let status = index.connection(c, service);
            let (realization, generation) = match service {
                Some(s) => {
                    let gw = s.body.router_id.as_str();
                    let target = c.meta.generation.max(s.meta.generation);
                    let nodes = by_gateway.get(gw).map(Vec::as_slice).unwrap_or(&[]);
                    let gw_gen = refs.gateway_generations.get(gw).copied().unwrap_or(0);
                    let st = state::session_state(
                        nodes,
                        &c.meta.id,
                        target,
                        gw_gen,
                        now,
                        self.cfg.node_timeout,
                        &self.cfg.server_id,
                    );
                    (st.state, target)
                }
                None => (RealizationState::Unknown, c.meta.generation),
            };
            out.insert(
                c.meta.id.clone(),
                ConnectionState {
                    id: c.meta.id.clone(),
                    project_id: c.meta.project_id.clone(),
                    realization,
                    status,
                    generation,
                },
            );
        }
        Ok(out)
    }

    /// How many [`Watch`]es are open on this process.
    pub fn watchers(&self) -> usize {
        self.reports.watchers.load(Ordering::Relaxed)
    }

    /// A watch of the connections visible to `scope` (see the module doc).
    pub fn watch(&self, scope: Scope) -> Watch {
        self.reports.watchers.fetch_add(1, Ordering::Relaxed);
        Watch {
            realizer: self.clone(),
            scope,
            sent: BTreeMap::new(),
            pending: VecDeque::new(),
            wakeups: Wakeups::new(self),
            looked: false,
        }
    }
}

/// The changes between what a watcher was sent (`old`) and the states now
/// (`new`), in id order: new or changed states, then removals.
pub fn diff(old: &BTreeMap<String, ConnectionState>, new: &BTreeMap<String, ConnectionState>) -> Vec<Change> {
    let mut out: Vec<Change> = new
        .iter()
        .filter(|(id, s)| old.get(*id) != Some(*s))
        .map(|(_, s)| Change::State(s.clone()))
        .collect();
    out.extend(
        old.keys()
            .filter(|id| !new.contains_key(*id))
            .map(|id| Change::Removed { id: id.clone() }),
    );
    out
}

/// When a watch looks again (see the module doc).
pub struct Wakeups {
    commits: tokio::sync::watch::Receiver<i64>,
    reports: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    last: Option<Instant>,
}

impl Wakeups {
    fn new(r: &Realizer) -> Wakeups {
        Wakeups {
            commits: r.store.subscribe(),
            reports: r.reports.seen.subscribe(),
            stopping: r.stopping(),
            last: None,
        }
    }

    /// Waits for the next look; false when the server is stopping.
    pub async fn next(&mut self) -> bool {
        if let Some(last) = self.last {
            tokio::select! {
                _ = self.commits.changed() => {}
                _ = self.reports.changed() => {}
                _ = tokio::time::sleep_until(last + TICK) => {}
                _ = self.stopping.wait_for(|s| *s) => return false,
            }
            // Coalesce what arrives right after.
            let earliest = last + MIN_GAP;
            if Instant::now() < earliest {
                tokio::select! {
                    _ = tokio::time::sleep_until(earliest) => {}
                    _ = self.stopping.wait_for(|s| *s) => return false,
                }
            }
            self.commits.borrow_and_update();
            self.reports.borrow_and_update();
        }
        self.last = Some(Instant::now());
        !*self.stopping.borrow()
    }
}

/// One watcher's view: pulled one change at a time.
pub struct Watch {
    realizer: Realizer,
    scope: Scope,
    sent: BTreeMap<String, ConnectionState>,
    pending: VecDeque<Change>,
    wakeups: Wakeups,
    looked: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.realizer.reports.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watch {
    /// The next change; `None` when the server is stopping. The first look
    /// gives the current state of every visible connection.
    pub async fn next(&mut self) -> Option<Result<Change>> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(Ok(c));
            }
            if !self.wakeups.next().await {
                return None;
            }
            // In a task of its own: a watcher that goes away (a client gone,
            // `?timeout`) mid-look must not cancel the snapshot's `BEGIN`
            // half-way, which would leave its pooled read connection marked
            // as inside a transaction.
            let (r, scope) = (self.realizer.clone(), self.scope.clone());
            let look = tokio::spawn(async move { r.connection_states(&scope).await });
            let looked = match look.await {
                Ok(looked) => looked,
                Err(e) => Err(model::Error::internal("watch look", e)),
            };
            let now = match looked {
                Ok(now) => now,
                Err(e) if self.looked => {
                    // A passing database failure: look again at the next wake-up.
                    tracing::warn!(error = %e, "watch: reading connection states failed");
                    continue;
                }
                Err(e) => return Some(Err(e)),
            };
            self.looked = true;
            self.pending.extend(diff(&self.sent, &now));
            self.sent = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: &str, realization: RealizationState, status: Status) -> (String, ConnectionState) {
        (
            id.to_string(),
            ConnectionState {
                id: id.into(),
                project_id: "p".into(),
                realization,
                status,
                generation: 1,
            },
        )
    }

    #[test]
    fn diff_sends_what_changed_then_removals() {
        let old: BTreeMap<_, _> = [
            st("a", RealizationState::InProgress, Status::PendingCreate),
            st("b", RealizationState::InSync, Status::Active),
            st("c", RealizationState::InSync, Status::Active),
        ]
        .into();
        let new: BTreeMap<_, _> = [
            st("a", RealizationState::InSync, Status::Active),
            st("b", RealizationState::InSync, Status::Active),
            st("d", RealizationState::InProgress, Status::PendingCreate),
        ]
        .into();
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::State(new["a"].clone()),
                Change::State(new["d"].clone()),
                Change::Removed { id: "c".into() },
            ]
        );
        assert!(diff(&new, &new).is_empty());
        // The first look: everything.
        assert_eq!(diff(&BTreeMap::new(), &new).len(), 3);
    }
}
