//! ZooKeeper's `QuorumAuthPacket`, which carries a SASL exchange between members at the
//! start of an election or quorum connection (`quorum.auth.enableSasl`): a magic number
//! no other first packet starts with, a status and a token, with no length in front.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER`, Java's `-0xa0dbcafecafe1234L`: the hex literal
/// is a negative long, so the constant is positive (0x5f24_3501_3501_edcc), however
/// ZooKeeper's comment calls it negative. No other first packet starts with it.
pub const MAGIC: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();

/// Most bytes of a token accepted: DIGEST-MD5's are a few hundred.
const TOKEN_LEN_MAX: usize = 64 * 1024;

/// `QuorumAuth.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The exchange goes on.
    InProgress,
    /// The server accepted the member.
    Success,
    /// The server refused it.
    Error,
}

impl Status {
    fn code(self) -> i32 {
        match self {
            Status::InProgress => 0,
            Status::Success => 1,
            Status::Error => -1,
        }
    }

    /// ZooKeeper takes any unknown status for an error.
    fn from_code(code: i32) -> Status {
        match code {
            0 => Status::InProgress,
            1 => Status::Success,
            _ => Status::Error,
        }
    }
}

/// One packet of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPacket {
    /// Where the exchange stands, as its sender sees it.
    pub status: Status,
    /// The SASL token (`None` is jute's null buffer).
    pub token: Option<Bytes>,
}

/// Why bytes are not an authentication packet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthPacketError {
    /// It does not start with [`MAGIC`].
    #[error("not a quorum authentication packet")]
    NotAuth,
    /// Its token length is negative (but for null) or too long.
    #[error("a quorum authentication token of {0} bytes")]
    BadLength(i32),
}

impl AuthPacket {
    /// Appends the packet as ZooKeeper writes it.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i64(MAGIC);
        out.put_i32(self.status.code());
        match &self.token {
            None => out.put_i32(-1),
            Some(token) => {
                out.put_i32(i32::try_from(token.len()).unwrap_or(i32::MAX));
                out.put_slice(token);
            }
        }
    }

    /// Takes a whole packet off the front of `buf`; `Ok(None)` when more bytes must
    /// come first.
    ///
    /// # Errors
    /// [`AuthPacketError`] when the bytes are not one.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<AuthPacket>, AuthPacketError> {
        if buf.len() >= 8 && (&buf[..8]).get_i64() != MAGIC {
            return Err(AuthPacketError::NotAuth);
        }
        if buf.len() < 16 {
            return Ok(None);
        }
        let status = Status::from_code((&buf[8..12]).get_i32());
        let len = (&buf[12..16]).get_i32();
        let token_len = match len {
            -1 => 0,
            len => usize::try_from(len)
                .ok()
                .filter(|len| *len <= TOKEN_LEN_MAX)
                .ok_or(AuthPacketError::BadLength(len))?,
        };
        if buf.len() < 16 + token_len {
            return Ok(None);
        }
        buf.advance(16);
        let token = (len != -1).then(|| buf.split_to(token_len).freeze());
        Ok(Some(AuthPacket { status, token }))
    }

    /// Whether `buf`, the first bytes a member sent, start an authentication packet
    /// (`QuorumAuth.nextPacketIsAuth`); `None` while fewer than 8 bytes are there.
    pub fn starts(buf: &[u8]) -> Option<bool> {
        (buf.len() >= 8).then(|| (&buf[..8]).get_i64() == MAGIC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_number_is_javas() {
        assert_eq!(MAGIC, 6_855_662_812_065_295_820);
    }

    #[test]
    fn packets_round_trip_and_wait_for_their_bytes() {
        let packet = AuthPacket { status: Status::InProgress, token: Some(Bytes::from("abc")) };
        let mut bytes = BytesMut::new();
        packet.encode(&mut bytes);
        assert_eq!(&bytes[..8], &MAGIC.to_be_bytes());
        assert_eq!(bytes.len(), 8 + 4 + 4 + 3);
        let mut partial = BytesMut::from(&bytes[..17]);
        assert_eq!(AuthPacket::decode(&mut partial), Ok(None));
        bytes.extend_from_slice(b"rest");
        assert_eq!(AuthPacket::decode(&mut bytes), Ok(Some(packet)));
        assert_eq!(&bytes[..], b"rest");
        let mut null = BytesMut::new();
        AuthPacket { status: Status::Success, token: None }.encode(&mut null);
        let decoded = AuthPacket::decode(&mut null).expect("valid").expect("whole");
        assert_eq!((decoded.status, decoded.token), (Status::Success, None));
    }

    #[test]
    fn other_first_packets_are_told_apart() {
        let follower_info = [0u8, 0, 0, 11, 0, 0, 0, 0, 0, 0];
        assert_eq!(AuthPacket::starts(&follower_info), Some(false));
        assert_eq!(AuthPacket::starts(&MAGIC.to_be_bytes()), Some(true));
        assert_eq!(AuthPacket::starts(&[0xff]), None);
        let mut bytes = BytesMut::from(&follower_info[..]);
        assert_eq!(AuthPacket::decode(&mut bytes), Err(AuthPacketError::NotAuth));
        let mut long = BytesMut::new();
        long.put_i64(MAGIC);
        long.put_i32(0);
        long.put_i32(1 << 30);
        assert_eq!(AuthPacket::decode(&mut long), Err(AuthPacketError::BadLength(1 << 30)));
    }
}
