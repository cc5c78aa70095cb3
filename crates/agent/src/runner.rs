//! The agent's main loop for one node with a real (or fake) charon.
//!
//! One task owns the reconciler and the VICI session, so charon only ever sees one
//! command at a time (VICI has no request ids) and no locking is needed. The loop
//! wakes on a new configuration, on the status timer, when an initiation is due, or
//! when it is time to reconnect to charon; between initiations it checks for new
//! configuration first, so a long initiation queue never delays a config change by
//! more than one initiation timeout.
//!
//! charon's events (see [`crate::events`]) arrive on a channel of their own;
//! an event about a tunnel schedules a report [`EVENT_COALESCE`] later,
//! preceded by a `list-sas` when an SA came, went or rekeyed (log lines alone
//! change only the report, so a chatty charon costs no extra VICI calls), so a burst (an IKE_SA and its CHILD_SA coming up,
//! a dozen log lines of one failed exchange) costs one report, sent well
//! within a second of the change. The status timer stays as the reconciling
//! heartbeat.

use std::time::Duration;

use model::realization::{NodeConfig, NodeReport};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::Backoff;
use crate::reconcile::Reconciler;
use crate::vici::{Connector, Vici, ViciError};

/// How long after a tunnel's first event the agent reads `list-sas` and
/// reports: events of one exchange come within a few milliseconds.
pub const EVENT_COALESCE: Duration = Duration::from_millis(150);

/// Loop timing.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// How often `list-sas` is read and the status reported.
    pub status_interval: Duration,
    /// First and longest delay between attempts to reach charon.
    pub reconnect_min: Duration,
    /// Longest delay between attempts to reach charon.
    pub reconnect_max: Duration,
}

