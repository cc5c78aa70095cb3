//! Canonical resource bodies. Common metadata (id, project, name, revision,
//! timestamps) lives in [`Meta`]; the store keeps it in columns and the body in a
//! document column, so adding an optional field needs no schema migration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::enums::*;
use crate::nsx::{DfPolicy, IkeLogLevel, PolicyRule, Tag, TcpMssClamping, TunnelPort};

/// Metadata every stored object has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// A UUID the store generates, unless the writer chose the id (NSX's
    /// system defaults, the operator's commands).
    pub id: String,
    /// The owning Keystone project.
    pub project_id: String,
    /// Free-form name (NSX `display_name`); not unique, may be empty.
    pub name: String,
    /// Free-form description; may be empty.
    pub description: String,
    /// Starts at 0, +1 on every update (NSX `_revision`).
    pub revision: i64,
    /// Generation of the last write that touched this object.
    pub generation: i64,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds of the last update (`created_at` until then).
    pub updated_at: i64,
    /// The actor of the creating write: the user name, or `system` /
    /// `vpnaas-admin` for objects the server or the operator made.
    pub created_by: String,
    /// The actor of the last update, as `created_by`.
    pub updated_by: String,
}

/// A stored object: metadata plus its kind-specific body.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// What every kind has.
    pub meta: Meta,
    /// The kind-specific part.
    pub body: T,
}

/// SA lifetime. Only seconds exist as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    /// Always seconds; kept because Neutron shows it.
    pub units: LifetimeUnits,
    /// The SA's hard lifetime, in `units`; rekeying starts before it ends.
    pub value: u32,
}

impl Lifetime {
    /// A lifetime of `value` seconds.
    pub const fn seconds(value: u32) -> Lifetime {
        Lifetime {
            units: LifetimeUnits::Seconds,
            value,
        }
    }
}

/// Phase 1 (IKE SA) parameters.
///
/// Neutron names one algorithm of each kind; NSX offers lists. The first of each
/// list is the primary field (what Neutron shows), the rest are the `extra_*`
/// fields; use [`IkePolicy::encryption_algorithms`] and friends for the whole list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkePolicy {
    /// The primary integrity/PRF algorithm.
    pub auth_algorithm: AuthAlgorithm,
    /// The primary encryption algorithm.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Main or aggressive mode; only IKEv1 uses it.
    pub phase1_negotiation_mode: Phase1Mode,
    /// Lifetime of the IKE SA.
    pub lifetime: Lifetime,
    /// Which IKE version to speak.
    pub ike_version: IkeVersion,
    /// The (primary) Diffie-Hellman group of the IKE SA.
    pub pfs: DhGroup,
    /// Encryption algorithms offered after `encryption_algorithm`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_encryption_algorithms: Vec<EncryptionAlgorithm>,
    /// Integrity algorithms offered after `auth_algorithm`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_auth_algorithms: Vec<AuthAlgorithm>,
    /// DH groups offered after `pfs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_dh_groups: Vec<DhGroup>,
    /// NSX tags; Neutron neither shows nor sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// Splits a list into its first element and the rest, dropping duplicates.
fn split_list<T: Copy + PartialEq>(list: &[T]) -> Option<(T, Vec<T>)> {
    let mut uniq: Vec<T> = Vec::with_capacity(list.len());
    for x in list {
        if !uniq.contains(x) {
            uniq.push(*x);
        }
    }
    let first = *uniq.first()?;
    Some((first, uniq.split_off(1)))
}

fn joined<T: Copy>(first: T, rest: &[T]) -> Vec<T> {
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(first);
    v.extend_from_slice(rest);
    v
}

