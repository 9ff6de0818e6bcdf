//! The election port, as ZooKeeper's `QuorumCnxManager` and `FastLeaderElection` speak
//! it: a connection opens with the dialling member's [`InitialMessage`], then carries
//! length-prefixed notifications both ways.
//!
//! A notification is the sender's state, its vote (leader, that leader's last zxid and
//! epoch) and its election round, then the message version and, from version 2 (ZooKeeper
//! 3.5), the sender's membership as text. Members of older versions send 28 bytes (3.3)
//! or 40 (3.4, whose version 1 ZooKeeper reads as no version); ZooKeeper still reads
//! both, and so does [`decode`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::txn::Zxid;
use crate::zab::{Notification, PeerState, ServerId, Vote};

/// The first `long` of an initial message from a member that sends one address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// The first `long` of an initial message from a member with several addresses
/// (`multiAddress.enabled`), which lists them separated by `|`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Longest address list an initial message may carry (`QuorumCnxManager.maxBuffer`).
pub const ADDRESSES_LEN_MAX: usize = 2048;
/// Longest notification frame (`QuorumCnxManager.PACKETMAXSIZE`).
pub const FRAME_LEN_MAX: usize = 512 * 1024;
/// The notification version this build sends: the one with the membership.
pub const NOTIFICATION_VERSION: i32 = 2;
/// What a ZooKeeper observer, which has no vote, sends as its vote's leader, zxid and
/// epoch (`Long.MIN_VALUE`, as `QuorumPeer.getInitId` and its siblings return for a
/// non-voting member).
pub const NO_VOTE: u64 = 1 << 63;

/// Bytes of a 3.3 notification: state, leader, zxid, round.
const LEN_WITHOUT_EPOCH: usize = 28;
/// Bytes of a 3.4 notification: the 3.3 fields, the leader's epoch, and 4 bytes that
/// ZooKeeper does not read (the version, from 3.4.6).
const LEN_WITHOUT_VERSION: usize = 40;

