//! Session statistics and the sessions summary, from the nodes' reports and
//! the stored reset baselines (NSX `GET .../sessions/{id}/statistics`,
//! `POST ...?action=reset`, `GET .../sessions/summary`).
//!
//! What the counters mean, since charon decides it: a node reports, per
//! tunnel, the bytes and packets counted by the CHILD SAs installed at that
//! moment. charon counts per SA, so the counters restart at 0 whenever a
//! CHILD SA is rekeyed or re-established; they are the traffic of the current
//! SAs, not a lifetime meter. A reset stores, per node, the counters it had
//! reported (and its CHILD SA rekey count); a read subtracts that baseline
//! while the same SA is still counting, and shows the raw counters once it is
//! not (a rekey since, counters below the baseline, or an IKE SA established
//! after the reset): those counters were all counted after the reset. A node
//! that did not report the session when it was reset has no baseline.
//!
//! Across nodes: every live node of the session's gateway that reports the
//! tunnel contributes its own SAs' traffic, so the session's counters are the
//! sum; a node that never reported, or not within the node timeout, makes the
//! statistics partial.
//!
//! Per traffic-selector pair: charon negotiates one CHILD SA for all of a
//! connection's selector pairs in IKEv2, so traffic is not measured per pair.
//! A pair's counters are the session's when the session has exactly one pair,
//! else 0 (the session's and, when it has one policy, the policy's aggregate
//! carry the total). Error counters (integrity, replay, ...) are not measured.
//!
//! All pure but the [`crate::Realizer`] methods at the end, which read one
//! snapshot each.

use std::collections::HashMap;
use std::time::Duration;

use ipnet::IpNet;
use model::realization::{DownReason, IkeState, TunnelStatus};
use model::traffic::{self, TrafficRefs};
use model::*;
use store::nodes::NodeState;
use store::read::{Keys, Need, Refs};
use store::stats::Baseline;
use store::{Scope, now_ms};

use crate::Realizer;
use crate::state::{self, SessionStatus};

/// Bytes and packets, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
}

impl Counters {
    fn of(t: &TunnelStatus) -> Counters {
        Counters {
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            packets_in: t.packets_in,
            packets_out: t.packets_out,
        }
    }

    fn add(&mut self, o: Counters) {
        self.bytes_in = self.bytes_in.saturating_add(o.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(o.bytes_out);
        self.packets_in = self.packets_in.saturating_add(o.packets_in);
        self.packets_out = self.packets_out.saturating_add(o.packets_out);
    }
}

/// The counters of tunnel `t` as node `n` reported them (at `reported_ms`,
/// its last report), counted from the reset baseline `b` when that baseline
/// still applies (see the module doc).
pub fn since_reset(t: &TunnelStatus, reported_ms: i64, b: Option<&Baseline>) -> Counters {
    let raw = Counters::of(t);
    let Some(b) = b else { return raw };
    let established_after = t
        .established_seconds
        .is_some_and(|s| reported_ms.saturating_sub((s as i64).saturating_mul(1000)) > b.reset_at);
    let restarted = t.child_rekeys != b.child_rekeys
        || established_after
        || raw.bytes_in < b.bytes_in
        || raw.bytes_out < b.bytes_out
        || raw.packets_in < b.packets_in
        || raw.packets_out < b.packets_out;
    if restarted {
        return raw;
    }
    Counters {
        bytes_in: raw.bytes_in - b.bytes_in,
        bytes_out: raw.bytes_out - b.bytes_out,
        packets_in: raw.packets_in - b.packets_in,
        packets_out: raw.packets_out - b.packets_out,
    }
}

/// An operator's words for a down reason.
pub fn reason_words(r: DownReason) -> &'static str {
    match r {
        DownReason::AuthenticationFailed => "Authentication failed",
        DownReason::NoProposalChosen => "No proposal chosen",
        DownReason::PeerUnreachable => "Peer unreachable",
        DownReason::TsUnacceptable => "Traffic selectors unacceptable",
        DownReason::DpdTimeout => "Dead peer detection timeout",
        DownReason::AdministrativelyDown => "Administratively down",
        DownReason::ConfigurationFailed => "Configuration failed",
        DownReason::NodeFailure => "Node failure",
        DownReason::Other => "Down",
    }
}

