//! Group commit: this process's concurrent writes share one database
//! transaction ("batch") and so one commit and one fsync; each is
//! acknowledged only after the commit that covers it.
//!
//! How:
//! - The write gate ([`crate::backend::Pools::gate`]) still serializes this
//!   process's writers. The first writer to find no open batch takes the write
//!   connection, begins a transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL
//!   `BEGIN`) and locks the generation counter (the row lock that serializes
//!   replicas on PostgreSQL), reading the last generation.
//! - Each write ([`crate::Tx`]) is a `SAVEPOINT` in the open batch, given the
//!   next generation in memory. A write that fails or is dropped is rolled back
//!   to its savepoint, its generation with it; the rest of the batch is
//!   untouched. A committed write releases its savepoint.
//! - Then, if another writer is waiting for the gate and the batch is still
//!   small and young ([`MAX_MEMBERS`], [`MAX_AGE`]), the writer leaves the batch
//!   open for it and waits for the batch's outcome; otherwise it commits the
//!   batch (the counter moved once to the batch's last generation, PostgreSQL's
//!   `pg_notify` once with it), tells every member the outcome and returns the
//!   connection to the pool. A member that waits also queues for the gate: if it
//!   gets the gate while its batch is still open (the writer it was left for went
//!   away), it commits the batch itself. So an open batch with members always
//!   has a member on its way to committing it.
//! - Every step that touches the batch's transaction after a write's own
//!   statements (release, commit, rollback to a savepoint) runs in a task of its
//!   own: a request dropped mid-way (a client gone) cannot leave the batch
//!   half-done or the connection in an unknown state.
//!
//! If the commit fails, every member gets the error: none is acknowledged, and
//! none is durable (the whole batch rolled back).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use model::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::{Executor, Row};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::backend::{Db, Pool};

/// Most writes one batch carries. PostgreSQL keeps up to 64 subtransactions
/// per transaction in shared memory before it spills (and slows every
/// snapshot); each member is one.
pub(crate) const MAX_MEMBERS: usize = 32;

/// Oldest a batch gets before a writer commits it even though others wait:
/// bounds the latency a member adds to those before it, and how long the
/// generation counter stays locked against other replicas.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(10);

/// The savepoint every write is (one at a time, so one name).
const SAVEPOINT: &str = "SAVEPOINT w";
const RELEASE: &str = "RELEASE SAVEPOINT w";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT w";

/// What a batch's members learn: committed, or the commit's error.
type Outcome = std::result::Result<(), Arc<str>>;

/// The batching state of one store (one per process and database).
pub(crate) struct Group {
    /// The write gate, the same one node reports take.
    gate: Arc<Mutex<()>>,
    /// The open batch while no one holds the gate (a holder takes it out).
    slot: std::sync::Mutex<Option<Batch>>,
    /// Writers waiting for the gate to begin a write.
    pending: AtomicUsize,
    /// Batch ids, so a waiting member knows whether its batch is still open.
    next_id: AtomicU64,
    /// Bounds of one batch: [`MAX_MEMBERS`] and [`MAX_AGE`] (in µs), but for
    /// tests that need a batch of a given shape.
    max_members: AtomicUsize,
    max_age_us: AtomicU64,
    /// Batches committed (each one fsync).
    commits: AtomicU64,
    pool: Pool,
    /// Starts the batch's transaction (`Pools::begin_write`).
    begin: &'static str,
    /// Reads the generation counter, holding it against other processes'
    /// writers (PostgreSQL: its row lock; SQLite: `BEGIN IMMEDIATE` holds the
    /// write lock already).
    lock_counter: &'static str,
    /// Tells other processes the batch's last generation (`$1`) at commit
    /// (`Pools::commit_notify`), if the engine can.
    notify_sql: Option<&'static str>,
}

