//! Request ids. Every request gets a UUID; writes log it with their generation
//! (the store's request log), and responses carry it as `x-openstack-request-id:
//! req-<uuid>` (Neutron's form) and, for writes, `x-nsx-requestid: <uuid>` (NSX's),
//! which is what realization-state queries take as `request_id`.

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

/// The id of the current request, set by [`assign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub uuid::Uuid);

/// Middleware: assigns the id and stamps the response headers.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4();
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    req.extensions_mut().insert(RequestId(id));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("req-{id}")) {
        h.insert("x-openstack-request-id", v);
    }
    if write && let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        h.insert("x-nsx-requestid", v);
    }
    resp
}
