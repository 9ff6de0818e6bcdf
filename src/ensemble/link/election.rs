//! Election connections, as ZooKeeper's `QuorumCnxManager` makes them: each opens with
//! the dialling member's initial message (its id and election address), then carries
//! length-prefixed notifications both ways. Of two members, the one with the higher id
//! keeps a connection it dialled, redialling whenever it breaks. The other, when it has
//! a vote to send and no connection, dials, introduces itself and hangs up; the member
//! with the higher id answers such a call by dialling back (so do ZooKeeper's members).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::codec::{Encoder, FramedRead};

use super::stream::{is_refusal, PeerReader};
use super::{
    accept_each, authenticate, LinkConfig, LinkEvent, PeerAddresses, CONNECT_TIMEOUT,
    SECURE_TIMEOUT,
};
use crate::config::quorum_sasl::QuorumSasl;
use crate::ensemble::frame::PeerFrame;
use crate::ensemble::zookeeper::election::{
    self as wire, ElectionCodec, InitialMessage, WireNotification, ADDRESSES_LEN_MAX,
};
use crate::tls::stream::Transport;
use crate::zab::{Message, Notification, ServerId};

/// Pauses between dials of an unreachable member, growing up to the last.
const REDIAL_PAUSES_MS: [u64; 4] = [50, 100, 250, 500];
/// Least time between two calls asking a member with a higher id to dial back.
const PROMPT_PAUSE: Duration = Duration::from_millis(250);

/// How the acceptor reaches one member's election link.
pub(super) struct ElectionHandle {
    /// Connections the member dialled, with what was read after their initial message.
    accepted: mpsc::Sender<(Transport, BytesMut)>,
    /// The member called to be dialled back.
    poke: Arc<Notify>,
}

/// The election connection to one member.
pub(super) struct ElectionLink {
    config: Arc<LinkConfig>,
    peer: ServerId,
    addresses: PeerAddresses,
    queue: mpsc::Receiver<Notification>,
    events: mpsc::Sender<LinkEvent>,
    accepted: mpsc::Receiver<(Transport, BytesMut)>,
    accepted_tx: mpsc::Sender<(Transport, BytesMut)>,
    poke: Arc<Notify>,
    last_prompt: Option<Instant>,
}

impl ElectionLink {
    /// The link to `peer`, whose election port is among `addresses`, sending what
    /// comes on `queue`.
    pub(super) fn new(
        config: Arc<LinkConfig>,
        peer: ServerId,
        addresses: PeerAddresses,
        queue: mpsc::Receiver<Notification>,
        events: mpsc::Sender<LinkEvent>,
    ) -> ElectionLink {
        let (accepted_tx, accepted) = mpsc::channel(4);
        ElectionLink {
            config,
            peer,
            addresses,
            queue,
            events,
            accepted,
            accepted_tx,
            poke: Arc::new(Notify::new()),
            last_prompt: None,
        }
    }

    /// What the acceptor needs to hand this link its connections.
    pub(super) fn handle(&self) -> ElectionHandle {
        ElectionHandle { accepted: self.accepted_tx.clone(), poke: self.poke.clone() }
    }

    fn keeps_dialled(&self) -> bool {
        self.config.my_id > self.peer
    }

    /// Keeps a connection to the member until the driver is gone.
    pub(super) async fn run(mut self) {
        let mut attempt = 0usize;
        let mut replacement = None;
        loop {
            let connection = if let Some(replacement) = replacement.take() {
                Some(replacement)
            } else if self.keeps_dialled() {
                let dialled = tokio::time::timeout(CONNECT_TIMEOUT, self.dial()).await;
                match dialled {
                    Ok(Ok(dialled)) => Some(dialled),
                    Ok(Err(err)) if is_refusal(&err) => {
                        let peer = self.peer;
                        tracing::warn!(peer, cause = %err, "election connection refused");
                        None
                    }
                    _ => None,
                }
            } else {
                tokio::select! {
                    accepted = self.accepted.recv() => match accepted {
                        Some(accepted) => Some(accepted),
                        None => return,
                    },
                    notification = self.queue.recv() => {
                        if notification.is_none() {
                            return;
                        }
                        self.prompt().await;
                        None
                    }
                }
            };
            match connection {
                Some((stream, leftover)) => {
                    attempt = 0;
                    tracing::debug!(peer = self.peer, "election connection up");
                    match self.serve(stream, leftover).await {
                        Served::Stopped => return,
                        Served::Broke => {}
                        Served::Replaced(stream, leftover) => {
                            replacement = Some((stream, leftover))
                        }
                    }
                    tracing::debug!(peer = self.peer, "election connection down");
                }
                None if self.keeps_dialled() => {
                    let pause = Duration::from_millis(REDIAL_PAUSES_MS[attempt.min(3)]);
                    attempt += 1;
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.poke.notified() => {}
                    }
                }
                None => {}
            }
        }
    }

    /// This member's introduction.
    fn initial_message(&self) -> BytesMut {
        let address = self.config.members.get(&self.config.my_id).map(|own| own.election);
        let message = InitialMessage {
            server_id: self.config.my_id,
            addresses: address.map(|address| address.to_string()).into_iter().collect(),
        };
        let mut bytes = BytesMut::new();
        message.encode(&mut bytes);
        bytes
    }

    /// Dials the member and introduces this one (authenticating under
    /// `quorum.auth.learnerRequireSasl`): the connection, and what was read after the
    /// exchange.
    async fn dial(&self) -> std::io::Result<(Transport, BytesMut)> {
        let (address, host) = (self.addresses.election, &self.addresses.host);
        let mut stream = self.config.security.dial(address, host).await?;
        stream.write_all(&self.initial_message()).await?;
        let mut leftover = BytesMut::new();
        if let Some(sasl) = &self.config.sasl {
            authenticate::as_learner(&mut stream, sasl, &mut leftover).await?;
        }
        Ok((stream, leftover))
    }

    /// Asks a member with a higher id to dial this one: an introduction, then hanging
    /// up. The vote that needed the connection is dropped; the core sends it again.
    async fn prompt(&mut self) {
        if self.last_prompt.is_some_and(|at| at.elapsed() < PROMPT_PAUSE) {
            return;
        }
        self.last_prompt = Some(Instant::now());
        if let Ok(Ok((mut stream, _))) = tokio::time::timeout(CONNECT_TIMEOUT, self.dial()).await {
            let _ = stream.shutdown().await;
        }
    }

    /// Carries notifications both ways until the connection breaks or is replaced.
    async fn serve(&mut self, stream: Transport, leftover: BytesMut) -> Served {
        let (read, mut write) = stream.into_split();
        let mut frames = FramedRead::new(read, ElectionCodec);
        frames.read_buffer_mut().extend_from_slice(&leftover);
        let mut reader = tokio::spawn(read_notifications(frames, self.peer, self.events.clone()));
        let mut buffer = BytesMut::new();
        let dials = self.keeps_dialled();
        let served = loop {
            let replaced = async {
                if dials {
                    std::future::pending().await
                } else {
                    self.accepted.recv().await
                }
            };
            tokio::select! {
                notification = self.queue.recv() => {
                    let Some(notification) = notification else { break Served::Stopped };
                    let wire = WireNotification::new(&notification, &self.config.membership_text);
                    let _ = ElectionCodec.encode(&wire, &mut buffer);
                    let written =
                        tokio::time::timeout(CONNECT_TIMEOUT, write.write_all(&buffer)).await;
                    buffer.clear();
                    if !matches!(written, Ok(Ok(()))) {
                        break Served::Broke;
                    }
                }
                read = &mut reader => {
                    return if read.unwrap_or(true) { Served::Broke } else { Served::Stopped };
                }
                accepted = replaced => break match accepted {
                    // The member dialled again: its newer connection is the one in use.
                    Some((stream, leftover)) => Served::Replaced(stream, leftover),
                    None => Served::Stopped,
                },
            }
        };
        reader.abort();
        let _ = reader.await;
        served
    }
}

