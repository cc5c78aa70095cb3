//! Traffic selectors: which local and remote prefixes a connection protects.
//!
//! Why one function: the same traffic is read in two places — the NSX view
//! shows a Neutron-created connection's traffic as a policy rule, and realize
//! hands every connection's traffic to charon as traffic selectors. Written
//! twice, the two had already drifted; [`selectors`] is the one derivation both
//! call, pure over the connection, its service and what they reference.
//!
//! Two spellings of one answer, on purpose:
//! - [`Selectors`] as derived keeps each prefix as its object spells it
//!   (Neutron accepts host bits, `10.0.0.1/24`), because an API shows back what
//!   it was given — the NSX view of a Neutron connection shows exactly the
//!   prefixes the Neutron view shows.
//! - [`Selectors::networks`] is what charon must get: each prefix truncated to
//!   its network address, without duplicates, so that two spellings of one
//!   network are one traffic selector (and one expected CHILD SA pair).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::nsx::{PolicyRule, RuleAction};
use crate::resources::{Connection, EndpointGroup, Record, Subnet, VpnService};
use crate::validate::parse_cidr;

/// The objects a Neutron-form connection's traffic is named by, looked up by
/// id. A missing object contributes no prefix (the store's references keep a
/// used subnet or group from disappearing, so within one snapshot this is only
/// a view of a half-loaded context).
pub trait TrafficRefs {
    /// The CIDR of a subnet.
    fn subnet_cidr(&self, id: &str) -> Option<IpNet>;
    /// An endpoint group.
    fn endpoint_group(&self, id: &str) -> Option<&EndpointGroup>;
}

/// [`TrafficRefs`] over records loaded by id, as the read paths keep them
/// (the store's read model `store::read::Refs`, which fills realization's
/// node configuration and the NSX view's render context).
#[derive(Debug, Clone, Copy)]
pub struct LoadedRefs<'a> {
    /// Subnets by id.
    pub subnets: &'a HashMap<String, Record<Subnet>>,
    /// Endpoint groups by id.
    pub groups: &'a HashMap<String, Record<EndpointGroup>>,
}

impl TrafficRefs for LoadedRefs<'_> {
    fn subnet_cidr(&self, id: &str) -> Option<IpNet> {
        self.subnets.get(id).map(|s| s.body.cidr)
    }
    fn endpoint_group(&self, id: &str) -> Option<&EndpointGroup> {
        self.groups.get(id).map(|g| &g.body)
    }
}

/// Local and remote prefixes of one connection, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// Traffic behind this gateway (IKE's TSi on the initiator).
    pub local: Vec<IpNet>,
    /// Traffic behind the peer.
    pub remote: Vec<IpNet>,
}

impl Selectors {
    /// The selectors charon is given: network addresses, without duplicates.
    pub fn networks(&self) -> Selectors {
        Selectors {
            local: networks(&self.local),
            remote: networks(&self.remote),
        }
    }
}

