//! The vpnaas binary's library half: configuration, the composed HTTP server and
//! the admin commands, so integration tests start exactly what `vpnaas serve` runs.

pub mod admin;
pub mod bench;
pub mod edge;
#[cfg(test)]
mod error_table;
pub mod listener;
pub mod load;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod server;
