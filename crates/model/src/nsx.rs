//! Canonical objects and rules that only the NSX API can express today: DPD
//! profiles, local and peer endpoints, policy rules, tunnel ports, tags, and the
//! system-owned default profiles. They are canonical (stored, validated and
//! realized like everything else); only `api-nsx` knows their NSX spellings.
//!
//! Rules here that need more than one attribute or more than one object are
//! called by the store for NSX writes; [`session`] is also what
//! [`crate::validate::connection`] runs for an endpoint-form connection, whichever
//! API changes it.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::enums::string_enum;
use crate::enums::*;
use crate::error::{Result, Violation};
use crate::resources::*;

/// `serde(default)` helper for fields that default to true.
pub fn yes() -> bool {
    true
}

/// Ids of the system-owned defaults. Fixed, so every database has the same ones
/// and they survive re-creation; UUIDs, so Neutron's UUID checks accept them.
/// The default IKE profile ([`ike_profile_defaults`]).
pub const DEFAULT_IKE_PROFILE_ID: &str = "8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e01";
/// The default tunnel profile ([`tunnel_profile_defaults`]).
pub const DEFAULT_TUNNEL_PROFILE_ID: &str = "8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e02";
/// The default DPD profile ([`DpdProfile::default`]).
pub const DEFAULT_DPD_PROFILE_ID: &str = "8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e03";
/// The hidden [`SystemDefaults`] object that references the three defaults.
pub const DEFAULTS_HOLDER_ID: &str = "8b8f4f83-4e0e-4a53-a6c8-5f2b7a1d0e00";
/// NSX Manager's display name of the default IKE profile, which clients look up.
pub const DEFAULT_IKE_PROFILE_NAME: &str = "nsx-default-l3vpn-ike-profile";
/// NSX Manager's display name of the default tunnel profile.
pub const DEFAULT_TUNNEL_PROFILE_NAME: &str = "nsx-default-l3vpn-tunnel-profile";
/// NSX Manager's display name of the default DPD profile.
pub const DEFAULT_DPD_PROFILE_NAME: &str = "nsx-default-l3vpn-dpd-profile";
/// The actor recorded on system-made objects (`_create_user`).
pub const SYSTEM_USER: &str = "system";

/// Whether `id` is one of the system-owned defaults (which no API may change).
pub fn is_system_owned(id: &str) -> bool {
    matches!(
        id,
        DEFAULT_IKE_PROFILE_ID | DEFAULT_TUNNEL_PROFILE_ID | DEFAULT_DPD_PROFILE_ID | DEFAULTS_HOLDER_ID
    )
}

// Limits NSX documents (and vmware-nsxlib enforces client-side).

/// IKE profile `sa_life_time`, seconds (6 hours to 365 days).
pub const IKE_LIFETIME: std::ops::RangeInclusive<u32> = 21_600..=31_536_000;
/// Tunnel profile `sa_life_time`, seconds (15 minutes to 365 days).
pub const IPSEC_LIFETIME: std::ops::RangeInclusive<u32> = 900..=31_536_000;
/// DPD probe interval in periodic mode, seconds.
pub const DPD_PERIODIC_INTERVAL: std::ops::RangeInclusive<u32> = 3..=360;
/// DPD probe interval in on-demand mode, seconds.
pub const DPD_ON_DEMAND_INTERVAL: std::ops::RangeInclusive<u32> = 1..=10;
/// DPD retries before the peer is declared dead.
pub const DPD_RETRY_COUNT: std::ops::RangeInclusive<u32> = 1..=100;
/// Longest pre-shared key of a peer endpoint, in characters.
pub const PSK_MAX_LEN: usize = 128;
/// TCP MSS clamping `max_segment_size`, bytes.
pub const MSS: std::ops::RangeInclusive<u32> = 108..=8860;

/// A user's label on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tag {
    /// What the tag is about (e.g. `os-project-id`); may be empty.
    #[serde(default)]
    pub scope: String,
    /// The label itself.
    pub tag: String,
}

string_enum!(
    /// DF bit of tunnelled packets: copied from the inner packet or cleared.
    DfPolicy {
        /// The outer header takes the inner packet's DF bit; NSX's default.
        Copy = "copy",
        /// The outer header never has DF set.
        Clear = "clear",
    }
);

