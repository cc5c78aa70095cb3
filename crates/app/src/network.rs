//! The core network operations (Neutron's networks, subnets, routers and
//! router interfaces) over the canonical `Network`, `Subnet` and `Gateway`.
//!
//! Why they are operations of their own rather than plain [`App::create`] /
//! [`App::update`] edits: each of them reads and writes several objects in
//! one transaction — a router's external addresses are allocated from its
//! external network's subnets against every other gateway's, deleting a
//! network deletes its subnets, attaching an interface is a write to the
//! subnet checked against the router's other interfaces and, on removal,
//! against the VPN objects that use it. The operator's `vpnaas gateway` /
//! `vpnaas subnet` commands call the same operations ([`App::subnet_create`]).
//!
//! Neutron's rule that another project's object is indistinguishable from a
//! missing one holds here as everywhere: every lookup goes through the
//! caller's [`Scope`], except that external networks are visible to every
//! project (as in Neutron, whose policy lets anyone read them).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use model::nsx::SYSTEM_USER;
use model::*;
use store::{NewMeta, Scope, Tx, WriteCtx};

use crate::{App, Check, Dialect, Rules, Written, finish};

/// A router's requested external side (Neutron `external_gateway_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalGateway {
    /// The external network the addresses come from.
    pub network_id: String,
    /// Shown as given; vpnaas does no NAT.
    pub enable_snat: bool,
    /// Addresses asked for; empty: one address per IP version of the network.
    pub fixed_ips: Vec<FixedIpRequest>,
}

/// One entry of `external_fixed_ips` in a request: a subnet, an address, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedIpRequest {
    /// The external subnet to allocate from.
    pub subnet_id: Option<String>,
    /// The address wanted.
    pub ip_address: Option<IpAddr>,
}

/// What a router update does to its external side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayChange {
    /// Leave it as it is.
    Keep,
    /// Remove it (`external_gateway_info: {}` or null).
    Clear,
    /// Set it (again): same network keeps its addresses unless others are asked for.
    Set(ExternalGateway),
}

/// Whether two prefixes share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Every subnet of a network, read in the transaction (through the references
/// the subnets hold, so one indexed query plus one read per subnet).
pub(crate) async fn subnets_of_in_txn(tx: &mut Tx<'_>, network_id: &str) -> Result<Vec<Record<Subnet>>> {
    let mut out = Vec::new();
    for (kind, id) in tx.users_of(network_id).await? {
        if kind == Kind::Subnet {
            out.push(tx.get::<Subnet>(&Scope::All, &id).await?);
        }
    }
    Ok(out)
}

/// A network the caller may use as a router's external network: its own, or
/// any external one (Neutron shows external networks to every project).
async fn external_network_in_txn(tx: &mut Tx<'_>, scope: &Scope, id: &str) -> Result<Record<Network>> {
    let net = tx
        .get::<Network>(&Scope::All, id)
        .await
        .map_err(|_| Error::not_found(Kind::Network, id))?;
    if !net.body.external {
        if !scope.allows(&net.meta.project_id) {
            return Err(Error::not_found(Kind::Network, id));
        }
        return Err(Violation::NetworkNotExternal {
            network: id.to_string(),
        }
        .into());
    }
    Ok(net)
}

/// The first use of `id` by an object of `user_kind`, if any.
async fn first_user_in_txn(tx: &mut Tx<'_>, id: &str, user_kind: Kind) -> Result<Option<String>> {
    Ok(tx
        .users_of(id)
        .await?
        .into_iter()
        .find(|(k, _)| *k == user_kind)
        .map(|(_, u)| u))
}

fn used_by(kind: Kind, id: &str, user_kind: Kind, user: String) -> Error {
    Error::UsedBy {
        kind,
        id: id.to_string(),
        user_kind,
        user,
    }
}

