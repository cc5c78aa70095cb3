//! Canonical resource bodies. Common metadata (id, project, name, revision,
//! timestamps) lives in [`Meta`]; the store keeps it in columns and the body in a
//! document column, so adding an optional field needs no schema migration.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::enums::*;

/// Metadata every stored object has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    /// Starts at 0, +1 on every update (NSX `_revision`).
    pub revision: i64,
    /// Generation of the last write that touched this object.
    pub generation: i64,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
}

/// A stored object: metadata plus its kind-specific body.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    pub meta: Meta,
    pub body: T,
}

/// SA lifetime. Only seconds exist as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    pub units: LifetimeUnits,
    pub value: u32,
}

impl Lifetime {
    pub const fn seconds(value: u32) -> Lifetime {
        Lifetime {
            units: LifetimeUnits::Seconds,
            value,
        }
    }
}

/// Phase 1 (IKE SA) parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkePolicy {
    pub auth_algorithm: AuthAlgorithm,
    pub encryption_algorithm: EncryptionAlgorithm,
    pub phase1_negotiation_mode: Phase1Mode,
    pub lifetime: Lifetime,
    pub ike_version: IkeVersion,
    pub pfs: DhGroup,
}

impl Default for IkePolicy {
    /// Neutron's documented defaults.
    fn default() -> Self {
        IkePolicy {
            auth_algorithm: AuthAlgorithm::Sha1,
            encryption_algorithm: EncryptionAlgorithm::Aes128,
            phase1_negotiation_mode: Phase1Mode::Main,
            lifetime: Lifetime::seconds(3600),
            ike_version: IkeVersion::V1,
            pfs: DhGroup::Group5,
        }
    }
}

/// Phase 2 (CHILD SA) parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecPolicy {
    pub transform_protocol: TransformProtocol,
    pub auth_algorithm: AuthAlgorithm,
    pub encryption_algorithm: EncryptionAlgorithm,
    pub encapsulation_mode: EncapsulationMode,
    pub lifetime: Lifetime,
    pub pfs: DhGroup,
}

impl Default for IpsecPolicy {
    fn default() -> Self {
        IpsecPolicy {
            transform_protocol: TransformProtocol::Esp,
            auth_algorithm: AuthAlgorithm::Sha1,
            encryption_algorithm: EncryptionAlgorithm::Aes128,
            encapsulation_mode: EncapsulationMode::Tunnel,
            lifetime: Lifetime::seconds(3600),
            pfs: DhGroup::Group5,
        }
    }
}

/// A gateway ("router" in Neutron, logical router in NSX): the place VPN
/// services live, with the public addresses tunnels terminate on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub external_v4: Option<Ipv4Addr>,
    pub external_v6: Option<Ipv6Addr>,
}

impl Gateway {
    pub fn has_external(&self) -> bool {
        self.external_v4.is_some() || self.external_v6.is_some()
    }
}

/// An internal subnet attached to a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub gateway_id: String,
    pub cidr: IpNet,
}

impl Subnet {
    pub fn ip_version(&self) -> u8 {
        ip_version(&self.cidr)
    }
}

/// The IP version (4 or 6) of a prefix.
pub fn ip_version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

/// A VPN service: the IPsec endpoint on one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnService {
    pub router_id: String,
    /// Legacy mode: the local side is this one subnet and connections use peer_cidrs.
    pub subnet_id: Option<String>,
    pub flavor_id: Option<String>,
    pub admin_state_up: bool,
}

/// A named list of local subnets or remote CIDRs (or other endpoint kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointGroup {
    pub endpoint_type: EndpointType,
    pub endpoints: Vec<String>,
}

/// Dead peer detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpdSettings {
    pub action: DpdAction,
    pub interval: u32,
    pub timeout: u32,
}

impl Default for DpdSettings {
    fn default() -> Self {
        DpdSettings {
            action: DpdAction::Hold,
            interval: 30,
            timeout: 120,
        }
    }
}

/// A pre-shared key. Its `Debug` never shows the key, so it can't reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Psk(pub String);

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

impl Psk {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A site-to-site IPsec connection (Neutron ipsec-site-connection, NSX session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub vpnservice_id: String,
    pub ikepolicy_id: String,
    pub ipsecpolicy_id: String,
    pub peer_address: String,
    pub peer_id: String,
    pub local_id: String,
    /// Held encrypted by the store; never serialized into the document column.
    #[serde(skip)]
    pub psk: Psk,
    pub initiator: Initiator,
    pub dpd: DpdSettings,
    pub mtu: u32,
    pub admin_state_up: bool,
    pub peer_cidrs: Vec<IpNet>,
    pub local_ep_group_id: Option<String>,
    pub peer_ep_group_id: Option<String>,
}