/// Why a tunnel a node reports is down: the classified reason, then charon's
/// words verbatim; None when nothing is known.
pub fn down_reason(t: &TunnelStatus) -> Option<String> {
    match (t.down_reason, t.message.as_deref().filter(|m| !m.is_empty())) {
        (Some(r), Some(m)) => Some(format!("{}: {m}", reason_words(r))),
        (Some(r), None) => Some(reason_words(r).to_string()),
        (None, Some(m)) => Some(m.to_string()),
        (None, None) => None,
    }
}

/// A tunnel's (selector pair's) state, NSX's `tunnel_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelState {
    /// Its CHILD SA is installed.
    Up,
    /// Being negotiated, or only some of the session's CHILD SAs installed
    /// (charon does not say which pairs those are).
    Negotiating,
    /// No CHILD SA.
    Down,
}

impl TunnelState {
    /// NSX's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::Up => "UP",
            TunnelState::Negotiating => "NEGOTIATING",
            TunnelState::Down => "DOWN",
        }
    }
}

/// One traffic-selector pair of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStatistics {
    /// Local prefix, as the session names it.
    pub local_subnet: IpNet,
    /// Peer prefix, as the session names it.
    pub peer_subnet: IpNet,
    /// The pair's state.
    pub status: TunnelState,
    /// Why it is not up; None when up.
    pub down_reason: Option<String>,
    /// Its traffic: the session's when it has this one pair only, else zero
    /// (not measured per pair).
    pub counters: Counters,
}

/// One policy (NSX policy rule; a Neutron connection or a route-based
/// session is one policy) and its pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatistics {
    /// The NSX rule's id, or the connection's id for a Neutron connection;
    /// None for a route-based session.
    pub policy_id: Option<String>,
    /// A route-based session's tunnel port.
    pub tunnel_port_id: Option<String>,
    /// The session's traffic when it has this one policy, else zero.
    pub counters: Counters,
    /// Local × peer prefixes.
    pub pairs: Vec<PairStatistics>,
}

/// One node's share of a session's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatistics {
    /// The node's id.
    pub node_id: String,
    /// The node's name.
    pub node_name: String,
    /// Whether it reported within the node timeout.
    pub alive: bool,
    /// Its last report, epoch ms (0: never).
    pub last_update_ms: i64,
    /// Its IKE SA state for the session (`UP`, `NEGOTIATING`, `DOWN`).
    pub ike_session_state: &'static str,
    /// Why the tunnel is not up on this node.
    pub fail_reason: Option<String>,
    /// Its traffic since the reset (zero when not alive).
    pub counters: Counters,
    /// Epoch ms of the last change of its tunnel state, on its clock.
    pub last_status_change_ms: Option<i64>,
    /// How long its IKE SA has been up.
    pub established_seconds: Option<u64>,
    /// Its CHILD SA rekeys since its agent started.
    pub child_rekeys: u64,
    /// Its IKE SA rekeys since its agent started.
    pub ike_rekeys: u64,
    /// The last IKE log lines it reported for the session.
    pub log: Vec<String>,
}

/// A session's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatistics {
    /// The session's runtime status (the IKE state of the node carrying it).
    pub status: SessionStatus,
    /// Some node of the gateway did not report within the node timeout.
    pub partial: bool,
    /// The sum over live nodes, since the reset.
    pub counters: Counters,
    /// The newest report among the live nodes, epoch ms; now when none.
    pub last_update_ms: i64,
    /// Per policy.
    pub policies: Vec<PolicyStatistics>,
    /// Per node of the gateway, in registration order.
    pub nodes: Vec<NodeStatistics>,
    /// When the statistics were last reset (epoch ms), if ever.
    pub reset_at: Option<i64>,
}

