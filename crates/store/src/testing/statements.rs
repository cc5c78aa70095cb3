//! The SQL statements a piece of code makes the store issue, counted from
//! sqlx's own statement log (`sqlx::query` tracing events), for tests that
//! hold a read or a change to what it costs the database.
//!
//! The log is process-global: a test binary that records has one test, and
//! [`install`] is called once at its start.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// One logged statement: its SQL (whitespace collapsed) and how many rows it returned.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The statement's text.
    pub sql: String,
    /// Rows it returned.
    pub rows: u64,
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<Statement>> = Mutex::new(Vec::new());
/// When the last statement (recorded or not) was logged.
static LAST: Mutex<Option<Instant>> = Mutex::new(None);

/// Collects `sqlx::query` events while [`RECORDING`] is set.
struct Recorder;

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
    rows: u64,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.trim().to_string(),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows = value;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.summary.is_empty() {
            self.summary = format!("{value:?}").trim_matches('"').to_string();
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if !RECORDING.load(Ordering::SeqCst) {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        // sqlx logs the whole statement only when it is longer than its summary.
        let sql = if f.statement.is_empty() {
            f.summary
        } else {
            f.statement
        };
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        // A pool opening a connection sets it up (SQLite pragmas, PostgreSQL
        // session settings) whenever it happens to open one; that is no read.
        if !sql.starts_with("PRAGMA") && !sql.starts_with("SET ") {
            LOG.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Statement { sql, rows: f.rows });
        }
    }
}

/// Makes the recorder the process's tracing subscriber (once, first thing).
pub fn install() {
    tracing::subscriber::set_global_default(Registry::default().with(Recorder.with_filter(
        tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE),
    )))
    .expect("the only subscriber");
}

/// Starts recording, clearing what an earlier recording left.
pub fn start() {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
    RECORDING.store(true, Ordering::SeqCst);
}

/// Stops recording: the statements since [`start`].
pub fn stop() -> Vec<Statement> {
    RECORDING.store(false, Ordering::SeqCst);
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The statements `f` makes the store issue.
pub async fn record<F: Future<Output = ()>>(f: F) -> Vec<Statement> {
    start();
    f.await;
    stop()
}

/// Waits until no statement has been logged for 300 ms: every request
/// started has read what it reads before it waits.
pub async fn quiet() {
    let limit = Instant::now() + Duration::from_secs(20);
    loop {
        let last = *LAST.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
            return;
        }
        assert!(Instant::now() < limit, "the store never went quiet");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
