//! The znode store: a concurrent map from a parent's path to the table of its children.
//!
//! Keying by parent path (not by each node's full path) means full paths are stored only
//! for nodes that have children; a leaf costs its name, its stat and its data. A node is
//! found with one map lookup plus one table lookup: `/a/b/c` lives in the table of `/a/b`
//! under `c`. The root lives in the table of `""` under `""`, so every node, the root
//! included, has a parent table.
//!
//! Readers use `&self` concurrently. Mutations (`pub(super)`, used only by `apply`) also
//! take `&self`, and the caller must make them exclusive: [`crate::tree::Database`] holds
//! its gate for writing around every apply, which also makes a multi atomic for readers.

use std::collections::{BTreeSet, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use jute::records::{Acl, Stat, StatPersisted};
use jute::Code;
use parking_lot::{Mutex, RwLock};

use crate::tree::acl::{AclCache, AclId, AclList};
use crate::tree::children::{Children, Hasher};
use crate::tree::digest::node_digest;
use crate::tree::java_hash_set::JavaHashSet;
use crate::tree::node::{Node, NodeKind};
use crate::tree::quota::{self, StatsTrack, Usage};
use crate::txn::{SessionId, Zxid};

/// Where every ZooKeeper keeps its ensemble's membership.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// The znodes, their ACLs, and the indexes ZooKeeper keeps beside them.
#[derive(Debug)]
pub struct DataTree {
    tables: DashMap<Box<str>, Children, Hasher>,
    /// Hashes child names in every [`Children`] table.
    hasher: Hasher,
    acls: RwLock<AclCache>,
    /// Each session's ephemeral paths, in the order ZooKeeper's hash set of them has; a
    /// session keeps its set, emptied or not, until it ends, as in ZooKeeper.
    ephemerals: Mutex<HashMap<SessionId, JavaHashSet>>,
    containers: Mutex<BTreeSet<String>>,
    ttls: Mutex<BTreeSet<String>>,
    node_count: AtomicUsize,
    /// Sum of path and data lengths, ZooKeeper's `approximate_data_size`.
    data_size: AtomicI64,
    /// The nodes' digests summed, wrapping: ZooKeeper's tree digest
    /// ([`crate::tree::digest`]).
    digest: AtomicU64,
    /// Whether the digest is kept (`digest.enabled`); when not, it stays 0.
    digest_enabled: AtomicBool,
    /// The paths that have a quota (a `zookeeper_limits` node), ZooKeeper's `pTrie`.
    quota_paths: RwLock<BTreeSet<String>>,
    extended_types_enabled: bool,
}

/// Splits a path into (parent path, name); the root (and its alias `""`) is `("", "")`.
/// `None` for strings without a `/`, which name no node.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.is_empty() || path == "/" {
        return Some(("", ""));
    }
    let slash = path.rfind('/')?;
    let parent = if slash == 0 { "/" } else { path.get(..slash)? };
    Some((parent, path.get(slash + 1..)?))
}

/// The length of the path of `parent`'s child `name`, as ZooKeeper's data size counts it.
fn path_len(parent: &str, name: &str) -> usize {
    match parent {
        "" => 1,
        "/" => 1 + name.len(),
        _ => parent.len() + 1 + name.len(),
    }
}

