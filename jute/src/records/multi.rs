//! `multi` and `multiRead`: a sequence of (header, op) pairs closed by a `done` header.

use bytes::{Bytes, BytesMut};

use crate::records::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, SetDataRequest, SetDataResponse, Stat,
};
use crate::{record, DecodeError, OpCode, Reader, Record};

record! {
    /// Precedes each op of a multi request and each result of a multi reply.
    MultiHeader {
        op_type: i32,
        done: bool,
        err: i32,
    }
}

/// The most ops one multi may carry. ZooKeeper has no count limit beyond the frame size;
/// an op takes at least 9 header bytes plus its record, so a 1 MiB frame holds fewer.
pub const MULTI_OPS_MAX: usize = 1 << 17;

/// One op of a `multi` or `multiRead` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// A create; `op_type` is the header's opcode (create, create2 or createContainer),
    /// all of which carry a [`CreateRequest`].
    Create {
        /// The opcode in the op's header.
        op_type: i32,
        /// The create itself.
        request: CreateRequest,
    },
    /// A create with a time to live.
    CreateTtl(CreateTtlRequest),
    /// A delete.
    Delete(DeleteRequest),
    /// A data write.
    SetData(SetDataRequest),
    /// A version check.
    Check(CheckVersionRequest),
    /// A child listing (multiRead only).
    GetChildren(GetChildrenRequest),
    /// A data read (multiRead only).
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The opcode written in this op's header.
    pub fn header_type(&self) -> i32 {
        match self {
            MultiOp::Create { op_type, .. } => *op_type,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl.as_i32(),
            MultiOp::Delete(_) => OpCode::Delete.as_i32(),
            MultiOp::SetData(_) => OpCode::SetData.as_i32(),
            MultiOp::Check(_) => OpCode::Check.as_i32(),
            MultiOp::GetChildren(_) => OpCode::GetChildren.as_i32(),
            MultiOp::GetData(_) => OpCode::GetData.as_i32(),
        }
    }

    /// The path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { request, .. } => &request.path,
            MultiOp::CreateTtl(request) => &request.path,
            MultiOp::Delete(request) => &request.path,
            MultiOp::SetData(request) => &request.path,
            MultiOp::Check(request) => &request.path,
            MultiOp::GetChildren(request) => &request.path,
            MultiOp::GetData(request) => &request.path,
        }
    }

    /// Whether the op reads (multiRead) rather than writes (multi).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }
}

/// The body of a `multi` or `multiRead` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The ops in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    const MIN_LEN: usize = MultiHeader::MIN_LEN;

    fn read_as(reader: &mut Reader<'_>, _what: &'static str) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let offset = reader.position();
            let header = MultiHeader::read(reader)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            if ops.len() >= MULTI_OPS_MAX {
                return Err(DecodeError::Invalid { what: "multi", offset, reason: "too many ops" });
            }
            let op = match OpCode::from_i32(header.op_type) {
                Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
                    MultiOp::Create {
                        op_type: header.op_type,
                        request: CreateRequest::read(reader)?,
                    }
                }
                Some(OpCode::CreateTtl) => MultiOp::CreateTtl(CreateTtlRequest::read(reader)?),
                Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::read(reader)?),
                Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::read(reader)?),
                Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::read(reader)?),
                Some(OpCode::GetChildren) => {
                    MultiOp::GetChildren(GetChildrenRequest::read(reader)?)
                }
                Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::read(reader)?),
                _ => {
                    return Err(DecodeError::Invalid {
                        what: "MultiHeader.op_type",
                        offset,
                        reason: "invalid type of op",
                    })
                }
            };
            ops.push(op);
        }
    }

    fn write(&self, out: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader { op_type: op.header_type(), done: false, err: -1 }.write(out);
            match op {
                MultiOp::Create { request, .. } => request.write(out),
                MultiOp::CreateTtl(request) => request.write(out),
                MultiOp::Delete(request) => request.write(out),
                MultiOp::SetData(request) => request.write(out),
                MultiOp::Check(request) => request.write(out),
                MultiOp::GetChildren(request) => request.write(out),
                MultiOp::GetData(request) => request.write(out),
            }
        }
        MultiHeader { op_type: -1, done: true, err: -1 }.write(out);
    }

    fn size_hint(&self) -> usize {
        let op = |op: &MultiOp| match op {
            MultiOp::Create { request, .. } => request.size_hint(),
            MultiOp::CreateTtl(request) => request.size_hint(),
            MultiOp::Delete(request) => request.size_hint(),
            MultiOp::SetData(request) => request.size_hint(),
            MultiOp::Check(request) => request.size_hint(),
            MultiOp::GetChildren(request) => request.size_hint(),
            MultiOp::GetData(request) => request.size_hint(),
        };
        let ops: usize = self.ops.iter().map(|item| MultiHeader::MIN_LEN + op(item)).sum();
        ops + MultiHeader::MIN_LEN
    }
}

