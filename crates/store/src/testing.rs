//! Fresh databases for tests, on the engine the test run asks for.
//!
//! Every test of every crate that needs a store takes one from [`fresh`]: a
//! SQLite file in a temporary directory by default, or — when
//! `VPNAAS_TEST_PG` holds a PostgreSQL URL (as `scripts/test.sh` sets it for
//! its second pass) — a new database on that server, created for the test
//! and dropped when the [`TestDb`] is. So one suite proves both backends.

pub mod statements;

use std::path::PathBuf;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use crate::Database;

/// The environment variable naming the PostgreSQL server tests use.
pub const PG_ENV: &str = "VPNAAS_TEST_PG";

/// A database that exists for one test.
pub struct TestDb {
    /// Where it is.
    pub db: Database,
    /// The directory of a SQLite database (removed on drop).
    pub dir: Option<PathBuf>,
    /// The server URL and name of a PostgreSQL database (dropped on drop).
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Whether the database is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// The PostgreSQL admin URL of this test run, if it asks for PostgreSQL.
pub fn pg_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())
}

/// A new, empty database on the engine this test run asks for.
pub async fn fresh() -> TestDb {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    match pg_url() {
        Some(admin) => {
            sqlx::any::install_default_drivers();
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("{PG_ENV}: cannot connect: {e}"));
            pool.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
            pool.close().await;
            let url = with_database(&admin, &name);
            TestDb {
                db: Database::Postgres(url),
                dir: None,
                pg: Some((admin, name)),
            }
        }
        None => {
            let dir = std::env::temp_dir().join(format!("vpnaas-{name}"));
            std::fs::create_dir_all(&dir).expect("create test directory");
            TestDb {
                db: Database::Sqlite(dir.join("t.db")),
                dir: Some(dir),
                pg: None,
            }
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = self.pg.take() {
            // Dropped from a thread of its own: a test's runtime may be gone,
            // or be the current-thread runtime that must not block.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(pool) = AnyPoolOptions::new().max_connections(1).connect(&admin).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = pool.execute(sql.as_str()).await;
                            pool.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5/postgres", "t_1"),
            "postgres://u:p@127.0.0.1:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
