//! Sessions: ids and passwords, the expiry tracker, and who a connection is (auth).
//!
//! Everything here is pure: time arrives as `now_ms` arguments from the server, so the
//! same code runs under the whole-server simulator (`tests/simulation`).

pub mod auth;
pub mod password;
pub mod tracker;

pub use auth::AuthIds;
pub use tracker::SessionTracker;
