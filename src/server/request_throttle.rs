//! Admission of requests once their connection is in, as ZooKeeper's:
//! - `globalOutstandingLimit`: while more requests are outstanding server-wide, a
//!   connection with requests of its own outstanding is not read from (`shouldThrottle`);
//! - the request throttle (`RequestThrottler`): while `request_throttle_max_requests`
//!   writes are in process, requests wait their turn, first come, first served (the
//!   permits of [`crate::server::registry::Load`]), and go on as soon as a write
//!   completes; a request that waited past `throttled_op_wait_time` is answered
//!   THROTTLEDOP, and one that waited past its session timeout
//!   (`request_stale_latency_check`) goes with its connection;
//! - large requests (`largeRequestThreshold`): frames longer than the threshold share a
//!   budget of bytes received and not yet answered (`largeRequestMaxBytes`); a frame that
//!   would overdraw it closes its connection.
//!
//! The decisions here are functions of the numbers they look at; the connection's task
//! holds the clock, waits and acts on them.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::throttle::RequestThrottleSettings;
use crate::server::registry::Load;

/// Whether a request that waited `waited_ms` for its turn at the request throttle is
/// answered THROTTLEDOP instead of carried out (`throttled_op_wait_time`; never for
/// those that are not `throttlable`: pings and session closes).
pub fn waited_too_long(
    settings: &RequestThrottleSettings,
    waited_ms: u64,
    throttlable: bool,
) -> bool {
    throttlable && settings.throttled_op_wait_ms > 0 && waited_ms > settings.throttled_op_wait_ms
}

/// Whether a connection with `own_outstanding` requests read and not answered may be
/// read from (ZooKeeper's `shouldThrottle`, inverted): a connection with nothing
/// outstanding always may, so every client can still be heard.
pub fn may_read(settings: &RequestThrottleSettings, load: &Load, own_outstanding: u64) -> bool {
    let limit = settings.global_outstanding_limit;
    own_outstanding == 0 || (load.queued() <= limit && load.in_process() <= limit)
}

/// The bytes of large requests received and not yet answered, server-wide.
#[derive(Debug, Default)]
pub struct LargeRequests {
    held: AtomicUsize,
}

/// A frame the budget refused.
#[derive(Debug, thiserror::Error)]
#[error("rejecting a large request of {len} bytes: {held} of the {max} bytes allowed are held")]
pub struct LargeRequestRejected {
    len: usize,
    held: usize,
    max: usize,
}

impl LargeRequests {
    /// Takes `len` bytes from the budget if a frame of that length is a large request:
    /// `Ok(0)` for a frame that is not, `Ok(len)` for the bytes to give back with
    /// [`LargeRequests::release`] once it is answered.
    ///
    /// # Errors
    /// If the budget does not have `len` bytes left.
    pub fn hold(
        &self,
        settings: &RequestThrottleSettings,
        len: usize,
    ) -> Result<usize, LargeRequestRejected> {
        if settings.large_request_threshold.is_none_or(|threshold| len <= threshold) {
            return Ok(0);
        }
        let max = settings.large_request_max_bytes;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(len).filter(|total| *total <= max)
            })
            .map(|_| len)
            .map_err(|held| LargeRequestRejected { len, held, max })
    }

    /// Gives back bytes taken with [`LargeRequests::hold`].
    pub fn release(&self, len: usize) {
        if len > 0 {
            self.held.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Bytes of large requests held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::{ConnectionLimits, Registry};
    use crate::server::request_queue::{Queued, RequestQueue};

    fn settings(max_requests: u64) -> RequestThrottleSettings {
        RequestThrottleSettings {
            max_requests,
            drop_late: false,
            throttled_op_wait_ms: 0,
            global_outstanding_limit: 1000,
            large_request_threshold: None,
            large_request_max_bytes: 100,
        }
    }

    #[test]
    fn only_a_long_wait_of_a_throttlable_request_is_answered_throttled() {
        let mut settings = settings(1);
        assert!(!waited_too_long(&settings, 1 << 40, true), "0: never");
        settings.throttled_op_wait_ms = 200;
        assert!(!waited_too_long(&settings, 200, true));
        assert!(waited_too_long(&settings, 201, true));
        assert!(!waited_too_long(&settings, 201, false), "a session close");
    }

    #[test]
    fn only_connections_with_requests_outstanding_stop_being_read() {
        let settings = RequestThrottleSettings { global_outstanding_limit: 2, ..settings(0) };
        let registry = Registry::default();
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let peer = "127.0.0.1:5000".parse().expect("address");
        let connection = registry.open(peer, false, limits, 0).expect("opened");
        let large = LargeRequests::default();
        let mut queue = RequestQueue::new(&connection, &large);
        assert!(may_read(&settings, registry.load(), 5), "nothing outstanding server-wide");
        for xid in 0..3 {
            let request = Ok(crate::proto::Request::Ping);
            let frame = bytes::Bytes::new();
            queue.push_back(Queued { xid, request, received_us: 0, frame, large: 0 });
        }
        assert!(!may_read(&settings, registry.load(), 1), "3 queued, past the limit of 2");
        assert!(may_read(&settings, registry.load(), 0), "a connection with nothing outstanding");
        queue.pop_answered();
        connection.submit_write(registry.load().try_permit().expect("no throttle"));
        assert!(may_read(&settings, registry.load(), 1), "2 queued and 1 in process");
        drop(queue);
        registry.close(&connection);
        drop(connection);
        let load = registry.load();
        assert_eq!((load.queued(), load.in_process()), (0, 0), "a dropped connection settles");
    }

    #[test]
    fn permits_come_back_when_writes_complete_or_their_connection_goes() {
        let registry = Registry::new(2, false);
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let peer = "127.0.0.1:5000".parse().expect("address");
        let connection = registry.open(peer, false, limits, 0).expect("opened");
        for _ in 0..2 {
            let permit = registry.load().try_permit().expect("a free permit");
            connection.submit_write(permit);
        }
        assert!(registry.load().try_permit().is_none(), "two writes in process");
        connection.complete_write();
        let permit = registry.load().try_permit().expect("one came back");
        connection.submit_write(permit);
        assert!(registry.load().try_permit().is_none());
        registry.close(&connection);
        drop(connection);
        assert!(registry.load().try_permit().is_some(), "the connection's writes gave theirs");
        assert_eq!(registry.load().in_process(), 0);
    }

    #[test]
    fn large_requests_share_a_budget_and_small_ones_cost_nothing() {
        let settings = RequestThrottleSettings { large_request_threshold: Some(10), ..settings(0) };
        let large = LargeRequests::default();
        assert_eq!(large.hold(&settings, 10).ok(), Some(0), "at the threshold is not large");
        assert_eq!(large.hold(&settings, 60).ok(), Some(60));
        assert!(large.hold(&settings, 41).is_err(), "101 bytes held would pass the budget");
        assert_eq!(large.hold(&settings, 40).ok(), Some(40));
        large.release(60);
        assert_eq!(large.held(), 40);
        assert_eq!(large.hold(&super::tests::settings(0), 1 << 30).ok(), Some(0));
    }
}
