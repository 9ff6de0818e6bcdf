//! Transactions: the only way the replicated state changes.
//!
//! `prepare` turns a write request into a [`Txn`]; the log stores its jute encoding
//! (ZooKeeper's own `TxnHeader` + txn records, so `zkrs log dump` reads like
//! `zkTxnLogToolkit`); `tree::Database::apply` applies it. A failed request still becomes
//! a txn ([`TxnBody::Error`]) and takes a zxid, as in ZooKeeper, so that a client never
//! sees a zxid the log does not have.

use std::fmt;

use bytes::{Bytes, BytesMut};
use jute::records::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, MultiTxn, SetAclTxn, SetDataTxn, Txn as SubTxnRecord,
    TxnHeader,
};
use jute::{DecodeError, OpCode, Reader, Record};

/// The encoded size of a [`TxnHeader`], which starts every encoded txn: two longs, an
/// int, a long and an int.
const TXN_HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 4;

/// A transaction's id: `epoch << 32 | counter`, ordered as ZooKeeper orders them (as a
/// signed `long`). On the wire, in txn records and in stats it is a plain `long`, so it
/// becomes one only at those boundaries. Shown as ZooKeeper logs it: `0x` and hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Zxid(i64);

impl Zxid {
    /// Before any transaction: what an empty history has applied.
    pub const ZERO: Zxid = Zxid(0);

    /// A zxid as operators write one: `0x1f` or `31`.
    ///
    /// # Errors
    /// Text that is neither.
    pub fn parse(text: &str) -> Result<Zxid, String> {
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.map(Zxid).map_err(|err| format!("{text:?} is not a zxid: {err}"))
    }

    /// The zxid whose wire value is `raw`.
    pub const fn new(raw: i64) -> Zxid {
        Zxid(raw)
    }

    /// The first zxid of `epoch`, before any entry: `epoch << 32`.
    pub const fn epoch_start(epoch: u32) -> Zxid {
        Zxid((epoch as i64) << 32)
    }

    /// The value the wire, the txn records and the stats carry.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// The epoch half: the leadership that proposed it.
    pub const fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The counter half: its place in its epoch.
    pub const fn counter(self) -> u32 {
        self.0 as u32
    }

    /// The zxid right after this one, for ranges that start past it (the last zxid
    /// there is stays where it is).
    pub const fn next(self) -> Zxid {
        Zxid(self.0.saturating_add(1))
    }
}

/// `zxid + n`: the zxid `n` places later (a counter that overflows runs into the next
/// epoch, as ZooKeeper's `long` arithmetic does; the leader never lets it).
impl std::ops::Add<u32> for Zxid {
    type Output = Zxid;

    fn add(self, n: u32) -> Zxid {
        Zxid(self.0 + i64::from(n))
    }
}

impl std::ops::AddAssign<u32> for Zxid {
    fn add_assign(&mut self, n: u32) {
        self.0 += i64::from(n);
    }
}

/// `zxid - n`: the zxid `n` places earlier.
impl std::ops::Sub<u32> for Zxid {
    type Output = Zxid;

