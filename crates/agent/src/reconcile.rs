//! The reconciler: makes charon carry exactly the node's desired tunnels.
//!
//! It takes no instructions, only the latest desired state ([`Reconciler::accept`]),
//! and converges charon towards it each time it runs ([`Reconciler::apply`]); it is
//! run when a new snapshot arrives, after charon reconnects, and on a timer while
//! some tunnel could not be applied. Rules:
//!
//! - **Exact diff.** What was last applied is kept per tunnel as the rendered VICI
//!   messages. A tunnel whose rendering is unchanged gets no VICI call at all (its
//!   SAs are never touched); a changed one has its SAs terminated and only the
//!   changed message (connection and/or shared key) re-sent, then is re-initiated
//!   if this side initiates; a removed or disabled one is terminated and its
//!   connection and key are unloaded.
//! - **Generation guard.** A snapshot older than one already accepted is refused,
//!   so a delayed response can't roll charon back.
//! - **Per-tunnel failures.** charon refusing one tunnel (or a tunnel that can't be
//!   rendered) becomes a [`Failure`] for that tunnel and doesn't stop the others;
//!   the snapshot's generation is still reported as realized, with the failures.
//!   Only a broken VICI session aborts a pass.
//! - **charon restarts.** After a session is (re)opened nothing is assumed: the
//!   connections and keys charon has that aren't desired are removed, every
//!   desired tunnel is (re)sent — identical ones are no-ops in charon — and
//!   initiators whose IKE_SA is missing are initiated again.
//! - **Serial initiation.** Initiating many tunnels at once stalls charon and trips
//!   peers' half-open limits, so initiations run one at a time with a short
//!   timeout, from a queue the run loop drains between other work; failed ones are
//!   retried with exponential back-off.
//! - **Tunnel interfaces.** Route-based tunnels' interfaces, addresses and
//!   routes are [`crate::netif`]'s, converged in the same pass after charon,
//!   with the same exactness; a tunnel the node's data path can't carry
//!   (a second route-based one on userspace ESP) is not sent to charon.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use model::realization::{Failure, NodeConfig, NodeReport, Tunnel};
use tokio::time::Instant;

use crate::events::{Event, Tracks};
use crate::netif::{self, Netif, NetifSettings, SystemIp};
use crate::render::{self, EspMode, Rendered};
use crate::status::{self, Context};
use crate::vici::{IkeSa, Initiated, Vici, ViciError};

/// Reconciler settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which ESP data path charon uses (decides `encap`).
    pub esp: EspMode,
    /// How long one `initiate` may take before the agent moves on (charon goes on
    /// trying in the background).
    pub initiate_timeout: Duration,
    /// How long a `terminate` waits for the peer's DELETE answer before forcing.
    pub terminate_timeout: Duration,
    /// First retry delay after a failed initiation; doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest delay between initiation retries.
    pub retry_max: Duration,
    /// Reported as the agent's version string.
    pub agent: String,
    /// How route-based tunnels' interfaces are made (`ip`, network namespace).
    pub netif: NetifSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            esp: EspMode::Kernel,
            initiate_timeout: Duration::from_secs(2),
            terminate_timeout: Duration::from_millis(500),
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            agent: format!("vpnaas-agent {}", env!("CARGO_PKG_VERSION")),
            netif: NetifSettings::default(),
        }
    }
}

/// A snapshot older than one already accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing configuration generation {offered}: generation {accepted} is already accepted")]
pub struct Stale {
    /// The generation of the refused snapshot.
    pub offered: i64,
    /// The generation of the snapshot already accepted.
    pub accepted: i64,
}

/// What one [`Reconciler::apply`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tunnels (re)loaded: new or changed.
    pub loaded: usize,
    /// Tunnels removed (deleted, disabled or no longer renderable).
    pub removed: usize,
    /// Tunnels left alone.
    pub unchanged: usize,
    /// Tunnels that could not be applied.
    pub failed: usize,
    /// Connections/keys found in charon that nobody wants (after a reconnect).
    pub swept: usize,
}

/// What charon carries for one tunnel: the tunnel it was rendered from (to skip
/// rendering when nothing changed) and the messages sent.
#[derive(Debug, Clone)]
struct Applied {
    source: Tunnel,
    rendered: Rendered,
}

