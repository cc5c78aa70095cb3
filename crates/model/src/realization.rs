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
    pub node_id: String,
    pub gateway_id: String,
    /// The global generation this snapshot was taken at: it contains every
    /// change with a generation ≤ this value. The agent reports it back as its
    /// realized generation once applied.
    pub generation: i64,
    pub tunnels: Vec<Tunnel>,
}

/// IKE (phase 1) proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IkeProposal {
    pub version: IkeVersion,
    pub encryption: Vec<EncryptionAlgorithm>,
    pub integrity: Vec<AuthAlgorithm>,
    pub dh_groups: Vec<DhGroup>,
    pub lifetime_seconds: u32,
    pub aggressive: bool,
}

/// IPsec (phase 2, CHILD SA) proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChildProposal {
    pub protocol: TransformProtocol,
    pub mode: EncapsulationMode,
    pub encryption: Vec<EncryptionAlgorithm>,
    pub integrity: Vec<AuthAlgorithm>,
    /// Empty: no perfect forward secrecy.
    pub pfs_groups: Vec<DhGroup>,
    pub lifetime_seconds: u32,
}

/// One site-to-site connection, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tunnel {
    /// The canonical connection id (Neutron ipsec-site-connection / NSX session).
    pub id: String,
    pub name: String,
    /// False when the connection or its service is administratively down: the
    /// agent must not carry it (unload it).
    pub enabled: bool,
    #[schema(value_type = String)]
    pub local_address: IpAddr,
    /// IKE identity of this side (defaults to `local_address`).
    pub local_id: String,
    #[schema(value_type = String)]
    pub peer_address: IpAddr,
    pub peer_id: String,
    pub psk: Psk,
    pub ike: IkeProposal,
    pub child: ChildProposal,
    #[schema(value_type = Vec<String>)]
    pub local_ts: Vec<IpNet>,
    #[schema(value_type = Vec<String>)]
    pub remote_ts: Vec<IpNet>,
    pub dpd: DpdSettings,
    pub initiator: Initiator,
    pub mtu: u32,
    /// Generation of the last change to anything this tunnel is made of.
    pub generation: i64,
}

/// IKE SA state as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IkeState {
    Established,
    Connecting,
    Down,
}

/// Runtime state of one tunnel on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TunnelStatus {
    pub id: String,
    pub ike_state: IkeState,
    /// CHILD SAs installed for this connection.
    pub child_sas_installed: u32,
    /// CHILD SAs expected (one per traffic-selector pair).
    #[serde(default)]
    pub child_sas_expected: u32,
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
    #[serde(default)]
    pub packets_in: u64,
    #[serde(default)]
    pub packets_out: u64,
    /// Why the tunnel is not up, when known (e.g. an authentication failure).
    #[serde(default)]
    pub message: Option<String>,
}

/// A tunnel the node could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    pub entity_id: String,
    pub message: String,
}

/// What a node posts to `/internal/v1/nodes/{id}/report`. Every report is also a
/// heartbeat. `failures` and `tunnels` are the complete current sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct NodeReport {
    /// Every change with a generation ≤ this is applied (None: nothing applied yet).
    pub realized_generation: Option<i64>,
    #[serde(default)]
    pub failures: Vec<Failure>,
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
    #[serde(default)]
    pub agent: Option<String>,
}
