//! [`Storage`] on RocksDB and a [`SegmentLog`]: the log in segment files of its own
//! (`dataLogDir/zkrs-log`, or `dataDir/zkrs-log`), the snapshots and the metadata in
//! column families of a RocksDB store in `dataDir/zkrs`, with RocksDB's write-ahead log in
//! `dataLogDir` when one is set.
//!
//! The log is the one thing written on every write, so it gets ZooKeeper's plain design
//! instead of RocksDB's write-ahead log, memtable and flushes (about an eighth of the
//! server's CPU under a write load went to those). Stores written before the log moved out
//! of RocksDB (format 2) have their log moved into segments once, at the first writable
//! open. The checksums in [`record`] catch what the stores' own checks cannot (bit rot, a
//! damaged file).
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use rocksdb::{
    BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, DBRecoveryMode, Direction, IngestExternalFileOptions, IteratorMode, Options,
    ReadOptions, SstFileWriter, WriteBatch, WriteOptions, DB,
};

use crate::storage::record::{
    decode_header, encode_header, log_key, parse_snapshot_key, seal, seal_in_place, snapshot_key,
    unseal, zxid_of_log_key, HEADER_INDEX,
};
use crate::storage::segment_log::SegmentLog;
use crate::storage::{Epochs, LogEntry, SnapshotHeader, SnapshotWriter, Storage, StorageError};
use crate::txn::Zxid;

/// The column family that held the log in format 2 stores, empty once it is moved out.
const LOG: &str = "log";
const SNAPSHOTS: &str = "snapshots";
const METADATA: &str = "metadata";

const FORMAT_KEY: &[u8] = b"format";
// 2: checksums follow their payload; node chunks end with their ACL table.
// 3: the log is in segment files, not in RocksDB.
const FORMAT: &[u8] = b"zkrs-storage-3";
const FORMAT_LOG_IN_ROCKSDB: &[u8] = b"zkrs-storage-2";
const EPOCHS_KEY: &[u8] = b"epochs";
const EPOCH_ENDS_KEY: &[u8] = b"epoch_ends";
/// Each column family's memtable.
const WRITE_BUFFER_BYTES: usize = 16 << 20;
/// Entries moved at a time from a format 2 store's log into segments.
const MOVED_PER_APPEND: usize = 10_000;

/// The subdirectory of `dataDir` that holds the store.
pub const STORE_DIR: &str = "zkrs";

/// The subdirectory of `dataLogDir` (or, without one, of `dataDir`) that holds the log.
pub const LOG_DIR: &str = "zkrs-log";

/// The RocksDB-backed store.
pub struct RocksStorage {
    db: DB,
    log: SegmentLog,
    /// Options of the table files snapshots are written into (compression).
    table_options: Options,
    /// Where snapshot table files are built before RocksDB takes them in.
    scratch_dir: PathBuf,
    /// Numbers each writer's table file, so that two writers of one zxid (a snapshot
    /// from the leader sent again while the abandoned one still closes) never share one.
    next_scratch: AtomicU64,
}

/// Writes a snapshot into its own table file (no write-ahead log, no memtable, no
/// compaction), which RocksDB then ingests into the `snapshots` family in one atomic step.
struct RocksSnapshotWriter<'a> {
    storage: &'a RocksStorage,
    writer: SstFileWriter<'a>,
    path: PathBuf,
    zxid: Zxid,
    next_index: u32,
}

impl SnapshotWriter for RocksSnapshotWriter<'_> {
    fn put(&mut self, chunk: &mut BytesMut) -> Result<(), StorageError> {
        seal_in_place(chunk);
        let key = snapshot_key(self.zxid, self.next_index);
        self.writer.put(key, &chunk[..]).map_err(StorageError::Rocks)?;
        self.next_index += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>, header: &SnapshotHeader) -> Result<(), StorageError> {
        // The header is the file's last key, so chunks and header arrive together.
        let key = snapshot_key(header.zxid, HEADER_INDEX);
        self.writer.put(key, encode_header(header)).map_err(StorageError::Rocks)?;
        self.writer.finish().map_err(StorageError::Rocks)?;
        let storage = self.storage;
        if storage.ingest_snapshot_file(&self.path).is_err() {
            // Only a snapshot labelled with the same zxid overlaps this one.
            storage.clear_snapshot(header.zxid)?;
            storage.ingest_snapshot_file(&self.path)?;
        }
        Ok(())
    }
}

