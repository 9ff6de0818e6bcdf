//! Applying a committed txn to the database (ZooKeeper's `DataTree.processTxn`), with the
//! watch triggers each change fires, in ZooKeeper's order.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use jute::records::Stat;
use jute::{Code, OpCode};

use crate::tree::acl::AclList;
use crate::tree::node::{NodeKind, CONTAINER_EPHEMERAL_OWNER};
use crate::tree::watch::{EventType, WatcherId};
use crate::tree::Database;
use crate::txn::{SessionId, SubTxn, Txn, TxnBody, Zxid};

/// A watch notification for one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// What happened.
    pub event: EventType,
    /// Where.
    pub path: String,
    /// The ACL of the node the event is about (the parent's for NodeChildrenChanged);
    /// only watchers with READ permission on it receive the event (CVE-2024-23944).
    /// Empty for events that carry no ACL restriction.
    pub acl: AclList,
}

/// What applying a txn produced (ZooKeeper's `ProcessTxnResult`), from which the server
/// builds the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// The txn's (or sub-txn's) opcode.
    pub op_type: OpCode,
    /// `Ok`, or why the txn failed.
    pub err: Code,
    /// The path acted on, for creates the created path.
    pub path: String,
    /// The node's stat after creates, setData and setACL.
    pub stat: Option<Stat>,
    /// Per-op results of a multi.
    pub multi: Vec<TxnResult>,
    /// For a closeSession, each ephemeral node it deleted (true) or found gone (false),
    /// for the audit log.
    pub ephemerals: Vec<(String, bool)>,
}

impl TxnResult {
    fn new(op_type: OpCode) -> TxnResult {
        TxnResult {
            op_type,
            err: Code::Ok,
            path: String::new(),
            stat: None,
            multi: Vec::new(),
            ephemerals: Vec::new(),
        }
    }
}

/// Receives each notification as the change that triggers it is applied.
pub type Deliver<'a> = dyn FnMut(WatcherId, &WatchEvent) + 'a;

impl Database {
    /// Applies a committed txn, calling `deliver` for every triggered watch while the
    /// change is still invisible to readers.
    ///
    /// # Panics
    /// If `txn` does not come after the last one applied: a txn applied twice or out of
    /// order is a bug of the pipeline, which must not go on and diverge from the others.
    pub fn apply(&self, txn: &Txn, deliver: &mut Deliver<'_>) -> TxnResult {
        let _gate = self.gate.write();
        let last = self.last_applied_zxid.load(Ordering::Relaxed);
        assert!(
            txn.header.zxid > last,
            "txn 0x{:x} applied after 0x{last:x}: applied twice or out of order",
            txn.header.zxid
        );
        let op_type = OpCode::from_i32(txn.header.op_type).unwrap_or(OpCode::Error);
        let result = self.apply_body(op_type, &txn.body, txn, deliver);
        self.last_applied_zxid.store(txn.header.zxid, Ordering::Release);
        result
    }

