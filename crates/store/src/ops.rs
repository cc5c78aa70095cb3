//! Resource operations: each is one transaction that loads what the model's rules
//! need, runs them, and writes. API crates call these and never write SQL.
//!
//! Updates take a closure that edits the current record, so the read, the rule
//! checks and the write happen under one write lock: no lost updates.

use std::net::IpAddr;

use model::validate;
use model::*;

use crate::{Body, NewMeta, Scope, Store, Tx, WriteCtx};

/// Result of a write: the record and the generation it committed as.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub record: T,
    pub generation: i64,
}

impl Store {
    async fn finish<T>(tx: Tx<'_>, record: T) -> Result<Written<T>> {
        let generation = tx.commit().await?;
        Ok(Written { record, generation })
    }

    /// Creates an object with no cross-object rules (policies).
    pub async fn simple_create<T: Body>(
        &self,
        w: &WriteCtx,
        meta: NewMeta,
        body: T,
    ) -> Result<Written<Record<T>>> {
        let mut tx = self.begin(w).await?;
        let rec = tx.insert(meta, body).await?;
        Self::finish(tx, rec).await
    }

    /// Updates a policy. Like Neutron, a policy used by a connection can't be
    /// changed. Visibility comes first: another project's policy is `NotFound`
    /// whether or not it is in use, exactly like a missing one (Neutron's API
    /// layer fetches the object for its policy check before the plugin's in-use
    /// check runs).
    pub async fn policy_update<T: Body>(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
        edit: impl FnOnce(&mut Record<T>) -> Result<()>,
    ) -> Result<Written<Record<T>>> {
        let mut tx = self.begin(w).await?;
        let mut rec: Record<T> = tx.get(scope, id).await?;
        if tx.is_referenced(id).await? {
            return Err(Error::in_use(T::KIND, id));
        }
        edit(&mut rec)?;
        let rec = tx.update(rec).await?;
        Self::finish(tx, rec).await
    }

    /// Updates an object whose edits need no cross-object checks (names,
    /// descriptions, endpoint groups, gateways).
    pub async fn simple_update<T: Body>(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
        edit: impl FnOnce(&mut Record<T>) -> Result<()>,
    ) -> Result<Written<Record<T>>> {
        let mut tx = self.begin(w).await?;
        let mut rec: Record<T> = tx.get(scope, id).await?;
        edit(&mut rec)?;
        let rec = tx.update(rec).await?;
        Self::finish(tx, rec).await
    }

    /// Deletes an object; refused while another object uses it.
    pub async fn delete<T: Body>(&self, w: &WriteCtx, scope: &Scope, id: &str) -> Result<Written<Record<T>>> {
        let mut tx = self.begin(w).await?;
        let rec = tx.delete::<T>(scope, id).await?;
        Self::finish(tx, rec).await
    }

    /// Creates a VPN service on a gateway the caller can see.
    pub async fn vpn_service_create(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        meta: NewMeta,
        body: VpnService,
    ) -> Result<Written<Record<VpnService>>> {
        let mut tx = self.begin(w).await?;
        let gateway: Record<Gateway> = tx.get(scope, &body.router_id).await?;
        let subnet = match &body.subnet_id {
            Some(id) => Some(tx.get::<Subnet>(scope, id).await?),
            None => None,
        };
        validate::vpn_service(&body, &gateway, subnet.as_ref())?;
        let rec = tx.insert(meta, body).await?;
        Self::finish(tx, rec).await
    }

    /// Creates an endpoint group; subnet endpoints must be subnets the caller can see.
    pub async fn endpoint_group_create(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        meta: NewMeta,
        body: EndpointGroup,
    ) -> Result<Written<Record<EndpointGroup>>> {
        let mut tx = self.begin(w).await?;
        let mut known = Vec::new();
        if body.endpoint_type == EndpointType::Subnet {
            for e in &body.endpoints {
                if validate::is_uuid_like(e) && tx.get::<Subnet>(scope, e).await.is_ok() {
                    known.push(e.clone());
                }
            }
        }
        let group_name = if meta.name.is_empty() {
            "endpoint group".to_string()
        } else {
            meta.name.clone()
        };
        validate::endpoint_group(&group_name, &body, |id| known.iter().any(|k| k == id))?;
        let rec = tx.insert(meta, body).await?;
        Self::finish(tx, rec).await
    }

    /// Creates a connection after every rule Neutron applies.
    pub async fn connection_create(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        meta: NewMeta,
        mut body: Connection,
    ) -> Result<Written<Record<Connection>>> {
        let peer = resolve_peer(&body.peer_address).await?;
        body.peer_address = peer.to_string();
        let mut tx = self.begin(w).await?;
        connection_check_in_txn(&mut tx, scope, &body, peer).await?;
        let rec = tx.insert(meta, body).await?;
        Self::finish(tx, rec).await
    }

