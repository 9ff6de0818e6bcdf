use bytes::Bytes;
use jute::records::{CreateTxn, TxnHeader};
use jute::OpCode;

use super::*;
use crate::storage::memory::MemoryStorage;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::Database;
use crate::txn::{Txn, TxnBody};
use crate::zk_format::snapshot::TransferReader;

/// A database with `count` nodes under `/n`, each with a little data.
fn database_with(count: i64) -> Database {
    let database = Database::new(false);
    let create = |zxid: i64, path: String| Txn {
        header: TxnHeader {
            client_id: 0x99,
            cxid: 0,
            zxid,
            time: 1000 + zxid,
            op_type: OpCode::Create.as_i32(),
        },
        body: TxnBody::Create(CreateTxn {
            path,
            data: Some(Bytes::from_static(b"data")),
            acl: vec![world_anyone(perms::ALL)],
            ephemeral: false,
            parent_cversion: -1,
        }),
    };
    database.apply(&create(1, "/n".into()), &mut |_, _| {});
    for i in 0..count {
        database.apply(&create(2 + i, format!("/n/{i:05}")), &mut |_, _| {});
    }
    database
}

/// The pieces a learner's link reads from what `write_transferred` writes of
/// `database`, one batch per piece of the stream (each ends somewhere in the middle of a
/// node, as reads off a connection do).
fn batches_of(database: &Database, sessions: &[(SessionId, i32)]) -> Vec<Vec<TransferPiece>> {
    let mut stream = Vec::new();
    let written =
        write_transferred(database.tree(), database.last_applied_zxid(), sessions, |bytes| {
            stream.extend_from_slice(&bytes);
            Ok(())
        });
    assert!(written.is_ok());
    let mut reader = TransferReader::new();
    let mut batches = Vec::new();
    for part in stream.chunks(50_000) {
        let mut pieces = Vec::new();
        let rest = reader.feed(part, &mut pieces).expect("ZooKeeper's transfer format");
        batches.push(pieces);
        if let Some(rest) = rest {
            assert!(rest.is_empty(), "nothing after the snapshot");
        }
    }
    batches
}

/// Every node's path and stat, sorted.
fn stats(tree: &DataTree) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        lines.push(format!("{path} {:?}", tree.stat(&path)));
        for child in tree.children(&path) {
            pending.push(crate::tree::data_tree::child_path(&path, &child));
        }
    }
    lines.sort();
    lines
}

/// Offers `pieces` until the thread takes them, as the shell does.
async fn hand_over(
    inbound: &mut Inbound,
    zxid: Zxid,
    index: u32,
    mut pieces: Vec<TransferPiece>,
) -> Result<(), TransferError> {
    while let Some(back) = inbound.offer(zxid, index, pieces)? {
        inbound.room().await;
        pieces = back;
    }
    Ok(())
}

#[tokio::test]
async fn a_received_snapshot_is_stored_then_replaces_the_state_whole() {
    let leader = database_with(5000);
    let sessions = [(SessionId::new(0x99), 4000)];
    let chunks = batches_of(&leader, &sessions);
    assert!(chunks.len() > 2, "several batches: {}", chunks.len());
    let storage = Arc::new(MemoryStorage::default());
    // The learner's log: an entry the snapshot covers, and one of an epoch the leader
    // never committed, after it.
    let logged = |zxid| crate::storage::LogEntry { zxid: Zxid::new(zxid), value: Bytes::new() };
    storage.append(&[logged(7), logged(0x2_0000_0001)]).expect("logged");
    let learner = Database::new(false);
    let mut inbound =
        Inbound::start(storage.clone(), learner.tree(), Zxid::new(5001), 77).expect("thread");
    for (index, chunk) in (0u32..).zip(chunks.iter().cloned()) {
        hand_over(&mut inbound, Zxid::new(5001), index, chunk).await.expect("in order");
    }
    let sealed = inbound.seal().await.expect("every chunk loads");
    assert!(storage.snapshots().expect("readable").is_empty(), "stored only when finished");
    assert_eq!(learner.tree().node_count(), 4, "the old state is untouched until install");
    assert_eq!(sealed.loaded.sessions, sessions);
    learner.install(Zxid::new(5001), sealed.tree);
    let store = sealed.store;
    tokio::task::spawn_blocking(move || store.finish(vec![Zxid::new(0x1_0000_0000)]))
        .await
        .expect("the storage side ran")
        .expect("stored");
    assert_eq!(learner.last_applied_zxid(), Zxid::new(5001));
    assert_eq!(stats(learner.tree()), stats(leader.tree()));
    let headers = storage.snapshots().expect("readable");
    assert_eq!(headers.len(), 1);
    let header = &headers[0];
    assert_eq!(header.zxid, Zxid::new(5001));
    assert_eq!((header.nodes, header.sessions, header.created_ms), (5005, 1, 77));
    assert_eq!(storage.epoch_ends().expect("readable"), [Zxid::new(0x1_0000_0000)]);
    let mut left = Vec::new();
    storage
        .read_log(Zxid::ZERO, &mut |entry| {
            left.push(entry.zxid);
            true
        })
        .expect("readable");
    assert_eq!(left, [], "the whole log goes: the leader's history replaces it");
    let stored = DataTree::empty(false);
    let mut loaded = Loaded::default();
    storage
        .read_snapshot(header, &mut |index, chunk| {
            crate::tree::snapshot::load_chunk(&stored, index, &chunk, &mut loaded)
                .map_err(|err| StorageError::Backend(err.to_string()))
        })
        .expect("the stored snapshot loads");
    assert_eq!(stats(&stored), stats(leader.tree()), "what was stored is what was sent");
    assert_eq!(loaded.sessions, sessions);
}

