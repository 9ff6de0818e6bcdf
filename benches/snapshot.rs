//! How fast a snapshot of a large tree is written into RocksDB, the work the background
//! snapshot thread competes with request handling for.
//!
//! `cargo bench --bench snapshot [-- NODES]` builds a tree of NODES (default 300,000)
//! znodes of 1 KiB under 32 parents, like zkbench's create load, then writes it as a
//! snapshot three times and prints the best time and throughput.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use zkrs::server::snapshotter::take_snapshot_of;
use zkrs::storage::rocks::RocksStorage;
use zkrs::tree::acl::{perms, world_anyone};
use zkrs::tree::data_tree::DataTree;
use zkrs::tree::node::Node;
use zkrs::txn::{SessionId, Zxid};

fn main() {
    let nodes: u64 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(300_000);
    let tree = DataTree::new(false);
    let acl = tree.intern_acl(&[world_anyone(perms::ALL)]);
    let value = vec![b'x'; 1024];
    for parent in 0..32 {
        let name = format!("s{parent:04}");
        tree.load_node("/", Node::new(&name, None, acl, 0, Zxid::new(1), 0)).expect("a new parent");
    }
    for index in 0..nodes {
        let parent = format!("/s{:04}", index % 32);
        let name = format!("n-{index:010}");
        let node = Node::new(&name, Some(&value), acl, 0, Zxid::new(index as i64 + 2), 0);
        tree.load_node(&parent, node).expect("a new node");
    }
    let dir = std::env::temp_dir().join(format!("zkrs-bench-snapshot-{}", std::process::id()));
    let storage = RocksStorage::open(&dir, None, true).expect("a store in the temp dir");
    let sessions: Vec<(SessionId, i32)> = (0..100).map(|id| (SessionId::new(id), 30_000)).collect();
    let stopping = AtomicBool::new(false);
    let mut best = f64::MAX;
    let mut bytes = 0;
    let mut last_zxid = Zxid::new(nodes as i64 + 1);
    for _ in 0..3 {
        last_zxid = last_zxid.next();
        let started = Instant::now();
        let summary = take_snapshot_of(&tree, &storage, last_zxid, &sessions, 0, &stopping)
            .expect("the snapshot is written");
        best = best.min(started.elapsed().as_secs_f64());
        bytes = summary.bytes;
    }
    drop(storage);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "snapshot of {nodes} znodes ({:.0} MB): best of 3 {:.3} s, {:.0} MB/s",
        bytes as f64 / 1e6,
        best,
        bytes as f64 / 1e6 / best
    );
}
