//! Changes prepared but not yet applied (ZooKeeper's `outstandingChanges`).
//!
//! A request is validated against the newest version of each node: the one its own
//! multi just produced, else the one a pending txn will produce, else the tree's.

use std::collections::VecDeque;

use crate::fast_hash::FastHashMap;

use crate::tree::acl::AclList;
use crate::tree::data_tree::DataTree;
use crate::tree::quota::Usage;
use crate::txn::{SessionId, Zxid};

/// What prepare needs to know of a node (ZooKeeper's `ChangeRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Data version.
    pub version: i32,
    /// Number of child creations ever (the stored cversion).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Session, container marker or TTL.
    pub ephemeral_owner: i64,
    /// Number of children.
    pub child_count: i32,
    /// Length of the node's data, for quotas.
    pub data_len: usize,
    /// The node's ACL.
    pub acl: AclList,
}

/// The pending changes, oldest first, with the newest record per path.
#[derive(Debug, Default)]
pub struct PendingChanges {
    order: VecDeque<(Zxid, String)>,
    /// Newest record per path and the zxid that produced it; `None` = deleted.
    newest: FastHashMap<String, (Zxid, Option<NodeRecord>)>,
    /// Sessions whose createSession txn is prepared, not yet applied, and not closed by
    /// a later prepared txn, with that txn's zxid. The tracker knows a session from the
    /// moment its createSession applies; until then these count as live.
    opening: VecDeque<(Zxid, SessionId)>,
    /// What prepared txns change in the usage of quota'd paths, oldest first, and the
    /// sum per quota'd path: the tree's usage nodes count only applied txns.
    quota_changes: VecDeque<(Zxid, String, Usage)>,
    quota_totals: FastHashMap<String, Usage>,
}

impl PendingChanges {
    /// The newest pending record of `path`, if a pending txn touches it: `Some(None)`
    /// means a pending txn deletes it.
    pub fn get(&self, path: &str) -> Option<Option<&NodeRecord>> {
        self.newest.get(path).map(|(_, record)| record.as_ref())
    }

    /// Records the effect of a prepared txn.
    pub fn push(&mut self, zxid: Zxid, path: String, record: Option<NodeRecord>) {
        self.order.push_back((zxid, path.clone()));
        self.newest.insert(path, (zxid, record));
    }

    /// Records what a prepared txn changes in the usage of `quota_path`'s subtree.
    pub fn push_quota_change(&mut self, zxid: Zxid, quota_path: String, change: Usage) {
        *self.quota_totals.entry(quota_path.clone()).or_default() += change;
        self.quota_changes.push_back((zxid, quota_path, change));
    }

    /// What the prepared txns not yet applied change in the usage of `quota_path`.
    pub fn quota_change(&self, quota_path: &str) -> Usage {
        self.quota_totals.get(quota_path).copied().unwrap_or_default()
    }

    /// Records a prepared createSession txn of `session`.
    pub fn open_session(&mut self, zxid: Zxid, session: SessionId) {
        self.opening.push_back((zxid, session));
    }

    /// Records a prepared closeSession txn of `session`.
    pub fn close_session(&mut self, session: SessionId) {
        self.opening.retain(|(_, opening)| *opening != session);
    }

    /// Whether a prepared createSession txn of `session` is not applied yet.
    pub fn is_opening(&self, session: SessionId) -> bool {
        self.opening.iter().any(|(_, opening)| *opening == session)
    }

