//! The five VPN resources as Neutron shows them: attribute maps, how checked
//! attributes become canonical objects, and how canonical objects render (as
//! the typed bodies of [`crate::wire`], turned into JSON objects for the
//! collection query semantics of `query`). Together with `wire`, this is the
//! only code that knows Neutron's field names.

use std::collections::HashMap;
use std::sync::LazyLock;

use app::Expect;
use ipnet::IpNet;
use model::*;
use serde_json::{Map, Value};

use crate::attrs::{Attr, Check, Conv, Default, Get, common, to_int};
use crate::error::{ApiError, ApiResult};
use crate::status::StatusView;
use crate::wire::{self, to_obj};

/// What rendering needs besides the record itself.
#[derive(Default)]
pub struct ViewCtx {
    pub gateways: HashMap<String, Record<Gateway>>,
    pub services: HashMap<String, Record<VpnService>>,
    pub status: StatusView,
}

type Obj = Map<String, Value>;

/// One Neutron resource over one canonical kind.
pub trait View: Send + Sync + 'static {
    type Body: app::Rules;
    const SINGULAR: &'static str;
    const PLURAL: &'static str;
    /// Policy rule suffix (`create_<rule>`).
    const RULE: &'static str;
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Whether a PENDING_* status blocks updates.
    const STATEFUL: bool = false;
    /// Attributes rendered from the [`ViewCtx`] (what the record references),
    /// not from the record: an answer that names none of them needs no ctx.
    const FROM_CTX: &'static [&'static str] = &[];

    /// The typed response body of one object.
    type Wire: serde::Serialize + utoipa::ToSchema;

    fn attrs() -> &'static [Attr];
    fn wire(rec: &Record<Self::Body>, ctx: &ViewCtx) -> Self::Wire;
    /// [`View::wire`] as a JSON object, for `fields`, filters and sorting.
    fn render(rec: &Record<Self::Body>, ctx: &ViewCtx) -> Obj {
        to_obj(&Self::wire(rec, ctx))
    }
    fn build(m: &Obj) -> ApiResult<Self::Body>;
    /// What must hold of the current object for an update (Neutron refuses
    /// changing an in-use policy, or a service or connection while pending).
    const UPDATE: Expect = Expect::NOTHING;
    /// Applies a checked update body to the current record.
    fn apply(rec: &mut Record<Self::Body>, m: &Obj);
    /// Status of an object, for stateful resources.
    fn status(_rec: &Record<Self::Body>, _ctx: &ViewCtx) -> Option<Status> {
        None
    }
}

fn values<E: Copy>(all: &'static [E], f: fn(E) -> &'static str) -> &'static [&'static str] {
    Box::leak(all.iter().map(|e| f(*e)).collect::<Vec<_>>().into_boxed_slice())
}

static AUTH: LazyLock<&'static [&'static str]> =
    LazyLock::new(|| values(AuthAlgorithm::ALL, AuthAlgorithm::as_str));
static ENC: LazyLock<&'static [&'static str]> =
    LazyLock::new(|| values(EncryptionAlgorithm::ALL, EncryptionAlgorithm::as_str));
static PFS: LazyLock<&'static [&'static str]> = LazyLock::new(|| values(DhGroup::ALL, DhGroup::as_str));

fn parse_enum<E>(m: &Obj, k: &str, parse: fn(&str) -> Option<E>) -> Option<E> {
    m.str_of(k).and_then(|s| parse(&s))
}

/// Applies a lifetime dict: only keys present (and truthy, as Neutron does) change.
fn lifetime_apply(l: &mut Lifetime, v: Option<&Value>) {
    let Some(Value::Object(o)) = v else { return };
    if let Some(u) = o
        .get("units")
        .and_then(Value::as_str)
        .and_then(LifetimeUnits::parse)
    {
        l.units = u;
    }
    if let Some(n) = o.get("value").and_then(to_int).filter(|n| *n > 0) {
        l.value = n as u32;
    }
}

fn dpd_apply(d: &mut DpdSettings, v: Option<&Value>) {
    let Some(Value::Object(o)) = v else { return };
    if let Some(a) = o.get("action").and_then(Value::as_str).and_then(DpdAction::parse) {
        d.action = a;
    }
    if let Some(n) = o.get("interval").and_then(to_int) {
        d.interval = n as u32;
    }
    if let Some(n) = o.get("timeout").and_then(to_int) {
        d.timeout = n as u32;
    }
}

fn opt_str(m: &Obj, k: &str) -> Option<String> {
    m.str_of(k)
}

// ---------------------------------------------------------------- IKE policies

pub struct IkePolicies;