/// One result of a `multi` or `multiRead` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// A create answered with its path (op type create).
    Create(String),
    /// A create answered with path and stat (container and TTL creates).
    Create2 {
        /// The created path.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// A delete.
    Delete,
    /// A data write with the node's new stat.
    SetData(Stat),
    /// A passed version check.
    Check,
    /// A child listing.
    GetChildren(Vec<String>),
    /// A data read.
    GetData {
        /// The node's data.
        data: Option<Bytes>,
        /// The node's stat.
        stat: Stat,
    },
    /// A failed op, or 0 for an op rolled back because another failed.
    Error(i32),
}

/// The body of a `multi` or `multiRead` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// The results in op order.
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    const MIN_LEN: usize = MultiHeader::MIN_LEN;

    fn read_as(reader: &mut Reader<'_>, _what: &'static str) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let offset = reader.position();
            let header = MultiHeader::read(reader)?;
            if header.done {
                return Ok(MultiResponse { results });
            }
            if results.len() >= MULTI_OPS_MAX {
                return Err(DecodeError::Invalid {
                    what: "multi",
                    offset,
                    reason: "too many results",
                });
            }
            let result = match OpCode::from_i32(header.op_type) {
                Some(OpCode::Create) => MultiResult::Create(CreateResponse::read(reader)?.path),
                Some(OpCode::Create2) => {
                    let Create2Response { path, stat } = Create2Response::read(reader)?;
                    MultiResult::Create2 { path, stat }
                }
                Some(OpCode::Delete) => MultiResult::Delete,
                Some(OpCode::Check) => MultiResult::Check,
                Some(OpCode::SetData) => MultiResult::SetData(SetDataResponse::read(reader)?.stat),
                Some(OpCode::GetChildren) => {
                    MultiResult::GetChildren(GetChildrenResponse::read(reader)?.children)
                }
                Some(OpCode::GetData) => {
                    let GetDataResponse { data, stat } = GetDataResponse::read(reader)?;
                    MultiResult::GetData { data, stat }
                }
                Some(OpCode::Error) => MultiResult::Error(ErrorResponse::read(reader)?.err),
                _ => {
                    return Err(DecodeError::Invalid {
                        what: "MultiHeader.op_type",
                        offset,
                        reason: "invalid type of result",
                    })
                }
            };
            results.push(result);
        }
    }

    fn write(&self, out: &mut BytesMut) {
        for result in &self.results {
            let (op_type, err) = match result {
                MultiResult::Create(_) => (OpCode::Create, 0),
                MultiResult::Create2 { .. } => (OpCode::Create2, 0),
                MultiResult::Delete => (OpCode::Delete, 0),
                MultiResult::SetData(_) => (OpCode::SetData, 0),
                MultiResult::Check => (OpCode::Check, 0),
                MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
                MultiResult::GetData { .. } => (OpCode::GetData, 0),
                MultiResult::Error(err) => (OpCode::Error, *err),
            };
            MultiHeader { op_type: op_type.as_i32(), done: false, err }.write(out);
            match result {
                MultiResult::Create(path) => crate::writer::write_ustring(out, path),
                MultiResult::Create2 { path, stat } => {
                    crate::writer::write_ustring(out, path);
                    stat.write(out);
                }
                MultiResult::Delete | MultiResult::Check => {}
                MultiResult::SetData(stat) => stat.write(out),
                MultiResult::GetChildren(children) => children.write(out),
                MultiResult::GetData { data, stat } => {
                    data.write(out);
                    stat.write(out);
                }
                MultiResult::Error(err) => err.write(out),
            }
        }
        MultiHeader { op_type: -1, done: true, err: -1 }.write(out);
    }

    fn size_hint(&self) -> usize {
        let result = |result: &MultiResult| match result {
            MultiResult::Create(path) => path.size_hint(),
            MultiResult::Create2 { path, stat } => path.size_hint() + stat.size_hint(),
            MultiResult::Delete | MultiResult::Check => 0,
            MultiResult::SetData(stat) => stat.size_hint(),
            MultiResult::GetChildren(children) => children.size_hint(),
            MultiResult::GetData { data, stat } => data.size_hint() + stat.size_hint(),
            MultiResult::Error(err) => err.size_hint(),
        };
        let results: usize =
            self.results.iter().map(|item| MultiHeader::MIN_LEN + result(item)).sum();
        results + MultiHeader::MIN_LEN
    }
}
