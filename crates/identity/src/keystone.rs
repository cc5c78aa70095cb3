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
use serde_json::{Value, json};

use crate::error::KeystoneError;
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
}

/// The Identity API version `GET /v3` reports, with its `updated` date:
/// exactly what every Keystone since Ussuri says. keystoneauth1's discovery
/// (behind the openstack CLI and openstacksdk) needs a `stable` v3 document
/// here; reporting a real Keystone's version keeps any client that compares or
/// logs it on known ground.
const KEYSTONE_API_VERSION: &str = "v3.14";
/// The `updated` date Keystone reports with [`KEYSTONE_API_VERSION`].
const KEYSTONE_API_UPDATED: &str = "2020-04-07T00:00:00Z";

async fn version(State(id): State<Identity>) -> Json<Value> {
    let base = id.config().public_url.trim_end_matches('/').to_string();
    Json(json!({"version": {
        "id": KEYSTONE_API_VERSION,
        "status": "stable",
        "updated": KEYSTONE_API_UPDATED,
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
    }}))
}

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// The token body Keystone returns (and keystoneauth1 parses).
pub fn token_body(id: &Identity, t: &Issued) -> Value {
    let cfg = id.config();
    let base = cfg.public_url.trim_end_matches('/').to_string();
    let ep = |eid: &str, url: String| json!({"id": eid, "interface": "public", "region": cfg.region, "region_id": cfg.region, "url": url});
    json!({"token": {
        "methods": ["password"],
        "user": {"id": t.ctx.user_id, "name": t.ctx.user_name,
                 "domain": {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME},
                 "password_expires_at": null},
        "audit_ids": [t.audit_id],
        "expires_at": iso(t.expires_at),
        "issued_at": iso(t.issued_at),
        "project": {"id": t.ctx.project_id, "name": t.ctx.project_name,
                    "domain": {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}},
        "is_domain": false,
        "roles": t.ctx.roles.iter().map(|r| json!({"id": r, "name": r})).collect::<Vec<_>>(),
        "catalog": [
            {"type": "network", "name": "neutron", "id": "network",
             "endpoints": [ep("network-public", base.clone())]},
            {"type": "identity", "name": "keystone", "id": "identity",
             "endpoints": [ep("identity-public", format!("{base}/v3"))]}
        ]
    }})
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

async fn token_show(State(id): State<Identity>, headers: HeaderMap) -> Result<Response, KeystoneError> {
    let t = subject(&id, &headers, TokenAction::Validate).await?;
    let mut resp = Json(token_body(&id, &t)).into_response();
    if let Ok(v) = HeaderValue::from_str(&t.token) {
        resp.headers_mut().insert("X-Subject-Token", v);
    }
    Ok(resp)
}

async fn token_check(State(id): State<Identity>, headers: HeaderMap) -> Result<StatusCode, KeystoneError> {
    subject(&id, &headers, TokenAction::Check).await?;
    Ok(StatusCode::OK)
}

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