/// One open database transaction shared by consecutive writes.
struct Batch {
    id: u64,
    conn: PoolConnection<Db>,
    started: Instant,
    /// Writes whose savepoint was released into this batch.
    members: usize,
    /// The generation counter when the batch began.
    base: i64,
    /// The last generation released into this batch.
    last: i64,
    /// A write was dropped inside its savepoint without a task to roll it
    /// back: the next holder of the gate does.
    rollback_pending: bool,
    done: watch::Sender<Option<Outcome>>,
    notify: watch::Sender<i64>,
}

/// Holding the gate, with the open batch (if any) in hand; the batch goes back
/// to the slot when this is dropped, before the gate is let go.
pub(crate) struct Turn {
    group: Arc<Group>,
    batch: Option<Batch>,
    _gate: OwnedMutexGuard<()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(b) = self.batch.take() {
            *self.group.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
        }
    }
}

/// Decrements the pending-writer count however `begin` ends (it may be
/// cancelled while it waits for the gate).
struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(context: &str, e: impl std::fmt::Display) -> Arc<str> {
    format!("{context}: {e}").into()
}

fn to_error(e: &Arc<str>) -> Error {
    Error::Internal {
        context: format!("group commit: {e}"),
        source: None,
    }
}

impl Group {
    pub(crate) fn new(
        gate: Arc<Mutex<()>>,
        pool: Pool,
        postgres: bool,
        begin: &'static str,
        notify_sql: Option<&'static str>,
    ) -> Group {
        Group {
            gate,
            slot: Default::default(),
            pending: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            max_members: AtomicUsize::new(MAX_MEMBERS),
            max_age_us: AtomicU64::new(MAX_AGE.as_micros() as u64),
            commits: AtomicU64::new(0),
            pool,
            begin,
            lock_counter: if postgres {
                "SELECT value FROM counters WHERE name = 'generation' FOR UPDATE"
            } else {
                "SELECT value FROM counters WHERE name = 'generation'"
            },
            notify_sql,
        }
    }

    fn take_slot(&self) -> Option<Batch> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn turn_from(self: &Arc<Self>, gate: OwnedMutexGuard<()>) -> Turn {
        Turn {
            group: self.clone(),
            batch: self.take_slot(),
            _gate: gate,
        }
    }

    /// The gate for a new write, counted as pending while it waits.
    async fn writer_turn(self: &Arc<Self>) -> Turn {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let pending = Pending(&self.pending);
        let gate = self.gate.clone().lock_owned().await;
        drop(pending);
        self.turn_from(gate)
    }

    /// The gate with no batch open (an open one committed first): for writes
    /// on another connection that must not wait for this one's write lock
    /// (node reports).
    pub(crate) async fn exclusive(self: &Arc<Self>) -> Exclusive {
        let gate = self.gate.clone().lock_owned().await;
        let turn = self.turn_from(gate);
        let (turn, ()) = run(turn, |mut t| async move {
            t.settle().await;
            if t.batch.is_some() {
                let _ = t.flush().await;
            }
            (t, ())
        })
        .await;
        Exclusive(turn)
    }

    /// Writers waiting to begin (tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Batches committed so far (tests).
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Sets the bounds of a batch (tests).
    #[cfg(test)]
    pub(crate) fn set_bounds(&self, members: usize, age: Duration) {
        self.max_members.store(members, Ordering::SeqCst);
        self.max_age_us.store(age.as_micros() as u64, Ordering::SeqCst);
    }
}

