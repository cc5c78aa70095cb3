//! Who is calling the NSX API, the way vmware-nsxlib authenticates: HTTP basic
//! auth on every request, plus the session NSX Manager hands out at
//! `POST /api/session/create` (a `JSESSIONID` cookie and an `X-XSRF-TOKEN`
//! header to echo). A Keystone `X-Auth-Token` works too. Every NSX call is
//! admin-scoped: the caller must hold the `admin` role.
//!
//! Basic auth is a password check per request, so it goes through identity's
//! guards ([`identity::guard`]): a verified password is remembered for a short
//! time (no Argon2 per call), a locked account is refused like a wrong password
//! (NSX's own 403 says "...or the account specified has been locked"), a
//! throttled address gets 429 and a saturated hashing pool 503, both with
//! `Retry-After`, which vmware-nsxlib retries as ServerBusy.
//!
//! Sessions live in memory, in one process-wide table (so every router that
//! authenticates NSX callers sees them, however the app is composed; a server
//! restart logs everyone out, and nsxlib then falls back to basic auth, which it
//! always sends); they expire after [`SESSION_IDLE`] without use, and at most
//! [`MAX_SESSIONS`] are kept.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use app::App;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use identity::{AuthContext, AuthError, Identity, Peer};
use model::Error;
use rand::RngCore;

use crate::error::NsxError;

/// How long an unused session stays valid (NSX Manager's default).
pub const SESSION_IDLE: Duration = Duration::from_secs(1800);
/// Most sessions kept; beyond it, expired ones are dropped, then the oldest.
pub const MAX_SESSIONS: usize = 10_000;

struct Session {
    ctx: AuthContext,
    xsrf: String,
    last_used: Instant,
}

/// The in-memory session table.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

/// The process-wide session table.
pub fn sessions() -> &'static Sessions {
    static TABLE: LazyLock<Sessions> = LazyLock::new(Sessions::default);
    &TABLE
}

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Sessions {
    /// Opens a session for `ctx`; returns (session id, XSRF token).
    fn open(&self, ctx: AuthContext) -> (String, String) {
        let id = random_token();
        let xsrf = random_token();
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= MAX_SESSIONS {
                m.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
                if m.len() >= MAX_SESSIONS
                    && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
            m.insert(
                id.clone(),
                Session {
                    ctx,
                    xsrf: xsrf.clone(),
                    last_used: Instant::now(),
                },
            );
        }
        (id, xsrf)
    }

    /// The live session `id` (refreshing its idle timer): its context and XSRF token.
    fn lookup(&self, id: &str) -> Option<(AuthContext, String)> {
        let mut m = self.0.lock().ok()?;
        let live = m.get(id).is_some_and(|s| s.last_used.elapsed() < SESSION_IDLE);
        if !live {
            m.remove(id);
            return None;
        }
        let s = m.get_mut(id)?;
        s.last_used = Instant::now();
        Some((s.ctx.clone(), s.xsrf.clone()))
    }

    fn close(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn admin(ctx: AuthContext) -> Result<AuthContext, NsxError> {
    if ctx.is_admin() {
        Ok(ctx)
    } else {
        Err(NsxError::NotAdmin)
    }
}

/// Extractor: the authenticated admin caller of an NSX request. It also makes
/// sure the system-owned default profiles exist, so every NSX view has them.
pub struct NsxCaller(pub AuthContext);

impl<S> FromRequestParts<S> for NsxCaller
where
    S: Send + Sync,
    Identity: FromRef<S>,
    App: FromRef<S>,
{
    type Rejection = NsxError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = authenticate(parts, &Identity::from_ref(state)).await?;
        let ctx = admin(ctx)?;
        App::from_ref(state)
            .ensure_system_defaults(&ctx.project_id)
            .await?;
        Ok(NsxCaller(ctx))
    }
}

/// A refused password check in NSX's envelope.
fn auth_error(e: AuthError) -> NsxError {
    let retry_after = e.retry_after_secs().unwrap_or(1);
    match e {
        AuthError::Unauthenticated | AuthError::Locked { .. } => NsxError::BadCredentials,
        AuthError::Throttled { .. } => NsxError::Throttled { retry_after },
        AuthError::Busy { .. } => NsxError::Busy { retry_after },
        AuthError::Other(e) => e.into(),
    }
}

async fn authenticate(parts: &Parts, id: &Identity) -> Result<AuthContext, NsxError> {
    let creds = basic(&parts.headers);
    if let Some(sid) = cookie(&parts.headers, "JSESSIONID")
        && let Some((ctx, xsrf)) = sessions().lookup(sid)
    {
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let echoed = parts
            .headers
            .get("x-xsrf-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == xsrf);
        if safe || echoed {
            return Ok(ctx);
        }
        if creds.is_none() {
            return Err(NsxError::BadXsrf);
        }
    }
    if let Some((user, password)) = creds {
        return id
            .basic(&user, &password, None, Peer::from_extensions(&parts.extensions))
            .await
            .map_err(auth_error);
    }
    if let Some(token) = parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return match id.validate(token).await {
            Ok((ctx, _)) => Ok(ctx),
            Err(Error::Unauthenticated) => Err(NsxError::BadCredentials),
            Err(e) => Err(e.into()),
        };
    }
    Err(NsxError::BadCredentials)
}

/// Splits a form body into (name, value) pairs twice: decoded as
/// `application/x-www-form-urlencoded`, and raw (vmware-nsxlib does not encode
/// the password, so a `+` or `%` in it must also be tried verbatim).
fn form_values(body: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((_, v)) = url::form_urlencoded::parse(body).find(|(k, _)| k == name) {
        out.push(v.into_owned());
    }
    if let Ok(text) = std::str::from_utf8(body)
        && let Some(v) = text
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
        && !out.contains(&v)
    {
        out.push(v);
    }
    out
}

/// `POST /api/session/create` (form `j_username`, `j_password`): 200 with the
/// session cookie and the XSRF token to echo on writes.
pub async fn session_create(
    axum::extract::State(id): axum::extract::State<Identity>,
    peer: Peer,
    body: axum::body::Bytes,
) -> Result<Response, NsxError> {
    let users = form_values(&body, "j_username");
    let passwords = form_values(&body, "j_password");
    let mut ctx = None;
    'outer: for u in &users {
        for p in &passwords {
            match id.basic(u, p, None, peer).await {
                Ok(c) => {
                    ctx = Some(c);
                    break 'outer;
                }
                Err(AuthError::Unauthenticated) => {}
                Err(e) => return Err(auth_error(e)),
            }
        }
    }
    let ctx = ctx.ok_or(NsxError::BadCredentials)?;
    let (sid, xsrf) = sessions().open(ctx);
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("JSESSIONID={sid}; Path=/; HttpOnly")) {
        h.insert(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&xsrf) {
        h.insert("x-xsrf-token", v);
    }
    Ok(resp)
}

