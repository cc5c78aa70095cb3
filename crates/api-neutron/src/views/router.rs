//! Neutron's core network resources over the canonical model: networks
//! (`Network`), subnets (`Subnet`), routers (`Gateway`, a router *is* a
//! gateway) and the ports derived from them. Attribute tables, bodies and
//! views; the router operations that allocate addresses and attach
//! interfaces are `app::network`'s.
//!
//! Ports are not stored: a router interface port is what attaching a subnet
//! to a gateway means, and a gateway port what an external network gives a
//! gateway. Their ids are derived ([`model::derived_id`] of the router and the
//! subnet, or of the router alone), so they are the same on every read and
//! every replica, and vanish with what they are derived from.

use identity::AuthContext;

use super::*;
use crate::attrs::Op;

/// `/v2.0/networks`.
pub struct Networks;

static NETWORK_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("admin_state_up")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("router:external")
            .default(Default::Bool(false))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("shared")
            .default(Default::Bool(false))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("status").ro(),
        Attr::new("subnets").ro().no_filter(),
    ]);
    v
});

impl View for Networks {
    type Body = Network;
    type Wire = wire::Network;
    const SINGULAR: &'static str = "network";
    const PLURAL: &'static str = "networks";
    const RULE: &'static str = "network";
    const FROM_CTX: &'static [&'static str] = &["subnets"];
    const NETWORKS: bool = true;

    fn attrs() -> &'static [Attr] {
        &NETWORK_ATTRS
    }

    fn wire(rec: &Record<Network>, ctx: &ViewCtx) -> wire::Network {
        wire::Network::new(
            rec,
            ctx.network_subnets.get(&rec.meta.id).cloned().unwrap_or_default(),
        )
    }

    /// `router:external` is for admins (Neutron's `create_network:router:external`);
    /// sharing is not offered.
    fn authorize(m: &Obj, ctx: &AuthContext, op: Op) -> ApiResult<()> {
        let verb = if op == Op::Create { "create" } else { "update" };
        if m.contains_key("router:external") && !ctx.is_admin() {
            let external = m.bool_of("router:external").unwrap_or(false);
            if external || op == Op::Update {
                return Err(ApiError::Policy(format!("{verb}_network:router:external")));
            }
        }
        if m.bool_of("shared") == Some(true) {
            return Err(
                model::Error::Unsupported("shared networks are not supported by this server".into()).into(),
            );
        }
        Ok(())
    }

    fn build(m: &Obj) -> ApiResult<Network> {
        Ok(Network {
            admin_state_up: m.bool_of("admin_state_up").unwrap_or(true),
            external: m.bool_of("router:external").unwrap_or(false),
        })
    }

    fn apply(rec: &mut Record<Network>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        if let Some(a) = m.bool_of("admin_state_up") {
            rec.body.admin_state_up = a;
        }
        if let Some(e) = m.bool_of("router:external") {
            rec.body.external = e;
        }
    }
}

/// Whether a caller reading with `scope` sees `net`: its own, or an external
/// one (Neutron's `get_network` policy includes `rule:external`).
pub fn network_visible(scope: &store::Scope, net: &Record<Network>) -> bool {
    net.body.external || scope.allows(&net.meta.project_id)
}

/// `/v2.0/subnets`.
pub struct Subnets;

/// `gateway_ip`'s POST default: "not given" (the first host), told apart from
/// an explicit `null` (no gateway address).
const GATEWAY_IP_UNSET: &str = "";

/// Attributes of `/v2.0/subnets`, for `fields`, filters and sorting.
pub static SUBNET_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("network_id")
            .post_only()
            .required()
            .check(Check::Uuid)
            .sort(),
        Attr::new("cidr").post_only().required().check(Check::Cidr),
        Attr::new("ip_version")
            .post_only()
            .required()
            .conv(Conv::Int)
            .check(Check::IpVersion),
        Attr::new("gateway_ip")
            .default(Default::Str(GATEWAY_IP_UNSET))
            .check(Check::IpOrNone),
        Attr::new("enable_dhcp")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("allocation_pools").ro().no_filter(),
    ]);
    v
});

