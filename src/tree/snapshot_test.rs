use bytes::Bytes;
use jute::records::{
    Acl, CloseSessionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, Id, TxnHeader,
};
use jute::OpCode;

use super::*;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::Database;
use crate::txn::{Txn, TxnBody, Zxid};

fn txn(zxid: i64, op_type: OpCode, body: TxnBody) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: 0x99,
            cxid: 0,
            zxid,
            time: 1000 + zxid,
            op_type: op_type.as_i32(),
        },
        body,
    }
}

fn create(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, ephemeral: bool) -> TxnBody {
    create_at(path, data, acl, ephemeral, -1)
}

/// A create as prepare writes it: with the parent's creation count after it.
fn create_at(
    path: &str,
    data: Option<&[u8]>,
    acl: Vec<Acl>,
    ephemeral: bool,
    parent_cversion: i32,
) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: data.map(Bytes::copy_from_slice),
        acl,
        ephemeral,
        parent_cversion,
    })
}

/// Every node as (path, stat, data, acl), sorted: the tree's full observable state.
fn dump(tree: &DataTree) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        let line = tree.with_node(&path, |node, children| {
            format!(
                "{path} {:?} {:?} {:?}",
                node.stat(children, true),
                node.data,
                tree.acl(node.acl)
            )
        });
        lines.push(line.expect("node exists"));
        for child in tree.children(&path) {
            pending.push(crate::tree::data_tree::child_path(&path, &child));
        }
    }
    lines.sort();
    lines
}

fn round_trip(
    database: &Database,
    sessions: &[(SessionId, i32)],
) -> (DataTree, Loaded, SnapshotSummary) {
    let mut chunks = Vec::new();
    let summary =
        write_snapshot(database.tree(), database.last_applied_zxid(), sessions, |chunk| {
            chunks.push(chunk.split().freeze());
            Ok::<(), ()>(())
        })
        .expect("written");
    let loaded_tree = DataTree::empty(true);
    let mut loaded = Loaded::default();
    for (index, chunk) in chunks.iter().enumerate() {
        load_chunk(&loaded_tree, index, chunk, &mut loaded).expect("loads");
    }
    (loaded_tree, loaded, summary)
}

#[test]
fn a_snapshot_restores_every_node_stat_acl_and_session() {
    let database = Database::new(true);
    let alice =
        vec![Acl { perms: perms::READ, id: Id { scheme: "digest".into(), id: "alice:x".into() } }];
    let steps = vec![
        txn(1, OpCode::Create, create("/a", Some(b"one"), vec![world_anyone(perms::ALL)], false)),
        txn(2, OpCode::Create, create("/a/b", None, alice, false)),
        txn(3, OpCode::Create, create("/a/e", Some(b""), vec![world_anyone(perms::READ)], true)),
        txn(
            4,
            OpCode::CreateContainer,
            TxnBody::CreateContainer(CreateContainerTxn {
                path: "/c".into(),
                data: None,
                acl: vec![world_anyone(perms::ALL)],
                parent_cversion: -1,
            }),
        ),
        txn(
            5,
            OpCode::CreateTtl,
            TxnBody::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: Some(Bytes::from_static(b"ttl")),
                acl: vec![world_anyone(perms::ALL)],
                parent_cversion: -1,
                ttl: 5000,
            }),
        ),
    ];
    for step in &steps {
        database.apply(step, &mut |_, _| {});
    }
    let sessions = [(SessionId::new(0x99), 4000), (SessionId::new(0x100), 30_000)];
    let (loaded_tree, loaded, summary) = round_trip(&database, &sessions);
    assert_eq!(dump(&loaded_tree), dump(database.tree()));
    assert_eq!(loaded.sessions, sessions);
    assert_eq!(loaded.nodes, summary.nodes);
    assert_eq!(loaded_tree.node_count(), database.tree().node_count());
    assert_eq!(loaded_tree.ephemerals(SessionId::new(0x99)), ["/a/e"]);
    assert_eq!(loaded_tree.containers(), ["/c"]);
    assert_eq!(loaded_tree.ttls(), ["/t"]);
    assert_eq!(loaded_tree.approximate_data_size(), database.tree().approximate_data_size());
    assert_eq!(loaded_tree.acl_count(), database.tree().acl_count());
}

