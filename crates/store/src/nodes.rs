//! Transport nodes, their reports and per-gateway generations. Reading them
//! for many gateways at once goes through a [`crate::read::Snapshot`].

use std::collections::HashMap;

use model::realization::{Failure, NodeReport, TunnelStatus};
use model::{Error, Kind, Result};
use sqlx::Row;

use crate::{Store, db_err, now_ms};

/// A registered transport node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A UUID made at registration.
    pub id: String,
    /// The operator's name for it.
    pub name: String,
    /// The gateway whose tunnels the node carries.
    pub gateway_id: String,
    /// Lowercase hex SHA-256 of the node's client certificate (DER), when it
    /// authenticates by mutual TLS.
    pub cert_sha256: Option<String>,
    /// Epoch milliseconds of registration.
    pub created_at: i64,
}

/// How a new node authenticates (at least one of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCredentials {
    /// SHA-256 (hex) of its bearer token.
    pub token_hash: Option<String>,
    /// SHA-256 (hex) of its client certificate's DER.
    pub cert_sha256: Option<String>,
}

/// The latest report of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The node reporting.
    pub node: Node,
    /// None: the node never reported.
    pub realized_generation: Option<i64>,
    /// Epoch ms of the last report (0: never).
    pub last_seen: i64,
    /// The tunnels the last report said failed to apply.
    pub failures: Vec<Failure>,
    /// The runtime state of each tunnel in the last report.
    pub tunnels: Vec<TunnelStatus>,
    /// The node-level failure of the last report (charon unreachable), if any.
    pub node_error: Option<String>,
}

fn node_from(r: &crate::backend::Row) -> Node {
    Node {
        id: r.get("id"),
        name: r.get("name"),
        gateway_id: r.get("gateway_id"),
        cert_sha256: r.get("cert_sha256"),
        created_at: r.get("created_at"),
    }
}

const SELECT_NODE: &str = "SELECT id, name, gateway_id, cert_sha256, created_at FROM nodes";

pub(crate) const SELECT_NODE_STATE: &str = "SELECT n.id, n.name, n.gateway_id, n.cert_sha256, n.created_at, s.realized_generation, \
     s.last_seen, s.failures, s.tunnels, s.node_error FROM nodes n LEFT JOIN node_status s ON s.node_id = n.id";

/// [`SELECT_NODE_STATE`] without the tunnels' statuses (the bulk of a
/// report): what realization state needs, read for every node of a gateway
/// on every state poll.
pub(crate) const SELECT_NODE_REALIZATION: &str = "SELECT n.id, n.name, n.gateway_id, n.cert_sha256, n.created_at, \
     s.realized_generation, s.last_seen, s.failures, NULL AS tunnels, s.node_error \
     FROM nodes n LEFT JOIN node_status s ON s.node_id = n.id";

pub(crate) fn state_from(r: &crate::backend::Row) -> Result<NodeState> {
    let failures: Option<String> = r.get("failures");
    let tunnels: Option<String> = r.get("tunnels");
    Ok(NodeState {
        node: node_from(r),
        realized_generation: r.get("realized_generation"),
        last_seen: r.get::<Option<i64>, _>("last_seen").unwrap_or(0),
        node_error: r.get("node_error"),
        failures: failures
            .map(|f| serde_json::from_str(&f))
            .transpose()
            .map_err(|e| Error::internal("decode failures", e))?
            .unwrap_or_default(),
        tunnels: tunnels
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| Error::internal("decode tunnels", e))?
            .unwrap_or_default(),
    })
}

/// Reports per multi-row statement: 7 values each, far below SQLite's and
/// PostgreSQL's bind limits.
const REPORT_CHUNK: usize = 500;

/// One report waiting for its batch's write.
struct ReportRow {
    node_id: String,
    realized_generation: Option<i64>,
    last_seen: i64,
    failures: String,
    tunnels: String,
    agent: Option<String>,
    node_error: Option<String>,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

/// Node reports waiting to be written together: when a fleet reports at
/// once (every node answering the same change), a few multi-row statements
/// replace a statement and commit per report.
#[derive(Default)]
pub(crate) struct ReportQueue {
    pending: std::sync::Mutex<Vec<ReportRow>>,
}

impl Store {
    /// Registers a node of a gateway with the SHA-256 of its token.
    pub async fn node_create(&self, name: &str, gateway_id: &str, token_hash: &str) -> Result<Node> {
        let creds = NodeCredentials {
            token_hash: Some(token_hash.to_string()),
            cert_sha256: None,
        };
        self.node_register(name, gateway_id, &creds).await
    }

