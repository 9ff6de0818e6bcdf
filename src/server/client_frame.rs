//! Client frames: a 4-byte big-endian length, then that many bytes, the length checked
//! against `jute.maxbuffer` before anything is buffered for it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadHalf};
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::io::poll_read_buf;

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

/// Checks an advertised frame length against the limit: [`FrameTooLong`] for a negative
/// length or one over `limit`.
fn check_length(header: [u8; 4], limit: usize) -> Result<usize, FrameTooLong> {
    let length = i32::from_be_bytes(header);
    usize::try_from(length)
        .ok()
        .filter(|length| *length <= limit)
        .ok_or(FrameTooLong { length: length.into(), limit })
}

/// Why reading frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// An advertised length over the limit.
    #[error(transparent)]
    TooLong(#[from] FrameTooLong),
    /// The socket failed, or closed in the middle of a frame.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Bytes asked of the socket per read while frames are pipelined.
const READ_CHUNK: usize = 8 * 1024;

/// A client's byte stream, read without holding a buffer while it has nothing to read.
pub trait ClientInput: AsyncRead + Unpin {
    /// Reads some bytes into `buffer`, with room for `want` more made first; 0 at the end
    /// of the stream.
    fn read_some<'a>(
        &'a mut self,
        buffer: &'a mut BytesMut,
        want: usize,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

impl ClientInput for OwnedReadHalf {
    /// Plain TCP: waits on the reactor's readiness and makes room only once bytes are
    /// there, so a quiet connection holds no read buffer. A read that finds nothing lets
    /// an empty buffer go again.
    ///
    /// The read is a poll of `poll_read`, not `try_read_buf`: a read that fills less than
    /// the room given tells the reactor the socket is drained, where `try_read_buf` leaves
    /// it ready and the next read is a system call that finds nothing, one per request for
    /// a client that waits for each reply. Readiness is polled in place, not awaited as a
    /// future of its own, which every quiet connection's task would hold; and the poll is
    /// the future, without an `async fn` around it, which would keep its arguments twice.
    fn read_some<'a>(
        &'a mut self,
        buffer: &'a mut BytesMut,
        want: usize,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        poll_fn(move |cx| {
            if let Err(err) = ready!(self.as_ref().poll_read_ready(cx)) {
                return Poll::Ready(Err(err));
            }
            buffer.reserve(want);
            let read = poll_read_buf(Pin::new(&mut *self), cx, buffer);
            if read.is_pending() && buffer.is_empty() {
                *buffer = BytesMut::new();
            }
            read
        })
    }
}

impl<T: AsyncRead + Send + Sync> ClientInput for ReadHalf<T> {
    /// TLS: a read waits with its buffer (the TLS stream keeps buffers of its own anyway).
    async fn read_some(&mut self, buffer: &mut BytesMut, want: usize) -> io::Result<usize> {
        buffer.reserve(want);
        self.read_buf(buffer).await
    }
}

/// Splits a session's byte stream into frames, checking each advertised length against
/// `jute.maxbuffer` before buffering for it. While a plain client is quiet it holds no
/// buffer: one is taken when bytes arrive and let go once every byte in it is framed, so a
/// hundred thousand idle sessions cost no read buffers.
#[derive(Debug)]
pub struct FrameReader<R> {
    socket: R,
    limit: usize,
    /// Bytes read and not yet returned as frames.
    buffer: BytesMut,
}

impl<R: ClientInput> FrameReader<R> {
    /// Frames from `socket`, none longer than `limit` (`jute.maxbuffer`).
    pub fn new(socket: R, limit: usize) -> Self {
        FrameReader { socket, limit, buffer: BytesMut::new() }
    }

    /// The stream's first four bytes, left in the reader: what tells a four-letter word
    /// or a TLS record from a frame's length. Read with the first frame, in one call.
    ///
    /// # Errors
    /// The socket's, and `UnexpectedEof` if it closes before four bytes came.
    pub async fn peek_header(&mut self) -> io::Result<[u8; 4]> {
        while self.buffer.len() < 4 {
            if self.socket.read_some(&mut self.buffer, READ_CHUNK).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]])
    }

    /// The next frame, or `None` when the client closed between frames. Cancel-safe: the
    /// bytes read so far stay in the reader.
    pub async fn next(&mut self) -> Option<Result<Bytes, FrameError>> {
        loop {
            let missing = match self.split_frame() {
                Ok(Split::Frame(frame)) => return Some(Ok(frame)),
                Ok(Split::Missing(missing)) => missing,
                Err(err) => return Some(Err(err.into())),
            };
            match self.socket.read_some(&mut self.buffer, missing.max(READ_CHUNK)).await {
                Ok(0) if self.buffer.is_empty() => return None,
                Ok(0) => return Some(Err(io::Error::from(io::ErrorKind::UnexpectedEof).into())),
                Ok(_) => {}
                Err(err) => return Some(Err(err.into())),
            }
        }
    }

    /// Takes one whole frame off the buffer, or says how many more bytes it needs.
    fn split_frame(&mut self) -> Result<Split, FrameTooLong> {
        let Some(header) = self.buffer.get(..4) else {
            return Ok(Split::Missing(4 - self.buffer.len()));
        };
        let length = check_length([header[0], header[1], header[2], header[3]], self.limit)?;
        if let Some(missing) = (4 + length).checked_sub(self.buffer.len()).filter(|m| *m > 0) {
            return Ok(Split::Missing(missing));
        }
        self.buffer.advance(4);
        let frame = self.buffer.split_to(length).freeze();
        if self.buffer.is_empty() {
            self.buffer = BytesMut::new();
        }
        Ok(Split::Frame(frame))
    }
}

