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
                node.data(),
                tree.acl(node.acl())
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
    assert_eq!(nodes[0], KIND_PACKED_NODES);
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

/// A node's fields, its ACL given as a list: the stats no apply makes on its own (negative
/// and extreme zxids and times, an mzxid below the czxid, every version at its limits).
struct Fields {
    parent: &'static str,
    name: &'static str,
    data: Option<&'static [u8]>,
    longs: [i64; 6],
    ints: [i32; 3],
    acl: Vec<Acl>,
}

fn fields_of_every_width() -> Vec<Fields> {
    let open = || vec![world_anyone(perms::ALL)];
    let read = || vec![world_anyone(perms::READ)];
    vec![
        Fields { parent: "", name: "", data: None, longs: [0; 6], ints: [0, 5, 0], acl: open() },
        Fields {
            parent: "/",
            name: "max",
            data: Some(b""),
            longs: [i64::MAX, i64::MAX, i64::MAX, i64::MAX, i64::MAX, i64::MAX],
            ints: [i32::MAX, i32::MAX, i32::MAX],
            acl: read(),
        },
        Fields {
            parent: "/",
            name: "min",
            data: Some(b"data"),
            longs: [i64::MIN, i64::MIN, i64::MIN, i64::MIN, i64::MIN, i64::MIN],
            ints: [i32::MIN, i32::MIN, i32::MIN],
            acl: open(),
        },
        Fields {
            parent: "/",
            name: "mixed",
            data: Some(&[0, 1, 2, 255]),
            longs: [0x1_0000_0005, 0x1_0000_0001, 0x7_0000_0000, -3, 1_700_000_000_000, 0x99],
            ints: [-1, 0, 3],
            acl: read(),
        },
        Fields {
            parent: "/mixed",
            name: "é",
            data: None,
            longs: [7, 7, 7, 1_700_000_000_000, 1_700_000_000_000, 0],
            ints: [0, 0, 0],
            acl: open(),
        },
    ]
}

/// A node with the stat `longs` and `ints` (see [`packed::persisted_stat`]).
fn node_of(name: &str, data: Option<&[u8]>, longs: [i64; 6], ints: [i32; 3], acl: AclId) -> Node {
    Node::from_persisted(name, data, acl, &packed::persisted_stat(longs, ints))
}

/// A tree of `fields`, loaded as a snapshot would load it.
fn tree_of(fields: &[Fields]) -> DataTree {
    let tree = DataTree::empty(true);
    for field in fields {
        let acl = tree.intern_acl(&field.acl);
        let node = node_of(field.name, field.data, field.longs, field.ints, acl);
        tree.load_node(field.parent, node).expect("a new node");
        tree.acquire_acl(acl, 1);
        tree.release_acl(acl);
    }
    tree
}

fn load_all(chunks: &[Bytes]) -> DataTree {
    let tree = DataTree::empty(true);
    let mut loaded = Loaded::default();
    for (index, chunk) in chunks.iter().enumerate() {
        load_chunk(&tree, index, chunk, &mut loaded).expect("loads");
    }
    tree
}

#[test]
fn packed_stats_of_every_width_round_trip() {
    let tree = tree_of(&fields_of_every_width());
    let mut chunks = Vec::new();
    write_snapshot(&tree, Zxid::new(i64::MAX), &[], |chunk| {
        chunks.push(chunk.split().freeze());
        Ok::<(), ()>(())
    })
    .expect("written");
    assert_eq!(chunks.last().map(|chunk| chunk[0]), Some(KIND_PACKED_NODES));
    assert_eq!(dump(&load_all(&chunks)), dump(&tree));
}

#[test]
fn node_chunks_of_format_2_still_load() {
    let fields = fields_of_every_width();
    let mut chunk = BytesMut::new();
    chunk.put_u8(KIND_NODES);
    let mut acl_ids: Vec<Vec<Acl>> = Vec::new();
    let mut groups: Vec<(&str, Vec<&Fields>)> = Vec::new();
    for field in &fields {
        match groups.last_mut() {
            Some((parent, members)) if *parent == field.parent => members.push(field),
            _ => groups.push((field.parent, vec![field])),
        }
    }
    for (parent, members) in groups {
        write_ustring(&mut chunk, parent);
        write_i32(&mut chunk, members.len() as i32);
        for field in members {
            write_ustring(&mut chunk, field.name);
            jute::writer::write_buffer(&mut chunk, field.data);
            field.longs.iter().for_each(|&value| write_i64(&mut chunk, value));
            field.ints.iter().for_each(|&value| write_i32(&mut chunk, value));
            let local = acl_ids.iter().position(|acl| *acl == field.acl).unwrap_or_else(|| {
                acl_ids.push(field.acl.clone());
                acl_ids.len() - 1
            });
            write_i32(&mut chunk, local as i32);
        }
    }
    let acls_at = chunk.len() as u32;
    write_i32(&mut chunk, acl_ids.len() as i32);
    for (id, list) in acl_ids.iter().enumerate() {
        write_i32(&mut chunk, id as i32);
        list.write(&mut chunk);
    }
    chunk.put_u32(acls_at);
    assert_eq!(dump(&load_all(&[chunk.freeze()])), dump(&tree_of(&fields)));
}

#[test]
fn a_packed_node_takes_a_fraction_of_a_full_width_one() {
    let database = Database::new(false);
    database.apply(
        &txn(1, OpCode::Create, create("/d", None, vec![world_anyone(perms::ALL)], false)),
        &mut |_, _| {},
    );
    for i in 0..1000 {
        let path = format!("/d/n{i:010}");
        let body = create(&path, Some(b"x"), vec![world_anyone(perms::ALL)], false);
        database.apply(&txn(2 + i, OpCode::Create, body), &mut |_, _| {});
    }
    let (loaded_tree, _, summary) = round_trip(&database, &[]);
    assert_eq!(dump(&loaded_tree), dump(database.tree()));
    // Name (1 + 11), data (1 + 1), flags, czxid and ctime steps (1 each): 17 bytes, where
    // format 2 took 4 + 11 + 4 + 1 + 64 = 84.
    let per_node = summary.bytes / summary.nodes;
    assert!(per_node <= 18, "{per_node} bytes per node: {summary:?}");
}

proptest::proptest! {
    #[test]
    fn packed_nodes_of_any_stat_round_trip(
        stats in proptest::collection::vec(
            (
                proptest::prelude::any::<[i64; 6]>(),
                proptest::prelude::any::<[i32; 3]>(),
                proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
                proptest::prelude::any::<bool>(),
            ),
            1..40,
        ),
    ) {
        let tree = tree_of(&fields_of_every_width()[..1]);
        let open = tree.intern_acl(&[world_anyone(perms::ALL)]);
        let read = tree.intern_acl(&[world_anyone(perms::READ)]);
        for (index, (longs, [version, cversion, aversion], data, read_only)) in
            stats.into_iter().enumerate()
        {
            let acl = if read_only { read } else { open };
            let node = node_of(
                &format!("n{index}"),
                data.as_deref(),
                longs,
                [version, cversion, aversion],
                acl,
            );
            tree.load_node("/", node).expect("a new node");
            tree.acquire_acl(acl, 1);
        }
        tree.release_acl(open);
        tree.release_acl(read);
        let mut chunks = Vec::new();
        write_snapshot(&tree, Zxid::new(i64::MAX), &[], |chunk| {
            chunks.push(chunk.split().freeze());
            Ok::<(), ()>(())
        })
        .expect("written");
        proptest::prop_assert_eq!(dump(&load_all(&chunks)), dump(&tree));
    }
}
