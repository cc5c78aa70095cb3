//! NSX's response JSON, typed: one struct per resource (the `ManagedResource`
//! fields NSX puts on every object are [`Managed`], flattened into each), the
//! list envelope's parts, the session state and status documents, and the
//! error envelope. Built from canonical records in `resources` (and
//! `state`), serialized by serde, described by the same structs'
//! `utoipa::ToSchema`.
//!
//! Canonical values are shown in NSX's spelling (the tables in [`crate::wire`]);
//! their schemas list exactly those tables' names. A list field leaves out a
//! value NSX has no name for (e.g. 3DES), as GET always has.
//!
//! Requests stay parsed by [`crate::wire::Fields`], whose messages name the
//! offending field; their documented schemas are in `crate::openapi`.

use model::Meta;
use model::nsx::{PolicyRule, Tag, is_system_owned};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

use crate::wire::*;

/// A response struct as the JSON object list semantics (`query`) work on.
pub fn to_obj<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(o)) => o,
        // Every response type is a struct of strings, numbers, booleans and
        // lists of those: it always serializes to an object.
        other => unreachable!("an NSX response body is not a JSON object: {other:?}"),
    }
}

/// `type: string` with the NSX names of `table`.
fn names<E>(table: Table<E>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(table.iter().map(|(n, _)| *n)))
}

fn list_of<E>(table: Table<E>) -> Schema {
    ArrayBuilder::new().items(names(table)).into()
}

fn encryption_list() -> Schema {
    list_of(ENCRYPTION)
}
fn digest_list() -> Schema {
    list_of(DIGEST)
}
fn dh_list() -> Schema {
    list_of(DH_GROUP)
}
fn ike_version() -> ObjectBuilder {
    names(IKE_VERSION)
}
fn initiation() -> ObjectBuilder {
    names(INITIATION)
}
fn probe_mode() -> ObjectBuilder {
    names(PROBE_MODE)
}
fn log_level() -> ObjectBuilder {
    names(LOG_LEVEL)
}
fn df_policy() -> ObjectBuilder {
    names(DF_POLICY)
}
fn rule_action() -> ObjectBuilder {
    names(ACTION)
}
fn encapsulation() -> ObjectBuilder {
    names(ENCAPSULATION)
}
fn transform() -> ObjectBuilder {
    names(TRANSFORM)
}
fn mss_direction() -> ObjectBuilder {
    names(MSS_DIRECTION)
}
fn realization_state() -> ObjectBuilder {
    use realize::state::RealizationState as S;
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(
        [S::InSync, S::InProgress, S::Failed, S::Unknown].map(S::as_str),
    ))
}

/// The NSX name of a value of a table that names every value of its enum
/// (a test checks which tables do).
pub fn name_of<E: PartialEq + Copy>(table: Table<E>, v: E) -> &'static str {
    spell(table, v).unwrap_or_default()
}

/// The NSX names of a list, leaving out values NSX can't express.
pub fn names_of<E: PartialEq + Copy>(table: Table<E>, list: &[E]) -> Vec<&'static str> {
    list.iter().filter_map(|v| spell(table, *v)).collect()
}

/// NSX's `ManagedResource` fields, on every object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ManagedResource)]
pub struct Managed {
    /// This resource's type name (sessions: policy- or route-based).
    pub resource_type: &'static str,
    /// The object's id (NSX `id`): the canonical id, shared with Neutron.
    pub id: String,
    /// The name, or the id when it has none.
    pub display_name: String,
    /// Absent when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Revision of the object (NSX `_revision`): starts at 0, +1 on every
    /// update; checked on update (a PUT must send the current one).
    #[serde(rename = "_revision")]
    pub revision: i64,
    /// When the object was created (NSX `_create_time`), epoch milliseconds.
    #[serde(rename = "_create_time")]
    pub create_time: i64,
    /// The user who created it (NSX `_create_user`), through either API.
    #[serde(rename = "_create_user")]
    pub create_user: String,
    /// When the object last changed (NSX `_last_modified_time`), epoch milliseconds.
    #[serde(rename = "_last_modified_time")]
    pub last_modified_time: i64,
    /// The user who last changed it (NSX `_last_modified_user`).
    #[serde(rename = "_last_modified_user")]
    pub last_modified_user: String,
    /// The default profiles: they can't be changed or deleted.
    #[serde(rename = "_system_owned")]
    pub system_owned: bool,
    /// Always `NOT_PROTECTED`.
    #[serde(rename = "_protection")]
    pub protection: &'static str,
}

