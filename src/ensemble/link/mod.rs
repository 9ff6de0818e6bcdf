//! The connections between members, in Apache ZooKeeper's own topology and protocol, so
//! that zkrs members and ZooKeeper members make one ensemble:
//! - **Election** (`link::election`): one connection per pair on the election ports,
//!   carrying notifications only. As ZooKeeper's `QuorumCnxManager` has it, the member
//!   with the higher id keeps the connection it dialled; one with a lower id that needs
//!   a connection dials, introduces itself and hangs up, and the other dials back.
//! - **Quorum** (`link::quorum`): a learner dials its leader's quorum port when it starts to
//!   follow (its core's FOLLOWERINFO), one connection per term; the leader learns who
//!   dialled from that FOLLOWERINFO. The packets are ZooKeeper's, translated to and from
//!   the core's messages and the shell's frames by `ensemble::zookeeper`.
//!
//! The driver sees one link per member. A notification goes on the election connection
//! and every other frame on the quorum connection. Only the quorum connection's breaks
//! are reported ([`LinkEvent::Disconnected`], with the link's break count); the driver
//! tags every frame it sends with the count it last heard of, and frames tagged with an
//! older count are dropped. So what the core sent before it learned of a break never
//! arrives on the connection that replaces the broken one, which is the link model the
//! simulator checks the core against. Frames sent while no connection is up are
//! dropped; the core resends what must arrive (votes, FOLLOWERINFO) on its own.
//!
//! Each quorum queue is bounded in bytes ([`QUEUE_BYTES_MAX`]): a member that falls so
//! far behind is disconnected, as a slow client is, and catches up again from the
//! handshake. A snapshot does not pass through the queue: its place in the queue holds
//! the channel its bytes come through ([`Links::send_snapshot`]), read as the connection
//! takes them, and frames queued after it wait behind it.

mod authenticate;
mod election;
mod quorum;
pub mod stream;

pub use quorum::QuorumEnd;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ensemble::frame::PeerFrame;
use crate::zab::{Message, Notification, ServerId};

/// How long a dial, or a dialled member's introduction, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a member dialling in may take to secure its connection (TLS's handshake,
/// after up to `ssl.quorum.handshakeDetectionTimeoutMillis` waiting for its first byte),
/// and then to introduce itself and authenticate under `quorum.auth.enableSasl`.
const SECURE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of frames waiting for one member's quorum connection. A frame that would
/// pass it disconnects the member instead (one frame alone may be larger).
pub const QUEUE_BYTES_MAX: usize = 64 << 20;
/// Notifications waiting for one member's election connection; more are dropped (the
/// core sends its vote again).
const NOTIFICATIONS_QUEUED_MAX: usize = 64;

/// What the links tell the driver.
#[derive(Debug)]
pub enum LinkEvent {
    /// A frame arrived from `from`.
    Frame {
        /// The sender.
        from: ServerId,
        /// What it sent.
        frame: PeerFrame,
    },
    /// The quorum connection to `peer` broke (or was replaced); frames in flight may be
    /// lost. `breaks` counts the breaks so far; frames tagged with an older count are
    /// dropped.
    Disconnected {
        /// The other member.
        peer: ServerId,
        /// The link's break count.
        breaks: u64,
    },
}

/// What a leader's snapshot thread hands the link of the learner it is for.
#[derive(Debug)]
pub enum Streamed {
    /// The snapshot's next bytes, in ZooKeeper's transfer format.
    Bytes(Bytes),
    /// The snapshot is whole. A channel that closes before this broke off the snapshot,
    /// and the connection with it.
    End,
}

/// Where a member listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddresses {
    /// Its quorum port, which learners dial when it leads.
    pub quorum: SocketAddr,
    /// Its election port.
    pub election: SocketAddr,
    /// The host its `server.N` line names, which its certificate may name instead of
    /// its address.
    pub host: String,
}

