//! The node API agents talk to (`/internal/v1/nodes/{id}/...`); see
//! `docs/node-api.md`. Each node authenticates with its own bearer token or, over
//! mutual TLS, with its own client certificate, and can only read its own
//! configuration and write its own reports.
//!
//! A sent `Authorization` header always decides: a wrong token is refused even
//! when the connection also carries a registered certificate, so a credential
//! mix-up shows up instead of silently working through the other one.

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

/// The node API's error envelope `{"error": {code, message}}`; every node API
/// error (including HTTP-level ones from the server's edge) goes through here.
pub fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// The client certificate a request arrived with: lowercase hex SHA-256 of the
/// leaf certificate's DER. The TLS listener inserts it as a request extension
/// only after the certificate chain verified against `--tls-client-ca`; a node
/// registered with that fingerprint (`vpnaas node add --cert-file`) may then
/// authenticate without a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertFingerprint(pub String);

impl ClientCertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> ClientCertFingerprint {
        ClientCertFingerprint(hex::encode(Sha256::digest(der)))
    }

    /// The fingerprint of the first certificate (the leaf) of a PEM file.
    pub fn of_pem(pem: &[u8]) -> Result<ClientCertFingerprint, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        match CertificateDer::pem_slice_iter(pem).next() {
            Some(Ok(der)) => Ok(ClientCertFingerprint::of_der(&der)),
            Some(Err(e)) => Err(format!("invalid PEM certificate: {e}")),
            None => Err("no PEM CERTIFICATE block found".into()),
        }
    }
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
        let found = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            Some(header) => {
                let token = header
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && t.len() <= 256);
                let Some(token) = token else {
                    return Err(error(StatusCode::UNAUTHORIZED, "malformed bearer token"));
                };
                r.store
                    .node_by_token(&token_hash(token))
                    .await
                    .map(|n| n.ok_or("unknown node token"))
            }
            None => match parts.extensions.get::<ClientCertFingerprint>() {
                Some(fp) => r
                    .store
                    .node_by_cert(&fp.0)
                    .await
                    .map(|n| n.ok_or("client certificate not registered for any node")),
                None => {
                    return Err(error(
                        StatusCode::UNAUTHORIZED,
                        "node token or client certificate required",
                    ));
                }
            },
        };
        match found {
            Ok(Ok(node)) => Ok(AuthNode(node)),
            Ok(Err(message)) => Err(error(StatusCode::UNAUTHORIZED, message)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use base64::engine::general_purpose::STANDARD;
    use store::nodes::NodeCredentials;
    use store::{Cipher, NewMeta, WriteCtx};
    use tower::ServiceExt;

    struct World {
        _dir: tempfile::TempDir,
        app: Router,
        cert_node: Node,
        token_node: Node,
        token: String,
    }

    fn pem(label: &str, der: &[u8]) -> String {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::open(&dir.path().join("t.db"), Cipher::from_key(&[3; 32]))
            .await
            .unwrap();
        let gw = store
            .gateway_create(
                &WriteCtx::new("test"),
                NewMeta {
                    id: None,
                    project_id: "p".into(),
                    name: "gw".into(),
                    description: String::new(),
                },
                model::Gateway {
                    external_v4: Some("192.0.2.1".parse().unwrap()),
                    external_v6: None,
                },
            )
            .await
            .unwrap()
            .record
            .meta
            .id;
        let fp = ClientCertFingerprint::of_der(b"node-a certificate");
        let cert_node = store
            .node_register(
                "a",
                &gw,
                &NodeCredentials {
                    token_hash: None,
                    cert_sha256: Some(fp.0),
                },
            )
            .await
            .unwrap();
        let (token, hash) = new_token();
        let token_node = store.node_create("b", &gw, &hash).await.unwrap();
        let app = router().with_state(Realizer::new(store, crate::RealizeConfig::default()));
        World {
            _dir: dir,
            app,
            cert_node,
            token_node,
            token,
        }
    }

    async fn get(
        w: &World,
        node: &str,
        bearer: Option<&str>,
        cert: Option<&[u8]>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::get(format!("/internal/v1/nodes/{node}/config"));
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(der) = cert {
            req.extensions_mut().insert(ClientCertFingerprint::of_der(der));
        }
        let resp = w.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn client_certificate_authenticates_its_node() {
        let w = world().await;
        let (s, body) = get(&w, &w.cert_node.id, None, Some(b"node-a certificate")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(body.get("generation").is_some(), "{body}");
        // Only its own configuration.
        let (s, body) = get(&w, &w.token_node.id, None, Some(b"node-a certificate")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], 403);
    }

    #[tokio::test]
    async fn unknown_or_missing_credentials_are_refused() {
        let w = world().await;
        for (bearer, cert) in [
            (None, None),
            (None, Some(&b"someone else"[..])),
            (Some("wrong-token"), None),
            // A sent token decides, even with a registered certificate.
            (Some("wrong-token"), Some(&b"node-a certificate"[..])),
            (Some(""), Some(&b"node-a certificate"[..])),
        ] {
            let (s, body) = get(&w, &w.cert_node.id, bearer, cert).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{bearer:?}");
            assert_eq!(body["error"]["code"], 401, "{body}");
            assert!(body["error"]["message"].is_string(), "{body}");
        }
    }

    #[tokio::test]
    async fn bearer_tokens_still_work() {
        let w = world().await;
        let (s, _) = get(&w, &w.token_node.id, Some(&w.token), None).await;
        assert_eq!(s, StatusCode::OK);
        // The token node has no certificate: a certificate alone is not its credential.
        let (s, _) = get(&w, &w.token_node.id, None, Some(b"node-b certificate")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn fingerprint_of_pem_is_the_leaf_der_sha256() {
        let leaf = b"leaf certificate DER";
        let file = format!(
            "{}{}{}",
            pem("PRIVATE KEY", b"not a certificate"),
            pem("CERTIFICATE", leaf),
            pem("CERTIFICATE", b"issuer")
        );
        let fp = ClientCertFingerprint::of_pem(file.as_bytes()).unwrap();
        assert_eq!(fp.0, hex::encode(Sha256::digest(leaf)));
        assert_eq!(fp.0.len(), 64);
        assert!(ClientCertFingerprint::of_pem(b"no pem here").is_err());
        assert!(ClientCertFingerprint::of_pem(pem("PRIVATE KEY", b"k").as_bytes()).is_err());
    }
}
