use bytes::{Bytes, BytesMut};
use jute::records::{CreateTxn, TxnHeader};
use jute::OpCode;

use super::*;
use crate::storage::record::{decode_entry, encode_entry, encode_header_as};
use crate::txn::{Txn, TxnBody};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkrs-rocks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn entry(zxid: Zxid) -> LogEntry {
    encode_entry(&Txn {
        header: TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid: zxid.raw(),
            time: 0,
            op_type: OpCode::Create.as_i32(),
        },
        body: TxnBody::Create(CreateTxn {
            path: format!("/n{zxid}"),
            data: None,
            acl: Vec::new(),
            ephemeral: false,
            parent_cversion: 1,
        }),
    })
}

fn zxids(storage: &RocksStorage, after: Zxid) -> Vec<Zxid> {
    let mut seen = Vec::new();
    storage
        .read_log(after, &mut |entry| {
            decode_entry(&entry).expect("valid");
            seen.push(entry.zxid);
            true
        })
        .expect("readable");
    seen
}

#[test]
fn the_log_survives_reopening_and_obeys_truncate_and_purge() {
    let dir = scratch("log");
    {
        let storage = RocksStorage::open(&dir, None, true).expect("open");
        storage
            .append(&[entry(Zxid::new(1)), entry(Zxid::new(2)), entry(Zxid::new(3))])
            .expect("append");
        storage.append(&[entry(Zxid::new(4))]).expect("append");
        assert!(matches!(
            storage.append(&[entry(Zxid::new(4))]),
            Err(StorageError::OutOfOrder { .. })
        ));
    }
    let storage = RocksStorage::open(&dir, None, true).expect("reopen");
    assert_eq!(storage.last_logged_zxid(), Zxid::new(4));
    assert_eq!(
        zxids(&storage, Zxid::ZERO),
        [Zxid::new(1), Zxid::new(2), Zxid::new(3), Zxid::new(4)]
    );
    assert_eq!(zxids(&storage, Zxid::new(2)), [Zxid::new(3), Zxid::new(4)]);
    storage.truncate_after(Zxid::new(3)).expect("truncate");
    assert_eq!(
        (zxids(&storage, Zxid::ZERO), storage.last_logged_zxid()),
        (vec![Zxid::new(1), Zxid::new(2), Zxid::new(3)], Zxid::new(3))
    );
    storage.append(&[entry(Zxid::new(4))]).expect("append after truncate");
    storage.purge_log_through(Zxid::new(4)).expect("purge");
    assert_eq!(zxids(&storage, Zxid::ZERO), []);
    storage.append(&[entry(Zxid::new(5))]).expect("append after purge");
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_chunks(storage: &RocksStorage, header: &SnapshotHeader) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    storage
        .read_snapshot(header, &mut |_, chunk| {
            chunks.push(chunk);
            Ok(())
        })
        .expect("read");
    chunks
}

/// Writes a snapshot labelled `zxid` of `chunks` and returns its header.
fn write_snapshot_at(storage: &RocksStorage, zxid: Zxid, chunks: &[&str]) -> SnapshotHeader {
    let header = SnapshotHeader {
        zxid,
        chunks: chunks.len() as u32,
        nodes: 0,
        sessions: 0,
        bytes: 0,
        created_ms: chunks.len() as i64,
    };
    let mut writer = storage.begin_snapshot(zxid).expect("begin");
    for chunk in chunks {
        writer.put(&mut BytesMut::from(*chunk)).expect("chunk");
    }
    writer.finish(&header).expect("finish");
    header
}

