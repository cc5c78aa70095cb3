//! Composes the API crates into one axum app and serves it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use app::App;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use identity::{Identity, IdentityConfig};
use realize::{RealizeConfig, Realizer};
use store::{Cipher, Database, Store};
use tower_http::trace::TraceLayer;

use crate::edge::{self, Limits};
use crate::listener::{self, ConnLimits, Listener, TlsFiles};
use crate::request_id;

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The canonical store.
    pub store: Store,
    /// The write path (rules and cascades) over the store.
    pub app: App,
    /// Keystone identity: tokens, passwords, roles.
    pub identity: Identity,
    /// Realization: what nodes must carry, and the states they report.
    pub realizer: Realizer,
    /// Prometheus metrics of this process (`/metrics`).
    pub metrics: crate::metrics::Metrics,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The database (a SQLite file or a PostgreSQL URL).
    pub db: Database,
    /// The file of the key that encrypts pre-shared keys at rest (default:
    /// next to a SQLite database).
    pub key_file: Option<PathBuf>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The URL clients reach the server at (default: from `listen`).
    pub public_url: Option<String>,
    /// The admin user made on first start.
    pub admin_user: String,
    /// The admin user's project.
    pub admin_project: String,
    /// The admin's password on first start (default: generated and written
    /// to a file next to the database or key file).
    pub admin_password: Option<String>,
    /// How long a token is valid.
    pub token_ttl: Duration,
    /// A node silent for longer is `unknown` in realization states.
    pub node_timeout: Duration,
    /// TLS on `listen` (certificate, key, optional client CA for node certificates).
    pub tls: Option<TlsFiles>,
    /// An extra plain-HTTP listener next to a TLS `listen`; loopback only.
    pub plain_listen: Option<SocketAddr>,
    /// Allow plain HTTP on a non-loopback `listen` (tests, trusted networks).
    pub insecure_plain_http: bool,
    /// Request-level limits and timeouts (the edge).
    pub limits: Limits,
    /// Connection-level limits and timeouts (the listener).
    pub conn_limits: ConnLimits,
    /// Password-check bounds: hashing threads, verified cache, lock-out, throttling.
    pub auth_limits: identity::AuthLimits,
    /// A listener of its own serving `GET /metrics` without credentials
    /// (loopback, or any address with `insecure_plain_http`).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            db: Database::Sqlite(PathBuf::from("vpnaas.db")),
            key_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 9696)),
            public_url: None,
            admin_user: "admin".into(),
            admin_project: "admin".into(),
            admin_password: None,
            token_ttl: Duration::from_secs(3600),
            node_timeout: Duration::from_secs(15),
            tls: None,
            plain_listen: None,
            insecure_plain_http: false,
            limits: Limits::default(),
            conn_limits: ConnLimits::default(),
            auth_limits: identity::AuthLimits::default(),
            metrics_listen: None,
        }
    }
}

/// A file that belongs with the database (`suffix` e.g. `.key`,
/// `.admin-password`): next to a SQLite file; for PostgreSQL, next to the
/// key file, which must then be given (every replica needs the same key, and
/// it must not live in the database it protects).
pub fn sidecar(db: &Database, key_file: Option<&Path>, suffix: &str) -> anyhow::Result<PathBuf> {
    let base = match (db, key_file) {
        (Database::Sqlite(p), _) => p.clone(),
        (Database::Postgres(_), Some(k)) => k.to_path_buf(),
        (Database::Postgres(_), None) => anyhow::bail!(
            "with a PostgreSQL database, give --key-file (or VPNAAS_SECRET_KEY): the key that \
             encrypts pre-shared keys must be the same on every replica and must not live in \
             the database"
        ),
    };
    let mut p = base.into_os_string();
    p.push(suffix);
    Ok(PathBuf::from(p))
}

/// The key file: as configured, else next to the SQLite database.
pub fn key_path(db: &Database, key_file: Option<&Path>) -> anyhow::Result<PathBuf> {
    match key_file {
        Some(k) => Ok(k.to_path_buf()),
        None => sidecar(db, None, ".key"),
    }
}