impl Drop for RocksSnapshotWriter<'_> {
    fn drop(&mut self) {
        // After a successful ingestion the file has moved into the store; after a
        // failure it is of no use.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl std::fmt::Debug for RocksStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStorage")
            .field("path", &self.db.path())
            .field("log", &self.log)
            .finish()
    }
}

fn column_options() -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    options.set_max_write_buffer_number(2);
    options
}

fn database_options(log_dir: Option<&Path>) -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Recovery stops at the first record that is not intact, which drops a torn last
    // record after a crash.
    options.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    options.set_max_total_wal_size(64 << 20);
    options.set_keep_log_file_num(2);
    options.set_max_log_file_size(1 << 20);
    options.set_max_background_jobs(2);
    if let Some(dir) = log_dir {
        options.set_wal_dir(dir);
    }
    options
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    vec![
        ColumnFamilyDescriptor::new(LOG, column_options()),
        ColumnFamilyDescriptor::new(SNAPSHOTS, column_options()),
        ColumnFamilyDescriptor::new(METADATA, column_options()),
    ]
}

/// The file in the store naming the directory of its write-ahead log (empty: inside the
/// store), so a reader that was not told the `dataLogDir` fails instead of missing the
/// entries that are only in that log.
const WAL_DIR_FILE: &str = "ZKRS-WAL-DIR";

/// A file that shows `dir` holds Apache ZooKeeper's data: a snapshot, a txn log or an
/// epoch file in `version-2/`. An empty `version-2/` (as `zkCleanup.sh` leaves behind)
/// holds nothing.
fn zookeeper_data_file(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir.join("version-2")).ok()?;
    entries.filter_map(Result::ok).map(|entry| entry.path()).find(|path| {
        path.file_name().and_then(|name| name.to_str()).is_some_and(|name| {
            name.starts_with("snapshot.")
                || name.starts_with("log.")
                || name == "acceptedEpoch"
                || name == "currentEpoch"
        })
    })
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Records where the write-ahead log of the store at `store` lives.
fn record_wal_dir(store: &Path, wal_dir: Option<&Path>) -> Result<(), StorageError> {
    let text = wal_dir.map(|dir| absolute(dir).display().to_string()).unwrap_or_default();
    std::fs::write(store.join(WAL_DIR_FILE), text)
        .map_err(|source| StorageError::Io { what: "recording the log directory", source })
}

/// Fails when a reader names another write-ahead log directory than the store's own.
fn check_wal_dir(store: &Path, wal_dir: Option<&Path>) -> Result<(), StorageError> {
    let Ok(recorded) = std::fs::read_to_string(store.join(WAL_DIR_FILE)) else {
        return Ok(());
    };
    let given = wal_dir.map(|dir| absolute(dir).display().to_string()).unwrap_or_default();
    if recorded == given {
        return Ok(());
    }
    Err(StorageError::Incompatible(match (recorded.is_empty(), given.is_empty()) {
        (false, true) => format!(
            "this store's log is in dataLogDir {}; give --data-log-dir or --config",
            Path::new(&recorded).parent().unwrap_or(Path::new(&recorded)).display()
        ),
        (true, false) => {
            "this store has no separate dataLogDir; leave --data-log-dir out".to_owned()
        }
        _ => format!("this store's log is in {recorded}, not {given}"),
    }))
}

/// Where the store of a data directory lives, and where its write-ahead log goes.
pub fn store_paths(data_dir: &Path, data_log_dir: Option<&Path>) -> (PathBuf, Option<PathBuf>) {
    (data_dir.join(STORE_DIR), data_log_dir.map(|dir| dir.join("zkrs-wal")))
}

/// Where the log of a data directory lives: `dataLogDir`, as ZooKeeper keeps its txn logs
/// there, or `dataDir` without one.
pub fn log_path(data_dir: &Path, data_log_dir: Option<&Path>) -> PathBuf {
    data_log_dir.unwrap_or(data_dir).join(LOG_DIR)
}

