//! Quorum connections, as ZooKeeper's `Learner` and `LearnerHandler` make them: a
//! learner dials its leader's quorum port when its core starts to follow (FOLLOWERINFO
//! or OBSERVERINFO, which names it), and the connection lasts for that term. Both ends
//! translate between ZooKeeper's packets and the pipeline's frames
//! (`ensemble::zookeeper::{learner, leader, sessions}`); a snapshot a leader sends runs
//! on the stream between its SNAP and the packets after it, as ZooKeeper's does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, FramedRead};

use super::stream::{is_refusal, PeerReader, PeerWriter};
use super::{
    accept_each, authenticate, Item, LinkConfig, LinkEvent, Outgoing, PeerAddresses, Streamed,
    CONNECT_TIMEOUT, SECURE_TIMEOUT,
};
use crate::ensemble::frame::PeerFrame;
use crate::ensemble::zookeeper::leader::{self, LeaderSide};
use crate::ensemble::zookeeper::learner::LearnerSide;
use crate::ensemble::zookeeper::packet::{
    LearnerInfo, PacketCodec, PacketError, PacketType, QuorumPacket,
};
use crate::ensemble::zookeeper::sessions::{self, Forwarded};
use crate::ensemble::zookeeper::TranslateError;
use crate::tls::stream::Transport;
use crate::txn::{SessionId, Zxid};
use crate::zab::{Message, ServerId};
use crate::zk_format::snapshot::{TransferPiece, TransferReader};
use crate::zk_format::ZkFileError;

/// Least time between two dials of a leader: the core repeats FOLLOWERINFO each tick.
const DIAL_PAUSE: Duration = Duration::from_millis(100);
/// Most session touches a learner holds for its next PING answer.
const TOUCHES_MAX: usize = 1 << 20;
/// Bytes of packets gathered before they are written.
const WRITE_BATCH_BYTES: usize = 1 << 20;

/// A connection a learner dialled to this member, with the FOLLOWERINFO or OBSERVERINFO
/// it opened with and what was read after it.
pub(super) struct Accepted {
    stream: Transport,
    first: QuorumPacket,
    leftover: BytesMut,
}

/// This member's end of a quorum connection: what its frames are as ZooKeeper's packets,
/// and what the other end's packets are as frames. Public so that the whole-server
/// simulator carries frames between members as a connection does.
pub enum QuorumEnd {
    /// This member follows or observes the other, and holds its clients' session
    /// touches for its next PING answer.
    Learner(LearnerSide, Vec<(SessionId, i32)>),
    /// The other member follows or observes this one.
    Leader(LeaderSide),
}

impl QuorumEnd {
    /// The end of the learner `my_id`, which knows the membership version
    /// `config_version`, on the connection it dialled to its leader.
    pub fn learner(my_id: ServerId, config_version: u64) -> QuorumEnd {
        QuorumEnd::Learner(LearnerSide::new(my_id, config_version), Vec::new())
    }

    /// The leader's end of a connection a learner dialled; NEWLEADER carries
    /// `membership_text`.
    pub fn leader(membership_text: &str) -> QuorumEnd {
        QuorumEnd::Leader(LeaderSide::new(membership_text))
    }

