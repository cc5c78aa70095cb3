//! The store: the only crate that speaks SQL.
//!
//! Why it looks like this:
//! - One transaction per API write. [`Store::begin`] allocates the write's
//!   generation from the global sequence and [`Tx::commit`] records the request id
//!   and every touched object in the same transaction, so a write and its
//!   realization bookkeeping land together or not at all.
//! - Objects are rows with their metadata in columns and their kind-specific body
//!   as a JSON document; references between objects are rows in `resource_refs`
//!   with a foreign key, so the database itself refuses to delete something in use.
//! - Secrets (pre-shared keys) are encrypted with AES-256-GCM before they reach SQL.
//! - No API rules live here: what may be written, and what a write implies for
//!   other objects, is the `app` crate's. The store keeps rows, references,
//!   generations, request ids and transactions, and answers reads.
//! - Reads that render objects with what they reference go through one
//!   snapshot and load those references by key ([`read`]), never whole tables.
//! - SQLite specifics (pragmas, the single-writer pool) live in [`backend`]; the
//!   SQL elsewhere is portable, with `$n` placeholders, so PostgreSQL can follow.

pub mod backend;
pub mod body;
pub mod crypto;
mod group;
pub mod identity;
pub mod nodes;
pub mod observe;
pub mod page;
pub mod read;
pub mod stats;
pub mod testing;
mod tx;

pub use backend::Database;
pub use body::Body;
pub use crypto::Cipher;
use model::{Error, Kind, Meta, Record, Result};
use sqlx::Row;
pub use tx::Tx;

/// Who may see what: everything (admin) or one project's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every project's objects (an admin caller, the server itself).
    All,
    /// Only the objects of this project id.
    Project(String),
}

impl Scope {
    /// Whether an object of `project_id` is visible in this scope.
    pub fn allows(&self, project_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Project(p) => p == project_id,
        }
    }
}

/// Identifies one API write: its request id (returned as `x-nsx-requestid`) and actor.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// Logged with the write's generation, so a realization-state query by
    /// request id finds it.
    pub request_id: uuid::Uuid,
    /// Recorded as `created_by` / `updated_by`: the user name, or a fixed name
    /// for the server's and the operator's own writes.
    pub actor: String,
}

impl WriteCtx {
    /// A write by `actor` under a fresh request id.
    pub fn new(actor: impl Into<String>) -> WriteCtx {
        WriteCtx {
            request_id: uuid::Uuid::new_v4(),
            actor: actor.into(),
        }
    }
}

/// Fields common to every new object.
#[derive(Debug, Clone)]
pub struct NewMeta {
    /// The id to create the object under; None: a new UUID.
    pub id: Option<String>,
    /// The owning project.
    pub project_id: String,
    /// Free-form name; may be empty.
    pub name: String,
    /// Free-form description; may be empty.
    pub description: String,
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: backend::Pools,
    cipher: Cipher,
    /// The last generation committed by this process; watchers wake on change.
    notify: tokio::sync::watch::Sender<i64>,
    /// Dropped with the last clone of the store: ends the commit listener.
    _follow: std::sync::Arc<tokio::sync::oneshot::Sender<()>>,
    /// Who is told how long waits and commits take ([`observe`]).
    observer: observe::Slot,
    /// Node reports waiting to be written together ([`Store::node_report`]).
    reports: std::sync::Arc<nodes::ReportQueue>,
}

