//! Client frames: a 4-byte big-endian length, then that many bytes, the length checked
//! against `jute.maxbuffer` before anything is buffered for it.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// A frame whose advertised length is negative or over `jute.maxbuffer`; the connection
/// is closed, as ZooKeeper closes it.
#[derive(Debug, thiserror::Error)]
#[error(
    "Len error: a message with advertised length of {length} is either a malformed message \
     or too large to process (length is greater than jute.maxbuffer={limit})"
)]
pub struct FrameTooLong {
    /// The length the client sent.
    pub length: i64,
    /// `jute.maxbuffer`.
    pub limit: usize,
}

/// Checks an advertised frame length against the limit.
///
/// # Errors
/// [`FrameTooLong`] for a negative length or one over `limit`.
pub fn check_length(header: [u8; 4], limit: usize) -> Result<usize, FrameTooLong> {
    let length = i32::from_be_bytes(header);
    usize::try_from(length)
        .ok()
        .filter(|length| *length <= limit)
        .ok_or(FrameTooLong { length: length.into(), limit })
}

/// Splits the byte stream of a session into frames.
#[derive(Debug)]
pub struct ClientFrames {
    /// `jute.maxbuffer`.
    pub limit: usize,
}

/// Why reading frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// An advertised length over the limit.
    #[error(transparent)]
    TooLong(#[from] FrameTooLong),
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Decoder for ClientFrames {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, source: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(header) = source.get(..4) else {
            return Ok(None);
        };
        let header: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let length = check_length(header, self.limit)?;
        let Some(missing) = (4 + length).checked_sub(source.len()).filter(|missing| *missing > 0)
        else {
            source.advance(4);
            return Ok(Some(source.split_to(length)));
        };
        source.reserve(missing);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_over_long_ones_refused() {
        let mut decoder = ClientFrames { limit: 8 };
        let mut bytes = BytesMut::from(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0][..]);
        assert_eq!(decoder.decode(&mut bytes).expect("ok").as_deref(), Some(&b"abc"[..]));
        assert!(decoder.decode(&mut bytes).expect("partial").is_none());
        let mut long = BytesMut::from(&[0, 0, 0, 9][..]);
        let err = decoder.decode(&mut long).expect_err("too long");
        assert!(err.to_string().contains("advertised length of 9"), "{err}");
        assert!(err.to_string().contains("jute.maxbuffer=8"), "{err}");
        let mut negative = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(decoder.decode(&mut negative).is_err());
    }
}