impl IkePolicy {
    /// Every encryption algorithm offered, primary first.
    pub fn encryption_algorithms(&self) -> Vec<EncryptionAlgorithm> {
        joined(self.encryption_algorithm, &self.extra_encryption_algorithms)
    }
    /// Every integrity algorithm offered, primary first.
    pub fn auth_algorithms(&self) -> Vec<AuthAlgorithm> {
        joined(self.auth_algorithm, &self.extra_auth_algorithms)
    }
    /// Every DH group offered, primary first.
    pub fn dh_groups(&self) -> Vec<DhGroup> {
        joined(self.pfs, &self.extra_dh_groups)
    }
    /// Replaces the encryption list; an empty list changes nothing.
    pub fn set_encryption_algorithms(&mut self, list: &[EncryptionAlgorithm]) {
        if let Some((first, rest)) = split_list(list) {
            self.encryption_algorithm = first;
            self.extra_encryption_algorithms = rest;
        }
    }
    /// Replaces the integrity list; an empty list changes nothing.
    pub fn set_auth_algorithms(&mut self, list: &[AuthAlgorithm]) {
        if let Some((first, rest)) = split_list(list) {
            self.auth_algorithm = first;
            self.extra_auth_algorithms = rest;
        }
    }
    /// Replaces the DH group list; an empty list changes nothing.
    pub fn set_dh_groups(&mut self, list: &[DhGroup]) {
        if let Some((first, rest)) = split_list(list) {
            self.pfs = first;
            self.extra_dh_groups = rest;
        }
    }
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
            extra_encryption_algorithms: Vec::new(),
            extra_auth_algorithms: Vec::new(),
            extra_dh_groups: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// Phase 2 (CHILD SA) parameters. Lists work as in [`IkePolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecPolicy {
    /// ESP or AH (AH+ESP is refused by validation).
    pub transform_protocol: TransformProtocol,
    /// The primary integrity algorithm (see `auth_implicit`).
    pub auth_algorithm: AuthAlgorithm,
    /// The primary encryption algorithm.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Tunnel or transport mode.
    pub encapsulation_mode: EncapsulationMode,
    /// Lifetime of each CHILD SA.
    pub lifetime: Lifetime,
    /// The (primary) PFS group.
    pub pfs: DhGroup,
    /// Encryption algorithms offered after `encryption_algorithm`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_encryption_algorithms: Vec<EncryptionAlgorithm>,
    /// Integrity algorithms offered after `auth_algorithm`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_auth_algorithms: Vec<AuthAlgorithm>,
    /// No integrity algorithm was chosen (NSX: empty `digest_algorithms`): the
    /// AEAD ciphers protect integrity, and `auth_algorithm` is only the value
    /// Neutron's view requires.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_implicit: bool,
    /// PFS groups offered after `pfs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_dh_groups: Vec<DhGroup>,
    /// False: no perfect forward secrecy (NSX `enable_perfect_forward_secrecy`);
    /// Neutron always has PFS.
    #[serde(default = "crate::nsx::yes")]
    pub pfs_enabled: bool,
    /// What happens to the DF bit of tunnelled packets.
    #[serde(default)]
    pub df_policy: DfPolicy,
    /// NSX tags; Neutron neither shows nor sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl IpsecPolicy {
    /// Every encryption algorithm offered, primary first.
    pub fn encryption_algorithms(&self) -> Vec<EncryptionAlgorithm> {
        joined(self.encryption_algorithm, &self.extra_encryption_algorithms)
    }
    /// Every integrity algorithm offered; empty when integrity comes from AEAD only.
    pub fn auth_algorithms(&self) -> Vec<AuthAlgorithm> {
        if self.auth_implicit {
            Vec::new()
        } else {
            joined(self.auth_algorithm, &self.extra_auth_algorithms)
        }
    }
    /// Every configured PFS group, primary first (even when PFS is off).
    pub fn dh_groups(&self) -> Vec<DhGroup> {
        joined(self.pfs, &self.extra_dh_groups)
    }
    /// The PFS groups to negotiate: none when PFS is off.
    pub fn pfs_groups(&self) -> Vec<DhGroup> {
        if self.pfs_enabled {
            self.dh_groups()
        } else {
            Vec::new()
        }
    }
    /// Replaces the encryption list; an empty list changes nothing.
    pub fn set_encryption_algorithms(&mut self, list: &[EncryptionAlgorithm]) {
        if let Some((first, rest)) = split_list(list) {
            self.encryption_algorithm = first;
            self.extra_encryption_algorithms = rest;
        }
    }
    /// Replaces the integrity list; an empty list means "implicit" (AEAD only)
    /// and keeps the primary as Neutron's placeholder.
    pub fn set_auth_algorithms(&mut self, list: &[AuthAlgorithm]) {
        match split_list(list) {
            Some((first, rest)) => {
                self.auth_algorithm = first;
                self.extra_auth_algorithms = rest;
                self.auth_implicit = false;
            }
            None => {
                self.extra_auth_algorithms.clear();
                self.auth_implicit = true;
            }
        }
    }
    /// Replaces the PFS group list; an empty list changes nothing.
    pub fn set_dh_groups(&mut self, list: &[DhGroup]) {
        if let Some((first, rest)) = split_list(list) {
            self.pfs = first;
            self.extra_dh_groups = rest;
        }
    }
}

