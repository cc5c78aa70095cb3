//! Client of the server's node API (`docs/node-api.md`): the long-poll for the
//! node's configuration and the report/heartbeat, plus the two loops that keep
//! them going through server restarts.
//!
//! Why loops that never give up: the agent must keep charon running the last
//! known configuration while the server is away, and catch up as soon as it is
//! back. Every report is the complete current state, so a lost one costs nothing;
//! every config response is a complete snapshot, so a missed change is picked up by
//! the next poll.

use std::fmt;
use std::time::Duration;

use model::realization::{NodeConfig, NodeReport};
use rand::Rng;
use reqwest::StatusCode;
use tokio::sync::watch;

/// A failed node API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request got no HTTP answer (server unreachable, TLS refused, timeout).
    #[error("node API request to {url} failed")]
    Transport {
        /// The URL asked.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("node API answered {status} to {url}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body, as the server sent it.
        body: String,
    },
    /// The node id has characters that can't go into the URL path as they are.
    #[error("invalid node id {0:?}: only letters, digits, '-', '_' and '.' are allowed")]
    NodeId(String),
    /// `--server` names no URL.
    #[error("no server URL given")]
    NoServer,
}

/// The base URLs of a `--server` value: one, or several replicas'
/// comma-separated.
pub fn server_list(servers: &str) -> Vec<String> {
    servers
        .split(',')
        .map(|s| s.trim().trim_end_matches('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One node's credentials and the server addresses: several replicas serve
/// the same node equally (they share one database), so a node moves to the
/// next when the one it uses can't be reached or answers 5xx.
#[derive(Clone)]
pub struct NodeApi {
    http: reqwest::Client,
    bases: std::sync::Arc<[String]>,
    /// Index into `bases` of the server in use (shared by every clone: the
    /// config long-poll and the report loop move together).
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    node_id: String,
    /// None: the node authenticates with its client certificate only.
    token: Option<String>,
}

impl fmt::Debug for NodeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeApi")
            .field("bases", &self.bases)
            .field("node_id", &self.node_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl NodeApi {
    /// `server` is the base URL (`https://vpnaas.example:9696`), or several
    /// comma-separated.
    pub fn new(http: reqwest::Client, server: &str, node_id: &str, token: &str) -> Result<NodeApi, ApiError> {
        NodeApi::with_token(http, server, node_id, Some(token))
    }

    /// Like [`NodeApi::new`]; without a token no `Authorization` header is sent
    /// and the server identifies the node by the client certificate `http`
    /// presents.
    pub fn with_token(
        http: reqwest::Client,
        server: &str,
        node_id: &str,
        token: Option<&str>,
    ) -> Result<NodeApi, ApiError> {
        let ok = !node_id.is_empty()
            && node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(ApiError::NodeId(node_id.to_string()));
        }
        let bases = server_list(server);
        if bases.is_empty() {
            return Err(ApiError::NoServer);
        }
        Ok(NodeApi {
            http,
            bases: bases.into(),
            current: Default::default(),
            node_id: node_id.to_string(),
            token: token.map(|t| t.trim().to_string()),
        })
    }

    /// Whether requests carry a bearer token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// The node this client speaks for.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn url(&self, what: &str) -> String {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed) % self.bases.len();
        format!("{}/internal/v1/nodes/{}/{what}", self.bases[i], self.node_id)
    }

    /// After a failure that another replica may not have (unreachable, 5xx),
    /// the next call goes to the next server; with one server, nothing changes.
    fn next_server_after(&self, e: &ApiError) {
        let move_on = match e {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => *status >= 500,
            _ => false,
        };
        if move_on && self.bases.len() > 1 {
            let i = self.current.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tracing::warn!(error = %e, next = %self.bases[i % self.bases.len()], "moving to the next server");
        }
    }

    /// `GET .../config?known=G&wait=S`: a newer snapshot, or `None` when nothing
    /// changed within `wait`.
    pub async fn config(&self, known: Option<i64>, wait: Duration) -> Result<Option<NodeConfig>, ApiError> {
        let r = self.config_once(known, wait).await;
        if let Err(e) = &r {
            self.next_server_after(e);
        }
        r
    }

    async fn config_once(&self, known: Option<i64>, wait: Duration) -> Result<Option<NodeConfig>, ApiError> {
        let url = self.url("config");
        let mut req = self
            .auth(self.http.get(&url))
            .query(&[("wait", wait.as_secs())])
            // The server answers within `wait`; give it slack, but don't hang forever.
            .timeout(wait + Duration::from_secs(15));
        if let Some(k) = known {
            req = req.query(&[("known", k)]);
        }
        let transport = |source| ApiError::Transport {
            url: url.clone(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        match resp.status() {
            StatusCode::OK => Ok(Some(resp.json().await.map_err(transport)?)),
            StatusCode::NO_CONTENT => Ok(None),
            s => Err(status_error(&url, s, resp).await),
        }
    }

    /// `POST .../report`.
    pub async fn report(&self, report: &NodeReport) -> Result<(), ApiError> {
        let r = self.report_once(report).await;
        if let Err(e) = &r {
            self.next_server_after(e);
        }
        r
    }

    async fn report_once(&self, report: &NodeReport) -> Result<(), ApiError> {
        let url = self.url("report");
        let resp = self
            .auth(self.http.post(&url))
            .json(report)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| ApiError::Transport {
                url: url.clone(),
                source,
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&url, resp.status(), resp).await)
        }
    }
}

async fn status_error(url: &str, status: StatusCode, resp: reqwest::Response) -> ApiError {
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(300);
    ApiError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        body,
    }
}

/// Exponential back-off with jitter, for reconnecting to the server or charon.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, next: min }
    }

    /// The next delay (±20% jitter), doubling up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    }

    /// Back to `min`, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Long-polls the configuration forever, publishing every new snapshot. Ends when
/// nobody listens any more.
pub async fn poll_config(api: NodeApi, tx: watch::Sender<Option<NodeConfig>>, wait: Duration) {
    let mut known: Option<i64> = None;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut failing = false;
    while !tx.is_closed() {
        match api.config(known, wait).await {
            Ok(got) => {
                if failing {
                    tracing::info!(node = %api.node_id, "node API reachable again");
                    failing = false;
                }
                backoff.reset();
                if let Some(cfg) = got {
                    tracing::debug!(node = %api.node_id, generation = cfg.generation, tunnels = cfg.tunnels.len(), "new configuration");
                    known = Some(known.map_or(cfg.generation, |k| k.max(cfg.generation)));
                    if tx.send(Some(cfg)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if !failing {
                    tracing::warn!(node = %api.node_id, error = %e, source = ?std::error::Error::source(&e), "fetching configuration failed; retrying");
                    failing = true;
                } else {
                    tracing::debug!(node = %api.node_id, error = %e, retry_in = ?delay, "fetching configuration failed");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Posts the latest report whenever it changes and at least every `heartbeat`.
/// Ends when the report channel closes.
pub async fn push_reports(api: NodeApi, mut rx: watch::Receiver<NodeReport>, heartbeat: Duration) {
    let mut backoff = Backoff::new(Duration::from_millis(500), heartbeat.max(Duration::from_secs(1)));
    let mut failing = false;
    loop {
        let report = rx.borrow_and_update().clone();
        match api.report(&report).await {
            Ok(()) => {
                if failing {
                    tracing::info!(node = %api.node_id, "reports delivered again");
                    failing = false;
                }
                backoff.reset();
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(heartbeat) => {}
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(node = %api.node_id, error = %e, "report failed; retrying");
                    failing = true;
                }
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}