/// Allocates `gw`'s external addresses from `req`'s network: the addresses
/// asked for, else the next free host address of the first subnet of each IP
/// version that has one. Free means: not a subnet's gateway address and not
/// held by another gateway (read in the transaction, so two concurrent
/// allocations can't take the same address: writes serialize).
async fn allocate_in_txn(
    tx: &mut Tx<'_>,
    scope: &Scope,
    gateway_id: &str,
    req: &ExternalGateway,
    gw: &mut Gateway,
) -> Result<()> {
    let net = external_network_in_txn(tx, scope, &req.network_id).await?;
    let mut subnets = subnets_of_in_txn(tx, &net.meta.id).await?;
    subnets.sort_by(|a, b| (a.meta.created_at, &a.meta.id).cmp(&(b.meta.created_at, &b.meta.id)));
    let mut taken: BTreeSet<IpAddr> = BTreeSet::new();
    for s in &subnets {
        taken.extend(s.body.gateway_ip);
        for (kind, user) in tx.users_of(&s.meta.id).await? {
            if kind == Kind::Gateway && user != gateway_id {
                let other: Record<Gateway> = tx.get(&Scope::All, &user).await?;
                taken.extend(other.body.external_v4.map(IpAddr::V4));
                taken.extend(other.body.external_v6.map(IpAddr::V6));
            }
        }
    }
    let exhausted = || Error::AddressesExhausted {
        network: net.meta.id.clone(),
    };
    let mut picked: Vec<(String, IpAddr)> = Vec::new();
    if req.fixed_ips.is_empty() {
        for version in [4u8, 6] {
            let of_version: Vec<&Record<Subnet>> = subnets
                .iter()
                .filter(|s| s.body.ip_version() == version)
                .collect();
            if of_version.is_empty() {
                continue;
            }
            let found = of_version.iter().find_map(|s| {
                hosts(&s.body.cidr)
                    .find(|a| !taken.contains(a))
                    .map(|a| (s.meta.id.clone(), a))
            });
            picked.push(found.ok_or_else(exhausted)?);
        }
        if picked.is_empty() {
            return Err(exhausted());
        }
    } else {
        for f in &req.fixed_ips {
            let subnet = match (&f.subnet_id, f.ip_address) {
                (Some(id), _) => subnets.iter().find(|s| &s.meta.id == id),
                (None, Some(ip)) => subnets.iter().find(|s| s.body.cidr.contains(&ip)),
                (None, None) => None,
            };
            let Some(subnet) = subnet else {
                return Err(Violation::AddressNotInSubnet {
                    address: f.ip_address.map(|a| a.to_string()).unwrap_or_default(),
                    subnet: f.subnet_id.clone().unwrap_or_default(),
                }
                .into());
            };
            let ip = match f.ip_address {
                Some(ip) if !subnet.body.cidr.contains(&ip) => {
                    return Err(Violation::AddressNotInSubnet {
                        address: ip.to_string(),
                        subnet: subnet.meta.id.clone(),
                    }
                    .into());
                }
                Some(ip) if taken.contains(&ip) => return Err(exhausted()),
                Some(ip) => ip,
                None => hosts(&subnet.body.cidr)
                    .find(|a| !taken.contains(a))
                    .ok_or_else(exhausted)?,
            };
            taken.insert(ip);
            picked.push((subnet.meta.id.clone(), ip));
        }
    }
    gw.clear_external();
    for (subnet_id, ip) in picked {
        match ip {
            IpAddr::V4(a) if gw.external_v4.is_none() => {
                gw.external_v4 = Some(a);
                gw.external_v4_subnet_id = Some(subnet_id);
            }
            IpAddr::V6(a) if gw.external_v6.is_none() => {
                gw.external_v6 = Some(a);
                gw.external_v6_subnet_id = Some(subnet_id);
            }
            _ => {
                return Err(Error::Unsupported(
                    "a router has at most one external address per IP version on this server".into(),
                ));
            }
        }
    }
    gw.external_network_id = Some(net.meta.id);
    gw.enable_snat = req.enable_snat;
    Ok(())
}

/// Refuses while a VPN service lives on the gateway (neutron-vpnaas's
/// `RouterInUseByVPNService`).
async fn no_service_in_txn(tx: &mut Tx<'_>, gateway_id: &str) -> Result<()> {
    match first_user_in_txn(tx, gateway_id, Kind::VpnService).await? {
        Some(svc) => Err(used_by(Kind::Gateway, gateway_id, Kind::VpnService, svc)),
        None => Ok(()),
    }
}

impl App {
    /// Deletes a network and its subnets (Neutron's cascade), refused while
    /// any of them is in use: attached to a router, used by a VPN object, or
    /// giving a gateway its external address (`NetworkInUse`).
    pub async fn network_delete(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
    ) -> Result<Written<Record<Network>>> {
        let mut tx = self.store.begin(w).await?;
        tx.get::<Network>(scope, id).await?;
        let subnets = subnets_of_in_txn(&mut tx, id).await?;
        for s in &subnets {
            if s.body.gateway_id.is_some() || tx.is_referenced(&s.meta.id).await? {
                return Err(Error::in_use(Kind::Network, id));
            }
        }
        if first_user_in_txn(&mut tx, id, Kind::Gateway).await?.is_some() {
            return Err(Error::in_use(Kind::Network, id));
        }
        for s in &subnets {
            tx.delete::<Subnet>(&Scope::All, &s.meta.id).await?;
        }
        let rec = tx.delete::<Network>(scope, id).await?;
        finish(tx, rec).await
    }

