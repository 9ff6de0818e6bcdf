//! [`Storage`] on RocksDB: column families `log`, `snapshots` and `metadata` in
//! `dataDir/zkrs`, with RocksDB's write-ahead log in `dataLogDir` when one is set.
//!
//! Each append is one `WriteBatch`, synced when `forceSync` is on: the group commit.
//! RocksDB's own recovery keeps a consistent prefix of synced batches after a crash; the
//! checksums in [`record`] catch whatever it cannot (bit rot, a damaged file).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use rocksdb::{
    BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, DBRecoveryMode, Direction, FlushOptions, IngestExternalFileOptions,
    IteratorMode, Options, SstFileWriter, WriteBatch, WriteOptions, DB,
};

use crate::storage::record::{
    decode_header, encode_header, log_key, parse_snapshot_key, seal, seal_in_place, snapshot_key,
    unseal, zxid_of_log_key, HEADER_INDEX,
};
use crate::storage::{Epochs, LogEntry, SnapshotHeader, SnapshotWriter, Storage, StorageError};
use crate::txn::Zxid;

const LOG: &str = "log";
const SNAPSHOTS: &str = "snapshots";
const METADATA: &str = "metadata";

const FORMAT_KEY: &[u8] = b"format";
// 2: checksums follow their payload; node chunks end with their ACL table.
const FORMAT: &[u8] = b"zkrs-storage-2";
const EPOCHS_KEY: &[u8] = b"epochs";
const EPOCH_ENDS_KEY: &[u8] = b"epoch_ends";
/// Deleted (never written) to give a memtable an entry, so that a flush switches log files.
const PRIMER_KEY: &[u8] = b"log-primer";

/// Each column family's memtable; a log file covers about this much before it is switched.
const WRITE_BUFFER_BYTES: usize = 16 << 20;
/// The size of the log files prepared at open for RocksDB to recycle.
const PRIMED_LOG_BYTES: usize = WRITE_BUFFER_BYTES;

/// The subdirectory of `dataDir` that holds the store.
pub const STORE_DIR: &str = "zkrs";

/// The RocksDB-backed store.
pub struct RocksStorage {
    db: DB,
    sync: bool,
    last_logged_zxid: AtomicI64,
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
            .field("sync", &self.sync)
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
    // Recycled log files are overwritten in place, so a sync does not also have to commit
    // a new file size: one I/O per fsync instead of two (see `prime_log_recycling`).
    // Recovery stops at the first record that is not intact, which also drops a torn last
    // record after a crash.
    options.set_recycle_log_file_num(4);
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

/// The log is written once and deleted a few snapshots later (`purge_log_through`).
/// RocksDB deletes whole files in a range only below level 0, so purged entries flushed
/// into level 0 go when a compaction moves level 0 down, which the purge's range
/// tombstone lets drop them; the live entries it rewrites once, and files in lower
/// levels that a later purge covers whole are deleted without a rewrite. A high trigger
/// makes those compactions rare: in a set load at 120,000 writes a second, about one in
/// 40 flushes.
fn log_options() -> Options {
    let mut options = column_options();
    options.set_level_zero_file_num_compaction_trigger(32);
    options.set_level_zero_slowdown_writes_trigger(64);
    options.set_level_zero_stop_writes_trigger(96);
    options
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    vec![
        ColumnFamilyDescriptor::new(LOG, log_options()),
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
        let db =
            DB::open_cf_descriptors(&database_options(wal_dir.as_deref()), &path, descriptors())
                .map_err(StorageError::Rocks)?;
        let scratch_dir = data_dir.join("zkrs-snapshot-tmp");
        // Table files of snapshots a crash interrupted are of no use.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        let storage = RocksStorage {
            db,
            sync,
            last_logged_zxid: AtomicI64::new(0),
            table_options: column_options(),
            scratch_dir,
            next_scratch: AtomicU64::new(0),
        };
        storage.check_format()?;
        record_wal_dir(&path, wal_dir.as_deref())?;
        let last = storage.read_last_logged_zxid()?;
        storage.last_logged_zxid.store(last.raw(), Ordering::Release);
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
            sync: false,
            last_logged_zxid: AtomicI64::new(0),
            table_options: column_options(),
            scratch_dir: data_dir.join("zkrs-snapshot-tmp"),
            next_scratch: AtomicU64::new(0),
        };
        let last = storage.read_last_logged_zxid()?;
        storage.last_logged_zxid.store(last.raw(), Ordering::Release);
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

    fn check_format(&self) -> Result<(), StorageError> {
        let metadata = self.cf(METADATA)?;
        match self.db.get_cf(metadata, FORMAT_KEY).map_err(StorageError::Rocks)? {
            Some(format) if format == FORMAT => Ok(()),
            Some(format) => Err(StorageError::Incompatible(format!(
                "the data directory was written by an incompatible zkrs ({}); this one writes {}",
                String::from_utf8_lossy(&format),
                String::from_utf8_lossy(FORMAT)
            ))),
            None => {
                let log_empty =
                    self.db.iterator_cf(self.cf(LOG)?, IteratorMode::Start).next().is_none();
                let snapshots_empty =
                    self.db.iterator_cf(self.cf(SNAPSHOTS)?, IteratorMode::Start).next().is_none();
                if !(log_empty && snapshots_empty) {
                    return Err(StorageError::Incompatible(
                        "the data directory has data but no format marker".into(),
                    ));
                }
                self.db
                    .put_cf_opt(metadata, FORMAT_KEY, FORMAT, &self.write_options(true))
                    .map_err(StorageError::Rocks)
            }
        }
    }

