//! Validation rules that need more than one attribute or more than one object.
//! Single-attribute checks (allowed values, ranges) are done while parsing, in the
//! API views, because each API words them differently; everything here is shared.
//!
//! The order of checks follows Neutron's (`vpn_db.py`, `vpn_validator.py`) so the
//! first error a client sees is the one Neutron would report.

use std::collections::HashSet;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::enums::*;
use crate::error::{Error, Result, Side, Violation};
use crate::resources::*;

/// Parses a prefix the way Neutron's validators do: `a.b.c.d/len` (host bits
/// allowed) or a bare address (a host prefix).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    if let Ok(net) = IpNet::from_str(s) {
        return Some(net);
    }
    IpAddr::from_str(s).ok().map(IpNet::from)
}

/// Neutron's `validate_subnet`: `address/prefix` (a bare address is no
/// subnet), an IPv4 one written as it prints.
pub fn is_neutron_cidr(s: &str) -> bool {
    s.contains('/')
        && match IpNet::from_str(s) {
            Ok(IpNet::V4(n)) => n.to_string() == s,
            Ok(IpNet::V6(_)) => true,
            Err(_) => false,
        }
}

/// Whether `s` looks like a UUID (with or without dashes), as oslo's `is_uuid_like`.
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Checks an endpoint group's endpoints. `subnet_exists` answers whether a subnet id
/// is known (the store passes a lookup); ids are UUID-checked first.
pub fn endpoint_group(
    group_name: &str,
    group: &EndpointGroup,
    subnet_exists: impl Fn(&str) -> bool,
) -> Result<()> {
    if group.endpoints.is_empty() {
        return Err(Violation::MissingEndpoints {
            group: group_name.to_string(),
        }
        .into());
    }
    let mut seen = HashSet::new();
    for e in &group.endpoints {
        if !seen.insert(e.as_str()) {
            return Err(Violation::InvalidEndpoint {
                endpoint: e.clone(),
                group_type: group.endpoint_type.to_string(),
                why: "Endpoints have to be unique".into(),
            }
            .into());
        }
    }
    match group.endpoint_type {
        EndpointType::Cidr => {
            for e in &group.endpoints {
                if !is_neutron_cidr(e) {
                    return Err(Violation::InvalidEndpoint {
                        endpoint: e.clone(),
                        group_type: "cidr".into(),
                        why: "Invalid CIDR".into(),
                    }
                    .into());
                }
            }
        }
        EndpointType::Subnet => {
            for e in &group.endpoints {
                if !is_uuid_like(e) {
                    return Err(Violation::InvalidEndpoint {
                        endpoint: e.clone(),
                        group_type: "subnet".into(),
                        why: "Invalid UUID".into(),
                    }
                    .into());
                }
                if !subnet_exists(e) {
                    return Err(Violation::SubnetNotFound { subnet: e.clone() }.into());
                }
            }
        }
        EndpointType::Network | EndpointType::Router | EndpointType::Vlan => {}
    }
    Ok(())
}

/// Checks a VPN service against its gateway (and legacy subnet, if any).
pub fn vpn_service(
    service: &VpnService,
    gateway: &Record<Gateway>,
    subnet: Option<&Record<Subnet>>,
) -> Result<()> {
    if !gateway.body.has_external() {
        return Err(Violation::RouterNotExternal {
            router: gateway.meta.id.clone(),
        }
        .into());
    }
    if let Some(s) = subnet
        && !s.body.is_on(&gateway.meta.id)
    {
        return Err(Violation::SubnetNotOnRouter {
            subnet: s.meta.id.clone(),
            router: gateway.meta.id.clone(),
        }
        .into());
    }
    let _ = service;
    Ok(())
}

