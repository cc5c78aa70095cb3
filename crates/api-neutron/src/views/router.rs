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
