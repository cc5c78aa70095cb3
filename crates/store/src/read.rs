//! The read model: one consistent snapshot every reader goes through, and the
//! references of exactly the records it renders.
//!
//! Why one type: the Neutron views, the NSX views and realization all render
//! objects together with what those objects reference (a connection's service,
//! the service's gateway and its nodes' reports, the endpoint groups and
//! subnets its traffic is named by). Each used to build its own lookup cache,
//! two of them by loading whole tables on every request, so a `show` cost as
//! much as the largest table. Here a read names what it needs by key:
//!
//! - [`Snapshot`] is one read transaction: every read through it sees the same
//!   committed state, and it knows the global generation that state includes.
//! - [`Snapshot::load`] fills [`Refs`] with the references of a batch of
//!   records ([`Keys`], collected through [`Body::read_keys`]) in a bounded
//!   number of queries: one per kind (and per [`CHUNK`] ids), never one per
//!   record and never a whole table. What a reader needs beyond the records'
//!   services is said by [`Need`].
//!
//! The SQL is portable (`$n` placeholders, `IN` lists), so PostgreSQL can follow.

use std::collections::{BTreeSet, HashMap};

use model::{
    Connection, EndpointGroup, Gateway, IkePolicy, IpsecPolicy, Kind, Record, Result, Subnet, VpnService,
};
use sqlx::Row;

use crate::backend::Db;
use crate::nodes::{NodeState, SELECT_NODE_REALIZATION, SELECT_NODE_STATE, state_from};
use crate::{Body, Cipher, SELECT_RESOURCE, Scope, Store, db_err, decode_row};

/// Most ids bound in one `IN (...)` list; longer lists are read in chunks of
/// this many (each a query), far below SQLite's and PostgreSQL's bind limits.
pub const CHUNK: usize = 500;

impl Store {
    /// Starts a read-only snapshot: every read through it sees one committed state.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let started = std::time::Instant::now();
        // The BEGIN and the generation read run in their own task, so that a
        // caller dropped halfway (a client gone, the edge's deadline) cannot
        // leave the connection inside a transaction with no `Transaction` to
        // end it: the task finishes, and dropping its result rolls back.
        let pool = self.read_pool().clone();
        let begin = self.pools().begin_snapshot();
        let started_tx = tokio::spawn(async move {
            let tx = pool.begin_with(begin).await;
            let waited = started.elapsed();
            let mut tx = match tx {
                Ok(tx) => tx,
                Err(e) => return (waited, Err(db_err("begin snapshot")(e))),
            };
            let generation = sqlx::query("SELECT value FROM counters WHERE name = 'generation'")
                .fetch_one(&mut *tx)
                .await
                .map(|row| row.get::<i64, _>(0))
                .map_err(db_err("read generation"));
            (waited, generation.map(|g| (tx, g)))
        })
        .await;
        let (waited, started_tx) = started_tx.map_err(|e| model::Error::internal("begin snapshot", e))?;
        if let Some(o) = self.observer() {
            o.waited(crate::observe::Wait::Read, waited);
        }
        let (tx, generation) = started_tx?;
        Ok(Snapshot {
            tx,
            cipher: self.cipher().clone(),
            generation,
            postgres: self.pools().is_postgres(),
        })
    }
}

/// A consistent read view (one read transaction).
///
/// It holds one of the read pool's connections until dropped (dropping it
/// ends the transaction), so a task holding one reads everything through it
/// and never through the [`Store`] meanwhile: as many such tasks as the pool
/// has connections would each wait for a second one.
pub struct Snapshot {
    tx: sqlx::Transaction<'static, Db>,
    cipher: Cipher,
    /// The global generation this snapshot contains every change up to.
    pub generation: i64,
    postgres: bool,
}

/// The ids of `want` that `have` does not hold.
fn missing<V>(have: &HashMap<String, V>, want: &BTreeSet<String>) -> Vec<String> {
    want.iter()
        .filter(|id| !have.contains_key(*id))
        .cloned()
        .collect()
}

