//! Pure state functions: from node reports to realization states and statuses.
//!
//! A node has realized generation G when its last applied snapshot includes
//! every change ≤ G, or when nothing it carries changed after its snapshot
//! (its gateway's last-change generation ≤ its realized generation): changes to
//! other gateways never keep a node "in progress".

use std::collections::HashMap;
use std::time::Duration;

use model::realization::{DownReason, IkeState, TunnelStatus};
use model::{Connection, Record, Status, VpnService};
use store::nodes::NodeState;

/// Realization state of one node, or overall. Ordered from best to worst, so
/// the overall state is the maximum (unknown > failed > in_progress > in_sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RealizationState {
    /// Every change up to the generation asked about is applied.
    InSync,
    /// The node answers but has not applied that generation yet.
    InProgress,
    /// The node reported a failure applying this object.
    Failed,
    /// The node has not reported within the node timeout.
    Unknown,
}

impl RealizationState {
    /// NSX's wire spelling (`in_sync`, `in_progress`, `failed`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            RealizationState::InSync => "in_sync",
            RealizationState::InProgress => "in_progress",
            RealizationState::Failed => "failed",
            RealizationState::Unknown => "unknown",
        }
    }
}

/// One node's line of a session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDetail {
    /// The node's id (NSX's transport node id).
    pub node_id: String,
    /// The name the node was added with.
    pub node_name: String,
    /// This node's state alone.
    pub state: RealizationState,
    /// NSX-style `CCP Id:..., Message:...` text; `None` when in sync.
    pub failure_message: Option<String>,
}

/// A session's realization state across its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The worst state of any node.
    pub state: RealizationState,
    /// Why the session is not in sync, across nodes; `None` when in sync.
    pub failure_message: Option<String>,
    /// Empty when no node answered at all.
    pub details: Vec<NodeDetail>,
}

fn alive(n: &NodeState, now_ms: i64, timeout: Duration) -> bool {
    n.last_seen > 0 && now_ms - n.last_seen <= timeout.as_millis() as i64
}

/// Whether node `n` has applied every change ≤ `target` that concerns it.
fn realized(n: &NodeState, target: i64, gateway_generation: i64) -> bool {
    match n.realized_generation {
        Some(r) => r >= target || r >= gateway_generation,
        None => false,
    }
}

/// The state of `entity_id` at generation `target` on the nodes of its gateway.
pub fn session_state(
    nodes: &[NodeState],
    entity_id: &str,
    target: i64,
    gateway_generation: i64,
    now_ms: i64,
    timeout: Duration,
    server_id: &str,
) -> SessionState {
    let details: Vec<NodeDetail> = nodes
        .iter()
        .map(|n| {
            let (state, msg) = if n.last_seen <= 0 {
                // Registered, never reported: named, with NSX's wording for
                // a node that does not answer plus why.
                (
                    RealizationState::Unknown,
                    Some(format!(
                        "CCP Id:{server_id}, Message: Unable to get response from the node (it has never reported). Please retry operation after some time."
                    )),
                )
            } else if !alive(n, now_ms, timeout) {
                (
                    RealizationState::Unknown,
                    Some(format!(
                        "CCP Id:{server_id}, Message: Unable to get response from the node. Please retry operation after some time."
                    )),
                )
            } else if let Some(e) = &n.node_error {
                // The node can't drive its IPsec daemon at all: nothing it
                // carries is realized, whatever generation it last applied.
                (RealizationState::Failed, Some(format!("CCP Id:{server_id}, Message:{e}")))
            } else if let Some(f) = n.failures.iter().find(|f| f.entity_id == entity_id) {
                (
                    RealizationState::Failed,
                    Some(format!("CCP Id:{server_id}, Message:{}", f.message)),
                )
            } else if realized(n, target, gateway_generation) {
                (RealizationState::InSync, None)
            } else {
                (
                    RealizationState::InProgress,
                    Some(format!(
                        "CCP Id:{server_id}, Message:State realization is in progress at the node."
                    )),
                )
            };
            NodeDetail {
                node_id: n.node.id.clone(),
                node_name: n.node.name.clone(),
                state,
                failure_message: msg,
            }
        })
        .collect();
    if details.iter().all(|d| d.state == RealizationState::Unknown) {
        return SessionState {
            state: RealizationState::Unknown,
            failure_message: Some(
                "Unable to get response from any CCP node. Please retry operation after some time.".into(),
            ),
            details: Vec::new(),
        };
    }
    let overall = details
        .iter()
        .map(|d| d.state)
        .max()
        .unwrap_or(RealizationState::Unknown);
    let failure_message = match overall {
        RealizationState::InSync => None,
        RealizationState::InProgress => {
            Some("The state realization is in progress at transport nodes.".into())
        }
        RealizationState::Failed => Some("The state realization failed at transport nodes.".into()),
        RealizationState::Unknown => Some("The state realization is unknown at transport nodes".into()),
    };
    SessionState {
        state: overall,
        failure_message,
        details,
    }
}