impl View for Subnets {
    type Body = Subnet;
    type Wire = wire::Subnet;
    const SINGULAR: &'static str = "subnet";
    const PLURAL: &'static str = "subnets";
    const RULE: &'static str = "subnet";

    fn attrs() -> &'static [Attr] {
        &SUBNET_ATTRS
    }

    fn wire(rec: &Record<Subnet>, _: &ViewCtx) -> wire::Subnet {
        wire::Subnet::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<Subnet> {
        let raw = m.str_of("cidr").unwrap_or_default();
        let cidr: IpNet = model::validate::parse_cidr(&raw)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid input for cidr. Reason: '{raw}' is not a valid IP subnet."
                ))
            })?
            .trunc();
        let version = m.int_of("ip_version").unwrap_or(4);
        if i64::from(ip_version(&cidr)) != version {
            return Err(ApiError::InvalidInput(format!(
                "Cidr {raw} has an invalid IP version, expected IPv{version}"
            )));
        }
        let gateway_ip = match m.get("gateway_ip") {
            Some(Value::String(s)) if s == GATEWAY_IP_UNSET => first_host(&cidr),
            Some(Value::String(s)) => Some(parse_ip("gateway_ip", s)?),
            _ => None,
        };
        Ok(Subnet {
            gateway_id: None,
            network_id: m.str_of("network_id").unwrap_or_default(),
            cidr,
            gateway_ip,
            enable_dhcp: m.bool_of("enable_dhcp").unwrap_or(true),
        })
    }

    fn apply(rec: &mut Record<Subnet>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        match m.get("gateway_ip") {
            Some(Value::Null) => rec.body.gateway_ip = None,
            Some(Value::String(s)) => rec.body.gateway_ip = s.parse().ok(),
            _ => {}
        }
        if let Some(d) = m.bool_of("enable_dhcp") {
            rec.body.enable_dhcp = d;
        }
    }

    /// The address must parse (`apply` can't fail): checked before the update.
    fn authorize(m: &Obj, _: &AuthContext, _: Op) -> ApiResult<()> {
        if let Some(Value::String(s)) = m.get("gateway_ip")
            && s != GATEWAY_IP_UNSET
        {
            parse_ip("gateway_ip", s)?;
        }
        Ok(())
    }
}

fn parse_ip(attr: &str, s: &str) -> ApiResult<std::net::IpAddr> {
    s.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "Invalid input for {attr}. Reason: '{s}' is not a valid IP address."
        ))
    })
}

/// `/v2.0/routers`: gateways.
pub struct Routers;

/// Attributes of `/v2.0/routers`, for `fields`, filters and sorting.
pub static ROUTER_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("status").ro(),
        Attr::new("admin_state_up")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("external_gateway_info")
            .default(Default::Null)
            .check(Check::GatewayInfo)
            .no_filter(),
    ]);
    v
});

impl View for Routers {
    type Body = Gateway;
    type Wire = wire::Router;
    const SINGULAR: &'static str = "router";
    const PLURAL: &'static str = "routers";
    const RULE: &'static str = "router";