/// As [`state`] judges a node live: it reported within the timeout.
fn alive(n: &NodeState, now_ms: i64, timeout: Duration) -> bool {
    n.last_seen > 0 && now_ms - n.last_seen <= timeout.as_millis() as i64
}

fn ike_word(s: IkeState) -> &'static str {
    match s {
        IkeState::Established => "UP",
        IkeState::Connecting => "NEGOTIATING",
        IkeState::Down => "DOWN",
    }
}

/// A policy's id, tunnel port and selector pairs, before counting.
type PolicyShape = (Option<String>, Option<String>, Vec<(IpNet, IpNet)>);

/// The policies of a connection and their selector pairs, as it names them.
fn policies(conn: &Record<Connection>, service: &VpnService, refs: &impl TrafficRefs) -> Vec<PolicyShape> {
    let c = &conn.body;
    let cross = |local: &[IpNet], remote: &[IpNet]| -> Vec<(IpNet, IpNet)> {
        local
            .iter()
            .flat_map(|l| remote.iter().map(move |r| (*l, *r)))
            .collect()
    };
    if c.route_based {
        let s = traffic::selectors(c, service, refs);
        let port = c.tunnel_ports.first().map(|p| p.tunnel_port_id.clone());
        return vec![(None, port, cross(&s.local, &s.remote))];
    }
    if c.is_endpoint_form() {
        return c
            .policy_rules
            .iter()
            .filter(|r| r.enabled && r.action == model::nsx::RuleAction::Protect)
            .map(|r| (Some(r.id.clone()), None, cross(&r.sources, &r.destinations)))
            .collect();
    }
    let s = traffic::selectors(c, service, refs);
    vec![(Some(conn.meta.id.clone()), None, cross(&s.local, &s.remote))]
}

