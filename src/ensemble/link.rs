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
//!
//! Each link's queue is bounded in bytes ([`QUEUE_BYTES_MAX`]): a member that falls so
//! far behind is disconnected, as a slow client is, and catches up again from the
//! handshake. A snapshot does not pass through the queue: its place in the queue holds
//! the channel its chunks come through ([`Links::stream`]), read chunk by chunk as the
//! connection takes them, and frames queued after it wait behind it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
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
const PROTOCOL_VERSION: u32 = 7;
/// Largest frame between members: a DIFF of many entries, or a snapshot chunk.
const FRAME_LEN_MAX: usize = 256 << 20;
/// How long a dial, or a dialled member's hello, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between dials of an unreachable member, growing up to the last.
const REDIAL_PAUSES_MS: [u64; 4] = [50, 100, 250, 500];
/// Most bytes of frames waiting for one member's connection. A frame that would pass it
/// disconnects the member instead (one frame alone may be larger, up to
/// [`FRAME_LEN_MAX`]).
pub const QUEUE_BYTES_MAX: usize = 64 << 20;

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

/// What the driver queued and the break count it knew when it queued it.
struct Outgoing {
    breaks: u64,
    item: Item,
}

/// One entry of a link's queue.
enum Item {
    /// An encoded frame.
    Frame(Bytes),
    /// Encoded frames to write, as they come, until the channel closes (a snapshot).
    Stream(mpsc::Receiver<Bytes>),
}

impl Item {
    /// The bytes it holds in the queue.
    fn queued_bytes(&self) -> usize {
        match self {
            Item::Frame(bytes) => bytes.len(),
            Item::Stream(_) => 0,
        }
    }
}

