//! `PolicyBasedIPSecVPNSession` / `RouteBasedIPSecVPNSession` (`/api/v1/vpn/ipsec/sessions`) over `Connection`: an endpoint-form connection made through NSX, or a Neutron connection seen through NSX.

use super::*;

/// `/api/v1/vpn/ipsec/sessions`: policy- and route-based sessions over canonical [`Connection`]s.
pub struct Sessions;

/// The `resource_type` of a session protecting the traffic of its `policy_rules`.
pub const POLICY_BASED: &str = "PolicyBasedIPSecVPNSession";
/// The `resource_type` of a session over a virtual tunnel interface (routing decides).
pub const ROUTE_BASED: &str = "RouteBasedIPSecVPNSession";

/// A parsed session body: what it sets, `None` for what it leaves alone.
#[derive(Clone)]
pub struct SessionPatch {
    route_based: Option<bool>,
    local: Option<String>,
    peer: Option<String>,
    enabled: Option<bool>,
    rules: Option<Vec<RuleIn>>,
    ports: Option<Vec<TunnelPort>>,
    routes: Option<Vec<ipnet::IpNet>>,
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

/// `peer_cidrs` (ours): the peer networks a route-based session routes into
/// its tunnel interface, as CIDRs.
fn parse_routes(f: &Fields<'_>) -> NsxResult<Option<Vec<ipnet::IpNet>>> {
    let Some(list) = f.string_list("peer_cidrs", 64, 64)? else {
        return Ok(None);
    };
    list.iter()
        .map(|c| {
            c.parse::<ipnet::IpNet>()
                .map_err(|_| NsxError::field("peer_cidrs", format!("{c} is not a valid CIDR")))
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
            peer_cidrs: b
                .route_based
                .then(|| b.peer_cidrs.iter().map(|n| n.to_string()).collect()),
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
        let routes = parse_routes(f)?;
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
            routes,
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
            // Route mode (ours): its interface and routes are Neutron's
            // `tunnel_addresses` and `peer_cidrs`. An echo of what GET showed
            // passes; a change is refused, not dropped in silence.
            let ports_changed = p
                .ports
                .as_ref()
                .is_some_and(|ports| model::nsx::port_addresses(ports).ne(c.tunnel_addresses()));
            let routes_changed = c.route_based && p.routes.as_ref().is_some_and(|r| *r != c.peer_cidrs);
            if ports_changed || routes_changed {
                return Err(Error::field(
                    if ports_changed {
                        "tunnel_ports"
                    } else {
                        "peer_cidrs"
                    },
                    "this session was created through the Neutron API; its tunnel interface and routes are changed there (tunnel_addresses, peer_cidrs)",
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
        if let Some(routes) = &p.routes {
            // Checked with the rest of the session (a policy-based one
            // refuses them, see `model::nsx::session`).
            c.peer_cidrs = routes.clone();
        }
        Ok(())
    }
}
