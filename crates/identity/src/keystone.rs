//! The Keystone v3 HTTP subset and the request-authentication extractor.
//!
//! Token introspection follows Keystone's default policy (`identity:validate_token`
//! = admin, service or the token's own user; `identity:check_token` and
//! `identity:revoke_token` = admin or the token's own user): a token is a
//! credential, so nobody else may read, probe or revoke it. Every refusal is a
//! [`KeystoneError`] (see [`crate::error`]).

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

use crate::error::KeystoneError;
use crate::wire::*;
use crate::{AuthContext, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Identity, Issued, Peer};

/// Routes under `/v3`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Identity: FromRef<S>,
{
    Router::new()
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route(
            "/v3/auth/tokens",
            get(token_show)
                .head(token_check)
                .post(token_create)
                .delete(token_revoke),
        )
        .merge(crate::admin_api::router())
}

/// The security scheme name of a Keystone token in `X-Auth-Token` (Keystone
/// itself, and every Neutron operation).
pub const TOKEN_SCHEME: &str = "keystone_token";

#[derive(OpenApi)]
#[openapi(paths(version, token_create, token_show, token_check, token_revoke))]
struct KeystoneApi;

/// The OpenAPI description of [`router`]: its paths (`/v3/` as an alias of
/// `/v3`), their schemas, and the [`TOKEN_SCHEME`] security scheme.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = KeystoneApi::openapi();
    doc.merge(crate::admin_api::AdminApi::openapi());
    if let Some(item) = doc.paths.paths.get("/v3").cloned() {
        let mut item = item;
        if let Some(op) = item.get.as_mut() {
            op.operation_id = Some("keystone_version_slash".into());
        }
        doc.paths.paths.insert("/v3/".into(), item);
    }
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            TOKEN_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Auth-Token",
                "A Keystone token from `POST /v3/auth/tokens`",
            ))),
        );
    doc
}

/// The Identity API version `GET /v3` reports, with its `updated` date:
/// exactly what every Keystone since Ussuri says. keystoneauth1's discovery
/// (behind the openstack CLI and openstacksdk) needs a `stable` v3 document
/// here; reporting a real Keystone's version keeps any client that compares or
/// logs it on known ground.
const KEYSTONE_API_VERSION: &str = "v3.14";
/// The `updated` date Keystone reports with [`KEYSTONE_API_VERSION`].
const KEYSTONE_API_UPDATED: &str = "2020-04-07T00:00:00Z";

#[utoipa::path(
    get,
    path = "/v3",
    tag = "keystone",
    operation_id = "keystone_version",
    summary = "The Identity API version document (unauthenticated)",
    responses((status = 200, description = "keystoneauth1's discovery document", body = VersionDocument)),
)]
async fn version(State(id): State<Identity>) -> Json<VersionDocument> {
    let base = id.config().public_url.trim_end_matches('/').to_string();
    Json(VersionDocument {
        version: Version {
            id: KEYSTONE_API_VERSION,
            status: "stable",
            updated: KEYSTONE_API_UPDATED,
            links: vec![Link {
                rel: "self",
                href: format!("{base}/v3/"),
            }],
            media_types: vec![MediaType {
                base: "application/json",
                media_type: "application/vnd.openstack.identity-v3+json",
            }],
        },
    })
}

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// The token body Keystone returns (and keystoneauth1 parses).
pub fn token_body(id: &Identity, t: &Issued) -> TokenResponse {
    let cfg = id.config();
    let base = cfg.public_url.trim_end_matches('/').to_string();
    let ep = |eid: &'static str, url: String| Endpoint {
        id: eid,
        interface: "public",
        region: cfg.region.clone(),
        region_id: cfg.region.clone(),
        url,
    };
    TokenResponse {
        token: Token {
            methods: vec!["password"],
            user: TokenUser {
                id: t.ctx.user_id.clone(),
                name: t.ctx.user_name.clone(),
                domain: Domain::DEFAULT,
                password_expires_at: None,
            },
            audit_ids: vec![t.audit_id.clone()],
            expires_at: iso(t.expires_at),
            issued_at: iso(t.issued_at),
            project: TokenProject {
                id: t.ctx.project_id.clone(),
                name: t.ctx.project_name.clone(),
                domain: Domain::DEFAULT,
            },
            is_domain: false,
            roles: t
                .ctx
                .roles
                .iter()
                .map(|r| Role {
                    id: r.clone(),
                    name: r.clone(),
                })
                .collect(),
            catalog: vec![
                CatalogEntry {
                    service_type: "network",
                    name: "neutron",
                    id: "network",
                    endpoints: vec![ep("network-public", base.clone())],
                },
                CatalogEntry {
                    service_type: "identity",
                    name: "keystone",
                    id: "identity",
                    endpoints: vec![ep("identity-public", format!("{base}/v3"))],
                },
            ],
        },
    }
}