/// What a pass must do for one desired tunnel.
enum Want {
    /// Identical to what was applied.
    Same,
    Render(Result<Rendered, String>),
}

/// Initiation bookkeeping of one initiator tunnel.
#[derive(Debug, Clone, Default)]
struct Kick {
    /// When to initiate next; None: not needed (up, connecting, or just tried).
    due: Option<Instant>,
    /// Consecutive failed initiations (drives the back-off).
    failures: u32,
    last_error: Option<String>,
}

/// The reconciler's state. Not shared: the run loop owns it.
#[derive(Debug)]
pub struct Reconciler {
    settings: Settings,
    desired: Option<Arc<NodeConfig>>,
    applied_generation: Option<i64>,
    /// Per tunnel id: what charon has. `None`: unknown (a change failed half-way),
    /// so the next pass terminates and re-sends it.
    applied: BTreeMap<String, Option<Applied>>,
    failures: BTreeMap<String, String>,
    kicks: BTreeMap<String, Kick>,
    /// A fresh session: sweep what charon has before applying.
    adopt: bool,
    dirty: bool,
    sas: Vec<IkeSa>,
    charon_error: Option<String>,
    /// What charon's events said per tunnel (reasons, rekeys, log lines).
    tracks: Tracks,
    /// Route-based tunnels' interfaces, and the `ip` that makes them.
    netif: Netif,
    ip: SystemIp,
}

