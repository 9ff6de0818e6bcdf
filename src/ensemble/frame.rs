//! What travels on a link between two members: the replication core's messages, plus
//! what the shells tell each other around them (forwarded client writes, session
//! touches, snapshot chunks).
//!
//! One frame per length-prefixed packet; the first byte says which kind. Shell frames
//! share the core messages' connection so they stay in order with them: the chunks of a
//! snapshot arrive before the `Snap` message that installs them, and a learner's
//! forwarded writes reach the leader in the order its clients sent them.

use bytes::{BufMut, Bytes, BytesMut};
use jute::records::Id;
use jute::writer::{write_buffer, write_i32, write_i64, write_len};
use jute::{DecodeError, Reader, Record};

use crate::txn::{SessionId, Zxid};
use crate::zab::{wire, Message};

/// Smallest encoding of an identity: two empty strings' lengths.
const ID_LEN_MIN: usize = 8;

/// One frame between members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFrame {
    /// A message of the replication core.
    Zab(Message),
    /// Learner → leader: a client's write, exactly as the client framed it (header and
    /// request), with the identities its connection had when it was read.
    Request {
        /// The client's session.
        session_id: SessionId,
        /// The connection's identities, for ACL checks at the leader.
        auth: Vec<Id>,
        /// The request frame, without its length prefix.
        frame: Bytes,
    },
    /// Learner → leader: a client asked for a new session; the learner chose its id.
    CreateSession {
        /// The new session's id.
        session_id: SessionId,
        /// The negotiated timeout.
        timeout_ms: i32,
    },
    /// Learner → leader: sessions whose clients the learner heard from since its last
    /// report; the leader, which expires sessions, pushes their deadlines back.
    Touch(Vec<SessionId>),
    /// Leader → learner: the next chunk of the snapshot the coming `Snap` installs.
    SnapshotChunk {
        /// The snapshot's label: the zxid the leader had applied when it began.
        zxid: Zxid,
        /// The chunk's place, from 0; chunks come in order.
        index: u32,
        /// The chunk, in the snapshot format.
        chunk: Bytes,
    },
    /// Learner → leader: a client resumed this session here; requests for it from
    /// other members are stale from now on.
    Attach {
        /// The session.
        session_id: SessionId,
    },
}

/// Appends the encoding of `frame` to `out`.
pub fn encode(frame: &PeerFrame, out: &mut BytesMut) {
    match frame {
        PeerFrame::Zab(message) => {
            out.put_u8(0);
            wire::encode(message, out);
        }
        PeerFrame::Request { session_id, auth, frame } => {
            out.put_u8(1);
            write_i64(out, session_id.raw());
            write_len(out, auth.len());
            for id in auth {
                id.write(out);
            }
            write_buffer(out, Some(frame));
        }
        PeerFrame::CreateSession { session_id, timeout_ms } => {
            out.put_u8(2);
            write_i64(out, session_id.raw());
            write_i32(out, *timeout_ms);
        }
        PeerFrame::Touch(sessions) => {
            out.put_u8(3);
            write_len(out, sessions.len());
            for session_id in sessions {
                write_i64(out, session_id.raw());
            }
        }
        PeerFrame::SnapshotChunk { zxid, index, chunk } => {
            out.put_u8(4);
            write_i64(out, zxid.raw());
            write_i32(out, i32::try_from(*index).unwrap_or(i32::MAX));
            write_buffer(out, Some(chunk));
        }
        PeerFrame::Attach { session_id } => {
            out.put_u8(5);
            write_i64(out, session_id.raw());
        }
    }
}