/// The statistics of `conn` (carried by `service`) from the reports of its
/// gateway's `nodes` and the session's reset `baselines` (by node id).
pub fn session_statistics(
    conn: &Record<Connection>,
    service: &VpnService,
    refs: &impl TrafficRefs,
    nodes: &[NodeState],
    baselines: &HashMap<String, Baseline>,
    now_ms: i64,
    timeout: Duration,
) -> SessionStatistics {
    let id = &conn.meta.id;
    let status = state::session_status(nodes, id, now_ms, timeout);
    let mut total = Counters::default();
    let mut partial = nodes.is_empty();
    let mut last_update = 0;
    let mut per_node = Vec::with_capacity(nodes.len());
    for n in nodes {
        let alive = alive(n, now_ms, timeout);
        partial |= !alive;
        let t = n.tunnels.iter().find(|t| &t.id == id);
        let counters = match (alive, t) {
            (true, Some(t)) => since_reset(t, n.last_seen, baselines.get(&n.node.id)),
            _ => Counters::default(),
        };
        if alive {
            total.add(counters);
            last_update = last_update.max(n.last_seen);
        }
        let fail_reason = if !alive {
            Some("The node has not reported within the node timeout".to_string())
        } else if let Some(e) = &n.node_error {
            Some(format!("{}: {e}", reason_words(DownReason::NodeFailure)))
        } else {
            match t {
                Some(t) if t.ike_state == IkeState::Established && t.child_sas_installed > 0 => None,
                Some(t) => down_reason(t),
                None => Some("The node does not report this session".to_string()),
            }
        };
        per_node.push(NodeStatistics {
            node_id: n.node.id.clone(),
            node_name: n.node.name.clone(),
            alive,
            last_update_ms: n.last_seen,
            ike_session_state: t.map(|t| ike_word(t.ike_state)).unwrap_or("DOWN"),
            fail_reason,
            counters,
            last_status_change_ms: t.and_then(|t| t.last_status_change_ms),
            established_seconds: t.and_then(|t| t.established_seconds),
            child_rekeys: t.map(|t| t.child_rekeys).unwrap_or(0),
            ike_rekeys: t.map(|t| t.ike_rekeys).unwrap_or(0),
            log: t.map(|t| t.log.clone()).unwrap_or_default(),
        });
    }
    // The carrying node's tunnel decides the pairs' state, as it decides
    // the session's status.
    let carrier = status.transport_node_id.as_ref().and_then(|nid| {
        nodes
            .iter()
            .find(|n| &n.node.id == nid)
            .and_then(|n| n.tunnels.iter().find(|t| &t.id == id).map(|t| (n, t)))
    });
    let (pair_state, pair_reason) = match carrier {
        None => (
            TunnelState::Down,
            status
                .fail_reason
                .clone()
                .or_else(|| Some("No transport node reports this session".into())),
        ),
        Some((n, _)) if n.node_error.is_some() => (
            TunnelState::Down,
            n.node_error
                .as_ref()
                .map(|e| format!("{}: {e}", reason_words(DownReason::NodeFailure))),
        ),
        Some((_, t)) => {
            let expected = t.child_sas_expected.max(1);
            match t.ike_state {
                IkeState::Established if t.child_sas_installed >= expected => (TunnelState::Up, None),
                IkeState::Established if t.child_sas_installed > 0 => (
                    TunnelState::Negotiating,
                    Some(format!(
                        "{} of {expected} CHILD SAs installed",
                        t.child_sas_installed
                    )),
                ),
                IkeState::Established => (
                    TunnelState::Down,
                    down_reason(t).or_else(|| Some("IKE SA up, no CHILD SA installed".into())),
                ),
                IkeState::Connecting => (TunnelState::Negotiating, down_reason(t)),
                IkeState::Down => (TunnelState::Down, down_reason(t)),
            }
        }
    };
    let shape = policies(conn, service, refs);
    let single_pair = shape.iter().map(|p| p.2.len()).sum::<usize>() == 1;
    let single_policy = shape.len() == 1;
    let policies = shape
        .into_iter()
        .map(|(policy_id, tunnel_port_id, pairs)| PolicyStatistics {
            policy_id,
            tunnel_port_id,
            counters: if single_policy { total } else { Counters::default() },
            pairs: pairs
                .into_iter()
                .map(|(l, r)| PairStatistics {
                    local_subnet: l,
                    peer_subnet: r,
                    status: pair_state,
                    down_reason: pair_reason.clone(),
                    counters: if single_pair { total } else { Counters::default() },
                })
                .collect(),
        })
        .collect();
    SessionStatistics {
        status,
        partial,
        counters: total,
        last_update_ms: if last_update > 0 { last_update } else { now_ms },
        policies,
        nodes: per_node,
        reset_at: baselines.values().map(|b| b.reset_at).max(),
    }
}

/// The summary of many sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionsSummary {
    /// Sessions counted.
    pub total: u64,
    /// Of which UP.
    pub established: u64,
    /// Of which DOWN.
    pub failed: u64,
    /// Of which DEGRADED.
    pub degraded: u64,
    /// The sum of their traffic since their resets.
    pub counters: Counters,
    /// The newest report among the sessions' live nodes; now when none.
    pub last_update_ms: i64,
    /// Per session, oldest first.
    pub per_session: Vec<SessionTraffic>,
}

/// One session's line of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTraffic {
    /// The connection's (session's) id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is route-based.
    pub route_based: bool,
    /// Its traffic since its last reset.
    pub counters: Counters,
}

/// Adds one session's statistics to a summary.
pub fn summarize(sum: &mut SessionsSummary, conn: &Record<Connection>, s: &SessionStatistics) {
    sum.total += 1;
    match s.status.session_status {
        "UP" => sum.established += 1,
        "DEGRADED" => sum.degraded += 1,
        _ => sum.failed += 1,
    }
    sum.counters.add(s.counters);
    if s.nodes.iter().any(|n| n.alive) {
        sum.last_update_ms = sum.last_update_ms.max(s.last_update_ms);
    }
    sum.per_session.push(SessionTraffic {
        id: conn.meta.id.clone(),
        name: conn.meta.name.clone(),
        route_based: conn.body.route_based,
        counters: s.counters,
    });
}

