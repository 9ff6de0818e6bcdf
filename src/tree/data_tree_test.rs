use super::*;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::child_walk::ChildWalk;
use crate::tree::node::{NodeKind, CONTAINER_EPHEMERAL_OWNER};

fn open() -> Vec<Acl> {
    vec![world_anyone(perms::ALL)]
}

fn create(tree: &DataTree, path: &str, owner: i64, zxid: Zxid) -> Result<Stat, Code> {
    tree.create_node(path, Some(b"data"), &open(), owner, -1, zxid, 1000 + zxid.raw())
}

#[test]
fn split_paths() {
    assert_eq!(split_path("/"), Some(("", "")));
    assert_eq!(split_path(""), Some(("", "")));
    assert_eq!(split_path("/a"), Some(("/", "a")));
    assert_eq!(split_path("/a/b"), Some(("/a", "b")));
    assert_eq!(split_path("/a/"), Some(("/a", "")));
    assert_eq!(split_path("relative"), None);
}

#[test]
fn starts_with_the_system_nodes() {
    let tree = DataTree::new(false);
    assert_eq!(tree.node_count(), 4);
    let mut children = tree.children("/zookeeper");
    children.sort();
    assert_eq!(children, ["config", "quota"]);
    assert_eq!(tree.children("/"), ["zookeeper"]);
    assert_eq!(tree.children(""), ["zookeeper"], "\"\" is the root's alias");
    let root = tree.stat("/").expect("root");
    assert_eq!((root.cversion, root.num_children), (-1, 1));
    assert_eq!(tree.stat("/zookeeper").expect("exists").cversion, -2);
    assert_eq!(tree.descendant_count("/"), 3);
    assert_eq!(tree.approximate_data_size(), 1 + 10 + 16 + 17);
}

#[test]
fn create_updates_parent_and_stat() {
    let tree = DataTree::new(false);
    let stat = create(&tree, "/a", 0, Zxid::new(5)).expect("created");
    assert_eq!(
        (stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.data_length),
        (5, 5, 5, 1005, 4)
    );
    create(&tree, "/a/b", 0, Zxid::new(6)).expect("created");
    let parent = tree.stat("/a").expect("exists");
    assert_eq!((parent.cversion, parent.num_children, parent.pzxid, parent.mzxid), (1, 1, 6, 5));
    assert_eq!(create(&tree, "/a/b", 0, Zxid::new(7)), Err(Code::NodeExists));
    assert_eq!(create(&tree, "/x/y", 0, Zxid::new(7)), Err(Code::NoNode));
    assert_eq!(tree.descendant_count("/a"), 1);
    assert_eq!(tree.descendant_count("/"), 5);
}

#[test]
fn delete_moves_pzxid_and_keeps_creation_count() {
    let tree = DataTree::new(false);
    create(&tree, "/a", 0, Zxid::new(1)).expect("created");
    create(&tree, "/a/b", 0, Zxid::new(2)).expect("created");
    tree.delete_node("/a/b", Zxid::new(3)).expect("deleted");
    let parent = tree.stat("/a").expect("exists");
    assert_eq!((parent.cversion, parent.num_children, parent.pzxid), (2, 0, 3));
    assert!(matches!(tree.delete_node("/a/b", Zxid::new(4)), Err(Code::NoNode)));
    assert_eq!(tree.stat("/a").expect("exists").pzxid, 4, "pzxid moves even for a missing child");
    assert!(tree.tables.get("/a").is_none(), "empty child tables are dropped");
}

#[test]
fn ephemerals_containers_and_ttls_are_indexed() {
    let tree = DataTree::new(true);
    create(&tree, "/e1", 0x77, Zxid::new(1)).expect("created");
    create(&tree, "/e2", 0x77, Zxid::new(2)).expect("created");
    create(&tree, "/c", CONTAINER_EPHEMERAL_OWNER, Zxid::new(3)).expect("created");
    let ttl = NodeKind::ttl_owner(100).expect("valid");
    create(&tree, "/t", ttl, Zxid::new(4)).expect("created");
    // As ZooKeeper's getEphemerals: a clone of the hash set, which here iterates in
    // another order than the set (OpenJDK 17).
    assert_eq!(tree.ephemerals(SessionId::new(0x77)), ["/e2", "/e1"]);
    assert_eq!(tree.all_ephemerals(), [(SessionId::new(0x77), vec!["/e1".into(), "/e2".into()])]);
    assert_eq!(tree.ephemeral_count(), 2);
    assert_eq!(tree.containers(), ["/c"]);
    assert_eq!(tree.ttls(), ["/t"]);
    tree.delete_node("/e1", Zxid::new(5)).expect("deleted");
    tree.delete_node("/c", Zxid::new(6)).expect("deleted");
    tree.delete_node("/t", Zxid::new(7)).expect("deleted");
    assert_eq!(tree.ephemerals(SessionId::new(0x77)), ["/e2"]);
    tree.delete_node("/e2", Zxid::new(8)).expect("deleted");
    assert_eq!(tree.all_ephemerals(), [(SessionId::new(0x77), vec![])], "kept until it ends");
    tree.end_ephemerals(SessionId::new(0x77));
    assert!(tree.all_ephemerals().is_empty());
    assert!(tree.containers().is_empty());
    assert!(tree.ttls().is_empty());
}