fn networks(nets: &[IpNet]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::with_capacity(nets.len());
    for n in nets.iter().map(IpNet::trunc) {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The traffic a connection protects, whichever API made it:
/// - route-based (NSX): everything of the peer's IP version, both ways — the
///   tunnel carries whatever is routed into it;
/// - policy-based NSX form: the sources and destinations of its enabled
///   `PROTECT` rules, in order, without duplicates;
/// - Neutron form, legacy (the service has a subnet): that subnet to
///   `peer_cidrs`;
/// - Neutron form with endpoint groups: the local group's subnets to the peer
///   group's CIDRs (Neutron's `connection_mode` rule says which form applies,
///   see [`crate::validate::connection_mode`]).
pub fn selectors(conn: &Connection, service: &VpnService, refs: &impl TrafficRefs) -> Selectors {
    if conn.route_based {
        return Selectors {
            local: route_based_any(conn),
            remote: route_based_any(conn),
        };
    }
    if conn.is_endpoint_form() {
        return rule_selectors(&conn.policy_rules);
    }
    if let Some(subnet_id) = &service.subnet_id {
        return Selectors {
            local: refs.subnet_cidr(subnet_id).into_iter().collect(),
            remote: conn.peer_cidrs.clone(),
        };
    }
    let group = |id: &Option<String>| id.as_deref().and_then(|g| refs.endpoint_group(g));
    Selectors {
        local: group(&conn.local_ep_group_id)
            .map(|g| g.endpoints.iter().filter_map(|e| refs.subnet_cidr(e)).collect())
            .unwrap_or_default(),
        remote: group(&conn.peer_ep_group_id)
            .map(|g| g.endpoints.iter().filter_map(|e| parse_cidr(e)).collect())
            .unwrap_or_default(),
    }
}

/// The selectors of a route-based connection: `0.0.0.0/0` for IPv4 and
/// `::/0` for IPv6, for each family the tunnel carries — the peer address's
/// (the outer family), and that of every interface address and routed peer
/// network (IPv6 may be routed over an IPv4 tunnel) — IPv4 first.
fn route_based_any(conn: &Connection) -> Vec<IpNet> {
    let outer_v6 = matches!(conn.peer_address.parse::<IpAddr>(), Ok(IpAddr::V6(_)));
    let inner = conn
        .tunnel_ports
        .iter()
        .flat_map(|p| {
            p.ip_subnets
                .iter()
                .flat_map(|s| s.ip_addresses.iter().map(IpAddr::is_ipv6))
        })
        .chain(conn.peer_cidrs.iter().map(|n| matches!(n, IpNet::V6(_))));
    let (mut v4, mut v6) = (!outer_v6, outer_v6);
    for is_v6 in inner {
        if is_v6 {
            v6 = true;
        } else {
            v4 = true;
        }
    }
    let mut out = Vec::new();
    if v4 {
        out.push("0.0.0.0/0".parse().expect("literal prefix"));
    }
    if v6 {
        out.push("::/0".parse().expect("literal prefix"));
    }
    out
}

/// Sources and destinations of the enabled `PROTECT` rules, without duplicates.
fn rule_selectors(rules: &[PolicyRule]) -> Selectors {
    let mut s = Selectors::default();
    for r in rules
        .iter()
        .filter(|r| r.enabled && r.action == RuleAction::Protect)
    {
        for n in &r.sources {
            if !s.local.contains(n) {
                s.local.push(*n);
            }
        }
        for n in &r.destinations {
            if !s.remote.contains(n) {
                s.remote.push(*n);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EndpointType;

    #[derive(Default)]
    struct Refs {
        subnets: HashMap<String, IpNet>,
        groups: HashMap<String, EndpointGroup>,
    }

    impl TrafficRefs for Refs {
        fn subnet_cidr(&self, id: &str) -> Option<IpNet> {
            self.subnets.get(id).copied()
        }
        fn endpoint_group(&self, id: &str) -> Option<&EndpointGroup> {
            self.groups.get(id)
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| net(s)).collect()
    }

    fn rule(src: &[&str], dst: &[&str], enabled: bool, action: RuleAction) -> PolicyRule {
        PolicyRule {
            id: "1".into(),
            sources: nets(src),
            destinations: nets(dst),
            action,
            enabled,
            logged: false,
        }
    }

    fn refs() -> Refs {
        let mut r = Refs::default();
        r.subnets.insert("s1".into(), net("10.0.1.0/24"));
        r.subnets.insert("s2".into(), net("10.0.2.5/24"));
        r.groups.insert(
            "local".into(),
            EndpointGroup {
                endpoint_type: EndpointType::Subnet,
                endpoints: vec!["s1".into(), "s2".into(), "gone".into()],
            },
        );
        r.groups.insert(
            "peer".into(),
            EndpointGroup {
                endpoint_type: EndpointType::Cidr,
                endpoints: vec!["10.9.0.1/16".into(), "10.8.0.0/16".into(), "10.7.0.7".into()],
            },
        );
        r
    }

    #[test]
    fn endpoint_groups_as_named_and_as_networks() {
        let c = Connection {
            local_ep_group_id: Some("local".into()),
            peer_ep_group_id: Some("peer".into()),
            ..Connection::default()
        };
        let s = selectors(&c, &VpnService::default(), &refs());
        // A subnet that is not loaded contributes nothing.
        assert_eq!(s.local, nets(&["10.0.1.0/24", "10.0.2.5/24"]));
        // A bare address is a host prefix; host bits are kept as named.
        assert_eq!(s.remote, nets(&["10.9.0.1/16", "10.8.0.0/16", "10.7.0.7/32"]));
        let n = s.networks();
        assert_eq!(n.local, nets(&["10.0.1.0/24", "10.0.2.0/24"]));
        assert_eq!(n.remote, nets(&["10.9.0.0/16", "10.8.0.0/16", "10.7.0.7/32"]));
    }

    #[test]
    fn legacy_service_subnet_to_peer_cidrs() {
        let c = Connection {
            peer_cidrs: nets(&["2001:db8:1::1/64", "2001:db8:1::/64"]),
            ..Connection::default()
        };
        let service = VpnService {
            subnet_id: Some("s2".into()),
            ..VpnService::default()
        };
        let s = selectors(&c, &service, &refs());
        assert_eq!(s.local, nets(&["10.0.2.5/24"]));
        assert_eq!(s.remote, nets(&["2001:db8:1::1/64", "2001:db8:1::/64"]));
        // Two spellings of one network are one selector for charon.
        assert_eq!(s.networks().remote, nets(&["2001:db8:1::/64"]));
        let none = selectors(&c, &service, &Refs::default());
        assert!(none.local.is_empty());
    }

    #[test]
    fn enabled_protect_rules_in_order_without_duplicates() {
        let c = Connection {
            local_endpoint_id: Some("l".into()),
            policy_rules: vec![
                rule(&["10.0.1.0/24"], &["10.0.9.0/24"], true, RuleAction::Protect),
                rule(&["10.7.0.0/16"], &["10.8.0.0/16"], false, RuleAction::Protect),
                rule(&["10.6.0.0/16"], &["10.5.0.0/16"], true, RuleAction::Bypass),
                rule(
                    &["10.0.1.0/24", "10.0.3.0/24"],
                    &["10.0.9.0/24"],
                    true,
                    RuleAction::Protect,
                ),
            ],
            ..Connection::default()
        };
        let s = selectors(&c, &VpnService::default(), &Refs::default());
        assert_eq!(s.local, nets(&["10.0.1.0/24", "10.0.3.0/24"]));
        assert_eq!(s.remote, nets(&["10.0.9.0/24"]));
    }

    #[test]
    fn route_based_is_everything_of_the_peer_version() {
        let mut c = Connection {
            local_endpoint_id: Some("l".into()),
            route_based: true,
            peer_address: "192.0.2.1".into(),
            ..Connection::default()
        };
        let s = selectors(&c, &VpnService::default(), &Refs::default());
        assert_eq!((s.local, s.remote), (nets(&["0.0.0.0/0"]), nets(&["0.0.0.0/0"])));
        c.peer_address = "2001:db8::1".into();
        let s = selectors(&c, &VpnService::default(), &Refs::default());
        assert_eq!((s.local, s.remote), (nets(&["::/0"]), nets(&["::/0"])));
        // IPv4 routed over an IPv6 tunnel: both families.
        c.peer_cidrs = nets(&["10.9.0.0/24"]);
        let s = selectors(&c, &VpnService::default(), &Refs::default());
        assert_eq!(s.local, nets(&["0.0.0.0/0", "::/0"]));
        assert_eq!(s.remote, s.local);
    }
}
