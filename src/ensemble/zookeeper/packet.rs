//! The quorum port: what a learner and its leader send each other, as ZooKeeper's
//! `QuorumPacket` record (`zookeeper.jute`), written back to back with no length prefix
//! (`BinaryOutputArchive.writeRecord` on the socket's stream).
//!
//! [`PacketCodec`] cuts the stream into packets. It finds a packet's end from its length
//! fields before it decodes anything, checks each against a limit first, and so never
//! allocates for a length a peer made up: a packet past the limits is an error that
//! drops the connection, as ZooKeeper drops a learner whose packet is too large.

use bytes::{Buf, Bytes, BytesMut};
use jute::records::Id;
use jute::writer::{write_buffer, write_i32, write_i64, write_len};
use jute::{DecodeError, Reader, Record};
use tokio_util::codec::{Decoder, Encoder};

/// The protocol version a ZooKeeper 3.4–3.9 learner and leader announce (`0x10000`, in
/// `LearnerInfo` and `LEADERINFO`).
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// Most identities a packet may carry: a forwarded request carries those of its client's
/// connection, a handful at most.
const AUTH_IDS_MAX: usize = 1024;

/// Bytes of a packet's fixed fields before its data: type, zxid, data length.
const HEAD_LEN: usize = 4 + 8 + 4;

/// What a packet is, by ZooKeeper's number for it (`Leader.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum PacketType {
    /// Learner → leader: a client's write (or `sync`, or a new session) to prepare.
    Request = 1,
    /// Leader → follower: a txn to log and acknowledge.
    Proposal = 2,
    /// Follower → leader: the txns up to `zxid` are logged (or the new leader's
    /// history is, in answer to `NEWLEADER`).
    Ack = 3,
    /// Leader → follower: the txns up to `zxid` are committed.
    Commit = 4,
    /// Both ways, every tick: the leader is alive; the learner answers with its
    /// sessions' activity.
    Ping = 5,
    /// Learner → leader and back: is this session still alive (a client reconnected).
    Revalidate = 6,
    /// Leader → learner: the `sync` a client of the learner asked for is done.
    Sync = 7,
    /// Leader → observer: a committed txn.
    Inform = 8,
    /// Leader → follower: commit, and activate the configuration the txn carries.
    CommitAndActivate = 9,
    /// Leader → learner: the history sent so far is the new leader's; log it.
    NewLeader = 10,
    /// Follower → leader, first on a connection: who it is and its acceptedEpoch.
    FollowerInfo = 11,
    /// Leader → learner: synchronisation is over; serve clients.
    UpToDate = 12,
    /// Leader → learner: proposals and commits from the learner's last zxid follow.
    Diff = 13,
    /// Leader → learner: drop the txns after `zxid`.
    Trunc = 14,
    /// Leader → learner: a snapshot of the whole state follows on the stream.
    Snap = 15,
    /// Observer → leader, first on a connection: as `FollowerInfo`, without a vote.
    ObserverInfo = 16,
    /// Leader → learner: the epoch it will establish.
    LeaderInfo = 17,
    /// Learner → leader: it accepted the epoch; its currentEpoch and last zxid.
    AckEpoch = 18,
    /// Leader → observer: a committed txn that activates a configuration.
    InformAndActivate = 19,
}

impl PacketType {
    /// Every type, for [`PacketType::from_number`].
    const ALL: [PacketType; 19] = [
        PacketType::Request,
        PacketType::Proposal,
        PacketType::Ack,
        PacketType::Commit,
        PacketType::Ping,
        PacketType::Revalidate,
        PacketType::Sync,
        PacketType::Inform,
        PacketType::CommitAndActivate,
        PacketType::NewLeader,
        PacketType::FollowerInfo,
        PacketType::UpToDate,
        PacketType::Diff,
        PacketType::Trunc,
        PacketType::Snap,
        PacketType::ObserverInfo,
        PacketType::LeaderInfo,
        PacketType::AckEpoch,
        PacketType::InformAndActivate,
    ];