#[test]
fn set_data_and_acl() {
    let tree = DataTree::new(false);
    create(&tree, "/a", 0, Zxid::new(1)).expect("created");
    let stat = tree.set_data("/a", None, 1, Zxid::new(2), 2000).expect("set");
    assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.data_length), (1, 2, 2000, 0));
    assert_eq!(tree.with_node("/a", |node, _| node.data().map(<[u8]>::to_vec)), Some(None));
    let acl = vec![world_anyone(perms::READ)];
    let stat = tree.set_acl("/a", &acl, 1).expect("set");
    assert_eq!(stat.aversion, 1);
    let acl_id = tree.with_node("/a", |node, _| node.acl()).expect("exists");
    assert_eq!(tree.acl(acl_id).as_ref(), acl.as_slice());
    assert_eq!(tree.set_data("/missing", None, 1, Zxid::new(3), 0), Err(Code::NoNode));
}

#[test]
fn explicit_parent_cversion_only_moves_forward() {
    let tree = DataTree::new(false);
    create(&tree, "/p", 0, Zxid::new(1)).expect("created");
    tree.create_node("/p/a", None, &open(), 0, 5, Zxid::new(2), 0).expect("created");
    tree.create_node("/p/b", None, &open(), 0, 3, Zxid::new(3), 0).expect("created");
    let parent = tree.stat("/p").expect("exists");
    assert_eq!(parent.pzxid, 2, "a lower cversion leaves pzxid alone");
    assert_eq!(parent.cversion, 5 * 2 - 2);
}

#[test]
fn issue_13_config_node_holds_the_membership_as_zookeeper_sets_it() {
    let tree = DataTree::new(false);
    let standalone = tree.stat("/zookeeper/config").expect("config");
    assert_eq!((standalone.version, standalone.aversion, standalone.mtime), (0, -1, 0));
    tree.set_config_node("server.1=h:1:2:participant\nversion=0", Zxid::ZERO, 1234);
    let data = tree
        .with_node("/zookeeper/config", |node, _| node.data().map(<[u8]>::to_vec))
        .expect("config");
    assert_eq!(data.as_deref(), Some(&b"server.1=h:1:2:participant\nversion=0"[..]));
    let stat = tree.stat("/zookeeper/config").expect("config");
    assert_eq!((stat.version, stat.aversion, stat.mtime, stat.mzxid), (-1, -1, 1234, 0));
}

/// Sets a quota on `path` as zkCli's `setquota` does: the `/zookeeper/quota` parents,
/// then the limits node, then a usage node the server fills in.
fn set_quota(tree: &DataTree, path: &str, limits: &[u8], zxid: &mut i64) {
    let mut quota_dir = quota::QUOTA_ROOT.to_owned();
    for component in path.split('/').skip(1) {
        quota_dir = format!("{quota_dir}/{component}");
        *zxid += 1;
        let _ = tree.create_node(&quota_dir, None, &open(), 0, -1, Zxid::new(*zxid), 0);
    }
    *zxid += 1;
    let limits_path = quota::limits_path(path);
    tree.create_node(&limits_path, Some(limits), &open(), 0, -1, Zxid::new(*zxid), 0)
        .expect("limits node");
    *zxid += 1;
    let stats_path = quota::stats_path(path);
    tree.create_node(&stats_path, Some(b"count=0,bytes=0"), &open(), 0, -1, Zxid::new(*zxid), 0)
        .expect("usage node");
}

