//! The transaction log as files of records, the way ZooKeeper keeps its own: segments
//! `log.<first zxid>` in one directory, each with all its blocks written before it is
//! used, so that an append is one `write` over blocks the file already has and one
//! `fdatasync` with no size or extent to commit. A new segment is a purged one recycled
//! (as RocksDB recycles its log files), or else one filled with zeros on a thread of its
//! own while the current one fills. Purging recycles whole segments; truncating cuts one.
//!
//! A record is `length (u32) | crc (u32) | zxid (i64) | entry`, the CRC-32C over the zxid
//! and the entry. Each append writes its records and then a zero header, in one write,
//! and a zero header ends a segment, so what lies after it (zeros, the old records of a
//! recycled segment, the rest of a torn write) is never read. A segment's first record
//! carries the zxid in its name and every later one a greater zxid, so old bytes that
//! happen to check out as a record are still no part of the log.
//!
//! A crash can tear only what was not yet synced: a tail of the newest segment, never
//! acknowledged. Opening cuts such a tail off with a zero header; a record that fails its
//! checks anywhere else is damage, and reading it is an error. Each append is one write of
//! its records in order, so a crash keeps a prefix of the last batch.
//!
//! Reads go from the segment's start, or from the nearest point of a sparse index that
//! appends and the open's scan keep, so a reader that follows the log (a backup's txn
//! stream) does not walk a whole segment for each batch.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use bytes::{Buf, BufMut, BytesMut};
use parking_lot::Mutex;

use crate::storage::{LogEntry, StorageError};
use crate::txn::Zxid;

/// The size segments are filled to before use: a segment is closed once the next append
/// would not fit (one larger than this still goes whole into a segment of its own).
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// The bytes before a record's entry: length, CRC and zxid.
const RECORD_HEAD: usize = 16;

/// Most bytes one entry may take: a txn within ZooKeeper's largest `jute.maxbuffer`.
const ENTRY_MAX: usize = 256 << 20;

/// How much a reader takes from a segment at a time.
const READ_CHUNK: usize = 256 << 10;

/// How far apart (in bytes of segment) the sparse index's points are at least.
const INDEX_EVERY: u64 = 64 << 10;

/// The name a segment being filled with zeros has until it is taken into use.
const SPARE_NAME: &str = "log.spare";

/// The largest append buffer kept for the next append; a larger one (a big import
/// batch) is freed.
const BUFFER_KEPT_BYTES: usize = 4 << 20;

/// How much of a spare is filled between two syncs.
const SPARE_PIECE_BYTES: usize = 1 << 20;

/// What purged segments kept for reuse are named, before a number.
const RECYCLED_PREFIX: &str = "recycled.";

/// How many segments a purge keeps ready for reuse at least, counting a spare: one, so
/// that a log that starts a segment now and then holds one 16 MiB file more than its
/// records need, not two or three.
const RECYCLED_KEPT: usize = 1;

/// How many purged segments a purge keeps for reuse at most (256 MiB of disk): it keeps
/// as many as the log started since the purge before, the segments it will likely need
/// until the next. Each segment it cannot reuse is written whole with zeros first, which
/// under 1 KiB writes took a ninth of the server's CPU.
const RECYCLED_MAX: usize = 16;

/// What ends the records of a segment.
const END: [u8; RECORD_HEAD] = [0; RECORD_HEAD];

fn io(what: &'static str) -> impl Fn(std::io::Error) -> StorageError {
    move |source| StorageError::Io { what, source }
}

fn segment_name(first: Zxid) -> String {
    format!("log.{:016x}", first.raw())
}

fn parse_segment_name(name: &str) -> Option<Zxid> {
    let hex = name.strip_prefix("log.")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .map(|raw| Zxid::new(raw as i64))
}

fn record_crc(zxid: Zxid, entry: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&zxid.raw().to_be_bytes()), entry)
}

/// Appends one record's bytes to `out`.
fn put_record(out: &mut Vec<u8>, entry: &LogEntry) {
    out.put_u32(u32::try_from(entry.value.len()).unwrap_or(u32::MAX));
    out.put_u32(record_crc(entry.zxid, &entry.value));
    out.put_i64(entry.zxid.raw());
    out.put_slice(&entry.value);
}

