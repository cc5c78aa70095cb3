//! The cross-object rules of each kind, run inside the write transaction.
//!
//! Single-object rules are pure functions in `model::validate` (Neutron's) and
//! `model::nsx` (NSX's); this module loads what they need, by key, through the
//! transaction, and calls them. Which rules apply depends on which API asked
//! ([`Dialect`]): the two APIs describe the same canonical objects but refuse
//! different things (NSX can't name every algorithm Neutron can; Neutron checks
//! that what a request references is visible to its caller).

use std::time::Duration;

use model::nsx::*;
use model::validate;
use model::*;
use store::{Body, Scope, Tx};

/// Which API's rules a write follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenStack Neutron VPNaaS: references must be visible to the caller.
    Neutron,
    /// NSX Manager: admin only, NSX's value ranges and shapes.
    Nsx,
    /// The operator's own commands (`vpnaas gateway|subnet ...`): no API rules.
    Admin,
}

/// What a rule check knows about the write it is part of.
pub struct Check<'a, 'c> {
    /// The write transaction: every read a rule needs goes through it.
    pub tx: &'a mut Tx<'c>,
    /// What the caller may see (references outside it are missing).
    pub scope: &'a Scope,
    /// Whose rules apply.
    pub dialect: Dialect,
    /// Whether the object is being created (else updated with a changed body).
    pub creating: bool,
    /// The object's name, for messages that quote it.
    pub name: &'a str,
    /// The object's id; empty on a create whose id the store generates.
    pub id: &'a str,
}

/// The rules of one kind. `check` runs on a create, and on an update whose
/// body changed (an edit of names alone never fails on a rule the object was
/// created without, e.g. through the other API).
pub trait Rules: Body + PartialEq {
    /// Whether bodies of this kind may name a peer by DNS name (resolved before
    /// the transaction, see [`crate::peer`]).
    const RESOLVES_PEER: bool = false;

    /// A peer DNS name this body asks for and that is not resolved yet.
    fn unresolved_peer(&self) -> Option<&str> {
        None
    }

    /// Puts the address a name resolved to in place of the name.
    fn set_peer(&mut self, _ip: std::net::IpAddr) {}

    /// Checks (and, for derived kinds, fills in) the body before it is written.
    fn check(&mut self, cx: Check<'_, '_>) -> impl Future<Output = Result<()>> + Send;

    /// The Neutron status of `rec` from what its gateway's nodes report, read
    /// inside the transaction; `None` for kinds without a status.
    fn status(
        _rec: &Record<Self>,
        _tx: &mut Tx<'_>,
        _node_timeout: Duration,
    ) -> impl Future<Output = Result<Option<Status>>> + Send {
        async { Ok(None) }
    }
}

/// A status index over one gateway's nodes, read in the transaction.
async fn gateway_status(
    tx: &mut Tx<'_>,
    gateway_id: &str,
    timeout: Duration,
) -> Result<realize::StatusIndex> {
    let nodes = tx.node_states(gateway_id).await?;
    let generation = tx.gateway_generation(gateway_id).await?;
    let gens = std::iter::once((gateway_id.to_string(), generation)).collect();
    Ok(realize::StatusIndex::new(nodes, gens, timeout, store::now_ms()))
}

impl Rules for IkePolicy {
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        match cx.dialect {
            Dialect::Nsx => model::nsx::ike_profile(self),
            Dialect::Neutron | Dialect::Admin => Ok(()),
        }
    }
}

impl Rules for IpsecPolicy {
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        match cx.dialect {
            Dialect::Nsx => model::nsx::tunnel_profile(self),
            Dialect::Neutron | Dialect::Admin => Ok(()),
        }
    }
}

impl Rules for DpdProfile {
    async fn check(&mut self, _: Check<'_, '_>) -> Result<()> {
        model::nsx::dpd_profile(self)
    }
}

impl Rules for Gateway {
    /// A gateway's external side is written only by the router operations of
    /// [`crate::network`] (which allocate its addresses in the transaction).
    async fn check(&mut self, _: Check<'_, '_>) -> Result<()> {
        Ok(())
    }
}

