//! A write transaction: one generation, one request id, every touched object logged.
//! Every read a write depends on is made through it, inside the transaction.
//!
//! A write is a savepoint in this process's open batch ([`crate::group`]):
//! concurrent writes share one database commit (one fsync), and each
//! [`Tx::commit`] returns only after the commit that covers it.

use model::{Error, Kind, Meta, Record, Result};
use sqlx::Row;

use crate::group::{self, Member};
use crate::nodes::{NodeState, SELECT_NODE_STATE, state_from};
use crate::{Body, Cipher, NewMeta, Scope, Store, WriteCtx, db_err, now_ms};

/// One write transaction: begun by [`Store::begin`], ended by [`Tx::commit`]
/// (dropped without it, it rolls back, its generation included).
pub struct Tx<'c> {
    /// This write's savepoint in the open batch, holding this process's turn
    /// to write (see `backend::Pools::gate`) until it is released into the
    /// batch or rolled back.
    member: Member,
    cipher: Cipher,
    generation: i64,
    request_id: String,
    actor: String,
    touched: Vec<(String, Kind, &'static str)>,
    gateways: std::collections::BTreeSet<String>,
    /// Told how long the commit took ([`crate::observe`]).
    observer: Option<std::sync::Arc<dyn crate::observe::Observer>>,
    _borrows: std::marker::PhantomData<&'c ()>,
}

/// Everything that (transitively) uses `$1`, including itself.
const USERS_OF: &str = "WITH RECURSIVE up(id) AS (SELECT $1 UNION SELECT r.src_id FROM resource_refs r JOIN up ON r.dst_id = up.id)";

/// The gateways that carry `$1` or anything that uses it: walk up to every user,
/// then down (a few hops: connection → endpoint → service → gateway) to gateways.
const SPAN_GATEWAYS: &str = "WITH RECURSIVE up(id) AS (SELECT $1 UNION SELECT r.src_id FROM resource_refs r JOIN up ON r.dst_id = up.id), \
     down(id, depth) AS (SELECT id, 0 FROM up UNION SELECT r.dst_id, d.depth + 1 FROM resource_refs r JOIN down d ON r.src_id = d.id WHERE d.depth < 4) \
     SELECT DISTINCT g.id FROM down JOIN resources g ON g.id = down.id WHERE g.kind = 'gateway'";

/// Rows per multi-row INSERT (well under every engine's bound on parameters).
const ROWS_PER_INSERT: usize = 100;

/// `($1, $2), ($3, $4), ...`: `rows` tuples of `columns` placeholders.
fn values(rows: usize, columns: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * columns + c + 1));
        }
        out.push(')');
    }
    out
}

