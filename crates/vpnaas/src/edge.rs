//! The HTTP edge: what every request goes through before and after the API that
//! owns its path, so that limits, timeouts and HTTP-level failures answer in
//! that API's own error envelope instead of axum's or hyper's text/plain or
//! empty bodies.
//!
//! Why it exists:
//! - **Which envelope.** A path belongs to exactly one API ([`Api::of`]):
//!   `/v3` Keystone, `/api/` NSX, `/internal/` the node API, everything else
//!   Neutron. Any error response that is not already JSON (a 405 from routing,
//!   a text/plain 400 from an extractor rejection, ...) is re-rendered by that
//!   API's `http_error` with the same status and headers (`Allow`, ...).
//! - **Bodies are read here, whole, with a per-API limit and a deadline.** A
//!   handler that refuses a request before looking at its body (authentication
//!   does) then leaves no unread bytes on a keep-alive connection, so the
//!   client's next request on it is not lost. A body over the limit is refused
//!   with 413 without reading it, and `Connection: close`, since the rest of it
//!   is still on the wire. A client that stops sending mid-body gets 408.
//! - **A deadline per request.** A handler that does not answer within the
//!   request timeout is dropped (a write transaction rolls back with it) and the
//!   client gets 503; node long-polls get their longest wait plus a margin.
//! - **URL and header limits.** hyper is configured with generous outer limits
//!   (see `listener`); the limits operators rely on are checked here, where the
//!   answer can be the API's 414/431.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The API a path belongs to; decides the error envelope and the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Keystone v3 subset, under `/v3`.
    Keystone,
    /// Neutron VPNaaS: everything not under another API's prefix.
    Neutron,
    /// The NSX Manager API, under `/api`.
    Nsx,
    /// The gateway nodes' API, under `/internal`.
    Node,
}

impl Api {
    /// The API `path` belongs to (a prefix matches whole path segments only).
    pub fn of(path: &str) -> Api {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/v3") {
            Api::Keystone
        } else if under("/api") {
            Api::Nsx
        } else if under("/internal") {
            Api::Node
        } else {
            Api::Neutron
        }
    }

    /// This API's error response for an HTTP-level failure.
    pub fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Api::Keystone => identity::error::http_error(status, message),
            Api::Neutron => api_neutron::error::http_error(status, message),
            Api::Nsx => api_nsx::error::http_error(status, message),
            Api::Node => realize::http::http_error(status, message),
        }
    }
}

/// Limits and timeouts applied at the edge. Defaults are what an operator would
/// expect of a control plane API on the public side of a gateway cluster.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time a handler may take (node long-polls: their wait plus this).
    pub request_timeout: Duration,
    /// Time a client may take to send a request body.
    pub body_timeout: Duration,
    /// Longest request target (path + query), bytes.
    pub max_uri: usize,
    /// Most request header fields.
    pub max_headers: usize,
    /// Largest total size of the request header fields, bytes.
    pub max_header_bytes: usize,
    /// Largest body of a Keystone request (Keystone's `max_request_body_size`).
    pub keystone_body: usize,
    /// Largest body of a Neutron request (Neutron's `max_request_body_size`).
    pub neutron_body: usize,
    /// Largest body of an NSX request.
    pub nsx_body: usize,
    /// Largest node report (thousands of tunnels with their SA state).
    pub node_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            max_uri: 8 * 1024,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            keystone_body: 112 * 1024,
            neutron_body: api_neutron::MAX_BODY,
            nsx_body: api_nsx::MAX_BODY,
            node_body: 8 << 20,
        }
    }
}

impl Limits {
    fn body_limit(&self, api: Api) -> usize {
        match api {
            Api::Keystone => self.keystone_body,
            Api::Neutron => self.neutron_body,
            Api::Nsx => self.nsx_body,
            Api::Node => self.node_body,
        }
    }

    fn handler_timeout(&self, api: Api) -> Duration {
        match api {
            // A config long-poll legitimately waits up to MAX_WAIT.
            Api::Node => self.request_timeout + realize::http::MAX_WAIT,
            _ => self.request_timeout,
        }
    }
}