fn baselines_for(all: &HashMap<(String, String), Baseline>, session: &str) -> HashMap<String, Baseline> {
    all.iter()
        .filter(|((s, _), _)| s == session)
        .map(|((_, n), b)| (n.clone(), *b))
        .collect()
}

impl Realizer {
    /// The statistics of a connection (session). A disabled service is
    /// refused as the realization state is
    /// ([`Violation::ServiceDisabled`]).
    pub async fn session_statistics(&self, conn_id: &str) -> Result<(Record<Connection>, SessionStatistics)> {
        self.statistics_of(conn_id, true).await
    }

    /// The same, for a session's detailed runtime status: a disabled
    /// service is no refusal (its session is simply down).
    pub async fn session_detailed_status(
        &self,
        conn_id: &str,
    ) -> Result<(Record<Connection>, SessionStatistics)> {
        self.statistics_of(conn_id, false).await
    }

    async fn statistics_of(
        &self,
        conn_id: &str,
        refuse_disabled: bool,
    ) -> Result<(Record<Connection>, SessionStatistics)> {
        let mut snap = self.store.snapshot().await?;
        let conn: Record<Connection> = snap.get(conn_id).await?;
        let refs = snap
            .refs_of(
                [&conn],
                Need {
                    traffic: true,
                    ..Need::default()
                },
            )
            .await?;
        let service = refs
            .service_of(&conn.body)
            .ok_or_else(|| Error::not_found(Kind::VpnService, &conn.body.vpnservice_id))?;
        if refuse_disabled {
            crate::refuse_disabled(&conn, service)?;
        }
        let nodes = snap.node_states_of([&service.body.router_id]).await?;
        let all = snap.stats_baselines_of([&conn.meta.id]).await?;
        drop(snap);
        let s = session_statistics(
            &conn,
            &service.body,
            &refs.traffic(),
            &nodes,
            &baselines_for(&all, &conn.meta.id),
            now_ms(),
            self.cfg.node_timeout,
        );
        Ok((conn, s))
    }

    /// Resets a connection's (session's) statistics: the counters each node
    /// of its gateway reports for it now become its baseline (stored, see
    /// [`store::stats`]). Returns the reset's time (epoch ms).
    pub async fn session_statistics_reset(&self, conn_id: &str) -> Result<i64> {
        let mut snap = self.store.snapshot().await?;
        let conn: Record<Connection> = snap.get(conn_id).await?;
        let service: Record<VpnService> = snap.get(&conn.body.vpnservice_id).await?;
        crate::refuse_disabled(&conn, &service)?;
        let nodes = snap.node_states_of([&service.body.router_id]).await?;
        drop(snap);
        let per_node: Vec<(String, Baseline)> = nodes
            .iter()
            .filter_map(|n| {
                n.tunnels.iter().find(|t| t.id == conn.meta.id).map(|t| {
                    (
                        n.node.id.clone(),
                        Baseline {
                            bytes_in: t.bytes_in,
                            bytes_out: t.bytes_out,
                            packets_in: t.packets_in,
                            packets_out: t.packets_out,
                            child_rekeys: t.child_rekeys,
                            reset_at: 0,
                        },
                    )
                })
            })
            .collect();
        self.store.stats_reset(&conn.meta.id, &per_node).await
    }