impl Managed {
    /// The common fields of `meta`'s object, of type `resource_type`.
    pub fn new(meta: &Meta, resource_type: &'static str) -> Managed {
        Managed {
            resource_type,
            id: meta.id.clone(),
            display_name: if meta.name.is_empty() {
                meta.id.clone()
            } else {
                meta.name.clone()
            },
            description: meta.description.clone(),
            revision: meta.revision,
            create_time: meta.created_at,
            create_user: meta.created_by.clone(),
            last_modified_time: meta.updated_at,
            last_modified_user: meta.updated_by.clone(),
            system_owned: is_system_owned(&meta.id),
            protection: "NOT_PROTECTED",
        }
    }
}

/// An NSX tag: a free-form label on an object, which NSX clients (such as
/// vmware-nsxlib) use to mark what they own.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::Tag)]
pub struct TagView {
    /// What the tag is about (NSX `scope`), e.g. `os-neutron-net-id`.
    pub scope: String,
    /// The tag's value (NSX `tag`).
    pub tag: String,
}

/// The NSX view of canonical tags.
pub fn tags(tags: &[Tag]) -> Vec<TagView> {
    tags.iter()
        .map(|t| TagView {
            scope: t.scope.clone(),
            tag: t.tag.clone(),
        })
        .collect()
}

/// The algorithm lists of an IKE or tunnel profile, flattened into both (their
/// first three fields after the `ManagedResource` ones). Each lists the
/// canonical policy's values, primary first, leaving out those NSX has no name
/// for.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNAlgorithms)]
pub struct Algorithms {
    /// The ciphers offered (NSX `encryption_algorithms`).
    #[schema(schema_with = encryption_list)]
    pub encryption_algorithms: Vec<&'static str>,
    /// The integrity algorithms offered (NSX `digest_algorithms`); empty only
    /// on a tunnel profile whose AEAD cipher protects integrity by itself.
    #[schema(schema_with = digest_list)]
    pub digest_algorithms: Vec<&'static str>,
    /// The Diffie-Hellman groups offered (NSX `dh_groups`): of the IKE SA for
    /// an IKE profile, for PFS for a tunnel profile.
    #[schema(schema_with = dh_list)]
    pub dh_groups: Vec<&'static str>,
}

/// An IKE profile: the phase 1 (IKE SA) parameters a peer endpoint uses; the
/// NSX view of a Neutron ikepolicy.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNIKEProfile)]
pub struct IkeProfile {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The algorithm lists.
    #[serde(flatten)]
    pub algorithms: Algorithms,
    /// Lifetime of the IKE SA in seconds (NSX `sa_life_time`).
    pub sa_life_time: u32,
    /// Which IKE version to speak (NSX `ike_version`; `IKE_FLEX`: either).
    #[schema(schema_with = ike_version)]
    pub ike_version: &'static str,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// A tunnel profile: the phase 2 (IPsec/CHILD SA) parameters a peer endpoint
/// uses; the NSX view of a Neutron ipsecpolicy.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTunnelProfile)]
pub struct TunnelProfile {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The algorithm lists.
    #[serde(flatten)]
    pub algorithms: Algorithms,
    /// Whether each CHILD SA does a fresh Diffie-Hellman exchange with the
    /// `dh_groups` (NSX `enable_perfect_forward_secrecy`).
    pub enable_perfect_forward_secrecy: bool,
    /// Lifetime of each CHILD SA in seconds (NSX `sa_life_time`).
    pub sa_life_time: u32,
    /// Absent when the policy's mode has no NSX name (transport mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = encapsulation)]
    pub encapsulation_mode: Option<&'static str>,
    /// Absent when the policy's protocol has no NSX name (AH).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = transform)]
    pub transform_protocol: Option<&'static str>,
    /// What happens to the DF bit of tunnelled packets (NSX `df_policy`):
    /// copied from the inner packet or cleared.
    #[schema(schema_with = df_policy)]
    pub df_policy: &'static str,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// A dead peer detection profile: how a peer endpoint's liveness is probed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNDPDProfile)]
