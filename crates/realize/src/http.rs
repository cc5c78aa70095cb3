//! The node API agents talk to (`/internal/v1/nodes/{id}/...`); see
//! `docs/node-api.md`. Each node authenticates with its own bearer token or, over
//! mutual TLS, with its own client certificate, and can only read its own
//! configuration and write its own reports.
//!
//! A sent `Authorization` header always decides: a wrong token is refused even
//! when the connection also carries a registered certificate, so a credential
//! mix-up shows up instead of silently working through the other one.
//!
//! Every failure is a [`NodeApiError`], answered as `{"error": {code, message}}`
//! by [`http_error`] (which the server's edge also uses for HTTP-level failures
//! on these paths).
//!
//! [`openapi`] describes these routes from the handlers' `#[utoipa::path]`
//! attributes; the payload schemas are the `model::realization` types' own.

use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::realization::{NodeConfig, NodeReport};
use serde::{Deserialize, Serialize};
use store::nodes::Node;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::Realizer;
use crate::fanout::Fanout;

/// Longest long-poll a node may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// The node API's routes, for any server state a [`Realizer`] can be taken from.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Realizer: FromRef<S>,
{
    Router::new()
        .route("/internal/v1/nodes/{id}/config", get(config))
        .route("/internal/v1/nodes/{id}/report", post(report))
}

/// Security scheme name of the node's bearer token.
pub const TOKEN_SCHEME: &str = "node_token";
/// Security scheme name of the node's registered client certificate.
pub const CERT_SCHEME: &str = "node_certificate";

#[derive(OpenApi)]
#[openapi(paths(config, report))]
struct NodeApi;

/// The OpenAPI description of [`router`], with its security schemes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = NodeApi::openapi();
    let c = doc.components.get_or_insert_with(Default::default);
    c.add_security_scheme(
        TOKEN_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The node's token from `vpnaas node add`"))
                .build(),
        ),
    );
    c.add_security_scheme(
        CERT_SCHEME,
        SecurityScheme::MutualTls {
            description: Some(
                "A client certificate registered with `vpnaas node add --cert-file` (TLS listener with `--tls-client-ca`)"
                    .into(),
            ),
            deprecated: None,
            extensions: None,
        },
    );
    doc
}

/// Everything a node API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// An `Authorization` header that is not `Bearer <token>` (or an empty or
    /// overlong token).
    #[error("malformed bearer token")]
    MalformedToken,
    /// Neither a bearer token nor a verified client certificate.
    #[error("node token or client certificate required")]
    NoCredentials,
    /// A well-formed bearer token no node was issued.
    #[error("unknown node token")]
    UnknownToken,
    /// A verified client certificate no node was registered with.
    #[error("client certificate not registered for any node")]
    UnknownCertificate,
    /// A node unregistered (`vpnaas node delete`) while its long-poll waited.
    #[error("the node was unregistered")]
    Unregistered,
    /// An authenticated node asking about another node's path.
    #[error("a node may only access its own configuration")]
    ForeignNode,
    /// A report body that is not a `NodeReport`.
    #[error("invalid report")]
    InvalidReport(#[source] serde_json::Error),
    /// A report claiming a generation that was never committed (negative, or
    /// above the latest one): it would mark changes realized before any node
    /// fetched them.
    #[error("realized_generation {0} is not a generation this server has committed (latest: {1})")]
    ImpossibleGeneration(i64, i64),
    /// A store or realization failure; the details go to the log only.
    #[error("internal error")]
    Internal(#[from] model::Error),
}

impl NodeApiError {
    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            NodeApiError::MalformedToken
            | NodeApiError::NoCredentials
            | NodeApiError::UnknownToken
            | NodeApiError::UnknownCertificate
            | NodeApiError::Unregistered => StatusCode::UNAUTHORIZED,
            NodeApiError::ForeignNode => StatusCode::FORBIDDEN,
            NodeApiError::InvalidReport(_) | NodeApiError::ImpossibleGeneration(..) => {
                StatusCode::BAD_REQUEST
            }
            NodeApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for NodeApiError {
    fn into_response(self) -> Response {
        if let NodeApiError::Internal(e) = &self {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "node API failure");
        }
        // The report's parse error is for the node's operator: it goes into the
        // message, after the variant's own words.
        let message = match &self {
            NodeApiError::InvalidReport(e) => format!("{self}: {e}"),
            _ => self.to_string(),
        };
        http_error(self.status(), &message)
    }
}

/// The node API's error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = node::Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of the node API's error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = node::ErrorDetail)]
pub struct ErrorDetail {
    /// The HTTP status again.
    pub code: u16,
    /// For the node's operator: the failure, and for a bad report the parse error.
    pub message: String,
}

/// The node API's error envelope `{"error": {code, message}}`; every node API
/// error (including HTTP-level ones from the server's edge) goes through here.
pub fn http_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: status.as_u16(),
                message: message.to_string(),
            },
        }),
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
        ClientCertFingerprint(store::sha256_hex(der))
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
    type Rejection = NodeApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let r = Realizer::from_ref(state);
        let node = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            Some(header) => {
                let token = header
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && t.len() <= 256)
                    .ok_or(NodeApiError::MalformedToken)?;
                r.store
                    .node_by_token(&store::token_hash(token))
                    .await?
                    .ok_or(NodeApiError::UnknownToken)?
            }
            None => match parts.extensions.get::<ClientCertFingerprint>() {
                Some(fp) => r
                    .store
                    .node_by_cert(&fp.0)
                    .await?
                    .ok_or(NodeApiError::UnknownCertificate)?,
                None => return Err(NodeApiError::NoCredentials),
            },
        };
        Ok(AuthNode(node))
    }
}