    /// Updates a connection; `edit` applies the request, then every rule runs again
    /// on the result. A changed peer address is resolved *before* the write
    /// transaction opens, never under the write lock (a DNS lookup may take
    /// seconds, and every other write would wait behind it): `edit` is first
    /// applied to an unlocked read to learn which name it asks for, then again
    /// under the lock, where the resolved address is used only if the edit still
    /// asks for that same name. If a concurrent write made it ask for another, the
    /// lock is let go and that name resolved in turn (a bounded number of times).
    pub async fn connection_update(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        id: &str,
        edit: impl Fn(&mut Record<Connection>) -> Result<()>,
    ) -> Result<Written<Record<Connection>>> {
        let mut resolved = {
            let mut rec: Record<Connection> = self.get(scope, id).await?;
            let before = rec.body.peer_address.clone();
            edit(&mut rec)?;
            if rec.body.peer_address == before {
                None
            } else {
                Some(Resolved::of(rec.body.peer_address).await?)
            }
        };
        for _ in 0..PEER_RESOLVE_ATTEMPTS {
            let mut tx = self.begin(w).await?;
            let mut rec: Record<Connection> = tx.get(scope, id).await?;
            let before = rec.body.peer_address.clone();
            edit(&mut rec)?;
            if rec.body.peer_address != before {
                match &resolved {
                    Some(r) if r.name == rec.body.peer_address => rec.body.peer_address = r.ip.to_string(),
                    _ => {
                        drop(tx);
                        resolved = Some(Resolved::of(rec.body.peer_address).await?);
                        continue;
                    }
                }
            }
            let peer: IpAddr = rec.body.peer_address.parse().map_err(|_| {
                Error::Invalid(Violation::PeerAddressUnresolved {
                    address: rec.body.peer_address.clone(),
                })
            })?;
            connection_check_in_txn(&mut tx, scope, &rec.body, peer).await?;
            let rec = tx.update(rec).await?;
            return Self::finish(tx, rec).await;
        }
        Err(Error::Internal {
            context: format!("connection {id}: its peer address changed under every attempt to resolve it"),
            source: None,
        })
    }
}

/// How many times [`Store::connection_update`] resolves a peer address that a
/// concurrent write keeps changing before it gives up. An edit that only
/// depends on the request never needs a second attempt.
const PEER_RESOLVE_ATTEMPTS: usize = 3;

/// A peer address name and the IP it resolved to, outside any transaction.
struct Resolved {
    name: String,
    ip: IpAddr,
}

impl Resolved {
    async fn of(name: String) -> Result<Resolved> {
        let ip = resolve_peer(&name).await?;
        Ok(Resolved { name, ip })
    }
}

/// Resolves a peer address (IP literal or DNS name) to one IP, as Neutron does.
pub async fn resolve_peer(address: &str) -> Result<IpAddr> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(ip);
    }
    let unresolved = || {
        Error::Invalid(Violation::PeerAddressUnresolved {
            address: address.to_string(),
        })
    };
    if address.is_empty() || address.len() > 253 {
        return Err(unresolved());
    }
    let lookup = tokio::net::lookup_host((address, 0));
    match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()).ok_or_else(unresolved),
        _ => Err(unresolved()),
    }
}

async fn connection_check_in_txn(
    tx: &mut Tx<'_>,
    scope: &Scope,
    conn: &Connection,
    peer: IpAddr,
) -> Result<()> {
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
    validate::peer_address_family(peer, &gateway)?;
    Ok(())
}

impl Store {
    /// Finds an object by id, or else by its (unique) name, within `scope`.
    pub async fn find<T: Body>(&self, scope: &Scope, id_or_name: &str) -> Result<Record<T>> {
        if let Ok(rec) = self.get::<T>(scope, id_or_name).await {
            return Ok(rec);
        }
        let mut hits: Vec<Record<T>> = self
            .list::<T>(scope)
            .await?
            .into_iter()
            .filter(|r| r.meta.name == id_or_name)
            .collect();
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => Err(Error::not_found(T::KIND, id_or_name)),
            _ => Err(Error::AmbiguousName {
                kind: T::KIND,
                name: id_or_name.to_string(),
            }),
        }
    }

    /// Registers a gateway (admin).
    pub async fn gateway_create(
        &self,
        w: &WriteCtx,
        meta: NewMeta,
        body: Gateway,
    ) -> Result<Written<Record<Gateway>>> {
        self.simple_create(w, meta, body).await
    }

    /// Registers an internal subnet on a gateway (admin); the subnet belongs to
    /// the gateway's project.
    pub async fn subnet_create(
        &self,
        w: &WriteCtx,
        name: &str,
        gateway_id: &str,
        cidr: ipnet::IpNet,
    ) -> Result<Written<Record<Subnet>>> {
        let mut tx = self.begin(w).await?;
        let gw: Record<Gateway> = tx.get(&Scope::All, gateway_id).await?;
        let meta = NewMeta {
            id: None,
            project_id: gw.meta.project_id.clone(),
            name: name.to_string(),
            description: String::new(),
        };
        let rec = tx
            .insert(
                meta,
                Subnet {
                    gateway_id: gw.meta.id.clone(),
                    cidr,
                },
            )
            .await?;
        Self::finish(tx, rec).await
    }
}
