//! IPsec site connections (`/v2.0/vpn/ipsec-site-connections`): attributes, how a request becomes (or changes) a `Connection`, and its view with derived status.

use super::*;
use model::nsx::{TunnelPort, TunnelSubnet};

/// `/v2.0/vpn/ipsec-site-connections`.
pub struct Connections;

/// Most `peer_cidrs` of a connection (NSX's `peer_cidrs` and rule subnets
/// are bounded likewise).
pub const MAX_PEER_CIDRS: usize = 256;
/// Most addresses of a route-mode connection's tunnel interface.
pub const MAX_TUNNEL_ADDRESSES: usize = 16;

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
            .check(Check::SubnetList(MAX_PEER_CIDRS))
            .no_filter(),
        Attr::new("local_ep_group_id").check(Check::UuidOrNone),
        Attr::new("peer_ep_group_id").check(Check::UuidOrNone),
        // Ours beyond `static`: `route` makes a route-based connection
        // (README "Route-based tunnels"); chosen on create only.
        Attr::new("route_mode")
            .post_only()
            .default(Default::Str("static"))
            .check(Check::Values(&["static", "route"])),
        Attr::new("tunnel_addresses")
            .default(Default::EmptyList)
            .conv(Conv::List)
            .check(Check::SubnetList(MAX_TUNNEL_ADDRESSES))
            .no_filter(),
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
        // Ours (see the wire struct): derived like `status`, never accepted.
        Attr::new("status_description").ro().no_filter(),
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

fn cidrs(m: &Obj, name: &str) -> Option<Vec<IpNet>> {
    m.get(name).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|c| c.as_str().and_then(validate::parse_cidr))
            .collect()
    })
}

/// The tunnel interface of `tunnel_addresses` (address/prefix, host bits
/// kept) as one tunnel port, its addresses grouped by prefix length in the
/// order given; the port keeps the id it had.
fn tunnel_ports(addresses: &[IpNet], had: &[TunnelPort]) -> Vec<TunnelPort> {
    if addresses.is_empty() {
        return Vec::new();
    }
    let mut ip_subnets: Vec<TunnelSubnet> = Vec::new();
    for a in addresses {
        match ip_subnets.iter_mut().find(|s| s.prefix_length == a.prefix_len()) {
            Some(s) if !s.ip_addresses.contains(&a.addr()) => s.ip_addresses.push(a.addr()),
            Some(_) => {}
            None => ip_subnets.push(TunnelSubnet {
                ip_addresses: vec![a.addr()],
                prefix_length: a.prefix_len(),
            }),
        }
    }
    let tunnel_port_id = had
        .first()
        .map(|p| p.tunnel_port_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    vec![TunnelPort {
        tunnel_port_id,
        ip_subnets,
    }]
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
    if let Some(v) = cidrs(m, "peer_cidrs") {
        c.peer_cidrs = v;
    }
    if let Some(v) = cidrs(m, "tunnel_addresses") {
        c.tunnel_ports = tunnel_ports(&v, &c.tunnel_ports);
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
    const FROM_CTX: &'static [&'static str] = &["status", "status_description"];

    fn attrs() -> &'static [Attr] {
        &CONN_ATTRS
    }

    fn wire(rec: &Record<Connection>, ctx: &ViewCtx) -> wire::IpsecSiteConnection {
        let (status, why) = ctx
            .status
            .connection_detail(rec, ctx.services.get(&rec.body.vpnservice_id));
        wire::IpsecSiteConnection::new(rec, status).with_status_description(why)
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
            route_based: m.str_of("route_mode").as_deref() == Some("route"),
            // Neutron's defaults for the rest; `conn_apply` sets what was given.
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