pub struct DpdProfile {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// Whether dead peer detection runs at all (NSX `enabled`).
    pub enabled: bool,
    /// Seconds between probes (NSX `dpd_probe_interval`); for `ON_DEMAND`,
    /// how long the tunnel may be idle before a probe.
    pub dpd_probe_interval: u32,
    /// When probes are sent (NSX `dpd_probe_mode`): on a fixed period, or only
    /// when traffic goes out without any coming back.
    #[schema(schema_with = probe_mode)]
    pub dpd_probe_mode: &'static str,
    /// How many unanswered probes declare the peer dead (NSX `retry_count`).
    pub retry_count: u32,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// One subnet of a policy rule's sources or destinations.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPolicySubnet)]
pub struct SubnetView {
    /// The subnet as a CIDR (NSX `subnet`).
    pub subnet: String,
}

/// The NSX view of a list of subnets.
pub fn subnets(nets: &[ipnet::IpNet]) -> Vec<SubnetView> {
    nets.iter()
        .map(|n| SubnetView {
            subnet: n.to_string(),
        })
        .collect()
}

/// A policy rule: traffic from `sources` to `destinations`, protected by a
/// policy-based session's tunnel or (a service's bypass rule) let through
/// outside any tunnel.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPolicyRule)]
pub struct Rule {
    /// The rule's id, unique within its list (assigned from 1001 up when a
    /// body gives none).
    pub id: String,
    /// The local subnets the rule matches.
    pub sources: Vec<SubnetView>,
    /// The remote subnets the rule matches.
    pub destinations: Vec<SubnetView>,
    /// `PROTECT` (through the tunnel) or `BYPASS` (in the clear).
    #[schema(schema_with = rule_action)]
    pub action: &'static str,
    /// Whether the rule is in effect (a disabled one matches no traffic).
    pub enabled: bool,
    /// Whether matching traffic is logged (NSX `logged`; stored, not acted on).
    pub logged: bool,
}

impl From<&PolicyRule> for Rule {
    fn from(r: &PolicyRule) -> Rule {
        Rule {
            id: r.id.clone(),
            sources: subnets(&r.sources),
            destinations: subnets(&r.destinations),
            action: name_of(ACTION, r.action),
            enabled: r.enabled,
            logged: r.logged,
        }
    }
}

/// An IPSec VPN service: VPN on one gateway (NSX logical router), which its
/// local endpoints and sessions belong to; the NSX view of a Neutron vpnservice.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNService)]
pub struct Service {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The gateway (Neutron router) the service lives on.
    pub logical_router_id: String,
    /// Whether the service's sessions are up at all (Neutron `admin_state_up`).
    pub enabled: bool,
    /// The IKE daemon's log level on the gateway (NSX `ike_log_level`; stored
    /// and shown).
    #[schema(schema_with = log_level)]
    pub ike_log_level: &'static str,
    /// Whether SA state is synchronized to the standby node of an HA pair
    /// (NSX `ipsec_ha_sync`; stored and shown).
    pub ipsec_ha_sync: bool,
    /// Traffic let through outside any tunnel (NSX `bypass_rules`).
    pub bypass_rules: Vec<Rule>,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// A reference to another NSX object, as NSX embeds one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ResourceReference)]
pub struct ResourceReference {
    /// The referred-to object's id.
    pub target_id: String,
    /// Its `resource_type`.
    pub target_type: &'static str,
    /// Whether it exists (always true: the store refuses dangling references).
    pub is_valid: bool,
    /// Its `display_name`, where the reference shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_display_name: Option<String>,
}

/// A local endpoint: the gateway-side address and IKE identity a session's
/// tunnel terminates on.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNLocalEndpoint)]
pub struct LocalEndpoint {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The IP address the tunnel terminates on (NSX `local_address`).
    pub local_address: String,
    /// The IKE identity the gateway presents (NSX `local_id`).
    pub local_id: String,
    /// The service the endpoint belongs to.
    pub ipsec_vpn_service_id: ResourceReference,
    /// A certificate for certificate authentication (NSX `certificate_id`):
    /// stored and shown; vpnaas authenticates with pre-shared keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// CA certificates trusted for peers (NSX `trust_ca_ids`; stored and shown).
    pub trust_ca_ids: Vec<String>,
    /// CRLs checked for peers (NSX `trust_crl_ids`; stored and shown).
    pub trust_crl_ids: Vec<String>,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// A peer endpoint: the remote side of sessions (its address, identity and
/// key) and the IKE, tunnel and DPD profiles used with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPeerEndpoint)]
pub struct PeerEndpoint {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The peer's IP address (NSX `peer_address`).
    pub peer_address: String,
    /// The IKE identity the peer presents (NSX `peer_id`).
    pub peer_id: String,
    /// How the peer authenticates (NSX `authentication_mode`): always `PSK`.
    pub authentication_mode: &'static str,
    /// Whether the gateway initiates the IKE SA, only responds, or initiates
    /// when traffic needs the tunnel (NSX `connection_initiation_mode`).
    #[schema(schema_with = initiation)]
    pub connection_initiation_mode: &'static str,
    /// The IKE profile used with this peer.
    pub ike_profile_id: String,
    /// The tunnel profile used with this peer.
    pub ipsec_tunnel_profile_id: String,
    /// Absent for the view of a Neutron connection (its DPD settings are its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpd_profile_id: Option<String>,
    /// The pre-shared key (NSX `psk`): only with `?action=show-sensitive-data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

/// Addresses of a route-based session's tunnel interface on one subnet.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::TunnelPortAddress)]
pub struct TunnelSubnetView {
    /// The interface's addresses on the subnet.
    pub ip_addresses: Vec<String>,
    /// The subnet's prefix length.
    pub prefix_length: u8,
}

/// A route-based session's virtual tunnel interface.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTunnelPort)]
pub struct TunnelPortView {
    /// The interface's id (NSX `tunnel_port_id`).
    pub tunnel_port_id: String,
    /// The interface's addresses (NSX `ip_subnets`).
    pub ip_subnets: Vec<TunnelSubnetView>,
}

/// TCP MSS clamping of a session: rewriting the maximum segment size of TCP
/// connections through the tunnel so their packets fit it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::TcpMaximumSegmentSizeClamping)]
pub struct MssView {
    /// Which connections are clamped (NSX `direction`): none, inbound, outbound or both.
    #[schema(schema_with = mss_direction)]
    pub direction: &'static str,
    /// The MSS in bytes; absent: derived from the path MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_segment_size: Option<u32>,
}

/// An IPSec VPN session: one tunnel between a local and a peer endpoint,
/// policy-based (carrying `policy_rules`) or route-based (over `tunnel_ports`);
/// the NSX view of a Neutron ipsec-site-connection.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSession)]
pub struct Session {
    /// NSX's `ManagedResource` fields.
    #[serde(flatten)]
    pub managed: Managed,
    /// The service the session belongs to.
    pub ipsec_vpn_service_id: String,
    /// The local endpoint. A session made through Neutron names its own id
    /// (see the derived endpoint views).
    pub local_endpoint_id: String,
    /// The peer endpoint (for a session made through Neutron, its own id).
    pub peer_endpoint_id: String,
    /// Whether the tunnel should be up (Neutron `admin_state_up`).
    pub enabled: bool,
    /// Route-based sessions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_ports: Option<Vec<TunnelPortView>>,
    /// Route-based sessions only, ours (NSX routes with gateway static routes
    /// or BGP): the peer networks the gateway routes into the session's
    /// tunnel interface, as CIDRs. Empty: the interface carries only what
    /// the operator routes into it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cidrs: Option<Vec<String>>,
    /// Policy-based sessions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<Vec<Rule>>,
    /// TCP MSS clamping, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_mss_clamping: Option<MssView>,
    /// The object's NSX tags (Neutron neither shows nor sets them).
    pub tags: Vec<TagView>,
}

// ------------------------------------------------------------ other documents

/// `GET /api/v1/node`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::NodeProperties)]
pub struct NodeProperties {
    /// The NSX Manager version this server implements (what vmware-nsxlib
    /// decides its feature set by).
    pub node_version: &'static str,
    /// The same version, as NSX reports its product.
    pub product_version: &'static str,
}

/// `GET /api/v1/reverse-proxy/node/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::Health)]
pub struct Health {
    /// Whether the store answered a read in time.
    pub healthy: bool,
}

fn tunnel_state() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["UP", "DOWN", "NEGOTIATING"]))
}

/// IKE traffic of a session. Not measured (charon does not count IKE
/// traffic per connection): always zeros, as NSX documents it "not
/// supported in this release".
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNIKETrafficStatistics)]
pub struct IkeTrafficStatistics {
    /// Always 0.
    pub bytes_in: u64,
    /// Always 0.
    pub bytes_out: u64,
    /// Always 0.
    pub packets_in: u64,
    /// Always 0.
    pub packets_out: u64,
    /// Always 0.
    pub fail_count: u64,
}

