//! What the store needs to know about each kind of object: its kind tag, the ids
//! it references, and its secret, if it has one; and how a body becomes the
//! JSON document kept in the `body` column ([`encode`], [`decode`]).
//!
//! That document is the serde JSON of the model type, so a renamed or retyped
//! field would leave existing rows unreadable: `tests/bodies.rs` pins one
//! document per kind in a golden file (and reads the golden file back).

use model::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The document stored for `body` (its secret, if any, is not in it).
pub fn encode<T: Body>(body: &T) -> Result<String> {
    serde_json::to_string(body).map_err(|e| Error::internal("encode body", e))
}

/// A body from its stored document (the secret is set afterwards).
pub fn decode<T: Body>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| Error::internal("decode body", e))
}

pub trait Body: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    const KIND: Kind;
    /// Ids of the objects this one uses (kept in `resource_refs`).
    fn refs(&self) -> Vec<String> {
        Vec::new()
    }
    fn secret(&self) -> Option<&str> {
        None
    }
    fn set_secret(&mut self, _secret: String) {}
}

impl Body for IkePolicy {
    const KIND: Kind = Kind::IkePolicy;
}

impl Body for IpsecPolicy {
    const KIND: Kind = Kind::IpsecPolicy;
}

impl Body for Gateway {
    const KIND: Kind = Kind::Gateway;
}

impl Body for Subnet {
    const KIND: Kind = Kind::Subnet;
    fn refs(&self) -> Vec<String> {
        vec![self.gateway_id.clone()]
    }
}

impl Body for VpnService {
    const KIND: Kind = Kind::VpnService;
    fn refs(&self) -> Vec<String> {
        let mut r = vec![self.router_id.clone()];
        r.extend(self.subnet_id.clone());
        r
    }
}

impl Body for EndpointGroup {
    const KIND: Kind = Kind::EndpointGroup;
    fn refs(&self) -> Vec<String> {
        if self.endpoint_type == EndpointType::Subnet {
            self.endpoints.clone()
        } else {
            Vec::new()
        }
    }
}

impl Body for Connection {
    const KIND: Kind = Kind::Connection;
    fn refs(&self) -> Vec<String> {
        let mut r = vec![
            self.vpnservice_id.clone(),
            self.ikepolicy_id.clone(),
            self.ipsecpolicy_id.clone(),
        ];
        r.extend(self.local_ep_group_id.clone());
        r.extend(self.peer_ep_group_id.clone());
        r.extend(self.local_endpoint_id.clone());
        r.extend(self.peer_endpoint_id.clone());
        r.sort();
        r.dedup();
        r
    }
    fn secret(&self) -> Option<&str> {
        Some(self.psk.expose())
    }
    fn set_secret(&mut self, secret: String) {
        self.psk = Psk(secret);
    }
}