// string_enum! can't put `#[default]` on a variant, so no derive.
#[allow(clippy::derivable_impls)]
impl Default for DfPolicy {
    fn default() -> Self {
        DfPolicy::Copy
    }
}

string_enum!(
    /// IKE daemon log level of a VPN service.
    IkeLogLevel {
        /// Everything, including negotiation details.
        Debug = "debug",
        /// Normal operation; NSX's default.
        Info = "info",
        /// Warnings and worse.
        Warn = "warn",
        /// Errors and worse.
        Error = "error",
        /// Emergencies only.
        Emergency = "emergency",
    }
);

// string_enum! can't put `#[default]` on a variant, so no derive.
#[allow(clippy::derivable_impls)]
impl Default for IkeLogLevel {
    fn default() -> Self {
        IkeLogLevel::Info
    }
}

string_enum!(
    /// What a policy rule does with matching traffic.
    RuleAction {
        /// Send through the tunnel.
        Protect = "protect",
        /// Never encrypt (a VPN service's bypass rules).
        Bypass = "bypass",
    }
);

string_enum!(
    /// When DPD probes are sent: periodically, or only when traffic is waiting.
    DpdProbeMode {
        /// Probe every `probe_interval` seconds.
        Periodic = "periodic",
        /// Probe after `probe_interval` idle seconds when traffic is waiting.
        OnDemand = "on-demand",
    }
);

string_enum!(
    /// Which TCP handshakes get their MSS clamped.
    MssDirection {
        /// No clamping.
        None = "none",
        /// Connections the peer's side opens.
        InboundConnection = "inbound-connection",
        /// Connections this side opens.
        OutboundConnection = "outbound-connection",
        /// Connections in either direction.
        Both = "both",
    }
);

/// One policy rule: traffic from `sources` (local) to `destinations` (peer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// The rule's id within its list: the client's, or the next number after
    /// 1000 that the API assigned.
    pub id: String,
    /// Local prefixes.
    pub sources: Vec<IpNet>,
    /// Peer prefixes.
    pub destinations: Vec<IpNet>,
    /// Protect (a session's rules) or bypass (a service's).
    pub action: RuleAction,
    /// False: the rule contributes no traffic selector.
    pub enabled: bool,
    /// NSX's per-rule logging flag; stored and shown, not realized.
    pub logged: bool,
}

/// A route-based session's virtual tunnel interface addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelPort {
    /// The port's id, as the client gave it.
    pub tunnel_port_id: String,
    /// The interface's addresses; at least one.
    pub ip_subnets: Vec<TunnelSubnet>,
}

/// The addresses of `ports` with their prefix lengths (host bits kept), in
/// order; an address whose prefix length does not fit its family is skipped.
pub fn port_addresses(ports: &[TunnelPort]) -> impl Iterator<Item = ipnet::IpNet> + '_ {
    ports.iter().flat_map(|p| p.ip_subnets.iter()).flat_map(|s| {
        s.ip_addresses
            .iter()
            .filter_map(move |a| ipnet::IpNet::new(*a, s.prefix_length).ok())
    })
}

/// Addresses of a tunnel port sharing one prefix length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSubnet {
    /// The interface addresses; at least one.
    pub ip_addresses: Vec<IpAddr>,
    /// 1..=32 for IPv4, 1..=128 for IPv6.
    pub prefix_length: u8,
}

/// Clamping of the TCP MSS of connections through a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpMssClamping {
    /// Which connections' handshakes are clamped.
    pub direction: MssDirection,
    /// None: derived from the path MTU.
    pub max_segment_size: Option<u32>,
}

/// Dead peer detection as a reusable profile. A connection gets its
/// [`DpdSettings`] from [`DpdProfile::settings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpdProfile {
    /// False: sessions using the profile run without DPD.
    pub enabled: bool,
    /// When probes are sent.
    pub probe_mode: DpdProbeMode,
    /// Seconds between probes (periodic) or idle seconds before a probe (on demand).
    pub probe_interval: u32,
    /// Unanswered retries after the first probe before the peer is dead.
    pub retry_count: u32,
    /// The client's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Default for DpdProfile {
    /// NSX's defaults (also the system default profile).
    fn default() -> Self {
        DpdProfile {
            enabled: true,
            probe_mode: DpdProbeMode::Periodic,
            probe_interval: 60,
            retry_count: 5,
            tags: Vec::new(),
        }
    }
}

