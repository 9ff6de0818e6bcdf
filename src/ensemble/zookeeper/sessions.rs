//! What a learner tells its leader about its clients' sessions, in ZooKeeper's packets:
//! their requests (REQUEST), their new sessions (a REQUEST of `createSession`), their
//! activity (the data of its PING answers) and the sessions its clients resume on it
//! (REVALIDATE, which also makes it the session's owner).
//!
//! A REQUEST's data is the session id followed by what the client sent after its
//! length prefix (its xid, its opcode, the request record): the frame zkrs forwards as
//! it is.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use jute::records::{Id, RequestHeader};
use jute::{DecodeError, OpCode, Reader, Record};

use crate::ensemble::zookeeper::packet::{PacketError, PacketType, QuorumPacket};
use crate::txn::SessionId;

/// Bytes one session takes in a PING answer: its id and its timeout.
const TOUCH_LEN: usize = 8 + 4;

/// A client's request a learner forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's session.
    pub session_id: SessionId,
    /// The request as the client framed it, without the length prefix: xid, opcode,
    /// record.
    pub frame: Bytes,
    /// The identities of the client's connection, for the leader's ACL checks.
    pub auth: Vec<Id>,
}

impl Forwarded {
    /// The REQUEST packet that carries it.
    pub fn packet(&self) -> QuorumPacket {
        let mut data = BytesMut::with_capacity(8 + self.frame.len());
        data.put_i64(self.session_id.raw());
        data.put_slice(&self.frame);
        QuorumPacket {
            kind: PacketType::Request,
            zxid: -1,
            data: Some(data.freeze()),
            auth: Some(self.auth.clone()),
        }
    }

    /// Reads a REQUEST packet's data.
    ///
    /// # Errors
    /// If the packet is not a REQUEST or its data is shorter than a session id, an xid
    /// and an opcode.
    pub fn read(packet: &QuorumPacket) -> Result<Forwarded, PacketError> {
        if packet.kind != PacketType::Request {
            return Err(PacketError::UnknownType(packet.kind.number()));
        }
        let data = packet.data.clone().unwrap_or_default();
        if data.len() < 8 + 4 + 4 {
            return Err(cut_short("a forwarded request", 16 - data.len()));
        }
        let session_id = SessionId::new((&data[..8]).get_i64());
        Ok(Forwarded {
            session_id,
            frame: data.slice(8..),
            auth: packet.auth.clone().unwrap_or_default(),
        })
    }

    /// The new session `session_id`, with the timeout its client negotiated, as the
    /// learner that chose its id forwards it.
    pub fn create_session(session_id: SessionId, timeout_ms: i32) -> Forwarded {
        let mut frame = BytesMut::with_capacity(12);
        RequestHeader { xid: 0, op_type: OpCode::CreateSession.as_i32() }.write(&mut frame);
        frame.put_i32(timeout_ms);
        Forwarded { session_id, frame: frame.freeze(), auth: Vec::new() }
    }

    /// The timeout of a forwarded request `frame` that opens a session (what
    /// [`Forwarded::create_session`] writes); `None` for any other request.
    pub fn new_session_timeout(frame: &Bytes) -> Option<i32> {
        let mut reader = Reader::new(frame);
        let header = RequestHeader::read(&mut reader).ok()?;
        (header.op_type == OpCode::CreateSession.as_i32())
            .then(|| reader.read_i32("session timeout").ok())
            .flatten()
    }
}

fn cut_short(what: &'static str, needed: usize) -> PacketError {
    PacketError::Malformed(DecodeError::Incomplete { what, offset: 0, needed })
}

/// The data of a learner's PING answer: each session its clients kept alive since the
/// last one, with its timeout.
pub fn touches(sessions: &[(SessionId, i32)]) -> Bytes {
    let mut data = BytesMut::with_capacity(sessions.len() * TOUCH_LEN);
    for (session_id, timeout_ms) in sessions {
        data.put_i64(session_id.raw());
        data.put_i32(*timeout_ms);
    }
    data.freeze()
}

/// Reads [`touches`]' data (none for a leader's PING, which has no data).
///
/// # Errors
/// If the data is not a whole number of sessions.
pub fn read_touches(data: Option<&Bytes>) -> Result<Vec<(SessionId, i32)>, PacketError> {
    let mut data = data.map_or(&[][..], |data| &data[..]);
    if !data.len().is_multiple_of(TOUCH_LEN) {
        return Err(cut_short("a session touch", TOUCH_LEN - data.len() % TOUCH_LEN));
    }
    let mut sessions = Vec::with_capacity(data.len() / TOUCH_LEN);
    while data.has_remaining() {
        sessions.push((SessionId::new(data.get_i64()), data.get_i32()));
    }
    Ok(sessions)
}

/// A learner's REVALIDATE: a client resumed `session_id` here.
pub fn revalidate(session_id: SessionId, timeout_ms: i32) -> QuorumPacket {
    let mut data = BytesMut::with_capacity(TOUCH_LEN);
    data.put_i64(session_id.raw());
    data.put_i32(timeout_ms);
    QuorumPacket::with_data(PacketType::Revalidate, -1, data.freeze())
}

/// Reads a learner's [`revalidate`]: the session and the timeout its client asked for.
///
/// # Errors
/// If the data is shorter than a session id and a timeout.
pub fn read_revalidate(packet: &QuorumPacket) -> Result<(SessionId, i32), PacketError> {
    let mut data = packet.data.as_ref().map_or(&[][..], |data| &data[..]);
    if data.len() < TOUCH_LEN {
        return Err(cut_short("a revalidation", TOUCH_LEN - data.len()));
    }
    Ok((SessionId::new(data.get_i64()), data.get_i32()))
}

/// A leader's answer to a REVALIDATE: the session, and whether it is alive (and now
/// owned by the learner that asked).
pub fn revalidated(session_id: SessionId, valid: bool) -> QuorumPacket {
    let mut data = BytesMut::with_capacity(9);
    data.put_i64(session_id.raw());
    data.put_u8(u8::from(valid));
    QuorumPacket::with_data(PacketType::Revalidate, -1, data.freeze())
}

/// Reads a leader's [`revalidated`].
///
/// # Errors
/// If the data is not a session id and a boolean.
pub fn read_revalidated(packet: &QuorumPacket) -> Result<(SessionId, bool), PacketError> {
    let mut data = packet.data.as_ref().map_or(&[][..], |data| &data[..]);
    if data.len() < 9 {
        return Err(cut_short("a revalidation's answer", 9 - data.len()));
    }
    Ok((SessionId::new(data.get_i64()), data.get_u8() != 0))
}

#[cfg(test)]
#[path = "sessions_test.rs"]
mod tests;
