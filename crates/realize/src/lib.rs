//! Realization: turning desired state into what each gateway node must carry,
//! and turning what nodes report back into states an operator can read.
//!
//! - [`Realizer::node_config`] resolves a gateway's connections, whichever API
//!   created them, into self-contained [`Tunnel`]s, read from one consistent
//!   snapshot whose generation the node reports back once applied.
//! - [`state`] holds the pure functions: per-node realization state
//!   (`in_sync` / `in_progress` / `failed` / `unknown`) for a generation, the
//!   overall state, Neutron statuses, NSX session runtime status.
//! - [`stats`] holds session statistics (counters since a stored reset
//!   baseline) and the sessions summary.
//! - [`http`] is the node API (`/internal/v1/nodes/...`) agents talk to.
//! - [`watch`] turns commits and reports into per-connection state changes
//!   for watchers (the server's SSE stream), and tells an observer (the
//!   server's metrics) about every accepted report.

mod fanout;
pub mod http;
pub mod state;
pub mod stats;
pub mod watch;

use std::net::IpAddr;
use std::time::Duration;

use model::realization::{ChildProposal, IkeProposal, NodeConfig, RouteSpec, Tunnel};
use model::traffic;
use model::*;
use store::nodes::{Node, NodeState};
use store::read::{Keys, Need, Refs};
use store::{Store, now_ms};

pub use state::{NodeDetail, RealizationState, SessionState, SessionStatus, StatusIndex};

/// Settings of the realization engine.
#[derive(Debug, Clone)]
pub struct RealizeConfig {
    /// A node whose last report is older than this is `unknown`.
    pub node_timeout: Duration,
    /// Identifies this control-plane instance in state messages (NSX's "CCP Id").
    pub server_id: String,
}

