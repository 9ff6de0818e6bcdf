//! A connection's requests read and not yet handed on or answered. Each counts in the
//! server's load (`globalOutstandingLimit`) and holds its large-request bytes until it
//! leaves; a write handed on holds them until its reply, as ZooKeeper's
//! `requestFinished` gives them back. Whatever is left when the connection ends is given
//! back then.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::proto::{Request, RequestError};
use crate::server::registry::Connection;
use crate::server::request_throttle::LargeRequests;

/// One request waiting in its connection.
#[derive(Debug)]
pub struct Queued {
    /// The client's id for the request.
    pub xid: i32,
    /// The request, or why it could not be read.
    pub request: Result<Request, RequestError>,
    /// When it arrived, on the server's monotonic clock.
    pub received_us: u64,
    /// The frame as the client sent it (a follower forwards it to its leader).
    pub frame: Bytes,
    /// Large-request bytes it holds (0 for a request under the threshold).
    pub large: usize,
}

/// The queue, in arrival order.
#[derive(Debug)]
pub struct RequestQueue<'a> {
    items: VecDeque<Queued>,
    connection: &'a Connection,
    large_requests: &'a LargeRequests,
    /// Large writes handed on: the connection's count of writes submitted once each was,
    /// and the bytes it holds until as many writes have completed.
    large_writes: VecDeque<(u64, usize)>,
}

impl<'a> RequestQueue<'a> {
    /// An empty queue of `connection`'s requests.
    pub fn new(connection: &'a Connection, large_requests: &'a LargeRequests) -> Self {
        RequestQueue {
            items: VecDeque::new(),
            connection,
            large_requests,
            large_writes: VecDeque::new(),
        }
    }

    /// Adds a request read from the client.
    pub fn push_back(&mut self, queued: Queued) {
        self.connection.queue_request();
        self.items.push_back(queued);
    }

    /// The oldest request.
    pub fn front(&self) -> Option<&Queued> {
        self.items.front()
    }

    /// Takes the oldest request out, answered at once: its large-request bytes go back.
    pub fn pop_answered(&mut self) -> Option<Queued> {
        let queued = self.pop()?;
        self.large_requests.release(queued.large);
        Some(queued)
    }

    /// Takes the oldest request out to hand it on as a write, which the caller submits
    /// right after: its large-request bytes are held until the write's reply.
    pub fn pop_write(&mut self) -> Option<Queued> {
        let queued = self.pop()?;
        if queued.large > 0 {
            let submitted = self.connection.writes_submitted() + 1;
            self.large_writes.push_back((submitted, queued.large));
        }
        Some(queued)
    }

    fn pop(&mut self) -> Option<Queued> {
        let queued = self.items.pop_front()?;
        self.connection.dequeue_request();
        // An emptied queue lets its room go, as the frame reader lets its buffer go and
        // the outbox its frames: kept, a quiet session would hold room for four requests
        // (736 bytes) after its first, or for the thousand it once pipelined.
        if self.items.is_empty() {
            self.items = VecDeque::new();
        }
        Some(queued)
    }

    /// Gives back the large-request bytes of writes answered since the last call.
    pub fn release_answered_writes(&mut self) {
        if self.large_writes.is_empty() {
            return;
        }
        let completed = self.connection.writes_completed();
        while let Some(&(submitted, large)) = self.large_writes.front() {
            if submitted > completed {
                break;
            }
            self.large_requests.release(large);
            self.large_writes.pop_front();
        }
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Drop for RequestQueue<'_> {
    fn drop(&mut self) {
        while self.pop_answered().is_some() {}
        for (_, large) in self.large_writes.drain(..) {
            self.large_requests.release(large);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::{ConnectionLimits, Registry};

    fn queued(xid: i32, request: Request) -> Queued {
        Queued { xid, request: Ok(request), received_us: 0, frame: Bytes::new(), large: 0 }
    }

    #[test]
    fn an_emptied_queue_holds_no_room() {
        let registry = Registry::default();
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let connection = registry.open(peer, false, limits, 0).expect("open");
        let large = LargeRequests::default();
        let mut queue = RequestQueue::new(&connection, &large);
        for xid in 0..100 {
            queue.push_back(queued(xid, Request::CloseSession));
        }
        assert_eq!(queue.pop_write().map(|queued| queued.xid), Some(0));
        assert!(queue.items.capacity() >= 99, "a queue in use keeps its room");
        while queue.pop_write().is_some() {}
        assert_eq!(queue.items.capacity(), 0);
        queue.push_back(queued(100, Request::Ping));
        assert_eq!(queue.pop_answered().map(|queued| queued.xid), Some(100));
        assert_eq!(queue.items.capacity(), 0);
    }
}