fn domain_ok(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(d) => {
            let id_ok = d
                .get("id")
                .and_then(Value::as_str)
                .is_none_or(|i| i == DEFAULT_DOMAIN_ID);
            let name_ok = d
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(|n| n.eq_ignore_ascii_case(DEFAULT_DOMAIN_NAME));
            id_ok && name_ok
        }
    }
}

#[utoipa::path(
    post,
    path = "/v3/auth/tokens",
    tag = "keystone",
    operation_id = "keystone_token_create",
    summary = "Issue a project-scoped token for a password or an existing token",
    request_body(content = AuthRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued; the token is the `X-Subject-Token` header", body = TokenResponse,
         headers(("X-Subject-Token" = String, description = "The new token"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong credentials, unknown scope, or a locked account", body = ErrorBody),
        (status = 429, description = "Too many failed password checks from this address (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Every password-hashing thread is busy (`Retry-After`)", body = ErrorBody),
    ),
)]
async fn token_create(
    State(id): State<Identity>,
    peer: Peer,
    body: axum::body::Bytes,
) -> Result<Response, KeystoneError> {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Err(KeystoneError::Validation(
            "Expecting to find valid JSON in request body.",
        ));
    };
    let auth = &body["auth"];
    let methods: Vec<&str> = auth["identity"]["methods"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Who: a password, or an existing token (re-scoping).
    let user = if methods.contains(&"password") {
        let u = &auth["identity"]["password"]["user"];
        let Some(pw) = u["password"].as_str() else {
            return Err(KeystoneError::Validation(
                "Expecting to find password in user - the server could not comply with the request since it is either malformed or otherwise incorrect.",
            ));
        };
        if !domain_ok(u.get("domain")) {
            return Err(KeystoneError::Unauthorized);
        }
        let who = u["id"].as_str().or(u["name"].as_str()).unwrap_or_default();
        id.check_password(who, pw, peer).await?
    } else if methods.contains(&"token") {
        let Some(tok) = auth["identity"]["token"]["id"].as_str() else {
            return Err(KeystoneError::Validation("Expecting to find id in token."));
        };
        let (ctx, _) = id.validate(tok).await?;
        id.store
            .user_find(&ctx.user_id)
            .await
            .map_err(|_| KeystoneError::Unauthorized)?
    } else {
        return Err(KeystoneError::Unauthorized);
    };
    // Scope: a project by id, or by name in the default domain; without one,
    // the user's default project (vpnaas issues project-scoped tokens only).
    let scope = &auth["scope"]["project"];
    let project = if let Some(pid) = scope["id"].as_str() {
        pid.to_string()
    } else if let Some(name) = scope["name"].as_str() {
        if !domain_ok(scope.get("domain")) {
            return Err(KeystoneError::Unauthorized);
        }
        name.to_string()
    } else {
        id.store
            .default_project_of(&user.id)
            .await
            .map_err(KeystoneError::Internal)?
            .ok_or(KeystoneError::Unauthorized)?
    };
    let ctx = id.context_for(&user, &project).await?;
    let issued = id.issue(ctx).await.map_err(KeystoneError::Internal)?;
    let mut resp = (StatusCode::CREATED, Json(token_body(&id, &issued))).into_response();
    if let Ok(v) = HeaderValue::from_str(&issued.token) {
        resp.headers_mut().insert("X-Subject-Token", v);
    }
    Ok(resp)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// What is done with the subject token, and the Keystone policy that guards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// `GET /v3/auth/tokens`
    Validate,
    /// `HEAD /v3/auth/tokens`
    Check,
    /// `DELETE /v3/auth/tokens`
    Revoke,
}

impl TokenAction {
    /// The Keystone policy rule the action is checked under, named in a
    /// Forbidden answer.
    pub fn policy(self) -> &'static str {
        match self {
            TokenAction::Validate => "identity:validate_token",
            TokenAction::Check => "identity:check_token",
            TokenAction::Revoke => "identity:revoke_token",
        }
    }

    /// Keystone's defaults: `rule:service_admin_or_token_subject` for validate,
    /// `rule:admin_or_token_subject` for check and revoke.
    pub fn permits(self, caller: &AuthContext, subject_user_id: &str) -> bool {
        caller.is_admin()
            || caller.user_id == subject_user_id
            || (self == TokenAction::Validate && caller.roles.iter().any(|r| r == "service"))
    }
}

