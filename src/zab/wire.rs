//! The byte form of [`Message`] between zkrs members: a tag, then the fields as jute
//! primitives (big-endian ints and longs, length-prefixed buffers and vectors).
//!
//! Only zkrs members speak it, until their links carry ZooKeeper's own quorum protocol
//! (`ensemble::zookeeper` holds its formats); the peer transport frames each message with
//! a length, as client frames are. Decoding checks
//! every length against the frame before allocating and rejects trailing bytes, so a
//! damaged or hostile frame is an error, never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use jute::writer::{write_bool, write_buffer, write_i32, write_i64, write_len};
use jute::{DecodeError, Reader};

use crate::txn::Zxid;
use crate::zab::message::{Message, Notification, PeerState, Vote};
use crate::zab::Entry;

/// Smallest encoding of an entry: its zxid and an empty buffer's length.
const ENTRY_LEN_MIN: usize = 12;

/// Appends the encoding of `message` to `out`.
pub fn encode(message: &Message, out: &mut BytesMut) {
    match message {
        Message::Notification(n) => {
            out.put_u8(0);
            write_i64(out, n.round as i64);
            write_i32(out, n.vote.epoch as i32);
            write_zxid(out, n.vote.zxid);
            write_i64(out, n.vote.leader as i64);
            out.put_u8(n.state.number());
        }
        Message::FollowerInfo { accepted_epoch, observer } => {
            out.put_u8(1);
            write_i32(out, *accepted_epoch as i32);
            write_bool(out, *observer);
        }
        Message::LeaderInfo { epoch } => {
            out.put_u8(2);
            write_i32(out, *epoch as i32);
        }
        Message::AckEpoch { current_epoch, last_zxid } => {
            out.put_u8(3);
            write_i32(out, current_epoch.map_or(-1, |epoch| epoch as i32));
            write_zxid(out, *last_zxid);
        }
        Message::Diff { truncate_to, entries, committed } => {
            out.put_u8(4);
            write_optional(out, *truncate_to);
            write_entries(out, entries);
            write_zxid(out, *committed);
        }
        Message::Snap { zxid, entries, committed } => {
            out.put_u8(5);
            write_zxid(out, *zxid);
            write_entries(out, entries);
            write_zxid(out, *committed);
        }
        Message::NewLeader { epoch } => {
            out.put_u8(6);
            write_i32(out, *epoch as i32);
        }
        Message::AckNewLeader { epoch } => {
            out.put_u8(7);
            write_i32(out, *epoch as i32);
        }
        Message::UpToDate { committed } => tagged_long(out, 8, committed.raw()),
        Message::Proposal(entry) => {
            out.put_u8(9);
            write_entry(out, entry);
        }
        Message::Ack { zxid } => tagged_long(out, 10, zxid.raw()),
        Message::Commit { zxid } => tagged_long(out, 11, zxid.raw()),
        Message::Ping { last_proposed } => tagged_long(out, 12, last_proposed.raw()),
        Message::Pong { echoed } => tagged_long(out, 13, echoed.raw()),
        Message::SyncRequest { id } => tagged_long(out, 14, *id as i64),
        Message::SyncReply => out.put_u8(15),
    }
}

fn tagged_long(out: &mut BytesMut, tag: u8, value: i64) {
    out.put_u8(tag);
    write_i64(out, value);
}

fn write_zxid(out: &mut BytesMut, zxid: Zxid) {
    write_i64(out, zxid.raw());
}

fn read_zxid(r: &mut Reader<'_>, what: &'static str) -> Result<Zxid, DecodeError> {
    r.read_i64(what).map(Zxid::new)
}

fn write_optional(out: &mut BytesMut, zxid: Option<Zxid>) {
    write_bool(out, zxid.is_some());
    write_zxid(out, zxid.unwrap_or(Zxid::ZERO));
}

fn write_entry(out: &mut BytesMut, entry: &Entry) {
    write_zxid(out, entry.zxid);
    write_buffer(out, Some(&entry.payload));
}

fn write_entries(out: &mut BytesMut, entries: &[Entry]) {
    write_len(out, entries.len());
    for entry in entries {
        write_entry(out, entry);
    }
}

