//! The storage thread: every write the pipeline makes to its store, in the order it asks
//! for them, so the driver never waits on RocksDB.
//!
//! The driver hands it batches of writes and keeps going. The thread takes every batch
//! waiting when it finishes the last and writes them as one, so a single fsync covers as
//! many txns as arrived during the previous one: ZooKeeper's group commit, with no round
//! trip through the driver between two syncs. Log truncations, epochs and a snapshot
//! received from the leader go through the same queue as appends, so each is durable only
//! once everything asked before it is.
//!
//! One wait is deliberate. When the txns applied just before a batch woke watchers, their
//! clients tend to write in reply at once (the next holder of a lock deletes its node when
//! it hears its predecessor's go), and that write would otherwise wait for the batch's sync
//! and then for a sync of its own. The thread holds such a batch briefly for them, as
//! PostgreSQL's `commit_delay` does, but only when a reply is likely, only while such
//! waits have been paying, and never for longer than a sync takes on this disk: on a disk
//! that syncs in microseconds it hardly waits at all.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The writes handed to the storage thread at once.
#[derive(Debug, Default)]
pub struct Batch {
    /// The writes, in order.
    pub writes: Vec<Write>,
    /// How many watchers the txns applied since the last batch woke: as many log entries
    /// may follow at once, and the thread waits briefly for them.
    pub awaited: usize,
}

/// How many batches the driver may have handed over and not yet heard back about.
pub const BATCHES_IN_FLIGHT: usize = 16;

/// The longest the thread holds a batch for the writes its watchers' clients may send.
const MOST_HELD: Duration = Duration::from_micros(300);

/// The driver's side of the storage thread.
#[derive(Debug)]
pub struct StorageWriter {
    batches: std_mpsc::SyncSender<(Instant, Batch)>,
    thread: std::thread::JoinHandle<()>,
}

/// What the storage thread tells of each group of batches it wrote: ZooKeeper's
/// `fsynctime`, `fsync_threshold_exceed_count` and the sync processor's metrics.
#[derive(Debug)]
pub struct Synced<'a> {
    /// Writing and syncing the group.
    pub took: Duration,
    /// Whether that took longer than `fsync.warningthresholdms`.
    pub slow: bool,
    /// Log entries the group appended.
    pub appended: usize,
    /// Each batch's log entries, with how long the batch waited from its hand-over until
    /// the thread began writing it.
    pub waited: &'a [(usize, Duration)],
}

/// The outcome of writing what was waiting: how many batches, the oldest first, are now
/// durable, or the store failed.
pub type Written = Result<usize, StorageError>;

