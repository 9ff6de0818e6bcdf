//! delete, and deleteContainer from the container and TTL reaper.

use jute::records::DeleteTxn;
use jute::{Code, OpCode};

use super::{check_and_increment_version, parent_for_delete, Scope};
use crate::session::auth::check_acl;
use crate::tree::acl::perms;
use crate::tree::node::NodeKind;
use crate::txn::TxnBody;

/// A client's delete: DELETE permission on the parent, version, no children.
pub(super) fn delete(
    scope: &mut Scope<'_, '_>,
    path: &str,
    version: i32,
) -> Result<(OpCode, TxnBody), Code> {
    scope.check_session()?;
    let parent_path = parent_for_delete(path)?;
    let mut parent = scope.record(parent_path)?;
    check_acl(&parent.acl, perms::DELETE, scope.context.auth)?;
    let node = scope.record(path)?;
    check_and_increment_version(node.version, version)?;
    if node.child_count > 0 {
        return Err(Code::NotEmpty);
    }
    parent.child_count -= 1;
    scope.set(parent_path, Some(parent));
    scope.set(path, None);
    Ok((OpCode::Delete, TxnBody::Delete(DeleteTxn { path: path.to_owned() })))
}

/// The reaper's delete of an empty container or expired TTL node. No ACL applies, so
/// (unlike ZooKeeper 3.8, which lets it delete any persistent node) only container and
/// TTL nodes qualify; anything else gets `BadVersion`, as ZooKeeper answers for ephemerals.
pub(super) fn delete_container(
    scope: &mut Scope<'_, '_>,
    path: &str,
) -> Result<(OpCode, TxnBody), Code> {
    let parent_path = parent_for_delete(path)?;
    let node = scope.record(path)?;
    if node.child_count > 0 {
        return Err(Code::NotEmpty);
    }
    match NodeKind::from_owner(node.ephemeral_owner, scope.context.extended_types_enabled) {
        NodeKind::Container | NodeKind::Ttl(_) => {}
        NodeKind::Persistent | NodeKind::Ephemeral(_) => return Err(Code::BadVersion),
    }
    let mut parent = scope.record(parent_path)?;
    parent.child_count -= 1;
    scope.set(parent_path, Some(parent));
    scope.set(path, None);
    Ok((OpCode::DeleteContainer, TxnBody::Delete(DeleteTxn { path: path.to_owned() })))
}
