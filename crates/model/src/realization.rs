//! What a gateway node must realize, and what it reports back. These types are
//! the node API's payloads: the server resolves canonical objects (whichever API
//! created them) into [`Tunnel`]s, the agent renders tunnels into strongSwan
//! configuration, and nothing here knows Neutron or NSX.
//!
//! Their `utoipa::ToSchema` is the node API's documented contract (the serde
//! JSON of these types, see `docs/node-api.md`); addresses and prefixes are
//! strings on the wire.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::enums::*;
use crate::resources::{DpdSettings, Psk};

/// The desired configuration of one node: every tunnel its gateway carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeConfig {
    /// The node this configuration is for.
    pub node_id: String,
    /// The node's gateway; every tunnel belongs to one of its services.
    pub gateway_id: String,
    /// The global generation this snapshot was taken at: it contains every
    /// change with a generation ≤ this value. The agent reports it back as its
    /// realized generation once applied.
    pub generation: i64,
    /// The gateway's connections, disabled ones too (see [`Tunnel::enabled`]).
    pub tunnels: Vec<Tunnel>,
}

/// IKE (phase 1) proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IkeProposal {
    /// IKE version to speak.
    pub version: IkeVersion,
    /// Encryption algorithms, in order of preference.
    pub encryption: Vec<EncryptionAlgorithm>,
    /// Integrity/PRF algorithms, in order of preference.
    pub integrity: Vec<AuthAlgorithm>,
    /// DH groups, in order of preference.
    pub dh_groups: Vec<DhGroup>,
    /// Hard lifetime of the IKE SA.
    pub lifetime_seconds: u32,
    /// IKEv1 aggressive mode instead of main mode.
    pub aggressive: bool,
}

/// IPsec (phase 2, CHILD SA) proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChildProposal {
    /// ESP or AH.
    pub protocol: TransformProtocol,
    /// Tunnel or transport mode.
    pub mode: EncapsulationMode,
    /// Encryption algorithms, in order of preference.
    pub encryption: Vec<EncryptionAlgorithm>,
    /// Integrity algorithms, in order of preference; empty when the ciphers
    /// are AEAD only.
    pub integrity: Vec<AuthAlgorithm>,
    /// Empty: no perfect forward secrecy.
    pub pfs_groups: Vec<DhGroup>,
    /// Hard lifetime of each CHILD SA.
    pub lifetime_seconds: u32,
}

/// One site-to-site connection, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tunnel {
    /// The canonical connection id (Neutron ipsec-site-connection / NSX session).
    pub id: String,
    /// The connection's name, for logs.
    pub name: String,
    /// False when the connection or its service is administratively down: the
    /// agent must not carry it (unload it).
    pub enabled: bool,
    /// The address this side's IKE and ESP packets use: the connection's own
    /// or the gateway's external address of the peer's IP version.
    #[schema(value_type = String)]
    pub local_address: IpAddr,
    /// IKE identity of this side (defaults to `local_address`).
    pub local_id: String,
    /// The peer's public IP.
    #[schema(value_type = String)]
    pub peer_address: IpAddr,
    /// The peer's IKE identity.
    pub peer_id: String,
    /// The pre-shared key, in the clear (the node API is authenticated).
    pub psk: Psk,
    /// Phase 1.
    pub ike: IkeProposal,
    /// Phase 2.
    pub child: ChildProposal,
    /// Local traffic selectors: network addresses, no duplicates.
    #[schema(value_type = Vec<String>)]
    pub local_ts: Vec<IpNet>,
    /// Remote traffic selectors: network addresses, no duplicates.
    #[schema(value_type = Vec<String>)]
    pub remote_ts: Vec<IpNet>,
    /// Dead peer detection.
    pub dpd: DpdSettings,
    /// Who starts the negotiation.
    pub initiator: Initiator,
    /// The connection's MTU in bytes; carried, not rendered.
    pub mtu: u32,
    /// Generation of the last change to anything this tunnel is made of.
    pub generation: i64,
    /// Route-based tunnel (NSX `RouteBasedIPSecVPNSession`, Neutron
    /// `route_mode: "route"`): None for a policy-based one. When set, the
    /// selectors are everything of the peer's IP version and the node routes
    /// what enters the tunnel through an interface of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,
}

