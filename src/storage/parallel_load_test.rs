use bytes::Bytes;
use jute::records::{Acl, CreateTxn, DeleteTxn, Id, TxnHeader};
use jute::OpCode;

use super::*;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::snapshot::write_snapshot;
use crate::tree::Database;
use crate::txn::{SessionId, Txn, TxnBody, Zxid};

#[derive(Debug, PartialEq)]
enum TestError {
    Read,
    Snapshot(String),
}

impl From<SnapshotError> for TestError {
    fn from(err: SnapshotError) -> TestError {
        TestError::Snapshot(err.to_string())
    }
}

fn txn(zxid: i64, op: OpCode, body: TxnBody) -> Txn {
    Txn {
        header: TxnHeader { client_id: 0x99, cxid: 0, zxid, time: zxid, op_type: op.as_i32() },
        body,
    }
}

fn alice() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: "digest".into(), id: "alice:x".into() } }]
}

/// A tree of 4,000 znodes with 300 bytes each under four parents; every seventh node has
/// Alice's ACL. Returns the database and the number of nodes with her ACL.
fn big_database() -> (Database, usize) {
    let database = Database::new(false);
    let mut zxid = 0;
    let mut apply = |body: TxnBody, op: OpCode| {
        zxid += 1;
        database.apply(&txn(zxid, op, body), &mut |_, _| {});
    };
    let create = |path: String, data: Option<Bytes>, acl: Vec<Acl>| {
        TxnBody::Create(CreateTxn { path, data, acl, ephemeral: false, parent_cversion: -1 })
    };
    let mut alices = 0;
    for parent in 0..4 {
        apply(create(format!("/p{parent}"), None, vec![world_anyone(perms::ALL)]), OpCode::Create);
        for child in 0..1000 {
            let acl = if child % 7 == 0 {
                alices += 1;
                alice()
            } else {
                vec![world_anyone(perms::ALL)]
            };
            let data = Bytes::from(vec![b'a' + (child % 26) as u8; 300]);
            apply(create(format!("/p{parent}/n{child:04}"), Some(data), acl), OpCode::Create);
        }
    }
    (database, alices)
}

fn chunks_of(database: &Database) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    write_snapshot(
        database.tree(),
        database.last_applied_zxid(),
        &[(SessionId::new(7), 4000), (SessionId::new(8), 6000)],
        |chunk| {
            chunks.push(chunk.split().freeze());
            Ok::<(), ()>(())
        },
    )
    .expect("written");
    chunks
}

fn dump(tree: &DataTree) -> String {
    let mut out = Vec::new();
    crate::dump::write_tree(tree, &mut out).expect("dumped");
    String::from_utf8(out).expect("utf-8")
}

fn feed(
    chunks: &[Bytes],
) -> impl FnOnce(&mut dyn FnMut(usize, Bytes)) -> Result<(), TestError> + '_ {
    move |load| {
        for (index, chunk) in chunks.iter().enumerate() {
            load(index, chunk.clone());
        }
        Ok(())
    }
}

#[test]
fn several_loaders_restore_the_tree_one_would() {
    let (database, _) = big_database();
    let chunks = chunks_of(&database);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    for loaders in [1, 3] {
        let tree = DataTree::empty(false);
        let loaded = load_parallel(&tree, loaders, feed(&chunks)).expect("loads");
        assert_eq!(loaded.nodes, database.tree().node_count() as u64);
        let mut sessions = loaded.sessions;
        sessions.sort_unstable();
        assert_eq!(sessions, [(SessionId::new(7), 4000), (SessionId::new(8), 6000)]);
        assert_eq!(dump(&tree), dump(database.tree()), "{loaders} loaders");
    }
}

#[test]
fn acl_references_count_every_node_loaded_on_any_thread() {
    let (database, alices) = big_database();
    let chunks = chunks_of(&database);
    let tree = DataTree::empty(false);
    load_parallel(&tree, 3, feed(&chunks)).expect("loads");
    let acls_with_alice = tree.acl_count();
    let loaded = Database::from_tree(tree, Zxid::new(10_000));
    let mut zxid = 10_000;
    let mut deleted = 0;
    for parent in 0..4 {
        for child in (0..1000).step_by(7) {
            zxid += 1;
            let path = format!("/p{parent}/n{child:04}");
            let delete = txn(zxid, OpCode::Delete, TxnBody::Delete(DeleteTxn { path }));
            loaded.apply(&delete, &mut |_, _| {});
            deleted += 1;
            let expected = if deleted < alices { acls_with_alice } else { acls_with_alice - 1 };
            assert_eq!(loaded.tree().acl_count(), expected, "after {deleted} of {alices}");
        }
    }
}

#[test]
fn a_bad_chunk_fails_the_load_and_every_chunk_is_still_taken() {
    let (database, _) = big_database();
    let mut chunks = chunks_of(&database);
    let duplicate = chunks[1].clone();
    chunks.push(duplicate);
    chunks.insert(2, Bytes::from_static(b"\x09"));
    let tree = DataTree::empty(false);
    let err = load_parallel(&tree, 3, feed(&chunks)).expect_err("refused");
    let TestError::Snapshot(reason) = err else { panic!("{err:?}") };
    assert!(reason.contains("chunk"), "{reason}");
}

#[test]
fn the_readers_own_failure_comes_first() {
    let (database, _) = big_database();
    let chunks = chunks_of(&database);
    let tree = DataTree::empty(false);
    let err = load_parallel(&tree, 2, |load: &mut dyn FnMut(usize, Bytes)| {
        load(0, chunks[0].clone());
        load(1, Bytes::from_static(b"\x09"));
        Err(TestError::Read)
    })
    .expect_err("the read failed");
    assert_eq!(err, TestError::Read);
}
