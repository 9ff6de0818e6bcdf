use super::*;
use crate::export::{export, ExportError, ZooKeeperTarget};
use crate::storage::recovery::{recover, Recovered, Replay};
use crate::tree::data_tree::child_path;
use crate::zk_format::snapshot::{read_snapshot, Snapshot};
use crate::zk_format::txn_log::{read_log, LogFile};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zookeeper-3.8");
const SESSION: i64 = 0x0100_0048_870d_0000;

/// A test's own directory (`name`); each test starts with it empty.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zkrs-import-{name}-{}", std::process::id()))
}

/// The fixture's ZooKeeper `dataDir`, without the files named, in a fresh `scratch(name)`.
fn zookeeper_dir(name: &str, without: &[&str]) -> ZooKeeperDirs {
    let _ = std::fs::remove_dir_all(scratch(name));
    let dir = scratch(name).join("zookeeper");
    std::fs::create_dir_all(dir.join("version-2")).expect("dir");
    for entry in std::fs::read_dir(Path::new(FIXTURE).join("version-2")).expect("fixture") {
        let path = entry.expect("entry").path();
        let file = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if !without.contains(&file) {
            std::fs::copy(&path, dir.join("version-2").join(file)).expect("copy");
        }
    }
    ZooKeeperDirs { data_dir: dir, data_log_dir: None }
}

/// Imports, then recovers the new store as `zkrs server` would.
fn import_and_recover(name: &str, without: &[&str]) -> (Imported, Recovered) {
    let from = zookeeper_dir(name, without);
    let to = scratch(name).join("zkrs");
    let mut report = Vec::new();
    let imported = import(&from, &to, None, &mut report).expect("imports");
    let storage = RocksStorage::open(&to, None, true).expect("opens");
    let recovered = recover(&storage, true, Replay::Apply).expect("recovers");
    (imported, recovered)
}

/// Every node below `path`: its path, data, stat and ACL.
fn listing(recovered: &Recovered, path: &str, out: &mut Vec<String>) {
    let tree = recovered.database.tree();
    let data = tree.with_node(path, |node, _| node.data().map(<[u8]>::to_vec)).expect("node");
    let stat = tree.stat(path).expect("stat");
    let acl = tree.with_node(path, |node, _| tree.acl(node.acl())).expect("node");
    out.push(format!("{path} {data:?} {stat:?} {acl:?}"));
    let mut children = tree.children(path);
    children.sort();
    for child in children {
        listing(recovered, &child_path(path, &child), out);
    }
}

#[test]
fn a_zookeeper_snapshot_and_the_txns_after_it_make_the_same_tree() {
    let (whole, from_snapshot) = import_and_recover("snapshot", &[]);
    assert_eq!((whole.snapshot_zxid, whole.txns), (0x10, 0), "the newest snapshot has all");
    let (replayed, from_log) = import_and_recover("log", &["snapshot.10"]);
    assert_eq!(replayed.snapshot_zxid, 0);
    assert_eq!(replayed.txns, 0x10, "every txn of log.1");
    assert_eq!(from_log.replayed, 0x10);

    let (mut a, mut b) = (Vec::new(), Vec::new());
    listing(&from_snapshot, "/", &mut a);
    listing(&from_log, "/", &mut b);
    assert_eq!(a, b);
    assert_eq!(from_snapshot.last_zxid, Zxid::new(0x10));
    assert_eq!(from_log.last_zxid, Zxid::new(0x10));

    let tree = from_snapshot.database.tree();
    let app = tree.stat("/app").expect("/app");
    assert_eq!((app.version, app.num_children), (1, 5));
    assert_eq!(
        tree.with_node("/app", |node, _| node.data().map(<[u8]>::to_vec)),
        Some(Some(b"changed"[..].into()))
    );
    assert_eq!(tree.stat("/app/eph").expect("ephemeral").ephemeral_owner, SESSION);
    assert_eq!(tree.ephemerals(SessionId::new(SESSION)), ["/app/eph"]);
    let acl = tree.with_node("/acl", |node, _| tree.acl(node.acl())).expect("/acl");
    assert_eq!(acl.iter().map(|acl| acl.id.scheme.as_str()).collect::<Vec<_>>(), ["digest", "ip"]);
    for recovered in [&from_snapshot, &from_log] {
        assert!(recovered.sessions.iter().any(|(id, _)| *id == SessionId::new(SESSION)));
    }
    for name in ["snapshot", "log"] {
        let _ = std::fs::remove_dir_all(scratch(name));
    }
}

#[test]
fn an_import_copies_myid_and_refuses_a_target_that_holds_a_store() {
    let from = zookeeper_dir("twice", &[]);
    std::fs::write(from.data_dir.join("myid"), "3\n").expect("myid");
    let to = scratch("twice").join("zkrs");
    import(&from, &to, None, &mut Vec::new()).expect("imports");
    assert_eq!(std::fs::read_to_string(to.join("myid")).expect("myid copied"), "3\n");
    let again = import(&from, &to, None, &mut Vec::new());
    assert!(matches!(again, Err(ImportError::TargetInUse(_))), "{again:?}");
    let _ = std::fs::remove_dir_all(scratch("twice"));
}

