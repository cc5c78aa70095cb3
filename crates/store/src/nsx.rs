//! Operations behind the NSX view: the NSX-only kinds (DPD profiles, local and
//! peer endpoints), the system-owned default profiles, and sessions, which are
//! canonical connections whose peer, key, DPD and local side are copied from
//! their endpoints.
//!
//! Why copies: the agent and realization read one object per tunnel, whichever
//! API made it. The price is keeping the copies current, which happens here, in
//! the same transaction as the endpoint or profile change: every connection
//! built from a changed object is re-derived and, if anything differs, written,
//! so its generation moves and realization re-runs.
//!
//! Who uses an object is read through [`Store::users_of`] after the write
//! transaction has begun: SQLite has a single writer, so nothing can commit in
//! between and the read is as good as one inside the transaction.

use std::collections::BTreeSet;

use model::nsx::*;
use model::*;

use crate::ops::Written;
use crate::{Body, NewMeta, Scope, Store, Tx, WriteCtx};

impl Body for DpdProfile {
    const KIND: Kind = Kind::DpdProfile;
}

impl Body for LocalEndpoint {
    const KIND: Kind = Kind::LocalEndpoint;
    fn refs(&self) -> Vec<String> {
        vec![self.vpnservice_id.clone()]
    }
}

impl Body for PeerEndpoint {
    const KIND: Kind = Kind::PeerEndpoint;
    fn refs(&self) -> Vec<String> {
        let mut r = vec![
            self.ikepolicy_id.clone(),
            self.ipsecpolicy_id.clone(),
            self.dpd_profile_id.clone(),
        ];
        r.sort();
        r.dedup();
        r
    }
    fn secret(&self) -> Option<&str> {
        Some(self.psk.expose())
    }
    fn set_secret(&mut self, secret: String) {
        self.psk = Psk(secret);
    }
}

impl Body for SystemDefaults {
    const KIND: Kind = Kind::SystemDefaults;
    fn refs(&self) -> Vec<String> {
        self.ids.clone()
    }
}

/// Cross-object rules of an object written through NSX, run inside the write
/// transaction (single-object rules come from `model::nsx`).
pub trait NsxBody: Body {
    fn check_in_txn(&self, tx: &mut Tx<'_>) -> impl Future<Output = Result<()>> + Send;
}

impl NsxBody for IkePolicy {
    async fn check_in_txn(&self, _: &mut Tx<'_>) -> Result<()> {
        model::nsx::ike_profile(self)
    }
}

impl NsxBody for IpsecPolicy {
    async fn check_in_txn(&self, _: &mut Tx<'_>) -> Result<()> {
        model::nsx::tunnel_profile(self)
    }
}

impl NsxBody for DpdProfile {
    async fn check_in_txn(&self, _: &mut Tx<'_>) -> Result<()> {
        model::nsx::dpd_profile(self)
    }
}

impl NsxBody for VpnService {
    async fn check_in_txn(&self, tx: &mut Tx<'_>) -> Result<()> {
        let gateway: Record<Gateway> = tx.get(&Scope::All, &self.router_id).await?;
        let subnet = match &self.subnet_id {
            Some(id) => Some(tx.get::<Subnet>(&Scope::All, id).await?),
            None => None,
        };
        model::validate::vpn_service(self, &gateway, subnet.as_ref())?;
        model::nsx::bypass_rules(&self.bypass_rules)
    }
}

impl NsxBody for LocalEndpoint {
    async fn check_in_txn(&self, tx: &mut Tx<'_>) -> Result<()> {
        tx.get::<VpnService>(&Scope::All, &self.vpnservice_id).await?;
        Ok(())
    }
}

impl NsxBody for PeerEndpoint {
    async fn check_in_txn(&self, tx: &mut Tx<'_>) -> Result<()> {
        if self.peer_address.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::field("peer_address", "must be an IP address"));
        }
        if self.psk.expose().is_empty() {
            return Err(Error::field("psk", "a pre-shared key is required"));
        }
        tx.get::<IkePolicy>(&Scope::All, &self.ikepolicy_id).await?;
        tx.get::<IpsecPolicy>(&Scope::All, &self.ipsecpolicy_id).await?;
        tx.get::<DpdProfile>(&Scope::All, &self.dpd_profile_id).await?;
        Ok(())
    }
}

async fn finish<T>(tx: Tx<'_>, record: T) -> Result<Written<T>> {
    let generation = tx.commit().await?;
    Ok(Written { record, generation })
}