    /// Forgets the changes of txns up to `zxid`, now visible in the tree; returns how
    /// many records went.
    pub fn applied(&mut self, zxid: Zxid) -> u64 {
        let mut removed = 0;
        while self.opening.front().is_some_and(|(opening_zxid, _)| *opening_zxid <= zxid) {
            self.opening.pop_front();
        }
        while self.quota_changes.front().is_some_and(|(change_zxid, ..)| *change_zxid <= zxid) {
            let Some((_, quota_path, change)) = self.quota_changes.pop_front() else {
                break;
            };
            if let Some(total) = self.quota_totals.get_mut(&quota_path) {
                *total = *total - change;
                if *total == Usage::default() {
                    self.quota_totals.remove(&quota_path);
                }
            }
        }
        while let Some((pending_zxid, _)) = self.order.front() {
            if *pending_zxid > zxid {
                break;
            }
            let Some((pending_zxid, path)) = self.order.pop_front() else {
                break;
            };
            if self.newest.get(&path).is_some_and(|(newest, _)| *newest == pending_zxid) {
                self.newest.remove(&path);
            }
            removed += 1;
        }
        removed
    }

    /// Number of pending records.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The pending changes to `session`'s set of ephemeral nodes, in order: each path
    /// whose newest pending record is an ephemeral of `session` (true) or a deletion
    /// (false), where its newest record comes among the pending ones.
    pub fn ephemeral_changes(&self, session: SessionId) -> Vec<(String, bool)> {
        let mut changes = Vec::new();
        for (zxid, path) in &self.order {
            match self.newest.get(path) {
                Some((newest, None)) if newest == zxid => changes.push((path.clone(), false)),
                Some((newest, Some(record)))
                    if newest == zxid && record.ephemeral_owner == session.raw() =>
                {
                    changes.push((path.clone(), true));
                }
                _ => {}
            }
        }
        changes
    }
}

/// A record read from the tree.
pub fn record_from_tree(tree: &DataTree, path: &str) -> Option<NodeRecord> {
    tree.with_node(path, |node, num_children| {
        let (stat, data_len, acl) = node.stat_data_len_and_acl();
        NodeRecord {
            version: stat.version,
            cversion: stat.cversion,
            aversion: stat.aversion,
            ephemeral_owner: stat.ephemeral_owner,
            child_count: i32::try_from(num_children).unwrap_or(i32::MAX),
            data_len,
            acl: tree.acl(acl),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::{perms, world_anyone};

    fn record(version: i32) -> NodeRecord {
        NodeRecord {
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            child_count: 0,
            data_len: 0,
            acl: vec![world_anyone(perms::ALL)].into(),
        }
    }

    #[test]
    fn newest_record_wins_until_applied() {
        let mut pending = PendingChanges::default();
        pending.push(Zxid::new(1), "/a".into(), Some(record(0)));
        pending.push(Zxid::new(2), "/a".into(), Some(record(1)));
        assert_eq!(pending.get("/a").flatten().map(|r| r.version), Some(1));
        pending.applied(Zxid::new(1));
        assert_eq!(pending.get("/a").flatten().map(|r| r.version), Some(1), "zxid 2 still pending");
        pending.applied(Zxid::new(2));
        assert_eq!(pending.get("/a"), None);
        assert!(pending.is_empty());
    }

    #[test]
    fn deletions_are_remembered() {
        let mut pending = PendingChanges::default();
        pending.push(Zxid::new(3), "/e".into(), None);
        assert_eq!(pending.get("/e"), Some(None));
        assert_eq!(pending.ephemeral_changes(SessionId::new(7)), [("/e".to_owned(), false)]);
    }

    #[test]
    fn ephemeral_changes_come_in_the_order_of_each_paths_newest_record() {
        let mut pending = PendingChanges::default();
        let ephemeral = |owner| NodeRecord { ephemeral_owner: owner, ..record(0) };
        pending.push(Zxid::new(1), "/b".into(), Some(ephemeral(7)));
        pending.push(Zxid::new(2), "/a".into(), Some(ephemeral(7)));
        pending.push(Zxid::new(3), "/other".into(), Some(ephemeral(8)));
        pending.push(Zxid::new(4), "/b".into(), None);
        pending.push(Zxid::new(5), "/c".into(), Some(ephemeral(7)));
        let changes = pending.ephemeral_changes(SessionId::new(7));
        let expected = [("/a", true), ("/b", false), ("/c", true)];
        assert_eq!(changes, expected.map(|(path, created)| (path.to_owned(), created)));
    }
}