/// `$from, $from+1, ...` for `n` bound values.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Snapshot {
    /// The snapshot's connection (for the store's other read modules).
    pub(crate) fn conn(&mut self) -> &mut <Db as sqlx::Database>::Connection {
        &mut self.tx
    }

    /// One object by id (any project).
    pub async fn get<T: Body>(&mut self, id: &str) -> Result<Record<T>> {
        crate::get_with(&mut *self.tx, &self.cipher, &Scope::All, id).await
    }

    /// One object visible to `scope`; another project's object is not found,
    /// exactly like a missing one.
    pub async fn get_in<T: Body>(&mut self, scope: &Scope, id: &str) -> Result<Record<T>> {
        crate::get_with(&mut *self.tx, &self.cipher, scope, id).await
    }

    /// Every object of a kind visible to `scope`, oldest first.
    pub async fn list_in<T: Body>(&mut self, scope: &Scope) -> Result<Vec<Record<T>>> {
        crate::list_with(&mut *self.tx, &self.cipher, scope).await
    }

    /// One page of a kind visible to `scope`, read in SQL ([`crate::page`]).
    pub async fn page<T: Body>(
        &mut self,
        scope: &Scope,
        q: &crate::page::PageQuery,
    ) -> Result<Vec<Record<T>>> {
        crate::page::page_with(&mut *self.tx, &self.cipher, scope, q, self.postgres).await
    }

    /// [`crate::Store::count`] in this snapshot.
    pub async fn count(&mut self, kind: Kind, scope: &Scope, q: &crate::page::PageQuery) -> Result<u64> {
        crate::page::count_with(&mut *self.tx, kind, scope, q).await
    }

    /// Every object of a kind (all projects), oldest first.
    pub async fn list<T: Body>(&mut self) -> Result<Vec<Record<T>>> {
        self.list_in(&Scope::All).await
    }

    /// Objects of a kind that reference `dst_id` directly, oldest first.
    pub async fn list_users<T: Body>(&mut self, dst_id: &str) -> Result<Vec<Record<T>>> {
        self.users_of_any(&[dst_id.to_string()]).await
    }

    /// Objects of a kind that reference any of `dst_ids` directly, oldest first
    /// within each chunk of [`CHUNK`] ids.
    pub async fn users_of_any<T: Body>(&mut self, dst_ids: &[String]) -> Result<Vec<Record<T>>> {
        let mut out = Vec::new();
        for chunk in dst_ids.chunks(CHUNK) {
            let sql = format!(
                "{SELECT_RESOURCE} WHERE kind = $1 AND id IN \
                 (SELECT src_id FROM resource_refs WHERE dst_id IN ({})) ORDER BY created_at, id",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(T::KIND.as_str());
            for id in chunk {
                q = q.bind(id);
            }
            let rows = q.fetch_all(&mut *self.tx).await.map_err(db_err("list users"))?;
            for r in &rows {
                out.push(decode_row(r, &self.cipher)?);
            }
        }
        Ok(out)
    }

    /// The objects of a kind among `ids`, by id; ids of no such object are
    /// left out (one query per [`CHUNK`] ids).
    pub async fn get_many<'a, T: Body>(
        &mut self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<HashMap<String, Record<T>>> {
        let ids: Vec<&String> = ids.into_iter().filter(|id| !id.is_empty()).collect();
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "{SELECT_RESOURCE} WHERE kind = $1 AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(T::KIND.as_str());
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db_err("read resources"))?;
            for r in &rows {
                let rec: Record<T> = decode_row(r, &self.cipher)?;
                out.insert(rec.meta.id.clone(), rec);
            }
        }
        Ok(out)
    }

    /// The nodes of the given gateways with their latest reports, in
    /// registration order within each gateway.
    pub async fn node_states_of<'a>(
        &mut self,
        gateway_ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<NodeState>> {
        self.nodes_of(SELECT_NODE_STATE, gateway_ids).await
    }

    /// The ids of `gateway_id`'s registered nodes.
    pub async fn node_ids_of(&mut self, gateway_id: &str) -> Result<std::collections::HashSet<String>> {
        let rows = sqlx::query("SELECT id FROM nodes WHERE gateway_id = $1")
            .bind(gateway_id)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err("read nodes"))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// [`Snapshot::node_states_of`] without the tunnels' statuses (`tunnels`
    /// empty): enough for realization states, and much less to decode.
    pub async fn node_realization_of<'a>(
        &mut self,
        gateway_ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<NodeState>> {
        self.nodes_of(SELECT_NODE_REALIZATION, gateway_ids).await
    }

    async fn nodes_of<'a>(
        &mut self,
        select: &str,
        gateway_ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<NodeState>> {
        let ids: Vec<&String> = gateway_ids.into_iter().collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "{select} WHERE n.gateway_id IN ({}) ORDER BY n.created_at, n.id",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q.fetch_all(&mut *self.tx).await.map_err(db_err("read nodes"))?;
            for r in &rows {
                out.push(state_from(r)?);
            }
        }
        Ok(out)
    }

    /// The last-change generation of each of the given gateways that has one.
    pub async fn gateway_generations_of<'a>(
        &mut self,
        gateway_ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<HashMap<String, i64>> {
        let ids: Vec<&String> = gateway_ids.into_iter().collect();
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT gateway_id, generation FROM gateway_generations WHERE gateway_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db_err("read gateway generations"))?;
            for r in &rows {
                out.insert(r.get::<String, _>(0), r.get::<i64, _>(1));
            }
        }
        Ok(out)
    }

    /// Adds to `refs` what the records whose [`Keys`] are `keys` reference, as
    /// far as `need` says, reading only what `refs` does not hold yet: their
    /// services always; then, per `need`, the services' gateways, the node
    /// states and generations of those gateways, the endpoint groups and
    /// subnets their traffic is named by, and their IKE and IPsec policies.
    /// At most one query per kind (per [`CHUNK`] ids), whatever the number of
    /// records.
    pub async fn load(&mut self, refs: &mut Refs, mut keys: Keys, need: Need) -> Result<()> {
        let new = missing(&refs.services, &keys.services);
        refs.services.extend(self.get_many::<VpnService>(&new).await?);
        let ids: Vec<String> = keys.services.iter().cloned().collect();
        for id in &ids {
            if let Some(s) = refs.services.get(id) {
                s.body.read_keys(&mut keys);
            }
        }
        if need.traffic {
            let new = missing(&refs.groups, &keys.groups);
            refs.groups.extend(self.get_many::<EndpointGroup>(&new).await?);
            let ids: Vec<String> = keys.groups.iter().cloned().collect();
            for id in &ids {
                if let Some(g) = refs.groups.get(id) {
                    g.body.read_keys(&mut keys);
                }
            }
            let new = missing(&refs.subnets, &keys.subnets);
            refs.subnets.extend(self.get_many::<Subnet>(&new).await?);
        }
        if need.gateways {
            let new = missing(&refs.gateways, &keys.gateways);
            refs.gateways.extend(self.get_many::<Gateway>(&new).await?);
        }
        if need.status {
            let new: Vec<String> = keys
                .gateways
                .iter()
                .filter(|g| !refs.status_of.contains(*g))
                .cloned()
                .collect();
            if !new.is_empty() {
                refs.node_states.extend(self.node_states_of(&new).await?);
                refs.gateway_generations
                    .extend(self.gateway_generations_of(&new).await?);
                refs.status_of.extend(new);
            }
        }
        if need.policies {
            let new = missing(&refs.ike, &keys.ike);
            refs.ike.extend(self.get_many::<IkePolicy>(&new).await?);
            let new = missing(&refs.ipsec, &keys.ipsec);
            refs.ipsec.extend(self.get_many::<IpsecPolicy>(&new).await?);
        }
        Ok(())
    }

    /// [`Snapshot::load`] into fresh [`Refs`], for `records`.
    pub async fn refs_of<'a, T: Body>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record<T>>,
        need: Need,
    ) -> Result<Refs> {
        let mut refs = Refs::default();
        self.load(&mut refs, Keys::of(records), need).await?;
        Ok(refs)
    }
}