    /// ZooKeeper's number for the type.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The type ZooKeeper numbers `number`, if any.
    pub fn from_number(number: i32) -> Option<PacketType> {
        PacketType::ALL.into_iter().find(|kind| kind.number() == number)
    }
}

/// One `QuorumPacket`. `data` and `auth` keep the difference between null and empty
/// that ZooKeeper writes (a leader's `PING` has null data, a learner's has data), so a
/// packet encodes to the bytes ZooKeeper would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    /// What it is.
    pub kind: PacketType,
    /// The zxid it is about (or an epoch in the high half, for the handshake).
    pub zxid: i64,
    /// Its payload, whose meaning depends on `kind`.
    pub data: Option<Bytes>,
    /// The identities of the client whose request a `Request` forwards.
    pub auth: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet with no data and no identities.
    pub fn bare(kind: PacketType, zxid: i64) -> QuorumPacket {
        QuorumPacket { kind, zxid, data: None, auth: None }
    }

    /// A packet carrying `data`.
    pub fn with_data(kind: PacketType, zxid: i64, data: Bytes) -> QuorumPacket {
        QuorumPacket { kind, zxid, data: Some(data), auth: None }
    }

    /// Appends the packet's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        write_i32(out, self.kind.number());
        write_i64(out, self.zxid);
        write_buffer(out, self.data.as_deref());
        match &self.auth {
            None => write_i32(out, -1),
            Some(ids) => {
                write_len(out, ids.len());
                for id in ids {
                    id.write(out);
                }
            }
        }
    }
}

/// Why the quorum stream cannot be read on: the connection is dropped.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// A length field past its limit, or negative where only -1 may be.
    #[error("a quorum packet's {what} is {len}, past the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The length it gave.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// A type ZooKeeper does not have.
    #[error("unknown quorum packet type {0}")]
    UnknownType(i32),
    /// Bytes that are not a packet.
    #[error("a malformed quorum packet: {0}")]
    Malformed(#[from] DecodeError),
    /// The connection failed.
    #[error("the quorum connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Cuts the quorum port's stream into [`QuorumPacket`]s and writes them.
#[derive(Debug, Clone)]
pub struct PacketCodec {
    data_len_max: usize,
}

impl PacketCodec {
    /// A codec refusing packets whose data is longer than `data_len_max` (ZooKeeper's
    /// bound is `jute.maxbuffer` plus `zookeeper.jute.maxbuffer.extrasize`).
    pub fn new(data_len_max: usize) -> PacketCodec {
        PacketCodec { data_len_max }
    }

    /// The length of the packet at the start of `buf`, once all of it is there.
    fn packet_len(&self, buf: &[u8]) -> Result<Option<usize>, PacketError> {
        let Some(data_len) = length_at(buf, 12) else {
            return Ok(None);
        };
        let data_len = checked_len("data length", data_len, self.data_len_max)?;
        let mut end = HEAD_LEN + data_len;
        let Some(ids) = length_at(buf, end) else {
            return Ok(None);
        };
        let ids = checked_len("identity count", ids, AUTH_IDS_MAX)?;
        end += 4;
        for _ in 0..ids * 2 {
            let Some(len) = length_at(buf, end) else {
                return Ok(None);
            };
            end += 4 + checked_len("identity length", len, self.data_len_max)?;
        }
        Ok((buf.len() >= end).then_some(end))
    }
}

/// The big-endian `int` at `at`, if `buf` has it.
fn length_at(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at + 4)?;
    Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A length field as a byte count (-1, null, counts as none).
fn checked_len(what: &'static str, len: i32, max: usize) -> Result<usize, PacketError> {
    match usize::try_from(len) {
        Ok(count) if count <= max => Ok(count),
        _ if len == -1 => Ok(0),
        _ => Err(PacketError::TooLong { what, len: i64::from(len), max }),
    }
}

/// Decodes one whole packet.
///
/// # Errors
/// If `bytes` is not exactly one packet.
pub fn decode(bytes: &Bytes) -> Result<QuorumPacket, PacketError> {
    let mut reader = Reader::new(bytes);
    let number = reader.read_i32("QuorumPacket.type")?;
    let kind = PacketType::from_number(number).ok_or(PacketError::UnknownType(number))?;
    let zxid = reader.read_i64("QuorumPacket.zxid")?;
    let data = reader.read_buffer("QuorumPacket.data")?;
    let auth = match reader.read_len("QuorumPacket.authinfo", Id::MIN_LEN)? {
        None => None,
        Some(count) => {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(Id::read_as(&mut reader, "QuorumPacket.authinfo")?);
            }
            Some(ids)
        }
    };
    if reader.remaining() != 0 {
        return Err(PacketError::Malformed(DecodeError::Invalid {
            what: "QuorumPacket",
            offset: reader.position(),
            reason: "trailing bytes",
        }));
    }
    Ok(QuorumPacket { kind, zxid, data, auth })
}

