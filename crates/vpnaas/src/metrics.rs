//! Prometheus metrics: `GET /metrics` in the text exposition format (0.0.4),
//! on the main listener for an admin token, and without credentials on an
//! optional `--metrics-listen` address of its own. Names, labels and the
//! reasons behind them are in `docs/metrics.md`.
//!
//! Where each number comes from, and why:
//! - **Per tunnel (connection × node) and per node: computed at scrape time**
//!   from the nodes' last reports in the store (two bounded reads: every
//!   node's state with its tunnels, every gateway's generation). A deleted
//!   connection's series vanish with the next report that no longer carries
//!   it, and every replica answers the same, whichever replica the node
//!   reported to. The node counters (bytes, packets, rekeys) are exposed as
//!   counters: they only reset when the node's agent or the SA restarts,
//!   which `rate()` handles.
//! - **Kept in this process**: what must count events rather than read a
//!   state: tunnel state changes (up ↔ down transitions seen between two
//!   reports this process accepted), apply durations (observed from each
//!   accepted report's `apply_durations_ms`), reports accepted, request
//!   counts and latencies, database waits and commit latencies. With several
//!   replicas each counts what it received; sum them in PromQL. A tunnel's
//!   state-change series goes when a report of its node no longer carries it.
//! - **Labels are bounded**: `route` is the route *template* axum matched
//!   (`/v2.0/vpn/ikepolicies/{id}`, never a raw path with ids; `unmatched`
//!   for paths no route serves); `method` is one of the methods the APIs use
//!   (else `other`); `code` an HTTP status.
//!
//! Authentication: per-tunnel series are labelled with connection and node
//! ids, which tell tenants' connections apart, so the main listener serves
//! them only to an admin (`X-Auth-Token`, or `Authorization: Bearer <token>`
//! as Prometheus' `authorization` setting sends it). Keystone tokens expire,
//! which suits a person, not a scraper: `--metrics-listen` serves only
//! `/metrics`, unauthenticated, on an address of its own (a loopback address,
//! or any with `--insecure-plain-http`), for a Prometheus on the host or on a
//! management network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use identity::Identity;
use model::realization::{IkeState, NodeReport, TunnelStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use realize::Realizer;
use store::nodes::Node;
use store::observe::{Observer, Wait};

use crate::edge::Api;

/// The path, on both listeners.
pub const PATH: &str = "/metrics";

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of latency histograms, in seconds: 1 ms to ~2 min, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// A per-tunnel counter read from a report: name, help, value.
type TunnelCounter = (&'static str, &'static str, fn(&TunnelStatus) -> u64);

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    route: String,
    method: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    api: &'static str,
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabels {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayNodeLabels {
    node: String,
    node_name: String,
    gateway: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TunnelLabels {
    connection: String,
    node: String,
    gateway: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    connection: String,
    node: String,
    to: &'static str,
}

/// The process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    db_wait_seconds: Histograms<WaitLabels>,
    commit_seconds: Histograms<CommitLabels>,
    reports: Family<NodeLabels, Counter>,
    apply_seconds: Histograms<NodeLabels>,
    state_changes: Family<ChangeLabels, Counter>,
    /// Per node, per tunnel: up in the last report this process accepted.
    last_up: Mutex<HashMap<String, HashMap<String, bool>>>,
}

fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(latency as fn() -> Histogram)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            inner: Arc::new(Inner {
                requests: Family::default(),
                request_seconds: histograms(),
                db_wait_seconds: histograms(),
                commit_seconds: histograms(),
                reports: Family::default(),
                apply_seconds: Family::new_with_constructor(|| {
                    // Applies take from well under a millisecond (one
                    // changed tunnel) to seconds (thousands at once).
                    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
                }),
                state_changes: Family::default(),
                last_up: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// Whether a reported tunnel carries traffic: IKE up and a CHILD SA installed
/// (what Neutron's `ACTIVE` asks of a node, see `realize::state`).
fn up(t: &TunnelStatus) -> bool {
    t.ike_state == IkeState::Established && t.child_sas_installed > 0
}

impl Observer for Inner {
    fn waited(&self, wait: Wait, took: Duration) {
        self.db_wait_seconds
            .get_or_create(&WaitLabels { pool: wait.as_str() })
            .observe(took.as_secs_f64());
    }

    fn committed(&self, took: Duration, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.commit_seconds
            .get_or_create(&CommitLabels { result })
            .observe(took.as_secs_f64());
    }
}

impl realize::watch::ReportObserver for Inner {
    fn accepted(&self, node: &Node, report: &NodeReport) {
        let labels = NodeLabels {
            node: node.id.clone(),
        };
        self.reports.get_or_create(&labels).inc();
        if !report.apply_durations_ms.is_empty() {
            let h = self.apply_seconds.get_or_create(&labels);
            for ms in &report.apply_durations_ms {
                h.observe(*ms as f64 / 1000.0);
            }
        }
        let mut last = self.last_up.lock().unwrap_or_else(|e| e.into_inner());
        let before = last.remove(&node.id).unwrap_or_default();
        let mut now = HashMap::with_capacity(report.tunnels.len());
        for t in &report.tunnels {
            let is_up = up(t);
            if before.get(&t.id).is_some_and(|was| *was != is_up) {
                self.state_changes
                    .get_or_create(&ChangeLabels {
                        connection: t.id.clone(),
                        node: node.id.clone(),
                        to: if is_up { "up" } else { "down" },
                    })
                    .inc();
            }
            now.insert(t.id.clone(), is_up);
        }
        // Tunnels the node no longer carries: their series go.
        for gone in before.keys().filter(|id| !now.contains_key(*id)) {
            for to in ["up", "down"] {
                self.state_changes.remove(&ChangeLabels {
                    connection: gone.clone(),
                    node: node.id.clone(),
                    to,
                });
            }
        }
        last.insert(node.id.clone(), now);
    }
}

impl Metrics {
    /// Starts measuring `store`'s waits and commits and `realizer`'s reports.
    pub fn install(&self, store: &store::Store, realizer: &Realizer) {
        let inner: Arc<Inner> = self.inner.clone();
        if !store.set_observer(inner.clone()) {
            tracing::debug!("the store already has an observer; its waits are measured there");
        }
        if !realizer.set_report_observer(inner) {
            tracing::debug!("the realizer already has a report observer");
        }
    }

    /// Counts one answered request.
    fn request(&self, labels: RouteLabels, code: StatusCode, took: Duration) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                api: labels.api,
                route: labels.route.clone(),
                method: labels.method,
                code: code.as_u16(),
            })
            .inc();
        self.inner
            .request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The exposition of every metric now: the process's own, then the
    /// series computed from the store.
    pub async fn render(&self, realizer: &Realizer) -> model::Result<String> {
        let mut reg = Registry::default();
        let i = &self.inner;
        reg.register(
            "vpnaas_http_requests",
            "Requests answered, by API, route template, method and status code",
            i.requests.clone(),
        );
        reg.register(
            "vpnaas_http_request_duration_seconds",
            "Time to answer a request (to its response head; node long-polls include their wait)",
            i.request_seconds.clone(),
        );
        reg.register(
            "vpnaas_db_wait_seconds",
            "Time waited for a database connection: pool=write the write turn, pool=read a snapshot's connection",
            i.db_wait_seconds.clone(),
        );
        reg.register(
            "vpnaas_db_commit_duration_seconds",
            "Time a write's commit took until durable (group commit included)",
            i.commit_seconds.clone(),
        );
        reg.register(
            "vpnaas_node_reports",
            "Node reports this process accepted",
            i.reports.clone(),
        );
        reg.register(
            "vpnaas_node_apply_duration_seconds",
            "Time a node took to apply a configuration, as its reports tell",
            i.apply_seconds.clone(),
        );
        reg.register(
            "vpnaas_tunnel_state_changes",
            "Tunnel transitions between up and down, seen between two reports this process accepted",
            i.state_changes.clone(),
        );
        let waiters: Gauge = Gauge::default();
        waiters.set(realizer.config_requests() as i64);
        reg.register(
            "vpnaas_node_config_waiters",
            "Node configuration requests (long-polls) in progress on this process",
            waiters,
        );
        let watchers: Gauge = Gauge::default();
        watchers.set(realizer.watchers() as i64);
        reg.register(
            "vpnaas_watch_streams",
            "Open watch streams (GET /v2.0/vpn/watch) on this process",
            watchers,
        );
        Self::store_series(&mut reg, realizer).await?;
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &reg)
            .map_err(|e| model::Error::internal("encode metrics", e))?;
        Ok(out)
    }

    /// The per-node and per-tunnel series, from the nodes' last reports.
    async fn store_series(reg: &mut Registry, r: &Realizer) -> model::Result<()> {
        let nodes = r.store.node_states(None).await?;
        let generations: HashMap<String, i64> =
            r.store.gateway_generations_since(0).await?.into_iter().collect();
        let now = store::now_ms();
        let timeout = r.cfg.node_timeout.as_millis() as i64;
        let node_up: Family<GatewayNodeLabels, Gauge> = Family::default();
        let lag: Family<GatewayNodeLabels, Gauge> = Family::default();
        let age: Family<GatewayNodeLabels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
        let node_error: Family<GatewayNodeLabels, Gauge> = Family::default();
        let failures: Family<GatewayNodeLabels, Gauge> = Family::default();
        let tunnel_up: Family<TunnelLabels, Gauge> = Family::default();
        let counters: [TunnelCounter; 6] = [
            (
                "vpnaas_tunnel_bytes_in",
                "Bytes received over the tunnel's CHILD SAs",
                |t| t.bytes_in,
            ),
            (
                "vpnaas_tunnel_bytes_out",
                "Bytes sent over the tunnel's CHILD SAs",
                |t| t.bytes_out,
            ),
            (
                "vpnaas_tunnel_packets_in",
                "Packets received over the tunnel's CHILD SAs",
                |t| t.packets_in,
            ),
            (
                "vpnaas_tunnel_packets_out",
                "Packets sent over the tunnel's CHILD SAs",
                |t| t.packets_out,
            ),
            (
                "vpnaas_tunnel_ike_rekeys",
                "IKE SA rekeys since the node's agent started",
                |t| t.ike_rekeys,
            ),
            (
                "vpnaas_tunnel_child_rekeys",
                "CHILD SA rekeys since the node's agent started",
                |t| t.child_rekeys,
            ),
        ];
        let families: Vec<Family<TunnelLabels, Counter>> =
            counters.iter().map(|_| Family::default()).collect();
        for n in &nodes {
            let labels = GatewayNodeLabels {
                node: n.node.id.clone(),
                node_name: n.node.name.clone(),
                gateway: n.node.gateway_id.clone(),
            };
            let alive = n.last_seen > 0 && now - n.last_seen <= timeout;
            node_up.get_or_create(&labels).set(i64::from(alive));
            let gw_gen = generations.get(&n.node.gateway_id).copied().unwrap_or(0);
            let behind = (gw_gen - n.realized_generation.unwrap_or(0)).max(0);
            lag.get_or_create(&labels).set(behind);
            if n.last_seen > 0 {
                age.get_or_create(&labels)
                    .set((now - n.last_seen).max(0) as f64 / 1000.0);
            }
            node_error
                .get_or_create(&labels)
                .set(i64::from(n.node_error.is_some()));
            failures.get_or_create(&labels).set(n.failures.len() as i64);
            for t in &n.tunnels {
                let tl = TunnelLabels {
                    connection: t.id.clone(),
                    node: n.node.id.clone(),
                    gateway: n.node.gateway_id.clone(),
                };
                // A silent node's last word is not a tunnel that is up.
                tunnel_up.get_or_create(&tl).set(i64::from(alive && up(t)));
                for ((_, _, value), family) in counters.iter().zip(&families) {
                    family.get_or_create(&tl).inc_by(value(t));
                }
            }
        }
        reg.register(
            "vpnaas_node_up",
            "1 if the node reported within the node timeout, else 0",
            node_up,
        );
        reg.register(
            "vpnaas_node_realized_generation_lag",
            "Generations the node is behind its gateway's last change (0: in sync)",
            lag,
        );
        reg.register(
            "vpnaas_node_last_report_age_seconds",
            "Seconds since the node's last report (absent: never reported)",
            age,
        );
        reg.register(
            "vpnaas_node_error",
            "1 if the node's last report says it cannot drive its IPsec daemon",
            node_error,
        );
        reg.register(
            "vpnaas_node_tunnel_failures",
            "Tunnels the node's last report says it could not apply",
            failures,
        );
        reg.register(
            "vpnaas_tunnel_up",
            "1 if the node's last report has the tunnel's IKE SA established with a CHILD SA installed (0 when the node is silent)",
            tunnel_up,
        );
        for ((name, help, _), family) in counters.iter().zip(families) {
            reg.register(*name, *help, family);
        }
        Ok(())
    }
}

/// The `api` label of a path: the API [`Api::of`] assigns it, but `other`
/// for what belongs to none (this endpoint, the OpenAPI document).
fn api_label(path: &str) -> &'static str {
    match Api::of(path) {
        Api::Keystone => "keystone",
        Api::Nsx => "nsx",
        Api::Node => "node",
        Api::Neutron if path == "/" || path == "/v2.0" || path.starts_with("/v2.0/") => "neutron",
        Api::Neutron => "other",
    }
}

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware counting every request (a layer of the whole app, so
/// `MatchedPath` names the route template).
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let labels = RouteLabels {
        api: api_label(req.uri().path()),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string()),
        method: method_label(req.method()),
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    m.request(labels, resp.status(), started.elapsed());
    resp
}

