//! The connections between members: one TCP connection per pair, carrying
//! [`PeerFrame`]s both ways, re-established whenever it breaks.
//!
//! As in ZooKeeper, the member with the higher id dials the one with the lower id (on its
//! election port), so two members never keep two connections. A break is reported to the
//! driver as [`LinkEvent::Disconnected`] with the link's break count; the driver tags every
//! frame it sends with the count it last heard of, and frames tagged with an older count
//! are dropped. So what the core sent before it learned of a break never arrives on the
//! connection that replaces the broken one, which is the link model the simulator checks
//! the core against: messages on one connection arrive in order or not at all, and both
//! sides learn when a connection is gone. Frames sent while no connection is up are
//! dropped; the core resends what must arrive (votes, FOLLOWERINFO) on its own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::ensemble::frame::{self, PeerFrame};
use crate::zab::ServerId;

/// Opens every connection, before its first frame: "ZKRS", the protocol version, the
/// dialling member's id.
const HELLO_MAGIC: u32 = 0x5a4b_5253;
/// The version of [`PeerFrame`]s this build speaks.
const PROTOCOL_VERSION: u32 = 1;
/// Largest frame between members: a DIFF of many entries, or a snapshot chunk.
const FRAME_LEN_MAX: usize = 256 << 20;
/// How long a dial, or a dialled member's hello, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between dials of an unreachable member, growing up to the last.
const REDIAL_PAUSES_MS: [u64; 4] = [50, 100, 250, 500];

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
    /// The connection to `peer` broke (or was replaced); frames in flight may be lost.
    /// `breaks` counts the breaks so far; frames tagged with an older count are dropped.
    Disconnected {
        /// The other member.
        peer: ServerId,
        /// The link's break count.
        breaks: u64,
    },
}

/// An encoded frame and the break count the driver knew when it sent it.
struct Outgoing {
    breaks: u64,
    bytes: Bytes,
}

/// The driver's handle on one member's link.
struct Peer {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// The last break count the driver has processed.
    known_breaks: u64,
    /// Asks the link task to close its connection.
    reset: Arc<Reset>,
}

/// A request from the driver to close one connection: the one it knew as the link's
/// `breaks`-th, so that a request about a connection already gone closes no newer one.
#[derive(Default)]
struct Reset {
    wake: Notify,
    breaks: std::sync::atomic::AtomicU64,
}

/// The driver's side of all links: send frames, learn of breaks.
pub struct Links {
    peers: BTreeMap<ServerId, Peer>,
    buffer: BytesMut,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("peers", &self.peers.keys()).finish()
    }
}

impl Links {
    /// Starts a link to every member in `members` but `my_id`, accepting on `listener`
    /// (this member's election port; none on a standalone server, which has no peers);
    /// events go to `events` until `stop` is cancelled.
    pub fn start(
        my_id: ServerId,
        members: &BTreeMap<ServerId, SocketAddr>,
        listener: Option<TcpListener>,
        events: mpsc::Sender<LinkEvent>,
        stop: &CancellationToken,
    ) -> Links {
        let mut peers = BTreeMap::new();
        let mut accepting = BTreeMap::new();
        for (&peer, &address) in members {
            if peer == my_id {
                continue;
            }
            let (outgoing, queue) = mpsc::unbounded_channel();
            let (incoming, dialled) = mpsc::channel(4);
            let side = if peer < my_id {
                Side::Dial(address)
            } else {
                accepting.insert(peer, incoming);
                Side::Accept(dialled)
            };
            let reset = Arc::new(Reset::default());
            let task = LinkTask {
                my_id,
                peer,
                side,
                queue,
                events: events.clone(),
                breaks: 0,
                reset: reset.clone(),
            };
            tokio::spawn(stopping(stop.clone(), task.run()));
            peers.insert(peer, Peer { outgoing, known_breaks: 0, reset });
        }
        if let Some(listener) = listener {
            tokio::spawn(stopping(stop.clone(), accept(listener, accepting)));
        }
        Links { peers, buffer: BytesMut::new() }
    }

