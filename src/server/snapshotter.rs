//! Background snapshots: every `snapCount` txns (randomised as ZooKeeper does, so the
//! members of an ensemble do not all snapshot at once), without stopping writes, then a
//! purge of what the retained snapshots make unnecessary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::server::Shared;
use crate::storage::{SnapshotHeader, Storage, StorageError};
use crate::tree::data_tree::DataTree;
use crate::tree::snapshot::{write_snapshot, SnapshotSummary};
use crate::txn::{SessionId, Zxid};

/// Decides when to snapshot and runs one snapshot at a time on its own thread.
#[derive(Debug)]
pub struct Snapshotter {
    snap_count: u64,
    retain: usize,
    purge_after_snapshot: bool,
    txns_since_snapshot: u64,
    threshold: u64,
    random: u64,
    running: Option<JoinHandle<()>>,
    /// Set at shutdown: the running snapshot gives up at its next chunk.
    stopping: Arc<AtomicBool>,
}

impl Snapshotter {
    /// A snapshotter taking a snapshot every `snap_count` txns (at a random point in the
    /// second half of each interval), keeping `retain` snapshots, and purging older ones
    /// right after each snapshot when `purge_after_snapshot`.
    pub fn new(
        snap_count: u64,
        retain: usize,
        purge_after_snapshot: bool,
        seed: u64,
    ) -> Snapshotter {
        let mut snapshotter = Snapshotter {
            snap_count: snap_count.max(2),
            retain: retain.max(1),
            purge_after_snapshot,
            txns_since_snapshot: 0,
            threshold: 0,
            random: seed | 1,
            running: None,
            stopping: Arc::new(AtomicBool::new(false)),
        };
        snapshotter.roll();
        snapshotter
    }

    fn roll(&mut self) {
        // xorshift64: enough to spread snapshot points; no global randomness.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let half = self.snap_count / 2;
        self.threshold = half + self.random % half.max(1);
    }

    /// Counts applied txns; when a snapshot is due, starts one labelled `zxid` (the last
    /// applied) unless one is still running. `sessions` are the live sessions then.
    pub fn applied(
        &mut self,
        count: u64,
        zxid: Zxid,
        shared: &Arc<Shared>,
        storage: &Arc<dyn Storage>,
        sessions: impl FnOnce() -> Vec<(SessionId, i32)>,
    ) {
        self.txns_since_snapshot += count;
        if self.txns_since_snapshot < self.threshold {
            return;
        }
        // As in ZooKeeper, a snapshot that comes due while another is still being
        // written is skipped, not postponed: the count starts over either way.
        self.txns_since_snapshot = 0;
        self.roll();
        if self.running.as_ref().is_some_and(|running| !running.is_finished()) {
            tracing::info!(%zxid, "too busy to snapshot, skipping");
            return;
        }
        let (shared, storage, sessions) = (shared.clone(), storage.clone(), sessions());
        let (retain, purge, stopping) =
            (self.retain, self.purge_after_snapshot, self.stopping.clone());
        let spawned = std::thread::Builder::new().name("zkrs-snapshot".into()).spawn(move || {
            crate::background::lower_this_thread();
            match take_snapshot(&shared, storage.as_ref(), zxid, &sessions, &stopping) {
                Ok(()) if purge => {
                    if let Err(err) = purge_old(storage.as_ref(), retain) {
                        tracing::warn!(cause = %err, "purging old snapshots failed");
                    }
                }
                Ok(()) => {}
                Err(StorageError::Interrupted) => {
                    tracing::info!("snapshot abandoned: the server is stopping")
                }
                Err(err) => tracing::error!(cause = %err, "snapshot failed"),
            }
        });
        match spawned {
            Ok(handle) => self.running = Some(handle),
            Err(err) => tracing::warn!(cause = %err, "cannot start a snapshot thread"),
        }
    }

    /// Stops the running snapshot, if any, and waits for it: the state is about to be
    /// replaced, and a snapshot must not mix the old state with the new.
    pub fn interrupt(&mut self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(running) = self.running.take() {
            if running.join().is_err() {
                tracing::error!("the snapshot thread panicked");
            }
        }
        self.stopping.store(false, Ordering::Release);
    }

    /// Stops the snapshot in progress, if any, and waits for its thread: the store must
    /// not be closed under it.
    pub fn close(self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(running) = self.running {
            if running.join().is_err() {
                tracing::error!("the snapshot thread panicked");
            }
        }
    }
}

/// Writes a (fuzzy) snapshot labelled `zxid` of the server's tree, unless `stopping` is
/// set before it is complete.
///
/// # Errors
/// If the storage fails; [`StorageError::Interrupted`] when stopped.
fn take_snapshot(
    shared: &Shared,
    storage: &dyn Storage,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    stopping: &AtomicBool,
) -> Result<(), StorageError> {
    let created_ms = shared.clock.wall_ms() as i64;
    let started_ms = shared.clock.now_ms();
    take_snapshot_of(shared.database.tree(), storage, zxid, sessions, created_ms, stopping)?;
    let took_ms = shared.clock.now_ms().saturating_sub(started_ms);
    shared.stats.snapshot_time.record(took_ms);
    Ok(())
}

/// Writes a (fuzzy) snapshot labelled `zxid` of `tree` and `sessions`, unless `stopping`
/// is set before it is complete, logging its size and duration.
///
/// # Errors
/// If the storage fails; [`StorageError::Interrupted`] when stopped.
pub fn take_snapshot_of(
    tree: &DataTree,
    storage: &dyn Storage,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    created_ms: i64,
    stopping: &AtomicBool,
) -> Result<SnapshotSummary, StorageError> {
    let started = Instant::now();
    tracing::info!(%zxid, "taking a snapshot");
    let mut writer = storage.begin_snapshot(zxid)?;
    let summary = write_snapshot(tree, zxid, sessions, |chunk| {
        if stopping.load(Ordering::Acquire) {
            return Err(StorageError::Interrupted);
        }
        writer.put(chunk)
    })?;
    let header = SnapshotHeader {
        zxid,
        chunks: u32::try_from(summary.chunks).unwrap_or(u32::MAX),
        nodes: summary.nodes,
        sessions: u32::try_from(summary.sessions).unwrap_or(u32::MAX),
        bytes: summary.bytes,
        created_ms,
    };
    writer.finish(&header)?;
    tracing::info!(
        %zxid,
        nodes = summary.nodes,
        bytes = summary.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "snapshot written"
    );
    Ok(summary)
}

/// Keeps the `retain` newest snapshots, deletes the rest, and the log
/// entries the oldest kept snapshot covers (ZooKeeper's autopurge).
///
/// # Errors
/// If the storage fails.
pub fn purge_old(storage: &dyn Storage, retain: usize) -> Result<(), StorageError> {
    let snapshots = storage.snapshots()?;
    let Some(newest) = snapshots.first().map(|header| header.zxid) else {
        return Ok(());
    };
    for header in snapshots.iter().skip(retain) {
        storage.delete_snapshot(header.zxid)?;
    }
    let oldest_kept =
        snapshots.iter().take(retain).map(|header| header.zxid).min().unwrap_or(newest);
    storage.purge_log_through(oldest_kept)
}

/// The live global sessions and their timeouts, as snapshots record them (local sessions
/// die with their server).
pub fn live_sessions(shared: &Shared) -> Vec<(SessionId, i32)> {
    shared
        .sessions
        .lock()
        .sessions()
        .iter()
        .filter(|session| !session.local)
        .map(|session| (session.session_id, i32::try_from(session.timeout_ms).unwrap_or(i32::MAX)))
        .collect()
}