/// What the links need to know of the ensemble.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// This member.
    pub my_id: ServerId,
    /// Every member, this one included.
    pub members: BTreeMap<ServerId, PeerAddresses>,
    /// The membership as ZooKeeper writes it (`QuorumVerifier.toString()`), which
    /// notifications and NEWLEADER carry.
    pub membership_text: String,
    /// The membership's version (0 for a static zoo.cfg), in FOLLOWERINFO.
    pub config_version: u64,
    /// Longest data a quorum packet may carry (`jute.maxbuffer` and its extra).
    pub packet_data_max: usize,
    /// Plain TCP or TLS, and what is checked of the other member.
    pub security: stream::PeerSecurity,
    /// SASL between members (`quorum.auth.enableSasl`), if on.
    pub sasl: Option<Arc<crate::config::quorum_sasl::QuorumSasl>>,
}

/// What the driver queued on a quorum link and the break count it knew then.
struct Outgoing {
    breaks: u64,
    item: Item,
}

/// One entry of a quorum link's queue.
enum Item {
    /// A frame.
    Frame(PeerFrame),
    /// A `Snap`, whose snapshot comes through the channel.
    Snapshot(PeerFrame, mpsc::Receiver<Streamed>),
}

impl Item {
    /// About the bytes it holds in the queue.
    fn queued_bytes(&self) -> usize {
        match self {
            Item::Frame(frame) | Item::Snapshot(frame, _) => frame_bytes(frame),
        }
    }
}

/// About the bytes a frame takes: its payloads and a little for the rest.
fn frame_bytes(frame: &PeerFrame) -> usize {
    const HEAD: usize = 32;
    let entries = |entries: &[crate::zab::Entry]| {
        entries.iter().map(|entry| HEAD + entry.payload.len()).sum::<usize>()
    };
    HEAD + match frame {
        PeerFrame::Zab(Message::Proposal(entry)) => entry.payload.len(),
        PeerFrame::Zab(
            Message::Diff { entries: list, .. } | Message::Snap { entries: list, .. },
        ) => entries(list),
        PeerFrame::Request { frame, .. } => frame.len(),
        PeerFrame::Touch(sessions) => sessions.len() * 12,
        _ => 0,
    }
}

/// The driver's handle on one member's links.
struct Peer {
    notifications: mpsc::Sender<Notification>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Bytes in the quorum queue, which [`QUEUE_BYTES_MAX`] bounds.
    queued: Arc<AtomicUsize>,
    /// The last break count the driver has processed.
    known_breaks: u64,
    /// Asks the quorum link to close its connection: the one it knew as the link's
    /// `breaks`-th, so that a request about a connection already gone closes no newer
    /// one.
    reset: watch::Sender<u64>,
}

/// The driver's side of all links: send frames, learn of breaks.
pub struct Links {
    peers: BTreeMap<ServerId, Peer>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("peers", &self.peers.keys()).finish()
    }
}

/// A member's two listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The quorum port, where learners dial a leader.
    pub quorum: TcpListener,
    /// The election port.
    pub election: TcpListener,
}

impl Links {
    /// Starts the links to every member but this one, accepting on `listeners` (none on
    /// a standalone server, which has no peers); events go to `events` until `stop` is
    /// cancelled.
    pub fn start(
        config: &LinkConfig,
        listeners: Option<Listeners>,
        events: mpsc::Sender<LinkEvent>,
        stop: &CancellationToken,
    ) -> Links {
        let config = Arc::new(config.clone());
        let mut peers = BTreeMap::new();
        let mut elections = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (&peer, addresses) in &config.members {
            if peer == config.my_id {
                continue;
            }
            let (notifications, queued_notifications) = mpsc::channel(NOTIFICATIONS_QUEUED_MAX);
            let election = election::ElectionLink::new(
                config.clone(),
                peer,
                addresses.clone(),
                queued_notifications,
                events.clone(),
            );
            elections.insert(peer, election.handle());
            tokio::spawn(stopping(stop.clone(), election.run()));

            let (outgoing, queue) = mpsc::unbounded_channel();
            let (accepted_tx, accepted) = mpsc::channel(4);
            learners.insert(peer, accepted_tx);
            let (reset, reset_rx) = watch::channel(u64::MAX);
            let queued = Arc::new(AtomicUsize::new(0));
            let link = quorum::QuorumLink::new(
                config.clone(),
                peer,
                addresses.clone(),
                queue,
                queued.clone(),
                accepted,
                events.clone(),
                reset_rx,
            );
            tokio::spawn(stopping(stop.clone(), link.run()));
            peers.insert(peer, Peer { notifications, outgoing, queued, known_breaks: 0, reset });
        }
        if let Some(listeners) = listeners {
            tokio::spawn(stopping(
                stop.clone(),
                election::accept(listeners.election, config.clone(), elections),
            ));
            tokio::spawn(stopping(
                stop.clone(),
                quorum::accept(listeners.quorum, config, learners),
            ));
        }
        Links { peers }
    }

