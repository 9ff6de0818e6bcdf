//! A backup directory: ZooKeeper snapshot files `snapshot.<zxid>` (each the exact state
//! at its zxid, as the AdminServer's `snapshot` streams it) and segments `txns.<zxid>`
//! of committed txns, the zxid in the name the segment's first. A segment starts with
//! the zxid it goes on from (8 bytes, big-endian): it holds every txn after that one up
//! to its last, as records the member streamed (zxid, length, the log entry with its
//! CRC-32C). Zxids alone cannot show a gap where an epoch ends, so a new segment starts
//! wherever the txns do not go on from the last one kept (after the member's log moved
//! past the backup, say), and past [`SEGMENT_BYTES`].
//!
//! Files appear whole: a snapshot is written as `snapshot.<zxid>.partial` and renamed
//! once synced; a segment is synced after each batch of records, so a crash leaves at
//! most an incomplete record at the end of the newest segment, which a scan leaves out
//! (and the writer cuts off before it goes on, in a new segment).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::storage::record::decode_entry;
use crate::storage::recovery::follows;
use crate::storage::LogEntry;
use crate::txn::{Txn, Zxid};

/// A segment longer than this is closed and the next record starts another.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// The bytes before a record's entry: its zxid and the entry's length.
const RECORD_HEAD: usize = 12;

/// The bytes before a segment's records: the zxid it goes on from.
pub const SEGMENT_HEAD: u64 = 8;

/// Most bytes one entry may take: a txn within ZooKeeper's largest `jute.maxbuffer`.
const ENTRY_MAX: usize = 256 << 20;

/// What went wrong with a backup directory.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A record is damaged somewhere other than at the end of the newest segment.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The segment.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io { path: path.display().to_string(), source }
}

/// One txn as a record holds it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its zxid.
    pub zxid: Zxid,
    /// The log entry: the jute txn and its CRC-32C.
    pub entry: Bytes,
}

impl Record {
    /// The txn, its checksum and zxid checked.
    ///
    /// # Errors
    /// A checksum that fails, a txn that does not decode, or another zxid inside.
    pub fn txn(&self) -> Result<Txn, String> {
        decode_entry(&self.log_entry()).map_err(|err| err.to_string())
    }

    /// The record as a log entry.
    pub fn log_entry(&self) -> LogEntry {
        LogEntry { zxid: self.zxid, value: self.entry.clone() }
    }

    /// The record's bytes.
    pub fn encode(&self, out: &mut BytesMut) {
        crate::server::admin::txns::put_record(out, self.zxid, &self.entry);
    }
}

/// Takes the next whole record off the front of `buffer`: `None` if it holds only part
/// of one. A record of length 0 is the stream's heartbeat.
///
/// # Errors
/// A length past [`ENTRY_MAX`].
pub fn take_record(buffer: &mut BytesMut) -> Result<Option<Record>, String> {
    if buffer.len() < RECORD_HEAD {
        return Ok(None);
    }
    let mut head = &buffer[..RECORD_HEAD];
    let zxid = Zxid::new(head.get_i64());
    let len = head.get_u32() as usize;
    if len > ENTRY_MAX {
        return Err(format!("a record of {len} bytes at zxid 0x{zxid:x}"));
    }
    if buffer.len() < RECORD_HEAD + len {
        return Ok(None);
    }
    buffer.advance(RECORD_HEAD);
    Ok(Some(Record { zxid, entry: buffer.split_to(len).freeze() }))
}

/// A segment as a scan found it.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// The zxid it goes on from: it holds every txn after it, through `last`.
    pub after: Zxid,
    /// Its first zxid.
    pub first: Zxid,
    /// Its last zxid.
    pub last: Zxid,
    /// Records in it.
    pub records: u64,
    /// Bytes of whole, checked records; anything after is an incomplete tail.
    pub valid_len: u64,
}

/// What a backup directory holds.
#[derive(Debug, Default)]
pub struct Scan {
    /// Snapshot zxids, oldest first.
    pub snapshots: Vec<Zxid>,
    /// Segments by first zxid.
    pub segments: Vec<Segment>,
    /// Bytes at the end of the newest segment that are no whole record (a write cut
    /// short by a crash).
    pub torn_tail: u64,
    /// A newest segment with no whole record at all, which the writer removes.
    pub empty_segment: Option<PathBuf>,
    /// A whole record at the end of the newest segment that fails its checks: damage,
    /// or a crash that left garbage where a record was being written.
    pub damaged_tail: Option<String>,
}

