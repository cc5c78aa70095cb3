//! The one place that knows which database engine is underneath: SQLite (one
//! file, the default) or PostgreSQL (`--db postgres://...`, for several API
//! replicas). Everything else in the store is one code path over
//! [`sqlx::Any`] with portable SQL (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, recursive CTEs) and one set of migrations.
//!
//! Three pools, each with a fixed durability that no request can change:
//! - `write`: durable writes (every API write), committed only when on disk:
//!   SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`.
//! - `soft`: node reports only (soft state: every node re-sends its whole state
//!   at least once per heartbeat): SQLite `synchronous = NORMAL`, PostgreSQL
//!   `synchronous_commit = off`. A crash can lose the last reports, never
//!   corrupt anything or lose an acknowledged desired-state write. A pool of its
//!   own because a per-statement toggle on the shared writer is not
//!   cancellation-safe: a request dropped between the two toggles left the
//!   durable writer at NORMAL for good.
//! - `read`: connections that see the last committed state.
//!
//! Writers are serialized: within one process by an async gate
//! ([`Pools::gate`]); across processes by the database — SQLite's single write
//! lock (`BEGIN IMMEDIATE`), and on PostgreSQL by the row lock every batch of
//! writes takes first, on the global generation counter (see `crate::group`).
//! So every read a write makes after it began sees every write committed before
//! it, under `READ COMMITTED`, and generations commit in order. One process's
//! concurrent writes share a transaction (each a savepoint in it) and so one
//! commit and one fsync; each is acknowledged only after that commit.
//!
//! SQLite: mixing the two durabilities in one WAL is sound: frames are appended
//! in commit order, and a FULL commit fsyncs the WAL up to and including its
//! own frames, so it also makes every earlier NORMAL commit durable. The
//! database file holds secrets' ciphertext, token hashes and certificate
//! fingerprints: it is created with mode 0600 before SQLite opens it, and
//! SQLite gives its `-wal` and `-shm` files the mode of the database file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use model::{Error, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::{Connection, Executor};

/// The one database type every query is written against (SQLite or PostgreSQL
/// underneath).
pub type Db = sqlx::Any;
/// A connection pool over [`Db`].
pub type Pool = sqlx::AnyPool;
/// A result row over [`Db`].
pub type Row = sqlx::any::AnyRow;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a SQLite connection waits for the write lock before SQLITE_BUSY
/// (only another process, e.g. the admin CLI, can hold it that long).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many read connections a process keeps.
const READERS: u32 = 8;

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite database file (created on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host/db`).
    Postgres(String),
}

impl Database {
    /// The engine's name, for logs and errors.
    pub fn engine(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

impl FromStr for Database {
    type Err = std::convert::Infallible;
    /// `postgres://` or `postgresql://` URLs are PostgreSQL; `sqlite://PATH`
    /// or any other string is a SQLite file path.
    fn from_str(s: &str) -> std::result::Result<Database, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Database::Postgres(s.to_string()))
        } else {
            Ok(Database::Sqlite(PathBuf::from(
                s.strip_prefix("sqlite://").unwrap_or(s),
            )))
        }
    }
}

