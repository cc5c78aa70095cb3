//! The one place that knows the database is SQLite: connection options,
//! pragmas, and the pool layout. Writes go through a pool of one connection, so
//! writers queue in the pool instead of failing with SQLITE_BUSY; reads use a
//! separate pool and see the last committed state (WAL).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use model::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub type Db = sqlx::Sqlite;
pub type Pool = sqlx::Pool<Db>;
pub type Row = sqlx::sqlite::SqliteRow;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Pools {
    pub read: Pool,
    pub write: Pool,
}

impl Pools {
    pub async fn open(path: &Path) -> Result<Pools> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|e| Error::internal("database path", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Acknowledged writes survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(|e| Error::internal("open database", e))?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| Error::internal("migrate database", e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(true))
            .await
            .map_err(|e| Error::internal("open database for reading", e))?;
        Ok(Pools { read, write })
    }
}

/// SQL that starts a write transaction holding the write lock from the start.
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Switches the writer connection between durable (`FULL`, an fsync per commit)
/// and soft-state (`NORMAL`: no fsync; a crash can lose the last commits, never
/// corrupt) writes.
pub async fn soft_writes(conn: &mut sqlx::pool::PoolConnection<Db>, soft: bool) -> Result<()> {
    let sql = if soft {
        "PRAGMA synchronous = NORMAL"
    } else {
        "PRAGMA synchronous = FULL"
    };
    sqlx::query(sql)
        .execute(&mut **conn)
        .await
        .map(|_| ())
        .map_err(|e| Error::internal("set synchronous", e))
}
