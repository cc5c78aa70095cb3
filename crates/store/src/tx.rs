//! A write transaction: one generation, one request id, every touched object logged.
//! Every read a write depends on is made through it, inside the transaction.

use model::{Error, Kind, Meta, Record, Result};
use sqlx::Row;

use crate::backend::Db;
use crate::nodes::{NodeState, SELECT_NODE_STATE, state_from};
use crate::{Body, Cipher, NewMeta, Scope, Store, WriteCtx, db_err, now_ms};

/// One write transaction: begun by [`Store::begin`], ended by [`Tx::commit`]
/// (dropped without it, it rolls back, its generation included).
pub struct Tx<'c> {
    tx: sqlx::Transaction<'c, Db>,
    /// This process's turn to write (see `backend::Pools::gate`); released
    /// after the commit or rollback, when the transaction is dropped.
    _turn: tokio::sync::OwnedMutexGuard<()>,
    cipher: Cipher,
    generation: i64,
    request_id: String,
    actor: String,
    touched: Vec<(String, Kind, &'static str)>,
    gateways: std::collections::BTreeSet<String>,
    notify: tokio::sync::watch::Sender<i64>,
    /// What tells other processes about the commit, if the engine can.
    notify_sql: Option<&'static str>,
}

/// Everything that (transitively) uses `$1`, including itself.
const USERS_OF: &str = "WITH RECURSIVE up(id) AS (SELECT $1 UNION SELECT r.src_id FROM resource_refs r JOIN up ON r.dst_id = up.id)";

/// The gateways that carry `$1` or anything that uses it: walk up to every user,
/// then down (a few hops: connection → endpoint → service → gateway) to gateways.
const SPAN_GATEWAYS: &str = "WITH RECURSIVE up(id) AS (SELECT $1 UNION SELECT r.src_id FROM resource_refs r JOIN up ON r.dst_id = up.id), \
     down(id, depth) AS (SELECT id, 0 FROM up UNION SELECT r.dst_id, d.depth + 1 FROM resource_refs r JOIN down d ON r.src_id = d.id WHERE d.depth < 4) \
     SELECT DISTINCT g.id FROM down JOIN resources g ON g.id = down.id WHERE g.kind = 'gateway'";

impl Tx<'static> {
    pub(crate) async fn begin(store: &Store, w: &WriteCtx) -> Result<Tx<'static>> {
        let turn = store.write_gate().lock_owned().await;
        let mut tx = store
            .write_pool()
            .begin_with(store.pools().begin_write())
            .await
            .map_err(db_err("begin write"))?;
        let generation: i64 =
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'generation' RETURNING value")
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err("allocate generation"))?
                .get(0);
        Ok(Tx {
            tx,
            _turn: turn,
            cipher: store.cipher().clone(),
            generation,
            request_id: w.request_id.to_string(),
            actor: w.actor.clone(),
            touched: Vec::new(),
            gateways: Default::default(),
            notify: store.notifier(),
            notify_sql: store.pools().commit_notify(),
        })
    }
}