impl RocksStorage {
    /// Opens (or creates) the store in `data_dir`, syncing appends when `sync`.
    ///
    /// # Errors
    /// [`StorageError::Incompatible`] for a directory another program or version wrote;
    /// [`StorageError::Rocks`] when RocksDB cannot open it.
    pub fn open(
        data_dir: &Path,
        data_log_dir: Option<&Path>,
        sync: bool,
    ) -> Result<RocksStorage, StorageError> {
        for dir in std::iter::once(data_dir).chain(data_log_dir) {
            if let Some(file) = zookeeper_data_file(dir) {
                return Err(StorageError::Incompatible(format!(
                    "{} holds Apache ZooKeeper data ({}); zkrs cannot read it, use another \
                     dataDir",
                    dir.display(),
                    file.display()
                )));
            }
        }
        let (path, wal_dir) = store_paths(data_dir, data_log_dir);
        // Another dataLogDir than the store's own would leave its log behind.
        check_wal_dir(&path, wal_dir.as_deref())?;
        let db =
            DB::open_cf_descriptors(&database_options(wal_dir.as_deref()), &path, descriptors())
                .map_err(StorageError::Rocks)?;
        let scratch_dir = data_dir.join("zkrs-snapshot-tmp");
        // Table files of snapshots a crash interrupted are of no use.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        let storage = RocksStorage {
            db,
            log: SegmentLog::open(&log_path(data_dir, data_log_dir), sync)?,
            table_options: column_options(),
            scratch_dir,
            next_scratch: AtomicU64::new(0),
        };
        storage.check_format()?;
        record_wal_dir(&path, wal_dir.as_deref())?;
        Ok(storage)
    }

    /// Opens an existing store read-only, for the dump tools.
    ///
    /// # Errors
    /// As [`RocksStorage::open`], and when there is no store.
    pub fn open_read_only(
        data_dir: &Path,
        data_log_dir: Option<&Path>,
    ) -> Result<RocksStorage, StorageError> {
        let (path, wal_dir) = store_paths(data_dir, data_log_dir);
        if !path.exists() {
            return Err(StorageError::Incompatible(format!(
                "no zkrs store in {}",
                data_dir.display()
            )));
        }
        check_wal_dir(&path, wal_dir.as_deref())?;
        let mut options = database_options(wal_dir.as_deref());
        options.create_if_missing(false);
        let db = DB::open_cf_for_read_only(&options, &path, [LOG, SNAPSHOTS, METADATA], false)
            .map_err(StorageError::Rocks)?;
        let storage = RocksStorage {
            db,
            log: SegmentLog::open_read_only(&log_path(data_dir, data_log_dir))?,
            table_options: column_options(),
            scratch_dir: data_dir.join("zkrs-snapshot-tmp"),
            next_scratch: AtomicU64::new(0),
        };
        if storage.format()?.as_deref() == Some(FORMAT_LOG_IN_ROCKSDB) {
            return Err(StorageError::Incompatible(
                "this store keeps its log in RocksDB, as zkrs did before storage format 3; \
                 start `zkrs server` on it once, which moves the log into segment files"
                    .into(),
            ));
        }
        Ok(storage)
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::Backend(format!("column family {name} is missing")))
    }

    fn write_options(&self, sync: bool) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        options
    }

    fn format(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(METADATA)?, FORMAT_KEY).map_err(StorageError::Rocks)
    }

    fn set_format(&self) -> Result<(), StorageError> {
        self.db
            .put_cf_opt(self.cf(METADATA)?, FORMAT_KEY, FORMAT, &self.write_options(true))
            .map_err(StorageError::Rocks)
    }

    fn check_format(&self) -> Result<(), StorageError> {
        match self.format()? {
            Some(format) if format == FORMAT => Ok(()),
            Some(format) if format == FORMAT_LOG_IN_ROCKSDB => self.move_log_out_of_rocksdb(),
            Some(format) => Err(StorageError::Incompatible(format!(
                "the data directory was written by an incompatible zkrs ({}); this one writes {}",
                String::from_utf8_lossy(&format),
                String::from_utf8_lossy(FORMAT)
            ))),
            None => {
                let log_empty = self.log.is_empty()
                    && self.db.iterator_cf(self.cf(LOG)?, IteratorMode::Start).next().is_none();
                let snapshots_empty =
                    self.db.iterator_cf(self.cf(SNAPSHOTS)?, IteratorMode::Start).next().is_none();
                if !(log_empty && snapshots_empty) {
                    return Err(StorageError::Incompatible(
                        "the data directory has data but no format marker".into(),
                    ));
                }
                self.set_format()
            }
        }
    }

    /// Moves a format 2 store's log from its column family into segment files, then marks
    /// the store format 3. A crash part way leaves format 2 and the entries already moved,
    /// which the next open skips.
    fn move_log_out_of_rocksdb(&self) -> Result<(), StorageError> {
        let family = self.cf(LOG)?;
        let mut moving = Vec::with_capacity(MOVED_PER_APPEND);
        let mut moved = 0u64;
        for item in self.db.iterator_cf(family, IteratorMode::Start) {
            let (key, value) = item.map_err(StorageError::Rocks)?;
            let zxid = zxid_of_log_key(&key)
                .ok_or_else(|| StorageError::Corrupt("a log key is not a zxid".into()))?;
            if zxid <= self.log.last_logged_zxid() {
                continue;
            }
            moving.push(LogEntry { zxid, value: Bytes::from(value.into_vec()) });
            if moving.len() == MOVED_PER_APPEND {
                self.log.append(&moving)?;
                moved += moving.len() as u64;
                moving.clear();
            }
        }
        self.log.append(&moving)?;
        moved += moving.len() as u64;
        self.set_format()?;
        let (start, end) = (log_key(Zxid::ZERO), [0xffu8; 9]);
        self.delete_range(LOG, &start, &end)?;
        tracing::info!(entries = moved, "moved the log out of RocksDB into segment files");
        Ok(())
    }

    /// Moves a snapshot's table file into the `snapshots` family, failing rather than let
    /// RocksDB give the file a sequence number of its own (as it does to a file that
    /// overlaps what the family holds). Such a number has no record in the write-ahead
    /// log; recovery through a recycled log file can take the gap for lost records and
    /// drop the log files after it.
    fn ingest_snapshot_file(&self, path: &Path) -> Result<(), StorageError> {
        let mut options = IngestExternalFileOptions::default();
        options.set_move_files(true);
        options.set_allow_global_seqno(false);
        options.set_allow_blocking_flush(false);
        let family = self.cf(SNAPSHOTS)?;
        self.db
            .ingest_external_file_cf_opts(family, &options, vec![path])
            .map_err(StorageError::Rocks)
    }

    /// Removes every trace of the snapshot labelled `zxid`, its deletion included: flushed
    /// out of the memtable and compacted away, so a new snapshot with that label overlaps
    /// nothing.
    fn clear_snapshot(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.delete_snapshot(zxid)?;
        let family = self.cf(SNAPSHOTS)?;
        self.db.flush_cf(family).map_err(StorageError::Rocks)?;
        let (start, end) = (snapshot_key(zxid, 0), snapshot_key(zxid.next(), 0));
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db.compact_range_cf_opt(family, Some(start), Some(end), &options);
        Ok(())
    }

    /// Deletes a key range: table files below level 0 wholly inside it are dropped at once
    /// (no compaction needed to get their space back), the rest gets a range tombstone.
    fn delete_range(&self, family: &str, start: &[u8], end: &[u8]) -> Result<(), StorageError> {
        let cf = self.cf(family)?;
        self.db.delete_file_in_range_cf(cf, start, end).map_err(StorageError::Rocks)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, start, end);
        self.db.write_opt(batch, &self.write_options(false)).map_err(StorageError::Rocks)
    }
}