#[test]
fn large_trees_span_chunks_that_load_independently() {
    let database = Database::new(false);
    let data = vec![b'x'; 1000];
    database.apply(
        &txn(1, OpCode::Create, create("/big", None, vec![world_anyone(perms::ALL)], false)),
        &mut |_, _| {},
    );
    for i in 0..3000 {
        let path = format!("/big/n{i:05}");
        database.apply(
            &txn(
                2 + i,
                OpCode::Create,
                create(&path, Some(&data), vec![world_anyone(perms::ALL)], false),
            ),
            &mut |_, _| {},
        );
    }
    let (loaded_tree, _, summary) = round_trip(&database, &[]);
    assert!(summary.chunks >= 4, "{summary:?}");
    assert_eq!(dump(&loaded_tree), dump(database.tree()));
}

#[test]
fn replaying_txns_over_a_fuzzy_snapshot_converges() {
    let database = Database::new(false);
    let open = || vec![world_anyone(perms::ALL)];
    let log = [
        txn(1, OpCode::Create, create_at("/p", None, open(), false, 2)),
        txn(2, OpCode::Create, create_at("/p/a", None, open(), false, 1)),
        txn(3, OpCode::Create, create_at("/p/e", None, open(), true, 2)),
        txn(4, OpCode::Delete, TxnBody::Delete(jute::records::DeleteTxn { path: "/p/a".into() })),
        txn(
            5,
            OpCode::CloseSession,
            TxnBody::CloseSession(CloseSessionTxn { paths_to_delete: vec!["/p/e".into()] }),
        ),
        txn(6, OpCode::Create, create_at("/p/b", None, open(), false, 3)),
    ];
    for entry in &log[..3] {
        database.apply(entry, &mut |_, _| {});
    }
    // A snapshot labelled zxid 2 that already reflects zxid 3, as a fuzzy one may.
    let (loaded_tree, _, _) = round_trip(&database, &[]);
    let recovered = Database::from_tree(loaded_tree, Zxid::new(2));
    for entry in &log[2..] {
        recovered.apply(entry, &mut |_, _| {});
    }
    for entry in &log[3..] {
        database.apply(entry, &mut |_, _| {});
    }
    assert_eq!(dump(recovered.tree()), dump(database.tree()));
}

#[test]
fn corrupt_chunks_are_errors_not_panics() {
    let tree = DataTree::empty(false);
    let mut loaded = Loaded::default();
    for bad in [
        &b""[..],
        b"\x09",
        b"\x01\x00\x00\x00\x05",
        b"\x01\x00\x00\x00\x00\x00\x00\x00\x02/a\x00\x00\x00\x01",
    ] {
        assert!(
            load_chunk(&tree, 0, &Bytes::copy_from_slice(bad), &mut loaded).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn node_chunks_end_with_their_acl_table() {
    let database = Database::new(false);
    let read_only = vec![world_anyone(perms::READ)];
    database
        .apply(&txn(1, OpCode::Create, create("/r", Some(b"v"), read_only, false)), &mut |_, _| {});
    let mut chunks = Vec::new();
    write_snapshot(database.tree(), database.last_applied_zxid(), &[], |chunk| {
        chunks.push(chunk.split().freeze());
        Ok::<(), ()>(())
    })
    .expect("written");
    let nodes = chunks.last().expect("a node chunk");
    assert_eq!(nodes[0], KIND_NODES);
    let (groups, acls) = split_node_chunk(nodes).expect("the table is where the chunk says");
    assert_eq!(1 + groups.len() + acls.len() + 4, nodes.len());
    let mut reader = Reader::new(&acls);
    assert_eq!(reader.read_i32("count").expect("count"), 2, "the open ACL and read-only");
}

#[test]
fn damaged_node_chunks_never_panic() {
    let database = Database::new(false);
    database.apply(
        &txn(1, OpCode::Create, create("/a", Some(b"data"), vec![world_anyone(perms::ALL)], true)),
        &mut |_, _| {},
    );
    let mut chunks = Vec::new();
    write_snapshot(database.tree(), database.last_applied_zxid(), &[], |chunk| {
        chunks.push(chunk.split().freeze());
        Ok::<(), ()>(())
    })
    .expect("written");
    let nodes = chunks.last().expect("a node chunk").clone();
    let load =
        |chunk: &Bytes| load_chunk(&DataTree::empty(false), 0, chunk, &mut Loaded::default());
    assert!(load(&nodes).is_ok());
    // The storage layer's checksums reject damage before decoding; decoding itself must
    // survive anything (a cut can even leave a well-formed, shorter chunk).
    let torn = (0..nodes.len()).filter(|len| load(&nodes.slice(..*len)).is_err()).count();
    assert!(torn >= nodes.len() - 2, "{torn} of {} cuts rejected", nodes.len());
    for byte in 0..nodes.len() {
        let mut flipped = nodes.to_vec();
        flipped[byte] ^= 0x80;
        let _ = load(&flipped.into());
    }
}
