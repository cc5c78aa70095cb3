//! The one place that knows the database is SQLite: connection options,
//! pragmas, file modes and the pool layout.
//!
//! Three pools, each with a fixed durability that no request can change:
//! - `write`: one connection, `synchronous = FULL`. Desired state (every API
//!   write) goes through it; writers queue in the pool instead of failing with
//!   SQLITE_BUSY, and every commit is fsynced before it is acknowledged.
//! - `soft`: one connection, `synchronous = NORMAL`, used only for node reports
//!   (soft state: every node re-sends its whole state at least once per
//!   heartbeat). Its commits append to the WAL without an fsync; a crash can
//!   lose the last reports, never corrupt the database. This is a connection of
//!   its own because a per-statement `PRAGMA synchronous` toggle on the shared
//!   writer is not cancellation-safe: a request dropped between the two
//!   toggles left the durable writer at NORMAL for good.
//! - `read`: read-only connections that see the last committed state (WAL).
//!
//! Mixing the two durabilities in one WAL is sound: frames are appended in
//! commit order, and a FULL commit fsyncs the WAL up to and including its own
//! frames, so it also makes every earlier NORMAL commit durable. A NORMAL commit
//! can only ever be lost together with the commits after it, never before them,
//! so an acknowledged desired-state write never depends on an unsynced report.
//! The soft and durable connections still share SQLite's single write lock;
//! within one process they take turns through an async gate (`Pools::gate`),
//! and `busy_timeout` only covers other processes (the admin CLI).
//!
//! The database file holds secrets' ciphertext, token hashes and certificate
//! fingerprints: it is created with mode 0600 before SQLite opens it, and SQLite
//! gives its `-wal` and `-shm` files the mode of the database file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use model::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub type Db = sqlx::Sqlite;
pub type Pool = sqlx::Pool<Db>;
pub type Row = sqlx::sqlite::SqliteRow;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for SQLite's write lock before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Pools {
    pub read: Pool,
    /// Durable writes (`synchronous = FULL`).
    pub write: Pool,
    /// Soft-state writes (node reports, `synchronous = NORMAL`).
    pub soft: Pool,
    /// Held by every write transaction and every report for as long as it
    /// writes: the two writer connections queue here, in this process, instead
    /// of polling SQLite's write lock through `busy_timeout` (which sleeps in
    /// steps of up to 100 ms). Waiting here is cancellation-safe.
    pub gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

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

impl Pools {
    pub async fn open(path: &Path) -> Result<Pools> {
        create_private(path)?;
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|e| Error::internal("database path", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Acknowledged writes survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(|e| Error::internal("open database", e))?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| Error::internal("migrate database", e))?;
        let soft = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone().synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(|e| Error::internal("open database for reports", e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(true))
            .await
            .map_err(|e| Error::internal("open database for reading", e))?;
        Ok(Pools {
            read,
            write,
            soft,
            gate: Default::default(),
        })
    }
}

/// SQL that starts a write transaction holding the write lock from the start.
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
