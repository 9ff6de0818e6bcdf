//! The storage thread: every write the pipeline makes to its store, in the order it asks
//! for them, so the driver never waits on RocksDB.
//!
//! The driver hands it a batch of writes and keeps going; everything asked for while the
//! batch is written forms the next batch. So a single fsync covers as many txns as
//! arrived during the previous one: ZooKeeper's group commit, without a timer. Log
//! truncations, epochs and a snapshot received from the leader go through the same queue
//! as appends, so each is durable only once everything asked before it is.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::server::restore::Installed;
use crate::server::transfer::Store;
use crate::storage::record::unseal;
use crate::storage::{Epochs, LogEntry, Storage, StorageError};
use crate::txn::Zxid;

/// One write to the store.
#[derive(Debug)]
pub enum Write {
    /// Append entries to the log and sync it.
    Append(Vec<LogEntry>),
    /// Drop every log entry after the zxid.
    Truncate(Zxid),
    /// Persist acceptedEpoch and currentEpoch.
    Epochs(Epochs),
    /// Persist the last zxid of each epoch of the history.
    EpochEnds(Vec<Zxid>),
    /// Store the snapshot received from the leader, with the history's epoch ends, and
    /// drop the log entries it replaces.
    Snapshot(Store, Vec<Zxid>),
    /// Store a restored state, and drop the snapshots and log of the state it replaced.
    Restore(Installed),
}

/// The driver's side of the storage thread.
#[derive(Debug)]
pub struct StorageWriter {
    batches: std_mpsc::SyncSender<Vec<Write>>,
    thread: std::thread::JoinHandle<()>,
}

/// The outcome of one batch: every write in it is durable, or the store failed.
pub type Written = Result<(), StorageError>;

impl StorageWriter {
    /// Starts the storage thread; completions arrive on the returned receiver, one per
    /// batch, in order. A batch that takes longer than `sync_warning_ms` to write and sync
    /// is logged at WARN, as ZooKeeper logs a slow fsync (`fsync.warningthresholdms`).
    /// `timed` hears how long each batch took and whether that was over the threshold
    /// (ZooKeeper's `fsynctime` and `fsync_threshold_exceed_count`).
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub fn spawn(
        storage: Arc<dyn Storage>,
        sync_warning_ms: u64,
        timed: impl Fn(std::time::Duration, bool) + Send + 'static,
    ) -> std::io::Result<(StorageWriter, mpsc::Receiver<Written>)> {
        let (batches, incoming) = std_mpsc::sync_channel::<Vec<Write>>(1);
        let (done, completions) = mpsc::channel(1);
        let thread = std::thread::Builder::new().name("zkrs-storage".into()).spawn(move || {
            while let Ok(batch) = incoming.recv() {
                let started = std::time::Instant::now();
                let appended: usize = batch
                    .iter()
                    .map(|write| match write {
                        Write::Append(entries) => entries.len(),
                        _ => 0,
                    })
                    .sum();
                let outcome = batch.into_iter().try_for_each(|write| carry_out(&*storage, write));
                let took = started.elapsed();
                let slow = took > std::time::Duration::from_millis(sync_warning_ms);
                timed(took, slow);
                if slow {
                    tracing::warn!(
                        took_ms = took.as_secs_f64() * 1000.0,
                        txns = appended,
                        threshold_ms = sync_warning_ms,
                        "syncing the log took longer than fsync.warningthresholdms, which \
                         adversely affects operation latency"
                    );
                }
                if done.blocking_send(outcome).is_err() {
                    break;
                }
            }
        })?;
        Ok((StorageWriter { batches, thread }, completions))
    }

    /// Hands a batch to the thread; its completion follows on the receiver.
    ///
    /// # Errors
    /// If the thread is gone.
    pub fn write(&self, batch: Vec<Write>) -> Result<(), StorageError> {
        self.batches
            .send(batch)
            .map_err(|_| StorageError::Backend("the storage thread stopped".into()))
    }

    /// Waits for the batch being written, then stops the thread. Drop the completion
    /// receiver first: the thread may be blocked handing it a completion.
    pub fn close(self) {
        drop(self.batches);
        if self.thread.join().is_err() {
            tracing::error!("the storage thread panicked");
        }
    }
}

/// Makes one write durable in `storage`: what the storage thread does with each write of
/// a batch, in order (and what the simulator's disks do).
///
/// # Errors
/// If the store fails, or a log entry fails its checksum ([`StorageError::Corrupt`]:
/// nothing of it is written).
pub fn carry_out(storage: &dyn Storage, write: Write) -> Result<(), StorageError> {
    match write {
        Write::Append(entries) => {
            // A pair assertion: the checksum sealed when the txn was encoded still holds
            // for the bytes about to be made durable, so a corrupted record is never logged.
            if let Some(entry) = entries.iter().find(|entry| unseal(&entry.value).is_none()) {
                return Err(StorageError::Corrupt(format!(
                    "log entry 0x{:x} fails its checksum before it is written",
                    entry.zxid
                )));
            }
            storage.append(&entries)
        }
        Write::Truncate(zxid) => storage.truncate_after(zxid),
        Write::Epochs(epochs) => storage.set_epochs(epochs),
        Write::EpochEnds(ends) => storage.set_epoch_ends(&ends),
        Write::Snapshot(store, epoch_ends) => store.finish(epoch_ends),
        Write::Restore(installed) => installed.store(storage),
    }
}

#[cfg(test)]
#[path = "storage_writer_test.rs"]
mod tests;