    /// Sends `frame` to `to` on the current connection, if there is one.
    pub fn send(&mut self, to: ServerId, frame: &PeerFrame) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        frame::encode(frame, &mut self.buffer);
        let bytes = self.buffer.split().freeze();
        let _ = peer.outgoing.send(Outgoing { breaks: peer.known_breaks, bytes });
    }

    /// Closes the connection to `peer`, if one is up; the break is reported as any other
    /// and the link connects again.
    pub fn reset(&mut self, peer: ServerId) {
        if let Some(peer) = self.peers.get(&peer) {
            peer.reset.breaks.store(peer.known_breaks, std::sync::atomic::Ordering::Release);
            peer.reset.wake.notify_one();
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

async fn stopping(stop: CancellationToken, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = work => {}
    }
}

/// How a link gets its connections.
enum Side {
    /// This member's id is higher: it dials the peer's election port.
    Dial(SocketAddr),
    /// The peer's id is higher: the listener hands over the connections it dials.
    Accept(mpsc::Receiver<TcpStream>),
}

struct LinkTask {
    my_id: ServerId,
    peer: ServerId,
    side: Side,
    queue: mpsc::UnboundedReceiver<Outgoing>,
    events: mpsc::Sender<LinkEvent>,
    breaks: u64,
    /// The driver asks for the connection to be closed.
    reset: Arc<Reset>,
}

/// Why a connection ended.
enum Ended {
    /// It broke, or a newer connection from the peer replaced it (carried along).
    Broke(Option<TcpStream>),
    /// The driver is gone.
    Stopped,
}

impl LinkTask {
    async fn run(mut self) {
        let mut next = None;
        loop {
            let stream = match next.take() {
                Some(stream) => stream,
                None => match self.connect().await {
                    Some(stream) => stream,
                    None => return,
                },
            };
            tracing::debug!(peer = self.peer, "member connected");
            match self.serve(stream).await {
                Ended::Stopped => return,
                Ended::Broke(replacement) => next = replacement,
            }
            self.breaks += 1;
            tracing::debug!(peer = self.peer, breaks = self.breaks, "member connection broke");
            let event = LinkEvent::Disconnected { peer: self.peer, breaks: self.breaks };
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    /// The next connection; frames sent meanwhile are dropped. `None` once the driver
    /// is gone.
    async fn connect(&mut self) -> Option<TcpStream> {
        let mut attempt = 0usize;
        loop {
            let pause = Duration::from_millis(REDIAL_PAUSES_MS[attempt.min(3)]);
            let connected = match &mut self.side {
                Side::Dial(address) => {
                    let address = *address;
                    let dial = tokio::time::timeout(CONNECT_TIMEOUT, dial(address, self.my_id));
                    tokio::select! {
                        result = dial => result.ok().and_then(Result::ok),
                        () = drain(&mut self.queue) => return None,
                    }
                }
                Side::Accept(dialled) => {
                    tokio::select! {
                        stream = dialled.recv() => Some(stream?),
                        () = drain(&mut self.queue) => return None,
                    }
                }
            };
            if connected.is_some() {
                return connected;
            }
            attempt += 1;
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = drain(&mut self.queue) => return None,
            }
        }
    }

    async fn serve(&mut self, stream: TcpStream) -> Ended {
        let _ = stream.set_nodelay(true);
        let codec = LengthDelimitedCodec::builder().max_frame_length(FRAME_LEN_MAX).new_codec();
        let (mut sink, mut frames) = Framed::new(stream, codec).split();
        loop {
            let replaced = async {
                match &mut self.side {
                    Side::Accept(dialled) => dialled.recv().await,
                    Side::Dial(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                outgoing = self.queue.recv() => {
                    let Some(first) = outgoing else { return Ended::Stopped };
                    let mut batch = vec![first];
                    while let Ok(more) = self.queue.try_recv() {
                        batch.push(more);
                    }
                    for outgoing in batch {
                        if outgoing.breaks < self.breaks {
                            continue;
                        }
                        if sink.feed(outgoing.bytes).await.is_err() {
                            return Ended::Broke(None);
                        }
                    }
                    if sink.flush().await.is_err() {
                        return Ended::Broke(None);
                    }
                }
                frame = frames.next() => {
                    if let Some(ended) = self.received(frame).await {
                        return ended;
                    }
                }
                () = self.reset.wake.notified() => {
                    let breaks = self.reset.breaks.load(std::sync::atomic::Ordering::Acquire);
                    if breaks == self.breaks {
                        tracing::info!(peer = self.peer, "closing the member connection");
                        return Ended::Broke(None);
                    }
                }
                stream = replaced => {
                    tracing::info!(peer = self.peer, "member reconnected; new connection");
                    return match stream {
                        Some(stream) => Ended::Broke(Some(stream)),
                        None => Ended::Stopped,
                    };
                }
            }
        }
    }
}

impl LinkTask {
    /// Passes a frame read from the connection on to the driver; `Some` when the
    /// connection ended instead.
    async fn received(&mut self, frame: Option<Result<BytesMut, std::io::Error>>) -> Option<Ended> {
        let bytes = match frame {
            Some(Ok(bytes)) => bytes.freeze(),
            Some(Err(err)) => {
                tracing::warn!(peer = self.peer, cause = %err, "member connection failed");
                return Some(Ended::Broke(None));
            }
            None => return Some(Ended::Broke(None)),
        };
        let frame = match frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(err) => {
                let peer = self.peer;
                tracing::warn!(peer, cause = %err, "malformed frame from a member; reconnecting");
                return Some(Ended::Broke(None));
            }
        };
        let event = LinkEvent::Frame { from: self.peer, frame };
        if self.events.send(event).await.is_err() {
            return Some(Ended::Stopped);
        }
        None
    }
}

/// Drops queued frames (no connection is up to carry them); returns once the queue
/// closes, when the driver is gone.
async fn drain(queue: &mut mpsc::UnboundedReceiver<Outgoing>) {
    while queue.recv().await.is_some() {}
}

/// Connects to a member with a lower id and introduces this one.
async fn dial(address: SocketAddr, my_id: ServerId) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(address).await?;
    let mut hello = BytesMut::with_capacity(16);
    hello.put_u32(HELLO_MAGIC);
    hello.put_u32(PROTOCOL_VERSION);
    hello.put_u64(my_id);
    stream.write_all(&hello).await?;
    Ok(stream)
}

/// Accepts members' connections and hands each to its link by the id in its hello.
async fn accept(listener: TcpListener, links: BTreeMap<ServerId, mpsc::Sender<TcpStream>>) {
    loop {
        let (mut stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(cause = %err, "accepting a member connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut hello = [0u8; 16];
        let read = tokio::time::timeout(CONNECT_TIMEOUT, stream.read_exact(&mut hello)).await;
        if !matches!(read, Ok(Ok(_))) {
            tracing::warn!(%address, "member connection without a hello; closing it");
            continue;
        }
        let magic = u32::from_be_bytes([hello[0], hello[1], hello[2], hello[3]]);
        let version = u32::from_be_bytes([hello[4], hello[5], hello[6], hello[7]]);
        let mut id_bytes = [0u8; 8];
        id_bytes.copy_from_slice(&hello[8..]);
        let id = u64::from_be_bytes(id_bytes);
        if magic != HELLO_MAGIC || version != PROTOCOL_VERSION {
            tracing::warn!(%address, magic, version, "not a zkrs member of this version; closing");
            continue;
        }
        match links.get(&id) {
            Some(link) => {
                let _ = link.send(stream).await;
            }
            None => tracing::warn!(%address, id, "connection from an unknown or lower member id"),
        }
    }
}