/// Runtime status of a session, aggregated over its gateway's nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionStatus {
    /// UP, DOWN or DEGRADED.
    pub session_status: &'static str,
    /// UP, DOWN or NEGOTIATING.
    pub ike_session_state: &'static str,
    /// Why the tunnel is not up, as the reporting node tells it, or why no
    /// node reports it: `REASON: charon's words` (see [`describe`]).
    pub fail_reason: Option<String>,
    /// The classified reason, when the tunnel is down and it is known.
    pub down_reason: Option<DownReason>,
    /// The node whose report this is; `None` when no live node reports the session.
    pub transport_node_id: Option<String>,
    /// CHILD SAs the tunnel should have: one per traffic-selector pair, at least 1.
    pub total_tunnels: u32,
    /// CHILD SAs installed, at most `total_tunnels`.
    pub negotiated_tunnels: u32,
    /// `total_tunnels - negotiated_tunnels`.
    pub failed_tunnels: u32,
    /// Bytes received over the tunnel, as the node's last report counted them.
    pub bytes_in: u64,
    /// Bytes sent over the tunnel, as the node's last report counted them.
    pub bytes_out: u64,
    /// Packets received over the tunnel, as the node's last report counted them.
    pub packets_in: u64,
    /// Packets sent over the tunnel, as the node's last report counted them.
    pub packets_out: u64,
    /// When the reporting node last reported (Unix milliseconds); now when none did.
    pub last_update_ms: i64,
}

/// Aggregates the nodes' reports about one tunnel. The node carrying the tunnel
/// (IKE established, or else the most advanced) is the one reported.
pub fn session_status(nodes: &[NodeState], entity_id: &str, now_ms: i64, timeout: Duration) -> SessionStatus {
    let mut best: Option<(&NodeState, &TunnelStatus)> = None;
    let rank = |t: &TunnelStatus| match t.ike_state {
        IkeState::Established => 2 + t.child_sas_installed as u64,
        IkeState::Connecting => 1,
        IkeState::Down => 0,
    };
    for n in nodes.iter().filter(|n| alive(n, now_ms, timeout)) {
        if let Some(t) = n.tunnels.iter().find(|t| t.id == entity_id)
            && best.is_none_or(|(_, b)| rank(t) > rank(b))
        {
            best = Some((n, t));
        }
    }
    let Some((n, t)) = best else {
        let broken: Vec<&NodeState> = nodes
            .iter()
            .filter(|n| alive(n, now_ms, timeout) && n.node_error.is_some())
            .collect();
        let (down_reason, fail_reason) = match broken.first() {
            Some(b) => (
                Some(DownReason::NodeFailure),
                describe(
                    Some(DownReason::NodeFailure),
                    Some(&format!(
                        "node {}: {}",
                        b.node.name,
                        b.node_error.as_deref().unwrap_or("")
                    )),
                ),
            ),
            None => (
                Some(DownReason::NodeFailure),
                describe(
                    Some(DownReason::NodeFailure),
                    Some("No transport node reports this session"),
                ),
            ),
        };
        return SessionStatus {
            session_status: "DOWN",
            ike_session_state: "DOWN",
            fail_reason,
            down_reason,
            last_update_ms: now_ms,
            ..Default::default()
        };
    };
    let expected = t.child_sas_expected.max(1);
    let negotiated = t.child_sas_installed.min(expected);
    let (session, ike) = match t.ike_state {
        IkeState::Established if negotiated >= expected => ("UP", "UP"),
        IkeState::Established => ("DEGRADED", "UP"),
        IkeState::Connecting => ("DOWN", "NEGOTIATING"),
        IkeState::Down => ("DOWN", "DOWN"),
    };
    SessionStatus {
        session_status: session,
        ike_session_state: ike,
        fail_reason: describe(t.down_reason, t.message.as_deref()),
        down_reason: t.down_reason,
        transport_node_id: Some(n.node.id.clone()),
        total_tunnels: expected,
        negotiated_tunnels: negotiated,
        failed_tunnels: expected - negotiated,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        packets_in: t.packets_in,
        packets_out: t.packets_out,
        last_update_ms: n.last_seen,
    }
}