#[tokio::test]
async fn chunks_out_of_order_or_of_another_snapshot_are_refused() {
    let chunks = batches_of(&database_with(10), &[]);
    let storage = Arc::new(MemoryStorage::default());
    let like = DataTree::new(false);
    let mut inbound = Inbound::start(storage, &like, Zxid::new(11), 0).expect("thread");
    let skipped = hand_over(&mut inbound, Zxid::new(11), 1, chunks[0].clone()).await;
    assert!(matches!(skipped, Err(TransferError::OutOfOrder { index: 1, expected: 0, .. })));
    let other = hand_over(&mut inbound, Zxid::new(12), 0, chunks[0].clone()).await;
    assert!(matches!(
        other,
        Err(TransferError::OutOfOrder { zxid, receiving, .. })
            if zxid == Zxid::new(12) && receiving == Zxid::new(11)
    ));
    hand_over(&mut inbound, Zxid::new(11), 0, chunks[0].clone()).await.expect("the one due");
}

#[tokio::test]
async fn a_node_without_its_parent_fails_the_seal_and_nothing_is_stored() {
    let chunks = batches_of(&database_with(10), &[]);
    let storage = Arc::new(MemoryStorage::default());
    let like = DataTree::new(false);
    let mut inbound = Inbound::start(storage.clone(), &like, Zxid::new(11), 0).expect("thread");
    hand_over(&mut inbound, Zxid::new(11), 0, chunks[0].clone()).await.expect("in order");
    let orphan = TransferPiece::Node(crate::zk_format::snapshot::SnapshotNode {
        path: "/nowhere/orphan".into(),
        data: None,
        acl: vec![world_anyone(perms::ALL)],
        stat: jute::records::StatPersisted::default(),
    });
    hand_over(&mut inbound, Zxid::new(11), 1, vec![orphan]).await.expect("in order");
    let sealed = inbound.seal().await;
    assert!(matches!(sealed, Err(TransferError::Malformed(_))), "{sealed:?}");
    assert!(storage.snapshots().expect("readable").is_empty());
}

#[tokio::test]
async fn a_sealed_snapshot_never_finished_is_not_stored() {
    let leader = database_with(10);
    let chunks = batches_of(&leader, &[]);
    let storage = Arc::new(MemoryStorage::default());
    let like = DataTree::new(false);
    let mut inbound = Inbound::start(storage.clone(), &like, Zxid::new(11), 0).expect("thread");
    for (index, chunk) in (0u32..).zip(chunks.iter().cloned()) {
        hand_over(&mut inbound, Zxid::new(11), index, chunk).await.expect("in order");
    }
    let sealed = inbound.seal().await.expect("every chunk loads");
    assert_eq!(stats(&sealed.tree), stats(leader.tree()));
    drop(sealed);
    assert!(storage.snapshots().expect("readable").is_empty());
}