/// What the buffer holds.
enum Split {
    Frame(Bytes),
    Missing(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, DuplexStream};

    fn reader(limit: usize) -> (FrameReader<ReadHalf<DuplexStream>>, DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64);
        let (read, _) = tokio::io::split(ours);
        (FrameReader::new(read, limit), theirs)
    }

    #[tokio::test]
    async fn frames_arrive_whole_however_the_bytes_are_cut() {
        let (mut frames, mut client) = reader(8);
        client.write_all(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0]).await.expect("write");
        assert_eq!(frames.next().await.expect("frame").expect("ok"), &b"abc"[..]);
        client.write_all(&[0, 2, b'd']).await.expect("write");
        let second = tokio::spawn(async move { (frames.next().await, frames) });
        client.write_all(b"e").await.expect("write");
        let (frame, mut frames) = second.await.expect("task");
        assert_eq!(frame.expect("frame").expect("ok"), &b"de"[..]);
        assert_eq!(frames.buffer.capacity(), 0, "a drained reader keeps no buffer");
        drop(client);
        assert!(frames.next().await.is_none(), "closed between frames");
    }

    #[tokio::test]
    async fn the_header_is_peeked_and_stays_for_the_frame() {
        let (mut frames, mut client) = reader(8);
        client.write_all(&[0, 0]).await.expect("write");
        let peeked = tokio::spawn(async move { (frames.peek_header().await, frames) });
        client.write_all(&[0, 2, b'h', b'i']).await.expect("write");
        let (header, mut frames) = peeked.await.expect("task");
        assert_eq!(header.expect("four bytes"), [0, 0, 0, 2]);
        assert_eq!(frames.next().await.expect("frame").expect("ok"), &b"hi"[..]);

        let (mut frames, mut client) = reader(8);
        client.write_all(b"ru").await.expect("write");
        drop(client);
        let err = frames.peek_header().await.expect_err("closed before four bytes");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn over_long_and_cut_off_frames_are_errors() {
        let (mut frames, mut client) = reader(8);
        client.write_all(&[0, 0, 0, 9]).await.expect("write");
        let err = frames.next().await.expect("an answer").expect_err("too long");
        assert!(err.to_string().contains("advertised length of 9"), "{err}");
        assert!(err.to_string().contains("jute.maxbuffer=8"), "{err}");

        let (mut frames, mut client) = reader(8);
        client.write_all(&[0xff, 0xff, 0xff, 0xff]).await.expect("write");
        assert!(matches!(frames.next().await, Some(Err(FrameError::TooLong(_)))));

        let (mut frames, mut client) = reader(8);
        client.write_all(&[0, 0, 0, 5, b'a']).await.expect("write");
        drop(client);
        assert!(matches!(frames.next().await, Some(Err(FrameError::Io(_)))));
    }
}