    fn apply_body(
        &self,
        op_type: OpCode,
        body: &TxnBody,
        txn: &Txn,
        deliver: &mut Deliver<'_>,
    ) -> TxnResult {
        let zxid = txn.header.zxid;
        let time = txn.header.time;
        let mut result = TxnResult::new(op_type);
        let outcome = match body {
            TxnBody::Create(create) => {
                result.path.clone_from(&create.path);
                let owner = if create.ephemeral { txn.header.client_id } else { 0 };
                let outcome = self.create(
                    &create.path,
                    create.data.as_deref(),
                    &create.acl,
                    owner,
                    create.parent_cversion,
                    Zxid::new(zxid),
                    time,
                    deliver,
                );
                if outcome == Err(Code::NodeExists) && op_type == OpCode::Create {
                    self.adjust_parent_after_existing_create(
                        &create.path,
                        create.parent_cversion,
                        Zxid::new(zxid),
                    )
                } else {
                    outcome.map(|stat| result.stat = Some(stat))
                }
            }
            TxnBody::CreateTtl(create) => {
                result.path.clone_from(&create.path);
                let owner = NodeKind::ttl_owner(create.ttl).unwrap_or(0);
                self.create(
                    &create.path,
                    create.data.as_deref(),
                    &create.acl,
                    owner,
                    create.parent_cversion,
                    Zxid::new(zxid),
                    time,
                    deliver,
                )
                .map(|stat| result.stat = Some(stat))
            }
            TxnBody::CreateContainer(create) => {
                result.path.clone_from(&create.path);
                self.create(
                    &create.path,
                    create.data.as_deref(),
                    &create.acl,
                    CONTAINER_EPHEMERAL_OWNER,
                    create.parent_cversion,
                    Zxid::new(zxid),
                    time,
                    deliver,
                )
                .map(|stat| result.stat = Some(stat))
            }
            TxnBody::Delete(delete) => {
                result.path.clone_from(&delete.path);
                self.delete(&delete.path, Zxid::new(zxid), deliver)
            }
            TxnBody::SetData(set) => {
                result.path.clone_from(&set.path);
                self.tree
                    .set_data(&set.path, set.data.as_deref(), set.version, Zxid::new(zxid), time)
                    .map(|stat| {
                        let written = set.data.as_ref().map_or(0, |data| data.len() as u64);
                        self.traffic.written(&set.path, written);
                        let acl = self.node_acl(&set.path);
                        self.notify(&set.path, EventType::NodeDataChanged, acl, deliver);
                        result.stat = Some(stat);
                    })
            }
            TxnBody::SetAcl(set) => {
                result.path.clone_from(&set.path);
                self.tree
                    .set_acl(&set.path, &set.acl, set.version)
                    .map(|stat| result.stat = Some(stat))
            }
            TxnBody::Check(check) => {
                result.path.clone_from(&check.path);
                result.stat = self.tree.stat(&check.path);
                Ok(())
            }
            TxnBody::CreateSession(_) => Ok(()),
            TxnBody::CloseSession(close) => {
                result.ephemerals = self.kill_session(
                    txn.session_id(),
                    Zxid::new(zxid),
                    &close.paths_to_delete,
                    deliver,
                );
                Ok(())
            }
            TxnBody::Error(error) => Err(Code::from_i32(error.err).unwrap_or(Code::SystemError)),
            TxnBody::Multi(subs) => {
                result.multi = self.apply_multi(subs, txn, deliver);
                match result.multi.iter().find(|sub| sub.err != Code::Ok) {
                    Some(failed) => Err(failed.err),
                    None => Ok(()),
                }
            }
        };
        if let Err(code) = outcome {
            result.err = code;
        }
        result
    }

