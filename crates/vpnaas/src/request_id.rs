//! The request-id middleware: the outermost layer of the composed server after
//! tracing, so every answer — a handler's, an extractor's rejection or the
//! edge's refusal — carries the id (see [`identity::request`] for the id's forms
//! and why writes log it).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use identity::request::RequestId;

/// Assigns the request its id (an extension the API handlers read) and stamps
/// the response headers.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = RequestId::new();
    let write = RequestId::is_write(req.method());
    req.extensions_mut().insert(id);
    let mut resp = next.run(req).await;
    id.stamp(resp.headers_mut(), write);
    resp
}