/// How an election connection ended.
enum Served {
    /// It broke.
    Broke,
    /// The member dialled again; this is its new connection.
    Replaced(Transport, BytesMut),
    /// The driver is gone.
    Stopped,
}

/// Passes the notifications read from a connection on to the driver until the
/// connection breaks or sends what is not a notification (true), or the driver is gone
/// (false).
async fn read_notifications(
    mut frames: FramedRead<PeerReader, ElectionCodec>,
    peer: ServerId,
    events: mpsc::Sender<LinkEvent>,
) -> bool {
    loop {
        let payload = match frames.next().await {
            Some(Ok(payload)) => payload,
            Some(Err(err)) => {
                tracing::warn!(peer, cause = %err, "election connection failed");
                return true;
            }
            None => return true,
        };
        let notification = match wire::decode(&payload).and_then(|wire| wire.notification()) {
            Ok(notification) => notification,
            Err(err) => {
                tracing::warn!(peer, cause = %err, "a malformed notification; reconnecting");
                return true;
            }
        };
        let frame = PeerFrame::Zab(Message::Notification(notification));
        if events.send(LinkEvent::Frame { from: peer, frame }).await.is_err() {
            return false;
        }
    }
}

/// Accepts members' election connections and hands each to its link by the id in its
/// initial message; a member with a lower id is hung up on and dialled back.
pub(super) async fn accept(
    listener: TcpListener,
    config: Arc<LinkConfig>,
    links: BTreeMap<ServerId, ElectionHandle>,
) {
    let links = Arc::new(links);
    let my_id = config.my_id;
    let security = config.security.clone();
    accept_each(listener, "election", security, move |stream, address| {
        let (links, config) = (links.clone(), config.clone());
        async move {
            let introduced = tokio::time::timeout(
                SECURE_TIMEOUT,
                read_initial_message(stream, config.sasl.as_deref()),
            )
            .await;
            let (stream, message, leftover) = match introduced {
                Ok(Ok(introduced)) => introduced,
                Ok(Err(err)) => {
                    tracing::warn!(%address, cause = %err, "a bad election connection; closing it");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%address, "an election connection without an introduction");
                    return;
                }
            };
            let id = message.server_id;
            let Some(link) = links.get(&id).filter(|_| id != my_id) else {
                tracing::warn!(%address, id, "an election connection from an unknown member");
                return;
            };
            if id < my_id {
                drop(stream);
                link.poke.notify_one();
            } else {
                let _ = link.accepted.send((stream, leftover)).await;
            }
        }
    })
    .await;
}

/// Reads a dialling member's initial message, then authenticates it if `sasl` is on;
/// returns the message with the bytes read after it.
async fn read_initial_message(
    mut stream: Transport,
    sasl: Option<&QuorumSasl>,
) -> Result<(Transport, InitialMessage, BytesMut), wire::ElectionWireError> {
    let mut buf = BytesMut::with_capacity(64);
    loop {
        if let Some((message, len)) = InitialMessage::parse(&buf)? {
            let mut leftover = buf.split_off(len);
            if let Some(sasl) = sasl {
                authenticate::as_server(&mut stream, sasl, &mut leftover).await?;
            }
            return Ok((stream, message, leftover));
        }
        if buf.len() > ADDRESSES_LEN_MAX + 64 || stream.read_buf(&mut buf).await? == 0 {
            return Err(wire::ElectionWireError::Malformed("closed before its introduction"));
        }
    }
}
