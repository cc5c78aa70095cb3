//! Neutron `status` of VPN services and connections.
//!
//! Status is derived, never stored: it comes from what the gateway nodes report
//! (see `realize::state::StatusIndex`). A service whose gateway has no transport
//! node cannot be carried anywhere, so it is `DOWN` (not `PENDING_*`): nothing is
//! in flight, and Neutron's rule that pending objects can't be edited must not
//! lock an operator out of an object that will never be realized.

pub use realize::StatusIndex as StatusView;