    /// Sends `frame` to `to` on the current connection, if there is one: a notification
    /// on the election connection, anything else on the quorum connection. If the
    /// quorum queue to `to` would pass [`QUEUE_BYTES_MAX`], the frame is dropped and the
    /// connection closed instead.
    pub fn send(&mut self, to: ServerId, frame: PeerFrame) {
        if let PeerFrame::Zab(Message::Notification(notification)) = frame {
            if let Some(peer) = self.peers.get(&to) {
                let _ = peer.notifications.try_send(notification);
            }
            return;
        }
        self.enqueue(to, Item::Frame(frame));
    }

    /// Sends the `Snap` in `frame` to `to` with the snapshot that comes through
    /// `snapshot`, ahead of anything sent after this call; the link reads the snapshot
    /// as its connection takes it, so the sender waits for the connection. The channel
    /// is dropped, closing it to the sender, if the connection breaks.
    pub fn send_snapshot(
        &mut self,
        to: ServerId,
        frame: PeerFrame,
        snapshot: mpsc::Receiver<Streamed>,
    ) {
        self.enqueue(to, Item::Snapshot(frame, snapshot));
    }

    fn enqueue(&mut self, to: ServerId, item: Item) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        let len = item.queued_bytes();
        let before = peer.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > QUEUE_BYTES_MAX {
            peer.queued.fetch_sub(len, Ordering::AcqRel);
            tracing::warn!(
                peer = to,
                queued_bytes = before,
                "a member falls behind: its queue is full; disconnecting it"
            );
            self.reset(to);
            return;
        }
        let _ = peer.outgoing.send(Outgoing { breaks: peer.known_breaks, item });
    }

    /// Closes the quorum connection to `peer`, if one is up; the break is reported as
    /// any other.
    pub fn reset(&mut self, peer: ServerId) {
        if let Some(peer) = self.peers.get(&peer) {
            peer.reset.send_replace(peer.known_breaks);
        }
    }

    /// This member stopped leading or following: every quorum connection belongs to the
    /// term that ended, and closes (a ZooKeeper learner or leader does the same).
    pub fn end_term(&mut self) {
        let peers: Vec<ServerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.reset(peer);
        }
    }

    /// The driver processed a [`LinkEvent::Disconnected`]: later frames go on the next
    /// connection.
    pub fn disconnected(&mut self, peer: ServerId, breaks: u64) {
        if let Some(peer) = self.peers.get_mut(&peer) {
            peer.known_breaks = peer.known_breaks.max(breaks);
        }
    }
}

/// Accepts connections on `listener` (the `what` port) for good, securing each as
/// `security` says and handing it to `handle`, on a task of its own, so a member slow to
/// introduce itself holds up no other. A connection that cannot be secured is closed
/// with a warning.
async fn accept_each<F, Handled>(
    listener: TcpListener,
    what: &'static str,
    security: stream::PeerSecurity,
    handle: F,
) where
    F: Fn(crate::tls::stream::Transport, SocketAddr) -> Handled + Send + Sync + 'static,
    Handled: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    loop {
        match listener.accept().await {
            Ok((stream, address)) => {
                let (security, handle) = (security.clone(), handle.clone());
                tokio::spawn(async move {
                    let secured =
                        tokio::time::timeout(SECURE_TIMEOUT, security.accept(stream, address));
                    match secured.await {
                        Ok(Ok(stream)) => handle(stream, address).await,
                        Ok(Err(err)) => {
                            tracing::warn!(port = what, %address, cause = %err,
                                "closing a member connection")
                        }
                        Err(_) => tracing::warn!(port = what, %address,
                            "closing a member connection: no TLS handshake in time"),
                    }
                });
            }
            Err(err) => {
                tracing::warn!(port = what, cause = %err, "accepting a member connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn stopping(stop: CancellationToken, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = work => {}
    }
}

#[cfg(test)]
#[path = "link_test.rs"]
mod tests;

#[cfg(test)]
#[path = "sync_test.rs"]
mod sync_tests;