fn usage_text(tree: &DataTree, path: &str) -> String {
    let data = tree.with_node(&quota::stats_path(path), |node, _| node.data().map(<[u8]>::to_vec));
    String::from_utf8_lossy(&data.flatten().unwrap_or_default()).into_owned()
}

#[test]
fn quota_usage_follows_creates_deletes_and_data_changes_in_place() {
    let tree = DataTree::new(false);
    create(&tree, "/p", 0, Zxid::new(1)).expect("created");
    create(&tree, "/p/a", 0, Zxid::new(2)).expect("created");
    create(&tree, "/other", 0, Zxid::new(3)).expect("created");
    let mut zxid = 3;
    set_quota(&tree, "/p", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3", &mut zxid);
    assert_eq!(usage_text(&tree, "/p"), "count=2,bytes=8", "counted when the node is made");
    let stat_before = tree.stat(&quota::stats_path("/p")).expect("usage node");
    let size_before = tree.approximate_data_size();

    create(&tree, "/p/a/deep", 0, Zxid::new(20)).expect("created");
    tree.set_data("/p/a", Some(b"longer data"), 1, Zxid::new(21), 0).expect("set");
    create(&tree, "/other/x", 0, Zxid::new(22)).expect("created");
    assert_eq!(usage_text(&tree, "/p"), "count=3,bytes=19");
    tree.delete_node("/p/a/deep", Zxid::new(23)).expect("deleted");
    assert_eq!(usage_text(&tree, "/p"), "count=2,bytes=15");
    let stat_after = tree.stat(&quota::stats_path("/p")).expect("usage node");
    assert_eq!((stat_after.mzxid, stat_after.version), (stat_before.mzxid, stat_before.version));
    assert_eq!(stat_after.data_length, "count=2,bytes=15".len() as i32);
    // /p/a's data grew by 7 bytes, /other/x added 12, the usage text one digit.
    assert_eq!(tree.approximate_data_size(), size_before + 7 + 12 + 1);

    tree.delete_node(&quota::limits_path("/p"), Zxid::new(24)).expect("delquota");
    assert_eq!(tree.quota_path("/p/a"), None);
    create(&tree, "/p/b", 0, Zxid::new(25)).expect("created");
    assert_eq!(usage_text(&tree, "/p"), "count=2,bytes=15", "no quota, no counting");
}

#[test]
fn the_deepest_quota_counts_and_the_roots_never_does() {
    let tree = DataTree::new(false);
    create(&tree, "/p", 0, Zxid::new(1)).expect("created");
    create(&tree, "/p/q", 0, Zxid::new(2)).expect("created");
    create(&tree, "/pq", 0, Zxid::new(3)).expect("created");
    let mut zxid = 3;
    set_quota(&tree, "/p", b"count=10,bytes=-1", &mut zxid);
    set_quota(&tree, "/p/q", b"count=10,bytes=-1", &mut zxid);
    assert_eq!(tree.quota_path("/p/q/r").as_deref(), Some("/p/q"));
    assert_eq!(tree.quota_path("/p/q").as_deref(), Some("/p/q"));
    assert_eq!(tree.quota_path("/p/x").as_deref(), Some("/p"));
    assert_eq!(tree.quota_path("/pq"), None, "a prefix of the name is not an ancestor");
    assert_eq!(tree.quota_path("/"), None);
}

#[test]
fn quotas_are_found_and_recounted_after_a_load() {
    let tree = DataTree::new(false);
    create(&tree, "/p", 0, Zxid::new(1)).expect("created");
    let mut zxid = 1;
    set_quota(&tree, "/p", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3", &mut zxid);
    // A usage node out of step, as a snapshot taken mid-change may hold it.
    tree.set_data(&quota::stats_path("/p"), Some(b"count=9,bytes=9"), 1, Zxid::new(30), 0)
        .expect("set");
    let loaded = tree.empty_like();
    for parent in tree.parents() {
        let mut walk = ChildWalk::new(&tree, &parent, Zxid::new(zxid));
        while walk.step(&tree, |nodes| {
            for node in nodes {
                loaded.load_node(&parent, (*node).clone()).expect("loaded");
            }
        }) {}
    }
    assert_eq!(loaded.quota_path("/p"), None, "nothing indexed before the set-up");
    loaded.setup_quotas();
    assert_eq!(loaded.quota_path("/p/x").as_deref(), Some("/p"));
    assert_eq!(usage_text(&loaded, "/p"), "count=1,bytes=4");
}
