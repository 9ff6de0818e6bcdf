//! What must hold, one invariant per file.

pub mod applied;
pub mod converged;
pub mod digest;
pub mod durable;
pub mod ephemerals;
pub mod lock;
pub mod ordered;
pub mod read_only;
pub mod read_your_writes;
pub mod served_state;
pub mod sync_then_read;