/// Everything a connection refers to, loaded by the store.
pub struct ConnectionRefs<'a> {
    /// The connection's VPN service.
    pub service: &'a Record<VpnService>,
    /// The service's gateway.
    pub gateway: &'a Record<Gateway>,
    /// The connection's IPsec policy.
    pub ipsec_policy: &'a Record<IpsecPolicy>,
    /// The legacy service subnet, when the service has one.
    pub service_subnet: Option<&'a Record<Subnet>>,
    /// The local endpoint group, when the connection names one.
    pub local_group: Option<&'a Record<EndpointGroup>>,
    /// The peer endpoint group, when the connection names one.
    pub peer_group: Option<&'a Record<EndpointGroup>>,
    /// The subnets named by `local_group` (type subnet), in its order.
    pub local_group_subnets: Vec<&'a Record<Subnet>>,
}

fn side_of(local: bool, peer: bool) -> Option<Side> {
    match (local, peer) {
        (true, true) => Some(Side::Both),
        (true, false) => Some(Side::Local),
        (false, true) => Some(Side::Peer),
        (false, false) => None,
    }
}

/// Neutron's connection-mode rule: a service with a subnet (legacy) takes
/// peer_cidrs and no endpoint groups; otherwise both groups and no peer_cidrs.
pub fn connection_mode(conn: &Connection, service: &VpnService) -> Result<()> {
    if conn.is_endpoint_form() {
        // NSX form: traffic comes from policy rules / tunnel ports (crate::nsx::session).
        return Ok(());
    }
    if conn.route_based {
        // Route mode (ours): the selectors are everything, `peer_cidrs` are
        // routes, whether or not the service has a subnet.
        for (name, set) in [
            ("local_ep_group_id", conn.local_ep_group_id.is_some()),
            ("peer_ep_group_id", conn.peer_ep_group_id.is_some()),
        ] {
            if set {
                return Err(Error::field(
                    name,
                    "a connection in route mode routes its peer_cidrs into its tunnel interface; \
                     endpoint groups name the traffic of a static (policy-based) connection",
                ));
            }
        }
        return Ok(());
    }
    if !conn.tunnel_ports.is_empty() {
        return Err(Error::field(
            "tunnel_addresses",
            "only a connection in route mode (route_mode route) has a tunnel interface",
        ));
    }
    if service.subnet_id.is_some() {
        if conn.peer_cidrs.is_empty() {
            return Err(Violation::MissingPeerCidrs.into());
        }
        if let Some(side) = side_of(conn.local_ep_group_id.is_some(), conn.peer_ep_group_id.is_some()) {
            return Err(Violation::EndpointGroupWithSubnetService { side }.into());
        }
    } else {
        if !conn.peer_cidrs.is_empty() {
            return Err(Violation::PeerCidrsWithEndpointGroups.into());
        }
        if let Some(side) = side_of(conn.local_ep_group_id.is_none(), conn.peer_ep_group_id.is_none()) {
            return Err(Violation::MissingEndpointGroup { side }.into());
        }
    }
    Ok(())
}

fn same_version(nets: &[IpNet]) -> Option<u8> {
    let first = nets.first().map(ip_version)?;
    if nets.iter().all(|n| ip_version(n) == first) {
        Some(first)
    } else {
        None
    }
}

/// The DPD rule on its own (also used when only DPD changes).
pub fn dpd(d: &DpdSettings) -> Result<()> {
    if d.timeout <= d.interval {
        return Err(Violation::DpdTimeoutNotAboveInterval.into());
    }
    Ok(())
}