    fn sub(self, n: u32) -> Zxid {
        Zxid(self.0 - i64::from(n))
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// `{:x}`: the bare hex, for messages that put their own `0x` before it.
impl fmt::LowerHex for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A session's id. ZooKeeper puts the id of the server that opened it in the top byte
/// (`initial_session_id`); on the wire and in txn records it is a plain `long`, so it
/// becomes one only at those boundaries. Shown as ZooKeeper logs it: `0x` and hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(i64);

impl SessionId {
    /// No session (ZooKeeper's 0): what a client sends to ask for a new one, what a
    /// connection reports before its handshake is done, and the issuer of the server's
    /// own requests, such as reaping containers.
    pub const NONE: SessionId = SessionId(0);

    /// The session whose wire value is `raw`.
    pub const fn new(raw: i64) -> SessionId {
        SessionId(raw)
    }

    /// The value the wire and the txn records carry.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// The id of the server that opened the session, from the top byte.
    pub const fn server_id(self) -> u64 {
        self.0 as u64 >> 56
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One transaction: who asked (`client_id`, `cxid`), when, under which zxid, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// ZooKeeper's header; `op_type` always matches `body`.
    pub header: TxnHeader,
    /// What the transaction does.
    pub body: TxnBody,
}

/// The effect of a transaction, one variant per txn record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// create or create2 (the opcode in the header tells which reply to give).
    Create(CreateTxn),
    /// createTTL.
    CreateTtl(CreateTtlTxn),
    /// createContainer.
    CreateContainer(CreateContainerTxn),
    /// delete or deleteContainer.
    Delete(DeleteTxn),
    /// setData.
    SetData(SetDataTxn),
    /// setACL.
    SetAcl(SetAclTxn),
    /// A passed check.
    Check(CheckVersionTxn),
    /// A new session.
    CreateSession(CreateSessionTxn),
    /// A session closed by its client or expired.
    CloseSession(CloseSessionTxn),
    /// A failed request or sub-request.
    Error(ErrorTxn),
    /// A multi: every sub-txn under the header's zxid.
    Multi(Vec<SubTxn>),
}

/// One sub-transaction of a multi, with its own opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTxn {
    /// The sub-op's opcode (error for a failed or rolled-back op).
    pub op_type: OpCode,
    /// What it does.
    pub body: TxnBody,
}

impl TxnBody {
    /// The bytes [`TxnBody::write`] appends.
    fn size_hint(&self) -> usize {
        match self {
            TxnBody::Create(txn) => txn.size_hint(),
            TxnBody::CreateTtl(txn) => txn.size_hint(),
            TxnBody::CreateContainer(txn) => txn.size_hint(),
            TxnBody::Delete(txn) => txn.size_hint(),
            TxnBody::SetData(txn) => txn.size_hint(),
            TxnBody::SetAcl(txn) => txn.size_hint(),
            TxnBody::Check(txn) => txn.size_hint(),
            TxnBody::CreateSession(txn) => txn.size_hint(),
            TxnBody::CloseSession(txn) => txn.size_hint(),
            TxnBody::Error(txn) => txn.size_hint(),
            // The vector's count, then each sub-txn's op type and its body as a buffer.
            TxnBody::Multi(subs) => {
                4 + subs.iter().map(|sub| 8 + sub.body.size_hint()).sum::<usize>()
            }
        }
    }

    fn write(&self, out: &mut BytesMut) {
        match self {
            TxnBody::Create(txn) => txn.write(out),
            TxnBody::CreateTtl(txn) => txn.write(out),
            TxnBody::CreateContainer(txn) => txn.write(out),
            TxnBody::Delete(txn) => txn.write(out),
            TxnBody::SetData(txn) => txn.write(out),
            TxnBody::SetAcl(txn) => txn.write(out),
            TxnBody::Check(txn) => txn.write(out),
            TxnBody::CreateSession(txn) => txn.write(out),
            TxnBody::CloseSession(txn) => txn.write(out),
            TxnBody::Error(txn) => txn.write(out),
            TxnBody::Multi(subs) => {
                let txns = subs
                    .iter()
                    .map(|sub| {
                        let mut data = BytesMut::new();
                        sub.body.write(&mut data);
                        SubTxnRecord { op_type: sub.op_type.as_i32(), data: data.freeze() }
                    })
                    .collect();
                MultiTxn { txns }.write(out);
            }
        }
    }

    fn read(op_type: i32, reader: &mut Reader<'_>) -> Result<TxnBody, DecodeError> {
        let offset = reader.position();
        let invalid =
            DecodeError::Invalid { what: "TxnHeader.op_type", offset, reason: "unknown txn type" };
        Ok(match OpCode::from_i32(op_type).ok_or(invalid.clone())? {
            OpCode::Create | OpCode::Create2 => TxnBody::Create(Record::read(reader)?),
            OpCode::CreateTtl => TxnBody::CreateTtl(Record::read(reader)?),
            OpCode::CreateContainer => TxnBody::CreateContainer(Record::read(reader)?),
            OpCode::Delete | OpCode::DeleteContainer => TxnBody::Delete(Record::read(reader)?),
            OpCode::SetData => TxnBody::SetData(Record::read(reader)?),
            OpCode::SetAcl => TxnBody::SetAcl(Record::read(reader)?),
            OpCode::Check => TxnBody::Check(Record::read(reader)?),
            OpCode::CreateSession => TxnBody::CreateSession(Record::read(reader)?),
            OpCode::CloseSession => TxnBody::CloseSession(Record::read(reader)?),
            OpCode::Error => TxnBody::Error(Record::read(reader)?),
            OpCode::Multi => {
                let multi = MultiTxn::read(reader)?;
                let mut subs = Vec::with_capacity(multi.txns.len());
                for sub in multi.txns {
                    let sub_op = OpCode::from_i32(sub.op_type).ok_or(invalid.clone())?;
                    if sub_op == OpCode::Multi {
                        return Err(invalid);
                    }
                    let body = TxnBody::read(sub.op_type, &mut Reader::new(&sub.data))?;
                    subs.push(SubTxn { op_type: sub_op, body });
                }
                TxnBody::Multi(subs)
            }
            _ => return Err(invalid),
        })
    }
}

impl Txn {
    /// The transaction's zxid.
    pub fn zxid(&self) -> Zxid {
        Zxid::new(self.header.zxid)
    }

