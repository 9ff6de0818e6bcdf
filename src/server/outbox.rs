//! The frames waiting to be written to one client, in the order they must arrive.
//!
//! Replies and notifications are pushed by whoever produces them (the connection's own
//! reader for reads, the driver for writes and watch events) at the moment they are
//! produced, so the queue order is the order ZooKeeper guarantees. The connection's own
//! task drains it into the socket, many frames per system call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

/// Bytes a client may leave unread before it is disconnected as too slow.
pub const OUTBOX_BYTES_MAX: usize = 64 << 20;

/// Bytes the writer takes for one batch (one write to the socket, as far as it takes
/// them), unless a single frame is larger.
pub const BATCH_BYTES: usize = 256 << 10;

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// No more frames will be accepted; the writer flushes what is queued, then stops.
    closed: bool,
}

/// What [`Outbox::take_into`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Frames, now appended.
    Frames,
    /// None yet.
    Nothing,
    /// None, and none will come: the outbox is closed.
    Closed,
}

/// A bounded queue of outgoing frames with a wake-up for its writer.
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<State>,
    /// The connection's task, which writes the frames: woken by a frame, a close or an
    /// overflow, and by whatever else its connection signals ([`Outbox::wake_task`]).
    /// One waker for all of them, as one task waits on all of them.
    task: AtomicWaker,
    /// The client left more than [`OUTBOX_BYTES_MAX`] unread: the queue was dropped and
    /// the connection is to be cut off, whatever the writer is still writing.
    overflowed: AtomicBool,
}

impl Outbox {
    /// Queues a frame; returns false (and closes the outbox) if the client has let
    /// more than [`OUTBOX_BYTES_MAX`] pile up, or false if the outbox is closed.
    pub fn push(&self, frame: Bytes) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        if state.bytes + frame.len() > OUTBOX_BYTES_MAX {
            state.closed = true;
            state.frames.clear();
            drop(state);
            self.overflowed.store(true, Ordering::Release);
            self.task.wake();
            return false;
        }
        state.bytes += frame.len();
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame);
        drop(state);
        // The writer waits on the outbox only once it found it empty: a frame queued
        // behind others is taken with them, without waking the task again.
        if was_empty {
            self.task.wake();
        }
        true
    }

    /// Stops accepting frames; queued ones are still written.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.task.wake();
    }

    /// Whether the outbox was closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Whether the client let too much pile up (the outbox is closed for that).
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Registers the connection's task to be woken by the next [`Outbox::wake_task`], or
    /// by a frame, a close or an overflow; before it looks at what it waits for, so a
    /// wake in between is not lost.
    pub fn register_task(&self, waker: &Waker) {
        self.task.register(waker);
    }

    /// Wakes the connection's task: something it may wait on, besides frames, changed.
    pub fn wake_task(&self) {
        self.task.wake();
    }

    /// Appends a batch of queued frames to `out` (as [`Outbox::take_into`]): ready with
    /// true once there were some, with false once the outbox is closed and empty;
    /// pending (the task woken by the next frame or the close) while it is open and
    /// empty.
    pub fn poll_take_into(&self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Poll<bool> {
        // Registered before looking: a frame pushed after the look wakes this task.
        self.task.register(cx.waker());
        match self.take_into(out) {
            Taken::Frames => Poll::Ready(true),
            Taken::Closed => Poll::Ready(false),
            Taken::Nothing => Poll::Pending,
        }
    }

    /// Appends queued frames to `out` without waiting, in order: as many as fit in
    /// [`BATCH_BYTES`], and at least one. What a batch has taken no longer counts against
    /// [`OUTBOX_BYTES_MAX`], so the cap also bounds what a client that stops reading can
    /// hold beyond it. The simulator's clients, which have nothing to wait on, read this
    /// way too.
    pub fn take_into(&self, out: &mut Vec<u8>) -> Taken {
        let mut state = self.state.lock();
        if state.frames.is_empty() {
            return if state.closed { Taken::Closed } else { Taken::Nothing };
        }
        let mut count = 0;
        let mut taken = 0;
        for frame in &state.frames {
            if count > 0 && taken + frame.len() > BATCH_BYTES {
                break;
            }
            count += 1;
            taken += frame.len();
        }
        let batch: Vec<Bytes> = if count == state.frames.len() {
            // Taken whole, so an idle connection keeps no queue sized for its largest
            // burst.
            std::mem::take(&mut state.frames).into()
        } else {
            state.frames.drain(..count).collect()
        };
        state.bytes -= taken;
        drop(state);
        out.reserve(taken);
        for frame in batch {
            out.extend_from_slice(&frame);
        }
        Taken::Frames
    }

    /// Frames queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.state.lock().frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::Arc;

    async fn drain(outbox: &Outbox, out: &mut Vec<u8>) -> bool {
        poll_fn(|cx| outbox.poll_take_into(cx, out)).await
    }

    #[tokio::test]
    async fn drains_in_order_then_stops_after_close() {
        let outbox = Outbox::default();
        assert!(outbox.push(Bytes::from_static(b"ab")));
        assert!(outbox.push(Bytes::from_static(b"c")));
        let mut out = Vec::new();
        assert!(drain(&outbox, &mut out).await);
        assert_eq!(out, b"abc");
        outbox.push(Bytes::from_static(b"d"));
        outbox.close();
        assert!(!outbox.push(Bytes::from_static(b"e")));
        out.clear();
        assert!(drain(&outbox, &mut out).await);
        assert_eq!(out, b"d");
        assert!(!drain(&outbox, &mut out).await);
        assert!(!outbox.overflowed(), "a close is no overflow");
    }

    #[tokio::test]
    async fn a_frame_pushed_while_the_writer_waits_wakes_it() {
        let outbox = Arc::new(Outbox::default());
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let mut out = Vec::new();
                drain(&outbox, &mut out).await.then_some(out)
            }
        });
        tokio::task::yield_now().await;
        assert!(outbox.push(Bytes::from_static(b"late")));
        let written = tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("the writer was woken")
            .expect("writer task");
        assert_eq!(written.as_deref(), Some(&b"late"[..]));
    }

    #[test]
    fn a_batch_takes_frames_up_to_its_size_and_at_least_one() {
        let outbox = Outbox::default();
        let small = Bytes::from(vec![1u8; BATCH_BYTES / 4]);
        let large = Bytes::from(vec![2u8; BATCH_BYTES * 2]);
        for frame in [&small, &small, &small, &small, &small, &large, &small] {
            assert!(outbox.push(frame.clone()));
        }
        let mut out = Vec::new();
        let mut batches = Vec::new();
        while outbox.take_into(&mut out) == Taken::Frames {
            batches.push(out.len());
            out.clear();
        }
        assert_eq!(batches, [BATCH_BYTES, BATCH_BYTES / 4, BATCH_BYTES * 2, BATCH_BYTES / 4]);
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn a_client_that_never_reads_is_cut_off() {
        let outbox = Outbox::default();
        let frame = Bytes::from(vec![0u8; 1 << 20]);
        let pushed = (0..100).take_while(|_| outbox.push(frame.clone())).count();
        assert_eq!(pushed, OUTBOX_BYTES_MAX >> 20);
        assert!(outbox.is_closed());
        assert!(outbox.overflowed());
    }
}