/// One traffic-selector pair ("tunnel") of a policy. Bytes and packets are
/// those of the CHILD SAs installed now, since the last reset (they restart
/// at 0 when charon rekeys a CHILD SA); they are the session's when it has
/// this one pair, else 0 (charon negotiates one IKEv2 CHILD SA for every
/// pair of a connection, so traffic is not measured per pair). The error and
/// drop counters are not measured: always 0.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTunnelTrafficStatistics)]
pub struct TunnelTrafficStatistics {
    /// The local prefix.
    pub local_subnet: String,
    /// The peer prefix.
    pub peer_subnet: String,
    /// `UP` (CHILD SA installed), `NEGOTIATING` (being negotiated, or only
    /// some of the session's CHILD SAs installed) or `DOWN`.
    #[schema(schema_with = tunnel_state)]
    pub tunnel_status: &'static str,
    /// Why the tunnel is not up: the reason's class, then charon's words;
    /// empty when up.
    pub tunnel_down_reason: String,
    /// Incoming bytes.
    pub bytes_in: u64,
    /// Outgoing bytes.
    pub bytes_out: u64,
    /// Incoming packets.
    pub packets_in: u64,
    /// Outgoing packets.
    pub packets_out: u64,
    /// Not measured: 0.
    pub dropped_packets_in: u64,
    /// Not measured: 0.
    pub dropped_packets_out: u64,
    /// Not measured: 0.
    pub integrity_failures: u64,
    /// Not measured: 0.
    pub encryption_failures: u64,
    /// Not measured: 0.
    pub decryption_failures: u64,
    /// Not measured: 0.
    pub replay_errors: u64,
    /// Not measured: 0.
    pub sa_mismatch_errors_in: u64,
    /// Not measured: 0.
    pub sa_mismatch_errors_out: u64,
    /// Not measured: 0.
    pub nomatching_policy_errors: u64,
    /// Not measured: 0.
    pub seq_number_overflow_error: u64,
    /// Not measured: 0.
    pub packets_sent_other_error: u64,
    /// Not measured: 0.
    pub packets_received_other_error: u64,
}

