//! `zkrs import`: a zkrs data directory made from Apache ZooKeeper's, for a team moving
//! its data from ZooKeeper. It restores ZooKeeper's state as ZooKeeper's own start does
//! (`FileTxnSnapLog.restore`): the newest snapshot that reads cleanly (an older one if
//! not), then every logged txn after it, from the log file that may hold the first of
//! them on. The snapshot goes into the new store as a zkrs snapshot at the same zxid, the
//! txns after it as zkrs log entries, which zkrs replays at start as ZooKeeper would; the
//! epochs come from `acceptedEpoch` and `currentEpoch` (a standalone ZooKeeper has none,
//! and then the last zxid's epoch is both), and `myid` is copied along.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::server::snapshotter::take_snapshot_of;
use crate::server::Clock;
use crate::storage::record::encode_entry;
use crate::storage::recovery::follows;
use crate::storage::rocks::{store_paths, RocksStorage};
use crate::storage::{Epochs, LogEntry, Storage, StorageError};
use crate::tree::data_tree::DataTree;
use crate::tree::node::Node;
use crate::txn::{SessionId, Txn, Zxid};
use crate::zk_format::snapshot::{stream_snapshot, SnapshotNode, TransferPiece};
use crate::zk_format::txn_log::read_log;
use crate::zk_format::{copy_myid, zxid_of_file_name, ZkFileError};

/// Log entries appended to the new store at a time.
const APPEND_BATCH: usize = 10_000;

/// Why an import failed; nothing usable is left in the new directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A ZooKeeper file could not be read.
    #[error(transparent)]
    ZooKeeper(#[from] ZkFileError),
    /// A ZooKeeper directory could not be listed, or `myid` not copied.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No snapshot that reads cleanly: ZooKeeper would not start either.
    #[error("no readable ZooKeeper snapshot in {0}")]
    NoSnapshot(String),
    /// A logged txn is not one ZooKeeper writes.
    #[error("{file}: the txn at zxid 0x{zxid:x} does not decode: {source}")]
    BadTxn {
        /// The log file.
        file: String,
        /// Its zxid.
        zxid: i64,
        /// Why.
        source: jute::DecodeError,
    },
    /// The logs skip or repeat a zxid after the snapshot: zkrs would refuse such a log
    /// at start, so the import does first.
    #[error(
        "{file}: zxid 0x{zxid:x} does not follow 0x{previous:x} (a txn is missing or repeated)"
    )]
    OutOfOrder {
        /// The log file.
        file: String,
        /// The txn's zxid.
        zxid: i64,
        /// The zxid before it.
        previous: i64,
    },
    /// The target already holds a zkrs store.
    #[error("{0} already holds a zkrs store; import into an empty directory")]
    TargetInUse(String),
    /// An epoch file does not hold a number.
    #[error("{path} does not hold an epoch: {text:?}")]
    BadEpoch {
        /// The file.
        path: String,
        /// What it holds.
        text: String,
    },
    /// Writing the new store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Report(#[from] std::io::Error),
}

/// Where the ZooKeeper data is: `dataDir`, and `dataLogDir` when it has one.
#[derive(Debug, Clone)]
pub struct ZooKeeperDirs {
    /// ZooKeeper's `dataDir` (snapshots, epochs).
    pub data_dir: PathBuf,
    /// ZooKeeper's `dataLogDir` (txn logs); `dataDir` when `None`.
    pub data_log_dir: Option<PathBuf>,
}

/// What an import brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The snapshot's zxid.
    pub snapshot_zxid: i64,
    /// Nodes in the snapshot.
    pub nodes: usize,
    /// Sessions in the snapshot.
    pub sessions: usize,
    /// Txns after the snapshot, now zkrs log entries.
    pub txns: usize,
    /// The last zxid: where the imported state is once replayed.
    pub last_zxid: i64,
}