impl StorageWriter {
    /// Starts the storage thread; completions arrive on the returned receiver, in order,
    /// each counting the batches it covers. Writing and syncing that takes longer than
    /// `sync_warning_ms` is logged at WARN, as ZooKeeper logs a slow fsync
    /// (`fsync.warningthresholdms`). `timed` hears of each group written.
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub fn spawn(
        storage: Arc<dyn Storage>,
        sync_warning_ms: u64,
        timed: impl Fn(&Synced<'_>) + Send + 'static,
    ) -> std::io::Result<(StorageWriter, mpsc::Receiver<Written>)> {
        let (batches, incoming) = std_mpsc::sync_channel::<(Instant, Batch)>(BATCHES_IN_FLIGHT);
        let (done, completions) = mpsc::channel(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new().name("zkrs-storage".into()).spawn(move || {
            let mut sync_took = SyncTime::default();
            let mut payoff = Payoff::default();
            let mut waited = Vec::new();
            while let Ok(first) = incoming.recv() {
                let mut group = Group::default();
                group.add(first);
                while let Ok(batch) = incoming.try_recv() {
                    group.add(batch);
                }
                if group.awaited > 0 && payoff.worth_waiting() {
                    payoff.record(group.wait_for_replies(&incoming, sync_took.typical()));
                }
                let Group { writes, batches, appended, handed, .. } = group;
                let started = Instant::now();
                waited.clear();
                waited.extend(handed.iter().map(|(entries, at)| (*entries, started - *at)));
                let outcome = writes.into_iter().try_for_each(|write| carry_out(&*storage, write));
                let took = started.elapsed();
                sync_took.record(took);
                let slow = took > Duration::from_millis(sync_warning_ms);
                timed(&Synced { took, slow, appended, waited: &waited });
                if slow {
                    tracing::warn!(
                        took_ms = took.as_secs_f64() * 1000.0,
                        txns = appended,
                        threshold_ms = sync_warning_ms,
                        "syncing the log took longer than fsync.warningthresholdms, which \
                         adversely affects operation latency"
                    );
                }
                let failed = outcome.is_err();
                if done.blocking_send(outcome.map(|()| batches)).is_err() {
                    break;
                }
                if failed {
                    // Nothing more is written: what was handed over behind the failed
                    // writes would leave a gap in the log. The thread stays until the
                    // driver, stopping on the failure, hangs up, so that the driver hears
                    // of the failure itself and not of a thread gone.
                    while incoming.recv().is_ok() {}
                    break;
                }
            }
        })?;
        Ok((StorageWriter { batches, thread }, completions))
    }

    /// Hands a batch to the thread; its completion follows on the receiver. It does not
    /// block while fewer than [`BATCHES_IN_FLIGHT`] batches are in hand, which the
    /// pipeline's queue keeps to.
    ///
    /// # Errors
    /// If the thread is gone.
    pub fn write(&self, batch: Batch) -> Result<(), StorageError> {
        self.batches
            .send((Instant::now(), batch))
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

/// Adds `write` after `writes`, joined to the append before it when both are appends, so
/// that one sync covers both; returns how many log entries it appends.
pub fn push_joining(writes: &mut Vec<Write>, write: Write) -> usize {
    match write {
        Write::Append(entries) => append_joining(writes, entries),
        other => {
            writes.push(other);
            0
        }
    }
}

/// Appends `entries` to the append that ends `writes`, or as a new append after any other
/// write, so that one sync covers the run; returns how many entries it appends.
pub fn append_joining(
    writes: &mut Vec<Write>,
    entries: impl IntoIterator<Item = LogEntry>,
) -> usize {
    if let Some(Write::Append(joined)) = writes.last_mut() {
        let before = joined.len();
        joined.extend(entries);
        return joined.len() - before;
    }
    let entries: Vec<LogEntry> = entries.into_iter().collect();
    let appended = entries.len();
    writes.push(Write::Append(entries));
    appended
}

/// The batches the thread writes as one: their writes in order, consecutive appends
/// joined so that one sync covers them.
#[derive(Default)]
struct Group {
    writes: Vec<Write>,
    batches: usize,
    appended: usize,
    /// Each batch's log entries and when it was handed over.
    handed: Vec<(usize, Instant)>,
    /// Log entries still likely to follow at once.
    awaited: usize,
}

impl Group {
    fn add(&mut self, (handed, batch): (Instant, Batch)) {
        self.batches += 1;
        let entries: usize =
            batch.writes.into_iter().map(|write| push_joining(&mut self.writes, write)).sum();
        self.appended += entries;
        self.handed.push((entries, handed));
        self.awaited = self.awaited.saturating_sub(entries).max(batch.awaited);
    }

    /// Takes the batches that arrive within `most` while entries are awaited; returns
    /// whether any entries came.
    fn wait_for_replies(
        &mut self,
        incoming: &std_mpsc::Receiver<(Instant, Batch)>,
        most: Duration,
    ) -> bool {
        let before = self.appended;
        let until = Instant::now() + most;
        while self.awaited > 0 {
            let left = until.saturating_duration_since(Instant::now());
            match incoming.recv_timeout(left) {
                Ok(batch) => self.add(batch),
                Err(_) => break,
            }
        }
        self.appended > before
    }
}

/// Whether waiting for woken watchers' writes has paid lately. Watchers that only read
/// (a configuration node's readers) never write in reply, and a wait for them would
/// only slow every write after theirs; so the thread stops waiting while fewer than
/// half of its recent waits brought entries, and tries again every so often.
struct Payoff {
    /// The share of recent waits that brought entries, smoothed.
    rate: f64,
    /// Waits skipped since the last one.
    skipped: u32,
}

impl Default for Payoff {
    fn default() -> Payoff {
        Payoff { rate: 1.0, skipped: 0 }
    }
}

impl Payoff {
    /// After this many skipped waits, one is tried, to see whether waiting pays again.
    const RETRY_AFTER: u32 = 16;

    fn worth_waiting(&mut self) -> bool {
        if self.rate >= 0.5 || self.skipped >= Payoff::RETRY_AFTER {
            self.skipped = 0;
            return true;
        }
        self.skipped += 1;
        false
    }

    fn record(&mut self, paid: bool) {
        self.rate += (f64::from(u8::from(paid)) - self.rate) / 8.0;
    }
}

/// How long writing and syncing a group typically takes on this disk: what bounds the
/// wait for replies. A wait that brings nothing costs at most this, which is what the
/// write it waited for would have cost had it come: a sync of its own. The median of the
/// recent groups, so that an occasional slow one (a memtable flush) does not stretch it.
#[derive(Default)]
struct SyncTime {
    /// The recent groups' times, oldest overwritten first.
    recent: [Duration; SyncTime::KEPT],
    /// Groups timed so far.
    timed: usize,
}

impl SyncTime {
    /// How many recent groups the median is taken over.
    const KEPT: usize = 15;

    fn record(&mut self, took: Duration) {
        self.recent[self.timed % SyncTime::KEPT] = took;
        self.timed += 1;
    }

    fn typical(&self) -> Duration {
        let mut recent = self.recent;
        let timed = &mut recent[..self.timed.min(SyncTime::KEPT)];
        timed.sort_unstable();
        timed.get(timed.len() / 2).copied().unwrap_or_default().min(MOST_HELD)
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