/// Opens a segment to read and write it.
fn open_segment(path: &Path, what: &'static str) -> Result<File, StorageError> {
    OpenOptions::new().read(true).write(true).open(path).map_err(io(what))
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io("syncing the log directory"))
}

/// Makes a segment ready to use: `SEGMENT_BYTES` of zeros, synced, under [`SPARE_NAME`].
/// Synced a piece at a time (when the log syncs at all), so that the log's own syncs
/// never queue behind the whole.
fn prepare_spare(dir: &Path, sync: bool) -> std::io::Result<PathBuf> {
    let path = dir.join(SPARE_NAME);
    let file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let zeros = vec![0u8; SPARE_PIECE_BYTES];
    for piece in 0..SEGMENT_BYTES.div_ceil(SPARE_PIECE_BYTES as u64) {
        file.write_all_at(&zeros, piece * SPARE_PIECE_BYTES as u64)?;
        if sync {
            file.sync_data()?;
        }
    }
    if sync {
        file.sync_all()?;
    }
    Ok(path)
}

/// How a walk through a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// At a zero header or the file's end: nothing was written after the last record.
    Clean,
    /// At bytes that are no record: a torn write, or damage.
    Broken,
}

/// Reads one segment's records in order.
struct Walker {
    file: File,
    /// Bytes read and not yet taken, starting at file offset `offset`.
    buffer: BytesMut,
    offset: u64,
    at_eof: bool,
    /// The zxid the next record must exceed, or equal for the segment's first record.
    previous: Option<Zxid>,
    first: Zxid,
}

/// A record a walk found, where it starts.
struct Found {
    entry: LogEntry,
    at: u64,
}

impl Walker {
    fn new(file: File, first: Zxid, start: Option<(Zxid, u64)>) -> Walker {
        let (previous, offset) = match start {
            Some((zxid, at)) => (Some(zxid - 1), at),
            None => (None, 0),
        };
        Walker { file, buffer: BytesMut::new(), offset, at_eof: false, previous, first }
    }

    /// Reads until `buffer` holds `len` bytes or the file ends; whether it holds them.
    fn fill(&mut self, len: usize) -> std::io::Result<bool> {
        while self.buffer.len() < len && !self.at_eof {
            let held = self.buffer.len();
            let want = (len - held).max(READ_CHUNK);
            self.buffer.resize(held + want, 0);
            let read_at = self.offset + held as u64;
            let read = read_at_most(&self.file, &mut self.buffer[held..], read_at)?;
            self.buffer.truncate(held + read);
            self.at_eof = read < want;
        }
        Ok(self.buffer.len() >= len)
    }

    /// The next record, or how the segment ends (at the returned offset).
    fn next(&mut self) -> std::io::Result<Result<Found, (Ending, u64)>> {
        let at = self.offset;
        if !self.fill(RECORD_HEAD)? {
            let ending = if self.buffer.iter().all(|&byte| byte == 0) {
                Ending::Clean
            } else {
                Ending::Broken
            };
            return Ok(Err((ending, at)));
        }
        let mut head = &self.buffer[..RECORD_HEAD];
        let (len, crc, zxid) = (head.get_u32() as usize, head.get_u32(), Zxid::new(head.get_i64()));
        if len == 0 && crc == 0 && zxid == Zxid::ZERO {
            return Ok(Err((Ending::Clean, at)));
        }
        let in_order = match self.previous {
            Some(previous) => zxid > previous,
            None => zxid == self.first,
        };
        if len > ENTRY_MAX || !in_order || !self.fill(RECORD_HEAD + len)? {
            return Ok(Err((Ending::Broken, at)));
        }
        if record_crc(zxid, &self.buffer[RECORD_HEAD..RECORD_HEAD + len]) != crc {
            return Ok(Err((Ending::Broken, at)));
        }
        self.buffer.advance(RECORD_HEAD);
        let value = self.buffer.split_to(len).freeze();
        self.offset += (RECORD_HEAD + len) as u64;
        self.previous = Some(zxid);
        Ok(Ok(Found { entry: LogEntry { zxid, value }, at }))
    }
}

