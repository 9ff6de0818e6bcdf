//! Durable state: the transaction log, snapshots, and the epoch metadata.
//!
//! [`Storage`] is the small interface the server needs; [`rocks::RocksStorage`] keeps the
//! log in segment files ([`segment_log`], as ZooKeeper keeps its txn logs) and the
//! snapshots and metadata in RocksDB, and
//! [`memory::MemoryStorage`] in memory: what unit tests and the whole-server simulator
//! run on, the simulator keeping the batch being written apart so a crash can lose it
//! (`tests/simulation/disk.rs`).
//! [`recovery`] rebuilds the database from whatever a storage holds.
//!
//! # Durability contract
//! When [`Storage::append`] returns `Ok` with syncing on, its txns survive a crash or a
//! power loss; only then may they be acknowledged (and, in an ensemble, acked to the
//! leader). A crash before it returns keeps a prefix of its txns, none of them
//! acknowledged. A failed append poisons the server: it must stop, not retry and carry on.

pub mod injected;
pub mod memory;
mod parallel_load;
pub mod record;
pub mod recovery;
pub mod rocks;
pub mod segment_log;

use bytes::{Bytes, BytesMut};

use crate::tree::snapshot::SnapshotError;
use crate::txn::Zxid;

/// Why storage failed.
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
    /// RocksDB failed (disk full, an IO error, corruption it detected).
    #[error("storage: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A file-system call failed; `what` says what was being done.
    #[error("storage: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot does not decode.
    #[error("corrupt data: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The storage machinery itself failed with no underlying error: a thread that
    /// stopped or could not start, a column family missing.
    #[error("storage: {0}")]
    Backend(String),
    /// The data directory was written by another program or an incompatible version.
    #[error("{0}")]
    Incompatible(String),
    /// Data fails its checksum or does not decode, somewhere recovery cannot repair.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Long work (a snapshot) gave up because the server is stopping.
    #[error("interrupted: the server is stopping")]
    Interrupted,
}

/// One logged txn: its zxid and its encoding ([`record::encode_entry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The txn's zxid, the entry's key.
    pub zxid: Zxid,
    /// Checksum and jute encoding of the txn.
    pub value: Bytes,
}

/// What a complete snapshot holds, written after its last chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Every txn up to this zxid is in the snapshot (later ones may be too).
    pub zxid: Zxid,
    /// Number of chunks.
    pub chunks: u32,
    /// Znodes in it.
    pub nodes: u64,
    /// Sessions in it.
    pub sessions: u32,
    /// Bytes of the chunks, before compression.
    pub bytes: u64,
    /// When it was finished, milliseconds since the epoch.
    pub created_ms: i64,
}

/// Receives the chunks of one snapshot in order, then completes it.
pub trait SnapshotWriter {
    /// Adds the next chunk.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot take it.
    fn put(&mut self, chunk: &mut BytesMut) -> Result<(), StorageError>;

    /// Completes the snapshot; durable on return. Until it returns, a crash leaves
    /// nothing of it: the chunks and the header become visible together.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot complete it.
    fn finish(self: Box<Self>, header: &SnapshotHeader) -> Result<(), StorageError>;
}

/// ZAB's persistent epochs: the last epoch this server accepted a NEWEPOCH for, and the
/// last it acknowledged a NEWLEADER for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epochs {
    /// acceptedEpoch.
    pub accepted: u32,
    /// currentEpoch.
    pub current: u32,
}

/// Where the log, snapshots and epochs live. Methods take `&self`: the storage thread,
/// the snapshot writer and a learner's transfer thread use one storage from their own
/// threads.
pub trait Storage: Send + Sync {
    /// Appends entries (zxids strictly increasing past the last entry) in order, synced
    /// before returning when syncing is on: ZooKeeper's group commit.
    ///
    /// # Errors
    /// [`StorageError`]; the entries may or may not be stored, and the caller must stop.
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError>;

    /// The zxid of the last entry, 0 for an empty log.
    fn last_logged_zxid(&self) -> Zxid;

    /// Calls `visit` with each entry after `after` in zxid order until it returns false.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read.
    fn read_log(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError>;

    /// Removes every entry after `zxid` (a follower told to TRUNC, a corrupt tail).
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be written.
    fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError>;

    /// Removes entries up to and including `zxid`, once a snapshot covers them: all of
    /// them when the log ends there (a snapshot that replaces the whole log); otherwise a
    /// store may keep some, which recovery never reads, as it reads after a snapshot.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be written.
    fn purge_log_through(&self, zxid: Zxid) -> Result<(), StorageError>;

    /// Starts writing the snapshot labelled `zxid`: every txn up to it is in the state
    /// written (and possibly some later ones: snapshots are fuzzy).
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot start one.
    fn begin_snapshot(&self, zxid: Zxid) -> Result<Box<dyn SnapshotWriter + '_>, StorageError>;

    /// Complete snapshots, newest first. A header that fails its checksum is skipped.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read.
    fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StorageError>;

    /// Calls `visit` with each chunk of the snapshot in order, after checking its checksum.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for a missing or damaged chunk, or what `visit` returns.
    fn read_snapshot(
        &self,
        header: &SnapshotHeader,
        visit: &mut dyn FnMut(usize, Bytes) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// Deletes a snapshot.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be written.
    fn delete_snapshot(&self, zxid: Zxid) -> Result<(), StorageError>;

    /// The persisted epochs.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read.
    fn epochs(&self) -> Result<Epochs, StorageError>;

    /// Persists the epochs; durable on return.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be written.
    fn set_epochs(&self, epochs: Epochs) -> Result<(), StorageError>;

    /// The last zxid of each epoch of the history, as last recorded: an ensemble member
    /// needs them for epochs whose entries snapshots have replaced (see
    /// [`crate::zab::History`]). Empty if never recorded.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read or the record is damaged.
    fn epoch_ends(&self) -> Result<Vec<Zxid>, StorageError>;

    /// Records the epochs' last zxids; durable on return.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be written.
    fn set_epoch_ends(&self, ends: &[Zxid]) -> Result<(), StorageError>;
}
