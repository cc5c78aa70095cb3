//! The Keystone API's one error type and its envelope.
//!
//! Every refusal the `/v3` handlers and the [`Caller`](crate::keystone::Caller)
//! extractor make is a [`KeystoneError`]; its `IntoResponse` is the only place
//! Keystone's `{"error": {"code", "title", "message"}}` body is built (besides
//! [`http_error`], the same envelope for the server's edge, which refuses
//! requests before any handler runs). The messages are Keystone's own words,
//! because keystoneauth1 and the openstack CLI show them to the user as they are.

use crate::AuthError;
use crate::wire::{ErrorBody, ErrorDetail};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why the Keystone API refused a request. `Display` is the message clients see.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    /// Missing or invalid credentials, in keystonemiddleware's words.
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    /// Keystone's `AccountLocked`.
    #[error("The account is locked for user: {user_id}.")]
    AccountLocked {
        /// The locked user's id.
        user_id: String,
    },
    /// Too many failures from the caller's address (`Retry-After`, seconds).
    #[error("Too many failed authentication attempts from this address. Retry later.")]
    Throttled {
        /// Seconds until the address's window ends.
        retry_after: u64,
    },
    /// Every password-hashing thread stayed busy (`Retry-After`, seconds).
    #[error("The server is too busy checking passwords to check this one now. Retry later.")]
    Busy {
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// Keystone's `ValidationError`: a malformed request body.
    #[error("{0}")]
    Validation(&'static str),
    /// Keystone's `ForbiddenAction`, naming the policy rule that refused.
    #[error("You are not authorized to perform the requested action: {0}.")]
    Forbidden(&'static str),
    /// The subject token of an introspection request is missing or invalid.
    #[error("Could not find token.")]
    TokenNotFound,
    /// Keystone's `SchemaValidationError`: a body or query that breaks the
    /// schema, in Keystone's words (`Invalid input for field/attribute ...`).
    #[error("{0}")]
    Invalid(String),
    /// Keystone's `ProjectNotFound`, `UserNotFound`, `RoleNotFound`,
    /// `DomainNotFound`.
    #[error("Could not find {kind}: {id}.")]
    NotFound {
        /// `project`, `user`, `role` or `domain`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Keystone's `RoleAssignmentNotFound`.
    #[error(
        "Could not find role assignment with role: {role}, user or group: {user}, project, domain, or system: {project}."
    )]
    GrantNotFound {
        /// The role id.
        role: String,
        /// The user id.
        user: String,
        /// The project id.
        project: String,
    },
    /// Keystone's `ImpliedRoleNotFound`.
    #[error("{prior} does not imply {implied}.")]
    ImpliedRoleNotFound {
        /// The prior role id.
        prior: String,
        /// The implied role id.
        implied: String,
    },
    /// Keystone's `Conflict`: a unique name is taken.
    #[error("Conflict occurred attempting to store {kind} - {details}.")]
    Conflict {
        /// `project` or `user`.
        kind: &'static str,
        /// Keystone's detail for the duplicate.
        details: String,
    },
    /// A project that still owns objects of the network APIs can't be
    /// deleted (vpnaas's rule: Keystone would orphan them).
    #[error(
        "Cannot delete project {id}: it still owns {objects}. Delete them first (or disable the project instead)."
    )]
    ProjectInUse {
        /// The project id.
        id: String,
        /// What it owns, counted (`2 gateway, 1 subnet`).
        objects: String,
    },
    /// A change that would lock the operator out (Keystone's
    /// `ForbiddenNotSecurity`, 403).
    #[error("{0}")]
    Lockout(Lockout),
    /// `POST /v3/users/{id}/password` with a wrong original password (or an
    /// unknown or disabled user), in Keystone's words.
    #[error("Error when changing user password: Invalid user / password")]
    PasswordChange,
    /// A storage failure; the source is logged, never sent.
    #[error("An unexpected error prevented the server from fulfilling your request.")]
    Internal(#[source] model::Error),
}