/// One policy of a session: an NSX policy rule (`policy_id` its id), a
/// Neutron connection (`policy_id` the connection's id) or a route-based
/// session (`tunnel_port_id`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPolicyTrafficStatistics)]
pub struct PolicyTrafficStatistics {
    /// The rule's (or Neutron connection's) id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// A route-based session's tunnel port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_port_id: Option<String>,
    /// The session's traffic when it has this one policy, else zeros.
    pub aggregate_traffic_counters: TrafficCounters,
    /// One per local × peer prefix.
    pub tunnel_statistics: Vec<TunnelTrafficStatistics>,
}

/// vpnaas's own: one transport node's share of a session's statistics or
/// status (NSX's Manager API has no per-node breakdown).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::VpnaasTransportNodeSessionStatus)]
pub struct TransportNodeStatus {
    /// The node's id.
    pub transport_node_id: String,
    /// The node's name.
    pub display_name: String,
    /// Whether the node reported within the node timeout.
    pub reachable: bool,
    /// Epoch ms of its last report (0: never).
    pub last_update_timestamp: i64,
    /// `UP`, `NEGOTIATING` or `DOWN` on this node.
    #[schema(schema_with = tunnel_state)]
    pub ike_session_state: &'static str,
    /// Why the tunnel is not up on this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// Its traffic since the last reset.
    pub traffic_counters: TrafficCounters,
    /// Epoch ms (node clock) of the node's last change of the tunnel's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_change_timestamp: Option<i64>,
    /// Seconds the IKE SA has been up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub established_seconds: Option<u64>,
    /// IKE SA rekeys since the node's agent started.
    pub ike_rekeys: u64,
    /// CHILD SA rekeys since the node's agent started.
    pub child_rekeys: u64,
    /// The last IKE log lines charon wrote for the session on this node
    /// (status only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// `GET .../sessions/{id}/statistics`: one object for the session (NSX's
/// Manager API shape), summed over its transport nodes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSessionStatistics)]
pub struct SessionStatistics {
    /// The session's id.
    pub ipsec_vpn_session_id: String,
    /// The session's name.
    pub display_name: String,
    /// True when some transport node of the session's gateway has not
    /// reported within the node timeout: the counters are of the others only.
    pub partial_stats: bool,
    /// Epoch ms of the newest report counted.
    pub last_update_timestamp: i64,
    /// The IKE SA's state on the node carrying the session.
    pub ike_status: IkeStatus,
    /// Bytes and packets of the installed CHILD SAs, since the last reset,
    /// summed over the nodes (charon's counters restart at 0 when it rekeys
    /// a CHILD SA).
    pub aggregate_traffic_counters: TrafficCounters,
    /// Not measured: zeros.
    pub ike_traffic_statistics: IkeTrafficStatistics,
    /// Per policy and traffic-selector pair.
    pub policy_statistics: Vec<PolicyTrafficStatistics>,
    /// vpnaas's own: per transport node.
    pub transport_node_statistics: Vec<TransportNodeStatus>,
}

/// The sessions' states in a summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPsecVPNIKESessionSummary)]
pub struct IkeSessionSummary {
    /// Sessions counted.
    pub total_sessions: u64,
    /// Of which `UP`.
    pub established_sessions: u64,
    /// Of which `DOWN`.
    pub failed_sessions: u64,
    /// Of which `DEGRADED`.
    pub degraded_sessions: u64,
}

/// One session's traffic in a summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSessionTrafficSummary)]
pub struct SessionTrafficSummary {
    /// The session.
    pub ipsec_vpn_session: ResourceReference,
    /// Its traffic since its last reset.
    pub traffic_counters: TrafficCounters,
}

/// `GET .../sessions/summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSessionSummary)]
pub struct SessionSummary {
    /// Epoch ms of the newest report counted.
    pub last_update_timestamp: i64,
    /// How many sessions are up, down, degraded.
    pub session_summary: IkeSessionSummary,
    /// All the sessions' traffic.
    pub aggregate_traffic_counters: TrafficCounters,
    /// Per session, oldest first.
    pub traffic_summary_per_session: Vec<SessionTrafficSummary>,
}

/// One transport node's realization state of a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ConfigurationStateElement)]
pub struct StateDetail {
    /// Always `TransportNode`.
    pub sub_system_type: &'static str,
    /// The transport (gateway) node's id.
    pub sub_system_id: String,
    /// Whether the node carries the session as it stands (or as of the
    /// request asked about).
    #[schema(schema_with = realization_state)]
    pub state: &'static str,
    /// Why the node failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

/// `GET .../sessions/{id}/state`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ConfigurationState)]
pub struct SessionState {
    /// Absent when the session's gateway has no transport node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<StateDetail>,
    /// The worst of the nodes' states.
    #[schema(schema_with = realization_state)]
    pub state: &'static str,
    /// The first failed node's message, when one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

/// The state of a session's IKE SA, from the node agents' reports.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNIKESessionStatus)]
pub struct IkeStatus {
    /// `UP`, `DOWN` or `NEGOTIATING`.
    pub ike_session_state: &'static str,
    /// Why the tunnel is not up, as the reporting node tells it, or why no
    /// node reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// The node whose report this is; absent when no live node reports the
    /// session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_node_id: Option<String>,
}

/// A session's traffic, as the reporting node's last report counted it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTrafficCounters)]
pub struct TrafficCounters {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Always 0.
    pub dropped_packets_in: u64,
    /// Always 0.
    pub dropped_packets_out: u64,
}

/// `GET .../sessions/{id}/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSessionStatus)]
pub struct SessionStatus {
    /// The session's id.
    pub ipsec_vpn_session_id: String,
    /// The session's name.
    pub display_name: String,
    /// `UP` (IKE up, every tunnel negotiated), `DEGRADED` (IKE up, some
    /// tunnels not) or `DOWN`.
    pub session_status: &'static str,
    /// The IKE SA's state.
    pub ike_status: IkeStatus,
    /// How many tunnels (CHILD SAs) the session should have: one per
    /// traffic-selector pair, at least 1.
    pub total_tunnels: u32,
    /// How many of them are established.
    pub negotiated_tunnels: u32,
    /// How many of them are not.
    pub failed_tunnels: u32,
    /// Traffic over all of them.
    pub aggregate_traffic_counters: TrafficCounters,
    /// Epoch milliseconds of the last node report.
    pub last_update_timestamp: i64,
    /// vpnaas's own detailed status: the IKE state, reason, last change,
    /// rekeys and recent IKE log of every transport node of the session's
    /// gateway (NSX's Manager API has no detailed-status endpoint; clients
    /// that don't know this field ignore it).
    pub transport_node_status: Vec<TransportNodeStatus>,
}

/// NSX's error envelope (`ApiError`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ApiError)]
pub struct ErrorBody {
    /// The HTTP status's name (`NOT_FOUND`, `PRECONDITION_FAILED`, ...).
    #[serde(rename = "httpStatus")]
    pub http_status: String,
    /// What vmware-nsxlib decides by (see the table in the crate doc).
    pub error_code: i64,
    /// `common-services` or `VPN`.
    pub module_name: &'static str,
    /// What went wrong, for a person (names the offending field where one is).
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::nsx::{DfPolicy, DpdProbeMode, IkeLogLevel, MssDirection, RuleAction};
    use model::{IkeVersion, Initiator};

