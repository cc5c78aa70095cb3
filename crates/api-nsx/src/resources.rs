//! The seven NSX IPSec VPN resources as views of canonical objects: how a
//! request body becomes a canonical change, and how a canonical object renders.
//! This is the only code that knows NSX's field names.
//!
//! | NSX resource | canonical |
//! |---|---|
//! | `IPSecVPNIKEProfile` | [`IkePolicy`] (also Neutron's ikepolicy) |
//! | `IPSecVPNTunnelProfile` | [`IpsecPolicy`] (also Neutron's ipsecpolicy) |
//! | `IPSecVPNDPDProfile` | [`DpdProfile`] |
//! | `IPSecVPNService` | [`VpnService`] (`logical_router_id` = gateway = Neutron router) |
//! | `IPSecVPNLocalEndpoint` | [`LocalEndpoint`] |
//! | `IPSecVPNPeerEndpoint` | [`PeerEndpoint`] |
//! | `PolicyBasedIPSecVPNSession`, `RouteBasedIPSecVPNSession` | [`Connection`] (also Neutron's ipsec-site-connection) |
//!
//! A connection made through Neutron has no NSX endpoints, yet NSX requires a
//! session's `local_endpoint_id` and `peer_endpoint_id`: its session names its
//! own id for both, and a GET of that id under `local-endpoints` or
//! `peer-endpoints` answers a read-only view derived from the connection
//! ([`Resource::derived`]). The views are not listed and can't be written
//! through NSX (the connection is changed through Neutron); a session PUT
//! that echoes them is accepted.
//!
//! Updates merge: a field absent from a PUT body keeps its value; a list that
//! equals what GET shows keeps the canonical value, so writing back a GET body
//! never loses what only Neutron can express (e.g. a 3DES algorithm NSX can't
//! name, which GET leaves out).

use std::collections::HashMap;

use ipnet::IpNet;
use model::nsx::*;
use model::*;
use serde_json::{Value, json};

use crate::error::{NsxError, NsxResult};
use crate::response::{self, Managed, Rule, name_of, names_of};
use crate::wire::*;

/// What rendering needs besides the record (loaded only for sessions).
#[derive(Default)]
pub struct RenderCtx {
    pub services: HashMap<String, Record<VpnService>>,
    pub groups: HashMap<String, Record<EndpointGroup>>,
    pub subnets: HashMap<String, Record<Subnet>>,
}

/// One NSX resource over one canonical kind.
pub trait Resource: Send + Sync + 'static {
    /// The canonical kind, written through [`app::App`] under NSX's rules.
    type Body: app::Rules;
    /// A parsed request body.
    type Patch: Send + Sync + 'static;
    const SEGMENT: &'static str;
    const RESOURCE_TYPE: &'static str;
    /// Whether rendering needs a [`RenderCtx`].
    const NEEDS_CTX: bool = false;
    /// List filters (query parameters) this resource supports.
    const FILTERS: &'static [&'static str] = &[];

    /// Every `resource_type` this path's objects have (and bodies may name).
    const RESOURCE_TYPES: &'static [&'static str] = &[Self::RESOURCE_TYPE];

    /// Whether a body's `resource_type` names this resource.
    fn accepts(t: &str) -> bool {
        Self::RESOURCE_TYPES.contains(&t)
    }
    /// The typed response body of one object.
    type Wire: serde::Serialize + utoipa::ToSchema;
    /// The object as NSX shows it.
    fn render(rec: &Record<Self::Body>, ctx: &RenderCtx) -> Self::Wire;
    /// Fields shown only with `?action=show-sensitive-data`.
    fn sensitive(_rec: &Record<Self::Body>) -> Option<Obj> {
        None
    }
    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<Self::Patch>;
    /// A new object: NSX's defaults with the request applied.
    fn new_body(p: &Self::Patch) -> model::Result<Self::Body>;
    /// Applies an update onto the current object.
    fn apply(p: &Self::Patch, body: &mut Self::Body) -> model::Result<()>;
    /// Whether a read of an id that names no object of this kind may find the
    /// view [`Resource::derived`] makes of a Neutron connection.
    const DERIVED: bool = false;
    /// This kind's read-only view of a Neutron-made connection (the endpoint
    /// a session shows for it), `gateway` being its service's router.
    fn derived(_conn: &Record<Connection>, _gateway: &Gateway) -> Option<Record<Self::Body>> {
        None
    }
    /// The record-aware form of [`Resource::apply`] the update handler calls;
    /// only sessions need the record's id (see [`Sessions`]).
    fn apply_record(p: &Self::Patch, rec: &mut Record<Self::Body>) -> model::Result<()> {
        Self::apply(p, &mut rec.body)
    }
}

/// Sets `cur` to `given` unless both spell the same in NSX (echo of a GET).
fn set_list<E: PartialEq + Copy>(table: Table<E>, given: &Option<Vec<E>>, cur: &[E], set: impl FnOnce(&[E])) {
    if let Some(g) = given
        && names_of(table, g) != names_of(table, cur)
    {
        set(g);
    }
}

/// A policy rule as given (id and flags optional).
#[derive(Debug, Clone)]
pub struct RuleIn {
    id: Option<String>,
    sources: Vec<IpNet>,
    destinations: Vec<IpNet>,
    action: Option<RuleAction>,
    enabled: Option<bool>,
    logged: Option<bool>,
}

fn parse_rules(f: &Fields<'_>, k: &str) -> NsxResult<Option<Vec<RuleIn>>> {
    let Some(items) = f.objects(k, 1024)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|r| {
            Ok(RuleIn {
                id: r.string("id", 64)?.filter(|s| !s.is_empty()),
                sources: r.subnets("sources")?,
                destinations: r.subnets("destinations")?,
                action: r.enum_of("action", ACTION)?,
                enabled: r.boolean("enabled")?,
                logged: r.boolean("logged")?,
            })
        })
        .collect::<NsxResult<Vec<_>>>()
        .map(Some)
}

