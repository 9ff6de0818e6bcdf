//! Write request + tree + pending changes → [`Txn`] (ZooKeeper's `PrepRequestProcessor`).
//!
//! Every write becomes a txn with the next zxid, including a failed one, which becomes an
//! error txn, as in ZooKeeper. Checks run in ZooKeeper's order so the same request gets
//! the same error code from both servers. One file per operation family.
//!
//! Pure: the tree is only read, time comes in as an argument, and the effects of a
//! prepared txn are recorded in [`PendingChanges`] until [`Preparer::applied`] is called.

mod create;
mod delete;
mod multi;
pub mod pending;
mod session;
mod update;

use jute::records::{ErrorTxn, TxnHeader};
use jute::{Code, OpCode};

pub use create::CreateMode;
pub use pending::{NodeRecord, PendingChanges};

use crate::tree::quota::{self, Usage};

use crate::proto::Request;
use crate::session::{AuthIds, SessionTracker};
use crate::tree::data_tree::DataTree;
use crate::txn::{SessionId, Txn, TxnBody, Zxid};

/// What a request is prepared against, besides the pending changes.
pub struct Context<'a> {
    /// The applied state.
    pub tree: &'a DataTree,
    /// Live sessions, for `SessionExpired`.
    pub sessions: &'a SessionTracker,
    /// Who the requester is, for ACL checks and `auth` ACLs.
    pub auth: &'a AuthIds,
    /// The requesting session (0 for the server's own requests).
    pub session_id: SessionId,
    /// How the requesting session is checked.
    pub session_check: SessionCheck,
    /// Whether TTL nodes may be created.
    pub extended_types_enabled: bool,
    /// Whether `reconfig` is enabled.
    pub reconfig_enabled: bool,
    /// Whether writes past a quota's hard limit are refused (`enforceQuota`).
    pub enforce_quota: bool,
    /// Whether the digest scheme has its provider, so that digest ACLs are valid
    /// (`DigestAuthenticationProvider.enabled`).
    pub digest_auth_enabled: bool,
}

/// How a request's session is checked: ZooKeeper's `checkSession(sessionId, owner)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Against the tracker: an unknown or closing session gets SessionExpired.
    Tracker,
    /// Not at all: another member's local session, unknown here but live there
    /// (ZooKeeper's leader lets those through).
    OwnedElsewhere,
    /// The session's client has moved to another member since this request's member
    /// sent it: SessionMoved, so a stale connection changes nothing.
    Moved,
}

/// Allocates zxids and remembers the effect of every txn not yet applied.
#[derive(Debug)]
pub struct Preparer {
    last_zxid: Zxid,
    pending: PendingChanges,
    counts: ChangeCounts,
}

/// Change records made and forgotten since they were last taken: ZooKeeper's
/// `outstanding_changes_queued` and `outstanding_changes_removed`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCounts {
    /// Records a request made, one per node it changes, as ZooKeeper's
    /// `addChangeRecord` makes them: those of a multi's ops before one failed too,
    /// which are never applied.
    pub queued: u64,
    /// Records forgotten once the tree reflected their txn.
    pub removed: u64,
}

/// The changes one request makes, looked up before the pending changes and the tree,
/// and committed to the pending changes only if the whole request succeeds.
struct Scope<'a, 'b> {
    context: &'a Context<'b>,
    pending: &'a PendingChanges,
    changes: Vec<(String, Option<NodeRecord>)>,
    /// What `changes` do to the usage of quota'd paths, when quotas are enforced.
    quota_changes: Vec<(String, Usage)>,
    /// Every change made, discarded ones too (see [`ChangeCounts::queued`]).
    recorded: u64,
}

impl Scope<'_, '_> {
    fn lookup(&self, path: &str) -> Option<NodeRecord> {
        if let Some((_, record)) = self.changes.iter().rev().find(|(changed, _)| changed == path) {
            return record.clone();
        }
        match self.pending.get(path) {
            Some(record) => record.cloned(),
            None => pending::record_from_tree(self.context.tree, path),
        }
    }

    /// The newest record of `path` (ZooKeeper's `getRecordForPath`).
    fn record(&self, path: &str) -> Result<NodeRecord, Code> {
        self.lookup(path).ok_or(Code::NoNode)
    }

    fn set(&mut self, path: &str, record: Option<NodeRecord>) {
        if self.context.enforce_quota {
            if let Some(quota_path) = self.context.tree.quota_path(path) {
                let usage = |record: Option<&NodeRecord>| {
                    record.map_or(Usage::default(), |record| Usage::node(record.data_len))
                };
                let change = usage(record.as_ref()) - usage(self.lookup(path).as_ref());
                if change != Usage::default() {
                    self.quota_changes.push((quota_path, change));
                }
            }
        }
        self.changes.push((path.to_owned(), record));
        self.recorded += 1;
    }