/// The token of a scrape: `X-Auth-Token`, else `Authorization: Bearer`.
fn token(headers: &HeaderMap) -> Option<&str> {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    value("x-auth-token").filter(|t| !t.is_empty()).or_else(|| {
        value(header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

fn exposition(text: model::Result<String>) -> Response {
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "metrics scrape failed");
            api_neutron::error::http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The metrics could not be read.",
            )
        }
    }
}

/// `GET /metrics` on the main listener: an admin's token only.
pub async fn scrape(
    State(m): State<Metrics>,
    State(identity): State<Identity>,
    State(realizer): State<Realizer>,
    headers: HeaderMap,
) -> Response {
    let Some(t) = token(&headers) else {
        return identity::KeystoneError::Unauthorized.into_response();
    };
    let ctx = match identity.validate(t).await {
        Ok((ctx, _)) => ctx,
        Err(e) => return identity::KeystoneError::from(e).into_response(),
    };
    if !ctx.is_admin() {
        return api_neutron::error::http_error(
            StatusCode::FORBIDDEN,
            "Metrics name every project's connections: they need the admin role (or --metrics-listen).",
        );
    }
    let text = m.render(&realizer).await;
    exposition(text)
}

/// The state of the unauthenticated metrics listener.
#[derive(Clone)]
struct Open {
    metrics: Metrics,
    realizer: Realizer,
}