    fn meta(id: &str, name: &str, description: &str) -> Meta {
        Meta {
            id: id.into(),
            project_id: "p".into(),
            name: name.into(),
            description: description.into(),
            revision: 4,
            generation: 9,
            created_at: 10,
            updated_at: 20,
            created_by: "admin".into(),
            updated_by: "ops".into(),
        }
    }

    /// The whole JSON of an object, as NSX shows it (and as before typing).
    #[test]
    fn profiles_render_exactly() {
        use crate::resources::{DpdProfiles, IkeProfiles, RenderCtx, Resource};
        use serde_json::json;
        let ike = model::Record {
            meta: meta("i1", "ike", ""),
            body: model::IkePolicy {
                tags: vec![Tag {
                    scope: "s".into(),
                    tag: "t".into(),
                }],
                ..model::IkePolicy::default()
            },
        };
        assert_eq!(
            Value::Object(to_obj(&IkeProfiles::render(&ike, &RenderCtx::default()))),
            json!({"resource_type": "IPSecVPNIKEProfile", "id": "i1", "display_name": "ike",
                "_revision": 4, "_create_time": 10, "_create_user": "admin",
                "_last_modified_time": 20, "_last_modified_user": "ops",
                "_system_owned": false, "_protection": "NOT_PROTECTED",
                "encryption_algorithms": ["AES_128"], "digest_algorithms": ["SHA1"],
                "dh_groups": ["GROUP5"], "sa_life_time": 3600, "ike_version": "IKE_V1",
                "tags": [{"scope": "s", "tag": "t"}]})
        );
        let dpd = model::Record {
            meta: meta("d1", "", "slow peers"),
            body: model::nsx::DpdProfile::default(),
        };
        let shown = to_obj(&DpdProfiles::render(&dpd, &RenderCtx::default()));
        assert_eq!(shown["display_name"], json!("d1"), "no name: the id");
        assert_eq!(shown["description"], json!("slow peers"));
        assert_eq!(shown["dpd_probe_mode"], json!("PERIODIC"));
        assert!(
            to_obj(&IkeProfiles::render(&ike, &RenderCtx::default()))
                .get("description")
                .is_none()
        );
    }

    /// The tables [`name_of`] is used with name every value of their enum.
    #[test]
    fn scalar_tables_are_total() {
        fn total<E: PartialEq + Copy>(table: Table<E>, all: &[E]) -> bool {
            all.iter().all(|v| spell(table, *v).is_some())
        }
        assert!(total(IKE_VERSION, IkeVersion::ALL));
        assert!(total(INITIATION, Initiator::ALL));
        assert!(total(PROBE_MODE, DpdProbeMode::ALL));
        assert!(total(LOG_LEVEL, IkeLogLevel::ALL));
        assert!(total(DF_POLICY, DfPolicy::ALL));
        assert!(total(ACTION, RuleAction::ALL));
        assert!(total(MSS_DIRECTION, MssDirection::ALL));
    }
}
