//! Simulated nodes: a load generator for the server's realization path.
//!
//! Each simulated node speaks the real node API exactly like a charon-backed agent
//! (long-poll, generation guard, reports and heartbeats through the same
//! [`api`](crate::api) loops) but "applies" a snapshot by sleeping `delay` and
//! failing each tunnel with probability `failure_rate`. The failure decision is a
//! hash of (node, tunnel, tunnel generation), so it is stable across re-applies and
//! runs: a failed tunnel stays failed until it changes. Not a substitute for tests
//! against charon.

use std::path::Path;
use std::time::Duration;

use model::realization::{DownReason, Failure, IkeState, NodeConfig, NodeReport, TunnelStatus};
use serde::Deserialize;
use tokio::sync::watch;

use crate::AgentError;
use crate::api::{NodeApi, poll_config, push_reports};
use crate::render::expected_children;

/// One line of the nodes file, as printed by `vpnaas node add`.
#[derive(Clone, Deserialize)]
pub struct NodeCredentials {
    /// The node id.
    pub id: String,
    /// The node's bearer token.
    pub token: String,
}

/// Reads a JSON-lines nodes file (blank lines ignored; extra fields ignored).
pub fn read_nodes_file(path: &Path) -> Result<Vec<NodeCredentials>, AgentError> {
    let text = std::fs::read_to_string(path).map_err(|source| AgentError::File {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| AgentError::Invalid(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// How long applying one snapshot takes (`--sim-delay-ms`).
    pub delay: Duration,
    /// Probability (0..=1) that a tunnel fails to apply, per node, tunnel and
    /// generation (`--sim-failure-rate`).
    pub failure_rate: f64,
    /// Report at least this often (`--heartbeat`).
    pub heartbeat: Duration,
    /// Long-poll wait (`--wait`).
    pub wait: Duration,
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Whether the simulation fails this tunnel at this generation.
pub fn fails(node_id: &str, tunnel_id: &str, generation: i64, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let h = fnv1a(&[
        node_id.as_bytes(),
        tunnel_id.as_bytes(),
        &generation.to_be_bytes(),
    ]);
    (h as f64 / u64::MAX as f64) < rate
}

/// What a simulated node reports after applying `cfg`: every enabled tunnel up,
/// except the ones the failure rate picks.
pub fn simulated_report(node_id: &str, cfg: &NodeConfig, failure_rate: f64, agent: &str) -> NodeReport {
    let mut failures = Vec::new();
    let mut tunnels = Vec::new();
    for t in cfg.tunnels.iter().filter(|t| t.enabled) {
        let expected = expected_children(t);
        if fails(node_id, &t.id, t.generation, failure_rate) {
            failures.push(Failure {
                entity_id: t.id.clone(),
                message: "simulated failure".into(),
            });
            tunnels.push(TunnelStatus {
                id: t.id.clone(),
                ike_state: IkeState::Down,
                child_sas_installed: 0,
                child_sas_expected: expected,
                bytes_in: 0,
                bytes_out: 0,
                packets_in: 0,
                packets_out: 0,
                message: Some("simulated failure".into()),
                down_reason: Some(DownReason::ConfigurationFailed),
                ..TunnelStatus::default()
            });
        } else {
            tunnels.push(TunnelStatus {
                id: t.id.clone(),
                ike_state: IkeState::Established,
                child_sas_installed: expected,
                child_sas_expected: expected,
                bytes_in: 0,
                bytes_out: 0,
                packets_in: 0,
                packets_out: 0,
                message: None,
                ..TunnelStatus::default()
            });
        }
    }
    NodeReport {
        node_error: None,
        realized_generation: Some(cfg.generation),
        failures,
        tunnels,
        agent: Some(agent.to_string()),
        apply_durations_ms: Vec::new(),
    }
}

/// Runs one simulated node until its config channel ends.
async fn sim_node(api: NodeApi, s: SimSettings) {
    let agent = format!("vpnaas-agent {} (sim)", env!("CARGO_PKG_VERSION"));
    let (cfg_tx, mut cfg_rx) = watch::channel(None::<NodeConfig>);
    let (rep_tx, rep_rx) = watch::channel(NodeReport {
        node_error: None,
        agent: Some(agent.clone()),
        ..NodeReport::default()
    });
    tokio::spawn(poll_config(api.clone(), cfg_tx, s.wait));
    tokio::spawn(push_reports(api.clone(), rep_rx, s.heartbeat));
    let mut applied: Option<i64> = None;
    while cfg_rx.changed().await.is_ok() {
        let Some(cfg) = cfg_rx.borrow_and_update().clone() else {
            continue;
        };
        if applied.is_some_and(|g| cfg.generation < g) {
            continue;
        }
        if !s.delay.is_zero() {
            tokio::time::sleep(s.delay).await;
        }
        applied = Some(cfg.generation);
        let report = simulated_report(api.node_id(), &cfg, s.failure_rate, &agent);
        if rep_tx.send(report).is_err() {
            return;
        }
    }
}

/// Runs every node of the nodes file in this process.
/// `http` carries the agent's TLS settings (see [`crate::tls`]).
pub async fn run(
    http: reqwest::ClientBuilder,
    server: &str,
    nodes: Vec<NodeCredentials>,
    s: SimSettings,
) -> Result<(), AgentError> {
    let http = http
        .pool_max_idle_per_host(nodes.len() * 2 + 8)
        .build()
        .map_err(AgentError::Http)?;
    tracing::info!(nodes = nodes.len(), delay = ?s.delay, failure_rate = s.failure_rate, "simulated nodes starting");
    let mut tasks = tokio::task::JoinSet::new();
    for n in nodes {
        let api = NodeApi::new(http.clone(), server, &n.id, &n.token).map_err(AgentError::Api)?;
        tasks.spawn(sim_node(api, s.clone()));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_rate_is_stable_and_roughly_right() {
        assert!(!fails("n", "t", 1, 0.0));
        assert!(fails("n", "t", 1, 1.0));
        let n = (0..10_000)
            .filter(|i| fails("n", &format!("t{i}"), 7, 0.1))
            .count();
        assert!((800..1200).contains(&n), "{n}");
        assert_eq!(fails("n", "t5", 7, 0.5), fails("n", "t5", 7, 0.5));
    }
}