/// Fills in what NSX defaults: an id (the next number after the largest numeric
/// id of the list, from 1000), `action`, `enabled: true`, `logged: false`.
fn rules_from(given: &[RuleIn], action: RuleAction) -> Vec<PolicyRule> {
    let mut next = given
        .iter()
        .filter_map(|r| r.id.as_deref().and_then(|i| i.parse::<u64>().ok()))
        .max()
        .unwrap_or(1000);
    given
        .iter()
        .map(|r| PolicyRule {
            id: r.id.clone().unwrap_or_else(|| {
                next += 1;
                next.to_string()
            }),
            sources: r.sources.clone(),
            destinations: r.destinations.clone(),
            action: r.action.unwrap_or(action),
            enabled: r.enabled.unwrap_or(true),
            logged: r.logged.unwrap_or(false),
        })
        .collect()
}

fn lifetime(v: Option<u32>, l: &mut Lifetime) {
    if let Some(v) = v {
        *l = Lifetime::seconds(v);
    }
}

// ------------------------------------------------------------------ IKE profiles

pub struct IkeProfiles;

pub struct IkePatch {
    encryption: Option<Vec<EncryptionAlgorithm>>,
    digest: Option<Vec<AuthAlgorithm>>,
    dh: Option<Vec<DhGroup>>,
    lifetime: Option<u32>,
    version: Option<IkeVersion>,
    tags: Option<Vec<Tag>>,
}

fn non_empty<T>(field: &str, v: Option<Vec<T>>) -> NsxResult<Option<Vec<T>>> {
    match v {
        Some(l) if l.is_empty() => Err(NsxError::field(field, "at least one value is required")),
        v => Ok(v),
    }
}

impl Resource for IkeProfiles {
    type Body = IkePolicy;
    type Wire = response::IkeProfile;
    type Patch = IkePatch;
    const SEGMENT: &'static str = "ike-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNIKEProfile";