/// The key of the table holding `path`'s children (the root's alias `""` maps to `/`).
fn children_key(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// What [`DataTree::delete_node`] removed, for watch triggers.
#[derive(Debug)]
pub struct Deleted {
    /// The removed node's ACL; it stays interned until the caller releases it.
    pub acl: AclId,
}

impl DataTree {
    /// A tree holding what every ZooKeeper has: `/`, `/zookeeper`, `/zookeeper/quota`
    /// and `/zookeeper/config` (readable by anyone, writable by no one).
    pub fn new(extended_types_enabled: bool) -> DataTree {
        let tree = DataTree::empty(extended_types_enabled);
        let system_node = |name: &str, acl| Node::new(name, Some(&[]), acl, 0, Zxid::ZERO, 0);
        tree.insert_raw("", system_node("", AclId::OPEN));
        tree.insert_raw("/", system_node("zookeeper", AclId::OPEN));
        tree.insert_raw("/zookeeper", system_node("quota", AclId::OPEN));
        // ZooKeeper's addConfigNode sets the node's ACL with version -1, so its aversion
        // is -1 on every server.
        let mut config = system_node("config", AclId::READ_ONLY);
        config.change_stat(|stat, _| stat.aversion = -1);
        tree.insert_raw("/zookeeper", config);
        tree
    }

    /// A tree without even a root, to be filled from a snapshot.
    pub fn empty(extended_types_enabled: bool) -> DataTree {
        DataTree {
            tables: DashMap::with_hasher(Hasher::default()),
            hasher: Hasher::default(),
            acls: RwLock::new(AclCache::default()),
            ephemerals: Mutex::new(HashMap::new()),
            containers: Mutex::new(BTreeSet::new()),
            ttls: Mutex::new(BTreeSet::new()),
            node_count: AtomicUsize::new(0),
            data_size: AtomicI64::new(0),
            digest: AtomicU64::new(0),
            digest_enabled: AtomicBool::new(true),
            quota_paths: RwLock::new(BTreeSet::new()),
            extended_types_enabled,
        }
    }

    /// An empty tree to be filled from a snapshot and then moved into this one with
    /// [`DataTree::replace_with`]: it hashes child names as this one does.
    pub fn empty_like(&self) -> DataTree {
        let digest_enabled = AtomicBool::new(self.digest_enabled.load(Ordering::Relaxed));
        DataTree {
            hasher: self.hasher,
            digest_enabled,
            ..DataTree::empty(self.extended_types_enabled)
        }
    }

    /// Stops keeping the digest (`digest.enabled=false`, as ZooKeeper's
    /// `zookeeper.digest.enabled`): it stays 0, and trees loaded into this one keep none.
    pub fn disable_digest(&self) {
        self.digest_enabled.store(false, Ordering::Relaxed);
        self.digest.store(0, Ordering::Relaxed);
    }

    /// A node's digest while the digest is kept, else 0.
    fn digest_of(&self, parent: &str, node: &Node) -> u64 {
        if self.digest_enabled.load(Ordering::Relaxed) {
            node_digest(parent, node)
        } else {
            0
        }
    }

    /// Replaces everything in this tree with `other`'s contents, which must come from
    /// [`DataTree::empty_like`] on this tree. The caller keeps readers out meanwhile.
    pub fn replace_with(&self, other: DataTree) {
        let DataTree {
            tables,
            acls,
            ephemerals,
            containers,
            ttls,
            node_count,
            data_size,
            digest,
            ..
        } = other;
        self.tables.clear();
        for (parent, children) in tables {
            self.tables.insert(parent, children);
        }
        *self.acls.write() = acls.into_inner();
        *self.ephemerals.lock() = ephemerals.into_inner();
        *self.containers.lock() = containers.into_inner();
        *self.ttls.lock() = ttls.into_inner();
        self.node_count.store(node_count.into_inner(), Ordering::Relaxed);
        self.data_size.store(data_size.into_inner(), Ordering::Relaxed);
        self.digest.store(digest.into_inner(), Ordering::Relaxed);
    }

    /// ZooKeeper's digest of the tree as it is now.
    pub fn digest(&self) -> u64 {
        self.digest.load(Ordering::Relaxed)
    }

    /// The tree's digest computed afresh from every node, which [`DataTree::digest`]
    /// keeps up to date change by change: what checks that it does.
    pub fn computed_digest(&self) -> u64 {
        let root = self
            .tables
            .get("")
            .and_then(|table| table.get(&self.hasher, "").map(|root| self.digest_of("", root)));
        let mut digest = root.unwrap_or(0);
        self.for_each_descendant("/", |parent, node| {
            digest = digest.wrapping_add(self.digest_of(parent, node));
        });
        digest
    }

    /// Counts a node's digest going from `before` to `after` (wrapping, as ZooKeeper's
    /// long sum does).
    fn change_digest(&self, before: u64, after: u64) {
        self.digest.fetch_add(after.wrapping_sub(before), Ordering::Relaxed);
    }

    /// Adds `node` to the table of `parent`; the caller has checked that its name is free.
    fn insert_raw(&self, parent: &str, node: Node) {
        let inserted = self.try_insert(parent, node);
        assert!(inserted, "a node was inserted over a sibling of the same name");
    }

    /// Adds `node` to the table of `parent` unless a sibling has its name: the check and
    /// the insertion hold the table's lock together, so concurrent loaders cannot both
    /// insert one name.
    fn try_insert(&self, parent: &str, node: Node) -> bool {
        let size = (path_len(parent, node.name()) + node.data_len()) as i64;
        let digest = self.digest_of(parent, &node);
        let inserted = self.table_of(parent).insert(&self.hasher, node);
        if inserted {
            self.change_digest(0, digest);
            self.data_size.fetch_add(size, Ordering::Relaxed);
            self.node_count.fetch_add(1, Ordering::Relaxed);
        }
        inserted
    }

    /// Adds a new node's path to the index its kind has (none for a persistent node).
    fn index(&self, kind: NodeKind, path: String) {
        match kind {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.lock().insert(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.lock().insert(path);
            }
            NodeKind::Ephemeral(session) => {
                self.ephemerals.lock().entry(session).or_default().insert(path);
            }
        }
    }

    /// The table of `parent`'s children, made if it has none, locked for writing.
    fn table_of(&self, parent: &str) -> impl DerefMut<Target = Children> + '_ {
        // The parent's table is usually there: found without allocating its key.
        match self.tables.get_mut(parent) {
            Some(table) => table,
            None => self.tables.entry(parent.into()).or_default(),
        }
    }

    /// Whether TTL owners are decoded as TTLs (`extendedTypesEnabled`).
    pub fn extended_types_enabled(&self) -> bool {
        self.extended_types_enabled
    }

    /// Number of children of `path` (0 for a missing node).
    pub fn num_children(&self, path: &str) -> usize {
        self.tables.get(children_key(path)).map_or(0, |table| table.len())
    }

    /// Calls `f` with the node at `path` and its number of children.
    pub fn with_node<R>(&self, path: &str, f: impl FnOnce(&Node, usize) -> R) -> Option<R> {
        let (parent, name) = split_path(path)?;
        let num_children = self.num_children(path);
        let table = self.tables.get(parent)?;
        let node = table.get(&self.hasher, name)?;
        Some(f(node, num_children))
    }

    /// The client-visible stat of `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.with_node(path, |node, num_children| {
            node.stat(num_children, self.extended_types_enabled)
        })
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.with_node(path, |_, _| ()).is_some()
    }

    /// Names of the children of `path`, in no particular order (as ZooKeeper's HashSet).
    pub fn children(&self, path: &str) -> Vec<String> {
        match self.tables.get(children_key(path)) {
            Some(table) => table.names().map(str::to_owned).collect(),
            None => Vec::new(),
        }
    }

    /// Number of descendants of `path`, not counting itself (`getAllChildrenNumber`).
    pub fn descendant_count(&self, path: &str) -> usize {
        if path == "/" {
            return self.node_count().saturating_sub(1);
        }
        let mut count = 0;
        self.for_each_descendant(path, |_, _| count += 1);
        count
    }

    /// Calls `f` with every node below `path` (not `path` itself) and its parent's path,
    /// holding one child table's lock at a time; `f` must not touch the tree.
    fn for_each_descendant(&self, path: &str, mut f: impl FnMut(&str, &Node)) {
        let mut pending = vec![children_key(path).to_owned()];
        while let Some(parent) = pending.pop() {
            let Some(table) = self.tables.get(parent.as_str()) else {
                continue;
            };
            for child in table.iter() {
                f(&parent, child);
                pending.push(child_path(&parent, child.name()));
            }
        }
    }

    /// The ACL list behind an id.
    pub fn acl(&self, id: AclId) -> AclList {
        self.acls.read().get(id)
    }

    /// Number of distinct ACL lists in use.
    pub fn acl_count(&self) -> usize {
        self.acls.read().len()
    }

    /// The session's ephemeral nodes, in the order ZooKeeper's `getEphemerals` gives them.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.ephemeral_set(session).iter().cloned().collect()
    }

    /// A copy of the session's set of ephemeral nodes as ZooKeeper's `getEphemerals`
    /// makes it, which a closeSession then brings up to date with the pending changes.
    pub fn ephemeral_set(&self, session: SessionId) -> JavaHashSet {
        self.ephemerals.lock().get(&session).map(JavaHashSet::java_clone).unwrap_or_default()
    }

    /// Forgets the set of an ended session (its nodes are deleted by then).
    pub fn end_ephemerals(&self, session: SessionId) {
        self.ephemerals.lock().remove(&session);
    }

    /// Every session that has had ephemeral nodes (ZooKeeper keeps a set emptied by
    /// deletes until the session ends), with its paths, sorted by session.
    pub fn all_ephemerals(&self) -> Vec<(SessionId, Vec<String>)> {
        let mut all: Vec<_> = self
            .ephemerals
            .lock()
            .iter()
            .map(|(session, paths)| (*session, paths.iter().cloned().collect()))
            .collect();
        all.sort();
        all
    }

    /// Number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.lock().values().map(JavaHashSet::len).sum()
    }

    /// Paths of all container nodes.
    pub fn containers(&self) -> Vec<String> {
        self.containers.lock().iter().cloned().collect()
    }

    /// Paths of all TTL nodes.
    pub fn ttls(&self) -> Vec<String> {
        self.ttls.lock().iter().cloned().collect()
    }

    /// Number of znodes, the root and `/zookeeper` included.
    pub fn node_count(&self) -> usize {
        self.node_count.load(Ordering::Relaxed)
    }

    /// Sum of path and data lengths over all nodes.
    pub fn approximate_data_size(&self) -> i64 {
        self.data_size.load(Ordering::Relaxed)
    }

    /// Adds a node (`DataTree.createNode`). `parent_cversion` -1 means "one more than
    /// now"; the parent's cversion and pzxid only ever move forward.
    ///
    /// # Errors
    /// `NoNode` without a parent, `NodeExists` if the path is taken.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_node(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: Zxid,
        time: i64,
    ) -> Result<Stat, Code> {
        let (parent, name) = split_path(path).ok_or(Code::NoNode)?;
        if name.is_empty() {
            return Err(Code::NodeExists);
        }
        let (grandparent, parent_name) = split_path(parent).ok_or(Code::NoNode)?;
        // One shard guard at a time: DashMap guards must not nest. A missing parent has
        // no children, so it fails below, at its own lookup, with NoNode.
        if self.tables.get(parent).is_some_and(|children| children.contains(&self.hasher, name)) {
            return Err(Code::NodeExists);
        }
        {
            let mut table = self.tables.get_mut(grandparent).ok_or(Code::NoNode)?;
            let parent_node = table.get_mut(&self.hasher, parent_name).ok_or(Code::NoNode)?;
            let before = self.digest_of(grandparent, parent_node);
            parent_node.change_stat(|stat, _| advance_cversion(stat, parent_cversion, zxid));
            self.change_digest(before, self.digest_of(grandparent, parent_node));
        }
        let acl_id = self.acls.write().intern(acl);
        let node = Node::new(name, data, acl_id, ephemeral_owner, zxid, time);
        let stat = node.stat(0, self.extended_types_enabled);
        self.insert_raw(parent, node);
        let kind = NodeKind::from_owner(ephemeral_owner, self.extended_types_enabled);
        if kind != NodeKind::Persistent {
            self.index(kind, path.to_owned());
        }
        if let Some(quota_path) = quota::quota_path_of(parent) {
            match name {
                quota::LIMITS_NODE => {
                    self.quota_paths.write().insert(quota_path.to_owned());
                }
                quota::STATS_NODE => self.refresh_quota_usage(quota_path),
                _ => {}
            }
        }
        self.count_in_quota(path, Usage::node(data.map_or(0, <[u8]>::len)));
        Ok(stat)
    }

    /// Removes a leaf node (`DataTree.deleteNode`). The parent's pzxid moves forward
    /// even when the child is already gone, as in ZooKeeper.
    ///
    /// # Errors
    /// `NoNode` if the parent or the node is missing.
    pub(super) fn delete_node(&self, path: &str, zxid: Zxid) -> Result<Deleted, Code> {
        let (parent, name) = split_path(path).ok_or(Code::NoNode)?;
        let (grandparent, parent_name) = split_path(parent).ok_or(Code::NoNode)?;
        if name.is_empty() {
            return Err(Code::NoNode);
        }
        {
            let mut table = self.tables.get_mut(grandparent).ok_or(Code::NoNode)?;
            let parent_node = table.get_mut(&self.hasher, parent_name).ok_or(Code::NoNode)?;
            if zxid > parent_node.pzxid() {
                let before = self.digest_of(grandparent, parent_node);
                parent_node.change_stat(|stat, _| stat.pzxid = zxid.raw());
                self.change_digest(before, self.digest_of(grandparent, parent_node));
            }
        }
        let node = {
            let mut siblings = self.tables.get_mut(parent).ok_or(Code::NoNode)?;
            let node = siblings.remove(&self.hasher, name).ok_or(Code::NoNode)?;
            let now_empty = siblings.is_empty();
            drop(siblings);
            if now_empty {
                self.tables.remove_if(parent, |_, table| table.is_empty());
            }
            node
        };
        self.change_digest(self.digest_of(parent, &node), 0);
        self.node_count.fetch_sub(1, Ordering::Relaxed);
        self.data_size.fetch_sub((path.len() + node.data_len()) as i64, Ordering::Relaxed);
        match NodeKind::from_owner(node.ephemeral_owner(), self.extended_types_enabled) {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.lock().remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.lock().remove(path);
            }
            NodeKind::Ephemeral(session) => {
                if let Some(paths) = self.ephemerals.lock().get_mut(&session) {
                    paths.remove(path);
                }
            }
        }
        if name == quota::LIMITS_NODE {
            if let Some(quota_path) = quota::quota_path_of(parent) {
                self.quota_paths.write().remove(quota_path);
            }
        }
        self.count_in_quota(path, Usage::default() - Usage::node(node.data_len()));
        Ok(Deleted { acl: node.acl() })
    }

    /// Paths of the nodes that have children (the keys of the child tables), for
    /// walking the tree one table at a time.
    pub fn parents(&self) -> Vec<String> {
        self.tables.iter().map(|entry| entry.key().to_string()).collect()
    }

    /// The table of `parent`'s children (`""` holds the root), read-locked while held.
    pub(super) fn child_table(&self, parent: &str) -> Option<impl Deref<Target = Children> + '_> {
        self.tables.get(parent)
    }

    /// The hasher of every child table, to look a child up in one.
    pub(super) fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Every interned ACL list with its id: the ACL cache a snapshot sent to a
    /// learner starts with.
    pub fn acl_lists(&self) -> Vec<(AclId, AclList)> {
        self.acls.read().lists()
    }

    /// Interns an ACL list, taking one reference the caller must give back with
    /// [`DataTree::release_acl`] (snapshot loading interns a list once per chunk).
    pub fn intern_acl(&self, acl: &[Acl]) -> AclId {
        self.acls.write().intern(acl)
    }

    /// Takes `count` more references on an interned ACL list: one per node that uses it.
    pub fn acquire_acl(&self, acl: AclId, count: u64) {
        self.acls.write().acquire(acl, count);
    }

    /// Adds a node read from a snapshot under `parent`, indexing it as `create` would.
    /// The caller takes the node's reference on its ACL list ([`DataTree::acquire_acl`]),
    /// one call for all the nodes of a chunk rather than a lock per node.
    ///
    /// # Errors
    /// `NodeExists` if the snapshot holds the same node twice.
    pub fn load_node(&self, parent: &str, node: Node) -> Result<(), Code> {
        self.load_nodes(parent, vec![node])
    }

    /// [`DataTree::load_node`] for several children of `parent` at once (a group of a
    /// snapshot chunk): one hold of the table's lock, and one merge into a sorted table.
    ///
    /// # Errors
    /// `NodeExists` if a node is there already or comes twice. The tree is then
    /// part-loaded, to be thrown away.
    pub fn load_nodes(&self, parent: &str, nodes: Vec<Node>) -> Result<(), Code> {
        let count = nodes.len();
        let mut size = 0;
        let mut digest = 0u64;
        // Only the nodes an index keeps by path (none of most trees) need their path.
        let mut indexed = Vec::new();
        for node in &nodes {
            size += (path_len(parent, node.name()) + node.data_len()) as i64;
            digest = digest.wrapping_add(self.digest_of(parent, node));
            let kind = NodeKind::from_owner(node.ephemeral_owner(), self.extended_types_enabled);
            if !parent.is_empty() && kind != NodeKind::Persistent {
                indexed.push((kind, child_path(parent, node.name())));
            }
        }
        if !self.table_of(parent).insert_all(&self.hasher, nodes) {
            return Err(Code::NodeExists);
        }
        for (kind, path) in indexed {
            self.index(kind, path);
        }
        self.change_digest(0, digest);
        self.data_size.fetch_add(size, Ordering::Relaxed);
        self.node_count.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// Drops a reference to an ACL list, once a deleted node's notifications are out.
    pub fn release_acl(&self, acl: AclId) {
        self.acls.write().release(acl);
    }

    fn update<R>(&self, path: &str, f: impl FnOnce(&mut Node) -> R) -> Result<(R, Stat), Code> {
        let (parent, name) = split_path(path).ok_or(Code::NoNode)?;
        let num_children = self.num_children(path);
        let mut table = self.tables.get_mut(parent).ok_or(Code::NoNode)?;
        let node = table.get_mut(&self.hasher, name).ok_or(Code::NoNode)?;
        let before = self.digest_of(parent, node);
        let result = f(node);
        self.change_digest(before, self.digest_of(parent, node));
        Ok((result, node.stat(num_children, self.extended_types_enabled)))
    }

    /// The deepest path at or above `path` that has a quota, if any; a quota on `/`
    /// counts nothing, as in ZooKeeper (`getMaxPrefixWithQuota`).
    pub fn quota_path(&self, path: &str) -> Option<String> {
        let quota_paths = self.quota_paths.read();
        if quota_paths.is_empty() {
            return None;
        }
        let mut candidate = path;
        while candidate.len() > 1 {
            if quota_paths.contains(candidate) {
                return Some(candidate.to_owned());
            }
            candidate = split_path(candidate).map_or("", |(parent, _)| parent);
        }
        None
    }

    /// The contents of a quota's limits or usage node (`path` from
    /// [`quota::limits_path`] or [`quota::stats_path`]), if it exists.
    pub fn stats_track(&self, path: &str) -> Option<StatsTrack> {
        self.with_node(path, |node, _| StatsTrack::parse(node.data().unwrap_or_default()))
    }

    /// Every quota's limits and usage, keyed by the quota'd path, for the quota metrics.
    pub fn quotas(&self) -> Vec<(String, Option<StatsTrack>, Option<StatsTrack>)> {
        let quota_paths: Vec<String> = self.quota_paths.read().iter().cloned().collect();
        quota_paths
            .into_iter()
            .map(|quota_path| {
                let limits = self.stats_track(&quota::limits_path(&quota_path));
                let usage = self.stats_track(&quota::stats_path(&quota_path));
                (quota_path, limits, usage)
            })
            .collect()
    }

    /// Nodes and data bytes of `path`'s subtree, `path` included (`DataTree.getCounts`).
    pub fn subtree_usage(&self, path: &str) -> Usage {
        let Some(own) = self.with_node(path, |node, _| Usage::node(node.data_len())) else {
            return Usage::default();
        };
        let mut usage = own;
        self.for_each_descendant(path, |_, child| usage += Usage::node(child.data_len()));
        usage
    }

    /// Finds every quota and recounts its usage, after the tree was loaded from a
    /// snapshot (`DataTree.setupQuota`).
    pub fn setup_quotas(&self) {
        let mut found = BTreeSet::new();
        self.for_each_descendant(quota::QUOTA_ROOT, |parent, node| {
            if node.name() == quota::LIMITS_NODE {
                if let Some(quota_path) = quota::quota_path_of(parent) {
                    found.insert(quota_path.to_owned());
                }
            }
        });
        for quota_path in &found {
            self.refresh_quota_usage(quota_path);
        }
        *self.quota_paths.write() = found;
    }

    /// Writes the usage of `quota_path`'s subtree, counted afresh, into its usage node
    /// (`DataTree.updateQuotaForPath`).
    fn refresh_quota_usage(&self, quota_path: &str) {
        let usage = self.subtree_usage(quota_path);
        self.replace_quota_usage(quota_path, |track| *track = StatsTrack::of_usage(usage));
    }

    /// Adds `diff` to the usage of the quota `path` falls under, if any
    /// (`DataTree.updateQuotaStat`).
    fn count_in_quota(&self, path: &str, diff: Usage) {
        if let Some(quota_path) = self.quota_path(path) {
            self.replace_quota_usage(&quota_path, |track| track.add_usage(diff));
        }
    }

    /// Changes a usage node's data in place: as in ZooKeeper, its stat (version, mzxid)
    /// stays as it was, so the node is a view of the subtree, not a record of writes.
    fn replace_quota_usage(&self, quota_path: &str, change: impl FnOnce(&mut StatsTrack)) {
        let path = quota::stats_path(quota_path);
        let Some((parent, name)) = split_path(&path) else {
            return;
        };
        let size_change = self.tables.get_mut(parent).and_then(|mut table| {
            let node = table.get_mut(&self.hasher, name)?;
            let mut track = StatsTrack::parse(node.data().unwrap_or_default());
            change(&mut track);
            let old_len = node.data_len();
            node.change_data(Some(&track.to_bytes()), |_| {});
            Some(node.data_len() as i64 - old_len as i64)
        });
        match size_change {
            Some(change) => {
                self.data_size.fetch_add(change, Ordering::Relaxed);
            }
            None => tracing::warn!(path = %path, "quota usage node is missing"),
        }
    }

    /// Puts an ensemble's membership in `/zookeeper/config`, as ZooKeeper's
    /// `initConfigInZKDatabase` does when a member starts: the text of `zoo.cfg`'s
    /// membership, `mzxid` the membership's version, `version` -1, `mtime` now. It is no
    /// txn: every member sets it for itself at start, so only its data must agree.
    pub(super) fn set_config_node(
        &self,
        membership_text: &str,
        membership_version: Zxid,
        now_ms: i64,
    ) {
        let data = Some(membership_text.as_bytes());
        let set = self.set_data(CONFIG_NODE, data, -1, membership_version, now_ms);
        debug_assert!(set.is_ok(), "every tree has {CONFIG_NODE}");
    }

    /// Replaces a node's data (`DataTree.setData`).
    ///
    /// # Errors
    /// `NoNode` if the node is missing.
    pub(super) fn set_data(
        &self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: Zxid,
        time: i64,
    ) -> Result<Stat, Code> {
        let (old_len, stat) = self.update(path, |node| {
            let old_len = node.data_len();
            node.change_data(data, |stat| {
                stat.mtime = time;
                stat.mzxid = zxid.raw();
                stat.version = version;
            });
            old_len
        })?;
        let new_len = data.map_or(0, <[u8]>::len);
        self.data_size.fetch_add(new_len as i64 - old_len as i64, Ordering::Relaxed);
        self.count_in_quota(path, Usage::node(new_len) - Usage::node(old_len));
        Ok(stat)
    }

    /// Replaces a node's ACL (`DataTree.setACL`).
    ///
    /// # Errors
    /// `NoNode` if the node is missing.
    pub(super) fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, Code> {
        let new_id = self.acls.write().intern(acl);
        match self.update(path, |node| {
            let mut old_id = new_id;
            node.change_stat(|stat, acl| {
                stat.aversion = version;
                std::mem::swap(acl, &mut old_id);
            });
            old_id
        }) {
            Ok((old_id, stat)) => {
                self.acls.write().release(old_id);
                Ok(stat)
            }
            Err(code) => {
                self.acls.write().release(new_id);
                Err(code)
            }
        }
    }

    /// Moves a node's cversion (and pzxid) forward, used when replaying a create whose
    /// node already exists (`DataTree.setCversionPzxid`).
    ///
    /// # Errors
    /// `NoNode` if the node is missing.
    pub(super) fn set_cversion_pzxid(
        &self,
        path: &str,
        cversion: i32,
        zxid: Zxid,
    ) -> Result<(), Code> {
        self.update(path, |node| {
            node.change_stat(|stat, _| advance_cversion(stat, cversion, zxid));
        })
        .map(|_| ())
    }
}

/// Moves a node's cversion to `cversion` (-1: one more than now) and its pzxid to `zxid`,
/// only ever forward, as a child's create does to its parent.
fn advance_cversion(stat: &mut StatPersisted, cversion: i32, zxid: Zxid) {
    let cversion = if cversion == -1 { stat.cversion + 1 } else { cversion };
    if cversion > stat.cversion {
        stat.cversion = cversion;
        stat.pzxid = zxid.raw();
    }
}

/// Joins a parent path and a child name.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
#[path = "data_tree_test.rs"]
mod tests;
