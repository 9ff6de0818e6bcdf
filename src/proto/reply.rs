//! Reply frames: a 4-byte length, a `ReplyHeader`, and (on success) the response record.

use bytes::{BufMut, Bytes, BytesMut};
use jute::opcode::XID_NOTIFICATION;
use jute::records::{ConnectResponse, ReplyHeader, WatcherEvent};
use jute::{Code, Record};

use crate::tree::WatchEvent;
use crate::txn::{SessionId, Zxid};

/// `KeeperState.SyncConnected`, the state of every notification a server sends.
const STATE_SYNC_CONNECTED: i32 = 3;

/// Builds one length-prefixed frame around whatever `write_body` appends, in a buffer
/// allocated once for the `body_len` bytes it is expected to append.
fn frame_with(body_len: usize, write_body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + body_len);
    out.put_i32(0);
    write_body(&mut out);
    let len = i32::try_from(out.len() - 4).unwrap_or(i32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

/// A reply: header, then `body` if any. ZooKeeper sends no body with an error.
pub fn reply(xid: i32, zxid: Zxid, err: Code, body: Option<&dyn WriteRecord>) -> Bytes {
    let body_len = body.map_or(0, |body| body.record_len());
    frame_with(ReplyHeader::MIN_LEN + body_len, |out| {
        ReplyHeader { xid, zxid: zxid.raw(), err: err.as_i32() }.write(out);
        if let Some(body) = body {
            body.write_record(out);
        }
    })
}

/// A successful reply with a body.
pub fn ok(xid: i32, zxid: Zxid, body: &dyn WriteRecord) -> Bytes {
    reply(xid, zxid, Code::Ok, Some(body))
}

/// An error reply, or a successful one without a body.
pub fn status(xid: i32, zxid: Zxid, err: Code) -> Bytes {
    reply(xid, zxid, err, None)
}

/// The answer to a connect request: the session's timeout, id and password (a refused
/// resume gets 0, 0 and zeros), then the read-only flag if the client sent one, which a
/// client that did not would take for the start of the next frame.
pub fn connect_response(
    time_out: i32,
    session_id: SessionId,
    passwd: &[u8],
    read_only: Option<bool>,
) -> Bytes {
    let response = ConnectResponse {
        protocol_version: 0,
        time_out,
        session_id: session_id.raw(),
        passwd: Bytes::copy_from_slice(passwd),
    };
    frame_with(response.size_hint() + 1, |out| {
        response.write(out);
        if let Some(read_only) = read_only {
            read_only.write(out);
        }
    })
}

/// A watch notification: xid -1, zxid -1, as ZooKeeper 3.8 sends them.
pub fn notification(notification: &WatchEvent) -> Bytes {
    let event = WatcherEvent {
        event_type: notification.event as i32,
        state: STATE_SYNC_CONNECTED,
        path: notification.path.clone(),
    };
    frame_with(ReplyHeader::MIN_LEN + event.size_hint(), |out| {
        ReplyHeader { xid: XID_NOTIFICATION, zxid: -1, err: 0 }.write(out);
        event.write(out);
    })
}

/// Object-safe access to [`Record::write`], so replies can take any record.
pub trait WriteRecord {
    /// Appends the record's encoding.
    fn write_record(&self, out: &mut BytesMut);

    /// The bytes [`WriteRecord::write_record`] appends ([`Record::size_hint`]).
    fn record_len(&self) -> usize;
}

impl<T: Record> WriteRecord for T {
    fn write_record(&self, out: &mut BytesMut) {
        self.write(out);
    }

    fn record_len(&self) -> usize {
        self.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::EventType;
    use jute::records::SyncResponse;

    #[test]
    fn frames_are_length_prefixed() {
        let frame = ok(7, Zxid::new(0x10), &SyncResponse { path: "/a".into() });
        assert_eq!(&frame[..4], &(16 + 6i32).to_be_bytes());
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        assert_eq!(&frame[8..16], &0x10i64.to_be_bytes());
        assert_eq!(frame.len(), 26);
        assert_eq!(status(1, Zxid::new(2), Code::NoNode).len(), 20);
    }

    #[test]
    fn notifications_carry_minus_one() {
        let frame = notification(&WatchEvent {
            event: EventType::NodeDeleted,
            path: "/x".into(),
            acl: Default::default(),
        });
        assert_eq!(&frame[4..8], &(-1i32).to_be_bytes());
        assert_eq!(&frame[8..16], &(-1i64).to_be_bytes());
        assert_eq!(&frame[20..24], &2i32.to_be_bytes());
        assert_eq!(&frame[24..28], &3i32.to_be_bytes());
    }
}
