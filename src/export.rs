//! `zkrs export`: Apache ZooKeeper's data directory made from a stopped zkrs server's, the
//! way back for a team that moved (the rollback of `zkrs import`). It holds what ZooKeeper
//! itself would hold in zkrs's place: the newest snapshot that loads, as a ZooKeeper
//! snapshot with its sessions, and the txns logged after it as a ZooKeeper txn log, with
//! the epochs as ZooKeeper's `acceptedEpoch` and `currentEpoch` files. ZooKeeper 3.8
//! replays the log at start and serves the same znodes, Stats and ACLs.
//!
//! The log stays a log, not applied into the snapshot, because an ensemble member's log
//! may end in txns no quorum committed: a new leader tells ZooKeeper to truncate them
//! (TRUNC), which it can do in a log and cannot do in a snapshot (it exits, "No log files
//! found to truncate!").

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::record::decode_entry;
use crate::storage::recovery::{recover, Replay};
use crate::storage::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::tree::data_tree::{child_path, DataTree};
use crate::zk_format::snapshot::{encode, Snapshot, SnapshotNode};
use crate::zk_format::{copy_myid, txn_log};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The zkrs store could not be read or recovered.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The target already holds ZooKeeper data.
    #[error("{0} already holds ZooKeeper data; export into an empty directory")]
    TargetInUse(String),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Report(#[from] std::io::Error),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The snapshot's zxid.
    pub snapshot_zxid: i64,
    /// Nodes in the snapshot.
    pub nodes: usize,
    /// Sessions in the snapshot.
    pub sessions: usize,
    /// Txns in the log after the snapshot.
    pub txns: usize,
    /// The last zxid: where ZooKeeper's state is once it replays the log.
    pub last_zxid: i64,
}

/// Where an export writes: ZooKeeper's dataDir and, when its zoo.cfg keeps the txn logs
/// apart, its dataLogDir.
#[derive(Debug, Clone)]
pub struct ZooKeeperTarget {
    /// ZooKeeper's dataDir: the snapshot, epochs and `myid` go here.
    pub data_dir: PathBuf,
    /// ZooKeeper's dataLogDir: the txn log goes here (else into the dataDir).
    pub data_log_dir: Option<PathBuf>,
}

/// Exports the zkrs store in `data_dir` (its log in `data_log_dir`, as zoo.cfg's
/// `dataLogDir`) into ZooKeeper's directories `to`, reporting to `report`.
///
/// # Errors
/// See [`ExportError`].
pub fn export(
    data_dir: &Path,
    data_log_dir: Option<&Path>,
    to: &ZooKeeperTarget,
    report: &mut dyn Write,
) -> Result<Exported, ExportError> {
    let snapshots = to.data_dir.join("version-2");
    let logs = to.data_log_dir.as_ref().unwrap_or(&to.data_dir).join("version-2");
    for target in [&snapshots, &logs] {
        if std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
            let dir = target.parent().unwrap_or(target);
            return Err(ExportError::TargetInUse(dir.display().to_string()));
        }
    }
    let storage = RocksStorage::open_read_only(data_dir, data_log_dir)?;
    let epochs = storage.epochs()?;
    let recovered = recover(&storage, true, Replay::Collect)?;
    let snapshot_zxid = recovered.snapshot.map_or(0, |header| header.zxid.raw());
    let snapshot = Snapshot {
        zxid: snapshot_zxid,
        sessions: recovered.sessions.iter().map(|(id, timeout)| (id.raw(), *timeout)).collect(),
        nodes: nodes_of(recovered.database.tree()),
    };
    let txns = recovered
        .unapplied
        .iter()
        .map(|entry| decode_entry(entry).map(|txn| txn.encode()))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(&snapshots).map_err(write_error(&snapshots))?;
    let file = snapshots.join(format!("snapshot.{snapshot_zxid:x}"));
    std::fs::write(&file, encode(&snapshot)).map_err(write_error(&file))?;
    if let Some(first) = recovered.unapplied.first() {
        std::fs::create_dir_all(&logs).map_err(write_error(&logs))?;
        let log = logs.join(format!("log.{:x}", first.zxid.raw()));
        let encoded = txn_log::encode(txns.iter().map(|txn| &txn[..]));
        std::fs::write(&log, encoded).map_err(write_error(&log))?;
    }
    for (name, epoch) in [("acceptedEpoch", epochs.accepted), ("currentEpoch", epochs.current)] {
        let path = snapshots.join(name);
        std::fs::write(&path, epoch.to_string()).map_err(write_error(&path))?;
    }
    copy_myid(data_dir, &to.data_dir).map_err(|(path, source)| write_error(&path)(source))?;
    let exported = Exported {
        snapshot_zxid,
        nodes: snapshot.nodes.len(),
        sessions: snapshot.sessions.len(),
        txns: txns.len(),
        last_zxid: recovered.last_zxid.raw(),
    };
    writeln!(
        report,
        "exported into {}: {} nodes and {} sessions at 0x{snapshot_zxid:x}, {} txns after it, \
         up to 0x{:x}",
        to.data_dir.display(),
        exported.nodes,
        exported.sessions,
        exported.txns,
        exported.last_zxid,
    )?;
    Ok(exported)
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> ExportError {
    let path: PathBuf = path.to_owned();
    move |source| ExportError::Write { path: path.display().to_string(), source }
}

/// Every node of `tree`, parents first.
fn nodes_of(tree: &DataTree) -> Vec<SnapshotNode> {
    let mut nodes = Vec::with_capacity(tree.node_count());
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        let node = tree.with_node(&path, |node, _| SnapshotNode {
            path: path.clone(),
            data: node.data().map(bytes::Bytes::copy_from_slice),
            acl: tree.acl(node.acl()).to_vec(),
            stat: node.persisted_stat(),
        });
        if let Some(node) = node {
            nodes.push(node);
            let mut children = tree.children(&path);
            children.sort_unstable_by(|a, b| b.cmp(a));
            pending.extend(children.iter().map(|child| child_path(&path, child)));
        }
    }
    nodes
}