impl Rules for Network {
    /// A network that gateways take their addresses from stays external.
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        if !self.external && !cx.id.is_empty() {
            for (kind, user) in cx.tx.users_of(cx.id).await? {
                if kind == Kind::Gateway {
                    return Err(Error::UsedBy {
                        kind: Kind::Network,
                        id: cx.id.to_string(),
                        user_kind: kind,
                        user,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Rules for Subnet {
    /// Its network must be visible to the caller (operator writes: any), its
    /// gateway address inside its prefix, and on a create its prefix must not
    /// overlap another subnet of the network (Neutron's rule; the prefix can't
    /// change afterwards).
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        let scope = match cx.dialect {
            Dialect::Neutron => cx.scope,
            Dialect::Nsx | Dialect::Admin => &Scope::All,
        };
        if let Some(ip) = self.gateway_ip
            && !self.cidr.contains(&ip)
        {
            return Err(Error::field(
                "gateway_ip",
                format!("Gateway IP {ip} is not in subnet {}", self.cidr),
            ));
        }
        if let Some(g) = &self.gateway_id {
            cx.tx.get::<Gateway>(&Scope::All, g).await?;
        }
        if self.network_id.is_empty() {
            // A row from before networks; `App::upgrade_core_network` gives it one.
            return Ok(());
        }
        if cx.creating {
            cx.tx.get::<Network>(scope, &self.network_id).await?;
            for other in crate::network::subnets_of_in_txn(cx.tx, &self.network_id).await? {
                if other.meta.id != cx.id && crate::network::overlaps(&other.body.cidr, &self.cidr) {
                    return Err(Violation::SubnetOverlap {
                        cidr: self.cidr.to_string(),
                        network: self.network_id.clone(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }
}

impl Rules for VpnService {
    /// Neutron: the router (and subnet) must be visible to the caller, and
    /// only create checks them (an update changes names and `admin_state_up`).
    /// NSX: any gateway, and the bypass rules NSX documents.
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        let scope = match cx.dialect {
            Dialect::Neutron if !cx.creating => return Ok(()),
            Dialect::Neutron => cx.scope,
            Dialect::Nsx | Dialect::Admin => &Scope::All,
        };
        let gateway: Record<Gateway> = cx.tx.get(scope, &self.router_id).await?;
        let subnet = match &self.subnet_id {
            Some(id) => Some(cx.tx.get::<Subnet>(scope, id).await?),
            None => None,
        };
        validate::vpn_service(self, &gateway, subnet.as_ref())?;
        if cx.dialect == Dialect::Nsx {
            model::nsx::bypass_rules(&self.bypass_rules)?;
        }
        Ok(())
    }

    async fn status(rec: &Record<Self>, tx: &mut Tx<'_>, timeout: Duration) -> Result<Option<Status>> {
        let index = gateway_status(tx, &rec.body.router_id, timeout).await?;
        Ok(Some(index.service(rec)))
    }
}

impl Rules for EndpointGroup {
    /// Subnet endpoints must be subnets the caller can see (checked on create:
    /// a group's type and endpoints can't change).
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        if !cx.creating {
            return Ok(());
        }
        let mut known = Vec::new();
        if self.endpoint_type == EndpointType::Subnet {
            for e in &self.endpoints {
                if validate::is_uuid_like(e) && cx.tx.get::<Subnet>(cx.scope, e).await.is_ok() {
                    known.push(e.clone());
                }
            }
        }
        let name = if cx.name.is_empty() {
            "endpoint group"
        } else {
            cx.name
        };
        validate::endpoint_group(name, self, |id| known.iter().any(|k| k == id))
    }
}

impl Rules for LocalEndpoint {
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        cx.tx.get::<VpnService>(&Scope::All, &self.vpnservice_id).await?;
        Ok(())
    }
}

impl Rules for PeerEndpoint {
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        if self.peer_address.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::field("peer_address", "must be an IP address"));
        }
        if self.psk.expose().is_empty() {
            return Err(Error::field("psk", "a pre-shared key is required"));
        }
        cx.tx.get::<IkePolicy>(&Scope::All, &self.ikepolicy_id).await?;
        cx.tx
            .get::<IpsecPolicy>(&Scope::All, &self.ipsecpolicy_id)
            .await?;
        cx.tx.get::<DpdProfile>(&Scope::All, &self.dpd_profile_id).await?;
        Ok(())
    }
}

impl Rules for SystemDefaults {
    async fn check(&mut self, _: Check<'_, '_>) -> Result<()> {
        Ok(())
    }
}

impl Rules for Connection {
    const RESOLVES_PEER: bool = true;

    /// A Neutron-form connection's peer may be a name; an endpoint-form one
    /// takes its (IP) peer from its peer endpoint in the transaction.
    fn unresolved_peer(&self) -> Option<&str> {
        let a = self.peer_address.as_str();
        (!self.is_endpoint_form() && a.parse::<std::net::IpAddr>().is_err()).then_some(a)
    }

    fn set_peer(&mut self, ip: std::net::IpAddr) {
        self.peer_address = ip.to_string();
    }

    /// An endpoint-form connection (an NSX session) takes its peer, key, DPD
    /// and local side from its endpoints, whichever API writes it; a
    /// Neutron-form one gets every rule Neutron applies when Neutron writes it
    /// (through NSX only its names, `enabled` and tags change).
    async fn check(&mut self, cx: Check<'_, '_>) -> Result<()> {
        if self.is_endpoint_form() {
            derive_session(cx.tx, self).await?;
            check_session(cx.tx, self).await?;
            return allocate_if_id(cx.tx, self, cx.id).await;
        }
        match cx.dialect {
            Dialect::Neutron => check_neutron_connection(cx.tx, cx.scope, self).await?,
            Dialect::Nsx | Dialect::Admin => {}
        }
        // A Neutron connection in route mode (ours) gets its interface id as
        // an NSX route-based session does.
        allocate_if_id(cx.tx, self, cx.id).await
    }

    async fn status(rec: &Record<Self>, tx: &mut Tx<'_>, timeout: Duration) -> Result<Option<Status>> {
        let service: Record<VpnService> = tx.get(&Scope::All, &rec.body.vpnservice_id).await?;
        let index = gateway_status(tx, &service.body.router_id, timeout).await?;
        Ok(Some(index.connection(rec, Some(&service))))
    }
}

/// Copies into an endpoint-form connection what its endpoints (and the peer's
/// DPD profile) say. The copy is what makes one connection object enough for
/// realization, whichever API made it; [`crate::App::update`] re-derives every
/// copy in the transaction that changes what it was copied from.
pub(crate) async fn derive_session(tx: &mut Tx<'_>, conn: &mut Connection) -> Result<()> {
    let (Some(lid), Some(pid)) = (conn.local_endpoint_id.clone(), conn.peer_endpoint_id.clone()) else {
        return Ok(());
    };
    let local: Record<LocalEndpoint> = tx.get(&Scope::All, &lid).await?;
    let peer: Record<PeerEndpoint> = tx.get(&Scope::All, &pid).await?;
    let dpd: Record<DpdProfile> = tx.get(&Scope::All, &peer.body.dpd_profile_id).await?;
    conn.vpnservice_id = local.body.vpnservice_id;
    conn.local_id = local.body.local_id;
    conn.local_address = Some(local.body.local_address);
    conn.peer_address = peer.body.peer_address;
    conn.peer_id = peer.body.peer_id;
    conn.psk = peer.body.psk;
    conn.initiator = peer.body.initiator;
    conn.ikepolicy_id = peer.body.ikepolicy_id;
    conn.ipsecpolicy_id = peer.body.ipsecpolicy_id;
    conn.dpd = dpd.body.settings();
    Ok(())
}

/// Checks a route-based connection against its gateway's addresses and
/// subnets ([`model::nsx::route_based_on_gateway`]) and other route-based
/// connections ([`model::nsx::route_based_neighbours`]), and gives it its
/// interface id on the gateway, inside the write transaction (writers are
/// serialized, so two creates can't pick the same number): it keeps the one it has unless another route-based
/// connection of the same gateway holds it (the connection moved to another
/// gateway's service), else gets the lowest free number, never 0. The
/// numbers of the gateway's other connections are read through every
/// service of the gateway, by reference. A policy-based connection holds 0.
pub(crate) async fn allocate_if_id(tx: &mut Tx<'_>, conn: &mut Connection, own_id: &str) -> Result<()> {
    if !conn.route_based {
        conn.if_id = 0;
        return Ok(());
    }
    let service: Record<VpnService> = tx.get(&Scope::All, &conn.vpnservice_id).await?;
    let router = service.body.router_id.clone();
    let gateway: Record<Gateway> = tx.get(&Scope::All, &router).await?;
    let external: Vec<std::net::IpAddr> = [
        gateway.body.external_v4.map(Into::into),
        gateway.body.external_v6.map(Into::into),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut internal = Vec::new();
    let mut taken = std::collections::BTreeSet::new();
    let users = tx.users_of(&router).await?;
    for (kind, id) in &users {
        if *kind == Kind::Subnet {
            let subnet: Record<Subnet> = tx.get(&Scope::All, id).await?;
            if subnet.body.is_on(&router) {
                internal.push(subnet.body.cidr);
            }
        }
    }
    model::nsx::route_based_on_gateway(conn, &external, &internal)?;
    for (kind, sid) in users {
        if kind != Kind::VpnService {
            continue;
        }
        for (kind, cid) in tx.users_of(&sid).await? {
            if kind != Kind::Connection || cid == own_id {
                continue;
            }
            let other: Record<Connection> = tx.get(&Scope::All, &cid).await?;
            model::nsx::route_based_neighbours(conn, &other.body)?;
            if other.body.route_based && other.body.if_id != 0 {
                taken.insert(other.body.if_id);
            }
        }
    }
    if conn.if_id != 0 && !taken.contains(&conn.if_id) {
        return Ok(());
    }
    conn.if_id = (1..=u32::MAX)
        .find(|n| !taken.contains(n))
        .ok_or_else(|| Error::field("tunnel_ports", "the gateway has no free interface id left"))?;
    Ok(())
}

/// Every rule of an endpoint-form connection, with what it refers to loaded.
pub(crate) async fn check_session(tx: &mut Tx<'_>, conn: &Connection) -> Result<()> {
    let service: Record<VpnService> = tx.get(&Scope::All, &conn.vpnservice_id).await?;
    tx.get::<IkePolicy>(&Scope::All, &conn.ikepolicy_id).await?;
    let ipsec: Record<IpsecPolicy> = tx.get(&Scope::All, &conn.ipsecpolicy_id).await?;
    let gateway: Record<Gateway> = tx.get(&Scope::All, &service.body.router_id).await?;
    model::nsx::session(conn, &ipsec.body)?;
    if conn.local_address.is_none()
        && let Ok(peer) = conn.peer_address.parse()
    {
        validate::peer_address_family(peer, &gateway)?;
    }
    Ok(())
}

/// Every rule Neutron applies to a connection, in Neutron's order; what the
/// caller names must be visible to it.
async fn check_neutron_connection(tx: &mut Tx<'_>, scope: &Scope, conn: &Connection) -> Result<()> {
    let service: Record<VpnService> = tx.get(scope, &conn.vpnservice_id).await?;
    let _ike: Record<IkePolicy> = tx.get(scope, &conn.ikepolicy_id).await?;
    let ipsec: Record<IpsecPolicy> = tx.get(scope, &conn.ipsecpolicy_id).await?;
    validate::connection_mode(conn, &service.body)?;
    let gateway: Record<Gateway> = tx.get(&Scope::All, &service.body.router_id).await?;
    let service_subnet = match &service.body.subnet_id {
        Some(id) => Some(tx.get::<Subnet>(&Scope::All, id).await?),
        None => None,
    };
    let local_group = match &conn.local_ep_group_id {
        Some(id) => Some(tx.get::<EndpointGroup>(scope, id).await?),
        None => None,
    };
    let peer_group = match &conn.peer_ep_group_id {
        Some(id) => Some(tx.get::<EndpointGroup>(scope, id).await?),
        None => None,
    };
    let mut subnets = Vec::new();
    if let Some(g) = &local_group
        && g.body.endpoint_type == EndpointType::Subnet
    {
        for id in &g.body.endpoints {
            subnets.push(tx.get::<Subnet>(&Scope::All, id).await?);
        }
    }
    let refs = validate::ConnectionRefs {
        service: &service,
        gateway: &gateway,
        ipsec_policy: &ipsec,
        service_subnet: service_subnet.as_ref(),
        local_group: local_group.as_ref(),
        peer_group: peer_group.as_ref(),
        local_group_subnets: subnets.iter().collect(),
    };
    validate::connection(conn, &refs)?;
    let peer: std::net::IpAddr = conn.peer_address.parse().map_err(|_| {
        Error::Invalid(Violation::PeerAddressUnresolved {
            address: conn.peer_address.clone(),
        })
    })?;
    validate::peer_address_family(peer, &gateway)
}