static IKE_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("auth_algorithm")
            .default(Default::Str("sha1"))
            .check(Check::Values(*AUTH)),
        Attr::new("encryption_algorithm")
            .default(Default::Str("aes-128"))
            .check(Check::Values(*ENC)),
        Attr::new("phase1_negotiation_mode")
            .default(Default::Str("main"))
            .check(Check::Values(&["main", "aggressive"])),
        Attr::new("lifetime")
            .default(Default::EmptyDict)
            .conv(Conv::NoneToEmptyDict)
            .check(Check::Lifetime)
            .no_filter(),
        Attr::new("ike_version")
            .default(Default::Str("v1"))
            .check(Check::Values(&["v1", "v2"])),
        Attr::new("pfs")
            .default(Default::Str("group5"))
            .check(Check::Values(*PFS)),
    ]);
    v
});

fn ike_apply(p: &mut IkePolicy, m: &Obj) {
    if let Some(v) = parse_enum(m, "auth_algorithm", AuthAlgorithm::parse) {
        p.auth_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encryption_algorithm", EncryptionAlgorithm::parse) {
        p.encryption_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "phase1_negotiation_mode", Phase1Mode::parse) {
        p.phase1_negotiation_mode = v;
    }
    lifetime_apply(&mut p.lifetime, m.get("lifetime"));
    if let Some(v) = parse_enum(m, "ike_version", IkeVersion::parse) {
        p.ike_version = v;
    }
    if let Some(v) = parse_enum(m, "pfs", DhGroup::parse) {
        p.pfs = v;
    }
}

impl View for IkePolicies {
    type Body = IkePolicy;
    type Wire = wire::IkePolicy;
    const SINGULAR: &'static str = "ikepolicy";
    const PLURAL: &'static str = "ikepolicies";
    const RULE: &'static str = "ikepolicy";
    const UPDATE: Expect = Expect::UNUSED;

    fn attrs() -> &'static [Attr] {
        &IKE_ATTRS
    }

    fn wire(rec: &Record<IkePolicy>, _: &ViewCtx) -> wire::IkePolicy {
        wire::IkePolicy::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<IkePolicy> {
        let mut p = IkePolicy::default();
        ike_apply(&mut p, m);
        Ok(p)
    }

    fn apply(rec: &mut Record<IkePolicy>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        ike_apply(&mut rec.body, m);
    }
}

fn apply_meta(meta: &mut Meta, m: &Obj) {
    if let Some(n) = m.str_of("name") {
        meta.name = n;
    }
    if let Some(d) = m.str_of("description") {
        meta.description = d;
    }
}

// -------------------------------------------------------------- IPsec policies

pub struct IpsecPolicies;

static IPSEC_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("transform_protocol")
            .default(Default::Str("esp"))
            .check(Check::Values(&["esp", "ah", "ah-esp"])),
        Attr::new("auth_algorithm")
            .default(Default::Str("sha1"))
            .check(Check::Values(*AUTH)),
        Attr::new("encryption_algorithm")
            .default(Default::Str("aes-128"))
            .check(Check::Values(*ENC)),
        Attr::new("encapsulation_mode")
            .default(Default::Str("tunnel"))
            .check(Check::Values(&["tunnel", "transport"])),
        Attr::new("lifetime")
            .default(Default::EmptyDict)
            .conv(Conv::NoneToEmptyDict)
            .check(Check::Lifetime)
            .no_filter(),
        Attr::new("pfs")
            .default(Default::Str("group5"))
            .check(Check::Values(*PFS)),
    ]);
    v
});

fn ipsec_apply(p: &mut IpsecPolicy, m: &Obj) {
    if let Some(v) = parse_enum(m, "transform_protocol", TransformProtocol::parse) {
        p.transform_protocol = v;
    }
    if let Some(v) = parse_enum(m, "auth_algorithm", AuthAlgorithm::parse) {
        p.auth_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encryption_algorithm", EncryptionAlgorithm::parse) {
        p.encryption_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encapsulation_mode", EncapsulationMode::parse) {
        p.encapsulation_mode = v;
    }
    lifetime_apply(&mut p.lifetime, m.get("lifetime"));
    if let Some(v) = parse_enum(m, "pfs", DhGroup::parse) {
        p.pfs = v;
    }
}

impl View for IpsecPolicies {
    type Body = IpsecPolicy;
    type Wire = wire::IpsecPolicy;
    const SINGULAR: &'static str = "ipsecpolicy";
    const PLURAL: &'static str = "ipsecpolicies";
    const RULE: &'static str = "ipsecpolicy";
    const UPDATE: Expect = Expect::UNUSED;