    /// The summary of the connections (sessions) `scope` sees, optionally
    /// only those made from NSX peer endpoint `peer_endpoint_id` (NSX's
    /// `site_id`). Sessions of disabled services count, as DOWN.
    pub async fn sessions_summary(
        &self,
        scope: &Scope,
        peer_endpoint_id: Option<&str>,
    ) -> Result<SessionsSummary> {
        let mut snap = self.store.snapshot().await?;
        let conns: Vec<Record<Connection>> = snap
            .list_in::<Connection>(scope)
            .await?
            .into_iter()
            .filter(|c| peer_endpoint_id.is_none_or(|p| c.body.peer_endpoint_id.as_deref() == Some(p)))
            .collect();
        let mut refs = Refs::default();
        let need = Need {
            traffic: true,
            status: true,
            ..Need::default()
        };
        snap.load(&mut refs, Keys::of(&conns), need).await?;
        let ids: Vec<String> = conns.iter().map(|c| c.meta.id.clone()).collect();
        let all = snap.stats_baselines_of(&ids).await?;
        drop(snap);
        let mut by_gateway: HashMap<&str, Vec<NodeState>> = HashMap::new();
        for n in &refs.node_states {
            by_gateway
                .entry(n.node.gateway_id.as_str())
                .or_default()
                .push(n.clone());
        }
        let now = now_ms();
        let mut sum = SessionsSummary::default();
        let empty = Vec::new();
        for conn in &conns {
            let Some(service) = refs.service_of(&conn.body) else {
                continue;
            };
            let nodes = by_gateway.get(service.body.router_id.as_str()).unwrap_or(&empty);
            let s = session_statistics(
                conn,
                &service.body,
                &refs.traffic(),
                nodes,
                &baselines_for(&all, &conn.meta.id),
                now,
                self.cfg.node_timeout,
            );
            summarize(&mut sum, conn, &s);
        }
        if sum.last_update_ms == 0 {
            sum.last_update_ms = now;
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::realization::TunnelStatus;

    fn t(bytes: u64, rekeys: u64) -> TunnelStatus {
        TunnelStatus {
            id: "c".into(),
            ike_state: IkeState::Established,
            child_sas_installed: 1,
            child_sas_expected: 1,
            bytes_in: bytes,
            bytes_out: bytes * 2,
            packets_in: bytes / 100,
            packets_out: bytes / 50,
            child_rekeys: rekeys,
            ..TunnelStatus::default()
        }
    }

    #[test]
    fn reset_baseline_applies_while_the_same_sa_counts() {
        let b = Baseline {
            bytes_in: 1000,
            bytes_out: 2000,
            packets_in: 10,
            packets_out: 20,
            child_rekeys: 3,
            reset_at: 50_000,
        };
        // Same SA, more traffic: counted from the reset.
        let c = since_reset(&t(1500, 3), 60_000, Some(&b));
        assert_eq!(
            (c.bytes_in, c.bytes_out, c.packets_in, c.packets_out),
            (500, 1000, 5, 10)
        );
        // Just reset: zero.
        let c = since_reset(&t(1000, 3), 60_000, Some(&b));
        assert_eq!(c, Counters::default());
        // Rekeyed since (counters restarted, even if already above): raw.
        assert_eq!(since_reset(&t(1200, 4), 60_000, Some(&b)).bytes_in, 1200);
        // Counters below the baseline: a new SA, raw.
        assert_eq!(since_reset(&t(300, 3), 60_000, Some(&b)).bytes_in, 300);
        // IKE SA established after the reset: raw.
        let mut late = t(1500, 3);
        late.established_seconds = Some(5);
        assert_eq!(since_reset(&late, 60_000, Some(&b)).bytes_in, 1500);
        late.established_seconds = Some(500);
        assert_eq!(since_reset(&late, 60_000, Some(&b)).bytes_in, 500);
        // No baseline: raw.
        assert_eq!(since_reset(&t(7, 0), 1, None).bytes_in, 7);
    }

    #[test]
    fn down_reason_names_the_class_then_charon() {
        let mut s = t(0, 0);
        assert_eq!(down_reason(&s), None);
        s.message = Some("received AUTHENTICATION_FAILED notify".into());
        assert_eq!(
            down_reason(&s).as_deref(),
            Some("received AUTHENTICATION_FAILED notify")
        );
        s.down_reason = Some(DownReason::AuthenticationFailed);
        assert_eq!(
            down_reason(&s).as_deref(),
            Some("Authentication failed: received AUTHENTICATION_FAILED notify")
        );
    }
}
