//! The frames waiting to be written to one client, in the order they must arrive.
//!
//! Replies and notifications are pushed by whoever produces them (the connection's own
//! reader for reads, the driver for writes and watch events) at the moment they are
//! produced, so the queue order is the order ZooKeeper guarantees. A writer task drains
//! it into the socket, many frames per system call.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Bytes a client may leave unread before it is disconnected as too slow.
pub const OUTBOX_BYTES_MAX: usize = 64 << 20;

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
    ready: Notify,
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
            self.ready.notify_one();
            return false;
        }
        state.bytes += frame.len();
        state.frames.push_back(frame);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Stops accepting frames; queued ones are still written.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }

    /// Whether the outbox was closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Waits for frames and appends all queued ones to `out`. Returns false once the
    /// outbox is closed and empty.
    pub async fn drain_into(&self, out: &mut Vec<u8>) -> bool {
        loop {
            let notified = self.ready.notified();
            match self.take_into(out) {
                Taken::Frames => return true,
                Taken::Closed => return false,
                Taken::Nothing => notified.await,
            }
        }
    }

    /// Appends the queued frames to `out` without waiting: what a writer with nothing
    /// to wait on (the simulator's clients) reads.
    pub fn take_into(&self, out: &mut Vec<u8>) -> Taken {
        let mut state = self.state.lock();
        if state.frames.is_empty() {
            return if state.closed { Taken::Closed } else { Taken::Nothing };
        }
        // Taken whole, so an idle connection keeps no queue sized for its largest burst.
        let frames = std::mem::take(&mut state.frames);
        state.bytes = 0;
        drop(state);
        out.reserve(frames.iter().map(Bytes::len).sum());
        for frame in frames {
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

    #[tokio::test]
    async fn drains_in_order_then_stops_after_close() {
        let outbox = Outbox::default();
        assert!(outbox.push(Bytes::from_static(b"ab")));
        assert!(outbox.push(Bytes::from_static(b"c")));
        let mut out = Vec::new();
        assert!(outbox.drain_into(&mut out).await);
        assert_eq!(out, b"abc");
        outbox.push(Bytes::from_static(b"d"));
        outbox.close();
        assert!(!outbox.push(Bytes::from_static(b"e")));
        out.clear();
        assert!(outbox.drain_into(&mut out).await);
        assert_eq!(out, b"d");
        assert!(!outbox.drain_into(&mut out).await);
    }

    #[test]
    fn a_client_that_never_reads_is_cut_off() {
        let outbox = Outbox::default();
        let frame = Bytes::from(vec![0u8; 1 << 20]);
        let pushed = (0..100).take_while(|_| outbox.push(frame.clone())).count();
        assert_eq!(pushed, OUTBOX_BYTES_MAX >> 20);
        assert!(outbox.is_closed());
    }
}
