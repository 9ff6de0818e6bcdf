//! A campaign client's connection to the one member it is pinned to: reconnecting after
//! a break, and every request bounded in time, its outcome unknown when no reply comes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::OpCode;

use crate::support::client::{Client, Handshake, Incoming, RecordRef};

/// How long a client waits for a reply before it counts the outcome as unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// The session timeout clients ask for; member pauses run both shorter and longer.
pub const SESSION_TIMEOUT_MS: i32 = 4000;

/// Where a client connects, when it must stop, and the campaign's clock.
#[derive(Clone)]
pub struct Pinned {
    pub member: SocketAddr,
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
}

impl Pinned {
    /// Whether the campaign is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Microseconds since the campaign began: the histories' clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A new session on the member, retried until it serves or the campaign ends.
    pub async fn connect(&self) -> Option<Client> {
        while !self.stopped() {
            let handshake = Handshake { timeout_ms: SESSION_TIMEOUT_MS, ..Handshake::default() };
            let attempt = Client::handshake(self.member, handshake);
            if let Ok(Ok(client)) = tokio::time::timeout(OP_TIMEOUT, attempt).await {
                if client.session_id != 0 {
                    return Some(client);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// Sends a request; `None` when its outcome is unknown (the connection broke or the
/// reply did not come in time), after which the client must reconnect.
pub async fn call(
    client: &mut Client,
    op: OpCode,
    body: &(dyn RecordRef + Sync),
) -> Option<Incoming> {
    client.try_call(op, body, OP_TIMEOUT).await
}

/// A znode's data read as the decimal number the workloads write.
pub fn decimal(data: Option<&Bytes>) -> Option<u64> {
    std::str::from_utf8(data?).ok()?.parse().ok()
}