    fn render(rec: &Record<IkePolicy>, _: &RenderCtx) -> response::IkeProfile {
        let b = &rec.body;
        response::IkeProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            encryption_algorithms: names_of(ENCRYPTION, &b.encryption_algorithms()),
            digest_algorithms: names_of(DIGEST, &b.auth_algorithms()),
            dh_groups: names_of(DH_GROUP, &b.dh_groups()),
            sa_life_time: b.lifetime.value,
            ike_version: name_of(IKE_VERSION, b.ike_version),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<IkePatch> {
        Ok(IkePatch {
            encryption: non_empty(
                "encryption_algorithms",
                f.enum_list("encryption_algorithms", ENCRYPTION, &[])?,
            )?,
            digest: f.enum_list("digest_algorithms", DIGEST, DIGEST_UNSUPPORTED)?,
            dh: non_empty("dh_groups", f.enum_list("dh_groups", DH_GROUP, &[])?)?,
            lifetime: f.u32("sa_life_time")?,
            version: f.enum_of("ike_version", IKE_VERSION)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &IkePatch) -> model::Result<IkePolicy> {
        let mut b = ike_profile_defaults();
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &IkePatch, b: &mut IkePolicy) -> model::Result<()> {
        if p.digest.as_ref().is_some_and(Vec::is_empty) && !names_of(DIGEST, &b.auth_algorithms()).is_empty()
        {
            return Err(Error::field(
                "digest_algorithms",
                "an IKE profile needs at least one digest algorithm",
            ));
        }
        let cur = b.encryption_algorithms();
        set_list(ENCRYPTION, &p.encryption, &cur, |l| {
            b.set_encryption_algorithms(l)
        });
        let cur = b.auth_algorithms();
        set_list(DIGEST, &p.digest, &cur, |l| b.set_auth_algorithms(l));
        let cur = b.dh_groups();
        set_list(DH_GROUP, &p.dh, &cur, |l| b.set_dh_groups(l));
        lifetime(p.lifetime, &mut b.lifetime);
        if let Some(v) = p.version {
            b.ike_version = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// --------------------------------------------------------------- tunnel profiles

pub struct TunnelProfiles;

pub struct TunnelPatch {
    encryption: Option<Vec<EncryptionAlgorithm>>,
    digest: Option<Vec<AuthAlgorithm>>,
    dh: Option<Vec<DhGroup>>,
    pfs: Option<bool>,
    lifetime: Option<u32>,
    df: Option<DfPolicy>,
    tags: Option<Vec<Tag>>,
}

impl Resource for TunnelProfiles {
    type Body = IpsecPolicy;
    type Wire = response::TunnelProfile;
    type Patch = TunnelPatch;
    const SEGMENT: &'static str = "tunnel-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNTunnelProfile";

    fn render(rec: &Record<IpsecPolicy>, _: &RenderCtx) -> response::TunnelProfile {
        let b = &rec.body;
        response::TunnelProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            encryption_algorithms: names_of(ENCRYPTION, &b.encryption_algorithms()),
            digest_algorithms: names_of(DIGEST, &b.auth_algorithms()),
            dh_groups: names_of(DH_GROUP, &b.dh_groups()),
            enable_perfect_forward_secrecy: b.pfs_enabled,
            sa_life_time: b.lifetime.value,
            encapsulation_mode: spell(ENCAPSULATION, b.encapsulation_mode),
            transform_protocol: spell(TRANSFORM, b.transform_protocol),
            df_policy: name_of(DF_POLICY, b.df_policy),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<TunnelPatch> {
        // Only one value of each exists; checked so a typo is an error.
        f.enum_of("encapsulation_mode", ENCAPSULATION)?;
        f.enum_of("transform_protocol", TRANSFORM)?;
        Ok(TunnelPatch {
            encryption: non_empty(
                "encryption_algorithms",
                f.enum_list("encryption_algorithms", ENCRYPTION, &[])?,
            )?,
            digest: f.enum_list("digest_algorithms", DIGEST, DIGEST_UNSUPPORTED)?,
            dh: non_empty("dh_groups", f.enum_list("dh_groups", DH_GROUP, &[])?)?,
            pfs: f.boolean("enable_perfect_forward_secrecy")?,
            lifetime: f.u32("sa_life_time")?,
            df: f.enum_of("df_policy", DF_POLICY)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &TunnelPatch) -> model::Result<IpsecPolicy> {
        let mut b = tunnel_profile_defaults();
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &TunnelPatch, b: &mut IpsecPolicy) -> model::Result<()> {
        let cur = b.encryption_algorithms();
        set_list(ENCRYPTION, &p.encryption, &cur, |l| {
            b.set_encryption_algorithms(l)
        });
        let cur = b.auth_algorithms();
        set_list(DIGEST, &p.digest, &cur, |l| b.set_auth_algorithms(l));
        let cur = b.dh_groups();
        set_list(DH_GROUP, &p.dh, &cur, |l| b.set_dh_groups(l));
        if let Some(v) = p.pfs {
            b.pfs_enabled = v;
        }
        lifetime(p.lifetime, &mut b.lifetime);
        if let Some(v) = p.df {
            b.df_policy = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ DPD profiles

pub struct DpdProfiles;

pub struct DpdPatch {
    enabled: Option<bool>,
    interval: Option<u32>,
    mode: Option<DpdProbeMode>,
    retry: Option<u32>,
    tags: Option<Vec<Tag>>,
}

impl Resource for DpdProfiles {
    type Body = DpdProfile;
    type Wire = response::DpdProfile;
    type Patch = DpdPatch;
    const SEGMENT: &'static str = "dpd-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNDPDProfile";

    fn render(rec: &Record<DpdProfile>, _: &RenderCtx) -> response::DpdProfile {
        let b = &rec.body;
        response::DpdProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            enabled: b.enabled,
            dpd_probe_interval: b.probe_interval,
            dpd_probe_mode: name_of(PROBE_MODE, b.probe_mode),
            retry_count: b.retry_count,
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<DpdPatch> {
        Ok(DpdPatch {
            enabled: f.boolean("enabled")?,
            interval: f.u32("dpd_probe_interval")?,
            mode: f.enum_of("dpd_probe_mode", PROBE_MODE)?,
            retry: f.u32("retry_count")?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &DpdPatch) -> model::Result<DpdProfile> {
        let mut b = DpdProfile::default();
        if p.mode == Some(DpdProbeMode::OnDemand) {
            b.probe_interval = 3;
        }
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &DpdPatch, b: &mut DpdProfile) -> model::Result<()> {
        if let Some(v) = p.enabled {
            b.enabled = v;
        }
        if let Some(v) = p.mode {
            b.probe_mode = v;
        }
        if let Some(v) = p.interval {
            b.probe_interval = v;
        }
        if let Some(v) = p.retry {
            b.retry_count = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------- services

pub struct Services;

pub struct ServicePatch {
    router: Option<String>,
    enabled: Option<bool>,
    log_level: Option<IkeLogLevel>,
    ha_sync: Option<bool>,
    bypass: Option<Vec<RuleIn>>,
    tags: Option<Vec<Tag>>,
}

impl Resource for Services {
    type Body = VpnService;
    type Wire = response::Service;
    type Patch = ServicePatch;
    const SEGMENT: &'static str = "services";
    const RESOURCE_TYPE: &'static str = "IPSecVPNService";
    const FILTERS: &'static [&'static str] = &["logical_router_id"];

    fn render(rec: &Record<VpnService>, _: &RenderCtx) -> response::Service {
        let b = &rec.body;
        response::Service {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            logical_router_id: b.router_id.clone(),
            enabled: b.admin_state_up,
            ike_log_level: name_of(LOG_LEVEL, b.ike_log_level),
            ipsec_ha_sync: b.ipsec_ha_sync,
            bypass_rules: b.bypass_rules.iter().map(Rule::from).collect(),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<ServicePatch> {
        let router = if create {
            Some(f.required_string("logical_router_id", 64)?)
        } else {
            f.string("logical_router_id", 64)?
        };
        Ok(ServicePatch {
            router,
            enabled: f.boolean("enabled")?,
            log_level: f.enum_of("ike_log_level", LOG_LEVEL)?,
            ha_sync: f.boolean("ipsec_ha_sync")?,
            bypass: parse_rules(f, "bypass_rules")?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &ServicePatch) -> model::Result<VpnService> {
        let mut b = VpnService {
            router_id: p.router.clone().unwrap_or_default(),
            ..VpnService::default()
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &ServicePatch, b: &mut VpnService) -> model::Result<()> {
        if let Some(r) = &p.router
            && *r != b.router_id
        {
            return Err(Error::field(
                "logical_router_id",
                "the logical router of a VPN service can not be changed",
            ));
        }
        if let Some(v) = p.enabled {
            b.admin_state_up = v;
        }
        if let Some(v) = p.log_level {
            b.ike_log_level = v;
        }
        if let Some(v) = p.ha_sync {
            b.ipsec_ha_sync = v;
        }
        if let Some(r) = &p.bypass {
            b.bypass_rules = rules_from(r, RuleAction::Bypass);
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// --------------------------------------------------------------- local endpoints

pub struct LocalEndpoints;

pub struct LocalPatch {
    address: Option<std::net::IpAddr>,
    service: Option<String>,
    local_id: Option<String>,
    certificate_id: Option<String>,
    trust_ca_ids: Option<Vec<String>>,
    trust_crl_ids: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
}

impl Resource for LocalEndpoints {
    type Body = LocalEndpoint;
    type Wire = response::LocalEndpoint;
    type Patch = LocalPatch;
    const SEGMENT: &'static str = "local-endpoints";
    const RESOURCE_TYPE: &'static str = "IPSecVPNLocalEndpoint";
    const NEEDS_CTX: bool = true;
    const FILTERS: &'static [&'static str] = &["logical_router_id", "ipsec_vpn_service_id"];

    const DERIVED: bool = true;

    /// The local side of a Neutron connection: its service, the address its
    /// tunnel terminates on (the gateway's external address of the peer's
    /// family, as realization picks it) and its IKE identity.
    fn derived(conn: &Record<Connection>, gateway: &Gateway) -> Option<Record<LocalEndpoint>> {
        let c = &conn.body;
        let peer: std::net::IpAddr = c.peer_address.parse().ok()?;
        let address = c.local_address.or(match peer {
            std::net::IpAddr::V4(_) => gateway.external_v4.map(std::net::IpAddr::V4),
            std::net::IpAddr::V6(_) => gateway.external_v6.map(std::net::IpAddr::V6),
        })?;
        Some(Record {
            meta: conn.meta.clone(),
            body: LocalEndpoint {
                vpnservice_id: c.vpnservice_id.clone(),
                local_address: address,
                local_id: if c.local_id.is_empty() {
                    address.to_string()
                } else {
                    c.local_id.clone()
                },
                certificate_id: None,
                trust_ca_ids: Vec::new(),
                trust_crl_ids: Vec::new(),
                tags: Vec::new(),
            },
        })
    }

    fn render(rec: &Record<LocalEndpoint>, _: &RenderCtx) -> response::LocalEndpoint {
        let b = &rec.body;
        response::LocalEndpoint {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            local_address: b.local_address.to_string(),
            local_id: b.local_id.clone(),
            ipsec_vpn_service_id: response::ResourceReference {
                target_id: b.vpnservice_id.clone(),
                target_type: Services::RESOURCE_TYPE,
                is_valid: true,
            },
            certificate_id: b.certificate_id.clone(),
            trust_ca_ids: b.trust_ca_ids.clone(),
            trust_crl_ids: b.trust_crl_ids.clone(),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<LocalPatch> {
        // A ResourceReference `{"target_id": ...}`; a plain id string is accepted too.
        let service = match f.get("ipsec_vpn_service_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => f
                .object("ipsec_vpn_service_id")?
                .map(|r| r.required_string("target_id", 64))
                .transpose()?,
            None => None,
        };
        let address = f.ip("local_address")?;
        if create {
            if address.is_none() {
                return Err(NsxError::field("local_address", "required property is missing"));
            }
            if service.is_none() {
                return Err(NsxError::field(
                    "ipsec_vpn_service_id",
                    "required property is missing",
                ));
            }
        }
        Ok(LocalPatch {
            address,
            service,
            local_id: f.string("local_id", 255)?,
            certificate_id: f.string("certificate_id", 64)?,
            trust_ca_ids: f.string_list("trust_ca_ids", 128, 64)?,
            trust_crl_ids: f.string_list("trust_crl_ids", 128, 64)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &LocalPatch) -> model::Result<LocalEndpoint> {
        let address = p
            .address
            .ok_or_else(|| Error::field("local_address", "required"))?;
        let mut b = LocalEndpoint {
            vpnservice_id: p.service.clone().unwrap_or_default(),
            local_address: address,
            local_id: address.to_string(),
            certificate_id: None,
            trust_ca_ids: Vec::new(),
            trust_crl_ids: Vec::new(),
            tags: Vec::new(),
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &LocalPatch, b: &mut LocalEndpoint) -> model::Result<()> {
        if let Some(a) = p.address {
            b.local_address = a;
        }
        if let Some(s) = &p.service {
            b.vpnservice_id = s.clone();
        }
        if let Some(v) = &p.local_id {
            b.local_id = v.clone();
        }
        if p.certificate_id.is_some() {
            b.certificate_id = p.certificate_id.clone().filter(|c| !c.is_empty());
        }
        if let Some(v) = &p.trust_ca_ids {
            b.trust_ca_ids = v.clone();
        }
        if let Some(v) = &p.trust_crl_ids {
            b.trust_crl_ids = v.clone();
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- peer endpoints

pub struct PeerEndpoints;

pub struct PeerPatch {
    address: Option<std::net::IpAddr>,
    peer_id: Option<String>,
    psk: Option<String>,
    initiator: Option<Initiator>,
    ike: Option<String>,
    tunnel: Option<String>,
    dpd: Option<String>,
    tags: Option<Vec<Tag>>,
}

impl Resource for PeerEndpoints {
    type Body = PeerEndpoint;
    type Wire = response::PeerEndpoint;
    type Patch = PeerPatch;
    const SEGMENT: &'static str = "peer-endpoints";
    const RESOURCE_TYPE: &'static str = "IPSecVPNPeerEndpoint";

    /// The pre-shared key: never in a plain GET or list.
    fn sensitive(rec: &Record<PeerEndpoint>) -> Option<Obj> {
        let mut o = Obj::new();
        o.insert("psk".into(), json!(rec.body.psk.expose()));
        Some(o)
    }

    const DERIVED: bool = true;

    /// The peer of a Neutron connection: its address, identity, key,
    /// initiation mode and policies. Its DPD settings are the connection's
    /// own, not a profile, so the view names no `dpd_profile_id`.
    fn derived(conn: &Record<Connection>, _: &Gateway) -> Option<Record<PeerEndpoint>> {
        let c = &conn.body;
        Some(Record {
            meta: conn.meta.clone(),
            body: PeerEndpoint {
                peer_address: c.peer_address.clone(),
                peer_id: c.peer_id.clone(),
                psk: c.psk.clone(),
                initiator: c.initiator,
                ikepolicy_id: c.ikepolicy_id.clone(),
                ipsecpolicy_id: c.ipsecpolicy_id.clone(),
                dpd_profile_id: String::new(),
                tags: Vec::new(),
            },
        })
    }

    fn render(rec: &Record<PeerEndpoint>, _: &RenderCtx) -> response::PeerEndpoint {
        let b = &rec.body;
        response::PeerEndpoint {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            peer_address: b.peer_address.clone(),
            peer_id: b.peer_id.clone(),
            authentication_mode: "PSK",
            connection_initiation_mode: name_of(INITIATION, b.initiator),
            ike_profile_id: b.ikepolicy_id.clone(),
            ipsec_tunnel_profile_id: b.ipsecpolicy_id.clone(),
            dpd_profile_id: Some(b.dpd_profile_id.clone()).filter(|d| !d.is_empty()),
            psk: None,
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<PeerPatch> {
        if let Some(Value::String(m)) = f.get("authentication_mode") {
            match m.as_str() {
                "PSK" => {}
                "CERTIFICATE" => {
                    return Err(model::Error::Unsupported(
                        "authentication_mode CERTIFICATE is not supported by this server; use PSK".into(),
                    )
                    .into());
                }
                other => {
                    return Err(NsxError::field(
                        "authentication_mode",
                        format!("invalid value {other}; allowed values are PSK, CERTIFICATE"),
                    ));
                }
            }
        } else if let Some(v) = f.get("authentication_mode") {
            return Err(NsxError::field(
                "authentication_mode",
                format!("expected string, got {v}"),
            ));
        }
        let address = f.ip("peer_address")?;
        let peer_id = f.string("peer_id", 255)?;
        let psk = f.string("psk", PSK_MAX_LEN)?;
        if create {
            if address.is_none() {
                return Err(NsxError::field("peer_address", "required property is missing"));
            }
            if peer_id.as_deref().is_none_or(str::is_empty) {
                return Err(NsxError::field("peer_id", "required property is missing"));
            }
            if psk.as_deref().is_none_or(str::is_empty) {
                return Err(NsxError::field(
                    "psk",
                    "required property is missing (authentication_mode PSK)",
                ));
            }
        }
        if psk.as_deref() == Some("") {
            return Err(NsxError::field("psk", "must not be empty"));
        }
        Ok(PeerPatch {
            address,
            peer_id,
            psk,
            initiator: f.enum_of("connection_initiation_mode", INITIATION)?,
            ike: f.string("ike_profile_id", 64)?,
            tunnel: f.string("ipsec_tunnel_profile_id", 64)?,
            dpd: f.string("dpd_profile_id", 64)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &PeerPatch) -> model::Result<PeerEndpoint> {
        let mut b = PeerEndpoint {
            peer_address: String::new(),
            peer_id: String::new(),
            psk: Psk::default(),
            initiator: Initiator::BiDirectional,
            ikepolicy_id: DEFAULT_IKE_PROFILE_ID.into(),
            ipsecpolicy_id: DEFAULT_TUNNEL_PROFILE_ID.into(),
            dpd_profile_id: DEFAULT_DPD_PROFILE_ID.into(),
            tags: Vec::new(),
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &PeerPatch, b: &mut PeerEndpoint) -> model::Result<()> {
        if let Some(a) = p.address {
            b.peer_address = a.to_string();
        }
        if let Some(v) = &p.peer_id {
            if v.is_empty() {
                return Err(Error::field("peer_id", "must not be empty"));
            }
            b.peer_id = v.clone();
        }
        if let Some(v) = &p.psk {
            b.psk = Psk(v.clone());
        }
        if let Some(v) = p.initiator {
            b.initiator = v;
        }
        if let Some(v) = p.ike.as_ref().filter(|v| !v.is_empty()) {
            b.ikepolicy_id = v.clone();
        }
        if let Some(v) = p.tunnel.as_ref().filter(|v| !v.is_empty()) {
            b.ipsecpolicy_id = v.clone();
        }
        if let Some(v) = p.dpd.as_ref().filter(|v| !v.is_empty()) {
            b.dpd_profile_id = v.clone();
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------- sessions

pub struct Sessions;

pub const POLICY_BASED: &str = "PolicyBasedIPSecVPNSession";
pub const ROUTE_BASED: &str = "RouteBasedIPSecVPNSession";

#[derive(Clone)]
pub struct SessionPatch {
    route_based: Option<bool>,
    local: Option<String>,
    peer: Option<String>,
    enabled: Option<bool>,
    rules: Option<Vec<RuleIn>>,
    ports: Option<Vec<TunnelPort>>,
    mss: Option<TcpMssClamping>,
    tags: Option<Vec<Tag>>,
}

fn parse_ports(f: &Fields<'_>) -> NsxResult<Option<Vec<TunnelPort>>> {
    let Some(ports) = f.objects("tunnel_ports", 64)? else {
        return Ok(None);
    };
    ports
        .iter()
        .map(|p| {
            let subnets = p.objects("ip_subnets", 64)?.unwrap_or_default();
            Ok(TunnelPort {
                tunnel_port_id: p
                    .string("tunnel_port_id", 64)?
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                ip_subnets: subnets
                    .iter()
                    .map(|s| {
                        let addrs = s.string_list("ip_addresses", 16, 64)?.unwrap_or_default();
                        Ok(TunnelSubnet {
                            ip_addresses: addrs
                                .iter()
                                .map(|a| {
                                    a.parse().map_err(|_| {
                                        NsxError::field(
                                            format!("{}.ip_addresses", s.path),
                                            format!("{a} is not a valid IP address"),
                                        )
                                    })
                                })
                                .collect::<NsxResult<Vec<_>>>()?,
                            prefix_length: s.int_in("prefix_length", 1..=128)?.ok_or_else(|| {
                                NsxError::field(
                                    format!("{}.prefix_length", s.path),
                                    "required property is missing",
                                )
                            })? as u8,
                        })
                    })
                    .collect::<NsxResult<Vec<_>>>()?,
            })
        })
        .collect::<NsxResult<Vec<_>>>()
        .map(Some)
}

/// The traffic of a Neutron-form connection as one NSX policy rule: its
/// traffic selectors as the Neutron objects spell them (local subnets to peer
/// CIDRs, see [`model::traffic`]), so NSX shows what Neutron shows.
fn neutron_rule(c: &Connection, ctx: &RenderCtx) -> PolicyRule {
    let refs = model::traffic::LoadedRefs {
        subnets: &ctx.subnets,
        groups: &ctx.groups,
    };
    let service = ctx.services.get(&c.vpnservice_id).map(|s| &s.body);
    let ts = model::traffic::selectors(c, service.unwrap_or(&VpnService::default()), &refs);
    PolicyRule {
        id: "1".into(),
        sources: ts.local,
        destinations: ts.remote,
        action: RuleAction::Protect,
        enabled: true,
        logged: false,
    }
}

impl Resource for Sessions {
    type Body = Connection;
    type Wire = response::Session;
    type Patch = SessionPatch;
    const SEGMENT: &'static str = "sessions";
    const RESOURCE_TYPE: &'static str = POLICY_BASED;
    const NEEDS_CTX: bool = true;
    const FILTERS: &'static [&'static str] = &["logical_router_id", "ipsec_vpn_service_id", "session_type"];

    const RESOURCE_TYPES: &'static [&'static str] = &[POLICY_BASED, ROUTE_BASED];

    fn render(rec: &Record<Connection>, ctx: &RenderCtx) -> response::Session {
        let b = &rec.body;
        let (local, peer) = match (&b.local_endpoint_id, &b.peer_endpoint_id) {
            (Some(l), Some(p)) => (l, p),
            // A Neutron connection: the endpoint views derived from it.
            _ => (&rec.meta.id, &rec.meta.id),
        };
        let resource_type = if b.route_based { ROUTE_BASED } else { POLICY_BASED };
        let (tunnel_ports, policy_rules) = if b.route_based {
            let ports = b
                .tunnel_ports
                .iter()
                .map(|p| response::TunnelPortView {
                    tunnel_port_id: p.tunnel_port_id.clone(),
                    ip_subnets: p
                        .ip_subnets
                        .iter()
                        .map(|s| response::TunnelSubnetView {
                            ip_addresses: s.ip_addresses.iter().map(|a| a.to_string()).collect(),
                            prefix_length: s.prefix_length,
                        })
                        .collect(),
                })
                .collect();
            (Some(ports), None)
        } else if b.is_endpoint_form() {
            (None, Some(b.policy_rules.iter().map(Rule::from).collect()))
        } else {
            (None, Some(vec![Rule::from(&neutron_rule(b, ctx))]))
        };
        response::Session {
            managed: Managed::new(&rec.meta, resource_type),
            ipsec_vpn_service_id: b.vpnservice_id.clone(),
            local_endpoint_id: local.clone(),
            peer_endpoint_id: peer.clone(),
            enabled: b.admin_state_up,
            tunnel_ports,
            policy_rules,
            tcp_mss_clamping: b.tcp_mss_clamping.map(|m| response::MssView {
                direction: name_of(MSS_DIRECTION, m.direction),
                max_segment_size: m.max_segment_size,
            }),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<SessionPatch> {
        let route_based = match f.string("resource_type", 64)? {
            Some(t) if t == ROUTE_BASED => Some(true),
            Some(t) if t == POLICY_BASED => Some(false),
            Some(t) => {
                return Err(NsxError::field(
                    "resource_type",
                    format!("invalid value {t}; allowed values are {POLICY_BASED}, {ROUTE_BASED}"),
                ));
            }
            None if create => return Err(NsxError::field("resource_type", "required property is missing")),
            None => None,
        };
        let local = f.string("local_endpoint_id", 64)?.filter(|s| !s.is_empty());
        let peer = f.string("peer_endpoint_id", 64)?.filter(|s| !s.is_empty());
        let rules = parse_rules(f, "policy_rules")?;
        let ports = parse_ports(f)?;
        if create {
            if local.is_none() {
                return Err(NsxError::field(
                    "local_endpoint_id",
                    "required property is missing",
                ));
            }
            if peer.is_none() {
                return Err(NsxError::field(
                    "peer_endpoint_id",
                    "required property is missing",
                ));
            }
            if route_based == Some(true) && ports.is_none() {
                return Err(NsxError::field("tunnel_ports", "required property is missing"));
            }
            if route_based == Some(false) && rules.is_none() {
                return Err(NsxError::field("policy_rules", "required property is missing"));
            }
        }
        let mss = match f.object("tcp_mss_clamping")? {
            None => None,
            Some(m) => Some(TcpMssClamping {
                direction: m
                    .enum_of("direction", MSS_DIRECTION)?
                    .unwrap_or(MssDirection::None),
                max_segment_size: m
                    .int_in(
                        "max_segment_size",
                        i64::from(*MSS.start())..=i64::from(*MSS.end()),
                    )?
                    .map(|v| v as u32),
            }),
        };
        Ok(SessionPatch {
            route_based,
            local,
            peer,
            enabled: f.boolean("enabled")?,
            rules,
            ports,
            mss,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &SessionPatch) -> model::Result<Connection> {
        let mut c = Connection {
            local_endpoint_id: p.local.clone(),
            peer_endpoint_id: p.peer.clone(),
            route_based: p.route_based.unwrap_or(false),
            ..Connection::default()
        };
        Self::apply(p, &mut c)?;
        Ok(c)
    }

    /// A PUT of what GET showed for a Neutron connection names the endpoint
    /// views derived from it (both the connection's own id): an echo, not a
    /// change, so it is dropped before [`Sessions::apply`].
    fn apply_record(p: &SessionPatch, rec: &mut Record<Connection>) -> model::Result<()> {
        if rec.body.is_endpoint_form() {
            return Self::apply(p, &mut rec.body);
        }
        let echo = |v: &Option<String>| v.as_deref().filter(|v| *v != rec.meta.id).map(str::to_owned);
        let p = SessionPatch {
            local: echo(&p.local),
            peer: echo(&p.peer),
            ..p.clone()
        };
        Self::apply(&p, &mut rec.body)
    }

    fn apply(p: &SessionPatch, c: &mut Connection) -> model::Result<()> {
        if let Some(r) = p.route_based
            && r != c.route_based
        {
            return Err(Error::field(
                "resource_type",
                "the type of a session can not be changed",
            ));
        }
        if let Some(v) = p.enabled {
            c.admin_state_up = v;
        }
        if let Some(m) = p.mss {
            c.tcp_mss_clamping = Some(m);
        }
        if let Some(t) = &p.tags {
            c.tags = t.clone();
        }
        if !c.is_endpoint_form() {
            // A Neutron-created connection: its endpoints and traffic are
            // Neutron's endpoint groups; what GET showed of them is ignored
            // ([`Sessions::apply_record`] has already dropped the endpoint
            // ids GET shows for it).
            if p.local.is_some() || p.peer.is_some() {
                return Err(Error::field(
                    "local_endpoint_id",
                    "this session was created through the Neutron API; its endpoints are changed there",
                ));
            }
            return Ok(());
        }
        if let Some(l) = &p.local {
            c.local_endpoint_id = Some(l.clone());
        }
        if let Some(v) = &p.peer {
            c.peer_endpoint_id = Some(v.clone());
        }
        if let Some(r) = &p.rules {
            c.policy_rules = rules_from(r, RuleAction::Protect);
        }
        if let Some(ports) = &p.ports {
            c.tunnel_ports = ports.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object as NSX shows it, as JSON.
    fn shown<R: Resource>(rec: &Record<R::Body>, ctx: &RenderCtx) -> Obj {
        response::to_obj(&R::render(rec, ctx))
    }

    fn fields(v: Value) -> Obj {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn ike_profile_defaults_and_lists() {
        let o = fields(
            json!({"display_name": "ike1", "encryption_algorithms": ["AES_256", "AES_128"],
                              "dh_groups": ["GROUP19"], "ike_version": "IKE_V1", "sa_life_time": 28800}),
        );
        let p = IkeProfiles::parse(&Fields::new(&o), true).unwrap();
        let b = IkeProfiles::new_body(&p).unwrap();
        assert_eq!(b.encryption_algorithm, EncryptionAlgorithm::Aes256);
        assert_eq!(b.extra_encryption_algorithms, vec![EncryptionAlgorithm::Aes128]);
        assert_eq!(b.auth_algorithm, AuthAlgorithm::Sha256);
        assert_eq!(b.pfs, DhGroup::Group19);
        assert_eq!(b.ike_version, IkeVersion::V1);
        let r = shown::<IkeProfiles>(
            &Record {
                meta: meta("x"),
                body: b,
            },
            &RenderCtx::default(),
        );
        assert_eq!(r["encryption_algorithms"], json!(["AES_256", "AES_128"]));
        assert_eq!(r["digest_algorithms"], json!(["SHA2_256"]));
        assert_eq!(r["sa_life_time"], json!(28800));
        let o = fields(json!({"encryption_algorithms": []}));
        assert!(IkeProfiles::parse(&Fields::new(&o), true).is_err());
        let o = fields(json!({"ike_version": "IKE_V3"}));
        assert!(IkeProfiles::parse(&Fields::new(&o), true).is_err());
        let o = fields(json!({"sa_life_time": "86400"}));
        assert!(IkeProfiles::parse(&Fields::new(&o), true).is_err());
    }

    fn meta(id: &str) -> Meta {
        Meta {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            revision: 0,
            generation: 1,
            created_at: 1,
            updated_at: 2,
            created_by: "admin".into(),
            updated_by: "admin".into(),
        }
    }

    #[test]
    fn echo_of_a_get_keeps_unexpressible_values() {
        // A Neutron policy with 3DES: NSX shows no encryption algorithm; writing
        // that back must not change it.
        let mut b = IkePolicy {
            encryption_algorithm: EncryptionAlgorithm::TripleDes,
            ..IkePolicy::default()
        };
        let shown = shown::<IkeProfiles>(
            &Record {
                meta: meta("x"),
                body: b.clone(),
            },
            &RenderCtx::default(),
        );
        assert_eq!(shown["encryption_algorithms"], json!([]));
        let mut o = shown.clone();
        o.remove("encryption_algorithms");
        let p = IkeProfiles::parse(&Fields::new(&o), false).unwrap();
        let before = b.clone();
        IkeProfiles::apply(&p, &mut b).unwrap();
        assert_eq!(b, before);
    }

    #[test]
    fn tunnel_profile_pfs_and_implicit_digest() {
        let o = fields(
            json!({"encryption_algorithms": ["AES_GCM_128"], "digest_algorithms": ["SHA2_256"],
                              "enable_perfect_forward_secrecy": false, "dh_groups": ["GROUP14"]}),
        );
        let b = TunnelProfiles::new_body(&TunnelProfiles::parse(&Fields::new(&o), true).unwrap()).unwrap();
        assert!(!b.pfs_enabled && !b.auth_implicit);
        let o = fields(json!({}));
        let b = TunnelProfiles::new_body(&TunnelProfiles::parse(&Fields::new(&o), true).unwrap()).unwrap();
        assert!(b.auth_implicit && b.pfs_enabled);
        let r = shown::<TunnelProfiles>(
            &Record {
                meta: meta("t"),
                body: b,
            },
            &RenderCtx::default(),
        );
        assert_eq!(r["digest_algorithms"], json!([]));
        assert_eq!(r["encapsulation_mode"], json!("TUNNEL_MODE"));
        let o = fields(json!({"digest_algorithms": ["GMAC_128"]}));
        assert!(matches!(
            TunnelProfiles::parse(&Fields::new(&o), true),
            Err(NsxError::Model(model::Error::Unsupported(_)))
        ));
        let o = fields(json!({"transform_protocol": "AH"}));
        assert!(TunnelProfiles::parse(&Fields::new(&o), true).is_err());
    }

    #[test]
    fn session_rules_get_defaults_and_ids() {
        let o = fields(
            json!({"resource_type": POLICY_BASED, "local_endpoint_id": "l", "peer_endpoint_id": "p",
            "description": null, "enabled": true,
            "policy_rules": [{"sources": [{"subnet": "10.0.1.0/24"}], "destinations": [{"subnet": "10.0.2.0/24"}]},
                             {"id": "1211", "sources": [{"subnet": "10.0.3.0/24"}],
                              "destinations": [{"subnet": "10.0.4.0/24"}], "logged": true}]}),
        );
        let c = Sessions::new_body(&Sessions::parse(&Fields::new(&o), true).unwrap()).unwrap();
        assert_eq!(c.policy_rules[0].id, "1212");
        assert_eq!(c.policy_rules[0].action, RuleAction::Protect);
        assert!(c.policy_rules[0].enabled && !c.policy_rules[0].logged);
        assert_eq!(c.policy_rules[1].id, "1211");
        assert!(c.policy_rules[1].logged);
        let o = fields(json!({"resource_type": "Foo", "local_endpoint_id": "l", "peer_endpoint_id": "p"}));
        assert!(Sessions::parse(&Fields::new(&o), true).is_err());
        let o =
            fields(json!({"resource_type": POLICY_BASED, "local_endpoint_id": "l", "peer_endpoint_id": "p"}));
        assert!(Sessions::parse(&Fields::new(&o), true).is_err());
        let o = fields(
            json!({"resource_type": ROUTE_BASED, "local_endpoint_id": "l", "peer_endpoint_id": "p",
            "tunnel_ports": [{"ip_subnets": [{"ip_addresses": ["169.254.0.1"], "prefix_length": 30}]}]}),
        );
        let c = Sessions::new_body(&Sessions::parse(&Fields::new(&o), true).unwrap()).unwrap();
        assert!(c.route_based && c.tunnel_ports.len() == 1);
        let mut c2 = c.clone();
        let o = fields(json!({"resource_type": POLICY_BASED}));
        assert!(Sessions::apply(&Sessions::parse(&Fields::new(&o), false).unwrap(), &mut c2).is_err());
    }

    #[test]
    fn neutron_connection_renders_as_policy_session() {
        let c = Connection {
            vpnservice_id: "s".into(),
            peer_cidrs: vec!["10.9.0.0/24".parse().unwrap()],
            ..Connection::default()
        };
        let mut ctx = RenderCtx::default();
        ctx.services.insert(
            "s".into(),
            Record {
                meta: meta("s"),
                body: VpnService {
                    subnet_id: Some("sub".into()),
                    ..VpnService::default()
                },
            },
        );
        ctx.subnets.insert(
            "sub".into(),
            Record {
                meta: meta("sub"),
                body: Subnet {
                    gateway_id: "g".into(),
                    cidr: "10.1.0.0/24".parse().unwrap(),
                },
            },
        );
        let r = shown::<Sessions>(
            &Record {
                meta: meta("c"),
                body: c,
            },
            &ctx,
        );
        assert_eq!(r["resource_type"], json!(POLICY_BASED));
        // The endpoint views derived from the connection, named by its id.
        assert_eq!(r["local_endpoint_id"], json!("c"));
        assert_eq!(r["peer_endpoint_id"], json!("c"));
        assert_eq!(
            r["policy_rules"][0]["sources"],
            json!([{"subnet": "10.1.0.0/24"}])
        );
        assert_eq!(
            r["policy_rules"][0]["destinations"],
            json!([{"subnet": "10.9.0.0/24"}])
        );
    }

    #[test]
    fn peer_endpoint_requires_psk_and_refuses_certificates() {
        let o = fields(json!({"peer_address": "2.2.2.2", "peer_id": "2.2.2.2"}));
        assert!(PeerEndpoints::parse(&Fields::new(&o), true).is_err());
        let o = fields(json!({"peer_address": "2.2.2.2", "peer_id": "x", "psk": "k",
                              "authentication_mode": "CERTIFICATE"}));
        assert!(matches!(
            PeerEndpoints::parse(&Fields::new(&o), true),
            Err(NsxError::Model(model::Error::Unsupported(_)))
        ));
        let o = fields(json!({"peer_address": "peer.example", "peer_id": "x", "psk": "k"}));
        assert!(PeerEndpoints::parse(&Fields::new(&o), true).is_err());
        let o = fields(json!({"peer_address": "2.2.2.2", "peer_id": "x", "psk": "k",
                              "connection_initiation_mode": "RESPOND_ONLY"}));
        let b = PeerEndpoints::new_body(&PeerEndpoints::parse(&Fields::new(&o), true).unwrap()).unwrap();
        assert_eq!(b.initiator, Initiator::ResponseOnly);
        assert_eq!(b.ikepolicy_id, DEFAULT_IKE_PROFILE_ID);
        let r = shown::<PeerEndpoints>(
            &Record {
                meta: meta("p"),
                body: b.clone(),
            },
            &RenderCtx::default(),
        );
        assert!(r.get("psk").is_none());
        let r = PeerEndpoints::sensitive(&Record {
            meta: meta("p"),
            body: b,
        })
        .unwrap();
        assert_eq!(r["psk"], json!("k"));
    }
}
