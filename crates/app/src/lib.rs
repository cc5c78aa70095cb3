//! The application layer: every write, whichever API asked, is one operation
//! here — [`App::create`], [`App::update`], [`App::delete`] — over one kind.
//!
//! Why it exists: both APIs (and the operator's commands) change the same
//! canonical objects, so what a write must check and what it implies for other
//! objects is decided once, here, and not in each API or in the datastore:
//! - **preconditions** are explicit ([`Expect`]): the caller's revision (NSX
//!   `_revision`), "not in use" (Neutron refuses changing a policy a connection
//!   uses), "not pending" (Neutron refuses changing a service or connection in
//!   a `PENDING_*` status) — each checked inside the write transaction, against
//!   the state the write commits on;
//! - **system-owned objects** (NSX's default profiles) are refused in one place;
//! - **cross-object rules** of each kind ([`Rules`]) load what they need by key
//!   through the transaction;
//! - **the cascade**: a connection built from NSX endpoints carries copies of
//!   what they say; any write to anything it is built from re-derives it in the
//!   same transaction ([`App::update`]), so realization sees one object per tunnel;
//! - **peer DNS names** are resolved before the transaction opens, never under
//!   the write lock ([`peer`]).
//!
//! The API crates parse a request, call one operation, and render the result.
//! What happens when anything writes a `PeerEndpoint`: [`App::update`] (revision,
//! [`Rules::check`] of `PeerEndpoint`, then the cascade re-derives and checks
//! every session that uses it).

pub mod network;
pub mod peer;
pub mod rules;

use std::collections::BTreeSet;
use std::time::Duration;

use model::nsx::*;
use model::*;
pub use rules::{Check, Dialect, Rules};
use store::{Body, NewMeta, Scope, Store, Tx, WriteCtx};

/// Result of a write: the record and the generation it committed as.
#[derive(Debug, Clone)]
pub struct Written<T> {
    /// The object as committed (for a delete: as it was before).
    pub record: T,
    /// The write's global generation; nodes that realized it carry the change.
    pub generation: i64,
}

/// What must hold of the current object for an update to go ahead. Checked in
/// the write transaction, after the object was found visible (so another
/// project's object answers not-found whatever its state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expect {
    /// The revision the client last read (NSX `_revision`).
    pub revision: Option<i64>,
    /// Refuse while another object uses it (Neutron policies).
    pub unused: bool,
    /// Refuse while its status is `PENDING_*` (Neutron services, connections).
    pub settled: bool,
}

impl Expect {
    /// No precondition.
    pub const NOTHING: Expect = Expect {
        revision: None,
        unused: false,
        settled: false,
    };
    /// Refused while in use.
    pub const UNUSED: Expect = Expect {
        unused: true,
        ..Expect::NOTHING
    };
    /// Refused while pending.
    pub const SETTLED: Expect = Expect {
        settled: true,
        ..Expect::NOTHING
    };

    /// The object must still be at `revision`.
    pub fn revision(revision: i64) -> Expect {
        Expect {
            revision: Some(revision),
            ..Expect::NOTHING
        }
    }
}

/// How many times [`App::update`] resolves a peer name that a concurrent
/// write keeps changing before it gives up. An edit that depends only on the
/// request never needs a second attempt.
const PEER_RESOLVE_ATTEMPTS: usize = 3;

/// The application: the store plus what rules need to know beyond it.
#[derive(Clone)]
pub struct App {
    store: Store,
    /// How long a node may be silent before its reports stop counting
    /// (for the "not pending" rule).
    node_timeout: Duration,
}

impl App {
    /// The application over `store`; `node_timeout` is the silence after
    /// which a node's reports no longer count.
    pub fn new(store: Store, node_timeout: Duration) -> App {
        App { store, node_timeout }
    }

    /// The datastore, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates an object after its kind's rules.
    pub async fn create<T: Rules>(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        dialect: Dialect,
        meta: NewMeta,
        mut body: T,
    ) -> Result<Written<Record<T>>> {
        if let Some(name) = body.unresolved_peer() {
            let ip = peer::resolve(name).await?;
            body.set_peer(ip);
        }
        let mut tx = self.store.begin(w).await?;
        body.check(Check {
            tx: &mut tx,
            scope,
            dialect,
            creating: true,
            name: &meta.name,
            id: meta.id.as_deref().unwrap_or_default(),
        })
        .await?;
        let rec = tx.insert(meta, body).await?;
        finish(tx, rec).await
    }

    /// Updates an object visible to `scope`: `edit` applies the request to the
    /// current record, `expect` must hold of it, the kind's rules run if the
    /// body changed, and every connection derived from the object is
    /// re-derived, all in one transaction.
    ///
    /// `edit` may run twice: for a kind that names peers by DNS name, first on
    /// an unlocked read to learn which name the result asks for (resolved
    /// before the transaction), then under the lock, where the resolved address
    /// is used only if the edit still asks for that name. If a concurrent write
    /// made it ask for another, the lock is let go and that name resolved in
    /// turn (a bounded number of times).
    pub async fn update<T: Rules>(
        &self,
        w: &WriteCtx,
        scope: &Scope,
        dialect: Dialect,
        id: &str,
        expect: Expect,
        edit: impl Fn(&mut Record<T>) -> Result<()>,
    ) -> Result<Written<Record<T>>> {
        let mut resolved = None;
        if T::RESOLVES_PEER {
            let mut rec: Record<T> = self.store.get(scope, id).await?;
            if edit(&mut rec).is_ok()
                && let Some(name) = rec.body.unresolved_peer()
            {
                resolved = Some(peer::Resolved::of(name).await?);
            }
        }
        for _ in 0..PEER_RESOLVE_ATTEMPTS {
            let mut tx = self.store.begin(w).await?;
            let mut rec: Record<T> = tx.get(scope, id).await?;
            self.expect_in_txn(&mut tx, &rec, expect).await?;
            let before = rec.body.clone();
            edit(&mut rec)?;
            if let Some(name) = rec.body.unresolved_peer() {
                match &resolved {
                    Some(r) if r.name == name => rec.body.set_peer(r.ip),
                    _ => {
                        let name = name.to_string();
                        drop(tx);
                        resolved = Some(peer::Resolved::of(&name).await?);
                        continue;
                    }
                }
            }
            if rec.body != before {
                let name = rec.meta.name.clone();
                rec.body
                    .check(Check {
                        tx: &mut tx,
                        scope,
                        dialect,
                        creating: false,
                        name: &name,
                        id,
                    })
                    .await?;
            }
            let rec = tx.update(rec).await?;
            rederive_sessions(&mut tx, id).await?;
            return finish(tx, rec).await;
        }
        Err(Error::Internal {
            context: format!(
                "{} {id}: its peer address changed under every attempt to resolve it",
                T::KIND
            ),
            source: None,
        })
    }