/// Refuses a node asking about another node's path.
fn own(node: &Node, id: &str) -> Result<(), NodeApiError> {
    if node.id == id {
        Ok(())
    } else {
        Err(NodeApiError::ForeignNode)
    }
}

/// The long-poll parameters of `GET .../config`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// The generation the node already has: answer only with a newer snapshot.
    known: Option<i64>,
    /// Seconds to wait for a newer snapshot (at most 120).
    wait: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/internal/v1/nodes/{id}/config",
    tag = "node",
    operation_id = "node_config",
    summary = "The node's configuration snapshot (long-poll with `known` and `wait`)",
    params(("id" = String, Path, description = "The node's own id"), ConfigQuery),
    security(("node_token" = []), ("node_certificate" = [])),
    responses(
        (status = 200, description = "A snapshot newer than `known` (or any, without `known`)", body = NodeConfig),
        (status = 204, description = "Nothing newer than `known` within `wait`"),
        (status = 400, description = "Unparsable query", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown token or certificate, or the node was unregistered while it waited", body = ErrorBody),
        (status = 403, description = "Another node's path", body = ErrorBody),
    ),
)]
async fn config(
    State(r): State<Realizer>,
    AuthNode(node): AuthNode,
    Path(id): Path<String>,
    Query(q): Query<ConfigQuery>,
) -> Result<Response, NodeApiError> {
    own(&node, &id)?;
    let deadline = Instant::now() + Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let mut stopping = r.stopping();
    // Interest first, then the gateway's generation: whatever commits after
    // that read moves the gateway's channel (see `crate::fanout`), which only
    // the commits changing this gateway do. The first long-poll of a gateway
    // reads it and leaves it in the channel; the others start from there.
    let mut changes = Fanout::watch(&r, &node.gateway_id).await?;
    let mut current = 0;
    if changes.must_read() {
        current = r.store.gateway_generation(&node.gateway_id).await?;
        changes.seed(current);
    }
    loop {
        current = current.max(changes.seen());
        if q.known.is_none_or(|k| current > k) {
            // Shared with the gateway's other nodes asking for this change.
            let built = Fanout::config(&r, &changes, current).await?;
            // A node unregistered while it waited gets no snapshot of a change
            // made after: the build's snapshot lists the gateway's nodes (one
            // read per build, not per node); one not listed is looked up.
            if !built.has_node(&node.id) && !r.store.node_registered(&node.id).await? {
                return Err(NodeApiError::Unregistered);
            }
            return Ok(built.response(&node.id));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(deadline - now) => {}
            // Shutting down: "nothing new" now, so the agent asks the next server.
            _ = stopping.wait_for(|s| *s) => return Ok(StatusCode::NO_CONTENT.into_response()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/internal/v1/nodes/{id}/report",
    tag = "node",
    operation_id = "node_report",
    summary = "Report realized generation, failures and tunnel state (also a heartbeat)",
    params(("id" = String, Path, description = "The node's own id")),
    request_body(content = NodeReport, content_type = "application/json"),
    security(("node_token" = []), ("node_certificate" = [])),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Not a `NodeReport`, or a `realized_generation` never committed", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown token or certificate", body = ErrorBody),
        (status = 403, description = "Another node's path", body = ErrorBody),
    ),
)]
async fn report(
    State(r): State<Realizer>,
    AuthNode(node): AuthNode,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, NodeApiError> {
    own(&node, &id)?;
    let report: NodeReport = serde_json::from_slice(&body).map_err(NodeApiError::InvalidReport)?;
    if let Some(g) = report.realized_generation {
        // This process's latest commit first (no query); above it, the
        // database's (another replica may have committed since).
        let mut latest = *r.store.subscribe().borrow();
        if g > latest {
            latest = r.store.generation_current().await?;
        }
        if g < 0 || g > latest {
            return Err(NodeApiError::ImpossibleGeneration(g, latest));
        }
    }
    r.store.node_report(&node.id, &report).await?;
    // Watchers and metrics (see `crate::watch`).
    r.report_accepted(&node, &report);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sha2::{Digest, Sha256};
    use store::nodes::NodeCredentials;
    use store::{Cipher, NewMeta, WriteCtx};
    use tower::ServiceExt;

    struct World {
        _db: store::testing::TestDb,
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
        let db = store::testing::fresh().await;
        let store = store::Store::open(db.db.clone(), Cipher::from_key(&[3; 32]))
            .await
            .unwrap();
        let mut tx = store.begin(&WriteCtx::new("test")).await.unwrap();
        let gateway = model::Gateway::with_addresses(Some("192.0.2.1".parse().unwrap()), None);
        let meta = NewMeta {
            id: None,
            project_id: "p".into(),
            name: "gw".into(),
            description: String::new(),
        };
        let gw = tx.insert(meta, gateway).await.unwrap().meta.id;
        tx.commit().await.unwrap();
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
        let (token, hash) = store::new_token();
        let token_node = store.node_create("b", &gw, &hash).await.unwrap();
        let app = router().with_state(Realizer::new(store, crate::RealizeConfig::default()));
        World {
            _db: db,
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