impl Reconciler {
    /// A reconciler that knows nothing yet: its first pass sweeps what charon has.
    pub fn new(settings: Settings) -> Reconciler {
        let netif = Netif::new(settings.esp, settings.netif.clone());
        let ip = SystemIp::new(settings.netif.clone());
        Reconciler {
            netif,
            ip,
            settings,
            desired: None,
            applied_generation: None,
            applied: BTreeMap::new(),
            failures: BTreeMap::new(),
            kicks: BTreeMap::new(),
            adopt: true,
            dirty: false,
            sas: Vec::new(),
            charon_error: None,
            tracks: Tracks::default(),
        }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Takes a new desired state, unless it is older than the one already accepted.
    pub fn accept(&mut self, cfg: NodeConfig) -> Result<(), Stale> {
        if let Some(cur) = &self.desired
            && cfg.generation < cur.generation
        {
            return Err(Stale {
                offered: cfg.generation,
                accepted: cur.generation,
            });
        }
        let ids: BTreeSet<&str> = cfg.tunnels.iter().map(|t| t.id.as_str()).collect();
        self.tracks.retain(|id| ids.contains(id));
        self.desired = Some(Arc::new(cfg));
        self.dirty = true;
        Ok(())
    }

    /// The generation of the last snapshot applied.
    pub fn applied_generation(&self) -> Option<i64> {
        self.applied_generation
    }

    /// Whether an [`apply`](Self::apply) pass is needed.
    pub fn needs_apply(&self) -> bool {
        self.dirty && self.desired.is_some()
    }

    /// Asks for another pass if some tunnel is failing (called on a timer).
    pub fn retry_failed(&mut self) {
        if !self.failures.is_empty() || !self.netif.failures().is_empty() {
            self.dirty = true;
        }
    }

    /// A new VICI session: charon may have restarted and lost everything.
    pub fn session_started(&mut self) {
        self.applied.clear();
        self.adopt = true;
        self.dirty = true;
        self.netif.restart();
        self.charon_error = None;
    }

    /// The session broke; `why` is shown in tunnel statuses until it is back.
    pub fn session_lost(&mut self, why: String) {
        self.sas.clear();
        self.charon_error = Some(why);
    }

    fn enabled(&self) -> impl Iterator<Item = &Tunnel> {
        self.desired
            .iter()
            .flat_map(|c| c.tunnels.iter())
            .filter(|t| t.enabled)
    }

    /// One pass: converges charon to the desired state. Only a broken session is
    /// an error; per-tunnel failures are recorded and reported.
    pub async fn apply<V: Vici>(&mut self, vici: &mut V, now: Instant) -> Result<ApplyStats, ViciError> {
        let mut stats = ApplyStats::default();
        let Some(cfg) = self.desired.clone() else {
            return Ok(stats);
        };
        // A tunnel identical to the one applied needs no rendering (the cheap check
        // that keeps a pass over 1,000 unchanged tunnels well under a millisecond).
        let mut want: BTreeMap<&str, (&Tunnel, Want)> = BTreeMap::new();
        let refused = self.netif.refused(&cfg);
        for t in cfg.tunnels.iter().filter(|t| t.enabled) {
            let w = match self.applied.get(&t.id) {
                _ if refused.contains_key(&t.id) => Want::Render(Err(refused[&t.id].clone())),
                Some(Some(a)) if a.source == *t => Want::Same,
                _ => Want::Render(render::render(t, self.settings.esp).map_err(|e| e.to_string())),
            };
            want.insert(t.id.as_str(), (t, w));
        }
        let wanted: BTreeSet<&str> = want
            .iter()
            .filter(|(_, (_, w))| !matches!(w, Want::Render(Err(_))))
            .map(|(id, _)| *id)
            .collect();

        if self.adopt {
            stats.swept = self.sweep(vici, &wanted).await?;
            self.adopt = false;
        }

        // Removals first: frees identities and keys a replacement may reuse.
        let gone: Vec<String> = self
            .applied
            .keys()
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.remove(vici, &id).await?;
            stats.removed += 1;
        }
        self.failures.retain(|id, _| want.contains_key(id.as_str()));
        self.kicks.retain(|id, _| want.contains_key(id.as_str()));

        for (id, (source, w)) in want {
            let new = match w {
                Want::Same => {
                    stats.unchanged += 1;
                    continue;
                }
                Want::Render(Ok(new)) => new,
                Want::Render(Err(msg)) => {
                    tracing::warn!(tunnel = %id, error = %msg, "tunnel can't be rendered");
                    self.failures.insert(id.to_string(), msg);
                    stats.failed += 1;
                    continue;
                }
            };
            let old = match self.applied.get_mut(id) {
                Some(Some(old)) if old.rendered == new => {
                    // Renders the same (e.g. only its name changed): nothing to send.
                    old.source = source.clone();
                    stats.unchanged += 1;
                    continue;
                }
                Some(other) => Some(other.take().map(|a| a.rendered)),
                None => None,
            };
            match load(&self.settings, vici, &new, old).await {
                Ok(()) => {
                    self.failures.remove(id);
                    if new.initiator {
                        self.kicks.insert(
                            id.to_string(),
                            Kick {
                                due: Some(now),
                                ..Kick::default()
                            },
                        );
                    } else {
                        self.kicks.remove(id);
                    }
                    self.applied.insert(
                        id.to_string(),
                        Some(Applied {
                            source: source.clone(),
                            rendered: new,
                        }),
                    );
                    stats.loaded += 1;
                }
                Err(e) if e.is_session() => return Err(e),
                Err(e) => {
                    tracing::warn!(tunnel = %id, error = %e, "charon refused a tunnel");
                    self.failures.insert(id.to_string(), e.message());
                    self.applied.insert(id.to_string(), None);
                    stats.failed += 1;
                }
            }
        }
        let n = self.netif.apply(&mut self.ip, &cfg, &refused).await;
        if n != netif::NetifStats::default() {
            tracing::info!(
                fixed = n.fixed,
                removed = n.removed,
                swept = n.swept,
                commands = n.commands,
                "tunnel interfaces"
            );
        }
        self.applied_generation = Some(cfg.generation);
        self.dirty = false;
        Ok(stats)
    }