impl Scan {
    /// The snapshot file of `zxid`.
    pub fn snapshot_path(dir: &Path, zxid: Zxid) -> PathBuf {
        dir.join(Named::Snapshot(zxid).name())
    }

    /// The zxid the backup reaches: its last txn or its newest snapshot, whichever is
    /// later; `None` when it holds neither.
    pub fn reaches(&self) -> Option<Zxid> {
        let txns = self.segments.last().map(|segment| segment.last);
        let snapshot = self.snapshots.last().copied();
        txns.max(snapshot)
    }
}

/// What a backup file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Named {
    /// `snapshot.<zxid>`.
    Snapshot(Zxid),
    /// `txns.<first zxid>`.
    Segment(Zxid),
}

/// What the file `name` is; none for a file that is no part of a backup (a snapshot
/// being written, the lock).
pub fn named(name: &str) -> Option<Named> {
    let (kind, hex) = name.split_once('.')?;
    let zxid = i64::from_str_radix(hex, 16).ok().map(Zxid::new)?;
    match kind {
        "snapshot" => Some(Named::Snapshot(zxid)),
        "txns" => Some(Named::Segment(zxid)),
        _ => None,
    }
}

impl Named {
    /// The file's name.
    pub fn name(self) -> String {
        match self {
            Named::Snapshot(zxid) => format!("snapshot.{:x}", zxid.raw()),
            Named::Segment(zxid) => format!("txns.{:x}", zxid.raw()),
        }
    }
}

/// Scans `dir`, checking every record of every segment.
///
/// # Errors
/// A file that cannot be read, or a damaged record anywhere but at the newest segment's
/// end.
pub fn scan(dir: &Path) -> Result<Scan, DirError> {
    let mut scan = Scan::default();
    let Files { snapshots, segments } = files(dir)?;
    scan.snapshots = snapshots;
    let count = segments.len();
    for (index, (first, path)) in segments.into_iter().enumerate() {
        let newest = index + 1 == count;
        let len = std::fs::metadata(&path).map_err(io_error(&path))?.len();
        let Some(after) = segment_after(&path)? else {
            if newest {
                // Cut short before its head was whole: nothing of it counts.
                scan.torn_tail = len;
                scan.empty_segment = Some(path);
                continue;
            }
            let reason = "has no head".to_owned();
            return Err(DirError::Corrupt { path: path.display().to_string(), reason });
        };
        let mut segment = Segment {
            path: path.clone(),
            after,
            first,
            last: first,
            records: 0,
            valid_len: SEGMENT_HEAD,
        };
        let mut previous = after;
        let outcome = read_segment(&path, &mut |record, end| {
            if !follows(previous, record.zxid) || (segment.records == 0 && record.zxid != first) {
                return Err(format!("zxid 0x{:x} does not follow 0x{previous:x}", record.zxid));
            }
            record.txn()?;
            previous = record.zxid;
            segment.last = record.zxid;
            segment.records += 1;
            segment.valid_len = end;
            Ok(())
        })?;
        match outcome {
            Err(reason) if !newest => {
                return Err(DirError::Corrupt { path: path.display().to_string(), reason })
            }
            _ if segment.valid_len < len && !newest => {
                let reason = "ends in an incomplete record".to_owned();
                return Err(DirError::Corrupt { path: path.display().to_string(), reason });
            }
            Err(reason) => {
                scan.damaged_tail = Some(format!("{}: {reason}", path.display()));
                scan.torn_tail = len - segment.valid_len;
            }
            Ok(()) => scan.torn_tail = len - segment.valid_len,
        }
        if segment.records > 0 {
            scan.segments.push(segment);
        } else if newest {
            // Cut short before its first record: nothing of it counts.
            scan.torn_tail = len;
            scan.empty_segment = Some(path);
        }
    }
    Ok(scan)
}

/// A backup directory's files by their names: the snapshots' zxids, and each segment's
/// first zxid and file, each sorted.
pub struct Files {
    /// The snapshots' zxids.
    pub snapshots: Vec<Zxid>,
    /// Each segment's first zxid and file.
    pub segments: Vec<(Zxid, PathBuf)>,
}

