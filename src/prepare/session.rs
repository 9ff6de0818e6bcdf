//! createSession and closeSession.

use jute::records::{CloseSessionTxn, CreateSessionTxn};

use super::Scope;
use crate::txn::TxnBody;

/// A new session with its negotiated timeout.
pub(super) fn create_session(timeout_ms: i32) -> TxnBody {
    TxnBody::CreateSession(CreateSessionTxn { time_out: timeout_ms })
}

/// Closes a session: its ephemeral nodes, counting pending creates and deletes, go with it.
pub(super) fn close_session(scope: &mut Scope<'_, '_>) -> TxnBody {
    let session = scope.context.session_id;
    // In ZooKeeper's order: its copy of the session's hash set, brought up to date with
    // the changes in flight one after the other.
    let mut set = scope.context.tree.ephemeral_set(session);
    for (path, created) in scope.pending.ephemeral_changes(session) {
        if created {
            set.insert(path);
        } else {
            set.remove(&path);
        }
    }
    let paths: Vec<String> = set.iter().cloned().collect();
    for path in &paths {
        if let Some((parent, _)) = path.rsplit_once('/') {
            if let Some(mut parent_record) = scope.lookup(parent) {
                parent_record.child_count -= 1;
                scope.set(parent, Some(parent_record));
            }
        }
        scope.set(path, None);
    }
    TxnBody::CloseSession(CloseSessionTxn { paths_to_delete: paths })
}