fn close(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Largest oversized body read and discarded before answering 413.
const DRAIN_MAX: u64 = 16 << 20;

/// Reads a body to its end, keeping nothing; false if the client broke off.
async fn drain(mut body: Body) -> bool {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return false;
        }
    }
    true
}

/// The middleware: limits, whole-body read, deadline, envelope.
pub async fn edge(State(limits): State<std::sync::Arc<Limits>>, req: Request, next: Next) -> Response {
    let api = Api::of(req.uri().path());
    let method = req.method().clone();
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > limits.max_uri {
        return close(api.error(
            StatusCode::URI_TOO_LONG,
            &format!("The request URL is longer than {} bytes.", limits.max_uri),
        ));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if req.headers().len() > limits.max_headers || header_bytes > limits.max_header_bytes {
        return close(api.error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "The request has more than {} header fields or more than {} bytes of them.",
                limits.max_headers, limits.max_header_bytes
            ),
        ));
    }
    let limit = limits.body_limit(api);
    let too_large = || {
        api.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The request body is larger than {limit} bytes."),
        )
    };
    if let Some(n) = content_length(req.headers())
        && n > limit as u64
    {
        // A client waiting for `100 Continue` has not sent the body: refuse it
        // at once instead of inviting an upload that will be thrown away.
        let expects = req
            .headers()
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects {
            return close(too_large());
        }
        // Read and discard a moderately oversized body (bounded in bytes and
        // time) so the client, still sending, gets to read the 413 instead of
        // a reset; beyond that, answer and close.
        let drained = n <= DRAIN_MAX
            && tokio::time::timeout(limits.body_timeout, drain(req.into_body()))
                .await
                .is_ok_and(|ok| ok);
        let resp = too_large();
        return if drained { resp } else { close(resp) };
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(limits.body_timeout, Limited::new(body, limit).collect()).await;
    let bytes: Bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return close(too_large()),
        Ok(Err(_)) => {
            return close(api.error(StatusCode::BAD_REQUEST, "The request body could not be read."));
        }
        Err(_) => {
            return close(api.error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "The request body was not received within {} seconds.",
                    limits.body_timeout.as_secs()
                ),
            ));
        }
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    let deadline = limits.handler_timeout(api);
    let resp = match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(?api, timeout_s = deadline.as_secs(), "request timed out");
            let mut resp = api.error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "The request was not completed within {} seconds; it was not applied. Retry later.",
                    deadline.as_secs()
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
    };
    in_envelope(api, &method, resp).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Re-renders an error response that is not in the API's envelope (not JSON):
/// same status, same headers, the original text (bounded) as the message.
async fn in_envelope(api: Api, method: &axum::http::Method, resp: Response) -> Response {
    let status = resp.status();
    if status.as_u16() < 400 || is_json(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match Limited::new(body, 4096).collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds `Allow` after this layer; the client gets it all the same.
        format!("The method {method} is not allowed for this resource.")
    } else {
        status
            .canonical_reason()
            .unwrap_or("The request failed.")
            .to_string()
    };
    let mut out = api.error(status, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Fallback for paths no API routes: a 404 in the envelope of the API the
/// path would belong to.
pub async fn not_found(req: Request) -> Response {
    let api = Api::of(req.uri().path());
    match api {
        Api::Nsx => api_nsx::error::NsxError::NoRoute(req.uri().path().to_string()).into_response(),
        _ => api.error(StatusCode::NOT_FOUND, "The resource could not be found."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_api() {
        assert_eq!(Api::of("/v3"), Api::Keystone);
        assert_eq!(Api::of("/v3/auth/tokens"), Api::Keystone);
        assert_eq!(Api::of("/v30"), Api::Neutron);
        assert_eq!(Api::of("/api/v1/vpn/ipsec/sessions"), Api::Nsx);
        assert_eq!(Api::of("/api/session/create"), Api::Nsx);
        assert_eq!(Api::of("/internal/v1/nodes/x/config"), Api::Node);
        assert_eq!(Api::of("/v2.0/vpn/ikepolicies"), Api::Neutron);
        assert_eq!(Api::of("/"), Api::Neutron);
    }
}