    /// Deletes a subnet, refused while attached to a router (`SubnetInUse`,
    /// as Neutron's router interface port holds it) or used by anything.
    pub async fn subnet_delete(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
    ) -> Result<Written<Record<Subnet>>> {
        let mut tx = self.store.begin(w).await?;
        let s: Record<Subnet> = tx.get(scope, id).await?;
        if s.body.gateway_id.is_some() {
            return Err(Error::in_use(Kind::Subnet, id));
        }
        let rec = tx.delete::<Subnet>(scope, id).await?;
        finish(tx, rec).await
    }

    /// Creates a router (gateway), with its external addresses allocated from
    /// `external`'s network when given.
    pub async fn router_create(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        meta: NewMeta,
        admin_state_up: bool,
        external: Option<ExternalGateway>,
    ) -> Result<Written<Record<Gateway>>> {
        let mut tx = self.store.begin(w).await?;
        let mut body = Gateway {
            admin_state_up,
            ..Gateway::default()
        };
        if let Some(req) = &external {
            allocate_in_txn(&mut tx, scope, "", req, &mut body).await?;
        }
        let rec = tx.insert(meta, body).await?;
        finish(tx, rec).await
    }

    /// Updates a router visible to `scope`: `edit` changes its names and
    /// `admin_state_up`, `gateway` its external side. Clearing or moving the
    /// external side is refused while a VPN service lives on the router.
    pub async fn router_update(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
        edit: impl FnOnce(&mut Record<Gateway>),
        gateway: GatewayChange,
    ) -> Result<Written<Record<Gateway>>> {
        let mut tx = self.store.begin(w).await?;
        let mut rec: Record<Gateway> = tx.get(scope, id).await?;
        edit(&mut rec);
        match gateway {
            GatewayChange::Keep => {}
            GatewayChange::Clear => {
                if rec.body.has_external() || rec.body.external_network_id.is_some() {
                    no_service_in_txn(&mut tx, id).await?;
                    rec.body.clear_external();
                }
            }
            GatewayChange::Set(req) => {
                let same = rec.body.external_network_id.as_deref() == Some(req.network_id.as_str());
                if same && req.fixed_ips.is_empty() {
                    rec.body.enable_snat = req.enable_snat;
                } else {
                    if rec.body.has_external() {
                        no_service_in_txn(&mut tx, id).await?;
                    }
                    allocate_in_txn(&mut tx, scope, id, &req, &mut rec.body).await?;
                }
            }
        }
        let rec = tx.update(rec).await?;
        finish(tx, rec).await
    }

    /// Deletes a router: refused while a VPN service lives on it
    /// (`RouterInUseByVPNService`) or it has interfaces (`RouterInUse`).
    pub async fn router_delete(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
    ) -> Result<Written<Record<Gateway>>> {
        let mut tx = self.store.begin(w).await?;
        tx.get::<Gateway>(scope, id).await?;
        no_service_in_txn(&mut tx, id).await?;
        let rec = tx.delete::<Gateway>(scope, id).await?;
        finish(tx, rec).await
    }

