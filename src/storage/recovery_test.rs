use bytes::Bytes;
use jute::records::{CloseSessionTxn, CreateSessionTxn, CreateTxn, TxnHeader};
use jute::OpCode;

use super::*;
use crate::storage::memory::MemoryStorage;
use crate::storage::record::encode_entry;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::snapshot::write_snapshot;
use crate::txn::{Txn, TxnBody};

fn txn(zxid: Zxid, client: i64, op_type: OpCode, body: TxnBody) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: client,
            cxid: 0,
            zxid: zxid.raw(),
            time: zxid.raw(),
            op_type: op_type.as_i32(),
        },
        body,
    }
}

fn create(zxid: Zxid, path: &str, ephemeral_owner: Option<i64>) -> Txn {
    let body = TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::from_static(b"d")),
        acl: vec![world_anyone(perms::ALL)],
        ephemeral: ephemeral_owner.is_some(),
        parent_cversion: -1,
    });
    txn(zxid, ephemeral_owner.unwrap_or(0), OpCode::Create, body)
}

fn session(zxid: Zxid, id: i64) -> Txn {
    txn(
        zxid,
        id,
        OpCode::CreateSession,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 4000 }),
    )
}

fn append(storage: &MemoryStorage, txns: &[Txn]) {
    let entries: Vec<_> = txns.iter().map(encode_entry).collect();
    storage.append(&entries).expect("appended");
}

fn snapshot(
    storage: &MemoryStorage,
    database: &Database,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
) {
    let mut writer = storage.begin_snapshot(zxid).expect("begun");
    let summary = write_snapshot(database.tree(), zxid, sessions, |chunk| writer.put(chunk))
        .expect("written");
    let header = SnapshotHeader {
        zxid,
        chunks: summary.chunks as u32,
        nodes: summary.nodes,
        sessions: summary.sessions as u32,
        bytes: summary.bytes,
        created_ms: 0,
    };
    writer.finish(&header).expect("finished");
}

#[test]
fn an_empty_store_recovers_the_initial_tree() {
    let recovered = recover(&MemoryStorage::default(), false, Replay::Apply).expect("recovers");
    assert_eq!((recovered.last_zxid, recovered.replayed), (Zxid::ZERO, 0));
    assert_eq!(recovered.database.tree().node_count(), 4);
    assert!(recovered.snapshot.is_none());
}

#[test]
fn the_log_alone_rebuilds_nodes_and_sessions() {
    let storage = MemoryStorage::default();
    append(
        &storage,
        &[
            session(Zxid::new(1), 0x10),
            session(Zxid::new(2), 0x11),
            create(Zxid::new(3), "/a", None),
            create(Zxid::new(4), "/a/e", Some(0x10)),
        ],
    );
    append(
        &storage,
        &[txn(
            Zxid::new(5),
            0x11,
            OpCode::CloseSession,
            TxnBody::CloseSession(CloseSessionTxn::default()),
        )],
    );
    let recovered = recover(&storage, false, Replay::Apply).expect("recovers");
    assert_eq!(recovered.last_zxid, Zxid::new(5));
    assert_eq!(recovered.sessions, [(SessionId::new(0x10), 4000)]);
    assert_eq!(recovered.database.tree().ephemerals(SessionId::new(0x10)), ["/a/e"]);
    assert_eq!(recovered.database.last_applied_zxid(), Zxid::new(5));
}

/// A log of four txns with a snapshot after the second.
fn snapshot_within_the_log() -> MemoryStorage {
    let storage = MemoryStorage::default();
    let database = Database::new(false);
    let log = [
        session(Zxid::new(1), 0x10),
        create(Zxid::new(2), "/a", None),
        create(Zxid::new(3), "/b", None),
        create(Zxid::new(4), "/a/c", None),
    ];
    append(&storage, &log);
    for entry in &log[..2] {
        database.apply(entry, &mut |_, _| {});
    }
    snapshot(&storage, &database, Zxid::new(2), &[(SessionId::new(0x10), 4000)]);
    storage
}