/// A reason's wire spelling (`AUTHENTICATION_FAILED`, as in the node API).
pub fn reason_str(r: DownReason) -> &'static str {
    match r {
        DownReason::AuthenticationFailed => "AUTHENTICATION_FAILED",
        DownReason::NoProposalChosen => "NO_PROPOSAL_CHOSEN",
        DownReason::PeerUnreachable => "PEER_UNREACHABLE",
        DownReason::TsUnacceptable => "TS_UNACCEPTABLE",
        DownReason::DpdTimeout => "DPD_TIMEOUT",
        DownReason::AdministrativelyDown => "ADMINISTRATIVELY_DOWN",
        DownReason::ConfigurationFailed => "CONFIGURATION_FAILED",
        DownReason::NodeFailure => "NODE_FAILURE",
        DownReason::Other => "OTHER",
    }
}

/// How a tunnel's reason reads for operators (Neutron `status_description`,
/// NSX `fail_reason`): `REASON: charon's words`, either part alone when only
/// it is known, None when neither is.
pub fn describe(reason: Option<DownReason>, message: Option<&str>) -> Option<String> {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (reason, message) {
        (Some(r), Some(m)) => Some(format!("{}: {m}", reason_str(r))),
        (Some(r), None) => Some(reason_str(r).to_string()),
        (None, Some(m)) => Some(m.to_string()),
        (None, None) => None,
    }
}

/// Node states grouped by gateway, for deriving Neutron statuses of many objects
/// in one response.
#[derive(Debug, Clone, Default)]
pub struct StatusIndex {
    by_gateway: HashMap<String, Vec<NodeState>>,
    gateway_generations: HashMap<String, i64>,
    now_ms: i64,
    timeout: Duration,
}

impl StatusIndex {
    /// An index over `nodes`, judged live against `now_ms` (Unix milliseconds)
    /// and `timeout`; `gateway_generations` holds each gateway's last-change generation.
    pub fn new(
        nodes: Vec<NodeState>,
        gateway_generations: HashMap<String, i64>,
        timeout: Duration,
        now_ms: i64,
    ) -> StatusIndex {
        let mut by_gateway: HashMap<String, Vec<NodeState>> = HashMap::new();
        for n in nodes {
            by_gateway.entry(n.node.gateway_id.clone()).or_default().push(n);
        }
        StatusIndex {
            by_gateway,
            gateway_generations,
            now_ms,
            timeout,
        }
    }

    fn nodes(&self, gateway_id: &str) -> &[NodeState] {
        self.by_gateway.get(gateway_id).map(Vec::as_slice).unwrap_or(&[])
    }

    fn gateway_generation(&self, gateway_id: &str) -> i64 {
        self.gateway_generations.get(gateway_id).copied().unwrap_or(0)
    }

    /// Pending while no node has realized `generation`: PENDING_CREATE for an
    /// object never updated, else PENDING_UPDATE.
    fn pending(revision: i64) -> Status {
        if revision == 0 {
            Status::PendingCreate
        } else {
            Status::PendingUpdate
        }
    }

    /// Neutron status of a VPN service: DOWN when disabled or carried by no node;
    /// pending until a live node has realized its last change; then ACTIVE.
    pub fn service(&self, rec: &Record<VpnService>) -> Status {
        let nodes = self.nodes(&rec.body.router_id);
        if !rec.body.admin_state_up || nodes.is_empty() {
            return Status::Down;
        }
        let gw_gen = self.gateway_generation(&rec.body.router_id);
        let live: Vec<&NodeState> = nodes
            .iter()
            .filter(|n| alive(n, self.now_ms, self.timeout))
            .collect();
        if live.iter().any(|n| realized(n, rec.meta.generation, gw_gen)) {
            Status::Active
        } else if nodes.iter().any(|n| realized(n, rec.meta.generation, gw_gen)) {
            // Realized once, but no node answers now.
            Status::Down
        } else {
            Self::pending(rec.meta.revision)
        }
    }