/// Ids of the objects a batch of records references, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// VPN service ids.
    pub services: BTreeSet<String>,
    /// Gateway ids.
    pub gateways: BTreeSet<String>,
    /// Endpoint group ids.
    pub groups: BTreeSet<String>,
    /// Subnet ids.
    pub subnets: BTreeSet<String>,
    /// IKE policy ids.
    pub ike: BTreeSet<String>,
    /// IPsec policy ids.
    pub ipsec: BTreeSet<String>,
}

impl Keys {
    /// The keys of everything `records` reference directly.
    pub fn of<'a, T: Body>(records: impl IntoIterator<Item = &'a Record<T>>) -> Keys {
        let mut keys = Keys::default();
        for r in records {
            r.body.read_keys(&mut keys);
        }
        keys
    }
}

/// What a reader needs besides the records and their services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Need {
    /// The services' gateway records (Neutron shows a gateway's addresses).
    pub gateways: bool,
    /// Node states and last-change generations of the services' gateways
    /// (derived status).
    pub status: bool,
    /// The endpoint groups and subnets a connection's traffic is named by
    /// ([`model::traffic::selectors`]).
    pub traffic: bool,
    /// The connections' IKE and IPsec policies (realization).
    pub policies: bool,
}

/// The references of the records one read renders, by id: the lookup every
/// reader renders from (Neutron's `ViewCtx`, NSX's `RenderCtx` and the node
/// configuration are filled from it).
#[derive(Debug, Default)]
pub struct Refs {
    /// VPN services by id.
    pub services: HashMap<String, Record<VpnService>>,
    /// Gateways by id (when [`Need::gateways`]).
    pub gateways: HashMap<String, Record<Gateway>>,
    /// Endpoint groups by id (when [`Need::traffic`]).
    pub groups: HashMap<String, Record<EndpointGroup>>,
    /// Subnets by id: a legacy service's subnet and the endpoint groups'
    /// subnets (when [`Need::traffic`]).
    pub subnets: HashMap<String, Record<Subnet>>,
    /// IKE policies by id (when [`Need::policies`]).
    pub ike: HashMap<String, Record<IkePolicy>>,
    /// IPsec policies by id (when [`Need::policies`]).
    pub ipsec: HashMap<String, Record<IpsecPolicy>>,
    /// The nodes (with their latest reports) of the gateways whose status was
    /// loaded, and nothing else.
    pub node_states: Vec<NodeState>,
    /// Last-change generations of those gateways (absent: none yet).
    pub gateway_generations: HashMap<String, i64>,
    /// Gateways whose node states and generation are loaded.
    status_of: BTreeSet<String>,
}

impl Refs {
    /// The traffic references, for [`model::traffic::selectors`].
    pub fn traffic(&self) -> model::traffic::LoadedRefs<'_> {
        model::traffic::LoadedRefs {
            subnets: &self.subnets,
            groups: &self.groups,
        }
    }

    /// The service of a connection, if loaded.
    pub fn service_of(&self, c: &Connection) -> Option<&Record<VpnService>> {
        self.services.get(&c.vpnservice_id)
    }
}