impl Default for LoopSettings {
    fn default() -> Self {
        LoopSettings {
            status_interval: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

/// One node's agent: a reconciler, a way to reach charon, and the channels to the
/// config poller and the reporter.
pub struct Agent<C: Connector> {
    /// Opens (and re-opens) the VICI session.
    pub connector: C,
    /// The node's desired and applied state.
    pub reconciler: Reconciler,
    /// Loop timing.
    pub settings: LoopSettings,
}

impl<C: Connector> Agent<C> {
    /// An agent over `connector`, not yet running.
    pub fn new(connector: C, reconciler: Reconciler, settings: LoopSettings) -> Agent<C> {
        Agent {
            connector,
            reconciler,
            settings,
        }
    }

    /// Runs until the configuration channel closes.
    pub async fn run(
        mut self,
        mut configs: watch::Receiver<Option<NodeConfig>>,
        reports: watch::Sender<NodeReport>,
    ) {
        let rec = &mut self.reconciler;
        let mut session: Option<C::Session> = None;
        let mut lost: Option<watch::Receiver<bool>> = None;
        let mut reconnect_at = Instant::now();
        let mut backoff = Backoff::new(self.settings.reconnect_min, self.settings.reconnect_max);
        let mut next_status = Instant::now();
        let mut events = self.connector.events();
        // When an event asks for a fresh look (None: nothing pending).
        let mut refresh_at: Option<Instant> = None;
        // Whether that fresh look needs `list-sas` (an SA came, went or
        // rekeyed), or only a new report (log lines, a reason).
        let mut refresh_sas = false;
        let publish = |rec: &Reconciler| {
            let report = rec.report();
            reports.send_if_modified(|cur| {
                if *cur == report {
                    false
                } else {
                    *cur = report;
                    true
                }
            });
        };
        // `changed()` marks the value seen, so remember that it fired.
        let mut config_signalled = false;
        loop {
            let now = Instant::now();
            if std::mem::take(&mut config_signalled) || configs.has_changed().unwrap_or(false) {
                let cfg = configs.borrow_and_update().clone();
                if let Some(cfg) = cfg {
                    let generation = cfg.generation;
                    match rec.accept(cfg) {
                        Ok(()) => tracing::info!(generation, "new desired configuration"),
                        Err(e) => tracing::warn!(error = %e, "ignoring configuration"),
                    }
                }
            }

            if session.is_none() && now >= reconnect_at {
                match self.connector.connect().await {
                    Ok(s) => {
                        tracing::info!("connected to charon");
                        lost = s.lost();
                        session = Some(s);
                        rec.session_started();
                        backoff.reset();
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), retry_in = ?delay, "charon unreachable");
                        rec.session_lost(format!("charon unreachable: {e}"));
                        reconnect_at = now + delay;
                        publish(rec);
                    }
                }
            }

            if session.is_some() && lost.as_ref().is_some_and(|l| *l.borrow()) {
                tracing::warn!("charon closed the VICI session; reconnecting and re-applying everything");
                session = None;
                lost = None;
                rec.session_lost("charon session lost".into());
                reconnect_at = now;
                publish(rec);
                continue;
            }

            let refresh = refresh_at.is_some_and(|t| now >= t);
            let mut look = false;
            if refresh {
                refresh_at = None;
                look = std::mem::take(&mut refresh_sas);
            }
            let mut busy = false;
            if let Some(s) = session.as_mut() {
                match step(rec, s, now, &mut next_status, self.settings.status_interval, look).await {
                    Ok(Step { changed, initiated }) => {
                        busy = initiated;
                        if changed || refresh {
                            publish(rec);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost charon; reconnecting and re-applying everything");
                        session = None;
                        lost = None;
                        rec.session_lost(format!("charon session lost: {e}"));
                        reconnect_at = now;
                        publish(rec);
                        continue;
                    }
                }
            } else if now >= next_status || refresh {
                // Still a heartbeat while charon is away.
                if now >= next_status {
                    next_status = now + self.settings.status_interval;
                }
                publish(rec);
            }
            if busy {
                continue;
            }

            let mut wake = next_status;
            if let Some(t) = refresh_at {
                wake = wake.min(t);
            }
            if session.is_none() {
                wake = wake.min(reconnect_at);
            } else if let Some(t) = rec.next_initiation() {
                wake = wake.min(t);
            }
            tracing::trace!(wake_in = ?wake.saturating_duration_since(Instant::now()), "sleeping");
            tokio::select! {
                r = configs.changed() => match r {
                    Ok(()) => config_signalled = true,
                    Err(_) => {
                        tracing::info!("configuration channel closed; agent stops");
                        return;
                    }
                },
                _ = tokio::time::sleep_until(wake) => {}
                _ = session_lost(&mut lost) => {}
                ev = next_event(&mut events) => match ev {
                    Some(ev) => {
                        let mut first = Some(ev);
                        let mut relevant = false;
                        // Take the whole burst that is already queued.
                        while let Some(ev) = first.take().or_else(|| events.as_mut().and_then(|rx| rx.try_recv().ok())) {
                            let now_ms = crate::events::now_ms();
                            let about = rec.note_event(&ev, now_ms);
                            let sa_event = !matches!(ev, crate::events::Event::Log { .. } | crate::events::Event::Lost);
                            refresh_sas |= sa_event && (about || ev == crate::events::Event::Connected);
                            relevant |= about || ev == crate::events::Event::Connected;
                        }
                        if relevant && refresh_at.is_none() {
                            refresh_at = Some(Instant::now() + EVENT_COALESCE);
                        }
                    }
                    None => events = None,
                },
            }
        }
    }
}

/// The next event; never, without an event stream.
async fn next_event(
    events: &mut Option<tokio::sync::mpsc::Receiver<crate::events::Event>>,
) -> Option<crate::events::Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the session reports itself broken; never, if it can't tell.
async fn session_lost(lost: &mut Option<watch::Receiver<bool>>) {
    match lost {
        Some(rx) => {
            if rx.wait_for(|dead| *dead).await.is_err() {
                // The session is gone without saying so; its next call will tell.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

struct Step {
    /// The report may have changed.
    changed: bool,
    /// An initiation ran: look for more work before sleeping.
    initiated: bool,
}

/// One round of work on a live session.
async fn step<V: Vici>(
    rec: &mut Reconciler,
    s: &mut V,
    now: Instant,
    next_status: &mut Instant,
    status_interval: Duration,
    refresh: bool,
) -> Result<Step, ViciError> {
    let mut changed = false;
    if now >= *next_status {
        rec.retry_failed();
    }
    if rec.needs_apply() {
        let started = std::time::Instant::now();
        let stats = rec.apply(s, now).await?;
        tracing::info!(
            generation = rec.applied_generation(),
            loaded = stats.loaded,
            removed = stats.removed,
            unchanged = stats.unchanged,
            failed = stats.failed,
            swept = stats.swept,
            took = ?started.elapsed(),
            "applied configuration"
        );
        rec.observe(s, now).await?;
        changed = true;
    }
    if now >= *next_status {
        rec.observe(s, now).await?;
        *next_status = now + status_interval;
        changed = true;
    } else if refresh {
        // An event said something changed: look now, report now.
        rec.observe(s, now).await?;
        changed = true;
    }
    let initiated = rec.initiate_due(s, now).await?;
    if initiated && rec.next_initiation().is_none_or(|t| t > Instant::now()) {
        // Queue drained: show the result now rather than at the next status tick.
        rec.observe(s, Instant::now()).await?;
        changed = true;
    }
    Ok(Step { changed, initiated })
}
