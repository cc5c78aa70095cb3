//! Composes the API crates into one axum app and serves it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use identity::{Identity, IdentityConfig};
use realize::{RealizeConfig, Realizer};
use serde_json::json;
use store::{Cipher, Store};
use tower_http::trace::TraceLayer;

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Store,
    pub identity: Identity,
    pub realizer: Realizer,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: PathBuf,
    pub key_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub admin_user: String,
    pub admin_project: String,
    pub admin_password: Option<String>,
    pub token_ttl: Duration,
    /// A node silent for longer is `unknown` in realization states.
    pub node_timeout: Duration,
}

/// The key file next to the database unless configured.
pub fn key_path(db: &Path, key_file: Option<&Path>) -> PathBuf {
    key_file.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut p = db.as_os_str().to_owned();
        p.push(".key");
        PathBuf::from(p)
    })
}

/// Opens the store, creating the database and the encryption key on first use.
/// `VPNAAS_SECRET_KEY` (base64, 32 bytes) takes precedence over the key file.
pub async fn open_store(db: &Path, key_file: Option<&Path>) -> anyhow::Result<Store> {
    let cipher = match std::env::var("VPNAAS_SECRET_KEY") {
        Ok(k) if !k.is_empty() => Cipher::from_base64(&k).context("VPNAAS_SECRET_KEY")?,
        _ => {
            let path = key_path(db, key_file);
            Cipher::load_or_create(&path).with_context(|| format!("secret key file {}", path.display()))?
        }
    };
    Store::open(db, cipher)
        .await
        .with_context(|| format!("open database {}", db.display()))
}

/// Builds the whole HTTP app.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(identity::keystone::router())
        .merge(api_neutron::router())
        .merge(api_nsx::router())
        .merge(api_nsx::state::router())
        .merge(realize::http::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(identity::request::assign))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": {"code": 404, "title": "Not Found", "message": "The resource could not be found."}}),
        ),
    )
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub state: AppState,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Where a generated admin password was written, if one was generated.
    pub admin_password_file: Option<PathBuf>,
}

/// Bootstraps identity and starts serving in the background.
pub async fn start(cfg: ServeConfig) -> anyhow::Result<Running> {
    let store = open_store(&cfg.db, cfg.key_file.as_deref()).await?;
    let admin_password_file = crate::admin::bootstrap(&store, &cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("bind {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let url = cfg.public_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}", addr.port())
    });
    let identity = Identity::new(
        store.clone(),
        IdentityConfig {
            public_url: url.clone(),
            token_ttl: cfg.token_ttl,
            region: "RegionOne".into(),
        },
    );
    let realizer = Realizer::new(
        store.clone(),
        RealizeConfig {
            node_timeout: cfg.node_timeout,
            ..RealizeConfig::default()
        },
    );
    let state = AppState {
        store,
        identity,
        realizer,
    };
    let app = app(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    Ok(Running {
        addr,
        url,
        state,
        task,
        admin_password_file,
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