    /// Neutron status of a connection: ERROR when a node failed to apply it,
    /// DOWN when disabled or carried by no node, pending until realized, then
    /// ACTIVE when a live node has its CHILD SA installed, else DOWN.
    pub fn connection(&self, rec: &Record<Connection>, service: Option<&Record<VpnService>>) -> Status {
        self.connection_detail(rec, service).0
    }

    /// The connection's status and why it is not ACTIVE (Neutron's
    /// `status_description`, ours): `REASON: words` (see [`describe`]);
    /// None while ACTIVE.
    pub fn connection_detail(
        &self,
        rec: &Record<Connection>,
        service: Option<&Record<VpnService>>,
    ) -> (Status, Option<String>) {
        let desc = |r: DownReason, m: &str| describe(Some(r), Some(m));
        let Some(service) = service else {
            return (
                Status::Down,
                desc(
                    DownReason::ConfigurationFailed,
                    "the connection's VPN service is missing",
                ),
            );
        };
        let gw = &service.body.router_id;
        let nodes = self.nodes(gw);
        if let Some((n, f)) = nodes.iter().find_map(|n| {
            n.failures
                .iter()
                .find(|f| f.entity_id == rec.meta.id)
                .map(|f| (n, f))
        }) {
            return (
                Status::Error,
                desc(
                    DownReason::ConfigurationFailed,
                    &format!("node {}: {}", n.node.name, f.message),
                ),
            );
        }
        if !rec.body.admin_state_up {
            return (
                Status::Down,
                desc(
                    DownReason::AdministrativelyDown,
                    "the connection is administratively down",
                ),
            );
        }
        if !service.body.admin_state_up {
            return (
                Status::Down,
                desc(
                    DownReason::AdministrativelyDown,
                    "the connection's VPN service is administratively down",
                ),
            );
        }
        if nodes.is_empty() {
            return (
                Status::Down,
                desc(
                    DownReason::NodeFailure,
                    "no gateway node is registered for the connection's router",
                ),
            );
        }
        let gw_gen = self.gateway_generation(gw);
        let live: Vec<&NodeState> = nodes
            .iter()
            .filter(|n| alive(n, self.now_ms, self.timeout))
            .collect();
        // Every live node says it can't drive charon (socket missing, charon
        // dead, VICI failing): nothing will be realized until that is fixed,
        // so ERROR (which Neutron lets be updated), not a pending state that
        // never ends.
        if !live.is_empty() && live.iter().all(|n| n.node_error.is_some()) {
            let words: Vec<String> = live
                .iter()
                .map(|n| format!("node {}: {}", n.node.name, n.node_error.as_deref().unwrap_or("")))
                .collect();
            return (Status::Error, desc(DownReason::NodeFailure, &words.join("; ")));
        }
        let target = rec.meta.generation;
        if !nodes.iter().any(|n| realized(n, target, gw_gen)) {
            let why = if live.is_empty() {
                desc(DownReason::NodeFailure, "no gateway node has reported recently")
            } else {
                Some("waiting for the gateway's nodes to apply the change".to_string())
            };
            return (Self::pending(rec.meta.revision), why);
        }
        let carriers: Vec<&TunnelStatus> = live
            .iter()
            .filter(|n| realized(n, target, gw_gen))
            .flat_map(|n| n.tunnels.iter().filter(|t| t.id == rec.meta.id))
            .collect();
        if carriers
            .iter()
            .any(|t| t.ike_state == IkeState::Established && t.child_sas_installed > 0)
        {
            return (Status::Active, None);
        }
        if live.is_empty() {
            return (
                Status::Down,
                desc(DownReason::NodeFailure, "no gateway node has reported recently"),
            );
        }
        // The most telling report: one with a classified reason, else one
        // with words, from the node furthest along.
        let best = carriers.iter().max_by_key(|t| {
            (
                t.down_reason.is_some(),
                t.message.is_some(),
                matches!(t.ike_state, IkeState::Connecting),
            )
        });
        let why = match best {
            Some(t) => describe(t.down_reason, t.message.as_deref())
                .or_else(|| Some("the tunnel is not established".to_string())),
            None => Some("no node reports the tunnel yet".to_string()),
        };
        (Status::Down, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::realization::Failure;
    use store::nodes::Node;

    fn node(id: &str, r: Option<i64>, seen: i64) -> NodeState {
        NodeState {
            node: Node {
                id: id.into(),
                name: id.into(),
                gateway_id: "g".into(),
                cert_sha256: None,
                created_at: 0,
            },
            realized_generation: r,
            last_seen: seen,
            failures: vec![],
            tunnels: vec![],
            node_error: None,
        }
    }

    const T: Duration = Duration::from_secs(15);

    #[test]
    fn seed_in_progress_example() {
        let nodes = [node("a", Some(4), 1000), node("b", Some(5), 1000)];
        let s = session_state(&nodes, "s", 5, 5, 1000, T, "ccp");
        assert_eq!(s.state, RealizationState::InProgress);
        assert_eq!(
            s.failure_message.as_deref(),
            Some("The state realization is in progress at transport nodes.")
        );
        assert_eq!(s.details[0].state, RealizationState::InProgress);
        assert_eq!(
            s.details[0].failure_message.as_deref(),
            Some("CCP Id:ccp, Message:State realization is in progress at the node.")
        );
        assert_eq!(s.details[1].state, RealizationState::InSync);
        assert_eq!(s.details[1].failure_message, None);
    }

    #[test]
    fn unknown_and_failed() {
        let nodes = [node("a", Some(9), 1000), node("b", Some(9), 1000 - 20_000)];
        let s = session_state(&nodes, "s", 5, 5, 1000, T, "ccp");
        assert_eq!(s.state, RealizationState::Unknown);
        assert_eq!(
            s.failure_message.as_deref(),
            Some("The state realization is unknown at transport nodes")
        );
        assert_eq!(s.details.len(), 2);
        let none = session_state(&[node("b", Some(9), 1)], "s", 5, 5, 100_000, T, "ccp");
        assert!(none.details.is_empty());
        assert_eq!(
            none.failure_message.as_deref(),
            Some("Unable to get response from any CCP node. Please retry operation after some time.")
        );
        let mut f = node("a", Some(9), 1000);
        f.failures.push(Failure {
            entity_id: "s".into(),
            message: "no".into(),
        });
        assert_eq!(
            session_state(&[f], "s", 5, 5, 1000, T, "c").state,
            RealizationState::Failed
        );
    }

    #[test]
    fn other_gateways_changes_dont_hold_nodes_back() {
        // Realized 4, but the gateway's last change is 3: request 7 (elsewhere) is in sync.
        let s = session_state(&[node("a", Some(4), 1000)], "s", 7, 3, 1000, T, "c");
        assert_eq!(s.state, RealizationState::InSync);
    }

    #[test]
    fn a_node_that_cannot_drive_charon_fails_what_it_carries() {
        // Never applied anything, because charon's socket is missing.
        let mut broken = node("a", None, 1000);
        broken.node_error = Some("charon unreachable: no such file".into());
        let s = session_state(std::slice::from_ref(&broken), "s", 5, 5, 1000, T, "ccp");
        assert_eq!(s.state, RealizationState::Failed);
        assert_eq!(
            s.details[0].failure_message.as_deref(),
            Some("CCP Id:ccp, Message:charon unreachable: no such file")
        );

        let meta = |id: &str, revision| model::Meta {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            revision,
            generation: 5,
            created_at: 0,
            updated_at: 0,
            created_by: "t".into(),
            updated_by: "t".into(),
        };
        let conn = |rev| Record {
            meta: meta("c", rev),
            body: Connection {
                admin_state_up: true,
                ..Connection::default()
            },
        };
        let svc = Record {
            meta: meta("s", 0),
            body: VpnService {
                router_id: "g".into(),
                admin_state_up: true,
                ..VpnService::default()
            },
        };
        let idx = StatusIndex::new(vec![broken.clone()], HashMap::new(), T, 1000);
        assert_eq!(idx.connection(&conn(0), Some(&svc)), Status::Error);
        // A second node that works carries it: pending, as usual, until it applies.
        let ok = node("b", None, 1000);
        let idx = StatusIndex::new(vec![broken, ok], HashMap::new(), T, 1000);
        assert_eq!(idx.connection(&conn(0), Some(&svc)), Status::PendingCreate);
    }

    fn records(conn_up: bool) -> (Record<Connection>, Record<VpnService>) {
        let meta = |id: &str| model::Meta {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            revision: 0,
            generation: 5,
            created_at: 0,
            updated_at: 0,
            created_by: "t".into(),
            updated_by: "t".into(),
        };
        (
            Record {
                meta: meta("c"),
                body: Connection {
                    admin_state_up: conn_up,
                    ..Connection::default()
                },
            },
            Record {
                meta: meta("s"),
                body: VpnService {
                    router_id: "g".into(),
                    admin_state_up: true,
                    ..VpnService::default()
                },
            },
        )
    }

    #[test]
    fn a_down_connection_says_why() {
        let (conn, svc) = records(true);
        let mut n = node("a", Some(5), 1000);
        n.tunnels.push(TunnelStatus {
            id: "c".into(),
            down_reason: Some(DownReason::AuthenticationFailed),
            message: Some("received AUTHENTICATION_FAILED notify error".into()),
            ..TunnelStatus::default()
        });
        let idx = StatusIndex::new(vec![n.clone()], HashMap::new(), T, 1000);
        assert_eq!(
            idx.connection_detail(&conn, Some(&svc)),
            (
                Status::Down,
                Some("AUTHENTICATION_FAILED: received AUTHENTICATION_FAILED notify error".into())
            )
        );
        let st = session_status(std::slice::from_ref(&n), "c", 1000, T);
        assert_eq!(
            st.fail_reason.as_deref(),
            Some("AUTHENTICATION_FAILED: received AUTHENTICATION_FAILED notify error")
        );
        assert_eq!(st.down_reason, Some(DownReason::AuthenticationFailed));

        // Up: no description.
        n.tunnels[0] = TunnelStatus {
            id: "c".into(),
            ike_state: IkeState::Established,
            child_sas_installed: 1,
            child_sas_expected: 1,
            ..TunnelStatus::default()
        };
        let idx = StatusIndex::new(vec![n.clone()], HashMap::new(), T, 1000);
        assert_eq!(idx.connection_detail(&conn, Some(&svc)), (Status::Active, None));

        // Disabled.
        let (off, _) = records(false);
        let (st, why) = idx.connection_detail(&off, Some(&svc));
        assert_eq!(st, Status::Down);
        assert!(why.unwrap().starts_with("ADMINISTRATIVELY_DOWN: "));

        // Every live node can't drive charon: ERROR naming the node.
        let mut broken = node("b", Some(5), 1000);
        broken.node_error = Some("charon unreachable: cannot connect".into());
        let idx = StatusIndex::new(vec![broken.clone()], HashMap::new(), T, 1000);
        assert_eq!(
            idx.connection_detail(&conn, Some(&svc)),
            (
                Status::Error,
                Some("NODE_FAILURE: node b: charon unreachable: cannot connect".into())
            )
        );
        let st = session_status(&[broken], "c", 1000, T);
        assert_eq!(st.down_reason, Some(DownReason::NodeFailure));
        assert!(st.fail_reason.unwrap().contains("charon unreachable"));
    }

    #[test]
    fn a_node_that_never_reported_is_named_unknown_beside_others() {
        let quiet = node("q", None, 0);
        let ok = node("a", Some(5), 1000);
        let s = session_state(&[ok, quiet.clone()], "s", 5, 5, 1000, T, "ccp");
        assert_eq!(s.state, RealizationState::Unknown);
        let d = s.details.iter().find(|d| d.node_id == "q").unwrap();
        assert_eq!(d.state, RealizationState::Unknown);
        let m = d.failure_message.as_deref().unwrap();
        assert!(
            m.starts_with("CCP Id:ccp, Message: Unable to get response from the node"),
            "{m}"
        );
        assert!(m.contains("never reported") && m.ends_with("Please retry operation after some time."));
        // Alone, NSX's recorded all-unknown answer: no details.
        let s = session_state(&[quiet], "s", 5, 5, 1000, T, "ccp");
        assert!(s.details.is_empty());
    }
}
