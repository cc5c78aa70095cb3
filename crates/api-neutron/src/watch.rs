//! `GET /v2.0/vpn/watch`: a Server-Sent Events stream of the realization
//! state and Neutron status of every IPsec site connection the caller may
//! see. Ours, not Neutron's (Neutron has no watch API; `watch` is no Neutron
//! collection, so the path clashes with none). Authenticated and scoped like
//! a Neutron list: an admin sees every project's connections, a member its
//! own project's (Neutron's `ADMIN_OR_PROJECT_MEMBER` for `get_*`); anyone
//! else is refused (403 `PolicyNotAuthorized`), where a list would answer
//! empty: a stream that can never say anything is a mistake worth naming.
//!
//! The stream (see `realize::watch` for when it looks and why it is
//! state-based): first one `state` event per visible connection (its state
//! now), then a `state` event whenever a connection's realization state or
//! status changes, and a `removed` event when one is deleted. Each `data:` is
//! one JSON object ([`WatchState`], [`WatchRemoved`]); each event's `id:` is
//! its position in this stream. A reconnecting client (an `EventSource`
//! sending `Last-Event-ID`) starts again from the current states, which is
//! all a state stream needs. Keep-alive comments every 15 s keep proxies and
//! the server's idle timeout from closing a quiet stream.
//!
//! `?timeout=N` ends the stream after N seconds (tools that want a bounded
//! look; the API fuzzer); it always ends when the caller's token expires, so
//! a stream never outlives its credentials' lifetime (a client reconnects
//! with a new token), and within [`RECHECK`] of the token being revoked, its
//! user disabled or its role lost (the stream re-validates the token).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use identity::Identity;
use identity::keystone::Caller;
use realize::Realizer;
use realize::watch::Change;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};

/// The path of the stream.
pub const PATH: &str = "/v2.0/vpn/watch";

/// How often a quiet stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A connection's state now (`event: state`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = neutron::WatchState)]
pub struct WatchState {
    /// The ipsec-site-connection's id (also its NSX session id).
    pub id: String,
    /// Always `ipsec_site_connection`.
    pub resource: &'static str,
    /// Its project.
    pub tenant_id: String,
    /// Its project (Neutron's newer name).
    pub project_id: String,
    /// Its Neutron status: `ACTIVE`, `DOWN`, `PENDING_CREATE`,
    /// `PENDING_UPDATE`, `PENDING_DELETE` or `ERROR`.
    pub status: &'static str,
    /// The realization of its latest change on its gateway's nodes, as
    /// `GET /api/v1/vpn/ipsec/sessions/{id}/state` says it: `in_sync`,
    /// `in_progress`, `failed` or `unknown`.
    pub realization_state: &'static str,
    /// The generation of its latest change (what `realization_state` is about).
    pub generation: i64,
}

/// A connection that is gone (`event: removed`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = neutron::WatchRemoved)]
pub struct WatchRemoved {
    /// The ipsec-site-connection's id.
    pub id: String,
    /// Always `ipsec_site_connection`.
    pub resource: &'static str,
}

fn event(change: Change, n: u64) -> Event {
    let (name, data) = match change {
        Change::State(s) => (
            "state",
            serde_json::to_string(&WatchState {
                resource: "ipsec_site_connection",
                tenant_id: s.project_id.clone(),
                project_id: s.project_id,
                id: s.id,
                status: s.status.as_str(),
                realization_state: s.realization.as_str(),
                generation: s.generation,
            }),
        ),
        Change::Removed { id } => (
            "removed",
            serde_json::to_string(&WatchRemoved {
                id,
                resource: "ipsec_site_connection",
            }),
        ),
    };
    // Plain structs of strings and numbers: serializing cannot fail.
    let data = data.unwrap_or_default();
    Event::default().event(name).id(n.to_string()).data(data)
}

/// How often a stream re-validates its caller's token: a revoked token, a
/// disabled user or a lost role ends the stream within this (plus the
/// validation cache's few seconds on another replica).
pub const RECHECK: Duration = Duration::from_secs(5);

/// What a stream was opened with, to check it still holds.
#[derive(Clone)]
struct Credentials {
    identity: Identity,
    token: String,
    scope: store::Scope,
}

impl Credentials {
    /// Whether the token still validates to a caller with the same scope.
    async fn hold(&self) -> bool {
        match self.identity.validate(&self.token).await {
            Ok((ctx, _)) if crate::read_scope(&ctx).as_ref() == Some(&self.scope) => true,
            Ok(_) => {
                tracing::info!("watch: the caller's roles changed; ending the stream");
                false
            }
            Err(e) => {
                tracing::info!(error = %e, "watch: the caller's token no longer validates; ending the stream");
                false
            }
        }
    }
}

/// The `timeout` parameter: whole seconds, at most a day.
fn timeout(raw: Option<&str>) -> ApiResult<Option<Duration>> {
    let mut out = None;
    for (k, v) in crate::query::pairs(raw) {
        if k == "timeout" {
            let secs: u64 = v.parse().ok().filter(|s| *s <= 86_400).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "timeout must be whole seconds from 0 to 86400, not '{v}'"
                ))
            })?;
            out = Some(Duration::from_secs(secs));
        }
    }
    Ok(out)
}

/// The handler of [`PATH`].
pub(crate) async fn watch(
    State(realizer): State<Realizer>,
    State(identity): State<Identity>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let limit = timeout(raw.as_deref())?;
    let scope =
        crate::read_scope(&ctx).ok_or_else(|| ApiError::Policy("get_ipsec_site_connection".into()))?;
    // The stream ends when the caller's token expires (`Caller` validated
    // it; this second look is answered from the validation cache).
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expires_in = match identity.validate(token).await {
        Ok((_, expires_ms)) => Duration::from_millis((expires_ms - store::now_ms()).max(0) as u64),
        Err(_) => Duration::ZERO,
    };
    let deadline = tokio::time::Instant::now() + limit.map_or(expires_in, |l| l.min(expires_in));
    let still = Credentials {
        identity,
        token: token.to_string(),
        scope: scope.clone(),
    };
    let first_check = tokio::time::Instant::now() + RECHECK;
    let stream = futures::stream::unfold(
        (realizer.watch(scope), 0u64, first_check),
        move |(mut w, n, mut check_at)| {
            let still = still.clone();
            async move {
                loop {
                    if tokio::time::Instant::now() >= check_at {
                        if !still.hold().await {
                            return None;
                        }
                        check_at = tokio::time::Instant::now() + RECHECK;
                    }
                    match tokio::time::timeout_at(check_at.min(deadline), w.next()).await {
                        Ok(Some(Ok(change))) => {
                            return Some((Ok::<_, Infallible>(event(change, n)), (w, n + 1, check_at)));
                        }
                        Ok(Some(Err(e))) => {
                            tracing::error!(error = %e, "watch: reading connection states failed; ending the stream");
                            return None;
                        }
                        Ok(None) => return None,
                        Err(_) if tokio::time::Instant::now() >= deadline => return None,
                        // Time to look at the credentials again.
                        Err(_) => {}
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_whole_seconds() {
        assert_eq!(timeout(None).unwrap(), None);
        assert_eq!(timeout(Some("timeout=3")).unwrap(), Some(Duration::from_secs(3)));
        assert_eq!(timeout(Some("other=x")).unwrap(), None);
        for bad in ["timeout=-1", "timeout=1.5", "timeout=", "timeout=86401"] {
            assert!(timeout(Some(bad)).is_err(), "{bad}");
        }
    }
}
