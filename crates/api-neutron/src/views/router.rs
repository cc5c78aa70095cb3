//! The read-only `/v2.0/routers` and `/v2.0/subnets` views of gateways and their subnets that clients resolve names through.

use super::*;

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