impl Decoder for PacketCodec {
    type Item = QuorumPacket;
    type Error = PacketError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<QuorumPacket>, PacketError> {
        let Some(len) = self.packet_len(buf)? else {
            return Ok(None);
        };
        let bytes = buf.split_to(len).freeze();
        decode(&bytes).map(Some)
    }
}

impl Encoder<&QuorumPacket> for PacketCodec {
    type Error = PacketError;

    fn encode(&mut self, packet: &QuorumPacket, out: &mut BytesMut) -> Result<(), PacketError> {
        packet.encode(out);
        Ok(())
    }
}

/// What a learner says about itself in `FOLLOWERINFO`/`OBSERVERINFO` (`LearnerInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    /// Its `myid`.
    pub server_id: u64,
    /// Its protocol version ([`PROTOCOL_VERSION`] since ZooKeeper 3.4).
    pub protocol_version: i32,
    /// The version of the membership it knows (0 for a static zoo.cfg).
    pub config_version: u64,
}

impl LearnerInfo {
    /// The record's bytes, as every ZooKeeper since 3.5 writes them.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(20);
        write_i64(&mut out, self.server_id as i64);
        write_i32(&mut out, self.protocol_version);
        write_i64(&mut out, self.config_version as i64);
        out.freeze()
    }

    /// Reads it as ZooKeeper's `LearnerHandler` does: older learners send only their id
    /// (3.3) or their id and protocol version (3.4); what is missing takes the old value.
    ///
    /// # Errors
    /// If `data` is too short to hold even the id.
    pub fn decode(data: &[u8]) -> Result<LearnerInfo, PacketError> {
        let mut data = data;
        if data.len() < 8 {
            return Err(PacketError::Malformed(DecodeError::Incomplete {
                what: "LearnerInfo.serverid",
                offset: 0,
                needed: 8 - data.len(),
            }));
        }
        let server_id = data.get_i64() as u64;
        let protocol_version = if data.len() >= 4 { data.get_i32() } else { 0 };
        let config_version = if data.len() >= 8 { data.get_i64() as u64 } else { 0 };
        Ok(LearnerInfo { server_id, protocol_version, config_version })
    }
}

/// The `int` a `LEADERINFO` (protocol version) or `ACKEPOCH` (currentEpoch, or -1 when
/// the learner had already accepted this epoch) carries.
pub fn int_payload(value: i32) -> Bytes {
    Bytes::copy_from_slice(&value.to_be_bytes())
}

/// Reads [`int_payload`]'s value.
///
/// # Errors
/// If `data` is missing or shorter than an `int`.
pub fn read_int_payload(data: Option<&Bytes>, what: &'static str) -> Result<i32, PacketError> {
    let empty = Bytes::new();
    Ok(Reader::new(data.unwrap_or(&empty)).read_i32(what)?)
}