impl Default for IpsecPolicy {
    /// Neutron's documented defaults.
    fn default() -> Self {
        IpsecPolicy {
            transform_protocol: TransformProtocol::Esp,
            auth_algorithm: AuthAlgorithm::Sha1,
            encryption_algorithm: EncryptionAlgorithm::Aes128,
            encapsulation_mode: EncapsulationMode::Tunnel,
            lifetime: Lifetime::seconds(3600),
            pfs: DhGroup::Group5,
            extra_encryption_algorithms: Vec::new(),
            extra_auth_algorithms: Vec::new(),
            auth_implicit: false,
            extra_dh_groups: Vec::new(),
            pfs_enabled: true,
            df_policy: DfPolicy::default(),
            tags: Vec::new(),
        }
    }
}

/// A gateway ("router" in Neutron, logical router in NSX): the place VPN
/// services live, with the public addresses tunnels terminate on.
///
/// The addresses are either given by the operator (`vpnaas gateway create`,
/// no network) or allocated from the subnets of an external [`Network`]
/// (Neutron's `external_gateway_info`); realization only reads the addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Gateway {
    /// The public IPv4 address IPv4 tunnels terminate on, if any.
    pub external_v4: Option<Ipv4Addr>,
    /// The public IPv6 address IPv6 tunnels terminate on, if any.
    pub external_v6: Option<Ipv6Addr>,
    /// The external network the addresses were allocated from (Neutron's
    /// `external_gateway_info.network_id`); None for operator-given addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_network_id: Option<String>,
    /// The subnet of the external network `external_v4` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_v4_subnet_id: Option<String>,
    /// The subnet of the external network `external_v6` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_v6_subnet_id: Option<String>,
    /// Neutron's `external_gateway_info.enable_snat`: shown, not realized.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_snat: bool,
    /// Neutron's `admin_state_up`: shown; a VPN service's own flag is what
    /// takes tunnels down.
    #[serde(default = "crate::nsx::yes")]
    pub admin_state_up: bool,
}

impl Gateway {
    /// A gateway with operator-given addresses and no external network.
    pub fn with_addresses(external_v4: Option<Ipv4Addr>, external_v6: Option<Ipv6Addr>) -> Gateway {
        Gateway {
            external_v4,
            external_v6,
            admin_state_up: true,
            ..Gateway::default()
        }
    }

    /// Whether the gateway has any external address (a VPN service needs one).
    pub fn has_external(&self) -> bool {
        self.external_v4.is_some() || self.external_v6.is_some()
    }

    /// Drops the external side: no network, no addresses.
    pub fn clear_external(&mut self) {
        self.external_v4 = None;
        self.external_v6 = None;
        self.external_network_id = None;
        self.external_v4_subnet_id = None;
        self.external_v6_subnet_id = None;
        self.enable_snat = false;
    }
}