impl DpdProfile {
    /// The connection-level settings: hold on a dead peer, declared dead after
    /// the probe and every retry went unanswered.
    pub fn settings(&self) -> DpdSettings {
        DpdSettings {
            action: if self.enabled {
                DpdAction::Hold
            } else {
                DpdAction::Disabled
            },
            interval: self.probe_interval,
            timeout: self
                .probe_interval
                .saturating_mul(self.retry_count.saturating_add(1)),
        }
    }
}

/// The local side of NSX sessions: an address and identity on a VPN service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEndpoint {
    /// The VPN service the endpoint belongs to.
    pub vpnservice_id: String,
    /// The address tunnels terminate on (copied into each session's
    /// `local_address`).
    pub local_address: IpAddr,
    /// IKE identity; empty means the local address.
    pub local_id: String,
    /// NSX certificate id for certificate authentication; stored and shown,
    /// not realized (only PSK authentication is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// NSX ids of trusted CA certificates; stored and shown, not realized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_ca_ids: Vec<String>,
    /// NSX ids of CRLs; stored and shown, not realized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_crl_ids: Vec<String>,
    /// The client's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// The remote side of NSX sessions: address, identity, key and the profiles
/// sessions with this peer use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEndpoint {
    /// An IP literal.
    pub peer_address: String,
    /// The peer's IKE identity.
    pub peer_id: String,
    /// Held encrypted by the store; never serialized into the document column.
    #[serde(skip)]
    pub psk: Psk,
    /// Who starts the negotiation (NSX `connection_initiation_mode`).
    pub initiator: Initiator,
    /// The IKE profile.
    pub ikepolicy_id: String,
    /// The tunnel profile.
    pub ipsecpolicy_id: String,
    /// The DPD profile.
    pub dpd_profile_id: String,
    /// The client's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// The hidden object that references the system-owned defaults, so the
/// database's own in-use rule keeps every API from changing or deleting them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SystemDefaults {
    /// The ids of the default profiles it references.
    pub ids: Vec<String>,
}

/// NSX's IKE profile defaults (also the system default IKE profile): IKEv2,
/// AES-128, SHA-256, group 14, one day.
pub fn ike_profile_defaults() -> IkePolicy {
    IkePolicy {
        auth_algorithm: AuthAlgorithm::Sha256,
        encryption_algorithm: EncryptionAlgorithm::Aes128,
        phase1_negotiation_mode: Phase1Mode::Main,
        lifetime: Lifetime::seconds(86_400),
        ike_version: IkeVersion::V2,
        pfs: DhGroup::Group14,
        ..IkePolicy::default()
    }
}

/// NSX's tunnel profile defaults: AES-GCM-128 (integrity implicit), PFS with
/// group 14, one hour, ESP tunnel mode, DF copied.
pub fn tunnel_profile_defaults() -> IpsecPolicy {
    IpsecPolicy {
        transform_protocol: TransformProtocol::Esp,
        auth_algorithm: AuthAlgorithm::Sha256,
        encryption_algorithm: EncryptionAlgorithm::Aes128Gcm16,
        encapsulation_mode: EncapsulationMode::Tunnel,
        lifetime: Lifetime::seconds(3_600),
        pfs: DhGroup::Group14,
        auth_implicit: true,
        pfs_enabled: true,
        ..IpsecPolicy::default()
    }
}

fn field(field: &str, reason: impl Into<String>) -> crate::Error {
    Violation::Field {
        field: field.to_string(),
        reason: reason.into(),
    }
    .into()
}