    fn attrs() -> &'static [Attr] {
        &IPSEC_ATTRS
    }

    fn wire(rec: &Record<IpsecPolicy>, _: &ViewCtx) -> wire::IpsecPolicy {
        wire::IpsecPolicy::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<IpsecPolicy> {
        let mut p = IpsecPolicy::default();
        ipsec_apply(&mut p, m);
        Ok(p)
    }

    fn apply(rec: &mut Record<IpsecPolicy>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        ipsec_apply(&mut rec.body, m);
    }
}

// ---------------------------------------------------------------- VPN services

pub struct VpnServices;

static SERVICE_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("subnet_id").post_only().check(Check::UuidOrNone),
        Attr::new("router_id")
            .post_only()
            .required()
            .check(Check::Uuid)
            .sort(),
        Attr::new("admin_state_up")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("flavor_id").post_only().check(Check::UuidOrNone),
        Attr::new("external_v4_ip").ro(),
        Attr::new("external_v6_ip").ro(),
        Attr::new("status").ro(),
    ]);
    v
});

impl View for VpnServices {
    type Body = VpnService;
    type Wire = wire::VpnService;
    const SINGULAR: &'static str = "vpnservice";
    const PLURAL: &'static str = "vpnservices";
    const RULE: &'static str = "vpnservice";
    const STATEFUL: bool = true;
    const UPDATE: Expect = Expect::SETTLED;
    const FROM_CTX: &'static [&'static str] = &["status", "external_v4_ip", "external_v6_ip"];

    fn attrs() -> &'static [Attr] {
        &SERVICE_ATTRS
    }

    fn wire(rec: &Record<VpnService>, ctx: &ViewCtx) -> wire::VpnService {
        wire::VpnService::new(
            rec,
            ctx.gateways.get(&rec.body.router_id),
            ctx.status.service(rec),
        )
    }

    fn status(rec: &Record<VpnService>, ctx: &ViewCtx) -> Option<Status> {
        Some(ctx.status.service(rec))
    }

    fn build(m: &Obj) -> ApiResult<VpnService> {
        if m.get("flavor_id").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::FlavorsPluginNotLoaded);
        }
        Ok(VpnService {
            router_id: m.str_of("router_id").unwrap_or_default(),
            subnet_id: opt_str(m, "subnet_id"),
            flavor_id: None,
            admin_state_up: m.bool_of("admin_state_up").unwrap_or(true),
            ..VpnService::default()
        })
    }

    fn apply(rec: &mut Record<VpnService>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        if let Some(a) = m.bool_of("admin_state_up") {
            rec.body.admin_state_up = a;
        }
    }
}

// ------------------------------------------------------------- endpoint groups

pub struct EndpointGroups;

static GROUP_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(false).to_vec();
    v.extend([
        Attr::new("type")
            .post_only()
            .required()
            .check(Check::Values(&["cidr", "network", "router", "subnet", "vlan"])),
        Attr::new("endpoints")
            .post_only()
            .default(Default::EmptyList)
            .conv(Conv::List)
            .check(Check::StrList)
            .no_filter(),
    ]);
    v
});

impl View for EndpointGroups {
    type Body = EndpointGroup;
    type Wire = wire::EndpointGroup;
    const SINGULAR: &'static str = "endpoint_group";
    const PLURAL: &'static str = "endpoint_groups";
    const RULE: &'static str = "endpoint_group";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("endpoint_type", "type")];

    fn attrs() -> &'static [Attr] {
        &GROUP_ATTRS
    }

    fn wire(rec: &Record<EndpointGroup>, _: &ViewCtx) -> wire::EndpointGroup {
        wire::EndpointGroup::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<EndpointGroup> {
        Ok(EndpointGroup {
            endpoint_type: parse_enum(m, "type", EndpointType::parse).unwrap_or(EndpointType::Cidr),
            endpoints: m
                .get("endpoints")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        })
    }

    fn apply(rec: &mut Record<EndpointGroup>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
    }
}

// ------------------------------------------------------ IPsec site connections

pub struct Connections;

