//! Request ids. Every request gets a UUID; writes log it with their generation
//! (the store's request log), and responses carry it as `x-openstack-request-id:
//! req-<uuid>` (Neutron's form) and, for writes, `x-nsx-requestid: <uuid>` (NSX's),
//! which is what realization-state queries take as `request_id`.
//!
//! The type and its header forms live here, below the API crates, so their
//! handlers can read the id; the middleware that assigns it to every request is
//! part of the server's composition (`vpnaas::request_id`).

use axum::http::{HeaderMap, HeaderValue, Method};

/// The id of the current request, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub uuid::Uuid);

impl RequestId {
    /// A fresh, random id.
    pub fn new() -> RequestId {
        RequestId(uuid::Uuid::new_v4())
    }

    /// Whether a request with `method` is a write, whose response names its id
    /// the NSX way too.
    pub fn is_write(method: &Method) -> bool {
        !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
    }

    /// Puts the id into a response's headers: Neutron's form always, NSX's for
    /// writes.
    pub fn stamp(self, headers: &mut HeaderMap, write: bool) {
        let id = self.0;
        if let Ok(v) = HeaderValue::from_str(&format!("req-{id}")) {
            headers.insert("x-openstack-request-id", v);
        }
        if write && let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            headers.insert("x-nsx-requestid", v);
        }
    }
}

impl Default for RequestId {
    fn default() -> RequestId {
        RequestId::new()
    }
}