/// The snapshots and segments in `dir`, by their names.
///
/// # Errors
/// If the directory cannot be read.
pub fn files(dir: &Path) -> Result<Files, DirError> {
    let (mut snapshots, mut segments) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        match named(name) {
            Some(Named::Snapshot(zxid)) => snapshots.push(zxid),
            Some(Named::Segment(zxid)) => segments.push((zxid, path)),
            None => {}
        }
    }
    snapshots.sort();
    segments.sort();
    Ok(Files { snapshots, segments })
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Snapshots.
    pub snapshots: usize,
    /// Segments of txns.
    pub segments: usize,
}

/// Keeps the `keep` newest snapshots and what restores from the oldest of them (0 keeps
/// everything), as [`prunable`] chooses. Killed between removals, what is left still
/// restores every zxid from the oldest snapshot on.
///
/// # Errors
/// If the directory cannot be read or a file removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Pruned, DirError> {
    let Files { snapshots, segments } = files(dir)?;
    let mut heads = Vec::with_capacity(segments.len());
    for (first, path) in &segments {
        heads.push((*first, segment_after(path)?));
    }
    let (old_snapshots, old_segments) = prunable(&snapshots, &heads, keep);
    for zxid in &old_snapshots {
        let path = Scan::snapshot_path(dir, *zxid);
        std::fs::remove_file(&path).map_err(io_error(&path))?;
    }
    for (_, path) in &segments[..old_segments] {
        std::fs::remove_file(path).map_err(io_error(path))?;
    }
    if old_snapshots.len() + old_segments > 0 {
        sync_dir(dir)?;
    }
    Ok(Pruned { snapshots: old_snapshots.len(), segments: old_segments })
}

/// What keeping the `keep` newest of `snapshots` (sorted) lets go (nothing for 0): the
/// older snapshots, and how many of the oldest `segments` (each one's first zxid and the
/// zxid its head says it goes on from, none for a head not whole; sorted) hold only
/// txns at or before the oldest snapshot kept, which the next segment's head tells. The
/// newest segment always stays, for the backup appends after it.
pub fn prunable(
    snapshots: &[Zxid],
    segments: &[(Zxid, Option<Zxid>)],
    keep: usize,
) -> (Vec<Zxid>, usize) {
    let Some(old) = snapshots.len().checked_sub(keep).filter(|old| keep > 0 && *old > 0) else {
        return (Vec::new(), 0);
    };
    let oldest_kept = snapshots[old];
    let segments = segments
        .windows(2)
        .take_while(|pair| pair[1].1.is_some_and(|after| after <= oldest_kept))
        .count();
    (snapshots[..old].to_vec(), segments)
}

/// The zxid the segment at `path` goes on from; `None` if its head is not whole.
///
/// # Errors
/// If the file cannot be read.
pub fn segment_after(path: &Path) -> Result<Option<Zxid>, DirError> {
    let mut head = [0u8; SEGMENT_HEAD as usize];
    let mut file = File::open(path).map_err(io_error(path))?;
    match file.read_exact(&mut head) {
        Ok(()) => Ok(Some(Zxid::new(i64::from_be_bytes(head)))),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(io_error(path)(err)),
    }
}