    /// Drops the changes made so far: a multi op failed.
    fn discard(&mut self) {
        self.changes.clear();
        self.quota_changes.clear();
    }

    /// Checks a write that changes the usage under `path` by `change` against the
    /// quota `path` falls under (`ZooKeeperServer.checkQuota`), in ZooKeeper's order:
    /// the node count, then the data bytes; past a soft limit it only logs.
    ///
    /// The usage counted is the tree's plus every txn prepared before, this request's
    /// earlier ops included. ZooKeeper counts only the applied tree, so pipelined writes
    /// or the ops of one multi can together pass a hard limit there; not here.
    fn check_quota(&self, path: &str, change: Usage) -> Result<(), Code> {
        if !self.context.enforce_quota {
            return Ok(());
        }
        let tree = self.context.tree;
        let Some(quota_path) = tree.quota_path(path) else {
            return Ok(());
        };
        let Some(limits) = tree.stats_track(&quota::limits_path(&quota_path)) else {
            return Ok(());
        };
        let count_limit = limits.count_limit().filter(|_| change.count != 0);
        let byte_limit = limits.byte_limit().filter(|_| change.bytes != 0);
        if count_limit.is_none() && byte_limit.is_none() {
            return Ok(());
        }
        let Some(usage) = tree.stats_track(&quota::stats_path(&quota_path)) else {
            tracing::error!(quota = %quota_path, "quota usage node is missing");
            return Ok(());
        };
        let own: Usage = self
            .quota_changes
            .iter()
            .filter(|(changed, _)| *changed == quota_path)
            .fold(Usage::default(), |sum, (_, change)| sum + *change);
        let after = usage.usage() + self.pending.quota_change(&quota_path) + own + change;
        for (what, limit, value) in
            [("count", count_limit, after.count), ("bytes", byte_limit, after.bytes)]
        {
            let Some(limit) = limit.filter(|limit| value > limit.value) else {
                continue;
            };
            let kind = if limit.hard { "hard" } else { "soft" };
            let name = if what == "count" { "CountLimit" } else { "ByteLimit" };
            tracing::warn!(
                "Quota exceeded: {quota_path} [current {what}={value}, {kind}{name}={}]",
                limit.value
            );
            if limit.hard {
                return Err(Code::QuotaExceeded);
            }
        }
        Ok(())
    }

    fn check_session(&self) -> Result<(), Code> {
        match self.context.session_check {
            SessionCheck::Tracker => {
                let session_id = self.context.session_id;
                match self.context.sessions.check(session_id) {
                    Err(_) if self.pending.is_opening(session_id) => Ok(()),
                    checked => checked,
                }
            }
            SessionCheck::OwnedElsewhere => Ok(()),
            SessionCheck::Moved => Err(Code::SessionMoved),
        }
    }
}

/// `checkAndIncVersion`: -1 matches any version; the new version skips -1 on overflow.
fn check_and_increment_version(current: i32, expected: i32) -> Result<i32, Code> {
    if expected != -1 && expected != current {
        return Err(Code::BadVersion);
    }
    Ok(match current.wrapping_add(1) {
        -1 => 0,
        next => next,
    })
}

/// ZooKeeper's special paths, which may not be deleted.
fn is_special_path(path: &str) -> bool {
    matches!(path, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

/// The parent of a path to delete (`getParentPathAndValidate`).
fn parent_for_delete(path: &str) -> Result<&str, Code> {
    match path.rfind('/') {
        Some(slash) if !path.contains('\0') && !is_special_path(path) => {
            path.get(..slash).ok_or(Code::BadArguments)
        }
        _ => Err(Code::BadArguments),
    }
}

/// Where a prepared write was refused for passing a quota's hard limit, if it was: the
/// request's path, or for a multi the path of the op refused; what ZooKeeper's
/// `quota_exceeded_error_per_namespace` counts by.
pub fn quota_refused_at<'r>(request: &'r Request, txn: &Txn) -> Option<&'r str> {
    let refused = |body: &TxnBody| match body {
        TxnBody::Error(error) => error.err == Code::QuotaExceeded.as_i32(),
        _ => false,
    };
    match (request, &txn.body) {
        (Request::Multi(multi), TxnBody::Multi(subs)) => {
            let index = subs.iter().position(|sub| refused(&sub.body))?;
            multi.ops.get(index).map(|op| op.path())
        }
        (Request::Create { request, .. }, body) if refused(body) => Some(&request.path),
        (Request::CreateTtl(request), body) if refused(body) => Some(&request.path),
        (Request::SetData(request), body) if refused(body) => Some(&request.path),
        _ => None,
    }
}

/// Whether a request becomes a txn: every write but `sync`, which only orders.
fn is_txn(request: &Request) -> bool {
    request.is_write() && !matches!(request, Request::Sync(_))
}

