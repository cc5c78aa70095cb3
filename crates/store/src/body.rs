//! What the store needs to know about each kind of object: its kind tag, the ids
//! it references (kind-less for `resource_refs`, by kind for readers that load
//! them, [`Keys`]), and its secret, if it has one; and how a body becomes the
//! JSON document kept in the `body` column ([`encode`], [`decode`]).
//!
//! That document is the serde JSON of the model type, so a renamed or retyped
//! field would leave existing rows unreadable: `tests/bodies.rs` pins one
//! document per kind in a golden file (and reads the golden file back).

use model::nsx::*;
use model::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::read::Keys;

/// The document stored for `body` (its secret, if any, is not in it).
pub fn encode<T: Body>(body: &T) -> Result<String> {
    serde_json::to_string(body).map_err(|e| Error::internal("encode body", e))
}

/// A body from its stored document (the secret is set afterwards).
pub fn decode<T: Body>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| Error::internal("decode body", e))
}

/// A kind the store can keep: its tag, what it references (so the database
/// refuses to delete what is in use) and its secret (encrypted at rest).
pub trait Body: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The `kind` column of this type's rows.
    const KIND: Kind;
    /// Ids of the objects this one uses (kept in `resource_refs`).
    fn refs(&self) -> Vec<String> {
        Vec::new()
    }
    /// Adds the ids of the objects readers load with this one (a connection's
    /// service and policies, a service's gateway) to `keys`, by kind.
    fn read_keys(&self, _keys: &mut Keys) {}
    /// The secret kept encrypted in the `secret` column instead of the
    /// document (a pre-shared key), if this kind has one.
    fn secret(&self) -> Option<&str> {
        None
    }
    /// Puts the decrypted secret back into a body read from its row.
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
    /// The external subnets its addresses came from: they can't be deleted
    /// while it holds them.
    fn refs(&self) -> Vec<String> {
        let mut r: Vec<String> = [&self.external_v4_subnet_id, &self.external_v6_subnet_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        r.extend(self.external_network_id.clone());
        r.sort();
        r.dedup();
        r
    }
}

impl Body for Network {
    const KIND: Kind = Kind::Network;
}

impl Body for Subnet {
    const KIND: Kind = Kind::Subnet;
    /// Its network (none only in rows older than networks) and, once
    /// attached, its gateway: a write to an attached subnet reaches that
    /// gateway's nodes through this reference.
    fn refs(&self) -> Vec<String> {
        let mut r: Vec<String> = self.gateway_id.iter().cloned().collect();
        if !self.network_id.is_empty() {
            r.push(self.network_id.clone());
        }
        r
    }
}

impl Body for VpnService {
    const KIND: Kind = Kind::VpnService;
    fn refs(&self) -> Vec<String> {
        let mut r = vec![self.router_id.clone()];
        r.extend(self.subnet_id.clone());
        r
    }
    fn read_keys(&self, keys: &mut Keys) {
        keys.gateways.insert(self.router_id.clone());
        keys.subnets.extend(self.subnet_id.clone());
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
    fn read_keys(&self, keys: &mut Keys) {
        if self.endpoint_type == EndpointType::Subnet {
            keys.subnets.extend(self.endpoints.iter().cloned());
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
    fn read_keys(&self, keys: &mut Keys) {
        keys.services.insert(self.vpnservice_id.clone());
        keys.ike.insert(self.ikepolicy_id.clone());
        keys.ipsec.insert(self.ipsecpolicy_id.clone());
        keys.groups.extend(self.local_ep_group_id.clone());
        keys.groups.extend(self.peer_ep_group_id.clone());
    }
    fn secret(&self) -> Option<&str> {
        Some(self.psk.expose())
    }
    fn set_secret(&mut self, secret: String) {
        self.psk = Psk(secret);
    }
}

impl Body for DpdProfile {
    const KIND: Kind = Kind::DpdProfile;
}

impl Body for LocalEndpoint {
    const KIND: Kind = Kind::LocalEndpoint;
    fn refs(&self) -> Vec<String> {
        vec![self.vpnservice_id.clone()]
    }
}

impl Body for PeerEndpoint {
    const KIND: Kind = Kind::PeerEndpoint;
    fn refs(&self) -> Vec<String> {
        let mut r = vec![
            self.ikepolicy_id.clone(),
            self.ipsecpolicy_id.clone(),
            self.dpd_profile_id.clone(),
        ];
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

impl Body for SystemDefaults {
    const KIND: Kind = Kind::SystemDefaults;
    fn refs(&self) -> Vec<String> {
        self.ids.clone()
    }
}