/// A Neutron network: the container of subnets. vpnaas forwards no packets,
/// so a network is only what subnets belong to and, when `external`, where
/// gateways' external addresses are allocated from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Shown (`admin_state_up`); nothing is realized from it.
    pub admin_state_up: bool,
    /// `router:external`: gateways take their external addresses from its subnets.
    pub external: bool,
}

/// A subnet of a [`Network`]; attached to a gateway (a router interface) when
/// `gateway_id` is set, and only then usable as a VPN service's local side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The gateway the subnet is attached to (Neutron: the router with an
    /// interface on it). Stored as a plain id by older versions, which read
    /// back as attached.
    #[serde(default)]
    pub gateway_id: Option<String>,
    /// The network the subnet belongs to. Empty only in rows written before
    /// networks existed, until the server's start gives them one
    /// (`app::App::upgrade_core_network`).
    #[serde(default)]
    pub network_id: String,
    /// The subnet's prefix.
    pub cidr: IpNet,
    /// The router interface's address (Neutron `gateway_ip`); None: no gateway
    /// address (older rows, or `gateway_ip: null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<IpAddr>,
    /// Neutron's `enable_dhcp`: accepted and shown, nothing serves DHCP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_dhcp: bool,
}

impl Subnet {
    /// A subnet of `network_id` attached to `gateway_id` (the operator's
    /// `vpnaas subnet create`), with its first host as gateway address.
    pub fn attached(network_id: &str, gateway_id: &str, cidr: IpNet) -> Subnet {
        Subnet {
            gateway_id: Some(gateway_id.to_string()),
            network_id: network_id.to_string(),
            cidr,
            gateway_ip: first_host(&cidr),
            enable_dhcp: false,
        }
    }

    /// The IP version (4 or 6) of its prefix.
    pub fn ip_version(&self) -> u8 {
        ip_version(&self.cidr)
    }

    /// Whether the subnet is attached to `gateway_id`.
    pub fn is_on(&self, gateway_id: &str) -> bool {
        self.gateway_id.as_deref() == Some(gateway_id)
    }
}

/// The first host address of a prefix (Neutron's default `gateway_ip`): the
/// address after the network address, or the only one of a /32 (/128).
pub fn first_host(net: &IpNet) -> Option<IpAddr> {
    hosts(net).next()
}

/// The first and last host address of a prefix: all but the network address
/// (and, for IPv4, the broadcast address) when the prefix has more than two
/// addresses; every address of a /31, /32, /127 or /128.
pub fn host_range(net: &IpNet) -> (IpAddr, IpAddr) {
    match net {
        IpNet::V4(n) => {
            let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
            let (first, last) = if n.prefix_len() >= 31 {
                (first, last)
            } else {
                (first + 1, last - 1)
            };
            (IpAddr::V4(first.into()), IpAddr::V4(last.into()))
        }
        IpNet::V6(n) => {
            let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
            let first = if n.prefix_len() >= 127 { first } else { first + 1 };
            (IpAddr::V6(first.into()), IpAddr::V6(last.into()))
        }
    }
}