#[test]
fn a_damaged_newest_snapshot_gives_way_to_an_older_one() {
    let from = zookeeper_dir("damaged", &[]);
    let newest = from.data_dir.join("version-2").join("snapshot.10");
    let mut bytes = std::fs::read(&newest).expect("snapshot");
    let at = bytes.windows(7).position(|window| window == b"changed").expect("data");
    bytes[at] ^= 0x20;
    std::fs::write(&newest, bytes).expect("damage");
    let mut report = Vec::new();
    let imported = import(&from, &scratch("damaged").join("zkrs"), None, &mut report);
    let imported = imported.expect("imports from snapshot.0 and the log");
    assert_eq!((imported.snapshot_zxid, imported.txns), (0, 0x10));
    let report = String::from_utf8(report).expect("text");
    assert!(report.contains("skipping") && report.contains("checksum"), "{report}");
    let _ = std::fs::remove_dir_all(scratch("damaged"));
}

#[test]
fn an_import_exported_again_gives_zookeeper_its_own_snapshot_back() {
    let from = zookeeper_dir("export", &[]);
    std::fs::write(from.data_dir.join("myid"), "3\n").expect("myid");
    let to = scratch("export").join("zkrs");
    import(&from, &to, None, &mut Vec::new()).expect("imports");
    assert_eq!(std::fs::read_to_string(to.join("myid")).ok().as_deref(), Some("3\n"));
    let back = scratch("export").join("back");
    let target = ZooKeeperTarget { data_dir: back.clone(), data_log_dir: None };
    let exported = export(&to, None, &target, &mut Vec::new()).expect("exports");
    assert_eq!((exported.snapshot_zxid, exported.txns), (0x10, 0));
    assert!(!back.join("version-2/log.11").exists(), "no txns, no log");
    let original =
        read_snapshot(&Path::new(FIXTURE).join("version-2/snapshot.10")).expect("fixture");
    let written =
        read_snapshot(&back.join("version-2/snapshot.10")).expect("readable by ZooKeeper's rules");
    let sorted = |snapshot: &Snapshot| {
        let mut nodes = snapshot.nodes.clone();
        nodes.sort_by(|a, b| a.path.cmp(&b.path));
        nodes
    };
    assert_eq!(sorted(&written), sorted(&original));
    assert_eq!(written.sessions, original.sessions);
    let epoch = std::fs::read_to_string(back.join("version-2/currentEpoch")).expect("epoch");
    assert_eq!(epoch, "0");
    let myid = std::fs::read_to_string(back.join("myid"));
    assert_eq!(myid.ok().as_deref(), Some("3\n"), "the member keeps its id both ways");
    let again = export(&to, None, &target, &mut Vec::new());
    assert!(matches!(again, Err(ExportError::TargetInUse(_))), "{again:?}");
    let _ = std::fs::remove_dir_all(scratch("export"));
}

#[test]
fn the_txns_after_the_snapshot_are_exported_as_a_log_zookeeper_can_truncate() {
    let from = zookeeper_dir("export-log", &["snapshot.10"]);
    let to = scratch("export-log").join("zkrs");
    import(&from, &to, None, &mut Vec::new()).expect("imports from snapshot.0 and the log");
    let back = scratch("export-log").join("back");
    let target =
        ZooKeeperTarget { data_dir: back.join("data"), data_log_dir: Some(back.join("logs")) };
    let mut report = Vec::new();
    let exported = export(&to, None, &target, &mut report).expect("exports");
    let counts = (exported.snapshot_zxid, exported.txns, exported.last_zxid);
    assert_eq!(counts, (0, 0x10, 0x10));
    let report = String::from_utf8(report).expect("text");
    assert!(report.contains("16 txns after it, up to 0x10"), "{report}");
    assert!(back.join("data/version-2/snapshot.0").exists());
    assert!(!back.join("data/version-2/log.1").exists(), "the log goes to the dataLogDir");
    let written = read_log(&back.join("logs/version-2/log.1")).expect("ZooKeeper's format");
    let original = read_log(&Path::new(FIXTURE).join("version-2/log.1")).expect("fixture");
    let txns = |log: &LogFile| -> Vec<Txn> {
        log.txns.iter().map(|logged| Txn::decode(&logged.bytes).expect("a txn")).collect()
    };
    assert_eq!(txns(&written), txns(&original));
    let again = export(&to, None, &target, &mut Vec::new());
    assert!(matches!(again, Err(ExportError::TargetInUse(_))), "{again:?}");
    let _ = std::fs::remove_dir_all(scratch("export-log"));
}

#[test]
fn a_log_missing_a_txn_is_refused_before_anything_is_written() {
    let from = zookeeper_dir("gap", &["snapshot.10"]);
    let log = from.data_dir.join("version-2").join("log.1");
    let bytes = std::fs::read(&log).expect("log");
    // Records after the 16-byte header: checksum (8), length (4), txn, `B`.
    let mut starts = vec![16];
    while let Some(at) = starts.last().copied() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("length"));
        if len <= 0 {
            break;
        }
        starts.push(at + 12 + len as usize + 1);
    }
    let (fifth, sixth) = (starts[4], starts[5]);
    let gapped = [&bytes[..fifth], &bytes[sixth..]].concat();
    std::fs::write(&log, gapped).expect("write");
    let to = scratch("gap").join("zkrs");
    let imported = import(&from, &to, None, &mut Vec::new());
    assert!(
        matches!(imported, Err(ImportError::OutOfOrder { zxid: 6, previous: 4, .. })),
        "{imported:?}"
    );
    assert!(!to.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(scratch("gap"));
}
