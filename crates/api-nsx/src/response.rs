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
    pub id: String,
    /// The name, or the id when it has none.
    pub display_name: String,
    /// Absent when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Starts at 0, +1 on every update; a PUT must send the current one.
    #[serde(rename = "_revision")]
    pub revision: i64,
    /// Epoch milliseconds.
    #[serde(rename = "_create_time")]
    pub create_time: i64,
    #[serde(rename = "_create_user")]
    pub create_user: String,
    /// Epoch milliseconds.
    #[serde(rename = "_last_modified_time")]
    pub last_modified_time: i64,
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

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::Tag)]
pub struct TagView {
    pub scope: String,
    pub tag: String,
}

pub fn tags(tags: &[Tag]) -> Vec<TagView> {
    tags.iter()
        .map(|t| TagView {
            scope: t.scope.clone(),
            tag: t.tag.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNIKEProfile)]
pub struct IkeProfile {
    #[serde(flatten)]
    pub managed: Managed,
    #[schema(schema_with = encryption_list)]
    pub encryption_algorithms: Vec<&'static str>,
    #[schema(schema_with = digest_list)]
    pub digest_algorithms: Vec<&'static str>,
    #[schema(schema_with = dh_list)]
    pub dh_groups: Vec<&'static str>,
    /// Seconds.
    pub sa_life_time: u32,
    #[schema(schema_with = ike_version)]
    pub ike_version: &'static str,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTunnelProfile)]
pub struct TunnelProfile {
    #[serde(flatten)]
    pub managed: Managed,
    #[schema(schema_with = encryption_list)]
    pub encryption_algorithms: Vec<&'static str>,
    /// Empty: integrity from the AEAD cipher only.
    #[schema(schema_with = digest_list)]
    pub digest_algorithms: Vec<&'static str>,
    #[schema(schema_with = dh_list)]
    pub dh_groups: Vec<&'static str>,
    pub enable_perfect_forward_secrecy: bool,
    /// Seconds.
    pub sa_life_time: u32,
    /// Absent when the policy's mode has no NSX name (transport mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = encapsulation)]
    pub encapsulation_mode: Option<&'static str>,
    /// Absent when the policy's protocol has no NSX name (AH).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = transform)]
    pub transform_protocol: Option<&'static str>,
    #[schema(schema_with = df_policy)]
    pub df_policy: &'static str,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNDPDProfile)]
pub struct DpdProfile {
    #[serde(flatten)]
    pub managed: Managed,
    pub enabled: bool,
    /// Seconds.
    pub dpd_probe_interval: u32,
    #[schema(schema_with = probe_mode)]
    pub dpd_probe_mode: &'static str,
    pub retry_count: u32,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPolicySubnet)]
pub struct SubnetView {
    /// A CIDR.
    pub subnet: String,
}

pub fn subnets(nets: &[ipnet::IpNet]) -> Vec<SubnetView> {
    nets.iter()
        .map(|n| SubnetView {
            subnet: n.to_string(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPolicyRule)]
pub struct Rule {
    pub id: String,
    pub sources: Vec<SubnetView>,
    pub destinations: Vec<SubnetView>,
    #[schema(schema_with = rule_action)]
    pub action: &'static str,
    pub enabled: bool,
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

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNService)]
pub struct Service {
    #[serde(flatten)]
    pub managed: Managed,
    /// The gateway (Neutron router) the service lives on.
    pub logical_router_id: String,
    pub enabled: bool,
    #[schema(schema_with = log_level)]
    pub ike_log_level: &'static str,
    pub ipsec_ha_sync: bool,
    pub bypass_rules: Vec<Rule>,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ResourceReference)]
pub struct ResourceReference {
    pub target_id: String,
    pub target_type: &'static str,
    pub is_valid: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNLocalEndpoint)]
pub struct LocalEndpoint {
    #[serde(flatten)]
    pub managed: Managed,
    pub local_address: String,
    pub local_id: String,
    pub ipsec_vpn_service_id: ResourceReference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    pub trust_ca_ids: Vec<String>,
    pub trust_crl_ids: Vec<String>,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNPeerEndpoint)]
pub struct PeerEndpoint {
    #[serde(flatten)]
    pub managed: Managed,
    pub peer_address: String,
    pub peer_id: String,
    /// Always `PSK`.
    pub authentication_mode: &'static str,
    #[schema(schema_with = initiation)]
    pub connection_initiation_mode: &'static str,
    pub ike_profile_id: String,
    pub ipsec_tunnel_profile_id: String,
    /// Absent for the view of a Neutron connection (its DPD settings are its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpd_profile_id: Option<String>,
    /// Only with `?action=show-sensitive-data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
    pub tags: Vec<TagView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::TunnelPortAddress)]
pub struct TunnelSubnetView {
    pub ip_addresses: Vec<String>,
    pub prefix_length: u8,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTunnelPort)]
pub struct TunnelPortView {
    pub tunnel_port_id: String,
    pub ip_subnets: Vec<TunnelSubnetView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::TcpMaximumSegmentSizeClamping)]
pub struct MssView {
    #[schema(schema_with = mss_direction)]
    pub direction: &'static str,
    /// Absent: derived from the path MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_segment_size: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNSession)]
pub struct Session {
    #[serde(flatten)]
    pub managed: Managed,
    pub ipsec_vpn_service_id: String,
    /// A session made through Neutron names its own id (see the derived
    /// endpoint views).
    pub local_endpoint_id: String,
    pub peer_endpoint_id: String,
    pub enabled: bool,
    /// Route-based sessions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_ports: Option<Vec<TunnelPortView>>,
    /// Policy-based sessions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<Vec<Rule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_mss_clamping: Option<MssView>,
    pub tags: Vec<TagView>,
}

// ------------------------------------------------------------ other documents

/// `GET /api/v1/node`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::NodeProperties)]
pub struct NodeProperties {
    pub node_version: &'static str,
    pub product_version: &'static str,
}

/// `GET /api/v1/reverse-proxy/node/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::Health)]
pub struct Health {
    pub healthy: bool,
}

/// One transport node's realization state of a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::ConfigurationStateElement)]
pub struct StateDetail {
    /// Always `TransportNode`.
    pub sub_system_type: &'static str,
    pub sub_system_id: String,
    #[schema(schema_with = realization_state)]
    pub state: &'static str,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNIKESessionStatus)]
pub struct IkeStatus {
    /// `UP`, `DOWN` or `NEGOTIATING`.
    pub ike_session_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_node_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = nsx::IPSecVPNTrafficCounters)]
pub struct TrafficCounters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
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
    pub ipsec_vpn_session_id: String,
    pub display_name: String,
    /// `UP`, `DOWN` or `DEGRADED`.
    pub session_status: &'static str,
    pub ike_status: IkeStatus,
    pub total_tunnels: u32,
    pub negotiated_tunnels: u32,
    pub failed_tunnels: u32,
    pub aggregate_traffic_counters: TrafficCounters,
    /// Epoch milliseconds of the last node report.
    pub last_update_timestamp: i64,
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
