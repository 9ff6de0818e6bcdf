//! Clients that write under load while members come and go: each creates unique nodes
//! under `/load` one at a time, through whichever member accepts a session, and records
//! every acknowledged create, so a test can check afterwards that none was lost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::records::CreateRequest;
use jute::OpCode;
use parking_lot::Mutex;

use super::client::{open_acl, Client, Handshake};

/// One acknowledged create: its path, when it was sent and when its reply came.
#[derive(Debug, Clone)]
pub struct Acked {
    pub path: String,
    pub sent: Instant,
    pub acked: Instant,
}

type Ledger = Arc<Mutex<Vec<Acked>>>;

/// The members' client addresses, which the test may change as members move.
pub type Members = Arc<Mutex<Vec<SocketAddr>>>;

/// Creates unique nodes under `/load` through the members in `members`, starting with
/// the `first`-th (the first that accepts a session), one at a time, reconnecting
/// whenever a connection breaks, until `stop` is set.
async fn writer(
    members: Members,
    first: usize,
    name: String,
    ledger: Ledger,
    stop: Arc<AtomicBool>,
) {
    let mut item = 0usize;
    let mut next_member = first;
    while !stop.load(Ordering::Relaxed) {
        let address = {
            let members = members.lock();
            members[next_member % members.len()]
        };
        next_member += 1;
        let handshake = Handshake { timeout_ms: 6_000, ..Handshake::default() };
        let connected =
            tokio::time::timeout(Duration::from_secs(2), Client::handshake(address, handshake));
        let Ok(Ok(mut client)) = connected.await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if client.session_id == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            let path = format!("/load/{name}-{item}");
            item += 1;
            let request = CreateRequest {
                path: path.clone(),
                data: Some(Bytes::from(path.clone().into_bytes())),
                acl: open_acl(),
                flags: 0,
            };
            let sent = Instant::now();
            let Ok(xid) = client.try_send(OpCode::Create, &request).await else { break };
            match tokio::time::timeout(Duration::from_secs(5), client.try_reply(xid)).await {
                Ok(Some(reply)) if reply.header.err == 0 => {
                    ledger.lock().push(Acked { path, sent, acked: Instant::now() });
                }
                Ok(Some(reply)) => panic!("{path}: error {} from the ensemble", reply.header.err),
                _ => break,
            }
        }
    }
}

/// Writers, one per member (each preferring its own member, failing over to the others).
pub struct Load {
    pub ledger: Ledger,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts a writer per member of `members`.
    pub fn start(members: &Members) -> Load {
        let ledger = Ledger::default();
        let stop = Arc::new(AtomicBool::new(false));
        let count = members.lock().len();
        let tasks = (0..count)
            .map(|i| {
                let writer =
                    writer(members.clone(), i, format!("w{i}"), ledger.clone(), stop.clone());
                tokio::spawn(writer)
            })
            .collect();
        Load { ledger, stop, tasks }
    }

    /// Waits until a write sent after `since` is acknowledged; returns when it was.
    pub async fn first_ack_sent_after(&self, since: Instant, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(ack) = self.ledger.lock().iter().find(|ack| ack.sent > since) {
                return ack.acked;
            }
            assert!(Instant::now() < deadline, "no write succeeded within {limit:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the writers; returns every acknowledged create.
    pub async fn finish(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("writer");
        }
        let acked = self.ledger.lock().clone();
        acked
    }
}
