//! multi: all ops under one zxid, all or nothing.

use jute::records::{ErrorTxn, MultiOp};
use jute::{Code, OpCode};

use super::create::{self, CreateArgs, CreateMode};
use super::{delete, update, Scope};
use crate::txn::{SubTxn, TxnBody};

/// The opcode a multi op runs as: ZooKeeper rebuilds create ops from their flags, so a
/// create2 header makes a plain create and container flags make a createContainer.
fn create_op_for_flags(flags: i32) -> OpCode {
    match CreateMode::from_flags(flags) {
        Some(CreateMode::Container) => OpCode::CreateContainer,
        Some(mode) if mode.is_ttl() => OpCode::CreateTtl,
        _ => OpCode::Create,
    }
}

fn prepare_op(scope: &mut Scope<'_, '_>, op: &MultiOp) -> Result<(OpCode, TxnBody), Code> {
    match op {
        MultiOp::Create { request, .. } => {
            let op = create_op_for_flags(request.flags);
            if op == OpCode::CreateTtl {
                // ZooKeeper turns this op into a TTL create without a TTL and fails the
                // whole request with a ClassCastException, answered as MarshallingError.
                return Err(ABORT_WHOLE_MULTI);
            }
            let args = CreateArgs {
                path: &request.path,
                data: request.data.as_ref(),
                acl: &request.acl,
                flags: request.flags,
                ttl: -1,
            };
            create::create(scope, op, args)
        }
        MultiOp::CreateTtl(request) => {
            let ttl_mode = CreateMode::from_flags(request.flags).is_some_and(CreateMode::is_ttl);
            let op = if ttl_mode { OpCode::CreateTtl } else { create_op_for_flags(request.flags) };
            let args = CreateArgs {
                path: &request.path,
                data: request.data.as_ref(),
                acl: &request.acl,
                flags: request.flags,
                ttl: if ttl_mode { request.ttl } else { -1 },
            };
            create::create(scope, op, args)
        }
        MultiOp::Delete(request) => delete::delete(scope, &request.path, request.version),
        MultiOp::SetData(request) => update::set_data(scope, request),
        MultiOp::Check(request) => update::check(scope, request),
        MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ABORT_WHOLE_MULTI),
    }
}

/// Marks an op that fails the whole multi rather than just itself.
const ABORT_WHOLE_MULTI: Code = Code::MarshallingError;

/// Prepares every op; after the first failure the changes so far are dropped, the
/// failed op records its code and the remaining ops record RuntimeInconsistency.
///
/// # Errors
/// `MarshallingError` for an op ZooKeeper cannot even turn into a txn; the whole
/// request then fails.
pub(super) fn multi(scope: &mut Scope<'_, '_>, ops: &[MultiOp]) -> Result<TxnBody, Code> {
    let mut subs = Vec::with_capacity(ops.len());
    let mut failed = false;
    for op in ops {
        if failed {
            subs.push(error(Code::RuntimeInconsistency));
            continue;
        }
        match prepare_op(scope, op) {
            Ok((op_type, body)) => subs.push(SubTxn { op_type, body }),
            Err(ABORT_WHOLE_MULTI) => {
                scope.discard();
                return Err(ABORT_WHOLE_MULTI);
            }
            Err(code) => {
                failed = true;
                scope.discard();
                subs.push(error(code));
            }
        }
    }
    Ok(TxnBody::Multi(subs))
}

fn error(code: Code) -> SubTxn {
    SubTxn { op_type: OpCode::Error, body: TxnBody::Error(ErrorTxn { err: code.as_i32() }) }
}
