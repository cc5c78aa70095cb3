//! The read-only `/v2.0/routers` and `/v2.0/subnets` views of gateways and their subnets that clients resolve names through.

use super::*;

/// Attributes of `/v2.0/routers`, for `fields`, filters and sorting.
pub static ROUTER_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("status").ro(),
        Attr::new("admin_state_up").conv(Conv::Bool).check(Check::Boolean),
        Attr::new("external_gateway_info").ro().no_filter(),
    ]);
    v
});

/// A gateway as a Neutron router object.
pub fn router_json(rec: &Record<Gateway>) -> Obj {
    to_obj(&wire::Router::from(rec))
}

/// Attributes of `/v2.0/subnets`, for `fields`, filters and sorting.
pub static SUBNET_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("cidr").ro(),
        Attr::new("ip_version").ro().conv(Conv::Int),
        Attr::new("network_id").ro(),
    ]);
    v
});

/// A gateway subnet as a Neutron subnet object.
pub fn subnet_json(rec: &Record<Subnet>) -> Obj {
    to_obj(&wire::Subnet::from(rec))
}

/// A read-only collection over one canonical kind (routers, subnets): listed
/// and shown with the same query semantics as the VPN resources, never written
/// through Neutron.
pub trait ReadOnly: Send + Sync + 'static {
    /// The canonical kind shown.
    type Body: store::Body;
    /// The member key of a show (`router`).
    const SINGULAR: &'static str;
    /// The collection key of a list (`routers`).
    const PLURAL: &'static str;
    /// Attributes for filters, sorting and `fields`.
    fn attrs() -> &'static [Attr];
    /// The object as Neutron shows it.
    fn json(rec: &Record<Self::Body>) -> Obj;
}

/// `/v2.0/routers`: gateways.
pub struct Routers;

impl ReadOnly for Routers {
    type Body = Gateway;
    const SINGULAR: &'static str = "router";
    const PLURAL: &'static str = "routers";
    fn attrs() -> &'static [Attr] {
        &ROUTER_ATTRS
    }
    fn json(rec: &Record<Gateway>) -> Obj {
        router_json(rec)
    }
}

/// `/v2.0/subnets`: gateways' internal subnets.
pub struct Subnets;

impl ReadOnly for Subnets {
    type Body = Subnet;
    const SINGULAR: &'static str = "subnet";
    const PLURAL: &'static str = "subnets";
    fn attrs() -> &'static [Attr] {
        &SUBNET_ATTRS
    }
    fn json(rec: &Record<Subnet>) -> Obj {
        subnet_json(rec)
    }
}