    /// The packets `frame` is on this end of the connection; `snapshot_at` is where the
    /// snapshot goes among them, if the frame is a `Snap`.
    ///
    /// # Errors
    /// `NotOnThisSide` for a frame the other end sends, or one it cannot take.
    pub fn translate_out(
        &mut self,
        frame: PeerFrame,
        packets: &mut Vec<QuorumPacket>,
        snapshot_at: &mut Option<usize>,
    ) -> Result<(), TranslateError> {
        match self {
            QuorumEnd::Learner(learner, touches) => match frame {
                PeerFrame::Zab(message) => {
                    let first = packets.len();
                    learner.outgoing(&message, packets)?;
                    for packet in &mut packets[first..] {
                        if packet.kind == PacketType::Ping {
                            packet.data = Some(sessions::touches(&std::mem::take(touches)));
                        }
                    }
                }
                PeerFrame::Request { session_id, auth, frame } => {
                    packets.push(Forwarded { session_id, frame, auth }.packet());
                }
                PeerFrame::Touch(sessions) => {
                    let room = TOUCHES_MAX.saturating_sub(touches.len());
                    touches.extend(sessions.into_iter().take(room));
                }
                PeerFrame::Revalidate { session_id, timeout_ms } => {
                    packets.push(sessions::revalidate(session_id, timeout_ms));
                }
                PeerFrame::Revalidated { .. } | PeerFrame::SnapshotPieces { .. } => {
                    return Err(TranslateError::NotOnThisSide("a leader's frame"));
                }
            },
            QuorumEnd::Leader(leader) => match frame {
                PeerFrame::Zab(message) => {
                    let mut out = Vec::new();
                    leader.outgoing(message, &mut out)?;
                    for outgoing in out {
                        match outgoing {
                            leader::Outgoing::Packet(packet) => packets.push(packet),
                            leader::Outgoing::Snapshot(_) => *snapshot_at = Some(packets.len()),
                        }
                    }
                }
                PeerFrame::Revalidated { session_id, valid } => {
                    packets.push(sessions::revalidated(session_id, valid));
                }
                _ => return Err(TranslateError::NotOnThisSide("a learner's frame")),
            },
        }
        Ok(())
    }

    /// What the frames `packet` is from the other end, appended to `out`.
    ///
    /// # Errors
    /// A packet out of place or malformed: the connection is to break.
    pub fn translate_in(
        &mut self,
        packet: QuorumPacket,
        out: &mut Vec<PeerFrame>,
    ) -> Result<(), TranslateError> {
        let malformed = |kind, source| TranslateError::Malformed { kind, source };
        match self {
            QuorumEnd::Learner(learner, _) => {
                if packet.kind == PacketType::Revalidate {
                    let (session_id, valid) = sessions::read_revalidated(&packet)
                        .map_err(|source| malformed(PacketType::Revalidate, source))?;
                    out.push(PeerFrame::Revalidated { session_id, valid });
                    return Ok(());
                }
                let mut messages = Vec::new();
                learner.incoming(packet, &mut messages)?;
                out.extend(messages.into_iter().map(PeerFrame::Zab));
            }
            QuorumEnd::Leader(leader) => match packet.kind {
                PacketType::Request => {
                    let Forwarded { session_id, frame, auth } = Forwarded::read(&packet)
                        .map_err(|source| malformed(PacketType::Request, source))?;
                    out.push(PeerFrame::Request { session_id, auth, frame });
                }
                PacketType::Revalidate => {
                    let (session_id, timeout_ms) = sessions::read_revalidate(&packet)
                        .map_err(|source| malformed(PacketType::Revalidate, source))?;
                    out.push(PeerFrame::Revalidate { session_id, timeout_ms });
                }
                kind => {
                    if kind == PacketType::Ping {
                        let touched = sessions::read_touches(packet.data.as_ref())
                            .map_err(|source| malformed(PacketType::Ping, source))?;
                        if !touched.is_empty() {
                            out.push(PeerFrame::Touch(touched));
                        }
                    }
                    if let Some(message) = leader.incoming(packet)? {
                        out.push(PeerFrame::Zab(message));
                    }
                }
            },
        }
        Ok(())
    }
}

/// Why a connection ended.
enum Ended {
    /// It broke, or a newer connection from the member replaced it (carried along).
    Broke(Option<Accepted>),
    /// The driver is gone.
    Stopped,
}

/// How a connection came about.
enum Connection {
    /// This member dialled the member it follows, for the FOLLOWERINFO carried along,
    /// with what was read after authenticating.
    Dialled(Transport, BytesMut, Outgoing),
    /// The member dialled this one.
    Accepted(Accepted),
}

/// The quorum connection to one member.
pub(super) struct QuorumLink {
    config: Arc<LinkConfig>,
    peer: ServerId,
    addresses: PeerAddresses,
    queue: mpsc::UnboundedReceiver<Outgoing>,
    /// Bytes in `queue`, shared with the driver's handle.
    queued: Arc<AtomicUsize>,
    events: mpsc::Sender<LinkEvent>,
    breaks: u64,
    last_dial: Option<Instant>,
    ends: Ends,
}