/// Cross-attribute rules of an IKE profile written through NSX.
pub fn ike_profile(p: &IkePolicy) -> Result<()> {
    if p.ike_version != IkeVersion::V2 && p.encryption_algorithms().iter().any(|e| e.is_aead()) {
        return Err(field(
            "encryption_algorithms",
            "AES-GCM encryption for IKE needs IKE version 2",
        ));
    }
    if !IKE_LIFETIME.contains(&p.lifetime.value) {
        return Err(field(
            "sa_life_time",
            format!(
                "must be between {} and {} seconds",
                IKE_LIFETIME.start(),
                IKE_LIFETIME.end()
            ),
        ));
    }
    Ok(())
}

/// Cross-attribute rules of a tunnel profile written through NSX.
pub fn tunnel_profile(p: &IpsecPolicy) -> Result<()> {
    if p.auth_algorithms().is_empty() && p.encryption_algorithms().iter().any(|e| !e.is_aead()) {
        return Err(field(
            "digest_algorithms",
            "a digest algorithm is required unless every encryption algorithm is AES-GCM",
        ));
    }
    if !IPSEC_LIFETIME.contains(&p.lifetime.value) {
        return Err(field(
            "sa_life_time",
            format!(
                "must be between {} and {} seconds",
                IPSEC_LIFETIME.start(),
                IPSEC_LIFETIME.end()
            ),
        ));
    }
    Ok(())
}

/// Rules of a DPD profile: the probe interval's range depends on the mode.
pub fn dpd_profile(d: &DpdProfile) -> Result<()> {
    let range = match d.probe_mode {
        DpdProbeMode::Periodic => DPD_PERIODIC_INTERVAL,
        DpdProbeMode::OnDemand => DPD_ON_DEMAND_INTERVAL,
    };
    if !range.contains(&d.probe_interval) {
        return Err(field(
            "dpd_probe_interval",
            format!(
                "must be between {} and {} seconds in {} mode",
                range.start(),
                range.end(),
                d.probe_mode
            ),
        ));
    }
    if !DPD_RETRY_COUNT.contains(&d.retry_count) {
        return Err(field(
            "retry_count",
            format!(
                "must be between {} and {}",
                DPD_RETRY_COUNT.start(),
                DPD_RETRY_COUNT.end()
            ),
        ));
    }
    crate::validate::dpd(&d.settings())
}

fn same_version(nets: &[IpNet]) -> Option<u8> {
    let first = nets.first().map(ip_version)?;
    nets.iter().all(|n| ip_version(n) == first).then_some(first)
}

fn ip_of(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 4 } else { 6 }
}

/// Rules of an endpoint-form (NSX) connection, once its endpoints have been
/// copied in: traffic selection present and of one IP version, tunnel port
/// addresses sane, local and peer addresses of that version too, DPD and MTU as
/// for every connection. Returns the IP version of the protected traffic (or of
/// the outer addresses, for route-based sessions).
pub fn session(conn: &Connection, ipsec_policy: &IpsecPolicy) -> Result<u8> {
    if ipsec_policy.transform_protocol == TransformProtocol::AhEsp {
        return Err(Violation::IpsecUnsupported {
            resource: "IPsec Policy".into(),
            key: "transform_protocol".into(),
            value: "ah-esp".into(),
        }
        .into());
    }
    crate::validate::dpd(&conn.dpd)?;
    let peer: IpAddr = conn
        .peer_address
        .parse()
        .map_err(|_| field("peer_address", "must be an IP address"))?;
    if let Some(local) = &conn.local_address
        && ip_of(local) != ip_of(&peer)
    {
        return Err(field(
            "peer_address",
            "the local and peer addresses must be of the same IP version",
        ));
    }
    let version = if conn.route_based {
        if conn.tunnel_ports.is_empty() {
            return Err(field("tunnel_ports", "a route-based session needs a tunnel port"));
        }
        for port in &conn.tunnel_ports {
            if port.ip_subnets.is_empty() {
                return Err(field("tunnel_ports", "each tunnel port needs an IP subnet"));
            }
            for s in &port.ip_subnets {
                if s.ip_addresses.is_empty() {
                    return Err(field("ip_subnets", "each IP subnet needs an address"));
                }
                for a in &s.ip_addresses {
                    let max = if a.is_ipv4() { 32 } else { 128 };
                    if s.prefix_length == 0 || s.prefix_length > max {
                        return Err(field(
                            "prefix_length",
                            format!("{} is not a valid prefix length for {a}", s.prefix_length),
                        ));
                    }
                }
            }
        }
        tunnel_interface(conn)?;
        routed_peer_networks(conn, peer)?;
        ip_of(&peer)
    } else {
        if !conn.peer_cidrs.is_empty() {
            return Err(field(
                "peer_cidrs",
                "only a route-based session routes peer networks; a policy-based one names its traffic in policy_rules",
            ));
        }
        if conn.policy_rules.is_empty() {
            return Err(field(
                "policy_rules",
                "a policy-based session needs at least one rule",
            ));
        }
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for (i, r) in conn.policy_rules.iter().enumerate() {
            if r.sources.is_empty() || r.destinations.is_empty() {
                return Err(field(
                    "policy_rules",
                    format!("rule {i} needs at least one source and one destination subnet"),
                ));
            }
            local.extend_from_slice(&r.sources);
            remote.extend_from_slice(&r.destinations);
        }
        let l = same_version(&local).ok_or_else(|| Violation::MixedEndpointVersions {
            group: "policy_rules sources".into(),
        })?;
        let p = same_version(&remote).ok_or_else(|| Violation::MixedEndpointVersions {
            group: "policy_rules destinations".into(),
        })?;
        if l != p {
            return Err(Violation::MixedConnectionVersions.into());
        }
        l
    };
    let min_mtu = if version == 6 { 1280 } else { 68 };
    if conn.mtu != 0 && conn.mtu < min_mtu {
        return Err(Violation::MtuTooSmall {
            mtu: conn.mtu,
            ip_version: version,
        }
        .into());
    }
    Ok(version)
}

