//! Rebuilding the database at start: the newest snapshot that loads, then the log after it.
//!
//! - A snapshot that fails a checksum or does not decode is skipped for the one before.
//! - A damaged log entry is an error, as a CRC failure is in ZooKeeper's txn log. The
//!   store itself drops what a crash tore (the unsynced tail of its newest segment, never
//!   acknowledged), so a damaged entry it hands over was written whole, may have been
//!   acknowledged, and truncating it could lose an acknowledged write (or, on an ensemble
//!   member, leave it disagreeing with the history it promised its leader).
//! - A missing entry (a gap) is an error too: starting would serve wrong data.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::storage::parallel_load::{load_parallel, loader_threads};
use crate::storage::record::decode_entry;
use crate::storage::{LogEntry, SnapshotHeader, Storage, StorageError};
use crate::tree::data_tree::DataTree;
use crate::tree::snapshot::Loaded;
use crate::tree::Database;
use crate::txn::{SessionId, Txn, TxnBody, Zxid};

/// How often long loads report progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The state recovered from storage.
#[derive(Debug)]
pub struct Recovered {
    /// The tree with every logged txn applied.
    pub database: Database,
    /// Sessions alive at the last logged txn, with their timeouts.
    pub sessions: Vec<(SessionId, i32)>,
    /// The last zxid in the state.
    pub last_zxid: Zxid,
    /// The snapshot loaded, if any.
    pub snapshot: Option<SnapshotHeader>,
    /// Txns replayed from the log.
    pub replayed: u64,
    /// How long finding and loading the snapshot took (none found included).
    pub snapshot_load: Duration,
    /// How long reading the log after the snapshot took.
    pub log_read: Duration,
    /// With [`Replay::Collect`]: the checked log entries after the snapshot, in order.
    pub unapplied: Vec<LogEntry>,
}

/// What recovery does with the log entries after the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Applies them: a standalone server's log holds only committed txns.
    Apply,
    /// Checks and returns them unapplied: an ensemble member's log may end in txns no
    /// quorum committed, so they wait until a leader says they are.
    Collect,
    /// Applies them up to and including this zxid and leaves the rest: the state as it
    /// was at a committed zxid of a running server (the AdminServer's `snapshot`).
    ApplyThrough(Zxid),
}

fn load_snapshot(
    storage: &dyn Storage,
    header: &SnapshotHeader,
    extended: bool,
) -> Result<(DataTree, Loaded), StorageError> {
    let tree = DataTree::empty(extended);
    let started = Instant::now();
    let mut reported = started;
    let loaded = load_parallel(&tree, loader_threads(), |load| {
        storage.read_snapshot(header, &mut |index, chunk| {
            load(index, chunk);
            if reported.elapsed() >= PROGRESS_INTERVAL {
                reported = Instant::now();
                tracing::info!(
                    chunk = index + 1,
                    chunks = header.chunks,
                    nodes = tree.node_count(),
                    "loading snapshot"
                );
            }
            Ok(())
        })
    })?;
    if loaded.nodes != header.nodes {
        return Err(StorageError::Corrupt(format!(
            "snapshot 0x{:x} holds {} znodes, its header says {}",
            header.zxid, loaded.nodes, header.nodes
        )));
    }
    tracing::info!(
        zxid = %header.zxid,
        nodes = loaded.nodes,
        sessions = loaded.sessions.len(),
        bytes = header.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "snapshot loaded"
    );
    Ok((tree, loaded))
}

/// Whether `next` may follow `previous` in the log: the next counter of the same epoch,
/// or the start of a later epoch.
pub(crate) fn follows(previous: Zxid, next: Zxid) -> bool {
    if next.epoch() == previous.epoch() {
        next == previous + 1
    } else {
        next.epoch() > previous.epoch() && next.counter() >= 1
    }
}

/// Recovers the state from `storage`.
///
/// # Errors
/// [`StorageError::Corrupt`] when a log entry is damaged or missing, or when the log no longer
/// reaches back to any loadable snapshot; [`StorageError::Backend`] on read failures.
pub fn recover(
    storage: &dyn Storage,
    extended_types_enabled: bool,
    replay: Replay,
) -> Result<Recovered, StorageError> {
    let loading = Instant::now();
    let mut tree = None;
    let mut sessions = BTreeMap::new();
    let mut snapshot = None;
    for header in storage.snapshots()? {
        match load_snapshot(storage, &header, extended_types_enabled) {
            Ok((loaded_tree, loaded)) => {
                tree = Some(loaded_tree);
                sessions.extend(loaded.sessions);
                snapshot = Some(header);
                break;
            }
            Err(err) => tracing::warn!(
                zxid = %header.zxid,
                cause = %err,
                "snapshot unreadable, trying an older one"
            ),
        }
    }
    let snapshot_zxid = snapshot.map_or(Zxid::ZERO, |header| header.zxid);
    let database = Database::from_tree(
        tree.unwrap_or_else(|| DataTree::new(extended_types_enabled)),
        snapshot_zxid,
    );
    let snapshot_load = loading.elapsed();

    let started = Instant::now();
    let mut reported = started;
    let mut previous = snapshot_zxid;
    let mut replayed = 0u64;
    let mut bytes = 0u64;
    let mut failure = None;
    let mut unapplied = Vec::new();
    storage.read_log(snapshot_zxid, &mut |entry| {
        let zxid = entry.zxid;
        if matches!(replay, Replay::ApplyThrough(last) if zxid > last) {
            return false;
        }
        let txn = match decode_entry(&entry) {
            Ok(txn) => txn,
            Err(err) => {
                failure = Some(StorageError::Corrupt(format!(
                    "{err}: the data directory is damaged and zkrs will not start on it. \
                     Restore it from a backup; on an ensemble member whose peers hold a \
                     quorum, move it aside and the member starts empty and fetches the \
                     state from the leader"
                )));
                return false;
            }
        };
        if !follows(previous, zxid) {
            failure = Some(StorageError::Corrupt(format!(
                "the log jumps from zxid 0x{previous:x} to 0x{zxid:x}: entries are missing"
            )));
            return false;
        }
        bytes += entry.value.len() as u64;
        match replay {
            Replay::Apply | Replay::ApplyThrough(_) => {
                apply_recovered(&database, &txn, &mut sessions);
                replayed += 1;
            }
            Replay::Collect => unapplied.push(entry),
        }
        previous = zxid;
        if reported.elapsed() >= PROGRESS_INTERVAL {
            reported = Instant::now();
            tracing::info!(%zxid, "reading the log");
        }
        true
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    if replayed > 0 {
        tracing::info!(replayed, bytes, seconds = started.elapsed().as_secs_f64(), "log replayed");
    }
    if !unapplied.is_empty() {
        let entries = unapplied.len();
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(entries, bytes, seconds, "log read; entries wait for a leader's commit");
    }
    let last_zxid = previous.max(snapshot_zxid);
    Ok(Recovered {
        database,
        sessions: sessions.into_iter().collect(),
        last_zxid,
        snapshot,
        replayed,
        snapshot_load,
        log_read: started.elapsed(),
        unapplied,
    })
}

/// Applies a txn read from the log, keeping track of the sessions it opens and closes.
fn apply_recovered(database: &Database, txn: &Txn, sessions: &mut BTreeMap<SessionId, i32>) {
    database.apply(txn, &mut |_, _| {});
    match &txn.body {
        TxnBody::CreateSession(create) => {
            sessions.insert(txn.session_id(), create.time_out);
        }
        TxnBody::CloseSession(_) => {
            sessions.remove(&txn.session_id());
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "recovery_test.rs"]
mod tests;
