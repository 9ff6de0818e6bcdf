//! The sending side of a client connection, driven by the connection's own task rather
//! than a task of its own: an idle session then costs one task, not two, and a reply
//! written right after the requests that produced it needs no second task woken.
//!
//! Frames are taken from the [`Outbox`] a batch at a time and written with as few system
//! calls as the socket allows. The batch's buffer lives only while it is being written,
//! so a quiet connection holds none.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::server::outbox::Outbox;

/// What one step of writing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// Some bytes went to the socket.
    Bytes,
    /// Nothing is left and nothing will come: the outbox is closed and written out.
    Everything,
    /// The client left more unread than the outbox holds: it is to be cut off, and
    /// what is still unwritten is dropped.
    Overflowed,
}

/// A socket's sending side and the batch being written to it.
#[derive(Debug)]
pub struct SocketWriter<W> {
    socket: W,
    batch: Vec<u8>,
    /// How much of `batch` the socket has taken.
    written: usize,
}

impl<W: AsyncWrite + Unpin> SocketWriter<W> {
    /// A writer with nothing to write yet.
    pub fn new(socket: W) -> Self {
        SocketWriter { socket, batch: Vec::new(), written: 0 }
    }

    /// Writes some of what `outbox` holds: ready after each write that sent bytes, once
    /// the outbox is closed and everything is out, or at once when it overflowed; pending
    /// while there is nothing to write or the socket takes nothing. Cancel-safe: bytes
    /// not yet written stay in the writer for the next call.
    ///
    /// # Errors
    /// The socket's; a socket that takes no bytes is `WriteZero`.
    ///
    /// The poll is the future, without an `async fn` around it, which would keep its
    /// arguments twice in every connection's task.
    pub fn write_some<'a>(
        &'a mut self,
        outbox: &'a Outbox,
    ) -> impl Future<Output = io::Result<Wrote>> + 'a {
        poll_fn(move |cx| self.poll_write_some(cx, outbox))
    }

    fn poll_write_some(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &Outbox,
    ) -> Poll<io::Result<Wrote>> {
        if outbox.overflowed() {
            return Poll::Ready(Ok(Wrote::Overflowed));
        }
        if self.written == self.batch.len() && !ready!(outbox.poll_take_into(cx, &mut self.batch)) {
            return Poll::Ready(Ok(Wrote::Everything));
        }
        let unwritten = &self.batch[self.written..];
        let sent = ready!(Pin::new(&mut self.socket).poll_write(cx, unwritten))?;
        if sent == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.written += sent;
        if self.written == self.batch.len() {
            self.batch = Vec::new();
            self.written = 0;
        }
        Poll::Ready(Ok(Wrote::Bytes))
    }

    /// Writes what is queued until the outbox is closed and empty (or overflowed), then
    /// shuts the socket's sending side: the end of a connection. The caller bounds how
    /// long.
    pub async fn finish(&mut self, outbox: &Outbox) {
        while let Ok(Wrote::Bytes) = self.write_some(outbox).await {}
        let _ = self.socket.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_batches_in_order_through_a_socket_that_takes_little_at_a_time() {
        let (near, mut far) = tokio::io::duplex(7);
        let outbox = Outbox::default();
        let mut writer = SocketWriter::new(near);
        let frames: Vec<Vec<u8>> = (0u8..50).map(|n| vec![n; usize::from(n % 13) + 1]).collect();
        let expected: Vec<u8> = frames.concat();
        let reading = tokio::spawn(async move {
            let mut received = Vec::new();
            far.read_to_end(&mut received).await.map(|_| received)
        });
        for frame in &frames {
            assert!(outbox.push(Bytes::from(frame.clone())));
            assert_eq!(writer.write_some(&outbox).await.expect("write"), Wrote::Bytes);
        }
        outbox.close();
        writer.finish(&outbox).await;
        drop(writer);
        let received = reading.await.expect("reader task").expect("read");
        assert_eq!(received, expected);
    }

    #[tokio::test]
    async fn an_overflow_is_reported_while_a_batch_is_stuck_in_a_full_socket() {
        let (near, _far) = tokio::io::duplex(64);
        let outbox = Outbox::default();
        let mut writer = SocketWriter::new(near);
        assert!(outbox.push(Bytes::from(vec![1u8; 1000])));
        assert_eq!(writer.write_some(&outbox).await.expect("write"), Wrote::Bytes);
        let big = Bytes::from(vec![2u8; 1 << 20]);
        while outbox.push(big.clone()) {}
        let wrote = tokio::time::timeout(Duration::from_secs(10), writer.write_some(&outbox))
            .await
            .expect("the overflow is seen though the socket takes nothing");
        assert_eq!(wrote.expect("write"), Wrote::Overflowed);
    }

    #[tokio::test]
    async fn a_closed_empty_outbox_is_written_out() {
        let (near, _far) = tokio::io::duplex(64);
        let outbox = Outbox::default();
        let mut writer = SocketWriter::new(near);
        outbox.close();
        assert_eq!(writer.write_some(&outbox).await.expect("write"), Wrote::Everything);
    }

    #[tokio::test]
    async fn waits_for_a_frame_while_the_outbox_is_empty() {
        let (near, _far) = tokio::io::duplex(64);
        let outbox = Outbox::default();
        let mut writer = SocketWriter::new(near);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), writer.write_some(&outbox))
                .await;
        assert!(waited.is_err(), "nothing to write: it waits");
        assert!(outbox.push(Bytes::from_static(b"x")));
        assert_eq!(writer.write_some(&outbox).await.expect("write"), Wrote::Bytes);
    }
}
