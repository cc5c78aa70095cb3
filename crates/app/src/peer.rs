//! Peer addresses given as DNS names, resolved outside every transaction.
//!
//! Neutron accepts a connection's `peer_address` as an IP or a name and keeps
//! the address it resolved to. A lookup may take seconds; done under the write
//! lock, every other write would wait behind it. So a name is resolved before
//! the transaction opens, and the transaction only uses the result if the
//! object still asks for that same name (see `App::update`).

use std::net::IpAddr;
use std::time::Duration;

use model::{Error, Result, Violation};

/// How long one lookup may take before the address counts as unresolvable.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A name and the IP it resolved to, outside any transaction.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
}

impl Resolved {
    pub(crate) async fn of(name: &str) -> Result<Resolved> {
        Ok(Resolved {
            name: name.to_string(),
            ip: resolve(name).await?,
        })
    }
}

/// Resolves a peer address (IP literal or DNS name) to one IP, as Neutron does.
pub async fn resolve(address: &str) -> Result<IpAddr> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(ip);
    }
    let unresolved = || {
        Error::Invalid(Violation::PeerAddressUnresolved {
            address: address.to_string(),
        })
    };
    if address.is_empty() || address.len() > 253 {
        return Err(unresolved());
    }
    let lookup = tokio::net::lookup_host((address, 0));
    match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()).ok_or_else(unresolved),
        _ => Err(unresolved()),
    }
}
