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

pub use pending::{NodeRecord, PendingChanges};

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
}

/// The changes one request makes, looked up before the pending changes and the tree,
/// and committed to the pending changes only if the whole request succeeds.
struct Scope<'a, 'b> {
    context: &'a Context<'b>,
    pending: &'a PendingChanges,
    changes: Vec<(String, Option<NodeRecord>)>,
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
        self.changes.push((path.to_owned(), record));
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

/// Whether a request becomes a txn: every write but `sync`, which only orders.
fn is_txn(request: &Request) -> bool {
    request.is_write() && !matches!(request, Request::Sync(_))
}

impl Preparer {
    /// A preparer whose next zxid follows `last_zxid`.
    pub fn new(last_zxid: Zxid) -> Preparer {
        Preparer { last_zxid, pending: PendingChanges::default() }
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
        self.pending.applied(zxid);
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
        outcome: Result<(OpCode, TxnBody), Code>,
    ) -> Txn {
        match outcome {
            Ok((op, body)) => {
                for (path, record) in scope_changes {
                    self.pending.push(Zxid::new(header.zxid), path, record);
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
        let mut scope = Scope { context, pending: &self.pending, changes: Vec::new() };
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
        let changes = std::mem::take(&mut scope.changes);
        Some(self.finish(header, changes, outcome))
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
            Ok((OpCode::CreateSession, session::create_session(timeout_ms))),
        )
    }
}

#[cfg(test)]
#[path = "prepare_test.rs"]
mod tests;