/// The driver's handle on one member's link.
struct Peer {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Bytes in the queue, which [`QUEUE_BYTES_MAX`] bounds.
    queued: Arc<AtomicUsize>,
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
    breaks: AtomicU64,
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
            let queued = Arc::new(AtomicUsize::new(0));
            let task = LinkTask {
                my_id,
                peer,
                side,
                queue,
                queued: queued.clone(),
                events: events.clone(),
                breaks: 0,
                reset: reset.clone(),
            };
            tokio::spawn(stopping(stop.clone(), task.run()));
            peers.insert(peer, Peer { outgoing, queued, known_breaks: 0, reset });
        }
        if let Some(listener) = listener {
            tokio::spawn(stopping(stop.clone(), accept(listener, accepting)));
        }
        Links { peers, buffer: BytesMut::new() }
    }

    /// Sends `frame` to `to` on the current connection, if there is one. If the queue to
    /// `to` would pass [`QUEUE_BYTES_MAX`], the frame is dropped and the connection
    /// closed instead.
    pub fn send(&mut self, to: ServerId, frame: &PeerFrame) {
        if !self.peers.contains_key(&to) {
            return;
        }
        frame::encode(frame, &mut self.buffer);
        let bytes = self.buffer.split().freeze();
        self.enqueue(to, Item::Frame(bytes));
    }

    /// Sends the frames that come through `frames` to `to`, in order, ahead of anything
    /// sent after this call; the link reads them as its connection takes them, so the
    /// sender waits for the connection (a snapshot). The channel is dropped, closing it
    /// to the sender, if the connection breaks.
    pub fn stream(&mut self, to: ServerId, frames: mpsc::Receiver<Bytes>) {
        self.enqueue(to, Item::Stream(frames));
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

    /// Closes the connection to `peer`, if one is up; the break is reported as any other
    /// and the link connects again.
    pub fn reset(&mut self, peer: ServerId) {
        if let Some(peer) = self.peers.get(&peer) {
            peer.reset.breaks.store(peer.known_breaks, Ordering::Release);
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
    /// Bytes in `queue`, shared with the driver's [`Peer`].
    queued: Arc<AtomicUsize>,
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
                        () = drain(&mut self.queue, &self.queued) => return None,
                    }
                }
                Side::Accept(dialled) => {
                    tokio::select! {
                        stream = dialled.recv() => Some(stream?),
                        () = drain(&mut self.queue, &self.queued) => return None,
                    }
                }
            };
            if connected.is_some() {
                return connected;
            }
            attempt += 1;
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = drain(&mut self.queue, &self.queued) => return None,
            }
        }
    }

    /// Carries frames both ways on `stream` until it breaks, is replaced, or the driver
    /// asks for it to be closed. Reading runs on a task of its own, so a peer that stops
    /// reading never keeps this member from reading what that peer sends.
    async fn serve(&mut self, stream: TcpStream) -> Ended {
        let _ = stream.set_nodelay(true);
        let codec = LengthDelimitedCodec::builder().max_frame_length(FRAME_LEN_MAX).new_codec();
        let (sink, frames) = Framed::new(stream, codec).split();
        let mut reader = Some(tokio::spawn(read_frames(frames, self.peer, self.events.clone())));
        let ended = self.write(sink, &mut reader).await;
        // Nothing read on this connection may reach the driver after its break does.
        if let Some(reader) = reader {
            reader.abort();
            let _ = reader.await;
        }
        ended
    }

    async fn write(
        &mut self,
        mut sink: SplitSink<Framed<TcpStream, LengthDelimitedCodec>, Bytes>,
        reader: &mut Option<tokio::task::JoinHandle<Ended>>,
    ) -> Ended {
        let reset = self.reset.clone();
        let breaks = self.breaks;
        // A snapshot being written out; the queue waits until it ends.
        let mut streaming: Option<mpsc::Receiver<Bytes>> = None;
        loop {
            let replaced = async {
                match &mut self.side {
                    Side::Accept(dialled) => dialled.recv().await,
                    Side::Dial(_) => std::future::pending().await,
                }
            };
            let idle = streaming.is_none();
            let read = async {
                match reader {
                    Some(reading) => reading.await,
                    None => std::future::pending().await,
                }
            };
            let streamed = async {
                match &mut streaming {
                    Some(chunks) => chunks.recv().await,
                    None => std::future::pending().await,
                }
            };
            let frames = tokio::select! {
                outgoing = self.queue.recv(), if idle => {
                    let Some(first) = outgoing else { return Ended::Stopped };
                    self.take_batch(first, &mut streaming)
                }
                chunk = streamed => match chunk {
                    Some(bytes) => vec![bytes],
                    None => {
                        streaming = None;
                        continue;
                    }
                },
                read = read => {
                    *reader = None;
                    return read.unwrap_or(Ended::Broke(None));
                }
                () = reset_requested(&reset, breaks) => {
                    tracing::info!(peer = self.peer, "closing the member connection");
                    return Ended::Broke(None);
                }
                stream = replaced => {
                    tracing::info!(peer = self.peer, "member reconnected; new connection");
                    return match stream {
                        Some(stream) => Ended::Broke(Some(stream)),
                        None => Ended::Stopped,
                    };
                }
            };
            let written = async {
                for bytes in frames {
                    sink.feed(bytes).await?;
                }
                sink.flush().await
            };
            tokio::select! {
                outcome = written => if outcome.is_err() {
                    return Ended::Broke(None);
                },
                () = reset_requested(&reset, breaks) => {
                    tracing::info!(peer = self.peer, "closing the member connection");
                    return Ended::Broke(None);
                }
            }
        }
    }

    /// Takes `first` and what else is queued, up to and including a stream (which it
    /// starts): the frames to write now, of this connection (stale ones are dropped).
    fn take_batch(
        &mut self,
        first: Outgoing,
        streaming: &mut Option<mpsc::Receiver<Bytes>>,
    ) -> Vec<Bytes> {
        let mut frames = Vec::new();
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            self.queued.fetch_sub(outgoing.item.queued_bytes(), Ordering::AcqRel);
            let current = outgoing.breaks >= self.breaks;
            match outgoing.item {
                Item::Frame(bytes) if current => frames.push(bytes),
                Item::Stream(chunks) if current => {
                    // Frames queued behind a stream wait until it ends.
                    *streaming = Some(chunks);
                    break;
                }
                Item::Frame(_) | Item::Stream(_) => {}
            }
            next = self.queue.try_recv().ok();
        }
        frames
    }
}

/// Returns once the driver asks to close the connection it knew as the `breaks`-th.
async fn reset_requested(reset: &Reset, breaks: u64) {
    loop {
        reset.wake.notified().await;
        if reset.breaks.load(Ordering::Acquire) == breaks {
            return;
        }
    }
}