    /// The session that issued the transaction (the header's `clientId`).
    pub fn session_id(&self) -> SessionId {
        SessionId::new(self.header.client_id)
    }

    /// The jute encoding the log stores: `TxnHeader` then the txn record.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }

    /// The length of [`Txn::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        self.header.size_hint() + self.body.size_hint()
    }

    /// Appends [`Txn::encode`]'s bytes to `out` (whose room the caller sizes with
    /// [`Txn::encoded_len`]).
    pub fn encode_into(&self, out: &mut BytesMut) {
        self.header.write(out);
        self.body.write(out);
    }

    /// The leader's wall time (ms) in an encoded txn's header, without decoding the
    /// rest: a learner times a proposal as it arrives. `None` if the header is cut short.
    pub fn header_time_ms(encoded: &[u8]) -> Option<i64> {
        let bytes = Bytes::copy_from_slice(encoded.get(..TXN_HEADER_BYTES)?);
        TxnHeader::read(&mut Reader::new(&bytes)).ok().map(|header| header.time)
    }

    /// Decodes what [`Txn::encode`] wrote.
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is not a valid encoding.
    pub fn decode(bytes: &Bytes) -> Result<Txn, DecodeError> {
        Txn::decode_with_digest(bytes).map(|(txn, _)| txn)
    }

    /// Decodes a txn as [`Txn::decode`] does, with the tree digest ZooKeeper 3.6+ writes
    /// after it (in its log and in its leader's proposals), if there is one.
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is not a valid encoding.
    pub fn decode_with_digest(bytes: &Bytes) -> Result<(Txn, Option<TxnDigest>), DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = TxnHeader::read(&mut reader)?;
        let body = TxnBody::read(header.op_type, &mut reader)?;
        let digest = if reader.remaining() >= TXN_DIGEST_BYTES {
            let version = reader.read_i32("digest version")?;
            let tree_digest = reader.read_i64("tree digest")?;
            Some(TxnDigest { version, tree_digest })
        } else {
            None
        };
        Ok((Txn { header, body }, digest))
    }
}

/// The length of ZooKeeper's `TxnDigest` record: an int and a long.
const TXN_DIGEST_BYTES: usize = 12;

/// ZooKeeper's `TxnDigest`: the digest its leader expects the tree to have once the txn
/// it follows is applied (see [`crate::tree::digest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    /// The digest's version (2 since ZooKeeper 3.6).
    pub version: i32,
    /// The tree's digest, a Java long.
    pub tree_digest: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::records::{Acl, Id};

    fn header(op_type: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: 0x100,
            cxid: 7,
            zxid: 0x5_0000_0001,
            time: 1234,
            op_type: op_type.as_i32(),
        }
    }

    #[test]
    fn multi_txn_round_trips() {
        let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        let txn = Txn {
            header: header(OpCode::Multi),
            body: TxnBody::Multi(vec![
                SubTxn {
                    op_type: OpCode::Create,
                    body: TxnBody::Create(CreateTxn {
                        path: "/a".into(),
                        data: Some(Bytes::from_static(b"x")),
                        acl,
                        ephemeral: false,
                        parent_cversion: 1,
                    }),
                },
                SubTxn { op_type: OpCode::Error, body: TxnBody::Error(ErrorTxn { err: -2 }) },
            ]),
        };
        let encoded = txn.encode();
        assert_eq!(Txn::decode(&encoded).expect("decodes"), txn);
        assert_eq!(txn.encoded_len(), encoded.len());
    }

    #[test]
    fn the_header_time_reads_without_decoding_the_body() {
        let txn = Txn {
            header: header(OpCode::Delete),
            body: TxnBody::Delete(DeleteTxn { path: "/a".into() }),
        };
        let encoded = txn.encode();
        assert_eq!(Txn::header_time_ms(&encoded), Some(1234));
        assert_eq!(Txn::header_time_ms(&encoded[..TXN_HEADER_BYTES - 1]), None);
    }

    #[test]
    fn unknown_txn_type_is_an_error_not_a_panic() {
        let mut txn = Txn {
            header: header(OpCode::Delete),
            body: TxnBody::Delete(DeleteTxn { path: "/a".into() }),
        };
        txn.header.op_type = 77;
        assert!(Txn::decode(&txn.encode()).is_err());
    }

    #[test]
    fn zxid_halves() {
        let zxid = Zxid::new(0x5_0000_0001);
        assert_eq!(zxid.epoch(), 5);
        assert_eq!(zxid.counter(), 1);
        assert_eq!(zxid, Zxid::epoch_start(5) + 1);
        assert_eq!(zxid.to_string(), "0x500000001");
    }
}