/// Imports the ZooKeeper data in `from` into a new zkrs store in `to` (and its log in
/// `to_log_dir`, as zoo.cfg's `dataLogDir`), reporting each step to `report`.
///
/// # Errors
/// See [`ImportError`].
pub fn import(
    from: &ZooKeeperDirs,
    to: &Path,
    to_log_dir: Option<&Path>,
    report: &mut dyn Write,
) -> Result<Imported, ImportError> {
    let snap_dir = from.data_dir.join("version-2");
    let log_dir = from.data_log_dir.as_deref().unwrap_or(&from.data_dir).join("version-2");
    let snapshot = newest_readable_snapshot(&snap_dir, report)?;
    writeln!(
        report,
        "snapshot 0x{:x}: {} nodes, {} sessions",
        snapshot.zxid,
        snapshot.nodes,
        snapshot.sessions.len()
    )?;
    let txns = txns_after(&log_dir, snapshot.zxid, report)?;
    let last_zxid = txns.last().map_or(snapshot.zxid, |txn| txn.zxid().raw());
    let epochs = read_epochs(&snap_dir, Zxid::new(last_zxid))?;

    let entries: Vec<LogEntry> = txns.iter().map(encode_entry).collect();
    write_store(to, to_log_dir, &snapshot, &entries, epochs)?;
    copy_myid(&from.data_dir, to)
        .map_err(|(path, source)| ImportError::Io { path: path.display().to_string(), source })?;
    let imported = Imported {
        snapshot_zxid: snapshot.zxid,
        nodes: snapshot.nodes,
        sessions: snapshot.sessions.len(),
        txns: txns.len(),
        last_zxid,
    };
    writeln!(
        report,
        "imported into {}: {} nodes at 0x{:x}, {} txns after it, up to 0x{:x}; epochs \
         accepted {} current {}",
        to.display(),
        imported.nodes,
        imported.snapshot_zxid,
        imported.txns,
        imported.last_zxid,
        epochs.accepted,
        epochs.current
    )?;
    Ok(imported)
}

