//! Decoded client requests: one variant per opcode, built from `RequestHeader` + body.

use bytes::Bytes;
use jute::records::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest,
    GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, GetSaslRequest,
    MultiRequest, ReconfigRequest, RemoveWatchesRequest, RequestHeader, SetAclRequest,
    SetDataRequest, SetWatches, SetWatches2, SyncRequest,
};
use jute::{DecodeError, OpCode, Reader, Record};

/// A request after its header, with the body decoded for its opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15) or createContainer (19); `op` says which.
    Create {
        /// The opcode, which decides the reply record and the txn type.
        op: OpCode,
        /// The request body.
        request: CreateRequest,
    },
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(ExistsRequest),
    /// getData (4).
    GetData(GetDataRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(GetAclRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(GetChildrenRequest),
    /// sync (9).
    Sync(SyncRequest),
    /// ping (11).
    Ping,
    /// getChildren2 (12).
    GetChildren2(GetChildren2Request),
    /// check (13) outside a multi.
    Check(CheckVersionRequest),
    /// multi (14).
    Multi(MultiRequest),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(CheckWatchesRequest),
    /// removeWatches (18).
    RemoveWatches(RemoveWatchesRequest),
    /// deleteContainer (20), which only the server's own reaper should send.
    DeleteContainer(String),
    /// multiRead (22).
    MultiRead(MultiRequest),
    /// auth (100).
    Auth(AuthPacket),
    /// setWatches (101) or setWatches2 (105); the former with empty persistent lists.
    SetWatches(SetWatches2),
    /// sasl (102).
    Sasl(GetSaslRequest),
    /// getEphemerals (103).
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// whoAmI (107).
    WhoAmI,
    /// closeSession (-11).
    CloseSession,
}

/// A request that could not be turned into a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// An opcode ZooKeeper does not accept from clients: answered with `Unimplemented`,
    /// then the connection is closed.
    UnknownOpcode(i32),
    /// A known opcode whose body does not decode: answered with `MarshallingError`.
    Malformed(OpCode, DecodeError),
}

/// The header and request of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Client's request id, echoed in the reply.
    pub xid: i32,
    /// The decoded request.
    pub request: Result<Request, RequestError>,
}

impl Frame {
    /// Decodes one frame body (without its length prefix).
    ///
    /// # Errors
    /// A frame too short for a `RequestHeader` cannot be answered at all.
    pub fn decode(body: &Bytes) -> Result<Frame, DecodeError> {
        let mut reader = Reader::new(body);
        let header = RequestHeader::read(&mut reader)?;
        let request = Request::decode(header.op_type, &mut reader);
        Ok(Frame { xid: header.xid, request })
    }
}

