//! The replicated state: znodes, ACLs and watches, changed only by applying txns.
//!
//! [`Database`] bundles the [`DataTree`] with the two [`WatchManager`]s and a gate. Readers
//! hold the gate shared for the duration of one request, so reading a node and leaving a
//! watch on it is atomic with respect to changes; [`Database::apply`] holds it exclusively
//! while it changes the tree and hands out the triggered notifications, so a client always
//! receives the notification before any read that reflects the change, and no reader sees
//! half of a multi. Beside them it keeps what ZooKeeper's `DataTree` measures of its
//! state: the bytes each namespace reads and writes ([`traffic`]) and the tree's digest
//! at every 128th zxid ([`digest`]). This module owns no sockets, tasks or clocks.

pub mod acl;
mod apply;
pub mod child_walk;
pub mod children;
pub mod data_tree;
pub mod digest;
pub mod java_hash_set;
pub mod node;
mod packed;
pub mod quota;
pub mod snapshot;
pub mod traffic;
mod varint;
pub mod watch;

use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};

pub use apply::{TxnResult, WatchEvent};
pub use data_tree::DataTree;
pub use traffic::NamespaceTraffic;
pub use watch::{EventType, WatchManager, WatcherId, WatcherMode};

use crate::tree::digest::DigestLog;
use crate::txn::Zxid;

/// The tree, its watches, and the last applied zxid, behind one read/apply gate.
#[derive(Debug)]
pub struct Database {
    gate: RwLock<()>,
    tree: DataTree,
    data_watches: WatchManager,
    child_watches: WatchManager,
    last_applied_zxid: AtomicI64,
    traffic: NamespaceTraffic,
    digests: DigestLog,
}

/// A consistent view for one read request; changes wait until it is dropped.
pub struct ReadView<'a> {
    _gate: RwLockReadGuard<'a, ()>,
    database: &'a Database,
}

impl Database {
    /// A database holding only ZooKeeper's system nodes.
    pub fn new(extended_types_enabled: bool) -> Database {
        Database {
            gate: RwLock::new(()),
            tree: DataTree::new(extended_types_enabled),
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            last_applied_zxid: AtomicI64::new(0),
            traffic: NamespaceTraffic::default(),
            digests: DigestLog::default(),
        }
    }

    /// A database over a tree recovered from a snapshot, as of `last_applied_zxid`.
    pub fn from_tree(tree: DataTree, last_applied_zxid: Zxid) -> Database {
        tree.setup_quotas();
        Database {
            gate: RwLock::new(()),
            tree,
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            last_applied_zxid: AtomicI64::new(last_applied_zxid.raw()),
            traffic: NamespaceTraffic::default(),
            digests: DigestLog::default(),
        }
    }

    /// Opens a consistent view for one read.
    pub fn read(&self) -> ReadView<'_> {
        ReadView { _gate: self.gate.read(), database: self }
    }

    /// The zxid of the last applied txn.
    pub fn last_applied_zxid(&self) -> Zxid {
        Zxid::new(self.last_applied_zxid.load(Ordering::Acquire))
    }

    /// The tree, for reads that need no consistency with watches (statistics, dumps).
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// Data and exists watches.
    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    /// Child watches.
    pub fn child_watches(&self) -> &WatchManager {
        &self.child_watches
    }

    /// The bytes applied writes and answered reads moved, by namespace.
    pub fn traffic(&self) -> &NamespaceTraffic {
        &self.traffic
    }

    /// The tree's digests kept so far (the `hash` command's list).
    pub fn digests(&self) -> &DigestLog {
        &self.digests
    }

    /// Keeps the tree's digest after `zxid` applied, if `zxid` is one of those
    /// ZooKeeper keeps. Called only for txns applied while serving: before that (a log
    /// replayed at start, a learner's sync after a snapshot taken while its leader
    /// wrote) the tree may hold changes of later txns, as ZooKeeper's fuzzy snapshots
    /// do, and ZooKeeper keeps no digest there either.
    pub fn keep_digest(&self, zxid: Zxid) {
        self.digests.applied(zxid, self.tree.digest());
    }

    /// Replaces the whole state with `tree` (a snapshot from the leader, built with
    /// [`DataTree::empty_like`] on this database's tree), as of `zxid`. Readers wait
    /// meanwhile; watches are kept, but a member only installs while it serves no clients.
    pub fn install(&self, zxid: Zxid, tree: DataTree) {
        let _gate = self.gate.write();
        self.tree.replace_with(tree);
        self.tree.setup_quotas();
        self.last_applied_zxid.store(zxid.raw(), Ordering::Release);
    }

    /// Puts the ensemble's membership in `/zookeeper/config` (see
    /// [`DataTree::set_config_node`]), counting the write as ZooKeeper's
    /// `initConfigInZKDatabase` does: at start, and on a learner after each sync with its
    /// leader and after a snapshot from it.
    pub fn set_config_node(&self, membership_text: &str, membership_version: Zxid, now_ms: i64) {
        let _gate = self.gate.write();
        self.tree.set_config_node(membership_text, membership_version, now_ms);
        self.traffic.written(data_tree::CONFIG_NODE, membership_text.len() as u64);
    }

    /// Drops every watch of a closed connection.
    pub fn remove_watcher(&self, watcher: WatcherId) {
        self.data_watches.remove_watcher(watcher);
        self.child_watches.remove_watcher(watcher);
    }
}

impl ReadView<'_> {
    /// The tree as of this view.
    pub fn tree(&self) -> &DataTree {
        &self.database.tree
    }

    /// The zxid of the last applied txn, which every reply header carries.
    pub fn last_applied_zxid(&self) -> Zxid {
        self.database.last_applied_zxid()
    }

    /// Data and exists watches.
    pub fn data_watches(&self) -> &WatchManager {
        &self.database.data_watches
    }

    /// Child watches.
    pub fn child_watches(&self) -> &WatchManager {
        &self.database.child_watches
    }

    /// Where a read records the bytes it answers.
    pub fn traffic(&self) -> &NamespaceTraffic {
        &self.database.traffic
    }
}