impl Tx<'static> {
    pub(crate) async fn begin(store: &Store, w: &WriteCtx) -> Result<Tx<'static>> {
        let member = group::begin(&store.pools().group, &store.notifier()).await?;
        Ok(Tx {
            generation: member.generation(),
            member,
            cipher: store.cipher().clone(),
            request_id: w.request_id.to_string(),
            actor: w.actor.clone(),
            touched: Vec::new(),
            gateways: Default::default(),
            observer: store.observer().cloned(),
            _borrows: std::marker::PhantomData,
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
        self.span(id).await?;
        sqlx::query(&format!(
            "{USERS_OF} UPDATE resources SET generation = $2 WHERE id IN (SELECT id FROM up) AND id <> $1"
        ))
        .bind(id)
        .bind(self.generation)
        .execute(self.member.conn())
        .await
        .map_err(db_err("stamp users"))?;
        Ok(())
    }

    /// Marks the gateways whose nodes carry `id` (or anything using it) as
    /// changed by this write. Enough for a new object: nothing uses it yet.
    async fn span(&mut self, id: &str) -> Result<()> {
        let rows = sqlx::query(SPAN_GATEWAYS)
            .bind(id)
            .fetch_all(self.member.conn())
            .await
            .map_err(db_err("compute span"))?;
        for r in rows {
            self.gateways.insert(r.get::<String, _>(0));
        }
        Ok(())
    }

    /// Records the request id and the touched objects, then commits: returns
    /// once the commit that covers this write (with the batch it is in) is
    /// durable, and fails if that commit did.
    pub async fn commit(self) -> Result<i64> {
        let started = std::time::Instant::now();
        let observer = self.observer.clone();
        let done = self.commit_logged().await;
        if let Some(o) = observer {
            o.committed(started.elapsed(), done.is_ok());
        }
        done
    }

    async fn commit_logged(mut self) -> Result<i64> {
        let now = now_ms();
        let gateways: Vec<&String> = self.gateways.iter().collect();
        for chunk in gateways.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO gateway_generations (gateway_id, generation) VALUES {} \
                 ON CONFLICT (gateway_id) DO UPDATE SET generation = excluded.generation",
                values(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for gw in chunk {
                q = q.bind(*gw).bind(self.generation);
            }
            q.execute(self.member.conn())
                .await
                .map_err(db_err("stamp gateway generation"))?;
        }
        sqlx::query("INSERT INTO requests (request_id, generation, created_at) VALUES ($1, $2, $3)")
            .bind(&self.request_id)
            .bind(self.generation)
            .bind(now)
            .execute(self.member.conn())
            .await
            .map_err(db_err("log request"))?;
        // One row per entity, with its last operation (one statement may not
        // name a row twice on PostgreSQL).
        let mut entities: Vec<(&str, Kind, &'static str)> = Vec::with_capacity(self.touched.len());
        for (id, kind, op) in &self.touched {
            match entities.iter_mut().find(|e| e.0 == id.as_str()) {
                Some(e) => e.2 = op,
                None => entities.push((id.as_str(), *kind, op)),
            }
        }
        for chunk in entities.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO request_entities (request_id, entity_id, kind, op) VALUES {} \
                 ON CONFLICT (request_id, entity_id) DO UPDATE SET op = excluded.op",
                values(chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (id, kind, op) in chunk {
                q = q.bind(&self.request_id).bind(*id).bind(kind.as_str()).bind(*op);
            }
            q.execute(self.member.conn())
                .await
                .map_err(db_err("log request entity"))?;
        }
        self.member.commit().await?;
        Ok(self.generation)
    }

    /// Runs one statement inside the transaction (tests).
    #[cfg(test)]
    pub(crate) async fn execute_raw(&mut self, sql: &str) -> Result<()> {
        use sqlx::Executor;
        self.member.conn().execute(sql).await.map_err(db_err("execute"))?;
        Ok(())
    }

    /// Reads one object inside the transaction.
    pub async fn get<T: Body>(&mut self, scope: &Scope, id: &str) -> Result<Record<T>> {
        crate::get_with(self.member.conn(), &self.cipher, scope, id).await
    }

    /// Kinds and ids of the objects that reference `id`, read inside the
    /// transaction (so a cascade over them is correct under concurrent writers).
    pub async fn users_of(&mut self, id: &str) -> Result<Vec<(Kind, String)>> {
        let rows = sqlx::query(
            "SELECT r.kind, r.id FROM resource_refs f JOIN resources r ON r.id = f.src_id \
             WHERE f.dst_id = $1 ORDER BY r.id",
        )
        .bind(id)
        .fetch_all(self.member.conn())
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
        .fetch_all(self.member.conn())
        .await
        .map_err(db_err("read nodes"))?;
        rows.iter().map(state_from).collect()
    }

    /// Generation of the last change carried by a gateway's nodes (0: none yet).
    pub async fn gateway_generation(&mut self, gateway_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT generation FROM gateway_generations WHERE gateway_id = $1")
            .bind(gateway_id)
            .fetch_optional(self.member.conn())
            .await
            .map_err(db_err("read gateway generation"))?;
        Ok(row.map(|r| r.get::<i64, _>(0)).unwrap_or(0))
    }

    /// Whether any object references `id`.
    pub async fn is_referenced(&mut self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM resource_refs WHERE dst_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(self.member.conn())
            .await
            .map_err(db_err("read references"))?;
        Ok(row.is_some())
    }

    fn secret_column<T: Body>(&self, body: &T, id: &str) -> Result<Option<String>> {
        body.secret().map(|s| self.cipher.encrypt(s, id)).transpose()
    }

    /// Writes `id`'s references (`fresh`: a new object, which has none yet).
    async fn write_refs<T: Body>(&mut self, id: &str, body: &T, fresh: bool) -> Result<()> {
        if !fresh {
            sqlx::query("DELETE FROM resource_refs WHERE src_id = $1")
                .bind(id)
                .execute(self.member.conn())
                .await
                .map_err(db_err("clear references"))?;
        }
        for dst in body.refs() {
            sqlx::query("INSERT INTO resource_refs (src_id, dst_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(&dst)
                .execute(self.member.conn())
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
        .execute(self.member.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::already_exists(T::KIND, "id", &id),
            _ => Error::internal("insert resource", e),
        })?;
        // New: no references from it to clear, and nothing uses it yet.
        self.write_refs(&id, &body, true).await?;
        self.span(&id).await?;
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
        .execute(self.member.conn())
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
        self.write_refs(&rec.meta.id, &rec.body, false).await?;
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
            .execute(self.member.conn())
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
        .execute(self.member.conn())
        .await
        .map_err(db_err("write tombstone"))?;
        self.touched.push((id.to_string(), T::KIND, "delete"));
        Ok(rec)
    }
}