    /// Removes connections and keys charon has but nobody wants (left from before
    /// an agent or charon restart). The agent owns its charon's configuration.
    async fn sweep<V: Vici>(&mut self, vici: &mut V, want: &BTreeSet<&str>) -> Result<usize, ViciError> {
        let wanted = |n: &String| want.contains(n.as_str());
        let mut swept = 0;
        for name in vici.get_conns().await? {
            if !wanted(&name) {
                tracing::info!(connection = %name, "unloading a connection nobody wants");
                vici.terminate(&name, self.settings.terminate_timeout)
                    .await
                    .or_else(soft)?;
                vici.unload_conn(&name).await.or_else(soft)?;
                swept += 1;
            }
        }
        for id in vici.get_shared().await? {
            if !wanted(&id) {
                vici.unload_shared(&id).await.or_else(soft)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// Terminates and unloads one tunnel.
    async fn remove<V: Vici>(&mut self, vici: &mut V, id: &str) -> Result<(), ViciError> {
        tracing::info!(tunnel = %id, "removing tunnel");
        vici.terminate(id, self.settings.terminate_timeout)
            .await
            .or_else(soft)?;
        vici.unload_conn(id).await.or_else(soft)?;
        vici.unload_shared(id).await.or_else(soft)?;
        self.applied.remove(id);
        self.kicks.remove(id);
        Ok(())
    }
}

/// Sends a new or changed tunnel. `old`: `None` new, `Some(None)` unknown,
/// `Some(Some(r))` what charon has.
async fn load<V: Vici>(
    settings: &Settings,
    vici: &mut V,
    new: &Rendered,
    old: Option<Option<Rendered>>,
) -> Result<(), ViciError> {
    let (conn_changed, shared_changed) = match &old {
        None | Some(None) => (true, true),
        Some(Some(o)) => (o.conn != new.conn, o.shared != new.shared),
    };
    if old.is_some() && (conn_changed || shared_changed) {
        // Changed: its SAs were negotiated with the old settings or key.
        tracing::info!(tunnel = %new.name, conn_changed, shared_changed, "reloading changed tunnel");
        vici.terminate(&new.name, settings.terminate_timeout)
            .await
            .or_else(soft)?;
    } else if old.is_none() {
        tracing::info!(tunnel = %new.name, "loading tunnel");
    }
    if shared_changed {
        vici.load_shared(&new.shared).await?;
    }
    if conn_changed {
        vici.load_conn(&new.conn).await?;
    }
    Ok(())
}

impl Reconciler {
    /// Reads every SA from charon (for status and for the initiation queue).
    pub async fn observe<V: Vici>(&mut self, vici: &mut V, now: Instant) -> Result<(), ViciError> {
        self.sas = vici.list_sas(None).await?;
        self.track_sas(crate::events::now_ms());
        let present: BTreeSet<&str> = self.sas.iter().map(|s| s.name.as_str()).collect();
        let up: BTreeSet<&str> = self
            .sas
            .iter()
            .filter(|s| status::ike_state(&s.state) == model::realization::IkeState::Established)
            .map(|s| s.name.as_str())
            .collect();
        let (min, max) = (self.settings.retry_min, self.settings.retry_max);
        for (id, k) in self.kicks.iter_mut() {
            if up.contains(id.as_str()) {
                k.failures = 0;
                k.last_error = None;
                k.due = None;
            } else if !present.contains(id.as_str()) && k.due.is_none() {
                // Went down (or charon gave up): initiate again, after the back-off.
                k.due = Some(now + backoff(min, max, k.failures));
            }
        }
        Ok(())
    }

    /// Takes one of charon's events; returns whether it concerned a desired
    /// tunnel (the report may have changed).
    pub fn note_event(&mut self, ev: &Event, now_ms: i64) -> bool {
        let Some(cfg) = self.desired.clone() else {
            return false;
        };
        let by_peer = |ip: std::net::IpAddr| {
            let mut with = cfg.tunnels.iter().filter(|t| t.enabled && t.peer_address == ip);
            match (with.next(), with.next()) {
                (Some(t), None) => Some(t.id.clone()),
                _ => None,
            }
        };
        self.tracks
            .apply(ev, now_ms, |id| cfg.tunnels.iter().any(|t| t.id == id), by_peer)
    }

    /// Feeds what `list-sas` shows into each enabled tunnel's track, so a
    /// change no event told about (or one missed while the event stream was
    /// reconnecting) still counts as a status change.
    fn track_sas(&mut self, now_ms: i64) {
        let Some(cfg) = self.desired.clone() else {
            return;
        };
        for t in cfg.tunnels.iter().filter(|t| t.enabled) {
            let st = status::tunnel_status(
                &t.id,
                &self.sas,
                Context {
                    expected: render::expected_children(t),
                    ..Context::default()
                },
            );
            self.tracks.tunnels.entry(t.id.clone()).or_default().observed(
                st.ike_state == model::realization::IkeState::Established,
                st.child_sas_installed,
                now_ms,
            );
        }
    }

    /// When the next initiation is due, if any.
    pub fn next_initiation(&self) -> Option<Instant> {
        self.kicks.values().filter_map(|k| k.due).min()
    }

    /// Initiates the most overdue tunnel, if one is due. Returns whether it did.
    pub async fn initiate_due<V: Vici>(&mut self, vici: &mut V, now: Instant) -> Result<bool, ViciError> {
        let Some(id) = self
            .kicks
            .iter()
            .filter(|(_, k)| k.due.is_some_and(|d| d <= now))
            .min_by_key(|(_, k)| k.due)
            .map(|(id, _)| id.clone())
        else {
            return Ok(false);
        };
        let children = match self.applied.get(&id) {
            Some(Some(a)) => a.rendered.children.clone(),
            _ => {
                self.kicks.remove(&id);
                return Ok(false);
            }
        };
        // The peer may have brought it up meanwhile: never start a second IKE_SA.
        if !vici.list_sas(Some(&id)).await?.is_empty() {
            if let Some(k) = self.kicks.get_mut(&id) {
                k.due = None;
            }
            return Ok(true);
        }
        let mut outcome = Initiated::Established;
        for child in &children {
            tracing::debug!(tunnel = %id, child = %child, "initiating");
            outcome = match vici.initiate(&id, child, self.settings.initiate_timeout).await {
                Ok(o) => o,
                Err(e) if e.is_session() => return Err(e),
                Err(e) => Initiated::Failed(e.message()),
            };
            if outcome != Initiated::Established {
                break;
            }
        }
        let (min, max) = (self.settings.retry_min, self.settings.retry_max);
        let Some(k) = self.kicks.get_mut(&id) else {
            return Ok(true);
        };
        match outcome {
            Initiated::Established => {
                tracing::info!(tunnel = %id, "tunnel established");
                *k = Kick::default();
            }
            Initiated::Pending => {
                tracing::info!(tunnel = %id, "tunnel still connecting");
                k.failures += 1;
                k.due = None;
            }
            Initiated::Failed(reason) => {
                k.failures += 1;
                let delay = backoff(min, max, k.failures);
                tracing::warn!(tunnel = %id, reason = %reason, retry_in = ?delay, "initiation failed");
                k.last_error = Some(reason);
                k.due = Some(now + delay);
            }
        }
        Ok(true)
    }

    /// The report for the server: realized generation, failures, runtime state.
    pub fn report(&self) -> NodeReport {
        // charon's failure and the interface's, when a tunnel has both.
        let mut failures = self.failures.clone();
        for (id, m) in self.netif.failures() {
            failures
                .entry(id.clone())
                .and_modify(|f| {
                    f.push_str("; ");
                    f.push_str(m);
                })
                .or_insert_with(|| m.clone());
        }
        let tunnels = self
            .enabled()
            .map(|t| {
                let kick = self.kicks.get(&t.id);
                let hint = if t.initiator == model::Initiator::ResponseOnly {
                    Some("waiting for the peer to initiate")
                } else if t.initiator == model::Initiator::OnDemand {
                    Some("waiting for matching traffic to start negotiation")
                } else {
                    None
                };
                status::tunnel_status(
                    &t.id,
                    &self.sas,
                    Context {
                        expected: render::expected_children(t),
                        failure: failures.get(&t.id).map(String::as_str),
                        initiate_error: kick.and_then(|k| k.last_error.as_deref()),
                        hint,
                        node_error: self.charon_error.as_deref(),
                        track: self.tracks.get(&t.id),
                    },
                )
            })
            .collect();
        NodeReport {
            realized_generation: self.applied_generation,
            failures: failures
                .iter()
                .map(|(id, m)| Failure {
                    entity_id: id.clone(),
                    message: m.clone(),
                })
                .collect(),
            tunnels,
            agent: Some(self.settings.agent.clone()),
            node_error: self.charon_error.clone(),
            apply_durations_ms: Vec::new(),
        }
    }
}

/// A refused terminate/unload (nothing to terminate, already unloaded) is not an
/// error when removing; a broken session is.
fn soft(e: ViciError) -> Result<(), ViciError> {
    if e.is_session() {
        Err(e)
    } else {
        tracing::debug!(error = %e, "ignored");
        Ok(())
    }
}

/// `min · 2^(failures-1)`, at most `max`; no wait before the first attempt.
pub fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (a, b) = (Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(backoff(a, b, 0), Duration::ZERO);
        assert_eq!(backoff(a, b, 1), Duration::from_secs(2));
        assert_eq!(backoff(a, b, 3), Duration::from_secs(8));
        assert_eq!(backoff(a, b, 10), Duration::from_secs(60));
        assert_eq!(backoff(a, b, 99), Duration::from_secs(60));
    }
}