/// The subject token of an introspection request, once the caller is known and
/// allowed: 401 for a bad caller token, 404 for a missing or invalid subject
/// (whoever asks), 403 when the caller may not `action` someone else's token.
async fn subject(id: &Identity, headers: &HeaderMap, action: TokenAction) -> Result<Issued, KeystoneError> {
    let Some(caller) = header(headers, "X-Auth-Token") else {
        return Err(KeystoneError::Unauthorized);
    };
    let Ok((caller, _)) = id.validate(caller).await else {
        return Err(KeystoneError::Unauthorized);
    };
    let Some(sub) = header(headers, "X-Subject-Token") else {
        return Err(KeystoneError::TokenNotFound);
    };
    match id.validate(sub).await {
        Ok((ctx, _)) if !action.permits(&caller, &ctx.user_id) => {
            Err(KeystoneError::Forbidden(action.policy()))
        }
        Ok((ctx, exp)) => Ok(Issued {
            token: sub.to_string(),
            ctx,
            audit_id: String::new(),
            issued_at: exp - id.config().token_ttl.as_millis() as i64,
            expires_at: exp,
        }),
        Err(_) => Err(KeystoneError::TokenNotFound),
    }
}

#[utoipa::path(
    get,
    path = "/v3/auth/tokens",
    tag = "keystone",
    operation_id = "keystone_token_show",
    summary = "Validate the subject token (admin, service, or its own user)",
    params(("X-Subject-Token" = String, Header, description = "The token to validate")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The subject token", body = TokenResponse,
         headers(("X-Subject-Token" = String, description = "The subject token"))),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "Someone else's token, and the caller is neither admin nor service", body = ErrorBody),
        (status = 404, description = "Missing or invalid subject token", body = ErrorBody),
    ),
)]
async fn token_show(State(id): State<Identity>, headers: HeaderMap) -> Result<Response, KeystoneError> {
    let t = subject(&id, &headers, TokenAction::Validate).await?;
    let mut resp = Json(token_body(&id, &t)).into_response();
    if let Ok(v) = HeaderValue::from_str(&t.token) {
        resp.headers_mut().insert("X-Subject-Token", v);
    }
    Ok(resp)
}

#[utoipa::path(
    head,
    path = "/v3/auth/tokens",
    tag = "keystone",
    operation_id = "keystone_token_check",
    summary = "Check the subject token (admin or its own user)",
    params(("X-Subject-Token" = String, Header, description = "The token to check")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The subject token is valid"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`"),
        (status = 403, description = "Someone else's token, and the caller is not admin"),
        (status = 404, description = "Missing or invalid subject token"),
    ),
)]
async fn token_check(State(id): State<Identity>, headers: HeaderMap) -> Result<StatusCode, KeystoneError> {
    subject(&id, &headers, TokenAction::Check).await?;
    Ok(StatusCode::OK)
}

#[utoipa::path(
    delete,
    path = "/v3/auth/tokens",
    tag = "keystone",
    operation_id = "keystone_token_revoke",
    summary = "Revoke the subject token (admin or its own user)",
    params(("X-Subject-Token" = String, Header, description = "The token to revoke")),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "Someone else's token, and the caller is not admin", body = ErrorBody),
        (status = 404, description = "Missing or invalid subject token", body = ErrorBody),
    ),
)]
async fn token_revoke(State(id): State<Identity>, headers: HeaderMap) -> Result<StatusCode, KeystoneError> {
    let t = subject(&id, &headers, TokenAction::Revoke).await?;
    id.revoke(&t.token).await.map_err(KeystoneError::Internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Extractor: the authenticated caller of an API request (`X-Auth-Token`).
/// Rejects with Keystone's 401 body, as keystonemiddleware does in front of Neutron.
pub struct Caller(pub AuthContext);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Identity: FromRef<S>,
{
    type Rejection = KeystoneError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let id = Identity::from_ref(state);
        let Some(token) = header(&parts.headers, "X-Auth-Token") else {
            return Err(KeystoneError::Unauthorized);
        };
        let (ctx, _) = id.validate(token).await?;
        Ok(Caller(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_format_is_keystones() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000Z");
    }
}
