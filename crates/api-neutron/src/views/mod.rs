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

mod endpoint_group;
mod ikepolicy;
mod ipsec_site_connection;
mod ipsecpolicy;
mod router;
mod vpnservice;

pub use self::endpoint_group::*;
pub use self::ikepolicy::*;
pub use self::ipsec_site_connection::*;
pub use self::ipsecpolicy::*;
pub use self::router::*;
pub use self::vpnservice::*;

/// What rendering needs besides the record itself.
#[derive(Default)]
pub struct ViewCtx {
    /// The gateways the rendered records reference, by id.
    pub gateways: HashMap<String, Record<Gateway>>,
    /// The VPN services the rendered records reference, by id.
    pub services: HashMap<String, Record<VpnService>>,
    /// Derived statuses of the rendered records.
    pub status: StatusView,
    /// The subnet ids of each rendered network.
    pub network_subnets: HashMap<String, Vec<String>>,
}

type Obj = Map<String, Value>;

/// One Neutron resource over one canonical kind.
pub trait View: Send + Sync + 'static {
    /// The canonical body stored for this resource.
    type Body: app::Rules;
    /// The JSON key of one object (`ikepolicy`).
    const SINGULAR: &'static str;
    /// The JSON key of the collection (`ikepolicies`).
    const PLURAL: &'static str;
    /// Policy rule suffix (`create_<rule>`).
    const RULE: &'static str;
    /// Extra filter names, as (alias, attribute): `endpoint_type` for `type`.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Whether a PENDING_* status blocks updates.
    const STATEFUL: bool = false;
    /// Attributes rendered from the [`ViewCtx`] (what the record references),
    /// not from the record: an answer that names none of them needs no ctx.
    const FROM_CTX: &'static [&'static str] = &[];
    /// Whether rendering needs each network's subnets ([`ViewCtx::network_subnets`]).
    const NETWORKS: bool = false;

    /// The typed response body of one object.
    type Wire: serde::Serialize + utoipa::ToSchema;

    /// The resource's attributes: conversion, checks, filterability.
    fn attrs() -> &'static [Attr];
    /// The typed response body of `rec`.
    fn wire(rec: &Record<Self::Body>, ctx: &ViewCtx) -> Self::Wire;
    /// [`View::wire`] as a JSON object, for `fields`, filters and sorting.
    fn render(rec: &Record<Self::Body>, ctx: &ViewCtx) -> Obj {
        to_obj(&Self::wire(rec, ctx))
    }
    /// The canonical body from a request's attributes, converted and checked.
    fn build(m: &Obj) -> ApiResult<Self::Body>;
    /// What must hold of the current object for an update (Neutron refuses
    /// changing an in-use policy, or a service or connection while pending).
    const UPDATE: Expect = Expect::NOTHING;
    /// Applies a checked update body to the current record.
    fn apply(rec: &mut Record<Self::Body>, m: &Obj);
    /// Neutron's attribute policies beyond "a member may write": e.g.
    /// `router:external` only for admins. Runs on the checked body.
    fn authorize(_m: &Obj, _ctx: &identity::AuthContext, _op: crate::attrs::Op) -> ApiResult<()> {
        Ok(())
    }
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

/// `auth_algorithm` and `encryption_algorithm`, as both policies define them
/// (same defaults, same values).
fn algorithm_attrs() -> [Attr; 2] {
    [
        Attr::new("auth_algorithm")
            .default(Default::Str("sha1"))
            .check(Check::Values(*AUTH)),
        Attr::new("encryption_algorithm")
            .default(Default::Str("aes-128"))
            .check(Check::Values(*ENC)),
    ]
}

/// A policy's `lifetime` dict (null means the defaults; not a filter).
fn lifetime_attr() -> Attr {
    Attr::new("lifetime")
        .default(Default::EmptyDict)
        .conv(Conv::NoneToEmptyDict)
        .check(Check::Lifetime)
        .no_filter()
}

/// A policy's `pfs` group (Neutron's default `group5`).
fn pfs_attr() -> Attr {
    Attr::new("pfs")
        .default(Default::Str("group5"))
        .check(Check::Values(*PFS))
}

/// Applies the attributes an IKE and an IPsec policy share, where `m` has
/// them (Neutron checks and converts them alike for `ikepolicy` and
/// `ipsecpolicy`): the primary algorithms, the lifetime and the (primary)
/// DH/PFS group.
fn policy_apply(
    m: &Obj,
    auth_algorithm: &mut AuthAlgorithm,
    encryption_algorithm: &mut EncryptionAlgorithm,
    lifetime: &mut Lifetime,
    pfs: &mut DhGroup,
) {
    if let Some(v) = parse_enum(m, "auth_algorithm", AuthAlgorithm::parse) {
        *auth_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encryption_algorithm", EncryptionAlgorithm::parse) {
        *encryption_algorithm = v;
    }
    lifetime_apply(lifetime, m.get("lifetime"));
    if let Some(v) = parse_enum(m, "pfs", DhGroup::parse) {
        *pfs = v;
    }
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

fn apply_meta(meta: &mut Meta, m: &Obj) {
    if let Some(n) = m.str_of("name") {
        meta.name = n;
    }
    if let Some(d) = m.str_of("description") {
        meta.description = d;
    }
}