#[test]
fn snapshots_appear_whole_and_survive_reopening() {
    let dir = scratch("snapshots");
    let header = SnapshotHeader {
        zxid: Zxid::new(5),
        chunks: 3,
        nodes: 1,
        sessions: 0,
        bytes: 24,
        created_ms: 7,
    };
    let written = [Bytes::from("chunk 0"), Bytes::from("chunk 1"), Bytes::from("chunk 2")];
    {
        let storage = RocksStorage::open(&dir, None, false).expect("open");
        let mut writer = storage.begin_snapshot(Zxid::new(5)).expect("begin");
        for chunk in &written {
            writer.put(&mut BytesMut::from(&chunk[..])).expect("chunk");
        }
        assert!(storage.snapshots().expect("list").is_empty(), "not visible before finish");
        writer.finish(&header).expect("finish");
        let mut abandoned = storage.begin_snapshot(Zxid::new(9)).expect("begin");
        abandoned.put(&mut BytesMut::from("never finished")).expect("chunk");
        drop(abandoned);
        assert_eq!(storage.snapshots().expect("list"), [header]);
    }
    let scratch_files = std::fs::read_dir(dir.join("zkrs-snapshot-tmp")).map_or(0, Iterator::count);
    assert_eq!(scratch_files, 0, "an abandoned snapshot leaves no file behind");
    let storage = RocksStorage::open(&dir, None, false).expect("reopen");
    assert_eq!(storage.snapshots().expect("list"), [header]);
    assert_eq!(read_chunks(&storage, &header), written);
    let short = SnapshotHeader { chunks: 4, ..header };
    assert!(
        storage.read_snapshot(&short, &mut |_, _| Ok(())).is_err(),
        "a missing chunk is corruption"
    );
    storage.delete_snapshot(Zxid::new(5)).expect("delete");
    assert!(storage.snapshots().expect("list").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn newer_snapshots_list_first_and_deleting_one_keeps_the_others() {
    let dir = scratch("snapshot-order");
    let storage = RocksStorage::open(&dir, None, false).expect("open");
    let mut headers = Vec::new();
    for zxid in [3, 0x1_0000_0002, 8] {
        headers.push(write_snapshot_at(&storage, Zxid::new(zxid), &[&format!("state at {zxid}")]));
    }
    let listed: Vec<Zxid> = storage.snapshots().expect("list").iter().map(|h| h.zxid).collect();
    assert_eq!(listed, [Zxid::new(0x1_0000_0002), Zxid::new(8), Zxid::new(3)]);
    storage.delete_snapshot(Zxid::new(8)).expect("delete");
    let listed: Vec<Zxid> = storage.snapshots().expect("list").iter().map(|h| h.zxid).collect();
    assert_eq!(listed, [Zxid::new(0x1_0000_0002), Zxid::new(3)]);
    assert_eq!(read_chunks(&storage, &headers[0]), [Bytes::from("state at 3")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn epochs_persist() {
    let dir = scratch("epochs");
    {
        let storage = RocksStorage::open(&dir, None, true).expect("open");
        assert_eq!(storage.epochs().expect("read"), Epochs::default());
        assert_eq!(storage.epoch_ends().expect("read"), Vec::<Zxid>::new());
        storage.set_epochs(Epochs { accepted: 3, current: 2 }).expect("write");
        storage
            .set_epoch_ends(&[Zxid::new(0x1_0000_0007), Zxid::new(0x2_0000_0001)])
            .expect("write");
    }
    let storage = RocksStorage::open(&dir, None, true).expect("reopen");
    assert_eq!(storage.epochs().expect("read"), Epochs { accepted: 3, current: 2 });
    assert_eq!(
        storage.epoch_ends().expect("read"),
        [Zxid::new(0x1_0000_0007), Zxid::new(0x2_0000_0001)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn foreign_and_incompatible_directories_are_refused() {
    let dir = scratch("zookeeper");
    std::fs::create_dir_all(dir.join("version-2")).expect("mkdir");
    std::fs::write(dir.join("version-2/snapshot.0"), b"").expect("snapshot");
    assert!(matches!(RocksStorage::open(&dir, None, true), Err(StorageError::Incompatible(_))));
    let log_dir = scratch("zookeeper-log");
    std::fs::create_dir_all(log_dir.join("version-2")).expect("mkdir");
    std::fs::write(log_dir.join("version-2/log.1"), b"").expect("log");
    let clean = scratch("clean");
    assert!(matches!(
        RocksStorage::open(&clean, Some(&log_dir), true),
        Err(StorageError::Incompatible(_))
    ));
    let dir = scratch("format");
    {
        let storage = RocksStorage::open(&dir, None, true).expect("open");
        let metadata = storage.cf(METADATA).expect("cf");
        storage.db.put_cf(metadata, FORMAT_KEY, b"zkrs-storage-99").expect("overwrite");
    }
    let err = RocksStorage::open(&dir, None, true).expect_err("refused");
    assert!(err.to_string().contains("incompatible"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn issue_13_an_empty_version_2_left_by_zk_cleanup_is_not_zookeeper_data() {
    let dir = scratch("cleaned");
    std::fs::create_dir_all(dir.join("version-2")).expect("mkdir");
    assert!(RocksStorage::open(&dir, None, true).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn issue_13_a_reader_that_forgets_the_data_log_dir_is_refused() {
    let dir = scratch("walled");
    let log_dir = scratch("walled-log");
    drop(RocksStorage::open(&dir, Some(&log_dir), true).expect("open"));
    let err = RocksStorage::open_read_only(&dir, None).expect_err("refused");
    assert!(err.to_string().contains("dataLogDir"), "{err}");
    assert!(RocksStorage::open_read_only(&dir, Some(&log_dir)).is_ok());
    let plain = scratch("unwalled");
    drop(RocksStorage::open(&plain, None, true).expect("open"));
    assert!(RocksStorage::open_read_only(&plain, Some(&log_dir)).is_err());
    assert!(RocksStorage::open_read_only(&plain, None).is_ok());
    for dir in [dir, log_dir, plain] {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_server_given_another_data_log_dir_than_its_stores_is_refused() {
    let dir = scratch("moved");
    let log_dir = scratch("moved-log");
    {
        let storage = RocksStorage::open(&dir, Some(&log_dir), true).expect("open");
        storage.append(&[entry(Zxid::new(1))]).expect("append");
    }
    let err = RocksStorage::open(&dir, None, true).expect_err("the log would be left behind");
    assert!(err.to_string().contains("dataLogDir"), "{err}");
    let storage = RocksStorage::open(&dir, Some(&log_dir), true).expect("its own dataLogDir");
    assert_eq!(zxids(&storage, Zxid::ZERO), [Zxid::new(1)]);
    assert!(log_path(&dir, Some(&log_dir)).starts_with(&log_dir));
    for dir in [dir, log_dir] {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Makes `dir` a store as zkrs wrote it before storage format 3: the log in RocksDB.
fn write_format_2_store(dir: &Path, zxids: std::ops::RangeInclusive<i64>) {
    let (path, _) = store_paths(dir, None);
    let db = DB::open_cf_descriptors(&database_options(None), &path, descriptors()).expect("db");
    let metadata = db.cf_handle(METADATA).expect("cf");
    db.put_cf(metadata, FORMAT_KEY, FORMAT_LOG_IN_ROCKSDB).expect("format");
    let log = db.cf_handle(LOG).expect("cf");
    for zxid in zxids {
        db.put_cf(log, log_key(Zxid::new(zxid)), &entry(Zxid::new(zxid)).value).expect("entry");
    }
}

#[test]
fn a_store_with_its_log_in_rocksdb_has_it_moved_into_segments_once() {
    let dir = scratch("format-2");
    write_format_2_store(&dir, 1..=25_000);
    let err = RocksStorage::open_read_only(&dir, None).expect_err("not moved yet");
    assert!(err.to_string().contains("start `zkrs server` on it once"), "{err}");
    // A move a crash interrupted: the first entries are in segments already.
    let moved: Vec<LogEntry> = (1..=10).map(|zxid| entry(Zxid::new(zxid))).collect();
    SegmentLog::open(&log_path(&dir, None), true).expect("log").append(&moved).expect("moved");
    {
        let storage = RocksStorage::open(&dir, None, true).expect("open moves the log");
        assert_eq!(storage.last_logged_zxid(), Zxid::new(25_000));
        assert_eq!(storage.format().expect("format").as_deref(), Some(FORMAT));
        let family = storage.cf(LOG).expect("cf");
        assert!(storage.db.iterator_cf(family, IteratorMode::Start).next().is_none());
        storage.append(&[entry(Zxid::new(25_001))]).expect("append");
    }
    let storage = RocksStorage::open_read_only(&dir, None).expect("moved");
    assert_eq!(zxids(&storage, Zxid::ZERO), (1..=25_001).map(Zxid::new).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sequence numbers after `after` that records of the write-ahead log carry.
fn logged_sequence_numbers(storage: &RocksStorage, after: u64) -> Vec<u64> {
    let mut numbers = Vec::new();
    for update in storage.db.get_updates_since(after).expect("log iterator") {
        let (first, batch) = update.expect("log record");
        numbers.extend(first..first + batch.len() as u64);
    }
    numbers
}

#[test]
fn a_snapshot_written_again_at_its_zxid_replaces_it_without_a_gap_in_the_log() {
    let dir = scratch("again");
    let storage = RocksStorage::open(&dir, None, true).expect("open");
    storage
        .append(&[entry(Zxid::new(1)), entry(Zxid::new(2)), entry(Zxid::new(3))])
        .expect("append");
    write_snapshot_at(&storage, Zxid::new(3), &["old 0", "old 1", "old 2"]);
    let before = storage.db.latest_sequence_number();
    let header = write_snapshot_at(&storage, Zxid::new(3), &["new 0", "new 1"]);
    storage.append(&[entry(Zxid::new(4))]).expect("append");
    // A sequence number RocksDB hands out without a log record (an ingested file that
    // overlaps the store gets one) is a gap that recovery through a recycled log file
    // can take for lost records, dropping the log files after it.
    let after = storage.db.latest_sequence_number();
    assert_eq!(logged_sequence_numbers(&storage, before), (before + 1..=after).collect::<Vec<_>>());
    assert_eq!(storage.snapshots().expect("list"), [header]);
    assert_eq!(read_chunks(&storage, &header), [Bytes::from("new 0"), Bytes::from("new 1")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_snapshot_of_a_later_format_is_refused_not_skipped() {
    let dir = scratch("later-snapshot");
    let storage = RocksStorage::open(&dir, None, true).expect("open");
    let header = write_snapshot_at(&storage, Zxid::new(7), &["state"]);
    assert_eq!(storage.snapshots().expect("read"), [header]);
    let family = storage.cf(SNAPSHOTS).expect("cf");
    let key = snapshot_key(Zxid::new(9), HEADER_INDEX);
    storage.db.put_cf(family, key, encode_header_as(&header, 99)).expect("a later header");
    let err = storage.snapshots().expect_err("refused");
    assert!(matches!(err, StorageError::Incompatible(_)), "{err}");
    drop(storage);
    let _ = std::fs::remove_dir_all(&dir);
}