/// Opens the store, creating the database and the encryption key on first use.
/// `VPNAAS_SECRET_KEY` (base64, 32 bytes) takes precedence over the key file.
pub async fn open_store(db: &Database, key_file: Option<&Path>) -> anyhow::Result<Store> {
    let cipher = match std::env::var("VPNAAS_SECRET_KEY") {
        Ok(k) if !k.is_empty() => Cipher::from_base64(&k).context("VPNAAS_SECRET_KEY")?,
        _ => {
            let path = key_path(db, key_file)?;
            Cipher::load_or_create(&path).with_context(|| format!("secret key file {}", path.display()))?
        }
    };
    Store::open(db.clone(), cipher)
        .await
        .with_context(|| format!("open database {db}"))
}

/// Builds the whole HTTP app: the APIs behind the edge (limits, deadlines,
/// envelopes) and the request-id stamp.
pub fn app(state: AppState, limits: Arc<Limits>) -> Router {
    Router::new()
        .merge(identity::keystone::router())
        .merge(api_neutron::router())
        .merge(api_nsx::router())
        .merge(api_nsx::state::router())
        .merge(realize::http::router())
        .merge(crate::openapi::router())
        .route(crate::metrics::PATH, axum::routing::get(crate::metrics::scrape))
        .fallback(edge::not_found)
        // The edge reads bodies with its own per-API limits.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(limits, edge::edge))
        .layer(axum::middleware::from_fn(request_id::assign))
        // Outside the edge, so refusals are counted too; per route, so the
        // route template is known (`crate::metrics`).
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The handlers' shared state for `cfg`, with `public_url` in the catalog.
pub fn state(store: Store, cfg: &ServeConfig, public_url: &str) -> AppState {
    let identity = Identity::new(
        store.clone(),
        IdentityConfig {
            public_url: public_url.to_string(),
            token_ttl: cfg.token_ttl,
            region: "RegionOne".into(),
            limits: cfg.auth_limits.clone(),
        },
    );
    let realizer = Realizer::new(
        store.clone(),
        RealizeConfig {
            node_timeout: cfg.node_timeout,
            ..RealizeConfig::default()
        },
    );
    let metrics = crate::metrics::Metrics::default();
    metrics.install(&store, &realizer);
    AppState {
        app: App::new(store.clone(), cfg.node_timeout),
        store,
        identity,
        realizer,
        metrics,
    }
}

/// A running server.
pub struct Running {
    /// The address the main listener is bound to (the real port when
    /// `listen` asked for port 0).
    pub addr: SocketAddr,
    /// The URL clients reach it at.
    pub url: String,
    /// The state every handler shares.
    pub state: AppState,
    /// The serving task; ends with the listener's error, if any.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The extra plain listener's address, if one was asked for.
    pub plain_addr: Option<SocketAddr>,
    /// Where a generated admin password was written, if one was generated.
    pub admin_password_file: Option<PathBuf>,
    /// The metrics listener's address, if one was asked for.
    pub metrics_addr: Option<SocketAddr>,
}

/// Bootstraps identity and starts serving in the background.
pub async fn start(cfg: ServeConfig) -> anyhow::Result<Running> {
    let store = open_store(&cfg.db, cfg.key_file.as_deref()).await?;
    let tls = cfg.tls.as_ref().map(listener::tls_config).transpose()?;
    if tls.is_none() && !listener::is_loopback(&cfg.listen) && !cfg.insecure_plain_http {
        anyhow::bail!(
            "refusing plain HTTP on {}: tokens, passwords and pre-shared keys would cross the \
             network in clear; give --tls-cert and --tls-key (and keep plain HTTP on 127.0.0.1 \
             with --plain-listen), or --insecure-plain-http",
            cfg.listen
        );
    }
    if let Some(p) = cfg.plain_listen {
        if !listener::is_loopback(&p) {
            anyhow::bail!("--plain-listen {p}: the extra plain-HTTP listener must be on a loopback address");
        }
        if tls.is_none() {
            anyhow::bail!(
                "--plain-listen is an extra plain listener next to a TLS --listen; give --tls-cert/--tls-key"
            );
        }
    }
    if let Some(m) = cfg.metrics_listen
        && !listener::is_loopback(&m)
        && !cfg.insecure_plain_http
    {
        anyhow::bail!(
            "--metrics-listen {m}: metrics are served there without credentials and name every \
             project's connections; use a loopback address, or say --insecure-plain-http"
        );
    }
    let admin_password_file = crate::admin::bootstrap(&store, &cfg).await?;
    // Subnets stored before networks existed get their gateway's network.
    let moved = crate::admin::operator(&store).upgrade_core_network().await?;
    if moved > 0 {
        tracing::info!(
            subnets = moved,
            "gave subnets from before networks their gateway's network"
        );
    }
    let main = Listener::bind(cfg.listen, tls.clone()).await?;
    let addr = main.local_addr()?;
    let mut listeners = vec![main];
    let mut plain_addr = None;
    if let Some(p) = cfg.plain_listen {
        let plain = Listener::bind(p, None).await?;
        plain_addr = Some(plain.local_addr()?);
        listeners.push(plain);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = cfg.public_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        format!("{scheme}://{host}:{}", addr.port())
    });
    let state = state(store, &cfg, &url);
    let app = app(state.clone(), Arc::new(cfg.limits.clone()));
    let mut conn_limits = cfg.conn_limits.clone();
    let fitted = listener::fit_connection_limit(conn_limits.max_connections);
    if fitted < conn_limits.max_connections {
        tracing::warn!(
            wanted = conn_limits.max_connections,
            fitted,
            "the open-files limit allows fewer connections than configured"
        );
        conn_limits.max_connections = fitted;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = state.realizer.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // Long-polls answer first, so connections can finish within the grace time.
        stopping.stop();
        let _ = stop_tx.send(true);
    });
    let mut metrics_addr = None;
    if let Some(m) = cfg.metrics_listen {
        let l = Listener::bind(m, None).await?;
        metrics_addr = Some(l.local_addr()?);
        let open = crate::metrics::open_app(state.metrics.clone(), state.realizer.clone());
        tokio::spawn(listener::serve(
            vec![l],
            open,
            conn_limits.clone(),
            stop_rx.clone(),
            Duration::from_secs(1),
        ));
    }
    let task = tokio::spawn(listener::serve(
        listeners,
        app,
        conn_limits,
        stop_rx,
        Duration::from_secs(10),
    ));
    Ok(Running {
        addr,
        url,
        state,
        task,
        admin_password_file,
        plain_addr,
        metrics_addr,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `vpnaas serve` flags for listeners, TLS, limits and timeouts.
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// PEM certificate chain: serve HTTPS on --listen (every API and the node API).
    #[arg(long, env = "VPNAAS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "VPNAAS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that signs gateway nodes' client certificates (mutual TLS for the
    /// node API, in place of bearer tokens).
    #[arg(long, env = "VPNAAS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// An extra plain-HTTP listener on a loopback address next to a TLS --listen
    /// (local tools, health checks).
    #[arg(long, env = "VPNAAS_PLAIN_LISTEN")]
    pub plain_listen: Option<SocketAddr>,
    /// Allow plain HTTP on a non-loopback --listen (and --metrics-listen).
    #[arg(long, env = "VPNAAS_INSECURE_PLAIN_HTTP")]
    pub insecure_plain_http: bool,
    /// Serve `GET /metrics` without credentials on this address of its own
    /// (plain HTTP; loopback unless --insecure-plain-http). On --listen,
    /// /metrics needs an admin token.
    #[arg(long, env = "VPNAAS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Most open client connections.
    #[arg(long, env = "VPNAAS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request head (and a TLS handshake).
    #[arg(long, env = "VPNAAS_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, env = "VPNAAS_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a client may take to send a request body.
    #[arg(long, env = "VPNAAS_BODY_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Seconds a request may take to be handled (node long-polls: their wait plus this).
    #[arg(long, env = "VPNAAS_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
}

impl NetArgs {
    /// Puts these settings into `cfg`.
    pub fn apply(self, cfg: &mut ServeConfig) {
        cfg.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            _ => None,
        };
        cfg.plain_listen = self.plain_listen;
        cfg.insecure_plain_http = self.insecure_plain_http;
        cfg.metrics_listen = self.metrics_listen;
        cfg.conn_limits = ConnLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
        };
        cfg.limits.body_timeout = Duration::from_secs(self.body_timeout);
        cfg.limits.request_timeout = Duration::from_secs(self.request_timeout);
    }
}
