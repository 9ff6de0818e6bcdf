//! `zkrs export`: Apache ZooKeeper's data directory made from a stopped zkrs server's, the
//! way back for a team that moved (the rollback of `zkrs import`). The zkrs state is
//! recovered as `zkrs server` would recover it, every logged txn applied, and written as
//! one ZooKeeper snapshot at its last zxid, with the open sessions, and the epochs as
//! ZooKeeper's `acceptedEpoch` and `currentEpoch` files. ZooKeeper 3.8 starts from it and
//! serves the same znodes, Stats and ACLs.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::recovery::{recover, Replay};
use crate::storage::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::tree::data_tree::{child_path, DataTree};
use crate::zk_format::copy_myid;
use crate::zk_format::snapshot::{encode, Snapshot, SnapshotNode};

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
    /// The snapshot's zxid: the last one applied.
    pub zxid: i64,
    /// Nodes written.
    pub nodes: usize,
    /// Sessions written.
    pub sessions: usize,
}

/// Exports the zkrs store in `data_dir` (its log in `data_log_dir`, as zoo.cfg's
/// `dataLogDir`) into ZooKeeper's `to/version-2`, reporting to `report`.
///
/// # Errors
/// See [`ExportError`].
pub fn export(
    data_dir: &Path,
    data_log_dir: Option<&Path>,
    to: &Path,
    report: &mut dyn Write,
) -> Result<Exported, ExportError> {
    let target = to.join("version-2");
    if std::fs::read_dir(&target).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ExportError::TargetInUse(to.display().to_string()));
    }
    let storage = RocksStorage::open_read_only(data_dir, data_log_dir)?;
    let epochs = storage.epochs()?;
    let recovered = recover(&storage, true, Replay::Apply)?;
    let zxid = recovered.last_zxid.raw();
    let snapshot = Snapshot {
        zxid,
        sessions: recovered.sessions.iter().map(|(id, timeout)| (id.raw(), *timeout)).collect(),
        nodes: nodes_of(recovered.database.tree()),
    };
    std::fs::create_dir_all(&target).map_err(write_error(&target))?;
    let file = target.join(format!("snapshot.{zxid:x}"));
    std::fs::write(&file, encode(&snapshot)).map_err(write_error(&file))?;
    for (name, epoch) in [("acceptedEpoch", epochs.accepted), ("currentEpoch", epochs.current)] {
        let path = target.join(name);
        std::fs::write(&path, epoch.to_string()).map_err(write_error(&path))?;
    }
    copy_myid(data_dir, to).map_err(|(path, source)| write_error(&path)(source))?;
    let exported =
        Exported { zxid, nodes: snapshot.nodes.len(), sessions: snapshot.sessions.len() };
    writeln!(
        report,
        "exported {} nodes and {} sessions at 0x{zxid:x} into {}",
        exported.nodes,
        exported.sessions,
        file.display()
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
            data: node.data.as_deref().map(bytes::Bytes::copy_from_slice),
            acl: tree.acl(node.acl).to_vec(),
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