impl From<&Path> for Database {
    fn from(p: &Path) -> Database {
        Database::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Database {
    fn from(p: &PathBuf) -> Database {
        Database::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Database {
        Database::Sqlite(p)
    }
}

/// Shows a PostgreSQL URL without its password, so it can be logged.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(u) => match url_without_password(u) {
                Some(u) => f.write_str(&u),
                None => f.write_str("postgres://(unparsable URL)"),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

fn url_without_password(u: &str) -> Option<String> {
    let (scheme, rest) = u.split_once("://")?;
    match rest.split_once('@') {
        Some((creds, host)) => {
            let user = creds.split_once(':').map_or(creds, |(user, _)| user);
            Some(format!("{scheme}://{user}@{host}"))
        }
        None => Some(u.to_string()),
    }
}

/// The pools of one store, and which engine they talk to.
#[derive(Clone)]
pub struct Pools {
    /// Read-only connections (reads and snapshots).
    pub read: Pool,
    /// Durable writes.
    pub write: Pool,
    /// Soft-state writes (node reports).
    pub soft: Pool,
    /// Held by every write and every report for as long as it writes (and
    /// by the write that commits a batch, while it commits): this process's
    /// writers queue here instead of polling the
    /// database's lock (SQLite's `busy_timeout` sleeps in steps of up to
    /// 100 ms). Waiting here is cancellation-safe.
    pub gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The open batch of writes sharing one commit (see [`crate::group`]).
    pub(crate) group: std::sync::Arc<crate::group::Group>,
    postgres: bool,
    /// The PostgreSQL URL, for the commit listener.
    url: Option<String>,
}

/// The PostgreSQL channel every commit notifies with its generation, so that
/// every replica's long-polling nodes wake at once, whichever replica wrote.
pub const COMMIT_CHANNEL: &str = "vpnaas_commits";

/// Creates the database file with mode 0600 if it does not exist yet, so that
/// SQLite (which would create it 0644 under the usual umask) opens a private
/// file and derives the `-wal`/`-shm` modes from it. An existing file keeps the
/// mode its operator gave it; a warning says when that is readable by others.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "database file is accessible by other users; consider chmod 600"
                );
            }
            Ok(())
        }
        Err(e) => Err(Error::internal("create database file", e)),
    }
}

/// A pool whose every new connection first runs `setup` (pragmas / settings).
async fn pool(url: &str, max: u32, setup: &'static str, what: &'static str) -> Result<Pool> {
    AnyPoolOptions::new()
        .max_connections(max)
        // A broken connection surfaces as an error on use; pinging before
        // every acquire costs a round trip per query.
        .test_before_acquire(false)
        // A connection handed back while still inside a transaction (its
        // owner was dropped between BEGIN and the `Transaction` that ends
        // it) would give its next user a stale view or a nested savepoint:
        // close it instead of lending it out.
        .before_acquire(move |conn, _| {
            Box::pin(async move {
                let clean = !conn.is_in_transaction();
                if !clean {
                    tracing::warn!(
                        pool = what,
                        "closing a pooled connection left inside a transaction"
                    );
                }
                Ok(clean)
            })
        })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if !setup.is_empty() {
                    conn.execute(setup).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| Error::internal(what, e))
}