impl KeystoneError {
    fn status(&self) -> StatusCode {
        match self {
            KeystoneError::Unauthorized | KeystoneError::AccountLocked { .. } => StatusCode::UNAUTHORIZED,
            KeystoneError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            KeystoneError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            KeystoneError::Validation(_) => StatusCode::BAD_REQUEST,
            KeystoneError::Forbidden(_) => StatusCode::FORBIDDEN,
            KeystoneError::TokenNotFound
            | KeystoneError::NotFound { .. }
            | KeystoneError::GrantNotFound { .. }
            | KeystoneError::ImpliedRoleNotFound { .. } => StatusCode::NOT_FOUND,
            KeystoneError::Invalid(_) => StatusCode::BAD_REQUEST,
            KeystoneError::Conflict { .. } | KeystoneError::ProjectInUse { .. } => StatusCode::CONFLICT,
            KeystoneError::Lockout(_) => StatusCode::FORBIDDEN,
            KeystoneError::PasswordChange => StatusCode::UNAUTHORIZED,
            KeystoneError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a refused lock-out would have done (the bootstrap admin is the
/// server's `--admin-user` in its `--admin-project`, made at first start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lockout {
    /// Deleting the bootstrap admin user.
    #[error(
        "Cannot delete user {0}: it is the bootstrap admin (the server's --admin-user); without it the operator could be locked out."
    )]
    DeleteAdminUser(String),
    /// Disabling the bootstrap admin user.
    #[error(
        "Cannot disable user {0}: it is the bootstrap admin (the server's --admin-user); without it the operator could be locked out."
    )]
    DisableAdminUser(String),
    /// Deleting the bootstrap admin project.
    #[error(
        "Cannot delete project {0}: it is the bootstrap admin project (the server's --admin-project); without it the operator could be locked out."
    )]
    DeleteAdminProject(String),
    /// Disabling the bootstrap admin project.
    #[error(
        "Cannot disable project {0}: it is the bootstrap admin project (the server's --admin-project); without it the operator could be locked out."
    )]
    DisableAdminProject(String),
    /// Removing the bootstrap admin's own grant.
    #[error(
        "Cannot remove role {role} from the bootstrap admin user on the admin project: the operator would be locked out."
    )]
    RevokeAdminGrant {
        /// The role (`admin`).
        role: String,
    },
    /// An admin removing `admin` from itself on the project of its token.
    #[error(
        "Cannot remove your own admin role on the project your token is scoped to: you would lock yourself out. Ask another admin to do it."
    )]
    RevokeOwnAdmin,
}

impl KeystoneError {
    /// A missing object of the identity API, in Keystone's words.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> KeystoneError {
        KeystoneError::NotFound { kind, id: id.into() }
    }
}

/// The store's and the model's errors as Keystone answers them. Refusals whose
/// wording depends on the operation (the bootstrap admin's protection, a
/// project in use) are worded by the operation (`crate::admin`) with the
/// variants above; this is what any other error becomes.
impl From<model::Error> for KeystoneError {
    fn from(e: model::Error) -> KeystoneError {
        use model::{Error, Kind};
        let kind = |k: Kind| match k {
            Kind::Project => Some("project"),
            Kind::User => Some("user"),
            _ => None,
        };
        match e {
            Error::Unauthenticated => KeystoneError::Unauthorized,
            Error::NotFound { kind: k, id } if kind(k).is_some() => KeystoneError::NotFound {
                kind: kind(k).unwrap_or_default(),
                id,
            },
            Error::AlreadyExists { kind: k, key, value } if kind(k).is_some() => KeystoneError::Conflict {
                kind: kind(k).unwrap_or_default(),
                details: format!("Duplicate entry found with {key} {value} at domain ID default"),
            },
            e => KeystoneError::Internal(e),
        }
    }
}

impl From<AuthError> for KeystoneError {
    fn from(e: AuthError) -> KeystoneError {
        let retry_after = e.retry_after_secs().unwrap_or(1);
        match e {
            AuthError::Unauthenticated => KeystoneError::Unauthorized,
            AuthError::Locked { user_id } => KeystoneError::AccountLocked { user_id },
            AuthError::Throttled { .. } => KeystoneError::Throttled { retry_after },
            AuthError::Busy { .. } => KeystoneError::Busy { retry_after },
            AuthError::Other(e) => KeystoneError::Internal(e),
        }
    }
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        if let KeystoneError::Internal(e) = &self {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "identity failure");
        }
        let mut resp = http_error(self.status(), &self.to_string());
        if let KeystoneError::Throttled { retry_after } | KeystoneError::Busy { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Keystone's error envelope for `status` with `message`; a 401 also carries
/// Keystone's `WWW-Authenticate` challenge. The server's edge uses this for
/// refusals under `/v3` made before routing (limits, timeouts, bad requests).
pub fn http_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let mut resp = (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: status.as_u16(),
                title: title.to_string(),
                message: message.to_string(),
            },
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Keystone uri=\"/v3\""),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn parts(e: KeystoneError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let r = e.into_response();
        let (p, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (p.status, p.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn envelopes_are_keystones() {
        let (s, h, v) = parts(KeystoneError::Unauthorized).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h["www-authenticate"], "Keystone uri=\"/v3\"");
        assert_eq!(
            v,
            json!({"error": {"code": 401, "title": "Unauthorized",
                             "message": "The request you have made requires authentication."}})
        );

        let (s, h, v) = parts(KeystoneError::Throttled { retry_after: 7 }).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h["retry-after"], "7");
        assert!(!h.contains_key("www-authenticate"));
        assert_eq!(v["error"]["title"], "Too Many Requests");

        let (s, _, v) = parts(KeystoneError::Forbidden("identity:check_token")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(
            v["error"]["message"],
            "You are not authorized to perform the requested action: identity:check_token."
        );

        let (s, _, v) = parts(KeystoneError::Internal(model::Error::Internal {
            context: "secret detail".into(),
            source: None,
        }))
        .await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!v.to_string().contains("secret"));
    }

    #[test]
    fn auth_failures_keep_their_retry_after() {
        let e = KeystoneError::from(AuthError::Busy {
            retry_after: std::time::Duration::from_millis(1500),
        });
        assert!(matches!(e, KeystoneError::Busy { retry_after: 2 }));
        let e = KeystoneError::from(AuthError::Locked { user_id: "u1".into() });
        assert_eq!(e.to_string(), "The account is locked for user: u1.");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }
}