/// ZooKeeper's files of one kind in `dir`, `(zxid, path)`, by zxid.
fn files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ImportError> {
    let listing = |source| ImportError::Io { path: dir.display().to_string(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let path = entry.map_err(listing)?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if let Some(zxid) = zxid_of_file_name(name, prefix) {
            files.push((zxid, path));
        }
    }
    files.sort();
    Ok(files)
}

/// Makes a new zkrs store in `to` (its log in `to_log_dir`) that starts from `snapshot`
/// and replays `entries` (the txns after it, in order) at start, with `epochs`.
///
/// # Errors
/// [`ImportError::TargetInUse`] if `to` holds a store already, or the store's errors.
pub fn write_store(
    to: &Path,
    to_log_dir: Option<&Path>,
    snapshot: &LoadedSnapshot,
    entries: &[LogEntry],
    epochs: Epochs,
) -> Result<(), ImportError> {
    if store_paths(to, to_log_dir).0.exists() {
        return Err(ImportError::TargetInUse(to.display().to_string()));
    }
    let storage = RocksStorage::open(to, to_log_dir, true)?;
    let created_ms = i64::try_from(Clock::system().wall_ms()).unwrap_or(i64::MAX);
    let stopping = AtomicBool::new(false);
    let zxid = Zxid::new(snapshot.zxid);
    let sessions = &snapshot.sessions;
    take_snapshot_of(&snapshot.tree, &storage, zxid, sessions, created_ms, &stopping)?;
    for batch in entries.chunks(APPEND_BATCH) {
        storage.append(batch)?;
    }
    storage.set_epochs(epochs)?;
    Ok(())
}

/// A ZooKeeper snapshot loaded into a zkrs tree.
pub struct LoadedSnapshot {
    /// Its zxid.
    pub zxid: i64,
    /// Its nodes.
    pub tree: DataTree,
    /// Its sessions.
    pub sessions: Vec<(SessionId, i32)>,
    /// How many nodes.
    pub nodes: usize,
}

/// Loads the ZooKeeper snapshot file at `path` (named `snapshot.<zxid>`) into a new tree,
/// as a stream: it is never held whole.
///
/// # Errors
/// As [`stream_snapshot`], or a node without its parent.
pub fn load_snapshot(path: &Path) -> Result<LoadedSnapshot, ZkFileError> {
    let tree = DataTree::empty(true);
    let mut sessions = Vec::new();
    let mut nodes = 0usize;
    let zxid = stream_snapshot(path, &mut |piece| match piece {
        TransferPiece::Sessions(list) => {
            sessions = list.into_iter().map(|(id, to)| (SessionId::new(id), to)).collect();
            Ok(())
        }
        TransferPiece::Node(node) => {
            nodes += 1;
            load_node(&tree, &node)
        }
    })?;
    Ok(LoadedSnapshot { zxid, tree, sessions, nodes })
}

/// `FileSnap.deserialize`: the newest snapshot first, an older one if it does not read
/// (ZooKeeper skips one that fails its checksum, does not decode, or is no tree). Each
/// is read as a stream, straight into a tree: the snapshot is never held whole.
fn newest_readable_snapshot(
    dir: &Path,
    report: &mut dyn Write,
) -> Result<LoadedSnapshot, ImportError> {
    for (_, path) in files(dir, "snapshot")?.into_iter().rev() {
        match load_snapshot(&path) {
            Ok(loaded) => return Ok(loaded),
            Err(err) => writeln!(report, "skipping {}: {err}", path.display())?,
        }
    }
    Err(ImportError::NoSnapshot(dir.display().to_string()))
}

/// `FileTxnLog.getLogFiles` and its iterator: the txns after `snapshot_zxid`, from the
/// newest log file starting at or before it on.
fn txns_after(
    dir: &Path,
    snapshot_zxid: i64,
    report: &mut dyn Write,
) -> Result<Vec<Txn>, ImportError> {
    let logs = files(dir, "log")?;
    let first = logs.iter().rposition(|(start, _)| *start <= snapshot_zxid).unwrap_or(0);
    let mut txns: Vec<Txn> = Vec::new();
    for (_, path) in logs.iter().skip(first) {
        let file = path.display().to_string();
        let log = read_log(path)?;
        if log.partial_tail {
            writeln!(report, "{file}: its last txn was partial, as after a crash; ignored")?;
        }
        for logged in log.txns.into_iter().filter(|logged| logged.zxid > snapshot_zxid) {
            let previous = txns.last().map_or(snapshot_zxid, |txn| txn.zxid().raw());
            if !follows(Zxid::new(previous), Zxid::new(logged.zxid)) {
                return Err(ImportError::OutOfOrder {
                    file: file.clone(),
                    zxid: logged.zxid,
                    previous,
                });
            }
            let txn = Txn::decode(&logged.bytes).map_err(|source| ImportError::BadTxn {
                file: file.clone(),
                zxid: logged.zxid,
                source,
            })?;
            txns.push(txn);
        }
    }
    Ok(txns)
}

/// ZooKeeper's `acceptedEpoch` and `currentEpoch` files (decimal text), or, where a
/// standalone server left none, the epoch of the last zxid.
fn read_epochs(dir: &Path, last_zxid: Zxid) -> Result<Epochs, ImportError> {
    let read = |name: &str| -> Result<u32, ImportError> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| ImportError::BadEpoch {
                path: path.display().to_string(),
                text: text.clone(),
            }),
            Err(_) => Ok(last_zxid.epoch()),
        }
    };
    Ok(Epochs { accepted: read("acceptedEpoch")?, current: read("currentEpoch")? })
}

/// Adds a node of a ZooKeeper snapshot to `tree`, which holds its parent already (as
/// ZooKeeper's snapshots list parents first): an import's, or a learner's loading the
/// snapshot a ZooKeeper leader streams.
///
/// # Errors
/// A node without its parent or that appears twice, which ZooKeeper refuses too
/// ("Invalid Datatree").
pub fn load_node(tree: &DataTree, node: &SnapshotNode) -> Result<(), String> {
    let (parent, name) = parent_and_name(&node.path);
    if !parent.is_empty() && !tree.exists(parent) {
        return Err(format!("{} comes without its parent", node.path));
    }
    // Each node holds one reference on its interned ACL list.
    let acl = tree.intern_acl(&node.acl);
    let zkrs_node = Node::from_persisted(name, node.data.as_deref(), acl, &node.stat);
    if tree.load_node(parent, zkrs_node).is_err() {
        tree.release_acl(acl);
        return Err(format!("{} appears twice", node.path));
    }
    Ok(())
}

/// `("", "")` for the root, else the parent's path (`/` at the top) and the last name.
fn parent_and_name(path: &str) -> (&str, &str) {
    if path == "/" {
        return ("", "");
    }
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

#[cfg(test)]
#[path = "import_test.rs"]
mod tests;