impl Pools {
    /// Connects (creating a SQLite file with mode 0600), runs the migrations
    /// and opens the read, write and soft-state pools with their settings.
    pub async fn open(db: &Database) -> Result<Pools> {
        sqlx::any::install_default_drivers();
        let (url, write_setup, soft_setup, read_setup, postgres) = match db {
            Database::Sqlite(path) => {
                create_private(path)?;
                let file = format!("sqlite://{}", path.display());
                // journal_mode is a property of the file (set by the writer);
                // foreign keys and the busy timeout are per connection.
                const WRITE: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000";
                const SOFT: &str =
                    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000";
                const READ: &str = "PRAGMA query_only = ON; PRAGMA busy_timeout = 10000";
                debug_assert_eq!(BUSY_TIMEOUT.as_millis(), 10_000);
                (format!("{file}?mode=rwc"), WRITE, SOFT, READ, false)
            }
            // `jit = off`: the store's statements are short keyed reads and
            // writes, but the planner's row estimates for the recursive span
            // queries run into millions, which crossed `jit_above_cost` and
            // compiled them on every write (20-60 ms of the database's CPU per
            // write for a query that runs in under 3 ms; deletes ran at 10/s).
            Database::Postgres(url) => (
                url.clone(),
                "SET synchronous_commit = on; SET jit = off",
                "SET synchronous_commit = off; SET jit = off",
                "SET default_transaction_read_only = on; SET jit = off",
                true,
            ),
        };
        let write = pool(&url, 1, write_setup, "open database").await?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| Error::internal("migrate database", e))?;
        let soft = pool(&url, 1, soft_setup, "open database for reports").await?;
        let read = pool(&url, READERS, read_setup, "open database for reading").await?;
        let gate: std::sync::Arc<tokio::sync::Mutex<()>> = Default::default();
        let group = crate::group::Group::new(
            gate.clone(),
            write.clone(),
            postgres,
            begin_write(postgres),
            commit_notify(postgres),
        );
        Ok(Pools {
            read,
            write,
            soft,
            gate,
            group: std::sync::Arc::new(group),
            postgres,
            url: postgres.then_some(url),
        })
    }

    /// This process's turn to write with no batch of writes open (an open
    /// one is committed first): for a write on another connection, which
    /// would otherwise wait for the batch's write lock.
    pub(crate) async fn exclusive(&self) -> crate::group::Exclusive {
        self.group.exclusive().await
    }

    /// SQL that starts a write transaction. SQLite: holding the write lock from
    /// the start. PostgreSQL: `READ COMMITTED`; the transaction's first
    /// statement locks the generation counter row, which serializes writers.
    pub fn begin_write(&self) -> &'static str {
        begin_write(self.postgres)
    }

    /// SQL that starts a read transaction seeing one consistent state
    /// (SQLite: every read transaction does; PostgreSQL: `REPEATABLE READ`).
    pub fn begin_snapshot(&self) -> &'static str {
        if self.postgres {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN"
        }
    }

    /// A query answering the durable writer's durability setting as text:
    /// SQLite `PRAGMA synchronous` (2 = FULL), PostgreSQL `synchronous_commit`.
    pub fn durability_query(&self) -> &'static str {
        if self.postgres {
            "SELECT current_setting('synchronous_commit')"
        } else {
            "SELECT CAST(synchronous AS TEXT) FROM pragma_synchronous"
        }
    }

    /// Whether the engine is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// SQL a write transaction runs before it commits to tell other
    /// processes its generation (`$1`, text), if the engine can: PostgreSQL
    /// delivers `NOTIFY` at commit, and only if the transaction commits.
    pub fn commit_notify(&self) -> Option<&'static str> {
        commit_notify(self.postgres)
    }

    /// Follows other processes' commits (PostgreSQL `LISTEN`), moving `notify`
    /// to each newer generation, until `stop` resolves (the store is gone).
    /// After a lost connection it reconnects and re-reads the generation, so a
    /// commit notified while it was away is not missed. SQLite has one writing
    /// process: nothing to follow.
    pub fn follow_commits(
        &self,
        notify: tokio::sync::watch::Sender<i64>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let Some(url) = self.url.clone() else { return };
        let read = self.read.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop => {}
                _ = follow(url, read, notify) => {}
            }
        });
    }
}

fn begin_write(postgres: bool) -> &'static str {
    if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" }
}

fn commit_notify(postgres: bool) -> Option<&'static str> {
    // `void` cast to text: the Any driver has no `void` type.
    postgres.then_some("SELECT CAST(pg_notify('vpnaas_commits', $1) AS TEXT)")
}

/// Moves `notify` forward to `generation` if that is newer.
pub fn advance(notify: &tokio::sync::watch::Sender<i64>, generation: i64) {
    notify.send_if_modified(|g| {
        let newer = generation > *g;
        if newer {
            *g = generation;
        }
        newer
    });
}

async fn follow(url: String, read: Pool, notify: tokio::sync::watch::Sender<i64>) {
    use sqlx::Row;
    let mut backoff = Duration::from_millis(100);
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen(COMMIT_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "commit listener: cannot listen; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Whatever committed before LISTEN took effect.
        if let Ok(row) = sqlx::query("SELECT value FROM counters WHERE name = 'generation'")
            .fetch_one(&read)
            .await
        {
            advance(&notify, row.get::<i64, _>(0));
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(g) = n.payload().parse::<i64>() {
                        advance(&notify, g);
                    }
                }
                // The connection was lost (and is re-established on the next
                // call): re-read what may have been missed.
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "commit listener: connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}
