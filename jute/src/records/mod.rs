//! Every record of ZooKeeper 3.8's `zookeeper.jute`, grouped by family.
//!
//! Field names follow the `.jute` file in snake case, so a reader of ZooKeeper's sources
//! finds each field under the same name.

pub mod data;
pub mod multi;
pub mod ops;
pub mod session;
pub mod txn;
pub mod watch;

pub use data::*;
pub use multi::*;
pub use ops::*;
pub use session::*;
pub use txn::*;
pub use watch::*;