/// The gate held with no batch open (see [`Group::exclusive`]).
pub(crate) struct Exclusive(#[allow(dead_code)] Turn);

/// Runs `f` on the turn in a task of its own, so that dropping the caller
/// cannot cut it short, and gives the turn back with `f`'s answer.
async fn run<F, Fut, T>(turn: Turn, f: F) -> (Turn, T)
where
    F: FnOnce(Turn) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (Turn, T)> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(f(turn)).await {
        Ok(r) => r,
        // The task panicked (its turn went back to the slot as it unwound).
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Turn {
    fn batch(&mut self) -> &mut Batch {
        self.batch.as_mut().expect("a write holds an open batch")
    }

    /// The batch's connection (a write holds an open batch).
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.batch().conn
    }

    /// Runs a rollback left by a dropped write; a batch with no member left
    /// is rolled back whole (nothing to commit, and the write lock let go).
    async fn settle(&mut self) {
        let Some(b) = self.batch.as_mut() else { return };
        if b.rollback_pending {
            let undone = async {
                b.conn.execute(ROLLBACK_TO).await?;
                b.conn.execute(RELEASE).await
            }
            .await;
            b.rollback_pending = false;
            if let Err(e) = undone {
                self.abort(error("roll back a write", e)).await;
                return;
            }
        }
        if self.batch.as_ref().is_some_and(|b| b.members == 0) {
            self.abort(Arc::from("nothing to commit")).await;
        }
    }

    /// Ends the batch without committing; every member gets `why`.
    async fn abort(&mut self, why: Arc<str>) {
        let Some(mut b) = self.batch.take() else { return };
        rollback(&mut b.conn).await;
        b.done.send_replace(Some(Err(why)));
    }

    /// Commits the batch, tells its members and returns the connection.
    async fn flush(&mut self) -> Outcome {
        let Some(mut b) = self.batch.take() else {
            return Ok(());
        };
        let committed = async {
            if b.last != b.base {
                sqlx::query("UPDATE counters SET value = $1 WHERE name = 'generation'")
                    .bind(b.last)
                    .execute(&mut *b.conn)
                    .await
                    .map_err(|e| error("move the generation", e))?;
            }
            if let Some(sql) = self.group.notify_sql
                && b.last != b.base
            {
                sqlx::query(sql)
                    .bind(b.last.to_string())
                    .execute(&mut *b.conn)
                    .await
                    .map_err(|e| error("notify commit", e))?;
            }
            b.conn.execute("COMMIT").await.map_err(|e| error("commit", e))?;
            Ok::<_, Arc<str>>(())
        }
        .await;
        match &committed {
            Ok(()) => {
                self.group.commits.fetch_add(1, Ordering::Relaxed);
                crate::backend::advance(&b.notify, b.last);
            }
            Err(_) => rollback(&mut b.conn).await,
        }
        b.done.send_replace(Some(committed.clone()));
        committed
    }

    /// Settles what a dropped write left, opens a batch if none is, and
    /// starts a write in it: its savepoint, and the next generation.
    async fn start(&mut self, notify: &watch::Sender<i64>) -> Result<i64> {
        self.settle().await;
        self.open(notify).await?;
        let b = self.batch();
        if let Err(e) = b.conn.execute(SAVEPOINT).await {
            self.abort(error("begin a write", &e)).await;
            return Err(Error::internal("begin write", e));
        }
        Ok(self.batch().last + 1)
    }

    /// Opens a batch if none is: takes the write connection, begins, and
    /// locks and reads the generation counter.
    async fn open(&mut self, notify: &watch::Sender<i64>) -> Result<()> {
        if self.batch.is_some() {
            return Ok(());
        }
        let mut conn = self
            .group
            .pool
            .acquire()
            .await
            .map_err(|e| Error::internal("begin write", e))?;
        conn.execute(self.group.begin)
            .await
            .map_err(|e| Error::internal("begin write", e))?;
        let base = sqlx::query(self.group.lock_counter).fetch_one(&mut *conn).await;
        let base: i64 = match base {
            Ok(row) => row.get(0),
            Err(e) => {
                rollback(&mut conn).await;
                return Err(Error::internal("allocate generation", e));
            }
        };
        self.batch = Some(Batch {
            id: self.group.next_id.fetch_add(1, Ordering::SeqCst),
            conn,
            started: Instant::now(),
            members: 0,
            base,
            last: base,
            rollback_pending: false,
            done: watch::channel(None).0,
            notify: notify.clone(),
        });
        Ok(())
    }
}

/// Rolls the connection's transaction back; a connection whose transaction
/// cannot be ended is closed, never pooled again.
async fn rollback(conn: &mut PoolConnection<Db>) {
    if let Err(e) = conn.execute("ROLLBACK").await {
        tracing::warn!(error = %e, "write connection: cannot end its transaction; closing it");
        conn.close_on_drop();
    }
}

/// One write's place in a batch: begun by [`begin`], ended by [`commit`] or
/// by being dropped (rolled back to its savepoint).
pub(crate) struct Member {
    turn: Option<Turn>,
    generation: i64,
}

/// Takes the gate, opens a batch if none is, and starts a write in it: its
/// savepoint and generation.
pub(crate) async fn begin(group: &Arc<Group>, notify: &watch::Sender<i64>) -> Result<Member> {
    let mut turn = group.writer_turn().await;
    let notify = notify.clone();
    // The member is made in the task: if this request is dropped meanwhile,
    // dropping the member rolls its savepoint back.
    let started = tokio::spawn(async move {
        let generation = turn.start(&notify).await?;
        Ok(Member {
            turn: Some(turn),
            generation,
        })
    });
    match started.await {
        Ok(member) => member,
        Err(e) => Err(Error::internal("begin write", e)),
    }
}

impl Member {
    /// The generation this write commits as.
    pub(crate) fn generation(&self) -> i64 {
        self.generation
    }

    /// The batch's connection, for this write's statements.
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.turn.as_mut().expect("an unfinished write").conn()
    }

    /// Releases this write into its batch and returns once the commit that
    /// covers it is done: Ok only if that commit succeeded.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let turn = self.turn.take().expect("an unfinished write");
        let generation = self.generation;
        // Owned by a task: once released, the write is the batch's, and the
        // batch is committed whatever becomes of this request.
        let task = tokio::spawn(finish(turn, generation));
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(to_error(&why)),
            Err(e) => Err(Error::internal("commit", e)),
        }
    }
}