impl Preparer {
    /// A preparer whose next zxid follows `last_zxid`.
    pub fn new(last_zxid: Zxid) -> Preparer {
        Preparer { last_zxid, pending: PendingChanges::default(), counts: ChangeCounts::default() }
    }

    /// The zxid of the last prepared txn.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Number of pending change records.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Forgets pending changes up to `zxid`, which the tree now reflects.
    pub fn applied(&mut self, zxid: Zxid) {
        self.counts.removed += self.pending.applied(zxid);
    }

    /// The change records made and forgotten since the last call.
    pub fn take_change_counts(&mut self) -> ChangeCounts {
        std::mem::take(&mut self.counts)
    }

    fn next_header(&mut self, context: &Context<'_>, cxid: i32, time_ms: i64) -> TxnHeader {
        self.last_zxid += 1;
        TxnHeader {
            client_id: context.session_id.raw(),
            cxid,
            zxid: self.last_zxid.raw(),
            time: time_ms,
            op_type: 0,
        }
    }

    fn finish(
        &mut self,
        mut header: TxnHeader,
        scope_changes: Vec<(String, Option<NodeRecord>)>,
        quota_changes: Vec<(String, Usage)>,
        outcome: Result<(OpCode, TxnBody), Code>,
    ) -> Txn {
        match outcome {
            Ok((op, body)) => {
                let zxid = Zxid::new(header.zxid);
                for (path, record) in scope_changes {
                    self.pending.push(zxid, path, record);
                }
                for (quota_path, change) in quota_changes {
                    self.pending.push_quota_change(zxid, quota_path, change);
                }
                let session_id = SessionId::new(header.client_id);
                match &body {
                    TxnBody::CreateSession(_) => {
                        self.pending.open_session(Zxid::new(header.zxid), session_id);
                    }
                    TxnBody::CloseSession(_) => self.pending.close_session(session_id),
                    _ => {}
                }
                header.op_type = op.as_i32();
                Txn { header, body }
            }
            Err(code) => {
                header.op_type = OpCode::Error.as_i32();
                Txn { header, body: TxnBody::Error(ErrorTxn { err: code.as_i32() }) }
            }
        }
    }

    /// Prepares a client write. Returns `None` for requests that are not txns (reads,
    /// `sync`), which the caller answers itself.
    pub fn prepare(
        &mut self,
        context: &Context<'_>,
        request: &Request,
        cxid: i32,
        time_ms: i64,
    ) -> Option<Txn> {
        if !is_txn(request) {
            return None;
        }
        let header = self.next_header(context, cxid, time_ms);
        let mut scope = Scope {
            context,
            pending: &self.pending,
            changes: Vec::new(),
            quota_changes: Vec::new(),
            recorded: 0,
        };
        let outcome = match request {
            Request::Create { op, request } => create::create(
                &mut scope,
                *op,
                create::CreateArgs {
                    path: &request.path,
                    data: request.data.as_ref(),
                    acl: &request.acl,
                    flags: request.flags,
                    ttl: -1,
                },
            ),
            Request::CreateTtl(request) => create::create(
                &mut scope,
                OpCode::CreateTtl,
                create::CreateArgs {
                    path: &request.path,
                    data: request.data.as_ref(),
                    acl: &request.acl,
                    flags: request.flags,
                    ttl: request.ttl,
                },
            ),
            Request::Delete(request) => delete::delete(&mut scope, &request.path, request.version),
            Request::DeleteContainer(path) => delete::delete_container(&mut scope, path),
            Request::SetData(request) => update::set_data(&mut scope, request),
            Request::SetAcl(request) => update::set_acl(&mut scope, request),
            Request::Check(request) => update::check(&mut scope, request),
            Request::Multi(request) => {
                multi::multi(&mut scope, &request.ops).map(|body| (OpCode::Multi, body))
            }
            Request::Reconfig(_) => {
                if context.reconfig_enabled {
                    scope.check_session().and(Err(Code::Unimplemented))
                } else {
                    Err(Code::ReconfigDisabled)
                }
            }
            Request::CloseSession => {
                let body = session::close_session(&mut scope);
                Ok((OpCode::CloseSession, body))
            }
            _ => Err(Code::Unimplemented),
        };
        let Scope { changes, quota_changes, recorded, .. } = scope;
        self.counts.queued += recorded;
        Some(self.finish(header, changes, quota_changes, outcome))
    }

    /// Prepares the creation of a session with a negotiated timeout.
    pub fn prepare_create_session(
        &mut self,
        context: &Context<'_>,
        timeout_ms: i32,
        time_ms: i64,
    ) -> Txn {
        let header = self.next_header(context, 0, time_ms);
        self.finish(
            header,
            Vec::new(),
            Vec::new(),
            Ok((OpCode::CreateSession, session::create_session(timeout_ms))),
        )
    }
}

#[cfg(test)]
#[path = "prepare_test.rs"]
mod tests;