static CONN_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("local_id")
            .default(Default::Str(""))
            .check(Check::Str(255)),
        Attr::new("peer_address").required().check(Check::Str(255)),
        Attr::new("peer_id").required().check(Check::Str(255)),
        Attr::new("peer_cidrs")
            .conv(Conv::List)
            .check(Check::SubnetList)
            .no_filter(),
        Attr::new("local_ep_group_id").check(Check::UuidOrNone),
        Attr::new("peer_ep_group_id").check(Check::UuidOrNone),
        Attr::new("route_mode").ro(),
        Attr::new("mtu")
            .default(Default::Int(1500))
            .conv(Conv::Int)
            .check(Check::NonNegative),
        Attr::new("initiator")
            .default(Default::Str("bi-directional"))
            .check(Check::Values(&["bi-directional", "response-only"])),
        Attr::new("auth_mode").ro(),
        Attr::new("psk").required().check(Check::Str(255)),
        Attr::new("dpd")
            .default(Default::EmptyDict)
            .conv(Conv::NoneToEmptyDict)
            .check(Check::Dpd)
            .no_filter(),
        Attr::new("admin_state_up")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("status").ro(),
        Attr::new("vpnservice_id")
            .post_only()
            .required()
            .check(Check::Uuid),
        Attr::new("ikepolicy_id")
            .post_only()
            .required()
            .check(Check::Uuid),
        Attr::new("ipsecpolicy_id")
            .post_only()
            .required()
            .check(Check::Uuid),
    ]);
    v
});

fn cidrs(m: &Obj) -> Option<Vec<IpNet>> {
    m.get("peer_cidrs").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|c| c.as_str().and_then(validate::parse_cidr))
            .collect()
    })
}

/// Applies a request's connection attributes onto `c` (create starts from defaults).
fn conn_apply(c: &mut Connection, m: &Obj) {
    if let Some(v) = m.str_of("local_id") {
        c.local_id = v;
    }
    if let Some(v) = m.str_of("peer_address") {
        c.peer_address = v;
    }
    if let Some(v) = m.str_of("peer_id") {
        c.peer_id = v;
    }
    if let Some(v) = cidrs(m) {
        c.peer_cidrs = v;
    }
    if m.contains_key("local_ep_group_id") {
        c.local_ep_group_id = opt_str(m, "local_ep_group_id");
    }
    if m.contains_key("peer_ep_group_id") {
        c.peer_ep_group_id = opt_str(m, "peer_ep_group_id");
    }
    if let Some(v) = m.int_of("mtu") {
        c.mtu = v.clamp(0, u32::MAX as i64) as u32;
    }
    if let Some(v) = parse_enum(m, "initiator", Initiator::parse) {
        c.initiator = v;
    }
    if let Some(v) = m.str_of("psk") {
        c.psk = Psk(v);
    }
    dpd_apply(&mut c.dpd, m.get("dpd"));
    if let Some(v) = m.bool_of("admin_state_up") {
        c.admin_state_up = v;
    }
}

impl View for Connections {
    type Body = Connection;
    type Wire = wire::IpsecSiteConnection;
    const SINGULAR: &'static str = "ipsec_site_connection";
    const PLURAL: &'static str = "ipsec_site_connections";
    const RULE: &'static str = "ipsec_site_connection";
    const STATEFUL: bool = true;
    const UPDATE: Expect = Expect::SETTLED;
    const FROM_CTX: &'static [&'static str] = &["status"];

    fn attrs() -> &'static [Attr] {
        &CONN_ATTRS
    }

    fn wire(rec: &Record<Connection>, ctx: &ViewCtx) -> wire::IpsecSiteConnection {
        wire::IpsecSiteConnection::new(
            rec,
            ctx.status
                .connection(rec, ctx.services.get(&rec.body.vpnservice_id)),
        )
    }

    fn status(rec: &Record<Connection>, ctx: &ViewCtx) -> Option<Status> {
        Some(
            ctx.status
                .connection(rec, ctx.services.get(&rec.body.vpnservice_id)),
        )
    }

    fn build(m: &Obj) -> ApiResult<Connection> {
        let mut c = Connection {
            vpnservice_id: m.str_of("vpnservice_id").unwrap_or_default(),
            ikepolicy_id: m.str_of("ikepolicy_id").unwrap_or_default(),
            ipsecpolicy_id: m.str_of("ipsecpolicy_id").unwrap_or_default(),
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
            ..Connection::default()
        };
        conn_apply(&mut c, m);
        Ok(c)
    }

    fn apply(rec: &mut Record<Connection>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        conn_apply(&mut rec.body, m);
    }
}

// ------------------------------------------------ routers and subnets (read-only)

pub static ROUTER_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("status").ro(),
        Attr::new("admin_state_up").conv(Conv::Bool).check(Check::Boolean),
        Attr::new("external_gateway_info").ro().no_filter(),
    ]);
    v
});

pub fn router_json(rec: &Record<Gateway>) -> Obj {
    to_obj(&wire::Router::from(rec))
}

pub static SUBNET_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("cidr").ro(),
        Attr::new("ip_version").ro().conv(Conv::Int),
        Attr::new("network_id").ro(),
    ]);
    v
});

pub fn subnet_json(rec: &Record<Subnet>) -> Obj {
    to_obj(&wire::Subnet::from(rec))
}
