//! Where txns are logged before they are committed.
//!
//! The write pipeline appends every prepared txn to a [`Wal`] before applying it, so an
//! acknowledged write is in the log. This is the seam the durable RocksDB log fills; the
//! in-memory log keeps the pipeline's shape until then.

pub mod memory;

use crate::txn::{Txn, Zxid};

/// Why the log failed. A failed log poisons the server: it stops rather than acknowledge
/// writes it may not have stored.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A txn's zxid does not follow the last logged one.
    #[error("zxid 0x{zxid:x} does not follow the log's last zxid 0x{last:x}")]
    OutOfOrder {
        /// The offending zxid.
        zxid: Zxid,
        /// The log's last zxid.
        last: Zxid,
    },
}

/// An append-only log of txns in zxid order.
///
/// # Contract
/// When [`Wal::append`] returns `Ok`, the txns are stored as durably as the
/// implementation promises, and only then may their effects be acknowledged.
pub trait Wal: Send {
    /// Appends txns whose zxids strictly increase past [`Wal::last_zxid`].
    ///
    /// # Errors
    /// [`StorageError`] if the txns could not be stored; the caller must stop.
    fn append(&mut self, txns: &[&Txn]) -> Result<(), StorageError>;

    /// The zxid of the last appended txn, 0 for an empty log.
    fn last_zxid(&self) -> Zxid;
}