/// Decodes one whole message.
///
/// # Errors
/// [`DecodeError`] for a truncated, malformed or overlong frame.
pub fn decode(frame: &Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader::new(frame);
    let message = match r.read_u8("message tag")? {
        0 => Message::Notification(Notification {
            round: r.read_i64("round")? as u64,
            vote: Vote {
                epoch: r.read_i32("vote epoch")? as u32,
                zxid: read_zxid(&mut r, "vote zxid")?,
                leader: r.read_i64("vote leader")? as u64,
            },
            state: PeerState::from_number(i32::from(r.read_u8("peer state")?))
                .ok_or_else(|| invalid(&r, "peer state", "unknown state"))?,
        }),
        1 => Message::FollowerInfo {
            accepted_epoch: r.read_i32("accepted epoch")? as u32,
            observer: r.read_bool("observer")?,
        },
        2 => Message::LeaderInfo { epoch: r.read_i32("epoch")? as u32 },
        3 => Message::AckEpoch {
            current_epoch: match r.read_i32("current epoch")? {
                -1 => None,
                epoch => Some(epoch as u32),
            },
            last_zxid: read_zxid(&mut r, "last zxid")?,
        },
        4 => Message::Diff {
            truncate_to: read_optional(&mut r)?,
            entries: read_entries(&mut r)?,
            committed: read_zxid(&mut r, "committed")?,
        },
        5 => Message::Snap {
            zxid: read_zxid(&mut r, "snapshot zxid")?,
            entries: read_entries(&mut r)?,
            committed: read_zxid(&mut r, "committed")?,
        },
        6 => Message::NewLeader { epoch: r.read_i32("epoch")? as u32 },
        7 => Message::AckNewLeader { epoch: r.read_i32("epoch")? as u32 },
        8 => Message::UpToDate { committed: read_zxid(&mut r, "committed")? },
        9 => Message::Proposal(read_entry(&mut r)?),
        10 => Message::Ack { zxid: read_zxid(&mut r, "zxid")? },
        11 => Message::Commit { zxid: read_zxid(&mut r, "zxid")? },
        12 => Message::Ping { last_proposed: read_zxid(&mut r, "last proposed")? },
        13 => Message::Pong { echoed: read_zxid(&mut r, "echoed")? },
        14 => Message::SyncRequest { id: r.read_i64("sync id")? as u64 },
        15 => Message::SyncReply,
        _ => return Err(invalid(&r, "message tag", "unknown message")),
    };
    if r.remaining() != 0 {
        return Err(invalid(&r, "message", "trailing bytes"));
    }
    Ok(message)
}

fn invalid(r: &Reader<'_>, what: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { what, offset: r.position(), reason }
}

fn read_optional(r: &mut Reader<'_>) -> Result<Option<Zxid>, DecodeError> {
    let present = r.read_bool("truncation present")?;
    let zxid = read_zxid(r, "truncation zxid")?;
    Ok(present.then_some(zxid))
}

fn read_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let zxid = read_zxid(r, "entry zxid")?;
    let payload = r.read_buffer("entry payload")?.unwrap_or_default();
    Ok(Entry { zxid, payload })
}

fn read_entries(r: &mut Reader<'_>) -> Result<Vec<Entry>, DecodeError> {
    let len = r.read_len("entries", ENTRY_LEN_MIN)?.unwrap_or(0);
    (0..len).map(|_| read_entry(r)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn zxid() -> impl Strategy<Value = Zxid> + Clone {
        any::<i64>().prop_map(Zxid::new)
    }

    fn entry() -> impl Strategy<Value = Entry> + Clone {
        (zxid(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(zxid, payload)| Entry { zxid, payload: Bytes::from(payload) })
    }

    fn message() -> impl Strategy<Value = Message> {
        let entries = proptest::collection::vec(entry(), 0..4);
        let state = prop_oneof![
            Just(PeerState::Looking),
            Just(PeerState::Following),
            Just(PeerState::Leading),
            Just(PeerState::Observing),
        ];
        prop_oneof![
            (any::<u64>(), any::<u32>(), zxid(), any::<u64>(), state).prop_map(
                |(round, epoch, zxid, leader, state)| Message::Notification(Notification {
                    round,
                    vote: Vote { epoch, zxid, leader },
                    state,
                })
            ),
            (any::<u32>(), any::<bool>()).prop_map(|(accepted_epoch, observer)| {
                Message::FollowerInfo { accepted_epoch, observer }
            }),
            any::<u32>().prop_map(|epoch| Message::LeaderInfo { epoch }),
            (proptest::option::of(0..=i32::MAX as u32), zxid()).prop_map(
                |(current_epoch, last_zxid)| Message::AckEpoch { current_epoch, last_zxid }
            ),
            (proptest::option::of(zxid()), entries.clone(), zxid()).prop_map(
                |(truncate_to, entries, committed)| Message::Diff {
                    truncate_to,
                    entries,
                    committed
                }
            ),
            (zxid(), entries, zxid()).prop_map(|(zxid, entries, committed)| Message::Snap {
                zxid,
                entries,
                committed
            }),
            any::<u32>().prop_map(|epoch| Message::NewLeader { epoch }),
            any::<u32>().prop_map(|epoch| Message::AckNewLeader { epoch }),
            zxid().prop_map(|committed| Message::UpToDate { committed }),
            entry().prop_map(Message::Proposal),
            zxid().prop_map(|zxid| Message::Ack { zxid }),
            zxid().prop_map(|zxid| Message::Commit { zxid }),
            zxid().prop_map(|last_proposed| Message::Ping { last_proposed }),
            zxid().prop_map(|echoed| Message::Pong { echoed }),
            any::<u64>().prop_map(|id| Message::SyncRequest { id }),
            Just(Message::SyncReply),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(message in message()) {
            let mut out = BytesMut::new();
            encode(&message, &mut out);
            prop_assert_eq!(decode(&out.freeze()), Ok(message));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&Bytes::from(bytes));
        }

        #[test]
        fn truncated_or_extended_frames_are_refused(message in message(), extra in 1usize..4) {
            let mut out = BytesMut::new();
            encode(&message, &mut out);
            let whole = out.freeze();
            prop_assert!(decode(&whole.slice(..whole.len() - 1)).is_err());
            let mut longer = BytesMut::from(&whole[..]);
            longer.extend(std::iter::repeat_n(0u8, extra));
            prop_assert!(decode(&longer.freeze()).is_err());
        }
    }
}