/// What ends a connection besides its own break: the driver's request, or the member
/// dialling again.
struct Ends {
    peer: ServerId,
    /// The break count of the connection the driver wants closed.
    reset: watch::Receiver<u64>,
    accepted: mpsc::Receiver<Accepted>,
    /// Whether a listener may still hand over connections.
    accepting: bool,
}

impl QuorumLink {
    /// The link to `peer`, whose quorum port is among `addresses`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: Arc<LinkConfig>,
        peer: ServerId,
        addresses: PeerAddresses,
        queue: mpsc::UnboundedReceiver<Outgoing>,
        queued: Arc<AtomicUsize>,
        accepted: mpsc::Receiver<Accepted>,
        events: mpsc::Sender<LinkEvent>,
        reset: watch::Receiver<u64>,
    ) -> QuorumLink {
        QuorumLink {
            config,
            peer,
            addresses,
            queue,
            queued,
            events,
            breaks: 0,
            last_dial: None,
            ends: Ends { peer, reset, accepted, accepting: true },
        }
    }

    /// Serves the link's connections, one at a time, until the driver is gone.
    pub(super) async fn run(mut self) {
        let mut next = None;
        loop {
            let connection = match next.take() {
                Some(accepted) => Connection::Accepted(accepted),
                None => match self.connect().await {
                    Some(connection) => connection,
                    None => return,
                },
            };
            tracing::debug!(peer = self.peer, "quorum connection up");
            match self.serve(connection).await {
                Ended::Stopped => return,
                Ended::Broke(replacement) => next = replacement,
            }
            self.breaks += 1;
            tracing::debug!(peer = self.peer, breaks = self.breaks, "quorum connection down");
            let event = LinkEvent::Disconnected { peer: self.peer, breaks: self.breaks };
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    /// Waits for the next connection: the core's FOLLOWERINFO to this member has this
    /// one dial it; a learner may dial this one. Frames meanwhile are dropped. `None`
    /// once the driver is gone.
    async fn connect(&mut self) -> Option<Connection> {
        loop {
            tokio::select! {
                outgoing = self.queue.recv() => {
                    let outgoing = outgoing?;
                    self.queued.fetch_sub(outgoing.item.queued_bytes(), Ordering::AcqRel);
                    let introduces = matches!(
                        outgoing.item,
                        Item::Frame(PeerFrame::Zab(Message::FollowerInfo { .. }))
                    );
                    let paused = self.last_dial.is_some_and(|at| at.elapsed() < DIAL_PAUSE);
                    if !introduces || outgoing.breaks < self.breaks || paused {
                        continue;
                    }
                    self.last_dial = Some(Instant::now());
                    match tokio::time::timeout(CONNECT_TIMEOUT, self.dial()).await {
                        Ok(Ok((stream, leftover))) => {
                            return Some(Connection::Dialled(stream, leftover, outgoing));
                        }
                        Ok(Err(err)) if is_refusal(&err) => {
                            let peer = self.peer;
                            tracing::warn!(peer, cause = %err, "the leader's connection refused");
                        }
                        Ok(Err(err)) => {
                            let peer = self.peer;
                            tracing::debug!(peer, cause = %err, "cannot reach the leader");
                        }
                        Err(_) => {
                            tracing::debug!(peer = self.peer, "dialling the leader timed out");
                        }
                    }
                }
                accepted = next_accepted(&mut self.ends.accepted, &mut self.ends.accepting) => {
                    if let Some(accepted) = accepted {
                        return Some(Connection::Accepted(accepted));
                    }
                }
            }
        }
    }

    /// Dials the leader and authenticates under `quorum.auth.learnerRequireSasl`, as
    /// ZooKeeper's learner does before its FOLLOWERINFO.
    async fn dial(&self) -> std::io::Result<(Transport, BytesMut)> {
        let (address, host) = (self.addresses.quorum, &self.addresses.host);
        let mut stream = self.config.security.dial(address, host).await?;
        let mut leftover = BytesMut::new();
        if let Some(sasl) = &self.config.sasl {
            authenticate::as_learner(&mut stream, sasl, &mut leftover).await?;
        }
        Ok((stream, leftover))
    }

    /// Carries packets both ways until the connection breaks, is replaced, or the
    /// driver asks for it to be closed. Reading runs on a task of its own, so a member
    /// that stops reading never keeps this one from reading what it sends.
    async fn serve(&mut self, connection: Connection) -> Ended {
        let (stream, side, first_in, leftover, first_out) = match connection {
            Connection::Dialled(stream, leftover, first) => {
                let side = QuorumEnd::learner(self.config.my_id, self.config.config_version);
                (stream, side, None, leftover, Some(first))
            }
            Connection::Accepted(Accepted { stream, first, leftover }) => {
                let side = QuorumEnd::leader(&self.config.membership_text);
                (stream, side, Some(first), leftover, None)
            }
        };
        let (read, write) = stream.into_split();
        let side = Arc::new(Mutex::new(side));
        let mut frames = FramedRead::new(read, QuorumDecoder::new(self.config.packet_data_max));
        frames.read_buffer_mut().extend_from_slice(&leftover);
        let reader = tokio::spawn(read_packets(
            frames,
            first_in,
            side.clone(),
            self.peer,
            self.events.clone(),
        ));
        let mut reader = Some(reader);
        let ended = self.write(write, &side, first_out, &mut reader).await;
        // Nothing read on this connection may reach the driver after its break does.
        if let Some(reader) = reader {
            reader.abort();
            let _ = reader.await;
        }
        ended
    }

    async fn write(
        &mut self,
        mut write: PeerWriter,
        side: &Mutex<QuorumEnd>,
        first: Option<Outgoing>,
        reader: &mut Option<JoinHandle<Ended>>,
    ) -> Ended {
        let breaks = self.breaks;
        // A request to close an earlier connection is not about this one.
        self.ends.reset.borrow_and_update();
        let mut buffer = BytesMut::new();
        // A snapshot being written out, and the packets that follow it.
        let mut streaming: Option<(mpsc::Receiver<Streamed>, Vec<QuorumPacket>)> = None;
        if let Some(first) = first {
            if let Err(err) = self.take(first, side, &mut buffer, &mut streaming) {
                tracing::warn!(peer = self.peer, cause = %err, "cannot say that to the member");
                return Ended::Broke(None);
            }
        }
        loop {
            while !buffer.is_empty() {
                let chunk = buffer.split();
                tokio::select! {
                    written = write.write_all(&chunk) => if written.is_err() {
                        return Ended::Broke(None);
                    },
                    ended = self.ends.closing(breaks, reader) => return ended,
                }
            }
            let idle = streaming.is_none();
            let streamed = async {
                match &mut streaming {
                    Some((bytes, _)) => bytes.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                outgoing = self.queue.recv(), if idle => {
                    let Some(outgoing) = outgoing else { return Ended::Stopped };
                    let mut next = Some(outgoing);
                    while let Some(outgoing) = next.take() {
                        self.queued.fetch_sub(outgoing.item.queued_bytes(), Ordering::AcqRel);
                        if let Err(err) = self.take(outgoing, side, &mut buffer, &mut streaming) {
                            let peer = self.peer;
                            tracing::warn!(peer, cause = %err, "cannot say that to the member");
                            return Ended::Broke(None);
                        }
                        if streaming.is_none() && buffer.len() < WRITE_BATCH_BYTES {
                            next = self.queue.try_recv().ok();
                        }
                    }
                }
                piece = streamed => match piece {
                    Some(Streamed::Bytes(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Streamed::End) => {
                        if let Some((_, after)) = streaming.take() {
                            after.iter().for_each(|packet| packet.encode(&mut buffer));
                        }
                    }
                    None => {
                        let peer = self.peer;
                        tracing::info!(peer, "the snapshot broke off; closing the connection");
                        return Ended::Broke(None);
                    }
                },
                ended = self.ends.closing(breaks, reader) => return ended,
            }
        }
    }

    /// Appends what `outgoing` (taken off the queue) is on the wire to `buffer` (nothing
    /// if it is stale, or not for this end of the connection); a snapshot starts
    /// `streaming`.
    fn take(
        &mut self,
        outgoing: Outgoing,
        side: &Mutex<QuorumEnd>,
        buffer: &mut BytesMut,
        streaming: &mut Option<(mpsc::Receiver<Streamed>, Vec<QuorumPacket>)>,
    ) -> Result<(), TranslateError> {
        if outgoing.breaks < self.breaks {
            return Ok(());
        }
        let (frame, snapshot) = match outgoing.item {
            Item::Frame(frame) => (frame, None),
            Item::Snapshot(frame, bytes) => (frame, Some(bytes)),
        };
        let mut packets = Vec::new();
        let mut marker = None;
        match side.lock().translate_out(frame, &mut packets, &mut marker) {
            Ok(()) => {}
            Err(TranslateError::NotOnThisSide(what)) => {
                tracing::debug!(peer = self.peer, what, "not for this end of the connection");
                return Ok(());
            }
            Err(err) => return Err(err),
        }
        match (marker, snapshot) {
            (Some(at), Some(bytes)) => {
                let after = packets.split_off(at);
                packets.iter().for_each(|packet| packet.encode(buffer));
                *streaming = Some((bytes, after));
            }
            _ => packets.iter().for_each(|packet| packet.encode(buffer)),
        }
        Ok(())
    }
}

impl Ends {
    /// Returns once the connection must end: its reader stopped, the driver asked for
    /// it to close, or the member dialled again.
    async fn closing(&mut self, breaks: u64, reader: &mut Option<JoinHandle<Ended>>) -> Ended {
        loop {
            let read = async {
                match reader.as_mut() {
                    Some(reading) => reading.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = read => {
                    *reader = None;
                    return read.unwrap_or(Ended::Broke(None));
                }
                changed = self.reset.changed() => {
                    if changed.is_err() {
                        return Ended::Stopped;
                    }
                    if *self.reset.borrow_and_update() == breaks {
                        tracing::info!(peer = self.peer, "closing the quorum connection");
                        return Ended::Broke(None);
                    }
                }
                accepted = next_accepted(&mut self.accepted, &mut self.accepting) => {
                    if let Some(accepted) = accepted {
                        let peer = self.peer;
                        tracing::info!(peer, "the member dialled again; new connection");
                        return Ended::Broke(Some(accepted));
                    }
                }
            }
        }
    }
}

/// The next connection a listener hands over; `None` (once) if none ever will.
async fn next_accepted(
    accepted: &mut mpsc::Receiver<Accepted>,
    accepting: &mut bool,
) -> Option<Accepted> {
    if !*accepting {
        return std::future::pending().await;
    }
    let next = accepted.recv().await;
    *accepting = next.is_some();
    next
}

/// Passes what a connection brings on to the driver until the connection breaks or
/// breaks the protocol ([`Ended::Broke`]), or the driver is gone ([`Ended::Stopped`]).
async fn read_packets(
    mut frames: FramedRead<PeerReader, QuorumDecoder>,
    first: Option<QuorumPacket>,
    side: Arc<Mutex<QuorumEnd>>,
    peer: ServerId,
    events: mpsc::Sender<LinkEvent>,
) -> Ended {
    let mut incoming = first.map(|packet| Ok(Incoming::Packet(packet)));
    let mut out = Vec::new();
    loop {
        let next = match incoming.take() {
            Some(next) => Some(next),
            None => frames.next().await,
        };
        match next {
            Some(Ok(Incoming::Packet(packet))) => {
                if let Err(err) = side.lock().translate_in(packet, &mut out) {
                    tracing::warn!(peer, cause = %err, "a bad packet from a member; reconnecting");
                    return Ended::Broke(None);
                }
            }
            Some(Ok(Incoming::Pieces { zxid, index, pieces })) => {
                out.push(PeerFrame::SnapshotPieces { zxid, index, pieces });
            }
            Some(Err(err)) => {
                tracing::warn!(peer, cause = %err, "quorum connection failed");
                return Ended::Broke(None);
            }
            None => return Ended::Broke(None),
        }
        for frame in out.drain(..) {
            if events.send(LinkEvent::Frame { from: peer, frame }).await.is_err() {
                return Ended::Stopped;
            }
        }
    }
}

/// What a quorum connection brings.
pub(super) enum Incoming {
    /// A packet.
    Packet(QuorumPacket),
    /// The next pieces of the snapshot that follows a SNAP.
    Pieces {
        /// The SNAP's zxid.
        zxid: Zxid,
        /// The batch's place in the snapshot, from 0.
        index: u32,
        /// The sessions or nodes.
        pieces: Vec<TransferPiece>,
    },
}

/// Why a quorum connection's bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// A malformed packet.
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// A malformed snapshot after a SNAP.
    #[error(transparent)]
    Snapshot(#[from] ZkFileError),
    /// The connection failed.
    #[error("the quorum connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Cuts a quorum connection's stream into packets and, after a leader's SNAP, into the
/// pieces of the snapshot that runs on the stream until the packets resume.
pub(super) struct QuorumDecoder {
    packets: PacketCodec,
    /// The snapshot being read: its reader, its zxid and the next batch's index.
    snapshot: Option<(TransferReader, Zxid, u32)>,
}

impl QuorumDecoder {
    pub(super) fn new(data_len_max: usize) -> QuorumDecoder {
        QuorumDecoder { packets: PacketCodec::new(data_len_max), snapshot: None }
    }
}

impl Decoder for QuorumDecoder {
    type Item = Incoming;
    type Error = ReadError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadError> {
        if let Some((reader, zxid, index)) = &mut self.snapshot {
            if buf.is_empty() {
                return Ok(None);
            }
            let bytes = buf.split();
            let mut pieces = Vec::new();
            let rest = reader.feed(&bytes, &mut pieces)?;
            let batch = Incoming::Pieces { zxid: *zxid, index: *index, pieces };
            *index += 1;
            if let Some(rest) = rest {
                buf.extend_from_slice(&rest);
                self.snapshot = None;
            }
            return Ok(Some(batch));
        }
        let Some(packet) = self.packets.decode(buf)? else {
            return Ok(None);
        };
        if packet.kind == PacketType::Snap {
            self.snapshot = Some((TransferReader::new(), Zxid::new(packet.zxid), 0));
        }
        Ok(Some(Incoming::Packet(packet)))
    }
}

/// Accepts learners' connections and hands each to the link of the member its
/// FOLLOWERINFO or OBSERVERINFO names.
pub(super) async fn accept(
    listener: TcpListener,
    config: Arc<LinkConfig>,
    links: BTreeMap<ServerId, mpsc::Sender<Accepted>>,
) {
    let links = Arc::new(links);
    let security = config.security.clone();
    accept_each(listener, "quorum", security, move |mut stream, address| {
        let (links, config) = (links.clone(), config.clone());
        async move {
            let mut read = BytesMut::new();
            if let Some(sasl) = &config.sasl {
                let authenticated = authenticate::as_server(&mut stream, sasl, &mut read);
                match tokio::time::timeout(SECURE_TIMEOUT, authenticated).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(%address, cause = %err, "a learner refused; closing it");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%address, "a learner did not authenticate in time");
                        return;
                    }
                }
            }
            let mut frames = FramedRead::new(stream, PacketCodec::new(config.packet_data_max));
            frames.read_buffer_mut().extend_from_slice(&read);
            let first = tokio::time::timeout(CONNECT_TIMEOUT, frames.next()).await;
            let first = match first {
                Ok(Some(Ok(packet)))
                    if matches!(
                        packet.kind,
                        PacketType::FollowerInfo | PacketType::ObserverInfo
                    ) =>
                {
                    packet
                }
                _ => {
                    tracing::warn!(%address, "a quorum connection without FOLLOWERINFO; closed");
                    return;
                }
            };
            let info = first.data.as_deref().map(LearnerInfo::decode);
            let Some(Ok(info)) = info else {
                tracing::warn!(%address, "a FOLLOWERINFO without the learner's id; closing it");
                return;
            };
            let Some(link) = links.get(&info.server_id) else {
                tracing::warn!(%address, id = info.server_id, "a learner that is no member");
                return;
            };
            let leftover = frames.read_buffer().clone();
            let stream = frames.into_inner();
            let _ = link.send(Accepted { stream, first, leftover }).await;
        }
    })
    .await;
}