impl Tx<'_> {
    /// The generation this write will commit as.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Marks the gateways whose nodes carry `id` (or anything using it) as changed
    /// by this write, and stamps this generation on everything that uses `id`, so
    /// an object's generation is always that of the last change to anything it is
    /// made of.
    async fn mark(&mut self, id: &str) -> Result<()> {
        let rows = sqlx::query(SPAN_GATEWAYS)
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err("compute span"))?;
        for r in rows {
            self.gateways.insert(r.get::<String, _>(0));
        }
        sqlx::query(&format!(
            "{USERS_OF} UPDATE resources SET generation = $2 WHERE id IN (SELECT id FROM up) AND id <> $1"
        ))
        .bind(id)
        .bind(self.generation)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err("stamp users"))?;
        Ok(())
    }

    /// Records the request id and the touched objects, then commits.
    pub async fn commit(mut self) -> Result<i64> {
        let now = now_ms();
        for gw in &self.gateways {
            sqlx::query(
                "INSERT INTO gateway_generations (gateway_id, generation) VALUES ($1, $2) \
                 ON CONFLICT (gateway_id) DO UPDATE SET generation = excluded.generation",
            )
            .bind(gw)
            .bind(self.generation)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("stamp gateway generation"))?;
        }
        sqlx::query("INSERT INTO requests (request_id, generation, created_at) VALUES ($1, $2, $3)")
            .bind(&self.request_id)
            .bind(self.generation)
            .bind(now)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("log request"))?;
        for (id, kind, op) in &self.touched {
            sqlx::query(
                "INSERT INTO request_entities (request_id, entity_id, kind, op) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (request_id, entity_id) DO UPDATE SET op = excluded.op",
            )
            .bind(&self.request_id)
            .bind(id)
            .bind(kind.as_str())
            .bind(*op)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("log request entity"))?;
        }
        if let Some(sql) = self.notify_sql {
            sqlx::query(sql)
                .bind(self.generation.to_string())
                .execute(&mut *self.tx)
                .await
                .map_err(db_err("notify commit"))?;
        }
        self.tx.commit().await.map_err(db_err("commit"))?;
        crate::backend::advance(&self.notify, self.generation);
        Ok(self.generation)
    }

    /// Reads one object inside the transaction.
    pub async fn get<T: Body>(&mut self, scope: &Scope, id: &str) -> Result<Record<T>> {
        crate::get_with(&mut *self.tx, &self.cipher, scope, id).await
    }

    /// Kinds and ids of the objects that reference `id`, read inside the
    /// transaction (so a cascade over them is correct under concurrent writers).
    pub async fn users_of(&mut self, id: &str) -> Result<Vec<(Kind, String)>> {
        let rows = sqlx::query(
            "SELECT r.kind, r.id FROM resource_refs f JOIN resources r ON r.id = f.src_id \
             WHERE f.dst_id = $1 ORDER BY r.id",
        )
        .bind(id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err("read references"))?;
        Ok(rows
            .iter()
            .filter_map(|r| Kind::parse(r.get::<&str, _>(0)).map(|k| (k, r.get::<String, _>(1))))
            .collect())
    }

    /// The nodes of one gateway with their last reports, read inside the
    /// transaction (a rule that depends on what nodes realized sees the same
    /// state the write commits against).
    pub async fn node_states(&mut self, gateway_id: &str) -> Result<Vec<NodeState>> {
        let rows = sqlx::query(&format!(
            "{SELECT_NODE_STATE} WHERE n.gateway_id = $1 ORDER BY n.created_at, n.id"
        ))
        .bind(gateway_id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err("read nodes"))?;
        rows.iter().map(state_from).collect()
    }

    /// Generation of the last change carried by a gateway's nodes (0: none yet).
    pub async fn gateway_generation(&mut self, gateway_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT generation FROM gateway_generations WHERE gateway_id = $1")
            .bind(gateway_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err("read gateway generation"))?;
        Ok(row.map(|r| r.get::<i64, _>(0)).unwrap_or(0))
    }

    /// Whether any object references `id`.
    pub async fn is_referenced(&mut self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM resource_refs WHERE dst_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err("read references"))?;
        Ok(row.is_some())
    }

    fn secret_column<T: Body>(&self, body: &T, id: &str) -> Result<Option<String>> {
        body.secret().map(|s| self.cipher.encrypt(s, id)).transpose()
    }

    async fn write_refs<T: Body>(&mut self, id: &str, body: &T) -> Result<()> {
        sqlx::query("DELETE FROM resource_refs WHERE src_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("clear references"))?;
        for dst in body.refs() {
            sqlx::query("INSERT INTO resource_refs (src_id, dst_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(&dst)
                .execute(&mut *self.tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        Error::ReferenceGone { id: dst.clone() }
                    }
                    _ => Error::internal("write reference", e),
                })?;
        }
        Ok(())
    }

    /// Inserts a new object; its id is generated unless `meta.id` is given.
    pub async fn insert<T: Body>(&mut self, meta: NewMeta, body: T) -> Result<Record<T>> {
        let now = now_ms();
        let id = meta.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let doc = crate::body::encode(&body)?;
        let secret = self.secret_column(&body, &id)?;
        sqlx::query(
            "INSERT INTO resources (id, kind, project_id, name, description, body, secret, revision, \
             generation, created_at, updated_at, created_by, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $9, $10, $10)",
        )
        .bind(&id)
        .bind(T::KIND.as_str())
        .bind(&meta.project_id)
        .bind(&meta.name)
        .bind(&meta.description)
        .bind(&doc)
        .bind(&secret)
        .bind(self.generation)
        .bind(now)
        .bind(&self.actor)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::already_exists(T::KIND, "id", &id),
            _ => Error::internal("insert resource", e),
        })?;
        self.write_refs(&id, &body).await?;
        self.mark(&id).await?;
        self.touched.push((id.clone(), T::KIND, "create"));
        Ok(Record {
            meta: Meta {
                id,
                project_id: meta.project_id,
                name: meta.name,
                description: meta.description,
                revision: 0,
                generation: self.generation,
                created_at: now,
                updated_at: now,
                created_by: self.actor.clone(),
                updated_by: self.actor.clone(),
            },
            body,
        })
    }

    /// Writes back a changed object: revision + 1, this generation.
    pub async fn update<T: Body>(&mut self, mut rec: Record<T>) -> Result<Record<T>> {
        let now = now_ms();
        let doc = crate::body::encode(&rec.body)?;
        let secret = self.secret_column(&rec.body, &rec.meta.id)?;
        self.mark(&rec.meta.id).await?;
        let done = sqlx::query(
            "UPDATE resources SET name = $1, description = $2, body = $3, secret = $4, \
             revision = revision + 1, generation = $5, updated_at = $6, updated_by = $7 \
             WHERE id = $8 AND kind = $9 AND revision = $10",
        )
        .bind(&rec.meta.name)
        .bind(&rec.meta.description)
        .bind(&doc)
        .bind(&secret)
        .bind(self.generation)
        .bind(now)
        .bind(&self.actor)
        .bind(&rec.meta.id)
        .bind(T::KIND.as_str())
        .bind(rec.meta.revision)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err("update resource"))?;
        if done.rows_affected() != 1 {
            return Err(Error::StaleRevision {
                kind: T::KIND,
                id: rec.meta.id.clone(),
                given: Some(rec.meta.revision),
                current: rec.meta.revision + 1,
            });
        }
        self.write_refs(&rec.meta.id, &rec.body).await?;
        self.mark(&rec.meta.id).await?;
        rec.meta.revision += 1;
        rec.meta.generation = self.generation;
        rec.meta.updated_at = now;
        rec.meta.updated_by = self.actor.clone();
        self.touched.push((rec.meta.id.clone(), T::KIND, "update"));
        Ok(rec)
    }

    /// Deletes an object visible to `scope`; refuses (InUse) while referenced.
    pub async fn delete<T: Body>(&mut self, scope: &Scope, id: &str) -> Result<Record<T>> {
        let rec: Record<T> = self.get(scope, id).await?;
        if self.is_referenced(id).await? {
            return Err(Error::in_use(T::KIND, id));
        }
        self.mark(id).await?;
        sqlx::query("DELETE FROM resources WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::in_use(T::KIND, id),
                _ => Error::internal("delete resource", e),
            })?;
        sqlx::query(
            "INSERT INTO tombstones (id, kind, project_id, generation, deleted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, deleted_at = excluded.deleted_at",
        )
        .bind(id)
        .bind(T::KIND.as_str())
        .bind(&rec.meta.project_id)
        .bind(self.generation)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .map_err(db_err("write tombstone"))?;
        self.touched.push((id.to_string(), T::KIND, "delete"));
        Ok(rec)
    }
}
