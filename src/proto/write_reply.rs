//! The reply to an applied write, built from its [`TxnResult`] as ZooKeeper's
//! `FinalRequestProcessor` builds it.

use bytes::Bytes;
use jute::records::{
    Create2Response, CreateResponse, MultiResponse, MultiResult, SetAclResponse, SetDataResponse,
};
use jute::{Code, OpCode};

use crate::proto::reply;
use crate::tree::TxnResult;
use crate::txn::Zxid;

/// The reply frame for the write `op` whose txn produced `result`. A failed txn gets
/// its error code without a body; a multi always gets per-op results and status 0.
pub fn write_reply(op: OpCode, result: &TxnResult, xid: i32, zxid: Zxid) -> Bytes {
    if result.op_type == OpCode::Error {
        return reply::status(xid, zxid, result.err);
    }
    let stat = result.stat.clone().unwrap_or_default();
    match op {
        OpCode::Create => reply::ok(xid, zxid, &CreateResponse { path: result.path.clone() }),
        OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
            reply::ok(xid, zxid, &Create2Response { path: result.path.clone(), stat })
        }
        OpCode::SetData | OpCode::Check => reply::ok(xid, zxid, &SetDataResponse { stat }),
        OpCode::SetAcl => reply::ok(xid, zxid, &SetAclResponse { stat }),
        OpCode::Multi => {
            let results = result.multi.iter().map(multi_result).collect();
            reply::ok(xid, zxid, &MultiResponse { results })
        }
        _ => reply::status(xid, zxid, result.err),
    }
}

fn multi_result(result: &TxnResult) -> MultiResult {
    match result.op_type {
        OpCode::Check => MultiResult::Check,
        OpCode::Create => MultiResult::Create(result.path.clone()),
        OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => MultiResult::Create2 {
            path: result.path.clone(),
            stat: result.stat.clone().unwrap_or_default(),
        },
        OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
        OpCode::SetData => MultiResult::SetData(result.stat.clone().unwrap_or_default()),
        _ => MultiResult::Error(
            if result.op_type == OpCode::Error { result.err } else { Code::Ok }.as_i32(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use jute::records::{ReplyHeader, Stat};
    use jute::{from_bytes, Record};

    use super::*;

    fn result(op_type: OpCode, err: Code) -> TxnResult {
        TxnResult {
            op_type,
            err,
            path: "/p".into(),
            stat: Some(Stat::default()),
            multi: Vec::new(),
            ephemerals: Vec::new(),
        }
    }

    fn header(frame: &Bytes) -> ReplyHeader {
        from_bytes(&frame.slice(4..)).expect("header")
    }

    #[test]
    fn failed_write_has_no_body() {
        let frame =
            write_reply(OpCode::Create, &result(OpCode::Error, Code::NodeExists), 3, Zxid::new(9));
        assert_eq!(header(&frame), ReplyHeader { xid: 3, zxid: 9, err: -110 });
        assert_eq!(frame.len(), 4 + 16);
    }

    #[test]
    fn create_and_create2_differ() {
        let create =
            write_reply(OpCode::Create, &result(OpCode::Create, Code::Ok), 1, Zxid::new(1));
        let create2 =
            write_reply(OpCode::Create2, &result(OpCode::Create, Code::Ok), 1, Zxid::new(1));
        assert_eq!(create.len(), 4 + 16 + 6);
        assert_eq!(create2.len(), 4 + 16 + 6 + Stat::MIN_LEN);
    }

    #[test]
    fn failed_multi_reports_each_op() {
        let mut multi = result(OpCode::Multi, Code::BadVersion);
        multi.multi = vec![
            result(OpCode::Error, Code::Ok),
            result(OpCode::Error, Code::BadVersion),
            result(OpCode::Error, Code::RuntimeInconsistency),
        ];
        let frame = write_reply(OpCode::Multi, &multi, 1, Zxid::new(1));
        assert_eq!(header(&frame).err, 0);
        let response: MultiResponse = from_bytes(&frame.slice(20..)).expect("multi");
        assert_eq!(
            response.results,
            [MultiResult::Error(0), MultiResult::Error(-103), MultiResult::Error(-2)]
        );
    }
}