    /// A multi whose prepare failed holds error sub-txns; then every op reports an error:
    /// 0 before the failing one, -2 (RuntimeInconsistency) after it, and nothing changes.
    fn apply_multi(&self, subs: &[SubTxn], txn: &Txn, deliver: &mut Deliver<'_>) -> Vec<TxnResult> {
        let failed = subs.iter().any(|sub| sub.op_type == OpCode::Error);
        let mut after_failure = false;
        let mut results = Vec::with_capacity(subs.len());
        for sub in subs {
            if failed && sub.op_type != OpCode::Error {
                let mut rolled_back = TxnResult::new(OpCode::Error);
                rolled_back.err = if after_failure { Code::RuntimeInconsistency } else { Code::Ok };
                results.push(rolled_back);
                continue;
            }
            after_failure |= sub.op_type == OpCode::Error;
            results.push(self.apply_body(sub.op_type, &sub.body, txn, deliver));
        }
        results
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[jute::records::Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: Zxid,
        time: i64,
        deliver: &mut Deliver<'_>,
    ) -> Result<Stat, Code> {
        let stat = self.tree.create_node(path, data, acl, owner, parent_cversion, zxid, time)?;
        self.traffic.written(path, data.map_or(0, |data| data.len() as u64));
        self.notify(path, EventType::NodeCreated, acl.into(), deliver);
        self.notify_child_list(path, deliver);
        Ok(stat)
    }

    fn delete(&self, path: &str, zxid: Zxid, deliver: &mut Deliver<'_>) -> Result<(), Code> {
        let deleted = self.tree.delete_node(path, zxid)?;
        self.traffic.written(path, 0);
        let acl = self.tree.acl(deleted.acl);
        let notified = self.notify(path, EventType::NodeDeleted, acl.clone(), deliver);
        let child_watchers = self.child_watches.trigger(path, EventType::NodeDeleted);
        let notification = WatchEvent { event: EventType::NodeDeleted, path: path.to_owned(), acl };
        for watcher in child_watchers.difference(&notified) {
            deliver(*watcher, &notification);
        }
        self.tree.release_acl(deleted.acl);
        self.notify_child_list(path, deliver);
        Ok(())
    }

    /// Replaying a create over a node that already exists still moves the parent's
    /// cversion forward (ZooKeeper's fuzzy-snapshot rule for `create` txns).
    fn adjust_parent_after_existing_create(
        &self,
        path: &str,
        parent_cversion: i32,
        zxid: Zxid,
    ) -> Result<(), Code> {
        let parent = crate::tree::data_tree::split_path(path).map_or("/", |(parent, _)| parent);
        self.tree.set_cversion_pzxid(parent, parent_cversion, zxid)?;
        Err(Code::NodeExists)
    }

    /// Deletes the ephemeral nodes of `session`: those its closeSession txn lists, then
    /// any the txn missed; says of each whether it was there to delete.
    fn kill_session(
        &self,
        session: SessionId,
        zxid: Zxid,
        paths: &[String],
        deliver: &mut Deliver<'_>,
    ) -> Vec<(String, bool)> {
        let mut outcomes = Vec::with_capacity(paths.len());
        for path in paths {
            let deleted = self.delete(path, zxid, deliver).is_ok();
            if !deleted {
                tracing::warn!(session = %session, path = %path,
                    "ephemeral node of a closed session was already gone");
            }
            outcomes.push((path.clone(), deleted));
        }
        for path in self.tree.ephemerals(session) {
            tracing::warn!(session = %session, path = %path,
                "ephemeral node missing from the closeSession txn, deleting it too");
            let deleted = self.delete(&path, zxid, deliver).is_ok();
            outcomes.push((path, deleted));
        }
        self.tree.end_ephemerals(session);
        outcomes
    }

    fn node_acl(&self, path: &str) -> AclList {
        self.tree.with_node(path, |node, _| self.tree.acl(node.acl())).unwrap_or_default()
    }

    /// Fires the data watches of `path` and returns who was notified.
    fn notify(
        &self,
        path: &str,
        event: EventType,
        acl: AclList,
        deliver: &mut Deliver<'_>,
    ) -> BTreeSet<WatcherId> {
        let watchers = self.data_watches.trigger(path, event);
        let notification = WatchEvent { event, path: path.to_owned(), acl };
        for watcher in &watchers {
            deliver(*watcher, &notification);
        }
        watchers
    }

    fn notify_child_list(&self, path: &str, deliver: &mut Deliver<'_>) {
        let parent = crate::tree::data_tree::split_path(path).map_or("/", |(parent, _)| parent);
        let parent = if parent.is_empty() { "/" } else { parent };
        let watchers = self.child_watches.trigger(parent, EventType::NodeChildrenChanged);
        let acl = self.node_acl(parent);
        let notification =
            WatchEvent { event: EventType::NodeChildrenChanged, path: parent.to_owned(), acl };
        for watcher in watchers {
            deliver(watcher, &notification);
        }
    }
}

#[cfg(test)]
#[path = "apply_test.rs"]
mod tests;
