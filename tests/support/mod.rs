//! Shared by the integration tests: the real server process and a wire-level client.
#![allow(dead_code)]

pub mod client;
pub mod ensemble;
pub mod load;
pub mod mixed;
pub mod network;
pub mod rng;
pub mod server;
pub mod tls;
pub mod zookeeper;