async fn scrape_open(State(o): State<Open>) -> Response {
    let text = o.metrics.render(&o.realizer).await;
    exposition(text)
}

async fn open_not_found() -> Response {
    api_neutron::error::http_error(StatusCode::NOT_FOUND, "This listener serves GET /metrics only.")
}

/// The app of `--metrics-listen`: `GET /metrics`, no credentials, nothing else.
pub fn open_app(metrics: Metrics, realizer: Realizer) -> Router {
    Router::new()
        .route(PATH, get(scrape_open))
        .fallback(open_not_found)
        .with_state(Open { metrics, realizer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_labels_are_bounded() {
        assert_eq!(api_label("/v3/auth/tokens"), "keystone");
        assert_eq!(api_label("/v2.0/vpn/ikepolicies/x"), "neutron");
        assert_eq!(api_label("/"), "neutron");
        assert_eq!(api_label("/api/v1/vpn/ipsec/sessions"), "nsx");
        assert_eq!(api_label("/internal/v1/nodes/n/report"), "node");
        assert_eq!(api_label("/metrics"), "other");
        assert_eq!(api_label("/openapi.json"), "other");
    }

    #[test]
    fn tokens_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(token(&h), Some("abc"));
        h.insert("x-auth-token", "xyz".parse().unwrap());
        assert_eq!(token(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(token(&h), None);
    }

    fn tunnel(id: &str, up: bool) -> TunnelStatus {
        TunnelStatus {
            id: id.into(),
            ike_state: if up {
                IkeState::Established
            } else {
                IkeState::Connecting
            },
            child_sas_installed: u32::from(up),
            ..TunnelStatus::default()
        }
    }

    #[test]
    fn state_changes_count_transitions_and_forget_gone_tunnels() {
        use realize::watch::ReportObserver;
        let m = Metrics::default();
        let node = Node {
            id: "n".into(),
            name: "n".into(),
            gateway_id: "g".into(),
            cert_sha256: None,
            created_at: 0,
        };
        let report = |tunnels| NodeReport {
            tunnels,
            apply_durations_ms: vec![3],
            ..NodeReport::default()
        };
        let changes = |to| {
            m.inner
                .state_changes
                .get(&ChangeLabels {
                    connection: "c".into(),
                    node: "n".into(),
                    to,
                })
                .map(|c| c.get())
        };
        // First sight is no change.
        m.inner.accepted(&node, &report(vec![tunnel("c", false)]));
        assert_eq!(changes("up"), None);
        m.inner.accepted(&node, &report(vec![tunnel("c", true)]));
        m.inner.accepted(&node, &report(vec![tunnel("c", true)]));
        assert_eq!(changes("up"), Some(1));
        m.inner.accepted(&node, &report(vec![tunnel("c", false)]));
        assert_eq!(changes("down"), Some(1));
        // Gone from the node's report: its series go.
        m.inner.accepted(&node, &report(vec![]));
        assert_eq!(changes("up"), None);
        assert_eq!(changes("down"), None);
        assert_eq!(
            m.inner
                .reports
                .get(&NodeLabels { node: "n".into() })
                .map(|c| c.get()),
            Some(5)
        );
    }
}
