//! `zkrs restore`: a new zkrs data directory holding exactly the state after one txn of
//! a backup (by zxid, or the last at or before a time): the newest snapshot at or
//! before it, and the txns after that snapshot up to it, written as a zkrs store that
//! starts from the snapshot and replays those txns (as `zkrs import` writes one). A
//! standalone server or a new ensemble starts from it.

use std::path::Path;

use crate::backup::dir::{self, Record, Scan, Segment};
use crate::import::{load_snapshot, write_store};
use crate::storage::recovery::follows;
use crate::storage::{Epochs, LogEntry};
use crate::txn::Zxid;

/// Which state to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The state after this txn.
    Zxid(Zxid),
    /// The state after the last txn at or before this time (ms since the epoch, as txn
    /// headers hold it).
    Time(i64),
    /// The latest state the backup holds.
    Latest,
}

/// What a restore made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The zxid of the state.
    pub zxid: Zxid,
    /// The snapshot it starts from.
    pub snapshot: Zxid,
    /// The txns replayed after it.
    pub txns: usize,
}

/// For each snapshot, the zxids a restore reaches from it: the snapshot's own through the
/// last txn that follows it without a gap.
pub fn reachable(scan: &Scan) -> Vec<(Zxid, Zxid)> {
    scan.snapshots.iter().map(|snapshot| (*snapshot, reach(scan, *snapshot))).collect()
}

/// The segments that carry on from `from` without a gap, in order.
fn chain(scan: &Scan, from: Zxid) -> Vec<&Segment> {
    let mut end = from;
    let mut chain = Vec::new();
    for segment in &scan.segments {
        if segment.after <= end && end < segment.last {
            end = segment.last;
            chain.push(segment);
        }
    }
    chain
}

/// The last zxid the segments carry on to from `from` without a gap.
fn reach(scan: &Scan, from: Zxid) -> Zxid {
    chain(scan, from).last().map_or(from, |segment| segment.last)
}

/// Restores `target` from the backup in `dir` into a new store in `to` (its log in
/// `to_log_dir`).
///
/// # Errors
/// A damaged backup, a target it cannot reach, or a store that cannot be written.
pub fn restore(
    dir: &Path,
    target: Target,
    to: &Path,
    to_log_dir: Option<&Path>,
    report: &mut dyn std::io::Write,
) -> Result<Restored, String> {
    let scan = dir::scan(dir).map_err(|err| err.to_string())?;
    let zxid = match target {
        Target::Zxid(zxid) => zxid,
        Target::Latest => scan.reaches().ok_or("the backup is empty")?,
        Target::Time(ms) => last_at_or_before(&scan, ms)?,
    };
    let snapshot = scan
        .snapshots
        .iter()
        .rev()
        .copied()
        .find(|snapshot| *snapshot <= zxid && reach(&scan, *snapshot) >= zxid)
        .ok_or_else(|| format!("the backup reaches no state at 0x{:x}", zxid.raw()))?;
    let mut entries: Vec<LogEntry> = Vec::new();
    for segment in chain(&scan, snapshot) {
        let outcome = dir::read_segment(&segment.path, &mut |record: Record, _| {
            let previous = entries.last().map_or(snapshot, |entry| entry.zxid);
            if record.zxid <= previous || record.zxid > zxid {
                return Ok(());
            }
            if !follows(previous, record.zxid) {
                return Err(format!("0x{:x} does not follow 0x{previous:x}", record.zxid));
            }
            entries.push(record.log_entry());
            Ok(())
        })
        .map_err(|err| err.to_string())?;
        outcome.map_err(|reason| format!("{}: {reason}", segment.path.display()))?;
    }
    let reached = entries.last().map_or(snapshot, |entry| entry.zxid);
    if reached != zxid {
        return Err(format!(
            "0x{:x} is no txn of the backup (the txns after snapshot 0x{:x} go 0x{:x}, ...)",
            zxid.raw(),
            snapshot.raw(),
            entries.first().map_or(snapshot, |entry| entry.zxid).raw()
        ));
    }
    let loaded =
        load_snapshot(&Scan::snapshot_path(dir, snapshot)).map_err(|err| err.to_string())?;
    let epochs = Epochs { accepted: zxid.epoch(), current: zxid.epoch() };
    write_store(to, to_log_dir, &loaded, &entries, epochs).map_err(|err| err.to_string())?;
    let restored = Restored { zxid, snapshot, txns: entries.len() };
    let _ = writeln!(
        report,
        "restored the state at 0x{:x} into {}: snapshot 0x{:x} ({} nodes) and {} txns after it",
        zxid.raw(),
        to.display(),
        snapshot.raw(),
        loaded.nodes,
        restored.txns
    );
    Ok(restored)
}

/// The zxid of the last txn at or before `ms`.
pub(crate) fn last_at_or_before(scan: &Scan, ms: i64) -> Result<Zxid, String> {
    let mut found = None;
    for segment in &scan.segments {
        let outcome = dir::read_segment(&segment.path, &mut |record: Record, _| {
            let txn = record.txn()?;
            if txn.header.time <= ms {
                found = Some(record.zxid);
            }
            Ok(())
        })
        .map_err(|err| err.to_string())?;
        outcome.map_err(|reason| format!("{}: {reason}", segment.path.display()))?;
    }
    found.ok_or_else(|| format!("the backup holds no txn at or before {ms} ms"))
}
