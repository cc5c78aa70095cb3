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

mod dpd_profile;
mod ike_profile;
mod local_endpoint;
mod peer_endpoint;
mod service;
pub(crate) mod session;
mod tunnel_profile;

pub use self::dpd_profile::*;
pub use self::ike_profile::*;
pub use self::local_endpoint::*;
pub use self::peer_endpoint::*;
pub use self::service::*;
pub use self::session::*;
pub use self::tunnel_profile::*;

/// What rendering needs besides the record (loaded only for sessions).
#[derive(Default)]
pub struct RenderCtx {
    /// The services of the rendered sessions, by id.
    pub services: HashMap<String, Record<VpnService>>,
    /// The endpoint groups of the rendered (Neutron-made) sessions, by id.
    pub groups: HashMap<String, Record<EndpointGroup>>,
    /// The subnets the rendered sessions' traffic is named by, by id.
    pub subnets: HashMap<String, Record<Subnet>>,
}

/// A list field that, when given, must name at least one value (NSX refuses
/// an empty algorithm or group list).
fn non_empty<T>(field: &str, v: Option<Vec<T>>) -> NsxResult<Option<Vec<T>>> {
    match v {
        Some(l) if l.is_empty() => Err(NsxError::field(field, "at least one value is required")),
        v => Ok(v),
    }
}

/// One NSX resource over one canonical kind.
pub trait Resource: Send + Sync + 'static {
    /// The canonical kind, written through [`app::App`] under NSX's rules.
    type Body: app::Rules;
    /// A parsed request body.
    type Patch: Send + Sync + 'static;
    /// The path segment under [`crate::PREFIX`] (`ike-profiles`).
    const SEGMENT: &'static str;
    /// NSX's `resource_type` of the objects (`IPSecVPNIKEProfile`).
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
    /// Reads a create (`create`) or update body with NSX's types: a wrong
    /// type, an unknown value or a missing required field is a 400 naming it.
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

/// The algorithm lists IKE and tunnel profiles share (`encryption_algorithms`,
/// `digest_algorithms`, `dh_groups`), as a request body gives them: parsed,
/// checked and merged alike for both.
struct AlgorithmsPatch {
    encryption: Option<Vec<EncryptionAlgorithm>>,
    /// May be empty (a tunnel profile's integrity from an AEAD cipher only; the
    /// IKE profile refuses that itself).
    digest: Option<Vec<AuthAlgorithm>>,
    dh: Option<Vec<DhGroup>>,
}

impl AlgorithmsPatch {
    fn parse(f: &Fields<'_>) -> NsxResult<AlgorithmsPatch> {
        Ok(AlgorithmsPatch {
            encryption: non_empty(
                "encryption_algorithms",
                f.enum_list("encryption_algorithms", ENCRYPTION, &[])?,
            )?,
            digest: f.enum_list("digest_algorithms", DIGEST, DIGEST_UNSUPPORTED)?,
            dh: non_empty("dh_groups", f.enum_list("dh_groups", DH_GROUP, &[])?)?,
        })
    }

    /// Sets each given list that differs (in NSX's spelling) from what `b` has.
    fn apply(&self, b: &mut impl AlgorithmLists) {
        let cur = b.encryption_algorithms();
        set_list(ENCRYPTION, &self.encryption, &cur, |l| {
            b.set_encryption_algorithms(l)
        });
        let cur = b.auth_algorithms();
        set_list(DIGEST, &self.digest, &cur, |l| b.set_auth_algorithms(l));
        let cur = b.dh_groups();
        set_list(DH_GROUP, &self.dh, &cur, |l| b.set_dh_groups(l));
    }
}

/// The algorithm lists of `b` as NSX shows them.
fn algorithms_view(b: &impl AlgorithmLists) -> response::Algorithms {
    response::Algorithms {
        encryption_algorithms: names_of(ENCRYPTION, &b.encryption_algorithms()),
        digest_algorithms: names_of(DIGEST, &b.auth_algorithms()),
        dh_groups: names_of(DH_GROUP, &b.dh_groups()),
    }
}

/// The canonical policies' algorithm lists (primary first), which IKE and
/// tunnel profiles show and set the same way: [`IkePolicy`]'s and
/// [`IpsecPolicy`]'s own methods of these names.
trait AlgorithmLists {
    fn encryption_algorithms(&self) -> Vec<EncryptionAlgorithm>;
    fn auth_algorithms(&self) -> Vec<AuthAlgorithm>;
    fn dh_groups(&self) -> Vec<DhGroup>;
    fn set_encryption_algorithms(&mut self, list: &[EncryptionAlgorithm]);
    fn set_auth_algorithms(&mut self, list: &[AuthAlgorithm]);
    fn set_dh_groups(&mut self, list: &[DhGroup]);
}

macro_rules! algorithm_lists {
    ($($t:ty),*) => {$(
        impl AlgorithmLists for $t {
            fn encryption_algorithms(&self) -> Vec<EncryptionAlgorithm> {
                <$t>::encryption_algorithms(self)
            }
            fn auth_algorithms(&self) -> Vec<AuthAlgorithm> {
                <$t>::auth_algorithms(self)
            }
            fn dh_groups(&self) -> Vec<DhGroup> {
                <$t>::dh_groups(self)
            }
            fn set_encryption_algorithms(&mut self, list: &[EncryptionAlgorithm]) {
                <$t>::set_encryption_algorithms(self, list)
            }
            fn set_auth_algorithms(&mut self, list: &[AuthAlgorithm]) {
                <$t>::set_auth_algorithms(self, list)
            }
            fn set_dh_groups(&mut self, list: &[DhGroup]) {
                <$t>::set_dh_groups(self, list)
            }
        }
    )*};
}
algorithm_lists!(IkePolicy, IpsecPolicy);

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
                body: Subnet::attached("n", "g", "10.1.0.0/24".parse().unwrap()),
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