/// Milliseconds since the Unix epoch: the one clock every stored timestamp
/// (token issue/expiry, node reports, object creation) and every comparison
/// against one is read from.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// SHA-256 of `data` in lower-case hex: how the store keys credentials it must
/// recognise but never keep (bearer tokens, node certificate fingerprints).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// What the store keeps of a bearer token (a Keystone token, a node token):
/// its [`sha256_hex`], never the token itself. Issuing and looking up both
/// hash here, so the two can't disagree.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// A new bearer token: 256 random bits, URL-safe base64 (shown to its holder
/// once), and the [`token_hash`] the store keeps of it.
pub fn new_token() -> (String, String) {
    use base64::Engine;
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

pub(crate) fn db_err(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::internal(context, e)
}

impl Store {
    /// Opens (creating if needed) the database and runs migrations: a SQLite
    /// file path, or a [`Database`].
    pub async fn open(db: impl Into<Database>, cipher: Cipher) -> Result<Store> {
        let db = backend::Pools::open(&db.into()).await?;
        let current: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'generation'")
            .fetch_one(&db.read)
            .await
            .map_err(db_err("read generation"))?
            .get(0);
        let (notify, _) = tokio::sync::watch::channel(current);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        db.follow_commits(notify.clone(), stop_rx);
        Ok(Store {
            db,
            cipher,
            notify,
            _follow: std::sync::Arc::new(stop_tx),
            observer: observe::Slot::default(),
            reports: Default::default(),
        })
    }

    /// A receiver that changes whenever a write commits: this process's at
    /// once, and on PostgreSQL every other replica's too (`LISTEN`).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.notify.subscribe()
    }

    /// Whether [`Store::subscribe`] also sees other processes' commits
    /// (PostgreSQL); with SQLite only this process's (another process on the
    /// same file, e.g. the admin CLI, is seen by re-reading).
    pub fn sees_other_writers(&self) -> bool {
        self.db.is_postgres()
    }

    pub(crate) fn notifier(&self) -> tokio::sync::watch::Sender<i64> {
        self.notify.clone()
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Starts a write transaction and allocates its generation.
    pub async fn begin(&self, w: &WriteCtx) -> Result<Tx<'static>> {
        let started = std::time::Instant::now();
        let tx = Tx::begin(self, w).await;
        if let Some(o) = self.observer.get() {
            o.waited(observe::Wait::Write, started.elapsed());
        }
        tx
    }

    /// Installs the [`observe::Observer`] of this store and its clones (once:
    /// false if one was installed already).
    pub fn set_observer(&self, o: std::sync::Arc<dyn observe::Observer>) -> bool {
        self.observer.set(o)
    }

    pub(crate) fn observer(&self) -> Option<&std::sync::Arc<dyn observe::Observer>> {
        self.observer.get()
    }

    /// The latest committed generation.
    pub async fn generation_current(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'generation'")
            .fetch_one(&self.db.read)
            .await
            .map_err(db_err("read generation"))?;
        Ok(row.get::<i64, _>(0))
    }

    /// Reads one object visible to `scope`.
    pub async fn get<T: Body>(&self, scope: &Scope, id: &str) -> Result<Record<T>> {
        get_with(&self.db.read, &self.cipher, scope, id).await
    }

    /// Lists every object of a kind visible to `scope`, oldest first.
    pub async fn list<T: Body>(&self, scope: &Scope) -> Result<Vec<Record<T>>> {
        list_with(&self.db.read, &self.cipher, scope).await
    }

    /// One page of a kind visible to `scope`, read in SQL ([`page`]).
    pub async fn page<T: Body>(&self, scope: &Scope, q: &page::PageQuery) -> Result<Vec<Record<T>>> {
        page::page_with(&self.db.read, &self.cipher, scope, q, self.db.is_postgres()).await
    }

    /// How many objects of `kind` visible to `scope` meet `q`'s filters
    /// ([`page::PageQuery`]; its marker, limit and offset aside).
    pub async fn count(&self, kind: Kind, scope: &Scope, q: &page::PageQuery) -> Result<u64> {
        page::count_with(&self.db.read, kind, scope, q).await
    }

    /// [`Store::page`] of [`page::Names`] only: no body decoded, no secret decrypted.
    pub async fn page_names(
        &self,
        kind: Kind,
        scope: &Scope,
        q: &page::PageQuery,
    ) -> Result<Vec<page::Names>> {
        page::page_names_with(&self.db.read, kind, scope, q, self.db.is_postgres()).await
    }

    /// [`Store::page_names`] as one JSON array of objects with `keys` (a key and
    /// the column it shows), built by the database ([`page::NamesJson`]).
    pub async fn page_names_json(
        &self,
        kind: Kind,
        scope: &Scope,
        q: &page::PageQuery,
        keys: &[(&str, page::Column)],
    ) -> Result<page::NamesJson> {
        page::page_names_json_with(&self.db.read, kind, scope, q, keys, self.db.is_postgres()).await
    }

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

    /// Generation and touched objects of a logged request.
    pub async fn request_get(&self, request_id: &str) -> Result<Option<(i64, Vec<String>)>> {
        let row = sqlx::query("SELECT generation FROM requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.db.read)
            .await
            .map_err(db_err("read request"))?;
        let Some(row) = row else { return Ok(None) };
        let ids = sqlx::query("SELECT entity_id FROM request_entities WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&self.db.read)
            .await
            .map_err(db_err("read request entities"))?;
        Ok(Some((
            row.get(0),
            ids.iter().map(|r| r.get::<String, _>(0)).collect(),
        )))
    }

    pub(crate) fn pools(&self) -> &backend::Pools {
        &self.db
    }

    pub(crate) fn read_pool(&self) -> &backend::Pool {
        &self.db.read
    }

    pub(crate) fn write_pool(&self) -> &backend::Pool {
        &self.db.write
    }
}

pub(crate) const SELECT_RESOURCE: &str = "SELECT id, project_id, name, description, body, secret, \
     revision, generation, created_at, updated_at, created_by, updated_by FROM resources";

/// One object visible to `scope`, through any executor (the read pool, a
/// write transaction, a snapshot). Another project's object is not found,
/// exactly like a missing one.
pub(crate) async fn get_with<'e, T: Body, E>(
    exec: E,
    cipher: &Cipher,
    scope: &Scope,
    id: &str,
) -> Result<Record<T>>
where
    E: sqlx::Executor<'e, Database = backend::Db>,
{
    let row = sqlx::query(&format!("{SELECT_RESOURCE} WHERE id = $1 AND kind = $2"))
        .bind(id)
        .bind(T::KIND.as_str())
        .fetch_optional(exec)
        .await
        .map_err(db_err("read resource"))?;
    match row {
        Some(row) => {
            let rec: Record<T> = decode_row(&row, cipher)?;
            if scope.allows(&rec.meta.project_id) {
                Ok(rec)
            } else {
                Err(Error::not_found(T::KIND, id))
            }
        }
        None => Err(Error::not_found(T::KIND, id)),
    }
}

/// Every object of a kind visible to `scope`, oldest first, through any executor.
pub(crate) async fn list_with<'e, T: Body, E>(
    exec: E,
    cipher: &Cipher,
    scope: &Scope,
) -> Result<Vec<Record<T>>>
where
    E: sqlx::Executor<'e, Database = backend::Db>,
{
    let rows = match scope {
        Scope::All => {
            sqlx::query(&format!(
                "{SELECT_RESOURCE} WHERE kind = $1 ORDER BY created_at, id"
            ))
            .bind(T::KIND.as_str())
            .fetch_all(exec)
            .await
        }
        Scope::Project(p) => {
            sqlx::query(&format!(
                "{SELECT_RESOURCE} WHERE kind = $1 AND project_id = $2 ORDER BY created_at, id"
            ))
            .bind(T::KIND.as_str())
            .bind(p)
            .fetch_all(exec)
            .await
        }
    }
    .map_err(db_err("list resources"))?;
    rows.iter().map(|r| decode_row(r, cipher)).collect()
}

pub(crate) fn decode_row<T: Body>(row: &backend::Row, cipher: &Cipher) -> Result<Record<T>> {
    let meta = meta_from(row);
    let body: &str = row.get("body");
    let mut body: T = body::decode(body)?;
    if let Some(secret) = row.get::<Option<String>, _>("secret") {
        body.set_secret(cipher.decrypt(&secret, &meta.id)?);
    }
    Ok(Record { meta, body })
}

/// The metadata columns of a `resources` row.
pub(crate) fn meta_from(row: &backend::Row) -> Meta {
    Meta {
        id: row.get("id"),
        project_id: row.get("project_id"),
        name: row.get("name"),
        description: row.get("description"),
        revision: row.get("revision"),
        generation: row.get("generation"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        created_by: row.get("created_by"),
        updated_by: row.get("updated_by"),
    }
}