/// Calls `visit` with each whole record of the segment at `path` (after its head) and
/// the offset after it, until `visit` refuses one or the records end; returns why it
/// stopped early.
///
/// # Errors
/// If the file cannot be read.
pub fn read_segment(
    path: &Path,
    visit: &mut dyn FnMut(Record, u64) -> Result<(), String>,
) -> Result<Result<(), String>, DirError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut head = [0u8; SEGMENT_HEAD as usize];
    if file.read_exact(&mut head).is_err() {
        return Ok(Err("the segment has no head".into()));
    }
    let mut buffer = BytesMut::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = SEGMENT_HEAD;
    loop {
        loop {
            let before = buffer.len();
            match take_record(&mut buffer) {
                Ok(Some(record)) => {
                    offset += (before - buffer.len()) as u64;
                    if record.entry.is_empty() {
                        return Ok(Err(format!("an empty record at 0x{:x}", record.zxid)));
                    }
                    if let Err(reason) = visit(record, offset) {
                        return Ok(Err(reason));
                    }
                }
                Ok(None) => break,
                Err(reason) => return Ok(Err(reason)),
            }
        }
        let read = file.read(&mut chunk).map_err(io_error(path))?;
        if read == 0 {
            return Ok(Ok(()));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Appends records to the newest segment, or starts one. A segment the writer leaves
/// (full, rolled, or left by an earlier writer that stopped) never changes again, so a
/// copy of it ([`super::remote`]) is final.
#[derive(Debug)]
pub struct SegmentWriter {
    dir: PathBuf,
    current: Option<OpenSegment>,
    last: Option<Zxid>,
    sealed: Option<Zxid>,
}

/// The segment being appended to.
#[derive(Debug)]
struct OpenSegment {
    file: File,
    path: PathBuf,
    first: Zxid,
    len: u64,
    opened: Instant,
}

impl SegmentWriter {
    /// Goes on after `scan`'s newest segment, its incomplete tail cut off first; the next
    /// record starts a new segment.
    ///
    /// # Errors
    /// If the segment cannot be cut.
    pub fn resume(dir: &Path, scan: &Scan) -> Result<SegmentWriter, DirError> {
        let mut writer =
            SegmentWriter { dir: dir.to_owned(), current: None, last: None, sealed: None };
        if let Some(path) = &scan.empty_segment {
            std::fs::remove_file(path).map_err(io_error(path))?;
        }
        if let Some(segment) = scan.segments.last() {
            let path = &segment.path;
            let file = OpenOptions::new().append(true).open(path).map_err(io_error(path))?;
            file.set_len(segment.valid_len).map_err(io_error(path))?;
            file.sync_all().map_err(io_error(path))?;
            writer.last = Some(segment.last);
            writer.sealed = Some(segment.first);
        }
        Ok(writer)
    }

    /// The first zxid of the newest segment that is whole and will not change: it and
    /// every segment before it can be copied.
    pub fn sealed(&self) -> Option<Zxid> {
        self.sealed
    }

    /// Leaves the segment being appended to if it was started `age` or longer ago, so
    /// that the txns in it can be copied; the next record starts a new one.
    pub fn roll_if_older(&mut self, age: Duration) {
        if self.current.as_ref().is_some_and(|open| open.opened.elapsed() >= age) {
            self.leave();
        }
    }

    fn leave(&mut self) {
        if let Some(open) = self.current.take() {
            self.sealed = Some(open.first);
        }
    }

    /// Appends `records`, the txns that came right after `after` (each following the
    /// one before), and syncs them. They go on in the newest segment if it ends at
    /// `after`, else in a new one.
    ///
    /// # Errors
    /// If the segment cannot be written or synced.
    pub fn append(&mut self, after: Zxid, records: &[Record]) -> Result<(), DirError> {
        let mut out = BytesMut::new();
        let mut previous = after;
        for record in records {
            let continues = self.last == Some(previous);
            let full = self.current.as_ref().is_some_and(|open| open.len >= SEGMENT_BYTES);
            if !continues || full || self.current.is_none() {
                self.flush(&mut out)?;
                self.leave();
                let path = self.dir.join(Named::Segment(record.zxid).name());
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_error(&path))?;
                sync_dir(&self.dir)?;
                out.extend_from_slice(&previous.raw().to_be_bytes());
                let (first, len, opened) = (record.zxid, SEGMENT_HEAD, Instant::now());
                self.current = Some(OpenSegment { file, path, first, len, opened });
            }
            previous = record.zxid;
            let before = out.len();
            record.encode(&mut out);
            if let Some(open) = self.current.as_mut() {
                open.len += (out.len() - before) as u64;
            }
            self.last = Some(record.zxid);
        }
        self.flush(&mut out)
    }

    fn flush(&mut self, out: &mut BytesMut) -> Result<(), DirError> {
        if out.is_empty() {
            return Ok(());
        }
        if let Some(open) = self.current.as_mut() {
            open.file.write_all(out).map_err(io_error(&open.path))?;
            open.file.sync_data().map_err(io_error(&open.path))?;
        }
        out.clear();
        Ok(())
    }
}

/// Syncs a directory, so a file created or renamed in it stays after a crash.
///
/// # Errors
/// If it cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), DirError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error(dir))
}

#[cfg(test)]
#[path = "dir_test.rs"]
pub(crate) mod tests;