/// The host addresses of a prefix ([`host_range`]), in order, lazily: an
/// IPv6 /64 has 2^64 of them, so callers take what they need.
pub fn hosts(net: &IpNet) -> Box<dyn Iterator<Item = IpAddr> + Send> {
    match host_range(net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            Box::new((u32::from(a)..=u32::from(b)).map(|x| IpAddr::V4(x.into())))
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            Box::new((u128::from(a)..=u128::from(b)).map(|x| IpAddr::V6(x.into())))
        }
        _ => Box::new(std::iter::empty()),
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
    /// The gateway the service lives on (Neutron's name for it).
    pub router_id: String,
    /// Legacy mode: the local side is this one subnet and connections use peer_cidrs.
    pub subnet_id: Option<String>,
    /// Neutron's service flavor; always None, since a flavor is refused.
    pub flavor_id: Option<String>,
    /// False: every connection of the service is taken down on the nodes.
    pub admin_state_up: bool,
    /// IKE daemon log level on the gateway nodes (NSX `ike_log_level`).
    #[serde(default)]
    pub ike_log_level: IkeLogLevel,
    /// NSX `ipsec_ha_sync`: keep SA state in sync between the gateway's nodes.
    #[serde(default = "crate::nsx::yes")]
    pub ipsec_ha_sync: bool,
    /// Traffic that must never be encrypted (NSX `bypass_rules`, action bypass).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass_rules: Vec<PolicyRule>,
    /// NSX tags; Neutron neither shows nor sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Default for VpnService {
    /// Enabled, HA sync on, INFO logging; the gateway id is empty until filled in.
    fn default() -> Self {
        VpnService {
            router_id: String::new(),
            subnet_id: None,
            flavor_id: None,
            admin_state_up: true,
            ike_log_level: IkeLogLevel::default(),
            ipsec_ha_sync: true,
            bypass_rules: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// A named list of local subnets or remote CIDRs (or other endpoint kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointGroup {
    /// What the endpoints are (subnet ids, CIDRs, ...).
    pub endpoint_type: EndpointType,
    /// The endpoints as given, in order; validation makes them unique and of
    /// the group's type.
    pub endpoints: Vec<String>,
}

/// Dead peer detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DpdSettings {
    /// What to do once the peer is declared dead.
    pub action: DpdAction,
    /// Seconds between liveness checks.
    pub interval: u32,
    /// Seconds without an answer after which the peer is dead; must exceed
    /// `interval`.
    pub timeout: u32,
}

impl Default for DpdSettings {
    /// Neutron's defaults: hold, every 30 s, dead after 120 s.
    fn default() -> Self {
        DpdSettings {
            action: DpdAction::Hold,
            interval: 30,
            timeout: 120,
        }
    }
}

/// A pre-shared key. Its `Debug` never shows the key, so it can't reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct Psk(
    /// The key in the clear; read it with [`Psk::expose`].
    pub String,
);

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