    /// Registers a node of a gateway with its token hash and/or certificate
    /// fingerprint. A fingerprint already registered is a conflict.
    pub async fn node_register(&self, name: &str, gateway_id: &str, creds: &NodeCredentials) -> Result<Node> {
        if creds.token_hash.is_none() && creds.cert_sha256.is_none() {
            return Err(Error::field(
                "credentials",
                "a node needs a token or a client certificate",
            ));
        }
        let cert_sha256 = creds.cert_sha256.as_ref().map(|c| c.to_ascii_lowercase());
        let node = Node {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            gateway_id: gateway_id.to_string(),
            cert_sha256: cert_sha256.clone(),
            created_at: now_ms(),
        };
        let exists = sqlx::query("SELECT 1 FROM resources WHERE id = $1 AND kind = 'gateway'")
            .bind(gateway_id)
            .fetch_optional(self.write_pool())
            .await
            .map_err(db_err("read gateway"))?;
        if exists.is_none() {
            return Err(Error::not_found(Kind::Gateway, gateway_id));
        }
        if let Some(fp) = &cert_sha256 {
            let taken = sqlx::query("SELECT id FROM nodes WHERE cert_sha256 = $1")
                .bind(fp)
                .fetch_optional(self.write_pool())
                .await
                .map_err(db_err("read node"))?;
            if taken.is_some() {
                return Err(Error::already_exists(Kind::Node, "certificate", fp));
            }
        }
        sqlx::query(
            "INSERT INTO nodes (id, name, gateway_id, token_hash, cert_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&node.id)
        .bind(&node.name)
        .bind(&node.gateway_id)
        .bind(&creds.token_hash)
        .bind(&cert_sha256)
        .bind(node.created_at)
        .execute(self.write_pool())
        .await
        .map_err(db_err("insert node"))?;
        // A new node must fetch its gateway's configuration: move the gateway's
        // generation so realization states account for it.
        let g = self.generation_current().await?;
        sqlx::query(
            "INSERT INTO gateway_generations (gateway_id, generation) VALUES ($1, $2) \
             ON CONFLICT (gateway_id) DO NOTHING",
        )
        .bind(gateway_id)
        .bind(g)
        .execute(self.write_pool())
        .await
        .map_err(db_err("stamp gateway"))?;
        Ok(node)
    }

    /// Unregisters a node; its reports go with it.
    pub async fn node_delete(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(self.write_pool())
            .await
            .map_err(db_err("delete node"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::Node, id));
        }
        Ok(())
    }

    /// Whether the node `id` is (still) registered.
    pub async fn node_registered(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM nodes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read node"))?;
        Ok(row.is_some())
    }

    /// The node a token belongs to.
    pub async fn node_by_token(&self, token_hash: &str) -> Result<Option<Node>> {
        let row = sqlx::query(&format!("{SELECT_NODE} WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read node"))?;
        Ok(row.as_ref().map(node_from))
    }

    /// The node a client certificate (hex SHA-256 of its DER) belongs to.
    pub async fn node_by_cert(&self, cert_sha256: &str) -> Result<Option<Node>> {
        let row = sqlx::query(&format!("{SELECT_NODE} WHERE cert_sha256 = $1"))
            .bind(cert_sha256.to_ascii_lowercase())
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read node"))?;
        Ok(row.as_ref().map(node_from))
    }

    /// Every node with its latest report, optionally of one gateway.
    pub async fn node_states(&self, gateway_id: Option<&str>) -> Result<Vec<NodeState>> {
        let rows = match gateway_id {
            Some(g) => {
                sqlx::query(&format!(
                    "{SELECT_NODE_STATE} WHERE n.gateway_id = $1 ORDER BY n.created_at, n.id"
                ))
                .bind(g)
                .fetch_all(self.read_pool())
                .await
            }
            None => {
                sqlx::query(&format!("{SELECT_NODE_STATE} ORDER BY n.created_at, n.id"))
                    .fetch_all(self.read_pool())
                    .await
            }
        }
        .map_err(db_err("read nodes"))?;
        rows.iter().map(state_from).collect()
    }

    /// Stores a node's report (replacing the previous one).
    ///
    /// Reports are soft state: every node re-sends its whole state at least once
    /// per heartbeat, so they are committed without waiting for an fsync, on a
    /// connection of their own opened with `synchronous = NORMAL` (see
    /// [`crate::backend`]). The durable writer is never switched, so dropping
    /// this future at any point cannot change how desired state is written.
    pub async fn node_report(&self, node_id: &str, report: &NodeReport) -> Result<()> {
        let failures = serde_json::to_string(&report.failures).map_err(|e| Error::internal("encode", e))?;
        let tunnels = serde_json::to_string(&report.tunnels).map_err(|e| Error::internal("encode", e))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let row = ReportRow {
            node_id: node_id.to_string(),
            realized_generation: report.realized_generation,
            last_seen: now_ms(),
            failures,
            tunnels,
            agent: report.agent.clone(),
            node_error: report.node_error.clone(),
            done,
        };
        let lead = {
            let mut pending = self.reports.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push(row);
            pending.len() == 1
        };
        if lead {
            // The first report of a batch starts its writer, in a task of its
            // own: a caller that goes away must not strand the others. While
            // it waits for the write turn, later reports join the batch.
            let store = self.clone();
            tokio::spawn(async move { store.write_reports().await });
        }
        result
            .await
            .map_err(|e| Error::internal("store report (the report writer stopped)", e))?
    }