/// Copies into an endpoint-form connection what its endpoints (and the peer's
/// DPD profile) say. A Neutron-form connection is left alone.
async fn session_derive_in_txn(tx: &mut Tx<'_>, conn: &mut Connection) -> Result<()> {
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

/// Every rule of an endpoint-form connection, with what it refers to loaded.
async fn session_check_in_txn(tx: &mut Tx<'_>, conn: &Connection) -> Result<()> {
    let service: Record<VpnService> = tx.get(&Scope::All, &conn.vpnservice_id).await?;
    tx.get::<IkePolicy>(&Scope::All, &conn.ikepolicy_id).await?;
    let ipsec: Record<IpsecPolicy> = tx.get(&Scope::All, &conn.ipsecpolicy_id).await?;
    let gateway: Record<Gateway> = tx.get(&Scope::All, &service.body.router_id).await?;
    model::nsx::session(conn, &ipsec.body)?;
    if conn.local_address.is_none()
        && let Ok(peer) = conn.peer_address.parse()
    {
        model::validate::peer_address_family(peer, &gateway)?;
    }
    Ok(())
}

impl Store {
    /// Creates the system-owned default profiles (and their holder) if they are
    /// missing. Cheap when they exist: one read.
    pub async fn nsx_defaults_ensure(&self, project_id: &str) -> Result<()> {
        if self
            .get::<SystemDefaults>(&Scope::All, DEFAULTS_HOLDER_ID)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut tx = self.begin(&WriteCtx::new(SYSTEM_USER)).await?;
        if tx
            .get::<SystemDefaults>(&Scope::All, DEFAULTS_HOLDER_ID)
            .await
            .is_ok()
        {
            // Made by a concurrent request; dropping the transaction rolls back.
            return Ok(());
        }
        let meta = |id: &str, name: &str, description: &str| NewMeta {
            id: Some(id.to_string()),
            project_id: project_id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
        };
        if tx
            .get::<IkePolicy>(&Scope::All, DEFAULT_IKE_PROFILE_ID)
            .await
            .is_err()
        {
            tx.insert(
                meta(
                    DEFAULT_IKE_PROFILE_ID,
                    DEFAULT_IKE_PROFILE_NAME,
                    "Default IKE profile for L3 VPN: IKE V2, AES 128, SHA2 256, DH group 14",
                ),
                ike_profile_defaults(),
            )
            .await?;
        }
        if tx
            .get::<IpsecPolicy>(&Scope::All, DEFAULT_TUNNEL_PROFILE_ID)
            .await
            .is_err()
        {
            tx.insert(
                meta(
                    DEFAULT_TUNNEL_PROFILE_ID,
                    DEFAULT_TUNNEL_PROFILE_NAME,
                    "Default tunnel profile for L3 VPN: AES GCM 128, PFS with DH group 14",
                ),
                tunnel_profile_defaults(),
            )
            .await?;
        }
        if tx
            .get::<DpdProfile>(&Scope::All, DEFAULT_DPD_PROFILE_ID)
            .await
            .is_err()
        {
            tx.insert(
                meta(
                    DEFAULT_DPD_PROFILE_ID,
                    DEFAULT_DPD_PROFILE_NAME,
                    "Default DPD profile for L3 VPN: periodic, 60 s",
                ),
                DpdProfile::default(),
            )
            .await?;
        }
        tx.insert(
            meta(DEFAULTS_HOLDER_ID, "system-defaults", ""),
            SystemDefaults {
                ids: vec![
                    DEFAULT_IKE_PROFILE_ID.into(),
                    DEFAULT_TUNNEL_PROFILE_ID.into(),
                    DEFAULT_DPD_PROFILE_ID.into(),
                ],
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates an NSX object after its rules.
    pub async fn nsx_create<T: NsxBody>(
        &self,
        w: &WriteCtx,
        meta: NewMeta,
        body: T,
    ) -> Result<Written<Record<T>>> {
        let mut tx = self.begin(w).await?;
        body.check_in_txn(&mut tx).await?;
        let rec = tx.insert(meta, body).await?;
        finish(tx, rec).await
    }

    /// Updates an NSX object whose client holds `revision`, then re-derives every
    /// connection built from it, all in one transaction. The object's rules run
    /// only when its body changed, so writing back what was read (names aside)
    /// never fails on a rule the object was created without (e.g. through Neutron).
    pub async fn nsx_update<T: NsxBody + PartialEq>(
        &self,
        w: &WriteCtx,
        id: &str,
        revision: i64,
        edit: impl FnOnce(&mut Record<T>) -> Result<()>,
    ) -> Result<Written<Record<T>>> {
        if is_system_owned(id) {
            return Err(Error::system_owned(T::KIND, id));
        }
        let mut tx = self.begin(w).await?;
        let mut rec: Record<T> = tx.get(&Scope::All, id).await?;
        if rec.meta.revision != revision {
            return Err(Error::StaleRevision {
                kind: T::KIND,
                id: id.to_string(),
                given: Some(revision),
                current: rec.meta.revision,
            });
        }
        let before = rec.body.clone();
        edit(&mut rec)?;
        if rec.body != before {
            rec.body.check_in_txn(&mut tx).await?;
        }
        let rec = tx.update(rec).await?;
        self.sessions_rederive_in_txn(&mut tx, id).await?;
        finish(tx, rec).await
    }

    /// Deletes an NSX object (or any canonical object through the NSX view);
    /// refused for the system-owned defaults and while in use.
    pub async fn nsx_delete<T: Body>(&self, w: &WriteCtx, id: &str) -> Result<Written<Record<T>>> {
        if is_system_owned(id) {
            return Err(Error::system_owned(T::KIND, id));
        }
        let mut tx = self.begin(w).await?;
        let rec = tx.delete::<T>(&Scope::All, id).await?;
        finish(tx, rec).await
    }

    /// Creates a session: an endpoint-form connection derived from its endpoints.
    pub async fn session_create(
        &self,
        w: &WriteCtx,
        meta: NewMeta,
        mut conn: Connection,
    ) -> Result<Written<Record<Connection>>> {
        let mut tx = self.begin(w).await?;
        session_derive_in_txn(&mut tx, &mut conn).await?;
        session_check_in_txn(&mut tx, &conn).await?;
        let rec = tx.insert(meta, conn).await?;
        finish(tx, rec).await
    }

    /// Updates a session whose client holds `revision`. An endpoint-form
    /// connection is re-derived from its (possibly new) endpoints and checked; a
    /// Neutron-form one only takes what `edit` changes (names, enabled, tags).
    pub async fn session_update(
        &self,
        w: &WriteCtx,
        id: &str,
        revision: i64,
        edit: impl FnOnce(&mut Record<Connection>) -> Result<()>,
    ) -> Result<Written<Record<Connection>>> {
        let mut tx = self.begin(w).await?;
        let mut rec: Record<Connection> = tx.get(&Scope::All, id).await?;
        if rec.meta.revision != revision {
            return Err(Error::StaleRevision {
                kind: Kind::Connection,
                id: id.to_string(),
                given: Some(revision),
                current: rec.meta.revision,
            });
        }
        edit(&mut rec)?;
        if rec.body.is_endpoint_form() {
            session_derive_in_txn(&mut tx, &mut rec.body).await?;
            session_check_in_txn(&mut tx, &rec.body).await?;
        }
        let rec = tx.update(rec).await?;
        finish(tx, rec).await
    }

    /// Ids of the connections built (directly or through endpoints) from `id`.
    async fn sessions_using(&self, id: &str) -> Result<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut found = BTreeSet::new();
        let mut queue = vec![id.to_string()];
        while let Some(cur) = queue.pop() {
            if !seen.insert(cur.clone()) {
                continue;
            }
            for (kind, user) in self.users_of(&cur).await? {
                match kind {
                    Kind::Connection => {
                        found.insert(user);
                    }
                    Kind::PeerEndpoint | Kind::LocalEndpoint => queue.push(user),
                    _ => {}
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Re-derives every endpoint-form connection built from `id`; writes (and
    /// checks) those whose copy changed.
    async fn sessions_rederive_in_txn(&self, tx: &mut Tx<'_>, id: &str) -> Result<()> {
        for cid in self.sessions_using(id).await? {
            let mut rec: Record<Connection> = tx.get(&Scope::All, &cid).await?;
            if !rec.body.is_endpoint_form() {
                continue;
            }
            let before = rec.body.clone();
            session_derive_in_txn(tx, &mut rec.body).await?;
            if rec.body != before {
                session_check_in_txn(tx, &rec.body).await?;
                tx.update(rec).await?;
            }
        }
        Ok(())
    }
}