/// Rules of a route-based connection's routed peer networks (`peer_cidrs`):
/// network addresses, no duplicates, never a default route nor one that
/// covers the peer's own address (either would send the tunnel's own IKE and
/// ESP packets into the tunnel), and none overlapping the tunnel interface's
/// own subnets (those are on-link). An empty list is valid: the interface is
/// then up with its addresses, and routing is left to the operator (or a
/// routing daemon over the interface).
pub fn routed_peer_networks(conn: &Connection, peer: IpAddr) -> Result<()> {
    let ports: Vec<ipnet::IpNet> = conn.tunnel_addresses().map(|n| n.trunc()).collect();
    if let Some(p) = ports.iter().find(|p| p.contains(&peer)) {
        return Err(field(
            interface_field(conn),
            format!("{p} contains the peer address {peer}: the tunnel's own packets would be routed into it"),
        ));
    }
    for (i, n) in conn.peer_cidrs.iter().enumerate() {
        if n.trunc() != *n {
            return Err(field(
                "peer_cidrs",
                format!("{n} is not a network address (did you mean {}?)", n.trunc()),
            ));
        }
        if n.prefix_len() == 0 {
            return Err(field(
                "peer_cidrs",
                format!(
                    "{n} would route everything, the tunnel's own packets to {peer} too, into the tunnel"
                ),
            ));
        }
        if n.contains(&peer) {
            return Err(field(
                "peer_cidrs",
                format!(
                    "{n} contains the peer address {peer}: the tunnel's own packets would be routed into it"
                ),
            ));
        }
        if conn.peer_cidrs[..i].contains(n) {
            return Err(field("peer_cidrs", format!("{n} is listed twice")));
        }
        if let Some(p) = ports.iter().find(|p| p.contains(n) || n.contains(*p)) {
            return Err(field(
                "peer_cidrs",
                format!("{n} overlaps the tunnel interface's own subnet {p}"),
            ));
        }
    }
    Ok(())
}