    /// Attaches a subnet to a router (Neutron `add_router_interface`): both
    /// visible to `scope`; the subnet on no router yet, with a gateway
    /// address, and not overlapping the router's other interfaces.
    pub async fn router_add_interface(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<Written<Record<Subnet>>> {
        let mut tx = self.store.begin(w).await?;
        tx.get::<Gateway>(scope, router_id).await?;
        let mut subnet: Record<Subnet> = tx.get(scope, subnet_id).await?;
        attachable_in_txn(&mut tx, router_id, subnet_id, &subnet.body).await?;
        subnet.body.gateway_id = Some(router_id.to_string());
        let rec = tx.update(subnet).await?;
        finish(tx, rec).await
    }

    /// Detaches a subnet from a router (Neutron `remove_router_interface`),
    /// refused while a VPN service of the router names it or an endpoint
    /// group lists it (neutron-vpnaas's `SubnetInUseByVPNService` /
    /// `SubnetInUseByEndpointGroup`).
    pub async fn router_remove_interface(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<Written<Record<Subnet>>> {
        let mut tx = self.store.begin(w).await?;
        tx.get::<Gateway>(scope, router_id).await?;
        let mut subnet: Record<Subnet> = tx.get(scope, subnet_id).await?;
        if !subnet.body.is_on(router_id) {
            return Err(Error::InterfaceNotFound {
                router: router_id.to_string(),
                subnet: subnet_id.to_string(),
            });
        }
        for (kind, user) in tx.users_of(subnet_id).await? {
            match kind {
                Kind::VpnService | Kind::EndpointGroup => {
                    return Err(used_by(Kind::Subnet, subnet_id, kind, user));
                }
                _ => {}
            }
        }
        subnet.body.gateway_id = None;
        let rec = tx.update(subnet).await?;
        finish(tx, rec).await
    }

    /// Registers an internal subnet on a gateway (the operator's `vpnaas
    /// subnet create`): the subnet is created in the gateway's own network
    /// (made on first use, with a derived id: [`gateway_network_id`]) and
    /// attached to the gateway, under the same rules as Neutron's subnet
    /// create and `add_router_interface`, in one transaction. It belongs to
    /// the gateway's project.
    pub async fn subnet_create(
        &self,
        w: &WriteCtx,
        name: &str,
        gateway_id: &str,
        cidr: IpNet,
    ) -> Result<Written<Record<Subnet>>> {
        let mut tx = self.store.begin(w).await?;
        let gw: Record<Gateway> = tx.get(&Scope::All, gateway_id).await?;
        let network_id = ensure_gateway_network_in_txn(&mut tx, &gw).await?;
        let meta = NewMeta {
            id: None,
            project_id: gw.meta.project_id.clone(),
            name: name.to_string(),
            description: String::new(),
        };
        let mut body = Subnet::attached(&network_id, &gw.meta.id, cidr);
        body.gateway_id = None;
        body.check(Check {
            tx: &mut tx,
            scope: &Scope::All,
            dialect: Dialect::Admin,
            creating: true,
            name,
            id: "",
        })
        .await?;
        attachable_in_txn(&mut tx, &gw.meta.id, "", &body).await?;
        body.gateway_id = Some(gw.meta.id.clone());
        let rec = tx.insert(meta, body).await?;
        finish(tx, rec).await
    }

    /// Gives every subnet stored before networks existed a network: the
    /// network of its gateway ([`gateway_network_id`], made if missing), as
    /// `vpnaas subnet create` does today. Idempotent and cheap once done (one
    /// list of subnets); the server runs it on start. Returns how many
    /// subnets it moved.
    pub async fn upgrade_core_network(&self) -> Result<usize> {
        let legacy: Vec<Record<Subnet>> = self
            .store
            .list::<Subnet>(&Scope::All)
            .await?
            .into_iter()
            .filter(|s| s.body.network_id.is_empty())
            .collect();
        if legacy.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin(&WriteCtx::new(SYSTEM_USER)).await?;
        let mut moved = 0;
        for s in legacy {
            let mut cur: Record<Subnet> = tx.get(&Scope::All, &s.meta.id).await?;
            if !cur.body.network_id.is_empty() {
                continue;
            }
            let Some(gateway_id) = cur.body.gateway_id.clone() else {
                continue;
            };
            let gw: Record<Gateway> = tx.get(&Scope::All, &gateway_id).await?;
            cur.body.network_id = ensure_gateway_network_in_txn(&mut tx, &gw).await?;
            tx.update(cur).await?;
            moved += 1;
        }
        tx.commit().await?;
        Ok(moved)
    }
}

/// The rules of attaching `subnet` to `router_id` (Neutron's messages):
/// not on a router yet, has a gateway address, doesn't overlap the router's
/// other interfaces.
async fn attachable_in_txn(tx: &mut Tx<'_>, router_id: &str, subnet_id: &str, subnet: &Subnet) -> Result<()> {
    if let Some(on) = &subnet.gateway_id {
        return Err(Violation::SubnetAlreadyAttached {
            subnet: subnet_id.to_string(),
            router: on.clone(),
        }
        .into());
    }
    if subnet.gateway_ip.is_none() {
        return Err(Violation::SubnetHasNoGatewayIp {
            subnet: subnet_id.to_string(),
        }
        .into());
    }
    for (kind, other_id) in tx.users_of(router_id).await? {
        if kind != Kind::Subnet || other_id == subnet_id {
            continue;
        }
        let other: Record<Subnet> = tx.get(&Scope::All, &other_id).await?;
        if other.body.is_on(router_id) && overlaps(&other.body.cidr, &subnet.cidr) {
            return Err(Violation::SubnetOverlapsRouterInterface {
                subnet: subnet_id.to_string(),
                cidr: subnet.cidr.to_string(),
                other: other.meta.id.clone(),
                other_cidr: other.body.cidr.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// The network of `gw`'s operator-made subnets, created (in `gw`'s project,
/// named after it) if it does not exist yet.
async fn ensure_gateway_network_in_txn(tx: &mut Tx<'_>, gw: &Record<Gateway>) -> Result<String> {
    let id = gateway_network_id(&gw.meta.id);
    if tx.get::<Network>(&Scope::All, &id).await.is_err() {
        tx.insert(
            NewMeta {
                id: Some(id.clone()),
                project_id: gw.meta.project_id.clone(),
                name: format!("{}-internal", gw.meta.name),
                description: format!("Internal subnets of gateway {}", gw.meta.id),
            },
            Network {
                admin_state_up: true,
                external: false,
            },
        )
        .await?;
    }
    Ok(id)
}