/// `read_at` until `buffer` is full or the file ends; how many bytes it read.
fn read_at_most(file: &File, buffer: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut read = 0;
    while read < buffer.len() {
        match file.read_at(&mut buffer[read..], at + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(read)
}

/// One segment as the log knows it.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// Points (zxid, offset of its record) at least [`INDEX_EVERY`] apart, for segments
    /// this process wrote or scanned; empty for the others.
    index: Vec<(Zxid, u64)>,
}

impl Segment {
    fn note(&mut self, zxid: Zxid, at: u64) {
        if self.index.last().is_none_or(|&(_, last)| at >= last + INDEX_EVERY) {
            self.index.push((zxid, at));
        }
    }

    /// Where a reader of the records after `after` may start: the last indexed record not
    /// past `after + 1`.
    fn start_for(&self, after: Zxid) -> Option<(Zxid, u64)> {
        let point = self.index.partition_point(|&(zxid, _)| zxid <= after.next());
        point.checked_sub(1).map(|point| self.index[point])
    }
}

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    file: File,
    first: Zxid,
    /// Where its records end: the next append's offset.
    end: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Every segment, by the zxid of its first record.
    segments: BTreeMap<Zxid, Segment>,
    active: Option<Active>,
    /// Purged segments to reuse.
    recycled: Vec<PathBuf>,
    /// Numbers the next segment to be recycled.
    next_recycled: u64,
    /// Segments started since the last purge.
    rolled_since_purge: usize,
    /// The next segment, being filled with zeros on a thread of its own.
    spare: Option<std::thread::JoinHandle<std::io::Result<PathBuf>>>,
    /// The records of the append being written, kept for the next one's.
    buffer: Vec<u8>,
}

/// The log in its directory. Appends, truncation and purges take turns; reads run beside
/// them.
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    sync: bool,
    writable: bool,
    state: Mutex<State>,
    last_logged: AtomicI64,
    /// Reads in progress. A purge deletes segments instead of recycling them while any
    /// runs: a reader may hold a purged segment open, which a roll would overwrite.
    readers: AtomicUsize,
}

/// Counts a read in progress for as long as it lives.
struct Reading<'a>(&'a AtomicUsize);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SegmentLog {
    /// Opens the log in `dir`, creating it if need be; syncs appends when `sync`. Cuts off
    /// a torn tail of the newest segment.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory cannot be read or the tail repaired.
    pub fn open(dir: &Path, sync: bool) -> Result<SegmentLog, StorageError> {
        std::fs::create_dir_all(dir).map_err(io("creating the log directory"))?;
        // A spare a crash interrupted may be partly filled.
        let _ = std::fs::remove_file(dir.join(SPARE_NAME));
        let log = SegmentLog::load(dir, sync, true)?;
        log.open_newest()?;
        {
            // Without a segment to append to, the first append would wait for one.
            let mut state = log.state.lock();
            if state.active.is_none() && state.recycled.is_empty() {
                state.spare = Some(log.start_spare()?);
            }
        }
        Ok(log)
    }

    /// Opens the log in `dir` for reading only (the dump tools): nothing is repaired, and a
    /// torn tail reads as the log's end.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory cannot be read.
    pub fn open_read_only(dir: &Path) -> Result<SegmentLog, StorageError> {
        let log = SegmentLog::load(dir, false, false)?;
        // Nothing appends: every record read is the log's, up to its end.
        log.last_logged.store(i64::MAX, Ordering::Release);
        let mut last = Zxid::ZERO;
        log.read(Zxid::ZERO, &mut |entry| {
            last = entry.zxid;
            true
        })?;
        log.last_logged.store(last.raw(), Ordering::Release);
        Ok(log)
    }

