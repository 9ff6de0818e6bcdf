//! The thread that writes the log, one batch at a time.
//!
//! The driver hands it a batch and keeps preparing; everything prepared while the batch
//! syncs forms the next batch. So a single fsync covers as many txns as arrived during the
//! previous one: ZooKeeper's group commit, without a timer.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::storage::{LogEntry, Storage, StorageError};
use crate::txn::Zxid;

/// The driver's side of the log writer.
#[derive(Debug)]
pub struct LogWriter {
    batches: std_mpsc::SyncSender<Vec<LogEntry>>,
    thread: std::thread::JoinHandle<()>,
}

/// The outcome of one batch: the last zxid now durable, or why the log failed.
pub type Logged = Result<Zxid, StorageError>;

impl LogWriter {
    /// Starts the writer thread; completions arrive on the returned receiver in order. A
    /// batch that takes longer than `sync_warning_ms` to write and sync is logged at WARN,
    /// as ZooKeeper logs a slow fsync (`fsync.warningthresholdms`).
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub fn spawn(
        storage: Arc<dyn Storage>,
        sync_warning_ms: u64,
    ) -> std::io::Result<(LogWriter, mpsc::Receiver<Logged>)> {
        let (batches, incoming) = std_mpsc::sync_channel::<Vec<LogEntry>>(1);
        let (done, completions) = mpsc::channel(1);
        let thread = std::thread::Builder::new().name("zkrs-log".into()).spawn(move || {
            while let Ok(batch) = incoming.recv() {
                let last = batch.last().map_or(0, |entry| entry.zxid);
                let started = std::time::Instant::now();
                let outcome = storage.append(&batch).map(|()| last);
                let took = started.elapsed();
                if took > std::time::Duration::from_millis(sync_warning_ms) {
                    tracing::warn!(
                        took_ms = took.as_secs_f64() * 1000.0,
                        txns = batch.len(),
                        threshold_ms = sync_warning_ms,
                        "syncing the log took longer than fsync.warningthresholdms, which \
                         adversely affects operation latency"
                    );
                }
                // Released before the driver hears back, so it can reuse the buffer.
                drop(batch);
                if done.blocking_send(outcome).is_err() {
                    break;
                }
            }
        })?;
        Ok((LogWriter { batches, thread }, completions))
    }

    /// Hands a batch to the writer; its completion follows on the receiver.
    ///
    /// # Errors
    /// If the writer thread is gone.
    pub fn write(&self, batch: Vec<LogEntry>) -> Result<(), StorageError> {
        self.batches
            .send(batch)
            .map_err(|_| StorageError::Backend("the log writer thread stopped".into()))
    }

    /// Waits for the batch being written, then stops the thread. Drop the completion
    /// receiver first: the thread may be blocked handing it a completion.
    pub fn close(self) {
        drop(self.batches);
        if self.thread.join().is_err() {
            tracing::error!("the log writer thread panicked");
        }
    }
}
