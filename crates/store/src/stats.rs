//! Statistics reset baselines: what each node had counted for a session when
//! an operator reset the session's statistics (NSX `POST
//! .../sessions/{id}/statistics?action=reset`).
//!
//! Why stored, not kept in memory: a reset must hold after a restart and on
//! every API replica sharing the database, so the baselines are rows (one per
//! session and node), written on the durable writer and read through the same
//! [`crate::read::Snapshot`] as the node reports they are subtracted from.
//! What a baseline means is realize's business (`realize::stats`).

use std::collections::HashMap;

use model::Result;
use sqlx::Row;

use crate::read::Snapshot;
use crate::{Store, db_err, now_ms};

/// A node's counters for one session at the moment of a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Baseline {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// The node's CHILD SA rekey count for the session then: another count
    /// later means the counters restarted with a new SA.
    pub child_rekeys: u64,
    /// Epoch ms of the reset.
    pub reset_at: i64,
}

fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Replaces the baselines of `session_id` with `per_node` (node id →
    /// counters), stamped now, in one transaction. Nodes not named keep no
    /// baseline (their counters are read as reported).
    pub async fn stats_reset(&self, session_id: &str, per_node: &[(String, Baseline)]) -> Result<i64> {
        let at = now_ms();
        let _turn = self.db.exclusive().await;
        let mut tx = self.write_pool().begin().await.map_err(db_err("begin reset"))?;
        sqlx::query("DELETE FROM stats_baselines WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err("clear baselines"))?;
        for (node_id, b) in per_node {
            sqlx::query(
                "INSERT INTO stats_baselines (session_id, node_id, bytes_in, bytes_out, packets_in, \
                 packets_out, child_rekeys, reset_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(session_id)
            .bind(node_id)
            .bind(to_db(b.bytes_in))
            .bind(to_db(b.bytes_out))
            .bind(to_db(b.packets_in))
            .bind(to_db(b.packets_out))
            .bind(to_db(b.child_rekeys))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err("store baseline"))?;
        }
        tx.commit().await.map_err(db_err("commit reset"))?;
        Ok(at)
    }
}

impl Snapshot {
    /// The baselines of the given sessions, by (session id, node id).
    pub async fn stats_baselines_of<'a>(
        &mut self,
        session_ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<HashMap<(String, String), Baseline>> {
        let ids: Vec<&String> = session_ids.into_iter().collect();
        let mut out = HashMap::new();
        for chunk in ids.chunks(crate::read::CHUNK) {
            let marks = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT session_id, node_id, bytes_in, bytes_out, packets_in, packets_out, child_rekeys, \
                 reset_at FROM stats_baselines WHERE session_id IN ({marks})"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q.fetch_all(self.conn()).await.map_err(db_err("read baselines"))?;
            for r in &rows {
                out.insert(
                    (r.get::<String, _>(0), r.get::<String, _>(1)),
                    Baseline {
                        bytes_in: from_db(r.get(2)),
                        bytes_out: from_db(r.get(3)),
                        packets_in: from_db(r.get(4)),
                        packets_out: from_db(r.get(5)),
                        child_rekeys: from_db(r.get(6)),
                        reset_at: r.get(7),
                    },
                );
            }
        }
        Ok(out)
    }
}