/// Rules of a route-based connection's tunnel interface: one (NSX: one
/// tunnel port), and each address a unicast host of its subnet that is on
/// the interface once: not unspecified, loopback, multicast, broadcast, an
/// IPv4-mapped IPv6 address, nor (for subnets of more than two addresses)
/// the network or broadcast address.
pub fn tunnel_interface(conn: &Connection) -> Result<()> {
    let at = interface_field(conn);
    if conn.tunnel_ports.len() > 1 {
        return Err(field(at, "a route-based session has one tunnel port"));
    }
    let mut seen: Vec<IpAddr> = Vec::new();
    for a in conn.tunnel_addresses() {
        let ip = a.addr();
        let point_to_point = a.max_prefix_len() - a.prefix_len() <= 1;
        let special = match ip {
            IpAddr::V4(v4) => {
                v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast()
            }
            IpAddr::V6(v6) => {
                v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() || v6.to_ipv4_mapped().is_some()
            }
        };
        let edge = !point_to_point && (ip == a.network() || (ip.is_ipv4() && ip == a.broadcast()));
        if a.prefix_len() == 0 || special || edge {
            return Err(field(
                at,
                format!("{a} is not a unicast host address of its subnet"),
            ));
        }
        if seen.contains(&ip) {
            return Err(field(at, format!("{ip} is given twice")));
        }
        seen.push(ip);
    }
    Ok(())
}

/// The attribute a route-based connection's interface addresses are given
/// in: NSX `tunnel_ports`, or our Neutron `tunnel_addresses`.
fn interface_field(conn: &Connection) -> &'static str {
    if conn.is_endpoint_form() {
        "tunnel_ports"
    } else {
        "tunnel_addresses"
    }
}

/// Rules between two route-based connections of one gateway, whichever was
/// made first: their tunnel interfaces' subnets and routed networks must not
/// overlap one another in any combination (a subnet is on-link on its own
/// interface, a destination has one route), and neither may route or hold on
/// an interface the other's peer address (that tunnel's own IKE and ESP
/// packets would enter the wrong tunnel).
pub fn route_based_neighbours(conn: &Connection, other: &Connection) -> Result<()> {
    if !conn.route_based || !other.route_based {
        return Ok(());
    }
    let nets = |c: &Connection| -> (Vec<ipnet::IpNet>, Vec<ipnet::IpNet>) {
        (
            c.tunnel_addresses().map(|n| n.trunc()).collect(),
            c.peer_cidrs.clone(),
        )
    };
    let (my_if, my_routes) = nets(conn);
    let (their_if, their_routes) = nets(other);
    let overlap = |a: &ipnet::IpNet, b: &ipnet::IpNet| a.contains(b) || b.contains(a);
    let cases: [(&[ipnet::IpNet], &[ipnet::IpNet], &str, &str); 4] = [
        (
            &my_if,
            &their_if,
            interface_field(conn),
            "the tunnel interface of",
        ),
        (
            &my_if,
            &their_routes,
            interface_field(conn),
            "a network routed by",
        ),
        (&my_routes, &their_if, "peer_cidrs", "the tunnel interface of"),
        (&my_routes, &their_routes, "peer_cidrs", "a network routed by"),
    ];
    for (mine, theirs, at, what) in cases {
        for n in mine {
            if let Some(t) = theirs.iter().find(|t| overlap(n, t)) {
                return Err(field(
                    at,
                    format!("{n} overlaps {t}, {what} another route-based connection of this gateway"),
                ));
            }
        }
    }
    if let Ok(peer) = other.peer_address.parse::<IpAddr>() {
        for (mine, at) in [(&my_if, interface_field(conn)), (&my_routes, "peer_cidrs")] {
            if let Some(n) = mine.iter().find(|n| n.contains(&peer)) {
                return Err(field(
                    at,
                    format!(
                        "{n} contains {peer}, the peer of another route-based connection of this gateway"
                    ),
                ));
            }
        }
    }
    if let Ok(peer) = conn.peer_address.parse::<IpAddr>()
        && let Some(n) = their_if.iter().chain(&their_routes).find(|n| n.contains(&peer))
    {
        return Err(field(
            "peer_address",
            format!(
                "{peer} is inside {n}, which another route-based connection of this gateway routes or holds"
            ),
        ));
    }
    Ok(())
}