impl Request {
    fn decode(op_type: i32, reader: &mut Reader<'_>) -> Result<Request, RequestError> {
        let op = match OpCode::from_i32(op_type) {
            Some(op)
                if !matches!(op, OpCode::Notification | OpCode::CreateSession | OpCode::Error) =>
            {
                op
            }
            _ => return Err(RequestError::UnknownOpcode(op_type)),
        };
        let malformed = |err| RequestError::Malformed(op, err);
        let request = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                Request::Create { op, request: Record::read(reader).map_err(malformed)? }
            }
            OpCode::CreateTtl => Request::CreateTtl(Record::read(reader).map_err(malformed)?),
            OpCode::Delete => Request::Delete(Record::read(reader).map_err(malformed)?),
            OpCode::Exists => Request::Exists(Record::read(reader).map_err(malformed)?),
            OpCode::GetData => Request::GetData(Record::read(reader).map_err(malformed)?),
            OpCode::SetData => Request::SetData(Record::read(reader).map_err(malformed)?),
            OpCode::GetAcl => Request::GetAcl(Record::read(reader).map_err(malformed)?),
            OpCode::SetAcl => Request::SetAcl(Record::read(reader).map_err(malformed)?),
            OpCode::GetChildren => Request::GetChildren(Record::read(reader).map_err(malformed)?),
            OpCode::Sync => Request::Sync(Record::read(reader).map_err(malformed)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(Record::read(reader).map_err(malformed)?),
            OpCode::Check => Request::Check(Record::read(reader).map_err(malformed)?),
            OpCode::Multi | OpCode::MultiRead => {
                let multi = MultiRequest::read(reader).map_err(malformed)?;
                // ZooKeeper refuses a multi that mixes reads and writes, or whose kind
                // does not match its opcode.
                let want_reads = op == OpCode::MultiRead;
                if multi.ops.iter().any(|multi_op| multi_op.is_read() != want_reads) {
                    return Err(malformed(DecodeError::Invalid {
                        what: "multi",
                        offset: 0,
                        reason: "mixing different kind of ops",
                    }));
                }
                if want_reads {
                    Request::MultiRead(multi)
                } else {
                    Request::Multi(multi)
                }
            }
            OpCode::Reconfig => Request::Reconfig(Record::read(reader).map_err(malformed)?),
            OpCode::CheckWatches => Request::CheckWatches(Record::read(reader).map_err(malformed)?),
            OpCode::RemoveWatches => {
                Request::RemoveWatches(Record::read(reader).map_err(malformed)?)
            }
            OpCode::DeleteContainer => {
                Request::DeleteContainer(String::from_utf8_lossy(&reader.rest()).into_owned())
            }
            OpCode::Auth => Request::Auth(Record::read(reader).map_err(malformed)?),
            OpCode::SetWatches => {
                let old: SetWatches = Record::read(reader).map_err(malformed)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: old.relative_zxid,
                    data_watches: old.data_watches,
                    exist_watches: old.exist_watches,
                    child_watches: old.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                })
            }
            OpCode::SetWatches2 => Request::SetWatches(Record::read(reader).map_err(malformed)?),
            OpCode::Sasl => Request::Sasl(Record::read(reader).map_err(malformed)?),
            OpCode::GetEphemerals => {
                Request::GetEphemerals(Record::read(reader).map_err(malformed)?)
            }
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(Record::read(reader).map_err(malformed)?)
            }
            OpCode::AddWatch => Request::AddWatch(Record::read(reader).map_err(malformed)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(RequestError::UnknownOpcode(op_type))
            }
        };
        Ok(request)
    }

    /// Whether it creates an ephemeral node (alone or in a multi): a local session must
    /// become global first (ZooKeeper's `checkUpgradeSession`).
    pub fn creates_ephemeral(&self) -> bool {
        // CreateMode flags: 1 = EPHEMERAL, 3 = EPHEMERAL_SEQUENTIAL.
        let ephemeral = |flags: i32| matches!(flags, 1 | 3);
        match self {
            Request::Create { request, .. } => ephemeral(request.flags),
            Request::Multi(multi) => multi.ops.iter().any(|op| match op {
                jute::records::MultiOp::Create { request, .. } => ephemeral(request.flags),
                _ => false,
            }),
            _ => false,
        }
    }

    /// Whether the request changes state and so goes through the write pipeline (in
    /// order with the session's other writes). `sync` is one too: it answers only once
    /// every write before it is applied.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::DeleteContainer(_)
                | Request::Sync(_)
                | Request::CloseSession
        )
    }

    /// Whether the request's answer reflects the tree's state, so that under
    /// `zkrs.linearizableReads` it waits for the read barrier. Pings, watch bookkeeping
    /// and identity questions do not.
    pub fn reads_tree(&self) -> bool {
        matches!(
            self,
            Request::Exists(_)
                | Request::GetData(_)
                | Request::GetAcl(_)
                | Request::GetChildren(_)
                | Request::GetChildren2(_)
                | Request::MultiRead(_)
                | Request::SetWatches(_)
                | Request::GetEphemerals(_)
                | Request::GetAllChildrenNumber(_)
        )
    }

    /// The opcode of this request.
    pub fn op(&self) -> OpCode {
        match self {
            Request::Create { op, .. } => *op,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches2,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use jute::records::{MultiOp, RequestHeader};

    use super::*;

    fn frame(op_type: i32, body: &impl Record) -> Bytes {
        let mut out = BytesMut::new();
        RequestHeader { xid: 5, op_type }.write(&mut out);
        body.write(&mut out);
        out.freeze()
    }

    #[test]
    fn decodes_a_get_data() {
        let body = GetDataRequest { path: "/a".into(), watch: true };
        let decoded = Frame::decode(&frame(4, &body)).expect("header");
        assert_eq!(decoded, Frame { xid: 5, request: Ok(Request::GetData(body)) });
    }

    #[test]
    fn unknown_and_server_only_opcodes_are_rejected() {
        let body = SyncRequest { path: "/".into() };
        for op in [10, 0, -10, 999] {
            let decoded = Frame::decode(&frame(op, &body)).expect("header");
            assert_eq!(decoded.request, Err(RequestError::UnknownOpcode(op)));
        }
    }

    #[test]
    fn truncated_bodies_are_malformed() {
        let mut out = BytesMut::new();
        RequestHeader { xid: 1, op_type: 1 }.write(&mut out);
        out.extend_from_slice(&[0, 0, 0, 9, b'/']);
        let decoded = Frame::decode(&out.freeze()).expect("header");
        assert!(matches!(decoded.request, Err(RequestError::Malformed(OpCode::Create, _))));
        assert!(Frame::decode(&Bytes::from_static(&[0, 0, 1])).is_err());
    }

    #[test]
    fn mixed_multi_is_malformed() {
        let multi = MultiRequest {
            ops: vec![
                MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
                MultiOp::GetData(GetDataRequest { path: "/a".into(), watch: false }),
            ],
        };
        let decoded = Frame::decode(&frame(14, &multi)).expect("header");
        assert!(matches!(decoded.request, Err(RequestError::Malformed(OpCode::Multi, _))));
    }

    #[test]
    fn set_watches_is_widened() {
        let old = SetWatches {
            relative_zxid: 9,
            data_watches: vec!["/d".into()],
            ..SetWatches::default()
        };
        let decoded = Frame::decode(&frame(101, &old)).expect("header");
        let Ok(Request::SetWatches(watches)) = decoded.request else { panic!("not setWatches") };
        assert_eq!((watches.relative_zxid, watches.data_watches.len()), (9, 1));
        assert!(watches.persistent_watches.is_empty());
    }
}