#[test]
fn snapshot_plus_log_after_it() {
    let storage = snapshot_within_the_log();
    storage.purge_log_through(Zxid::new(2)).expect("purged");
    let recovered = recover(&storage, false, Replay::Apply).expect("recovers");
    assert_eq!(recovered.snapshot.map(|header| header.zxid), Some(Zxid::new(2)));
    assert_eq!(recovered.replayed, 2);
    assert!(recovered.database.tree().exists("/a/c"));
    assert!(recovered.database.tree().exists("/b"));
    assert_eq!(recovered.sessions, [(SessionId::new(0x10), 4000)]);
}

#[test]
fn collecting_leaves_the_log_after_the_snapshot_unapplied() {
    let storage = snapshot_within_the_log();
    let recovered = recover(&storage, false, Replay::Collect).expect("recovers");
    assert_eq!(recovered.database.last_applied_zxid(), Zxid::new(2));
    assert!(!recovered.database.tree().exists("/b"));
    let zxids: Vec<Zxid> = recovered.unapplied.iter().map(|entry| entry.zxid).collect();
    assert_eq!(zxids, [Zxid::new(3), Zxid::new(4)]);
    assert_eq!(recovered.last_zxid, Zxid::new(4));
}

#[test]
fn a_damaged_snapshot_falls_back_to_the_previous_one() {
    let storage = MemoryStorage::default();
    let database = Database::new(false);
    let log = [
        create(Zxid::new(1), "/a", None),
        create(Zxid::new(2), "/b", None),
        create(Zxid::new(3), "/c", None),
    ];
    append(&storage, &log);
    database.apply(&log[0], &mut |_, _| {});
    snapshot(&storage, &database, Zxid::new(1), &[]);
    database.apply(&log[1], &mut |_, _| {});
    snapshot(&storage, &database, Zxid::new(2), &[]);
    storage.corrupt_snapshot_chunk(Zxid::new(2), 1, Bytes::from_static(b"\x01garbage"));
    let recovered = recover(&storage, false, Replay::Apply).expect("recovers");
    assert_eq!(recovered.snapshot.map(|header| header.zxid), Some(Zxid::new(1)));
    assert_eq!(recovered.replayed, 2);
    assert!(recovered.database.tree().exists("/c"));
}

#[test]
fn a_damaged_tail_is_refused_and_kept() {
    let storage = MemoryStorage::default();
    append(
        &storage,
        &[
            create(Zxid::new(1), "/a", None),
            create(Zxid::new(2), "/b", None),
            create(Zxid::new(3), "/c", None),
        ],
    );
    storage.corrupt_log_entry(Zxid::new(3), Bytes::from_static(b"torn"));
    let err = recover(&storage, false, Replay::Apply).expect_err("refuses");
    assert!(err.to_string().contains("0x3"), "{err}");
    assert_eq!(storage.last_logged_zxid(), Zxid::new(3), "nothing is truncated");
}

#[test]
fn damage_in_the_middle_is_refused() {
    let storage = MemoryStorage::default();
    append(
        &storage,
        &[
            create(Zxid::new(1), "/a", None),
            create(Zxid::new(2), "/b", None),
            create(Zxid::new(3), "/c", None),
        ],
    );
    let mut flipped = encode_entry(&create(Zxid::new(2), "/b", None)).value.to_vec();
    flipped[6] ^= 1;
    storage.corrupt_log_entry(Zxid::new(2), flipped.into());
    let err = recover(&storage, false, Replay::Apply).expect_err("refuses");
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn a_gap_in_the_log_is_refused() {
    let storage = MemoryStorage::default();
    append(&storage, &[create(Zxid::new(1), "/a", None), create(Zxid::new(3), "/c", None)]);
    let err = recover(&storage, false, Replay::Apply).expect_err("refuses");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn a_new_epoch_may_restart_the_counter() {
    let storage = MemoryStorage::default();
    append(
        &storage,
        &[create(Zxid::new(1), "/a", None), create(Zxid::new(0x1_0000_0001), "/b", None)],
    );
    assert_eq!(
        recover(&storage, false, Replay::Apply).expect("recovers").last_zxid,
        Zxid::new(0x1_0000_0001)
    );
}

#[test]
fn a_purged_log_without_a_snapshot_is_refused() {
    let storage = MemoryStorage::default();
    append(&storage, &[create(Zxid::new(1), "/a", None), create(Zxid::new(2), "/b", None)]);
    storage.purge_log_through(Zxid::new(1)).expect("purged");
    assert!(recover(&storage, false, Replay::Apply).is_err());
}