/// Passes the frames read from a connection on to the driver, until the connection
/// breaks or sends a frame that does not decode ([`Ended::Broke`]), or the driver is
/// gone ([`Ended::Stopped`]).
async fn read_frames(
    mut frames: SplitStream<Framed<TcpStream, LengthDelimitedCodec>>,
    peer: ServerId,
    events: mpsc::Sender<LinkEvent>,
) -> Ended {
    loop {
        let bytes = match frames.next().await {
            Some(Ok(bytes)) => bytes.freeze(),
            Some(Err(err)) => {
                tracing::warn!(peer, cause = %err, "member connection failed");
                return Ended::Broke(None);
            }
            None => return Ended::Broke(None),
        };
        let frame = match frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::warn!(peer, cause = %err, "malformed frame from a member; reconnecting");
                return Ended::Broke(None);
            }
        };
        if events.send(LinkEvent::Frame { from: peer, frame }).await.is_err() {
            return Ended::Stopped;
        }
    }
}

/// Drops queued frames (no connection is up to carry them); returns once the queue
/// closes, when the driver is gone.
async fn drain(queue: &mut mpsc::UnboundedReceiver<Outgoing>, queued: &AtomicUsize) {
    while let Some(outgoing) = queue.recv().await {
        queued.fetch_sub(outgoing.item.queued_bytes(), Ordering::AcqRel);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{SessionId, Zxid};

    /// A member that accepts the connection and then reads nothing.
    async fn silent_member() -> (SocketAddr, tokio::sync::oneshot::Receiver<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (accepted, connection) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                let _ = accepted.send(stream);
            }
        });
        (address, connection)
    }

    #[tokio::test]
    async fn a_member_that_reads_nothing_is_disconnected_once_its_queue_is_full() {
        let (address, connection) = silent_member().await;
        let stop = CancellationToken::new();
        let (events_tx, mut events) = mpsc::channel(16);
        let members = BTreeMap::from([(1, address), (2, "127.0.0.1:9".parse().expect("address"))]);
        let mut links = Links::start(2, &members, None, events_tx, &stop);
        let held = tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("member 2 dials member 1")
            .expect("accepted");
        let frame = PeerFrame::SnapshotChunk {
            zxid: Zxid::new(1),
            index: 0,
            chunk: Bytes::from(vec![7; 1 << 20]),
        };
        let mut sent = 0usize;
        let event = loop {
            assert!(sent < 4 * (QUEUE_BYTES_MAX >> 20), "no disconnection after {sent} MiB");
            links.send(1, &frame);
            sent += 1;
            match tokio::time::timeout(Duration::from_millis(5), events.recv()).await {
                Ok(event) => break event,
                Err(_) => continue,
            }
        };
        assert!(matches!(event, Some(LinkEvent::Disconnected { peer: 1, breaks: 1 })), "{event:?}");
        assert!(sent > QUEUE_BYTES_MAX >> 20, "disconnected after only {sent} MiB");
        drop(held);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_stream_is_written_before_the_frames_queued_after_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let (events_tx, _events) = mpsc::channel(16);
        let members = BTreeMap::from([(1, address), (2, "127.0.0.1:9".parse().expect("address"))]);
        let mut links = Links::start(2, &members, None, events_tx, &stop);
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut hello = [0u8; 16];
        stream.read_exact(&mut hello).await.expect("hello");
        let (chunks, frames) = mpsc::channel(1);
        links.stream(1, frames);
        links.send(1, &PeerFrame::Touch(vec![SessionId::new(42)]));
        fn chunk(index: u32) -> PeerFrame {
            PeerFrame::SnapshotChunk { zxid: Zxid::new(5), index, chunk: Bytes::from_static(b"c") }
        }
        let sender = tokio::spawn(async move {
            for index in 0..3 {
                let mut bytes = BytesMut::new();
                frame::encode(&chunk(index), &mut bytes);
                chunks.send(bytes.freeze()).await.expect("the link reads the stream");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let codec = LengthDelimitedCodec::builder().max_frame_length(FRAME_LEN_MAX).new_codec();
        let mut received = Framed::new(stream, codec);
        let mut order = Vec::new();
        for _ in 0..4 {
            let bytes = received.next().await.expect("a frame").expect("readable");
            order.push(frame::decode(&bytes.freeze()).expect("decodes"));
        }
        sender.await.expect("sender");
        assert_eq!(order[3], PeerFrame::Touch(vec![SessionId::new(42)]));
        for (index, frame) in order.iter().take(3).enumerate() {
            assert_eq!(frame, &chunk(u32::try_from(index).expect("small")));
        }
        stop.cancel();
    }
}
