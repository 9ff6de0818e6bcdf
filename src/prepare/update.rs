//! setData, setACL and check: changes to an existing node.

use bytes::Bytes;
use jute::records::{
    CheckVersionRequest, CheckVersionTxn, SetAclRequest, SetAclTxn, SetDataRequest, SetDataTxn,
};
use jute::{Code, OpCode};

use super::{check_and_increment_version, Scope};
use crate::proto::validate_path;
use crate::session::auth::{check_acl, fixup_acl};
use crate::tree::acl::perms;
use crate::tree::quota::Usage;
use crate::txn::TxnBody;

/// setData: WRITE permission and the data version.
pub(super) fn set_data(
    scope: &mut Scope<'_, '_>,
    request: &SetDataRequest,
) -> Result<(OpCode, TxnBody), Code> {
    scope.check_session()?;
    validate_path(&request.path).map_err(|_| Code::BadArguments)?;
    let mut node = scope.record(&request.path)?;
    check_acl(&node.acl, perms::WRITE, scope.context.auth)?;
    let data_len = request.data.as_ref().map_or(0, Bytes::len);
    scope.check_quota(&request.path, Usage::node(data_len) - Usage::node(node.data_len))?;
    let version = check_and_increment_version(node.version, request.version)?;
    node.version = version;
    node.data_len = data_len;
    scope.set(&request.path, Some(node));
    let txn = SetDataTxn { path: request.path.clone(), data: request.data.clone(), version };
    Ok((OpCode::SetData, TxnBody::SetData(txn)))
}

/// setACL: a valid ACL, ADMIN permission and the ACL version. The new ACL is visible to
/// requests prepared after this one, so none of them is authorized by the old one.
pub(super) fn set_acl(
    scope: &mut Scope<'_, '_>,
    request: &SetAclRequest,
) -> Result<(OpCode, TxnBody), Code> {
    scope.check_session()?;
    validate_path(&request.path).map_err(|_| Code::BadArguments)?;
    let acl = fixup_acl(&request.acl, scope.context.auth, scope.context.digest_auth_enabled)?;
    let mut node = scope.record(&request.path)?;
    check_acl(&node.acl, perms::ADMIN, scope.context.auth)?;
    let version = check_and_increment_version(node.aversion, request.version)?;
    node.aversion = version;
    node.acl = acl.clone().into();
    scope.set(&request.path, Some(node));
    Ok((OpCode::SetAcl, TxnBody::SetAcl(SetAclTxn { path: request.path.clone(), acl, version })))
}

/// check: READ permission and the data version; changes nothing.
pub(super) fn check(
    scope: &mut Scope<'_, '_>,
    request: &CheckVersionRequest,
) -> Result<(OpCode, TxnBody), Code> {
    scope.check_session()?;
    validate_path(&request.path).map_err(|_| Code::BadArguments)?;
    let node = scope.record(&request.path)?;
    check_acl(&node.acl, perms::READ, scope.context.auth)?;
    let version = check_and_increment_version(node.version, request.version)?;
    Ok((OpCode::Check, TxnBody::Check(CheckVersionTxn { path: request.path.clone(), version })))
}