/// `POST /api/session/destroy`: ends the caller's session (if any).
pub async fn session_destroy(headers: HeaderMap) -> StatusCode {
    if let Some(sid) = cookie(&headers, "JSESSIONID") {
        sessions().close(sid);
    }
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            user_name: "admin".into(),
            project_id: "p".into(),
            project_name: "admin".into(),
            roles: vec!["admin".into()],
        }
    }

    #[tokio::test]
    async fn refused_password_checks_in_nsx_envelope() {
        let cases = [
            (AuthError::Unauthenticated, StatusCode::FORBIDDEN, 403, None),
            (
                AuthError::Locked { user_id: "u".into() },
                StatusCode::FORBIDDEN,
                403,
                None,
            ),
            (
                AuthError::Throttled {
                    retry_after: Duration::from_millis(2500),
                },
                StatusCode::TOO_MANY_REQUESTS,
                110_005,
                Some("3"),
            ),
            (
                AuthError::Busy {
                    retry_after: Duration::from_secs(2),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                110_006,
                Some("2"),
            ),
        ];
        for (e, status, code, retry) in cases {
            let resp = auth_error(e).into_response();
            assert_eq!(resp.status(), status);
            assert_eq!(
                resp.headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                retry
            );
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["error_code"], code);
            assert_eq!(v["module_name"], "common-services");
        }
    }

    #[test]
    fn sessions_open_lookup_close() {
        let s = Sessions::default();
        let (id, xsrf) = s.open(ctx());
        let (c, x) = s.lookup(&id).unwrap();
        assert_eq!((c.user_name.as_str(), x.as_str()), ("admin", xsrf.as_str()));
        assert!(s.lookup("nope").is_none());
        s.close(&id);
        assert!(s.lookup(&id).is_none());
    }

    #[test]
    fn parses_cookies_basic_and_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; JSESSIONID=abc;"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("admin:p:w"))).unwrap(),
        );
        assert_eq!(cookie(&h, "JSESSIONID"), Some("abc"));
        assert_eq!(basic(&h), Some(("admin".into(), "p:w".into())));
        assert_eq!(
            form_values(b"j_username=admin&j_password=a+b", "j_password"),
            vec!["a b", "a+b"]
        );
        assert_eq!(
            form_values(b"j_username=admin", "j_password"),
            Vec::<String>::new()
        );
    }
}