/// Decodes one whole frame.
///
/// # Errors
/// [`DecodeError`] for a truncated, malformed or overlong frame.
pub fn decode(frame: &Bytes) -> Result<PeerFrame, DecodeError> {
    let mut r = Reader::new(frame);
    let decoded = match r.read_u8("frame kind")? {
        0 => return wire::decode(&r.rest()).map(PeerFrame::Zab),
        1 => {
            let session_id = SessionId::new(r.read_i64("session id")?);
            let count = r.read_len("identities", ID_LEN_MIN)?.unwrap_or(0);
            let auth = (0..count).map(|_| Id::read(&mut r)).collect::<Result<_, _>>()?;
            let frame = r.read_buffer("request frame")?.unwrap_or_default();
            PeerFrame::Request { session_id, auth, frame }
        }
        2 => PeerFrame::CreateSession {
            session_id: SessionId::new(r.read_i64("session id")?),
            timeout_ms: r.read_i32("session timeout")?,
        },
        3 => {
            let count = r.read_len("sessions", 8)?.unwrap_or(0);
            PeerFrame::Touch(
                (0..count)
                    .map(|_| r.read_i64("session id").map(SessionId::new))
                    .collect::<Result<_, _>>()?,
            )
        }
        4 => {
            let zxid = r.read_i64("snapshot zxid")?;
            let index = u32::try_from(r.read_i32("snapshot chunk index")?).map_err(|_| {
                DecodeError::Invalid {
                    what: "snapshot chunk index",
                    offset: r.position(),
                    reason: "negative",
                }
            })?;
            let chunk = r.read_buffer("snapshot chunk")?.unwrap_or_default();
            PeerFrame::SnapshotChunk { zxid: Zxid::new(zxid), index, chunk }
        }
        5 => PeerFrame::Attach { session_id: SessionId::new(r.read_i64("session id")?) },
        _ => {
            return Err(DecodeError::Invalid {
                what: "frame kind",
                offset: 0,
                reason: "unknown frame kind",
            })
        }
    };
    if r.remaining() != 0 {
        return Err(DecodeError::Invalid {
            what: "peer frame",
            offset: r.position(),
            reason: "trailing bytes",
        });
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn session_id() -> impl Strategy<Value = SessionId> {
        any::<i64>().prop_map(SessionId::new)
    }

    fn frame() -> impl Strategy<Value = PeerFrame> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from);
        let id = ("[a-z]{0,6}", "[a-z0-9:]{0,8}").prop_map(|(scheme, id)| Id { scheme, id });
        prop_oneof![
            any::<i64>().prop_map(|zxid| PeerFrame::Zab(Message::Ack { zxid: Zxid::new(zxid) })),
            (session_id(), proptest::collection::vec(id, 0..3), bytes.clone()).prop_map(
                |(session_id, auth, frame)| PeerFrame::Request { session_id, auth, frame }
            ),
            (session_id(), any::<i32>()).prop_map(|(session_id, timeout_ms)| {
                PeerFrame::CreateSession { session_id, timeout_ms }
            }),
            proptest::collection::vec(session_id(), 0..4).prop_map(PeerFrame::Touch),
            (any::<i64>(), 0..u32::MAX / 2, bytes).prop_map(|(zxid, index, chunk)| {
                PeerFrame::SnapshotChunk { zxid: Zxid::new(zxid), index, chunk }
            }),
            session_id().prop_map(|session_id| PeerFrame::Attach { session_id }),
        ]
    }

    proptest! {
        #[test]
        fn every_frame_round_trips(frame in frame()) {
            let mut out = BytesMut::new();
            encode(&frame, &mut out);
            prop_assert_eq!(decode(&out.freeze()), Ok(frame));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&Bytes::from(bytes));
        }

        #[test]
        fn truncated_or_extended_frames_are_refused(frame in frame(), extra in 1usize..4) {
            let mut out = BytesMut::new();
            encode(&frame, &mut out);
            let whole = out.freeze();
            prop_assert!(decode(&whole.slice(..whole.len() - 1)).is_err());
            let mut longer = BytesMut::from(&whole[..]);
            longer.extend(std::iter::repeat_n(0u8, extra));
            prop_assert!(decode(&longer.freeze()).is_err());
        }
    }
}
