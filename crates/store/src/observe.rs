//! Hooks through which the store tells its process how long database work
//! took, for the server's metrics (`/metrics`), without the store knowing any
//! metrics library: the server installs one [`Observer`] per store
//! ([`crate::Store::set_observer`]); until then nothing is measured.
//!
//! What is measured, and why there:
//! - **Waits** ([`Wait`]): the time a caller waits for a database connection
//!   to do its work on. A write waits for this process's write turn (the
//!   write gate, then the batch's connection; see `group`), measured around
//!   [`crate::Store::begin`]; a consistent read waits for one of the read
//!   pool's connections and its `BEGIN`, measured around
//!   [`crate::Store::snapshot`]. These are where a saturated pool shows.
//! - **Commits**: [`crate::Tx::commit`] from its first statement until the
//!   commit that covers the write is durable (group commit included): what a
//!   writer's client waits for after its own statements.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Which connection a caller waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wait {
    /// This process's write turn and the write connection ([`crate::Store::begin`]).
    Write,
    /// A read-pool connection for a snapshot ([`crate::Store::snapshot`]).
    Read,
}

impl Wait {
    /// The name metrics label this wait with.
    pub fn as_str(self) -> &'static str {
        match self {
            Wait::Write => "write",
            Wait::Read => "read",
        }
    }
}

/// Receives the store's measurements; must be cheap (it runs inline).
pub trait Observer: Send + Sync + 'static {
    /// A caller waited `took` for a connection.
    fn waited(&self, wait: Wait, took: Duration);
    /// A write's commit took `took`; `ok` is false when it failed.
    fn committed(&self, took: Duration, ok: bool);
}

/// The observer slot every clone of a store shares.
#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<OnceLock<Arc<dyn Observer>>>);

impl Slot {
    pub(crate) fn set(&self, o: Arc<dyn Observer>) -> bool {
        self.0.set(o).is_ok()
    }

    pub(crate) fn get(&self) -> Option<&Arc<dyn Observer>> {
        self.0.get()
    }
}