/// Why an election connection or frame is refused: the connection is dropped.
#[derive(Debug, thiserror::Error)]
pub enum ElectionWireError {
    /// The initial message names a protocol version ZooKeeper does not have.
    #[error("unknown election protocol version {0}")]
    UnknownVersion(i64),
    /// A length past its limit, or not positive.
    #[error("an election {what} of {len} bytes (the limit is {max})")]
    BadLength {
        /// The field.
        what: &'static str,
        /// The length it gave.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// The initial message's address list does not parse.
    #[error("a bad election address {0:?}")]
    BadAddress(String),
    /// A notification too short for its version, or with a state ZooKeeper lacks.
    #[error("a malformed notification: {0}")]
    Malformed(&'static str),
    /// The connection failed.
    #[error("the election connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What the dialling member sends first: its id and its election address(es).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// The dialling member's `myid`.
    pub server_id: ServerId,
    /// Its election addresses as `host:port` (empty from members older than 3.5, which
    /// send only their id).
    pub addresses: Vec<String>,
}

impl InitialMessage {
    /// Appends the message as a member with one address writes it (version 1, which
    /// every ZooKeeper since 3.5 reads; version 2 only when there are several).
    pub fn encode(&self, out: &mut BytesMut) {
        let version =
            if self.addresses.len() > 1 { PROTOCOL_VERSION_V2 } else { PROTOCOL_VERSION_V1 };
        out.put_i64(version);
        out.put_u64(self.server_id);
        let addresses = self.addresses.join("|");
        out.put_i32(i32::try_from(addresses.len()).unwrap_or(i32::MAX));
        out.put_slice(addresses.as_bytes());
    }

    /// Reads the message at the start of `buf`: `Ok(None)` until all of it is there,
    /// then the message and its length. A first `long` that is not negative is a member
    /// older than 3.5 giving only its id.
    ///
    /// # Errors
    /// An unknown version, an address list longer than ZooKeeper accepts, or addresses
    /// that do not parse.
    pub fn parse(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>, ElectionWireError> {
        let mut cursor = buf;
        if cursor.len() < 8 {
            return Ok(None);
        }
        let first = cursor.get_i64();
        if first >= 0 {
            return Ok(Some((
                InitialMessage { server_id: first as u64, addresses: Vec::new() },
                8,
            )));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(ElectionWireError::UnknownVersion(first));
        }
        if cursor.len() < 12 {
            return Ok(None);
        }
        let server_id = cursor.get_u64();
        let len = cursor.get_i32();
        let len = usize::try_from(len)
            .ok()
            .filter(|len| (1..=ADDRESSES_LEN_MAX).contains(len))
            .ok_or(ElectionWireError::BadLength {
                what: "address list",
                len: i64::from(len),
                max: ADDRESSES_LEN_MAX,
            })?;
        let Some(text) = cursor.get(..len) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(text);
        let addresses = text.split('|').map(parse_address).collect::<Result<Vec<_>, _>>()?;
        Ok(Some((InitialMessage { server_id, addresses }, 20 + len)))
    }
}

/// Checks one `host:port` (`[v6]:port` for IPv6) of an initial message.
fn parse_address(address: &str) -> Result<String, ElectionWireError> {
    let bad = || ElectionWireError::BadAddress(address.to_owned());
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(address.to_owned())
}

/// A notification as it travels: ZooKeeper's fields, before they mean a [`Notification`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireNotification {
    /// The sender's state (0 looking, 1 following, 2 leading, 3 observing).
    pub state: PeerState,
    /// Whom it votes for or follows.
    pub leader: ServerId,
    /// That leader's last zxid.
    pub zxid: Zxid,
    /// The sender's election round (ZooKeeper's `electionEpoch`, its logical clock).
    pub round: u64,
    /// That leader's epoch (ZooKeeper's `peerEpoch`).
    pub peer_epoch: u64,
    /// The message version: 0 for the 28- and 40-byte forms, 1, or 2 with `config`.
    pub version: i32,
    /// The sender's membership as `QuorumVerifier.toString()` writes it (version 2).
    pub config: Option<String>,
}

impl WireNotification {
    /// What `notification` says, with the membership text `config`, as this build sends
    /// it.
    pub fn new(notification: &Notification, config: &str) -> WireNotification {
        WireNotification {
            state: notification.state,
            leader: notification.vote.leader,
            zxid: notification.vote.zxid,
            round: notification.round,
            peer_epoch: u64::from(notification.vote.epoch),
            version: NOTIFICATION_VERSION,
            config: Some(config.to_owned()),
        }
    }

    /// What it means to the election core. An epoch past what a zxid can hold is
    /// malformed, except [`NO_VOTE`]: an observer has no vote, and sends `Long.MIN_VALUE`
    /// for its leader, zxid and epoch; the core, which takes no vote from an observer,
    /// gets epoch 0 with them.
    ///
    /// # Errors
    /// If the epoch does not fit in 32 bits.
    pub fn notification(&self) -> Result<Notification, ElectionWireError> {
        let epoch = if self.peer_epoch == NO_VOTE {
            0
        } else {
            u32::try_from(self.peer_epoch)
                .map_err(|_| ElectionWireError::Malformed("an epoch past 32 bits"))?
        };
        Ok(Notification {
            round: self.round,
            vote: Vote { epoch, zxid: self.zxid, leader: self.leader },
            state: self.state,
        })
    }

    /// Appends the notification's payload (without the frame length) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i32(i32::from(self.state.number()));
        out.put_u64(self.leader);
        out.put_i64(self.zxid.raw());
        out.put_u64(self.round);
        out.put_u64(self.peer_epoch);
        out.put_i32(self.version);
        if self.version > 1 {
            let config = self.config.as_deref().unwrap_or_default();
            out.put_i32(i32::try_from(config.len()).unwrap_or(i32::MAX));
            out.put_slice(config.as_bytes());
        }
    }
}

/// Reads a notification payload as `FastLeaderElection`'s receiver does: 28 bytes carry no
/// epoch (it is the zxid's), 40 no version, and from version 2 the membership follows.
///
/// # Errors
/// A payload shorter than its version needs, an unknown state, or a membership length
/// past the payload.
pub fn decode(payload: &[u8]) -> Result<WireNotification, ElectionWireError> {
    let capacity = payload.len();
    if capacity < LEN_WITHOUT_EPOCH {
        return Err(ElectionWireError::Malformed("shorter than 28 bytes"));
    }
    let mut buf = payload;
    let state = PeerState::from_number(buf.get_i32())
        .ok_or(ElectionWireError::Malformed("an unknown state"))?;
    let leader = buf.get_u64();
    let zxid = Zxid::new(buf.get_i64());
    let round = buf.get_u64();
    let short = || ElectionWireError::Malformed("cut short");
    let peer_epoch = if capacity == LEN_WITHOUT_EPOCH {
        u64::from(zxid.epoch())
    } else {
        buf.try_get_u64().map_err(|_| short())?
    };
    let version = if capacity == LEN_WITHOUT_EPOCH || capacity == LEN_WITHOUT_VERSION {
        0
    } else {
        buf.try_get_i32().map_err(|_| short())?
    };
    let config = if version > 1 {
        let len = buf.try_get_i32().map_err(|_| short())?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= buf.len())
            .ok_or(ElectionWireError::Malformed("a membership longer than the message"))?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    } else {
        None
    };
    Ok(WireNotification { state, leader, zxid, round, peer_epoch, version, config })
}

/// Cuts the election stream (after the initial message) into notification payloads and
/// frames outgoing ones: an `int` length, then the payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElectionCodec;

impl Decoder for ElectionCodec {
    type Item = Bytes;
    type Error = ElectionWireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ElectionWireError> {
        let Some(head) = buf.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let len = usize::try_from(len).ok().filter(|len| (1..=FRAME_LEN_MAX).contains(len)).ok_or(
            ElectionWireError::BadLength {
                what: "notification",
                len: i64::from(len),
                max: FRAME_LEN_MAX,
            },
        )?;
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

impl Encoder<&WireNotification> for ElectionCodec {
    type Error = ElectionWireError;

    fn encode(
        &mut self,
        notification: &WireNotification,
        out: &mut BytesMut,
    ) -> Result<(), ElectionWireError> {
        let start = out.len();
        out.put_i32(0);
        notification.encode(out);
        let len = i32::try_from(out.len() - start - 4).unwrap_or(i32::MAX);
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}
