//! The node API agents talk to (`/internal/v1/nodes/{id}/...`); see
//! `docs/node-api.md`. Each node authenticates with its own bearer token and can
//! only read its own configuration and write its own reports.

use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use model::realization::NodeReport;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use store::nodes::Node;

use crate::Realizer;

/// Longest long-poll a node may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// A new random node token (shown once) and its stored hash.
pub fn new_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Realizer: FromRef<S>,
{
    Router::new()
        .route("/internal/v1/nodes/{id}/config", get(config))
        .route("/internal/v1/nodes/{id}/report", post(report))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// The authenticated node.
pub struct AuthNode(pub Node);

impl<S> FromRequestParts<S> for AuthNode
where
    S: Send + Sync,
    Realizer: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let r = Realizer::from_ref(state);
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256);
        let Some(token) = token else {
            return Err(error(StatusCode::UNAUTHORIZED, "node token required"));
        };
        match r.store.node_by_token(&token_hash(token)).await {
            Ok(Some(node)) => Ok(AuthNode(node)),
            Ok(None) => Err(error(StatusCode::UNAUTHORIZED, "unknown node token")),
            Err(e) => {
                tracing::error!(error = %e, "node authentication failed");
                Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
            }
        }
    }
}

/// The answer for a node asking about another node's path, if it does.
fn foreign(node: &Node, id: &str) -> Option<Response> {
    (node.id != id).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "a node may only access its own configuration",
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct ConfigQuery {
    known: Option<i64>,
    wait: Option<u64>,
}

fn internal(e: model::Error) -> Response {
    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "node API failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn config(
    State(r): State<Realizer>,
    AuthNode(node): AuthNode,
    Path(id): Path<String>,
    Query(q): Query<ConfigQuery>,
) -> Response {
    if let Some(resp) = foreign(&node, &id) {
        return resp;
    }
    let deadline = Instant::now() + Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let mut changes = r.store.subscribe();
    loop {
        let current = match r.store.gateway_generation(&node.gateway_id).await {
            Ok(g) => g,
            Err(e) => return internal(e),
        };
        if q.known.is_none_or(|k| current > k) {
            return match r.node_config(&node).await {
                Ok(cfg) => Json(cfg).into_response(),
                Err(e) => internal(e),
            };
        }
        let now = Instant::now();
        if now >= deadline {
            return StatusCode::NO_CONTENT.into_response();
        }
        // Woken by this process's commits at once; other replicas' commits are
        // seen by the periodic re-check.
        let tick = (deadline - now).min(Duration::from_secs(1));
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

async fn report(
    State(r): State<Realizer>,
    AuthNode(node): AuthNode,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(resp) = foreign(&node, &id) {
        return resp;
    }
    let report: NodeReport = match serde_json::from_slice(&body) {
        Ok(rep) => rep,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid report: {e}")),
    };
    match r.store.node_report(&node.id, &report).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}