/// Rules between a route-based connection and its own gateway: its tunnel
/// subnets and routed networks hold none of the gateway's external
/// addresses and overlap none of its internal subnets (routing those into a
/// tunnel would cut the gateway off its uplink or its own LAN).
pub fn route_based_on_gateway(
    conn: &Connection,
    external: &[IpAddr],
    internal: &[ipnet::IpNet],
) -> Result<()> {
    if !conn.route_based {
        return Ok(());
    }
    let my_if: Vec<ipnet::IpNet> = conn.tunnel_addresses().map(|n| n.trunc()).collect();
    for (mine, at) in [(&my_if, interface_field(conn)), (&conn.peer_cidrs, "peer_cidrs")] {
        for n in mine {
            if let Some(a) = external.iter().find(|a| n.contains(*a)) {
                return Err(field(
                    at,
                    format!("{n} contains {a}, an external address of this gateway"),
                ));
            }
            if let Some(s) = internal.iter().find(|s| s.contains(n) || n.contains(*s)) {
                return Err(field(
                    at,
                    format!("{n} overlaps {s}, an internal subnet of this gateway"),
                ));
            }
        }
    }
    Ok(())
}

/// Rules of a VPN service's bypass rules: each has traffic, all of one version.
pub fn bypass_rules(rules: &[PolicyRule]) -> Result<()> {
    for (i, r) in rules.iter().enumerate() {
        if r.action != RuleAction::Bypass {
            return Err(field(
                "bypass_rules",
                format!("rule {i}: the action of a bypass rule must be BYPASS"),
            ));
        }
        let all: Vec<IpNet> = r.sources.iter().chain(&r.destinations).copied().collect();
        if r.sources.is_empty() || r.destinations.is_empty() {
            return Err(field(
                "bypass_rules",
                format!("rule {i} needs at least one source and one destination subnet"),
            ));
        }
        if same_version(&all).is_none() {
            return Err(Violation::MixedConnectionVersions.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn rule(src: &str, dst: &str) -> PolicyRule {
        PolicyRule {
            id: "1".into(),
            sources: vec![src.parse().unwrap()],
            destinations: vec![dst.parse().unwrap()],
            action: RuleAction::Protect,
            enabled: true,
            logged: false,
        }
    }

    fn session_conn() -> Connection {
        Connection {
            peer_address: "192.0.2.1".into(),
            peer_id: "192.0.2.1".into(),
            local_endpoint_id: Some("l".into()),
            peer_endpoint_id: Some("p".into()),
            local_address: Some("198.51.100.1".parse().unwrap()),
            policy_rules: vec![rule("10.0.1.0/24", "10.0.2.0/24")],
            dpd: DpdProfile::default().settings(),
            ..Connection::default()
        }
    }

    #[test]
    fn defaults_are_valid() {
        ike_profile(&ike_profile_defaults()).unwrap();
        tunnel_profile(&tunnel_profile_defaults()).unwrap();
        dpd_profile(&DpdProfile::default()).unwrap();
        assert!(tunnel_profile_defaults().auth_algorithms().is_empty());
        assert_eq!(tunnel_profile_defaults().pfs_groups(), vec![DhGroup::Group14]);
        assert!(is_system_owned(DEFAULT_DPD_PROFILE_ID));
        assert!(!is_system_owned("x"));
    }

    #[test]
    fn gcm_ike_needs_v2() {
        let mut p = ike_profile_defaults();
        p.set_encryption_algorithms(&[EncryptionAlgorithm::Aes128Gcm16]);
        ike_profile(&p).unwrap();
        p.ike_version = IkeVersion::V1;
        assert!(matches!(
            ike_profile(&p),
            Err(Error::Invalid(Violation::Field { .. }))
        ));
        p.lifetime.value = 3600;
        p.ike_version = IkeVersion::V2;
        assert!(ike_profile(&p).is_err());
    }

    #[test]
    fn tunnel_digest_required_without_gcm() {
        let mut p = tunnel_profile_defaults();
        p.set_encryption_algorithms(&[EncryptionAlgorithm::Aes128]);
        assert!(tunnel_profile(&p).is_err());
        p.set_auth_algorithms(&[AuthAlgorithm::Sha256, AuthAlgorithm::Sha256, AuthAlgorithm::Sha1]);
        tunnel_profile(&p).unwrap();
        assert_eq!(
            p.auth_algorithms(),
            vec![AuthAlgorithm::Sha256, AuthAlgorithm::Sha1]
        );
        p.pfs_enabled = false;
        assert!(p.pfs_groups().is_empty());
    }

    #[test]
    fn dpd_profile_ranges_and_settings() {
        let mut d = DpdProfile::default();
        assert_eq!(d.settings().timeout, 360);
        d.probe_interval = 2;
        assert!(dpd_profile(&d).is_err());
        d.probe_mode = DpdProbeMode::OnDemand;
        dpd_profile(&d).unwrap();
        d.retry_count = 0;
        assert!(dpd_profile(&d).is_err());
        d.retry_count = 1;
        d.enabled = false;
        assert_eq!(d.settings().action, DpdAction::Disabled);
    }

    #[test]
    fn session_rules() {
        let ipsec = tunnel_profile_defaults();
        assert_eq!(session(&session_conn(), &ipsec).unwrap(), 4);
        let mut c = session_conn();
        c.policy_rules = vec![rule("10.0.1.0/24", "2001:db8::/64")];
        assert!(matches!(
            session(&c, &ipsec),
            Err(Error::Invalid(Violation::MixedConnectionVersions))
        ));
        let mut c = session_conn();
        c.policy_rules.push(rule("2001:db8:1::/64", "10.0.3.0/24"));
        assert!(matches!(
            session(&c, &ipsec),
            Err(Error::Invalid(Violation::MixedEndpointVersions { .. }))
        ));
        let mut c = session_conn();
        c.policy_rules.clear();
        assert!(session(&c, &ipsec).is_err());
        let mut c = session_conn();
        c.peer_address = "2001:db8::1".into();
        assert!(session(&c, &ipsec).is_err());
        let mut c = session_conn();
        c.dpd.timeout = c.dpd.interval;
        assert!(matches!(
            session(&c, &ipsec),
            Err(Error::Invalid(Violation::DpdTimeoutNotAboveInterval))
        ));
    }

    #[test]
    fn route_based_rules() {
        let ipsec = tunnel_profile_defaults();
        let mut c = session_conn();
        c.policy_rules.clear();
        c.route_based = true;
        assert!(session(&c, &ipsec).is_err());
        c.tunnel_ports = vec![TunnelPort {
            tunnel_port_id: "t".into(),
            ip_subnets: vec![TunnelSubnet {
                ip_addresses: vec!["169.254.1.1".parse().unwrap()],
                prefix_length: 30,
            }],
        }];
        assert_eq!(session(&c, &ipsec).unwrap(), 4);
        c.peer_cidrs = vec!["10.2.0.0/24".parse().unwrap(), "2001:db8:2::/64".parse().unwrap()];
        assert_eq!(session(&c, &ipsec).unwrap(), 4);
        for bad in [
            "10.2.0.1/24",
            "0.0.0.0/0",
            "192.0.2.0/24",
            "169.254.1.0/24",
            "10.2.0.0/24",
        ] {
            let mut c = c.clone();
            c.peer_cidrs.push(bad.parse().unwrap());
            let err = session(&c, &ipsec).unwrap_err();
            assert!(err.to_string().contains("peer_cidrs"), "{bad}: {err}");
        }
        c.tunnel_ports[0].ip_subnets[0].prefix_length = 33;
        assert!(session(&c, &ipsec).is_err());
        let mut c = session_conn();
        c.peer_cidrs = vec!["10.2.0.0/24".parse().unwrap()];
        assert!(
            session(&c, &ipsec).is_err(),
            "a policy-based session routes nothing"
        );
    }

    #[test]
    fn old_documents_still_decode() {
        let doc = r#"{"transform_protocol":"esp","auth_algorithm":"sha1","encryption_algorithm":"aes-128",
            "encapsulation_mode":"tunnel","lifetime":{"units":"seconds","value":3600},"pfs":"group5"}"#;
        let p: IpsecPolicy = serde_json::from_str(doc).unwrap();
        assert!(p.pfs_enabled && !p.auth_implicit && p.df_policy == DfPolicy::Copy);
        let doc = r#"{"router_id":"r","subnet_id":null,"flavor_id":null,"admin_state_up":true}"#;
        let s: VpnService = serde_json::from_str(doc).unwrap();
        assert!(s.ipsec_ha_sync && s.ike_log_level == IkeLogLevel::Info);
    }
}