    /// Deletes an object visible to `scope`; refused for system-owned objects
    /// and while another object uses it.
    pub async fn delete<T: Body>(&self, w: &WriteCtx, scope: &Scope, id: &str) -> Result<Written<Record<T>>> {
        if is_system_owned(id) {
            // Refused whatever happens: a read (404 when not visible), no write
            // transaction, no generation.
            self.store.get::<T>(scope, id).await?;
            return Err(Error::system_owned(T::KIND, id));
        }
        let mut tx = self.store.begin(w).await?;
        let rec = tx.delete::<T>(scope, id).await?;
        finish(tx, rec).await
    }

    async fn expect_in_txn<T: Rules>(&self, tx: &mut Tx<'_>, rec: &Record<T>, expect: Expect) -> Result<()> {
        let id = &rec.meta.id;
        if is_system_owned(id) {
            return Err(Error::system_owned(T::KIND, id));
        }
        if let Some(given) = expect.revision
            && given != rec.meta.revision
        {
            return Err(Error::StaleRevision {
                kind: T::KIND,
                id: id.clone(),
                given: Some(given),
                current: rec.meta.revision,
            });
        }
        if expect.unused && tx.is_referenced(id).await? {
            return Err(Error::in_use(T::KIND, id));
        }
        if expect.settled
            && let Some(status) = T::status(rec, tx, self.node_timeout).await?
        {
            validate::updatable(status, id)?;
        }
        Ok(())
    }

    /// Creates the system-owned default profiles (and their holder) if they are
    /// missing. Cheap when they exist: one read.
    pub async fn ensure_system_defaults(&self, project_id: &str) -> Result<()> {
        if self
            .store
            .get::<SystemDefaults>(&Scope::All, DEFAULTS_HOLDER_ID)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut tx = self.store.begin(&WriteCtx::new(SYSTEM_USER)).await?;
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
        let ike = meta(
            DEFAULT_IKE_PROFILE_ID,
            DEFAULT_IKE_PROFILE_NAME,
            "Default IKE profile for L3 VPN: IKE V2, AES 128, SHA2 256, DH group 14",
        );
        insert_missing(&mut tx, ike, ike_profile_defaults()).await?;
        let tunnel = meta(
            DEFAULT_TUNNEL_PROFILE_ID,
            DEFAULT_TUNNEL_PROFILE_NAME,
            "Default tunnel profile for L3 VPN: AES GCM 128, PFS with DH group 14",
        );
        insert_missing(&mut tx, tunnel, tunnel_profile_defaults()).await?;
        let dpd = meta(
            DEFAULT_DPD_PROFILE_ID,
            DEFAULT_DPD_PROFILE_NAME,
            "Default DPD profile for L3 VPN: periodic, 60 s",
        );
        insert_missing(&mut tx, dpd, DpdProfile::default()).await?;
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
}

/// Inserts a system-owned object unless one with its id exists (an older
/// server may have made the profiles before their holder).
async fn insert_missing<T: Body>(tx: &mut Tx<'_>, meta: NewMeta, body: T) -> Result<()> {
    let id = meta.id.clone().unwrap_or_default();
    if tx.get::<T>(&Scope::All, &id).await.is_err() {
        tx.insert(meta, body).await?;
    }
    Ok(())
}

async fn finish<T>(tx: Tx<'_>, record: T) -> Result<Written<T>> {
    let generation = tx.commit().await?;
    Ok(Written { record, generation })
}

/// Ids of the connections built (directly, or through endpoints) from `id`,
/// read inside the transaction.
async fn sessions_using(tx: &mut Tx<'_>, id: &str) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut found = BTreeSet::new();
    let mut queue = vec![id.to_string()];
    while let Some(cur) = queue.pop() {
        if !seen.insert(cur.clone()) {
            continue;
        }
        for (kind, user) in tx.users_of(&cur).await? {
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

/// The cascade: re-derives every endpoint-form connection built from `id`;
/// writes (and checks) those whose copy changed.
async fn rederive_sessions(tx: &mut Tx<'_>, id: &str) -> Result<()> {
    for cid in sessions_using(tx, id).await? {
        let mut rec: Record<Connection> = tx.get(&Scope::All, &cid).await?;
        if !rec.body.is_endpoint_form() {
            continue;
        }
        let before = rec.body.clone();
        rules::derive_session(tx, &mut rec.body).await?;
        if rec.body != before {
            rules::check_session(tx, &rec.body).await?;
            // Moved to another gateway: its interface id may be taken there.
            rules::allocate_if_id(tx, &mut rec.body, &cid).await?;
            tx.update(rec).await?;
        }
    }
    Ok(())
}