    fn load(dir: &Path, sync: bool, writable: bool) -> Result<SegmentLog, StorageError> {
        let mut segments = BTreeMap::new();
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => Some(listing),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !writable => None,
            Err(err) => {
                return Err(StorageError::Io { what: "listing the log directory", source: err })
            }
        };
        let mut recycled = Vec::new();
        let mut next_recycled = 0;
        for item in listing.into_iter().flatten() {
            let item = item.map_err(io("listing the log directory"))?;
            let name = item.file_name();
            let name = name.to_str().unwrap_or_default();
            if let Some(first) = parse_segment_name(name) {
                segments.insert(first, Segment { path: item.path(), index: Vec::new() });
            } else if let Some(number) = name.strip_prefix(RECYCLED_PREFIX) {
                let number = number.parse::<u64>().unwrap_or_default();
                next_recycled = next_recycled.max(number + 1);
                recycled.push(item.path());
            }
        }
        let state = State { segments, recycled, next_recycled, ..State::default() };
        Ok(SegmentLog {
            dir: dir.to_owned(),
            sync,
            writable,
            state: Mutex::new(state),
            last_logged: AtomicI64::new(0),
            readers: AtomicUsize::new(0),
        })
    }

    /// Scans the newest segment to find where its records end, removing it if it holds
    /// none (a crash came before its first append was synced) and ending it with a zero
    /// header after its last whole record if a torn write left bytes there.
    fn open_newest(&self) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        while let Some((&first, segment)) = state.segments.iter_mut().next_back() {
            let file = open_segment(&segment.path, "opening the newest log segment")?;
            let mut walker = Walker::new(
                file.try_clone().map_err(io("opening the newest log segment"))?,
                first,
                None,
            );
            let mut last = None;
            let (ending, end) = loop {
                match walker.next().map_err(io("reading the newest log segment"))? {
                    Ok(found) => {
                        segment.note(found.entry.zxid, found.at);
                        last = Some(found.entry.zxid);
                    }
                    Err(ending) => break ending,
                }
            };
            let Some(last) = last else {
                let path = segment.path.clone();
                if ending == Ending::Broken {
                    tracing::warn!(
                        segment = %path.display(),
                        "removing the newest log segment: it holds no whole record, as a \
                         crash before its first append was synced leaves it"
                    );
                }
                state.segments.remove(&first);
                std::fs::remove_file(&path).map_err(io("removing an empty log segment"))?;
                continue;
            };
            if ending == Ending::Broken {
                tracing::warn!(
                    segment = %segment.path.display(),
                    offset = end,
                    "the log ends in an incomplete record, a write a crash cut short; \
                     cutting it off"
                );
                file.write_all_at(&END, end).map_err(io("cutting off a torn log tail"))?;
                file.sync_data().map_err(io("cutting off a torn log tail"))?;
            }
            self.last_logged.store(last.raw(), Ordering::Release);
            state.active = Some(Active { file, first, end });
            return Ok(());
        }
        Ok(())
    }

    /// The zxid of the last record, 0 for an empty log.
    pub fn last_logged_zxid(&self) -> Zxid {
        Zxid::new(self.last_logged.load(Ordering::Acquire))
    }

    /// Whether the log holds no segment at all.
    pub fn is_empty(&self) -> bool {
        self.state.lock().segments.is_empty()
    }

    /// Appends `entries` (zxids strictly increasing past the last record) in one write,
    /// synced before returning when syncing is on.
    ///
    /// # Errors
    /// [`StorageError::OutOfOrder`], or the write or sync failing.
    pub fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if !self.writable {
            return Err(StorageError::Backend("the log was opened read-only".into()));
        }
        let mut previous = self.last_logged_zxid();
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut buffer = std::mem::take(&mut state.buffer);
        buffer.clear();
        for entry in entries {
            if entry.zxid <= previous {
                return Err(StorageError::OutOfOrder { zxid: entry.zxid, last: previous });
            }
            previous = entry.zxid;
            put_record(&mut buffer, entry);
        }
        let records_len = buffer.len() as u64;
        buffer.extend_from_slice(&END);
        let fits = |active: &Active| active.end + buffer.len() as u64 <= SEGMENT_BYTES;
        if !state.active.as_ref().is_some_and(fits) {
            self.roll(state, first.zxid)?;
        }
        let active = state
            .active
            .as_mut()
            .ok_or_else(|| StorageError::Backend("no log segment to append to".into()))?;
        active.file.write_all_at(&buffer, active.end).map_err(io("writing the log"))?;
        if self.sync {
            active.file.sync_data().map_err(io("syncing the log"))?;
        }
        if let Some(segment) = state.segments.get_mut(&active.first) {
            let mut at = active.end;
            for entry in entries {
                segment.note(entry.zxid, at);
                at += (RECORD_HEAD + entry.value.len()) as u64;
            }
        }
        active.end += records_len;
        let half_full = active.end >= SEGMENT_BYTES / 2;
        if half_full && state.spare.is_none() && state.recycled.is_empty() {
            state.spare = Some(self.start_spare()?);
        }
        if buffer.capacity() <= BUFFER_KEPT_BYTES {
            state.buffer = buffer;
        }
        self.last_logged.store(previous.raw(), Ordering::Release);
        Ok(())
    }

    fn start_spare(
        &self,
    ) -> Result<std::thread::JoinHandle<std::io::Result<PathBuf>>, StorageError> {
        let (dir, sync) = (self.dir.clone(), self.sync);
        std::thread::Builder::new()
            .name("zkrs-log-spare".into())
            .spawn(move || {
                crate::background::lower_this_thread();
                prepare_spare(&dir, sync)
            })
            .map_err(io("starting the thread that prepares a log segment"))
    }

    /// Closes the active segment (if any) and starts `log.<first>` from a recycled
    /// segment, the spare, or a segment prepared now if there is neither.
    fn roll(&self, state: &mut State, first: Zxid) -> Result<(), StorageError> {
        if let Some(active) = state.active.take().filter(|active| active.end == 0) {
            if let Some(empty) = state.segments.remove(&active.first) {
                std::fs::remove_file(empty.path).map_err(io("removing an empty log segment"))?;
            }
        }
        let spare = match (state.recycled.pop(), state.spare.take()) {
            (Some(recycled), spare) => {
                state.spare = spare;
                Ok(recycled)
            }
            (None, Some(thread)) => thread.join().map_err(|_| {
                StorageError::Backend("the thread preparing a log segment panicked".into())
            })?,
            (None, None) => prepare_spare(&self.dir, self.sync),
        };
        let spare = spare.map_err(io("preparing a log segment"))?;
        state.rolled_since_purge += 1;
        let path = self.dir.join(segment_name(first));
        std::fs::rename(&spare, &path).map_err(io("naming a new log segment"))?;
        if self.sync {
            sync_dir(&self.dir)?;
        }
        let file = open_segment(&path, "opening a new log segment")?;
        state.segments.insert(first, Segment { path, index: Vec::new() });
        state.active = Some(Active { file, first, end: 0 });
        Ok(())
    }

    /// Calls `visit` with each record after `after` in zxid order until it returns false.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for a damaged record in a segment other than the newest;
    /// [`StorageError::Io`] when a segment cannot be read.
    pub fn read(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError> {
        let last = self.last_logged_zxid();
        let (walkers, _reading) = {
            let state = self.state.lock();
            self.readers.fetch_add(1, Ordering::AcqRel);
            let reading = Reading(&self.readers);
            let from = state
                .segments
                .range(..=after.next())
                .next_back()
                .map_or(Zxid::ZERO, |(&first, _)| first);
            let mut walkers = Vec::new();
            for (&first, segment) in state.segments.range(from..) {
                let file = File::open(&segment.path).map_err(io("opening a log segment"))?;
                let start = if first == from { segment.start_for(after) } else { None };
                walkers.push((Walker::new(file, first, start), segment.path.clone()));
            }
            (walkers, reading)
        };
        let newest = walkers.len().saturating_sub(1);
        for (number, (mut walker, path)) in walkers.into_iter().enumerate() {
            loop {
                match walker.next().map_err(io("reading a log segment"))? {
                    Ok(Found { entry, .. }) => {
                        if entry.zxid > last {
                            return Ok(());
                        }
                        if entry.zxid > after && !visit(entry) {
                            return Ok(());
                        }
                    }
                    Err((Ending::Broken, at)) if number != newest => {
                        return Err(StorageError::Corrupt(format!(
                            "{}: the record at offset {at} fails its checks",
                            path.display()
                        )));
                    }
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// Removes every record after `zxid`: later segments are deleted, and the segment
    /// holding `zxid` is zeroed after it and becomes the one appended to.
    ///
    /// # Errors
    /// When a segment cannot be read, written or removed.
    pub fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        let state = &mut *state;
        state.active = None;
        let later: Vec<Zxid> =
            state.segments.range(zxid.next()..).map(|(&first, _)| first).collect();
        for first in later {
            if let Some(segment) = state.segments.remove(&first) {
                std::fs::remove_file(&segment.path)
                    .map_err(io("removing a truncated log segment"))?;
            }
        }
        sync_dir(&self.dir)?;
        let mut last = Zxid::ZERO;
        if let Some((&first, segment)) = state.segments.iter_mut().next_back() {
            let file = open_segment(&segment.path, "opening a truncated log segment")?;
            let clone = file.try_clone().map_err(io("opening a truncated log segment"))?;
            let mut walker = Walker::new(clone, first, None);
            segment.index.clear();
            let mut cut = None;
            let (ending, end) = loop {
                match walker.next().map_err(io("reading a truncated log segment"))? {
                    Ok(found) if found.entry.zxid <= zxid => {
                        segment.note(found.entry.zxid, found.at);
                        last = found.entry.zxid;
                    }
                    Ok(found) => {
                        cut.get_or_insert(found.at);
                    }
                    Err(ending) => break ending,
                }
            };
            let cut = cut.unwrap_or(end);
            if cut < end || ending == Ending::Broken {
                file.write_all_at(&END, cut).map_err(io("truncating the log"))?;
                file.sync_data().map_err(io("truncating the log"))?;
            }
            state.active = Some(Active { file, first, end: cut });
        }
        self.last_logged.store(last.raw(), Ordering::Release);
        Ok(())
    }

    /// Deletes every segment whose records are all at or below `zxid`. The newest one
    /// stays unless the whole log is at or below `zxid` (a snapshot that replaces the
    /// whole log, received or restored), so records at or below `zxid` may remain in it.
    ///
    /// # Errors
    /// When a segment cannot be removed.
    pub fn purge_through(&self, zxid: Zxid) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        let whole_log = self.last_logged_zxid() <= zxid;
        if whole_log {
            state.active = None;
        }
        // A spare (being filled or ready) is one of the segments kept ready.
        let ready = state.rolled_since_purge.clamp(RECYCLED_KEPT, RECYCLED_MAX);
        let keep = ready - usize::from(state.spare.is_some());
        state.rolled_since_purge = 0;
        let firsts: Vec<Zxid> = state.segments.keys().copied().collect();
        for (number, &first) in firsts.iter().enumerate() {
            let covered = firsts.get(number + 1).map_or(whole_log, |&next| next <= zxid.next());
            if !covered {
                break;
            }
            if let Some(segment) = state.segments.remove(&first) {
                self.recycle(&mut state, &segment.path, keep)?;
            }
        }
        Ok(())
    }

    /// Keeps a purged segment for reuse, or deletes it when `keep` are kept.
    fn recycle(&self, state: &mut State, path: &Path, keep: usize) -> Result<(), StorageError> {
        if state.recycled.len() >= keep || self.readers.load(Ordering::Acquire) > 0 {
            return std::fs::remove_file(path).map_err(io("removing a purged log segment"));
        }
        let recycled = self.dir.join(format!("{RECYCLED_PREFIX}{}", state.next_recycled));
        state.next_recycled += 1;
        std::fs::rename(path, &recycled).map_err(io("recycling a purged log segment"))?;
        state.recycled.push(recycled);
        Ok(())
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        if let Some(spare) = self.state.get_mut().spare.take() {
            let _ = spare.join();
        }
    }
}

#[cfg(test)]
#[path = "segment_log_test.rs"]
mod tests;