    fn attrs() -> &'static [Attr] {
        &ROUTER_ATTRS
    }

    fn wire(rec: &Record<Gateway>, _: &ViewCtx) -> wire::Router {
        wire::Router::from(rec)
    }

    /// `enable_snat` and `external_fixed_ips` are for admins (Neutron's
    /// `create_router:external_gateway_info:enable_snat` and friends).
    fn authorize(m: &Obj, ctx: &AuthContext, op: Op) -> ApiResult<()> {
        let verb = if op == Op::Create { "create" } else { "update" };
        if let Some(Value::Object(info)) = m.get("external_gateway_info")
            && !ctx.is_admin()
        {
            for key in ["enable_snat", "external_fixed_ips"] {
                if info.contains_key(key) {
                    return Err(ApiError::Policy(format!(
                        "{verb}_router:external_gateway_info:{key}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn build(m: &Obj) -> ApiResult<Gateway> {
        Ok(Gateway {
            admin_state_up: m.bool_of("admin_state_up").unwrap_or(true),
            ..Gateway::default()
        })
    }

    fn apply(rec: &mut Record<Gateway>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        if let Some(a) = m.bool_of("admin_state_up") {
            rec.body.admin_state_up = a;
        }
    }
}

/// What a checked `external_gateway_info` asks for: absent (keep), `{}` or
/// null (clear), or a network with options (set).
pub fn gateway_change(m: &Obj) -> ApiResult<app::network::GatewayChange> {
    use app::network::{ExternalGateway, FixedIpRequest, GatewayChange};
    let info = match m.get("external_gateway_info") {
        None => return Ok(GatewayChange::Keep),
        Some(Value::Object(o)) if !o.is_empty() => o,
        Some(_) => return Ok(GatewayChange::Clear),
    };
    let Some(network_id) = info.get("network_id").and_then(Value::as_str) else {
        return Err(ApiError::BadRequest(
            "Invalid input for external_gateway_info. Reason: Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: set()."
                .into(),
        ));
    };
    let mut fixed_ips = Vec::new();
    for f in info
        .get("external_fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let subnet_id = f.get("subnet_id").and_then(Value::as_str).map(str::to_string);
        let ip_address = match f.get("ip_address").and_then(Value::as_str) {
            Some(s) => Some(parse_ip("external_gateway_info", s)?),
            None => None,
        };
        fixed_ips.push(FixedIpRequest {
            subnet_id,
            ip_address,
        });
    }
    Ok(GatewayChange::Set(ExternalGateway {
        network_id: network_id.to_string(),
        enable_snat: info
            .get("enable_snat")
            .and_then(crate::attrs::to_bool)
            .unwrap_or(true),
        fixed_ips,
    }))
}

/// Attributes of `/v2.0/ports` (read-only), for `fields`, filters and sorting.
pub static PORT_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("network_id").ro().sort(),
        Attr::new("device_id").ro().sort(),
        Attr::new("device_owner").ro().sort(),
        Attr::new("mac_address").ro(),
        Attr::new("status").ro(),
        Attr::new("admin_state_up").ro().conv(Conv::Bool),
        // Filtered as `fixed_ips=subnet_id=X` (`port_list` takes it out of the
        // generic query first, see [`fixed_ip_filter`]).
        Attr::new("fixed_ips").ro(),
    ]);
    v
});

/// Every port derived from `gateways` and `subnets`: an interface port per
/// attached subnet (on a listed gateway), a gateway port per gateway with an
/// external network.
pub fn ports(gateways: &[Record<Gateway>], subnets: &[Record<Subnet>]) -> Vec<wire::Port> {
    let mut out = Vec::new();
    for gw in gateways {
        if let Some(p) = wire::Port::gateway(gw) {
            out.push(p);
        }
    }
    for s in subnets {
        if let Some(gw) = s
            .body
            .gateway_id
            .as_ref()
            .and_then(|g| gateways.iter().find(|r| &r.meta.id == g))
        {
            out.push(wire::Port::interface(gw, s));
        }
    }
    out
}

/// One `fixed_ips=` filter of a port list (`subnet_id=X`, `ip_address=Y`,
/// as `openstack port list --fixed-ip` sends them): the key and the value.
pub fn fixed_ip_filter(v: &str) -> ApiResult<(String, String)> {
    match v.split_once('=') {
        Some((k @ ("subnet_id" | "ip_address"), val)) => Ok((k.to_string(), val.to_string())),
        _ => Err(ApiError::BadRequestFor {
            resource: "port",
            msg: format!("Invalid fixed_ips filter '{v}'; use subnet_id=ID or ip_address=IP"),
        }),
    }
}

/// Whether a rendered port has a fixed IP matching `filter`.
pub fn port_has_fixed_ip(port: &Obj, filter: &(String, String)) -> bool {
    port.get("fixed_ips")
        .and_then(Value::as_array)
        .is_some_and(|ips| {
            ips.iter()
                .any(|ip| ip.get(&filter.0).and_then(Value::as_str) == Some(filter.1.as_str()))
        })
}