/// A write dropped unfinished rolls back to its savepoint: in a task that
/// owns its turn, or (outside a runtime) left to the gate's next holder.
impl Drop for Member {
    fn drop(&mut self) {
        let Some(mut turn) = self.turn.take() else { return };
        let Some(b) = turn.batch.as_mut() else { return };
        b.rollback_pending = true;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut turn = turn;
                turn.settle().await;
            });
        }
    }
}

async fn finish(mut turn: Turn, generation: i64) -> Outcome {
    let Some(b) = turn.batch.as_mut() else {
        return Err(Arc::from("the batch ended before this write committed"));
    };
    if let Err(e) = b.conn.execute(RELEASE).await {
        let why = error("release a write", e);
        turn.abort(why.clone()).await;
        return Err(why);
    }
    b.last = generation;
    b.members += 1;
    let id = b.id;
    let mut done = b.done.subscribe();
    let group = turn.group.clone();
    let full = b.members >= group.max_members.load(Ordering::Relaxed)
        || b.started.elapsed().as_micros() as u64 >= group.max_age_us.load(Ordering::Relaxed);
    if full || group.pending.load(Ordering::SeqCst) == 0 {
        return turn.flush().await;
    }
    // Left open for the next writer.
    drop(turn);
    loop {
        if let Some(outcome) = done.borrow_and_update().clone() {
            return outcome;
        }
        tokio::select! {
            changed = done.changed() => {
                if changed.is_err() {
                    return Err(Arc::from("the batch was abandoned"));
                }
            }
            gate = group.gate.clone().lock_owned() => {
                let mut turn = group.turn_from(gate);
                turn.settle().await;
                if turn.batch.as_ref().is_some_and(|b| b.id == id) {
                    return turn.flush().await;
                }
                // Our batch ended while we queued: its outcome is set.
            }
        }
    }
}

#[cfg(test)]
mod tests;