/// The interface side of a route-based tunnel: what the node creates and
/// owns for it (on Linux an XFRM interface with `if_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteSpec {
    /// The XFRM interface id, also charon's `if_id_in` / `if_id_out`: unique
    /// per tunnel on a gateway, never 0, stable for the tunnel's life.
    pub if_id: u32,
    /// The tunnel interface's own addresses (VTI address/prefix, e.g.
    /// `169.254.0.1/30`).
    #[schema(value_type = Vec<String>)]
    pub addresses: Vec<IpNet>,
    /// Peer networks routed into the tunnel interface.
    #[schema(value_type = Vec<String>)]
    pub routes: Vec<IpNet>,
}

/// IKE SA state as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IkeState {
    /// An IKE SA is up.
    Established,
    /// Negotiation is under way.
    Connecting,
    /// No IKE SA, and none being negotiated.
    #[default]
    Down,
}

/// Runtime state of one tunnel on one node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TunnelStatus {
    /// The tunnel's (connection's) id.
    pub id: String,
    /// State of the tunnel's IKE SA.
    pub ike_state: IkeState,
    /// CHILD SAs installed for this connection.
    pub child_sas_installed: u32,
    /// CHILD SAs expected (one per traffic-selector pair).
    #[serde(default)]
    pub child_sas_expected: u32,
    /// Bytes received over the installed CHILD SAs (charon's counters).
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes sent over the installed CHILD SAs.
    #[serde(default)]
    pub bytes_out: u64,
    /// Packets received over the installed CHILD SAs.
    #[serde(default)]
    pub packets_in: u64,
    /// Packets sent over the installed CHILD SAs.
    #[serde(default)]
    pub packets_out: u64,
    /// Why the tunnel is not up, when known (e.g. an authentication failure):
    /// charon's own words, shown verbatim as detail.
    #[serde(default)]
    pub message: Option<String>,
    /// Why the tunnel is down, classified (None while it is up, or when
    /// nothing is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_reason: Option<DownReason>,
    /// Epoch ms, on the node's clock, of the last change of `ike_state` or of
    /// the number of installed CHILD SAs (None: no change seen yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change_ms: Option<i64>,
    /// Seconds the current IKE SA has been established (None when not up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_seconds: Option<u64>,
    /// IKE SA rekeys seen since the agent started.
    #[serde(default)]
    pub ike_rekeys: u64,
    /// CHILD SA rekeys seen since the agent started.
    #[serde(default)]
    pub child_rekeys: u64,
    /// The last IKE log lines charon wrote for this connection, oldest
    /// first, bounded (at most [`TUNNEL_LOG_LINES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// How many IKE log lines a [`TunnelStatus`] carries at most.
pub const TUNNEL_LOG_LINES: usize = 20;

/// Why a tunnel is down, as an operator reads it. Mapped from charon's
/// notifies and log; the verbatim words stay in [`TunnelStatus::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DownReason {
    /// The peer's or our authentication failed (wrong pre-shared key, wrong
    /// identity).
    AuthenticationFailed,
    /// No IKE or ESP proposal in common.
    NoProposalChosen,
    /// The peer did not answer: retransmits exhausted.
    PeerUnreachable,
    /// The peer refused the traffic selectors.
    TsUnacceptable,
    /// Dead peer detection declared the peer dead.
    DpdTimeout,
    /// The connection or its service is disabled.
    AdministrativelyDown,
    /// The node could not apply the tunnel's configuration.
    ConfigurationFailed,
    /// The node cannot drive its IPsec daemon (see `NodeReport::node_error`).
    NodeFailure,
    /// Down for a reason not classified above (see the message).
    Other,
}

/// A tunnel the node could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    /// The tunnel's (connection's) id.
    pub entity_id: String,
    /// What charon (or rendering) said, for operators.
    pub message: String,
}

/// What a node posts to `/internal/v1/nodes/{id}/report`. Every report is also a
/// heartbeat. `failures` and `tunnels` are the complete current sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct NodeReport {
    /// Every change with a generation ≤ this is applied (None: nothing applied yet).
    pub realized_generation: Option<i64>,
    /// Tunnels the node could not apply.
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// Runtime state of every enabled tunnel.
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
    /// The agent's name and version (e.g. `vpnaas-agent 0.1.0`).
    #[serde(default)]
    pub agent: Option<String>,
    /// Why the agent can't drive its IPsec daemon at all (charon's socket
    /// missing, charon dead, a VICI call failing): a node-level failure, which
    /// every tunnel of the node shares. None while charon answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_error: Option<String>,
    /// How long each configuration apply took, in ms, for the applies
    /// finished since the last report the server accepted (the agent clears
    /// it after a successful post; the server feeds its histogram).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apply_durations_ms: Vec<u64>,
}
