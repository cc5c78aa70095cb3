//! The canonical vpnaas model: one set of types that both API views (Neutron and NSX)
//! translate to and from, plus every validation rule, written once.
//!
//! Why a separate crate: validation must not depend on which API a request came
//! through, and the node agent must render configuration without knowing either API.
//! This crate does no I/O; the store loads the objects a rule needs and calls in here.

pub mod enums;
pub mod error;
pub mod nsx;
pub mod openapi;
pub mod realization;
pub mod resources;
pub mod traffic;
pub mod validate;

pub use enums::*;
pub use error::{Error, Kind, Result, Violation};
pub use resources::*;