    /// Writes every waiting report with a few multi-row upserts
    /// (the last report of a node in the batch wins); a chunk that fails is
    /// retried row by row, so each report gets its own answer.
    async fn write_reports(&self) {
        let _turn = self.db.exclusive().await;
        let batch = std::mem::take(&mut *self.reports.pending.lock().unwrap_or_else(|p| p.into_inner()));
        // Later reports of a node replace earlier ones (all are answered).
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, r) in batch.iter().enumerate() {
            last.insert(r.node_id.as_str(), i);
        }
        let mut rows: Vec<&ReportRow> = batch
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(r.node_id.as_str()) == Some(i))
            .map(|(_, r)| r)
            .collect();
        rows.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let mut failed: HashMap<String, Error> = HashMap::new();
        for chunk in rows.chunks(REPORT_CHUNK) {
            if self.upsert_reports(chunk).await.is_err() {
                for r in chunk {
                    if let Err(e) = self.upsert_reports(std::slice::from_ref(r)).await {
                        failed.insert(r.node_id.clone(), e);
                    }
                }
            }
        }
        for r in batch {
            let answer = match failed.get(&r.node_id) {
                Some(e) => Err(Error::internal(
                    "store report",
                    std::io::Error::other(e.to_string()),
                )),
                None => Ok(()),
            };
            let _ = r.done.send(answer);
        }
    }

    async fn upsert_reports(&self, rows: &[&ReportRow]) -> Result<()> {
        let values: Vec<String> = (0..rows.len())
            .map(|i| format!("({})", crate::read::placeholders(i * 7 + 1, 7)))
            .collect();
        let sql = format!(
            "INSERT INTO node_status (node_id, realized_generation, last_seen, failures, tunnels, agent, node_error) \
             VALUES {} ON CONFLICT (node_id) DO UPDATE SET \
             realized_generation = excluded.realized_generation, last_seen = excluded.last_seen, \
             failures = excluded.failures, tunnels = excluded.tunnels, agent = excluded.agent, \
             node_error = excluded.node_error",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in rows {
            q = q
                .bind(&r.node_id)
                .bind(r.realized_generation)
                .bind(r.last_seen)
                .bind(&r.failures)
                .bind(&r.tunnels)
                .bind(&r.agent)
                .bind(&r.node_error);
        }
        q.execute(&self.db.soft).await.map_err(db_err("store report"))?;
        Ok(())
    }

    /// The durable writer connection's durability setting, as the engine
    /// names it (SQLite `synchronous`: "2" = FULL; PostgreSQL
    /// `synchronous_commit`: "on"): a diagnostic for tests and health checks
    /// that desired state is on disk before it is acknowledged.
    pub async fn writer_durability(&self) -> Result<String> {
        let row = sqlx::query(self.pools().durability_query())
            .fetch_one(self.write_pool())
            .await
            .map_err(db_err("read durability"))?;
        Ok(row.get::<String, _>(0))
    }

    /// Generation of the last change carried by a gateway's nodes (0: none yet).
    pub async fn gateway_generation(&self, gateway_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT generation FROM gateway_generations WHERE gateway_id = $1")
            .bind(gateway_id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read gateway generation"))?;
        Ok(row.map(|r| r.get::<i64, _>(0)).unwrap_or(0))
    }

    /// The gateways whose generation is above `after`, with their generations:
    /// what changed since a reader last saw `after` (read through the index
    /// on the generation, so it costs the gateways that changed). Commits
    /// become visible in generation order (the counter's row is locked until
    /// the allocating transaction ends), so nothing below the highest
    /// generation returned can appear later.
    pub async fn gateway_generations_since(&self, after: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT gateway_id, generation FROM gateway_generations WHERE generation > $1 ORDER BY generation",
        )
        .bind(after)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_err("read gateway generations"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect())
    }

    /// The highest generation any gateway is at (0: none yet).
    pub async fn gateway_generation_max(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(generation), 0) FROM gateway_generations")
            .fetch_one(self.read_pool())
            .await
            .map_err(db_err("read gateway generations"))?;
        Ok(row.get::<i64, _>(0))
    }

    /// The generation at which `id` was deleted, if it was.
    pub async fn tombstone(&self, id: &str) -> Result<Option<(Kind, i64)>> {
        let row = sqlx::query("SELECT kind, generation FROM tombstones WHERE id = $1")
            .bind(id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read tombstone"))?;
        Ok(row.and_then(|r| Kind::parse(r.get::<&str, _>(0)).map(|k| (k, r.get::<i64, _>(1)))))
    }

    /// Ids of the gateways that carry `id` (or anything that uses it).
    pub async fn span_gateways(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "WITH RECURSIVE up(id) AS (SELECT $1 UNION SELECT r.src_id FROM resource_refs r JOIN up ON r.dst_id = up.id), \
             down(id, depth) AS (SELECT id, 0 FROM up UNION SELECT r.dst_id, d.depth + 1 FROM resource_refs r JOIN down d ON r.src_id = d.id WHERE d.depth < 4) \
             SELECT DISTINCT g.id FROM down JOIN resources g ON g.id = down.id WHERE g.kind = 'gateway' ORDER BY g.id",
        )
        .bind(id)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_err("compute span"))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }
}