impl Default for RealizeConfig {
    fn default() -> Self {
        RealizeConfig {
            node_timeout: Duration::from_secs(15),
            server_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// The realization engine: cheap to clone.
#[derive(Clone)]
pub struct Realizer {
    /// Desired state and the nodes' reports.
    pub store: Store,
    /// Shared by every clone.
    pub cfg: std::sync::Arc<RealizeConfig>,
    /// Set when the server shuts down: waiting long-polls answer at once
    /// ("nothing new"), so agents reconnect to the next server promptly.
    stopping: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// Which gateways long-polls wait on, and their shared configuration
    /// builds (see [`http`]).
    fanout: std::sync::Arc<fanout::Fanout>,
    /// Accepted node reports: watchers wake on them ([`watch`]).
    reports: std::sync::Arc<watch::Reports>,
}

/// Which change a state question is about.
enum Target<'a> {
    Request(&'a str),
    Generation(i64),
    Latest,
}

/// A session of a disabled service has no realization, status or
/// statistics: NSX answers them with an error ([`Violation::ServiceDisabled`]).
fn refuse_disabled(conn: &Record<Connection>, service: &Record<VpnService>) -> Result<()> {
    if service.body.admin_state_up {
        return Ok(());
    }
    Err(Error::Invalid(Violation::ServiceDisabled {
        service: service.meta.id.clone(),
        connection: conn.meta.id.clone(),
    }))
}

/// The interface side of a route-based connection: its interface id, the
/// tunnel ports' addresses with their prefix lengths (host bits kept: they
/// are the interface's own addresses), and the routed peer networks. None
/// for a policy-based connection, and for a route-based one written before
/// interface ids were allocated (if_id 0: no interface can be made for it
/// until its next write allocates one).
fn route_spec(c: &Connection) -> Option<RouteSpec> {
    if !c.route_based {
        return None;
    }
    if c.if_id == 0 {
        tracing::warn!("route-based connection without an interface id; carried without its interface");
        return None;
    }
    let mut addresses = Vec::new();
    for n in c.tunnel_addresses() {
        if !addresses.contains(&n) {
            addresses.push(n);
        }
    }
    Some(RouteSpec {
        if_id: c.if_id,
        addresses,
        routes: c.peer_cidrs.clone(),
    })
}

/// The tunnel of one connection of `gateway`, from what `refs` loaded for the
/// gateway's connections (their policies and traffic references). A
/// connection a node can't carry (its peer is no IP, the gateway has no
/// address of the peer's family) is skipped with a warning.
fn tunnel(
    conn: &Record<Connection>,
    service: &Record<VpnService>,
    gateway: &Record<Gateway>,
    refs: &Refs,
) -> Result<Option<Tunnel>> {
    let c = &conn.body;
    let Ok(peer) = c.peer_address.parse::<IpAddr>() else {
        tracing::warn!(connection = %conn.meta.id, "peer address is not an IP; skipped");
        return Ok(None);
    };
    // An NSX local endpoint names the address; otherwise the gateway's
    // external address of the peer's family.
    let local: Option<IpAddr> = c.local_address.or(match peer {
        IpAddr::V4(_) => gateway.body.external_v4.map(IpAddr::V4),
        IpAddr::V6(_) => gateway.body.external_v6.map(IpAddr::V6),
    });
    let Some(local) = local else {
        tracing::warn!(connection = %conn.meta.id, "gateway has no address of the peer's family; skipped");
        return Ok(None);
    };
    // The snapshot's references keep a used policy from disappearing, so a
    // missing one is a half-loaded `refs`, reported as the store would.
    let ike = refs
        .ike
        .get(&c.ikepolicy_id)
        .ok_or_else(|| Error::not_found(Kind::IkePolicy, &c.ikepolicy_id))?;
    let ipsec = refs
        .ipsec
        .get(&c.ipsecpolicy_id)
        .ok_or_else(|| Error::not_found(Kind::IpsecPolicy, &c.ipsecpolicy_id))?;
    // charon gets network addresses (see `model::traffic`).
    let ts = traffic::selectors(c, &service.body, &refs.traffic()).networks();
    let local_id = if c.local_id.is_empty() {
        local.to_string()
    } else {
        c.local_id.clone()
    };
    Ok(Some(Tunnel {
        id: conn.meta.id.clone(),
        name: conn.meta.name.clone(),
        enabled: c.admin_state_up && service.body.admin_state_up,
        local_address: local,
        local_id,
        peer_address: peer,
        peer_id: c.peer_id.clone(),
        psk: c.psk.clone(),
        ike: IkeProposal {
            version: ike.body.ike_version,
            encryption: ike.body.encryption_algorithms(),
            integrity: ike.body.auth_algorithms(),
            dh_groups: ike.body.dh_groups(),
            lifetime_seconds: ike.body.lifetime.value,
            aggressive: ike.body.phase1_negotiation_mode == Phase1Mode::Aggressive,
        },
        child: ChildProposal {
            protocol: ipsec.body.transform_protocol,
            mode: ipsec.body.encapsulation_mode,
            encryption: ipsec.body.encryption_algorithms(),
            integrity: ipsec.body.auth_algorithms(),
            pfs_groups: ipsec.body.pfs_groups(),
            lifetime_seconds: ipsec.body.lifetime.value,
        },
        local_ts: ts.local,
        remote_ts: ts.remote,
        dpd: c.dpd,
        initiator: c.initiator,
        mtu: c.mtu,
        generation: conn.meta.generation.max(service.meta.generation),
        route: route_spec(c),
    }))
}

impl Realizer {
    /// An engine over `store`, not stopping.
    pub fn new(store: Store, cfg: RealizeConfig) -> Realizer {
        Realizer {
            store,
            cfg: std::sync::Arc::new(cfg),
            stopping: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
            fanout: std::sync::Arc::new(fanout::Fanout::new()),
            reports: std::sync::Arc::new(watch::Reports::new()),
        }
    }

    /// How many gateway configurations the node API has built: one per
    /// change of a gateway some node asks for, however many of its nodes ask
    /// (a diagnostic; [`Realizer::node_config`] is not counted).
    pub fn config_builds(&self) -> u64 {
        self.fanout.builds()
    }

    /// How many node API config requests are in progress (waiting or being
    /// answered): a diagnostic.
    pub fn config_requests(&self) -> usize {
        self.fanout.waiting()
    }

    /// Ends every waiting long-poll (the server is shutting down).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Changes to true when the server shuts down.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The configuration a node must carry, from one consistent snapshot: the
    /// gateway, its services, their connections, then everything those
    /// reference, one query per kind (see [`store::read`]). The node API
    /// answers long-polls with the same, built once per gateway change and
    /// shared by the gateway's nodes.
    pub async fn node_config(&self, node: &Node) -> Result<NodeConfig> {
        let (generation, tunnels, _) = self.gateway_tunnels(&node.gateway_id).await?;
        Ok(NodeConfig {
            node_id: node.id.clone(),
            gateway_id: node.gateway_id.clone(),
            generation,
            tunnels,
        })
    }

    /// The generation of a new snapshot, the tunnels of `gateway_id` in it,
    /// sorted by id (every node of the gateway carries these), and the
    /// gateway's registered nodes in it.
    async fn gateway_tunnels(
        &self,
        gateway_id: &str,
    ) -> Result<(i64, Vec<Tunnel>, std::collections::HashSet<String>)> {
        let mut snap = self.store.snapshot().await?;
        let generation = snap.generation;
        let gateway: Record<Gateway> = snap.get(gateway_id).await?;
        let nodes = snap.node_ids_of(gateway_id).await?;
        let services: Vec<Record<VpnService>> = snap.list_users(gateway_id).await?;
        let service_ids: Vec<String> = services.iter().map(|s| s.meta.id.clone()).collect();
        let conns: Vec<Record<Connection>> = snap.users_of_any(&service_ids).await?;
        let mut refs = Refs::default();
        refs.services = services.into_iter().map(|s| (s.meta.id.clone(), s)).collect();
        let need = Need {
            traffic: true,
            policies: true,
            ..Need::default()
        };
        snap.load(&mut refs, Keys::of(&conns), need).await?;
        drop(snap);
        let mut tunnels = Vec::new();
        for conn in &conns {
            let Some(service) = refs.service_of(&conn.body) else {
                continue;
            };
            if let Some(t) = tunnel(conn, service, &gateway, &refs)? {
                tunnels.push(t);
            }
        }
        tunnels.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((generation, tunnels, nodes))
    }

    /// Statuses of the objects `refs` was loaded for, from the node states and
    /// generations it holds (loaded with [`Need::status`]: the nodes of those
    /// objects' gateways only), which it moves out of `refs`.
    pub fn status_index(&self, refs: &mut Refs) -> StatusIndex {
        StatusIndex::new(
            std::mem::take(&mut refs.node_states),
            std::mem::take(&mut refs.gateway_generations),
            self.cfg.node_timeout,
            now_ms(),
        )
    }

    /// NSX realization state of a connection (session) at a generation
    /// (NSX's deprecated `barrier_id`).
    pub async fn session_state_at(&self, conn_id: &str, generation: i64) -> Result<SessionState> {
        self.session_state_for(conn_id, Target::Generation(generation))
            .await
    }

    /// NSX realization state of a connection (session), for `request_id` or, without
    /// one, for the latest change to it.
    pub async fn session_state(&self, conn_id: &str, request_id: Option<&str>) -> Result<SessionState> {
        let target = match request_id {
            Some(rid) => Target::Request(rid),
            None => Target::Latest,
        };
        self.session_state_for(conn_id, target).await
    }

    async fn session_state_for(&self, conn_id: &str, target: Target<'_>) -> Result<SessionState> {
        // The request log is read first: nothing reads through the store
        // while a snapshot holds its connection.
        let requested = match target {
            Target::Request(rid) => Some(self.store.request_get(rid).await?.map(|(g, _)| g).ok_or(rid)),
            _ => None,
        };
        let mut snap = self.store.snapshot().await?;
        let conn: Record<Connection> = snap.get(conn_id).await?;
        let service: Record<VpnService> = snap.get(&conn.body.vpnservice_id).await?;
        refuse_disabled(&conn, &service)?;
        let target = match (target, requested) {
            (_, Some(Ok(g))) => g,
            (_, Some(Err(rid))) => {
                return Err(Error::RequestNotFound {
                    request_id: rid.to_string(),
                });
            }
            (Target::Generation(g), None) => g,
            (_, None) => conn.meta.generation.max(service.meta.generation),
        };
        let gateway = [service.body.router_id.clone()];
        let nodes: Vec<NodeState> = snap.node_realization_of(&gateway).await?;
        let gw_gen = snap
            .gateway_generations_of(&gateway)
            .await?
            .get(&gateway[0])
            .copied()
            .unwrap_or(0);
        Ok(state::session_state(
            &nodes,
            conn_id,
            target,
            gw_gen,
            now_ms(),
            self.cfg.node_timeout,
            &self.cfg.server_id,
        ))
    }

    /// NSX runtime status of a connection (session) from the nodes' reports.
    pub async fn session_status(&self, conn_id: &str) -> Result<(Record<Connection>, SessionStatus)> {
        let mut snap = self.store.snapshot().await?;
        let conn: Record<Connection> = snap.get(conn_id).await?;
        let service: Record<VpnService> = snap.get(&conn.body.vpnservice_id).await?;
        let nodes = snap.node_states_of([&service.body.router_id]).await?;
        let mut status = state::session_status(&nodes, conn_id, now_ms(), self.cfg.node_timeout);
        if status.session_status == "DOWN" && !(conn.body.admin_state_up && service.body.admin_state_up) {
            // Nodes don't carry a disabled tunnel: say why it is down.
            let r = model::realization::DownReason::AdministrativelyDown;
            let what = if conn.body.admin_state_up {
                "service"
            } else {
                "session"
            };
            status.down_reason = Some(r);
            status.fail_reason = state::describe(Some(r), Some(&format!("the {what} is disabled")));
        }
        Ok((conn, status))
    }
}