/// Full connection validation, after [`connection_mode`] and once all
/// references are loaded. Returns the local side's IP version.
pub fn connection(conn: &Connection, refs: &ConnectionRefs<'_>) -> Result<u8> {
    if conn.is_endpoint_form() {
        return crate::nsx::session(conn, &refs.ipsec_policy.body);
    }
    if refs.ipsec_policy.body.transform_protocol == TransformProtocol::AhEsp {
        return Err(Violation::IpsecUnsupported {
            resource: "IPsec Policy".into(),
            key: "transform_protocol".into(),
            value: "ah-esp".into(),
        }
        .into());
    }
    dpd(&conn.dpd)?;
    if conn.route_based {
        let version = route_mode(conn)?;
        return mtu(conn, version).map(|()| version);
    }

    let (local_version, peer_version) = if let Some(subnet) = refs.service_subnet {
        // Legacy mode: the service subnet is the local side, peer_cidrs the peer side.
        let peer = same_version(&conn.peer_cidrs).ok_or(Violation::MixedPeerCidrVersions)?;
        (subnet.body.ip_version(), peer)
    } else {
        let local = refs
            .local_group
            .ok_or(Violation::MissingEndpointGroup { side: Side::Local })?;
        let peer = refs
            .peer_group
            .ok_or(Violation::MissingEndpointGroup { side: Side::Peer })?;
        if local.body.endpoint_type != EndpointType::Subnet {
            return Err(Violation::WrongEndpointGroupType {
                group: local.meta.id.clone(),
                side: Side::Local,
                actual: local.body.endpoint_type.to_string(),
                expected: "subnet".into(),
            }
            .into());
        }
        if peer.body.endpoint_type != EndpointType::Cidr {
            return Err(Violation::WrongEndpointGroupType {
                group: peer.meta.id.clone(),
                side: Side::Peer,
                actual: peer.body.endpoint_type.to_string(),
                expected: "cidr".into(),
            }
            .into());
        }
        for s in &refs.local_group_subnets {
            if !s.body.is_on(&refs.gateway.meta.id) {
                return Err(Violation::SubnetNotOnRouter {
                    subnet: s.meta.id.clone(),
                    router: refs.gateway.meta.id.clone(),
                }
                .into());
            }
        }
        let local_nets: Vec<IpNet> = refs.local_group_subnets.iter().map(|s| s.body.cidr).collect();
        let local_version = same_version(&local_nets).ok_or_else(|| Violation::MixedEndpointVersions {
            group: local.meta.id.clone(),
        })?;
        let peer_nets: Vec<IpNet> = peer.body.endpoints.iter().filter_map(|e| parse_cidr(e)).collect();
        let peer_version = same_version(&peer_nets).ok_or_else(|| Violation::MixedEndpointVersions {
            group: peer.meta.id.clone(),
        })?;
        (local_version, peer_version)
    };
    if local_version != peer_version {
        return Err(Violation::MixedConnectionVersions.into());
    }
    mtu(conn, local_version)?;
    Ok(local_version)
}

/// The MTU rule: 0 (unset) or at least IPv4's 68 / IPv6's 1280.
fn mtu(conn: &Connection, ip_version: u8) -> Result<()> {
    let min_mtu = if ip_version == 6 { 1280 } else { 68 };
    if conn.mtu != 0 && conn.mtu < min_mtu {
        return Err(Violation::MtuTooSmall {
            mtu: conn.mtu,
            ip_version,
        }
        .into());
    }
    Ok(())
}

/// A Neutron connection in route mode (ours): its tunnel interface has at
/// least one address, its addresses obey [`crate::nsx::tunnel_interface`] and
/// its routed `peer_cidrs` [`crate::nsx::routed_peer_networks`]. Returns the
/// IP version of the outer (peer) address, or 4 while it is still a name.
fn route_mode(conn: &Connection) -> Result<u8> {
    let addresses: Vec<IpNet> = conn.tunnel_addresses().collect();
    if addresses.is_empty() {
        return Err(Error::field(
            "tunnel_addresses",
            "a connection in route mode needs the address of its tunnel interface, e.g. 169.254.10.1/30",
        ));
    }
    crate::nsx::tunnel_interface(conn)?;
    match conn.peer_address.parse::<IpAddr>() {
        Ok(peer) => {
            crate::nsx::routed_peer_networks(conn, peer)?;
            Ok(if peer.is_ipv6() { 6 } else { 4 })
        }
        // Resolved before the write; refused later if it is not.
        Err(_) => Ok(4),
    }
}