impl Psk {
    /// The key in the clear, for the store's cipher and the agent's `load-shared`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A site-to-site IPsec connection (Neutron ipsec-site-connection, NSX session).
///
/// Two forms share this type. A Neutron-created connection names its traffic with
/// endpoint groups (or the legacy service subnet + `peer_cidrs`). An NSX-created
/// one has `local_endpoint_id`/`peer_endpoint_id`, and its traffic comes from
/// `policy_rules` (policy-based) or `tunnel_ports` (route-based); the fields
/// copied from its endpoints (service, policies, peer address/id, key, initiator,
/// DPD, local id/address) are kept current by the store whenever an endpoint or
/// profile changes, so renderers never need to look the endpoints up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The VPN service (and so the gateway) that carries the connection.
    pub vpnservice_id: String,
    /// The IKE policy (phase 1).
    pub ikepolicy_id: String,
    /// The IPsec policy (phase 2).
    pub ipsecpolicy_id: String,
    /// The peer's public IP. A DNS name given to Neutron is resolved before the
    /// write and stored as the IP it resolved to.
    pub peer_address: String,
    /// The peer's IKE identity.
    pub peer_id: String,
    /// This side's IKE identity; empty means the local address.
    pub local_id: String,
    /// Held encrypted by the store; never serialized into the document column.
    #[serde(skip)]
    pub psk: Psk,
    /// Who starts the negotiation.
    pub initiator: Initiator,
    /// Dead peer detection.
    pub dpd: DpdSettings,
    /// Bytes; at least 68 (IPv4) or 1280 (IPv6) unless 0. Stored and shown,
    /// not rendered (charon has no per-connection MTU).
    pub mtu: u32,
    /// False: the nodes unload the tunnel.
    pub admin_state_up: bool,
    /// Legacy mode (service with a subnet): the peer's prefixes. For a
    /// route-based connection: the peer networks routed into its tunnel
    /// interface (its traffic selectors are then everything, see
    /// [`crate::traffic::selectors`]).
    pub peer_cidrs: Vec<IpNet>,
    /// The local endpoint group (type subnet), when the service has no subnet.
    pub local_ep_group_id: Option<String>,
    /// The peer endpoint group (type cidr), when the service has no subnet.
    pub peer_ep_group_id: Option<String>,
    /// NSX local endpoint this connection was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_endpoint_id: Option<String>,
    /// NSX peer endpoint this connection was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_endpoint_id: Option<String>,
    /// Address the tunnel terminates on (NSX local endpoint `local_address`);
    /// None: the gateway's external address of the peer's IP version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<IpAddr>,
    /// Policy-based traffic selection (NSX `policy_rules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_rules: Vec<PolicyRule>,
    /// Route-based session (NSX `RouteBasedIPSecVPNSession`): traffic is routed
    /// into virtual tunnel interfaces described by `tunnel_ports`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub route_based: bool,
    /// The virtual tunnel interfaces of a route-based session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnel_ports: Vec<TunnelPort>,
    /// A route-based connection's interface id on its gateway (XFRM `if_id`,
    /// charon's `if_id_in`/`if_id_out`): allocated by the write that makes
    /// the connection route-based (the lowest number no other route-based
    /// connection of the gateway holds), never 0 once allocated, and kept
    /// for the connection's life. 0 for a policy-based one. The peer
    /// networks routed into that interface are `peer_cidrs`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub if_id: u32,
    /// NSX TCP MSS clamping; None: not configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_mss_clamping: Option<TcpMssClamping>,
    /// NSX tags; Neutron neither shows nor sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Default for Connection {
    /// Neutron's defaults; the ids are empty until filled in.
    fn default() -> Self {
        Connection {
            vpnservice_id: String::new(),
            ikepolicy_id: String::new(),
            ipsecpolicy_id: String::new(),
            peer_address: String::new(),
            peer_id: String::new(),
            local_id: String::new(),
            psk: Psk::default(),
            initiator: Initiator::BiDirectional,
            dpd: DpdSettings::default(),
            mtu: 1500,
            admin_state_up: true,
            peer_cidrs: Vec::new(),
            local_ep_group_id: None,
            peer_ep_group_id: None,
            local_endpoint_id: None,
            peer_endpoint_id: None,
            local_address: None,
            policy_rules: Vec::new(),
            route_based: false,
            tunnel_ports: Vec::new(),
            if_id: 0,
            tcp_mss_clamping: None,
            tags: Vec::new(),
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Connection {
    /// Whether this is the NSX form (endpoints + rules/tunnel ports) rather than
    /// Neutron's (endpoint groups or peer CIDRs).
    pub fn is_endpoint_form(&self) -> bool {
        self.local_endpoint_id.is_some()
    }

    /// A route-based connection's tunnel interface addresses with their
    /// prefix lengths (host bits kept), in the order of its tunnel ports;
    /// an address whose prefix length does not fit its family is skipped.
    pub fn tunnel_addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        crate::nsx::port_addresses(&self.tunnel_ports)
    }
}

/// A stable id derived from `parts` (UUID-shaped: the first 16 bytes of their
/// SHA-256, with version-4 bits set, so clients that check for a UUID accept
/// it). Used for objects that are not stored but derived from stored ones —
/// Neutron's router ports — and for the network the operator's
/// `vpnaas subnet create` puts a gateway's subnets in: the same inputs always
/// give the same id, on every server and after every restart.
pub fn derived_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The id of the network `vpnaas subnet create` puts `gateway_id`'s subnets in.
pub fn gateway_network_id(gateway_id: &str) -> String {
    derived_id(&["gateway-network", gateway_id])
}