    /// Leaves RocksDB writing into a log file that already has its blocks; nothing to do
    /// when appends are not synced. The server calls it once after opening; it only makes
    /// syncs cheaper, so a failure (a full disk) is a warning, not a reason not to start.
    ///
    /// A sync that extends a file must also commit its new size (on ext4, a journal
    /// commit: about 190 us here against 130 us for a sync of blocks the file already has,
    /// which is what ZooKeeper gets by padding its log files). RocksDB overwrites the log
    /// files it recycles in place, but recycles only the files this process switched away
    /// from, and switches only when a memtable fills: left alone, a server appends the
    /// first 16 MiB of log after each start. So: log a memtable's worth of filler
    /// (log-only data, which replay skips) and flush, so that RocksDB switches to a new
    /// file and recycles the filled one; then flush once more to switch into it. The
    /// second file stays small and fills as the first recycled one after it.
    ///
    /// # Errors
    /// If RocksDB cannot write or flush.
    pub fn prime_log_recycling(&self) -> Result<(), StorageError> {
        if !self.sync {
            return Ok(());
        }
        let metadata = self.cf(METADATA)?;
        let families = [self.cf(LOG)?, self.cf(SNAPSHOTS)?, metadata];
        for filler_bytes in [PRIMED_LOG_BYTES, 0] {
            let mut batch = WriteBatch::default();
            if filler_bytes > 0 {
                batch.put_log_data(vec![0u8; filler_bytes]);
            }
            // A memtable entry, without which the flush would not switch log files.
            batch.delete_cf(metadata, PRIMER_KEY);
            self.db.write_opt(batch, &self.write_options(true)).map_err(StorageError::Rocks)?;
            self.db
                .flush_cfs_opt(&families, &FlushOptions::default())
                .map_err(StorageError::Rocks)?;
        }
        Ok(())
    }

    /// Moves a snapshot's table file into the `snapshots` family, failing rather than let
    /// RocksDB give the file a sequence number of its own (as it does to a file that
    /// overlaps what the family holds). Such a number has no record in the write-ahead
    /// log; recovery through a recycled log file (see `prime_log_recycling`) can take the
    /// gap for lost records and drop the log files after it.
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

    fn read_last_logged_zxid(&self) -> Result<Zxid, StorageError> {
        match self.db.iterator_cf(self.cf(LOG)?, IteratorMode::End).next() {
            None => Ok(Zxid::ZERO),
            Some(item) => {
                let (key, _) = item.map_err(StorageError::Rocks)?;
                zxid_of_log_key(&key)
                    .ok_or_else(|| StorageError::Corrupt("a log key is not a zxid".into()))
            }
        }
    }
}

impl Storage for RocksStorage {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let last = self.last_logged_zxid();
        if first.zxid <= last {
            return Err(StorageError::OutOfOrder { zxid: first.zxid, last });
        }
        let log = self.cf(LOG)?;
        let mut batch = WriteBatch::default();
        let mut previous = last;
        for entry in entries {
            if entry.zxid <= previous {
                return Err(StorageError::OutOfOrder { zxid: entry.zxid, last: previous });
            }
            previous = entry.zxid;
            batch.put_cf(log, log_key(entry.zxid), &entry.value);
        }
        self.db.write_opt(batch, &self.write_options(self.sync)).map_err(StorageError::Rocks)?;
        self.last_logged_zxid.store(previous.raw(), Ordering::Release);
        Ok(())
    }

    fn last_logged_zxid(&self) -> Zxid {
        Zxid::new(self.last_logged_zxid.load(Ordering::Acquire))
    }

    fn read_log(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError> {
        let start = log_key(after.next());
        for item in
            self.db.iterator_cf(self.cf(LOG)?, IteratorMode::From(&start, Direction::Forward))
        {
            let (key, value) = item.map_err(StorageError::Rocks)?;
            let zxid = zxid_of_log_key(&key)
                .ok_or_else(|| StorageError::Corrupt("a log key is not a zxid".into()))?;
            if !visit(LogEntry { zxid, value: Bytes::from(value.into_vec()) }) {
                break;
            }
        }
        Ok(())
    }

    fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(LOG)?, &log_key(zxid.next())[..], &[0xffu8; 9][..]);
        self.db.write_opt(batch, &self.write_options(true)).map_err(StorageError::Rocks)?;
        let last = self.read_last_logged_zxid()?;
        self.last_logged_zxid.store(last.raw(), Ordering::Release);
        Ok(())
    }

    fn purge_log_through(&self, zxid: Zxid) -> Result<(), StorageError> {
        let (start, end) = (log_key(Zxid::ZERO), log_key(zxid.next()));
        self.delete_range(LOG, &start, &end)
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
        for item in self.db.iterator_cf(snapshots, IteratorMode::From(&start, Direction::Forward)) {
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