impl Storage for RocksStorage {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.log.append(entries)
    }

    fn last_logged_zxid(&self) -> Zxid {
        self.log.last_logged_zxid()
    }

    fn read_log(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError> {
        self.log.read(after, visit)
    }

    fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.log.truncate_after(zxid)
    }

    fn purge_log_through(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.log.purge_through(zxid)
    }

    fn begin_snapshot(&self, zxid: Zxid) -> Result<Box<dyn SnapshotWriter + '_>, StorageError> {
        std::fs::create_dir_all(&self.scratch_dir).map_err(|source| StorageError::Io {
            what: "creating the snapshot scratch directory",
            source,
        })?;
        let scratch = self.next_scratch.fetch_add(1, Ordering::Relaxed);
        let path = self.scratch_dir.join(format!("snapshot-{zxid:016x}-{scratch}.sst"));
        let writer = SstFileWriter::create(&self.table_options);
        writer.open(&path).map_err(StorageError::Rocks)?;
        Ok(Box::new(RocksSnapshotWriter { storage: self, writer, path, zxid, next_index: 0 }))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StorageError> {
        // A header is its snapshot's last key: hop from header to header backwards
        // instead of reading (and decompressing) every chunk in between.
        let mut headers = Vec::new();
        let mut iter = self.db.raw_iterator_cf(self.cf(SNAPSHOTS)?);
        iter.seek_to_last();
        while let Some((key, value)) = iter.item() {
            let Some((zxid, index)) = parse_snapshot_key(key) else {
                break;
            };
            if index == HEADER_INDEX {
                match decode_header(&Bytes::copy_from_slice(value)) {
                    Ok(header) => headers.push(header),
                    // A later zkrs's snapshot may hold writes the log no longer has:
                    // recovering from an older one would lose them.
                    Err(err @ StorageError::Incompatible(_)) => return Err(err),
                    Err(err) => {
                        tracing::warn!(%zxid, cause = %err, "skipping a damaged snapshot header")
                    }
                }
            }
            if zxid <= Zxid::ZERO {
                break;
            }
            iter.seek_for_prev(snapshot_key(zxid - 1, HEADER_INDEX));
        }
        iter.status().map_err(StorageError::Rocks)?;
        Ok(headers)
    }

    fn read_snapshot(
        &self,
        header: &SnapshotHeader,
        visit: &mut dyn FnMut(usize, Bytes) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let snapshots = self.cf(SNAPSHOTS)?;
        let start = snapshot_key(header.zxid, 0);
        let mut expected = 0u32;
        // A snapshot is read once, at recovery: kept in RocksDB's block cache its blocks
        // would only hold memory (32 MiB, the cache's default size) the tree needs.
        let mut once = ReadOptions::default();
        once.fill_cache(false);
        let from = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_cf_opt(snapshots, once, from) {
            let (key, value) = item.map_err(StorageError::Rocks)?;
            match parse_snapshot_key(&key) {
                Some((zxid, index))
                    if zxid == header.zxid && index == expected && index < header.chunks =>
                {
                    let chunk = unseal(&Bytes::from(value.into_vec())).ok_or_else(|| {
                        StorageError::Corrupt(format!(
                            "snapshot 0x{:x} chunk {index} fails its checksum",
                            header.zxid
                        ))
                    })?;
                    visit(index as usize, chunk)?;
                    expected += 1;
                }
                _ => break,
            }
        }
        if expected != header.chunks {
            return Err(StorageError::Corrupt(format!(
                "snapshot 0x{:x} has {expected} of its {} chunks",
                header.zxid, header.chunks
            )));
        }
        Ok(())
    }

    fn delete_snapshot(&self, zxid: Zxid) -> Result<(), StorageError> {
        let (start, end) = (snapshot_key(zxid, 0), snapshot_key(zxid.next(), 0));
        self.delete_range(SNAPSHOTS, &start, &end)
    }

    fn epochs(&self) -> Result<Epochs, StorageError> {
        match self.db.get_cf(self.cf(METADATA)?, EPOCHS_KEY).map_err(StorageError::Rocks)? {
            None => Ok(Epochs::default()),
            Some(value) => {
                let payload =
                    unseal(&Bytes::from(value)).filter(|payload| payload.len() == 8).ok_or_else(
                        || StorageError::Corrupt("the epochs record fails its checksum".into()),
                    )?;
                let accepted = u32::from_be_bytes(payload[..4].try_into().unwrap_or_default());
                let current = u32::from_be_bytes(payload[4..].try_into().unwrap_or_default());
                Ok(Epochs { accepted, current })
            }
        }
    }

    fn set_epochs(&self, epochs: Epochs) -> Result<(), StorageError> {
        let mut payload = [0u8; 8];
        payload[..4].copy_from_slice(&epochs.accepted.to_be_bytes());
        payload[4..].copy_from_slice(&epochs.current.to_be_bytes());
        self.db
            .put_cf_opt(self.cf(METADATA)?, EPOCHS_KEY, seal(&payload), &self.write_options(true))
            .map_err(StorageError::Rocks)
    }

    fn epoch_ends(&self) -> Result<Vec<Zxid>, StorageError> {
        match self.db.get_cf(self.cf(METADATA)?, EPOCH_ENDS_KEY).map_err(StorageError::Rocks)? {
            None => Ok(Vec::new()),
            Some(value) => {
                let payload = unseal(&Bytes::from(value))
                    .filter(|payload| payload.len() % 8 == 0)
                    .ok_or_else(|| {
                        StorageError::Corrupt("the epoch ends record fails its checksum".into())
                    })?;
                Ok(payload
                    .chunks_exact(8)
                    .map(|end| Zxid::new(i64::from_be_bytes(end.try_into().unwrap_or_default())))
                    .collect())
            }
        }
    }

    fn set_epoch_ends(&self, ends: &[Zxid]) -> Result<(), StorageError> {
        let payload: Vec<u8> = ends.iter().flat_map(|end| end.raw().to_be_bytes()).collect();
        self.db
            .put_cf_opt(
                self.cf(METADATA)?,
                EPOCH_ENDS_KEY,
                seal(&payload),
                &self.write_options(true),
            )
            .map_err(StorageError::Rocks)
    }
}

#[cfg(test)]
#[path = "rocks_test.rs"]
mod tests;