/// Checks that the gateway has an external address of the peer's IP version
/// (after the peer address has been resolved to an IP).
pub fn peer_address_family(peer: IpAddr, gateway: &Record<Gateway>) -> Result<()> {
    let ok = match peer {
        IpAddr::V4(_) => gateway.body.external_v4.is_some(),
        IpAddr::V6(_) => gateway.body.external_v6.is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(Violation::NoExternalAddress {
            router: gateway.meta.id.clone(),
            ip_version: if peer.is_ipv4() { 4 } else { 6 },
        }
        .into())
    }
}

/// Refuses updates while a status is in transition, as Neutron does.
pub fn updatable(status: Status, id: &str) -> Result<()> {
    if status.is_pending() {
        return Err(Error::Invalid(Violation::StateInvalidToUpdate {
            state: status.to_string(),
            id: id.to_string(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> Meta {
        Meta {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            revision: 0,
            generation: 1,
            created_at: 0,
            updated_at: 0,
            created_by: "t".into(),
            updated_by: "t".into(),
        }
    }

    fn conn() -> Connection {
        Connection {
            vpnservice_id: "s".into(),
            ikepolicy_id: "i".into(),
            ipsecpolicy_id: "p".into(),
            peer_address: "192.0.2.1".into(),
            peer_id: "192.0.2.1".into(),
            local_id: String::new(),
            psk: Psk("x".into()),
            initiator: Initiator::BiDirectional,
            dpd: DpdSettings::default(),
            mtu: 1500,
            admin_state_up: true,
            peer_cidrs: vec![],
            local_ep_group_id: Some("l".into()),
            peer_ep_group_id: Some("r".into()),
            ..Connection::default()
        }
    }

    struct Fixture {
        service: Record<VpnService>,
        gateway: Record<Gateway>,
        ipsec: Record<IpsecPolicy>,
        local: Record<EndpointGroup>,
        peer: Record<EndpointGroup>,
        subnet: Record<Subnet>,
    }

    fn fixture(peer_cidrs: &[&str]) -> Fixture {
        Fixture {
            service: Record {
                meta: meta("s"),
                body: VpnService {
                    router_id: "g".into(),
                    subnet_id: None,
                    flavor_id: None,
                    admin_state_up: true,
                    ..VpnService::default()
                },
            },
            gateway: Record {
                meta: meta("g"),
                body: Gateway::with_addresses(Some("198.51.100.1".parse().unwrap()), None),
            },
            ipsec: Record {
                meta: meta("p"),
                body: IpsecPolicy::default(),
            },
            local: Record {
                meta: meta("l"),
                body: EndpointGroup {
                    endpoint_type: EndpointType::Subnet,
                    endpoints: vec!["sub".into()],
                },
            },
            peer: Record {
                meta: meta("r"),
                body: EndpointGroup {
                    endpoint_type: EndpointType::Cidr,
                    endpoints: peer_cidrs.iter().map(|s| s.to_string()).collect(),
                },
            },
            subnet: Record {
                meta: meta("sub"),
                body: Subnet::attached("n", "g", "10.1.0.0/24".parse().unwrap()),
            },
        }
    }

    fn refs(f: &Fixture) -> ConnectionRefs<'_> {
        ConnectionRefs {
            service: &f.service,
            gateway: &f.gateway,
            ipsec_policy: &f.ipsec,
            service_subnet: None,
            local_group: Some(&f.local),
            peer_group: Some(&f.peer),
            local_group_subnets: vec![&f.subnet],
        }
    }

    #[test]
    fn valid_connection_passes() {
        let f = fixture(&["10.2.0.0/24"]);
        assert_eq!(connection(&conn(), &refs(&f)).unwrap(), 4);
    }

    #[test]
    fn dpd_timeout_must_exceed_interval() {
        let f = fixture(&["10.2.0.0/24"]);
        let mut c = conn();
        c.dpd.timeout = 30;
        assert!(matches!(
            connection(&c, &refs(&f)),
            Err(Error::Invalid(Violation::DpdTimeoutNotAboveInterval))
        ));
    }

    #[test]
    fn mtu_minimum_depends_on_version() {
        let f = fixture(&["10.2.0.0/24"]);
        let mut c = conn();
        c.mtu = 67;
        assert!(matches!(
            connection(&c, &refs(&f)),
            Err(Error::Invalid(Violation::MtuTooSmall {
                mtu: 67,
                ip_version: 4
            }))
        ));
        c.mtu = 68;
        assert!(connection(&c, &refs(&f)).is_ok());
        c.mtu = 0;
        assert!(connection(&c, &refs(&f)).is_ok());
    }

    #[test]
    fn mixed_versions_rejected() {
        let f = fixture(&["10.2.0.0/24", "2001:db8::/64"]);
        assert!(matches!(
            connection(&conn(), &refs(&f)),
            Err(Error::Invalid(Violation::MixedEndpointVersions { .. }))
        ));
        let f = fixture(&["2001:db8::/64"]);
        assert!(matches!(
            connection(&conn(), &refs(&f)),
            Err(Error::Invalid(Violation::MixedConnectionVersions))
        ));
    }

    #[test]
    fn mode_rules() {
        let f = fixture(&["10.2.0.0/24"]);
        let mut c = conn();
        c.peer_cidrs = vec!["10.9.0.0/24".parse().unwrap()];
        assert!(matches!(
            connection_mode(&c, &f.service.body),
            Err(Error::Invalid(Violation::PeerCidrsWithEndpointGroups))
        ));
        let mut c = conn();
        c.local_ep_group_id = None;
        c.peer_ep_group_id = None;
        assert!(matches!(
            connection_mode(&c, &f.service.body),
            Err(Error::Invalid(Violation::MissingEndpointGroup {
                side: Side::Both
            }))
        ));
        let mut legacy = f.service.body.clone();
        legacy.subnet_id = Some("sub".into());
        assert!(matches!(
            connection_mode(&conn(), &legacy),
            Err(Error::Invalid(Violation::MissingPeerCidrs))
        ));
    }

    #[test]
    fn endpoint_group_rules() {
        let g = EndpointGroup {
            endpoint_type: EndpointType::Cidr,
            endpoints: vec!["10.0.0.0/33".into()],
        };
        assert!(matches!(
            endpoint_group("g", &g, |_| true),
            Err(Error::Invalid(Violation::InvalidEndpoint { .. }))
        ));
        let g = EndpointGroup {
            endpoint_type: EndpointType::Cidr,
            endpoints: vec![],
        };
        assert!(matches!(
            endpoint_group("g", &g, |_| true),
            Err(Error::Invalid(Violation::MissingEndpoints { .. }))
        ));
        let g = EndpointGroup {
            endpoint_type: EndpointType::Subnet,
            endpoints: vec!["2f1e0c38-6f1b-4a53-9d1f-0c8c3b0f7a11".into()],
        };
        assert!(matches!(
            endpoint_group("g", &g, |_| false),
            Err(Error::Invalid(Violation::SubnetNotFound { .. }))
        ));
        assert_eq!(parse_cidr("10.0.0.1"), Some("10.0.0.1/32".parse().unwrap()));
        for ok in ["10.0.0.0/24", "10.0.0.1/24", "2000::/64", "2000::1/128"] {
            assert!(is_neutron_cidr(ok), "{ok}");
        }
        for bad in ["10.0.0.1", "2000::1", "10.0.0.0/33", "x/24", " 10.0.0.0/24"] {
            assert!(!is_neutron_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn peer_family_needs_gateway_address() {
        let f = fixture(&[]);
        assert!(peer_address_family("192.0.2.9".parse().unwrap(), &f.gateway).is_ok());
        assert!(matches!(
            peer_address_family("2001:db8::9".parse().unwrap(), &f.gateway),
            Err(Error::Invalid(Violation::NoExternalAddress { ip_version: 6, .. }))
        ));
    }
}
