//! zkrs: a ZooKeeper-compatible coordination server.
//!
//! Module map, from the wire inwards:
//! - [`server`]: the only tokio code — listener, connections, the write pipeline driver.
//! - [`proto`]: wire ↔ domain: request decoding, reply encoding, path rules, 4lw text.
//! - [`session`]: sessions, their expiry buckets, authentication and ACL checks.
//! - [`prepare`]: turns a write request into a [`txn::Txn`], validating against the
//!   tree plus the txns not yet applied.
//! - [`tree`]: znodes and watches; changed only by applying txns.
//! - [`txn`]: the transaction model shared by prepare, the log and apply.
//! - [`config`]: zoo.cfg read as ZooKeeper reads it, and the table of its keys.
//! - [`sasl`]: SASL DIGEST-MD5 authentication of clients, with the JAAS file's users.
//! - [`tls`]: the client ports' TLS context from ZooKeeper's key and trust stores.
//! - [`startup`], [`logging`]: what `zkrs server` does before serving, and where logs go.
//! - [`zab`]: the replication core (election, discovery, sync, broadcast), a pure state
//!   machine the server's shell and the simulator drive.
//! - [`zk_format`]: Apache ZooKeeper's own snapshot and txn log files, read by
//!   [`import`] (`zkrs import`: a zkrs data directory made of them) and written by
//!   [`export`] (`zkrs export`: the way back).
//! - [`shell`]: `zkrs shell`, a zkCli.sh-compatible client shell.
//! - [`backup`]: `zkrs backup` and `zkrs restore`: a backup directory kept current from
//!   a running member's AdminServer, restored to a chosen zxid or time.
//!
//! `tree`, `session`, `prepare`, `txn` and `zab` own no sockets, tasks, clocks or files: time
//! comes in as arguments, so they can be driven deterministically.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod audit;
pub mod background;
pub mod backup;
pub mod cli;
pub mod config;
pub mod dump;
pub mod ensemble;
pub mod export;
pub mod fast_hash;
pub mod import;
pub mod logging;
pub mod prepare;
pub mod proto;
pub mod sasl;
pub mod server;
pub mod session;
pub mod shell;
pub mod startup;
pub mod storage;
pub mod summary;
pub mod tls;
pub mod tree;
pub mod txn;
pub mod zab;
pub mod zk_format;
