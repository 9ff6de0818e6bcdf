//! One client connection: the handshake (or a four-letter word), then the request loop.
//!
//! Requests are handled in the order they arrive. Writes go to the driver at once and
//! pipeline freely; a read waits until every earlier write of the connection has been
//! answered, then runs against the tree right here, so each session sees its own writes
//! and replies leave in request order (ZooKeeper's per-session FIFO guarantee). Under
//! `zkrs.linearizableReads` a read also waits for a round of the read barrier that began
//! after it arrived (`server::read_barrier`); one round covers every request queued when
//! its ticket was taken.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, OptionFuture};
use futures_util::FutureExt;
use jute::records::SetSaslResponse;
use jute::Code;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::watch;
use tracing::Instrument;

use crate::proto::four_letter::FourLetterWord;
use crate::proto::reply;
use crate::proto::{Frame, Request, RequestError};
use crate::sasl::{DigestError, DigestMd5Server, Step};
use crate::server::client_frame::{ClientInput, FrameError, FrameReader, FrameTooLong};
use crate::server::handshake::{admit, Admission, Refusal};
use crate::server::listener::{opening, Opening, Security, TLS_HANDSHAKE_RECORD};
use crate::server::outbox::OUTBOX_BYTES_MAX;
use crate::server::pipeline::Input;
use crate::server::read_barrier::{Finished, Passage, ReadBarrier, Ticket};
use crate::server::reads;
use crate::server::registry::{Connection, ConnectionLimits, TooManyConnections, WritePermit};
use crate::server::request_queue::{Queued, RequestQueue};
use crate::server::request_throttle::{self, LargeRequestRejected};
use crate::server::socket_writer::{SocketWriter, Wrote};
use crate::server::{four_letter, Mode, Shared};
use crate::session::auth::{authenticate, sasl_ids, x509_ids};
use crate::tls::subject::rfc2253_subject;
use crate::tls::ServerTls;
use crate::txn::{SessionId, Zxid};

/// How long a new connection may take to send its handshake (ZooKeeper's
/// `sessionlessCnxnTimeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing connection may take to write what is queued: a client that stops
/// reading would otherwise hold the connection, and its socket, for ever.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests a connection reads in a row before it writes the replies waiting.
const WRITE_AFTER_FRAMES: u32 = 64;

/// Requests read but not yet dispatched, per connection; reading stops beyond it.
const QUEUED_REQUESTS_MAX: usize = 1000;

/// Writes sent to the driver and not yet answered, per connection.
const WRITES_IN_FLIGHT_MAX: u64 = 1000;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error(transparent)]
    FrameLength(#[from] FrameTooLong),
    #[error("malformed frame: {0}")]
    Malformed(#[from] jute::DecodeError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client closed the connection")]
    ClosedByClient,
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(std::io::Error),
    #[error("no TLS handshake within {0:?}")]
    TlsHandshakeTimeout(Duration),
    #[error("the client certificate's subject cannot be read")]
    CertificateSubject,
    #[error("a plaintext client on a TLS-only port")]
    PlaintextOnTlsPort,
    #[error("a TLS client on a plaintext port")]
    TlsOnPlaintextPort,
    #[error("session expired or closed")]
    SessionGone,
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    #[error("authentication failed for scheme {0}")]
    AuthFailed(String),
    #[error("a request from a client authenticated only by {0:?}, none of enforce.auth.schemes")]
    AuthRequired(Vec<String>),
    #[error("SASL authentication failed: {0}")]
    SaslFailed(#[from] DigestError),
    #[error("the server is shutting down")]
    ServerStopping,
    #[error("the client left more than {} MiB of replies unread", OUTBOX_BYTES_MAX >> 20)]
    TooSlow,
    #[error("this member could not confirm it is up to date for a read")]
    ReadBarrierFailed,
    #[error(transparent)]
    LargeRequest(#[from] LargeRequestRejected),
    #[error("a request waited at the request throttle past its session's timeout")]
    LateRequest,
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl ConnectionError {
    /// Whether the client closed its end while the server had not chosen to close:
    /// ZooKeeper counts each such end in `connection_drop_count` (a read at the end of
    /// the stream, between frames or within one).
    fn closed_by_client(&self) -> bool {
        match self {
            ConnectionError::ClosedByClient => true,
            ConnectionError::Io(err) => err.kind() == std::io::ErrorKind::UnexpectedEof,
            _ => false,
        }
    }
}

impl From<FrameError> for ConnectionError {
    fn from(err: FrameError) -> ConnectionError {
        match err {
            FrameError::Io(err) => ConnectionError::Io(err),
            FrameError::TooLong(err) => ConnectionError::FrameLength(err),
        }
    }
}

/// Registers a connection accepted from `peer`, or refuses it (`None`, with a WARN line)
/// past `maxClientCnxns` or `maxCnxns`. Before the connection's task starts, so that the
/// task holds the registered connection only, not the address and limits it came with.
pub fn register(shared: &Shared, peer: SocketAddr, security: &Security) -> Option<Arc<Connection>> {
    let limits = ConnectionLimits {
        per_ip_max: shared.config.max_client_cnxns,
        total_max: shared.config.max_cnxns,
    };
    let on_secure_port = matches!(security, Security::Tls(_));
    match shared.registry.open(peer, on_secure_port, limits, shared.clock.wall_ms()) {
        Ok(connection) => Some(connection),
        Err(TooManyConnections::FromAddress) => {
            let limit = limits.per_ip_max;
            tracing::warn!(peer = %peer, limit, "too many connections from this address");
            None
        }
        Err(TooManyConnections::InAll) => {
            let limit = limits.total_max;
            tracing::warn!(peer = %peer, limit, "too many connections in all (maxCnxns)");
            None
        }
    }
}

/// Serves a registered connection, in a task of its own, until it closes: over TLS when
/// `security` says so.
pub fn spawn_serving(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    stream: TcpStream,
    security: Security,
) {
    // At debug level only: an enabled span is kept by the log subscriber for the
    // connection's life, about 550 bytes an idle session, a fifth of what one costs.
    // The lines logged at info and above name the peer themselves. And only when it is
    // enabled: a disabled span still takes 40 bytes of every connection's task.
    let span = tracing::debug_span!("connection", peer = %connection.peer, id = connection.id);
    let serving = serve(shared, connection, stream, security);
    if span.is_disabled() {
        tokio::spawn(serving);
    } else {
        tokio::spawn(serving.instrument(span));
    }
}

/// The connection's task. Not an `async fn`, nor are the ones it awaits for the
/// connection's life: the future of one keeps its arguments twice (as arguments and as
/// the body's locals), and a connection's task is its largest cost. A plain connection's
/// task is the request loop's future alone: the stream is split before it starts.
fn serve(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    stream: TcpStream,
    security: Security,
) -> impl Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    if let Security::Plain = security {
        let (read_half, write_half) = stream.into_split();
        return Either::Left(run(shared, connection, read_half, write_half));
    }
    // Boxed: a TLS stream is large, and inline it would size every plain connection's
    // task as well.
    Either::Right(Box::pin(async move {
        match security.tls_for(&stream).await {
            None => {
                let (read_half, write_half) = stream.into_split();
                run(shared, connection, read_half, write_half).await
            }
            Some(tls) => match accept_tls(&shared, &connection, &tls, stream).await {
                Ok(stream) => {
                    let (read_half, write_half) = tokio::io::split(stream);
                    run(shared, connection, read_half, write_half).await
                }
                Err(err) => ended(&shared, &connection, Err(err)),
            },
        }
    }))
}

/// Logs how a connection ended, and takes it out of the server's tables.
fn ended(shared: &Shared, connection: &Connection, outcome: Result<(), ConnectionError>) {
    if outcome.as_ref().is_err_and(ConnectionError::closed_by_client) {
        shared.stats.connection_drops.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(ConnectionError::HandshakeTimeout(_)) = outcome {
        shared.stats.sessionless_expired.fetch_add(1, Ordering::Relaxed);
    }
    match outcome {
        Ok(()) => tracing::debug!("connection closed"),
        Err(
            err @ (ConnectionError::Io(_)
            | ConnectionError::ClosedByClient
            | ConnectionError::SessionGone
            | ConnectionError::ServerStopping
            | ConnectionError::ReadBarrierFailed
            | ConnectionError::Refused(Refusal::NotServing)),
        ) => {
            tracing::debug!(cause = %err, "connection closed")
        }
        Err(err @ ConnectionError::Refused(Refusal::GlobalSessionWhileReadOnly(_))) => {
            tracing::info!(peer = %connection.peer, cause = %err, "closing connection")
        }
        Err(err) => tracing::warn!(peer = %connection.peer, cause = %err, "closing connection"),
    }
    shared.registry.close(connection);
    shared.database.remove_watcher(connection.id);
}

/// The TLS handshake, then the identity a client certificate gives: `x509:<subject>`,
/// and `super` when the subject is `X509AuthenticationProvider.superUser`. A handshake
/// that fails (or never comes, or is not TLS) counts as ZooKeeper's Netty connection
/// factory counts it: in `unsuccessful_handshake` and `auth_failed_count`.
async fn accept_tls(
    shared: &Shared,
    connection: &Connection,
    tls: &ServerTls,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, ConnectionError> {
    let stream = match tls_handshake(tls, stream).await {
        Ok(stream) => stream,
        Err(err) => {
            shared.stats.unsuccessful_handshakes.fetch_add(1, Ordering::Relaxed);
            shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
            return Err(err);
        }
    };
    if let Some(chain) = stream.get_ref().1.peer_certificates() {
        let Some(subject) = chain.first().and_then(|certificate| rfc2253_subject(certificate))
        else {
            shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
            return Err(ConnectionError::CertificateSubject);
        };
        let peer = connection.peer;
        tracing::info!(peer = %peer, id = %subject, "authenticated by client certificate (x509)");
        connection.add_auth(x509_ids(subject, shared.config.x509_super_user.as_deref()));
    }
    Ok(stream)
}

/// The server's side of a TLS handshake on `stream`.
async fn tls_handshake(
    tls: &ServerTls,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, ConnectionError> {
    match opening(&stream, HANDSHAKE_TIMEOUT).await? {
        Opening::Silent => return Err(ConnectionError::TlsHandshakeTimeout(HANDSHAKE_TIMEOUT)),
        Opening::Plain => return Err(ConnectionError::PlaintextOnTlsPort),
        Opening::Tls | Opening::Nothing => {}
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| ConnectionError::TlsHandshakeTimeout(HANDSHAKE_TIMEOUT))?
        .map_err(ConnectionError::TlsHandshake)
}

/// Runs an accepted connection until it closes: the request loop, which also writes
/// the replies, then what is left to write; then [`ended`].
fn run<R, W>(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    read_half: R,
    write_half: W,
) -> impl Future<Output = ()> + Send
where
    R: ClientInput + Send,
    W: AsyncWrite + Unpin + Send,
{
    // Made before the task's future, which so holds them and not also the halves.
    let mut frames = FrameReader::new(read_half, shared.config.jute_max_buffer);
    let mut writer = SocketWriter::new(write_half);
    async move {
        let outcome = read_loop(&shared, &connection, &mut frames, &mut writer).await;
        drop(frames);
        connection.outbox.close();
        // Boxed with the outcome: the flush's timer, and the outcome beside it, inline
        // would size the task for the connection's life.
        let outcome = Box::pin(async {
            // A client cut off for not reading would not take the rest either.
            if !matches!(outcome, Err(ConnectionError::TooSlow)) {
                let finish = writer.finish(&connection.outbox);
                let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, finish).await;
            }
            outcome
        })
        .await;
        ended(&shared, &connection, outcome);
    }
}

/// The bytes a frame took on the wire, its 4-byte length prefix included, as ZooKeeper
/// counts `bytes_received_count`.
fn frame_bytes(body: &[u8]) -> u64 {
    body.len() as u64 + 4
}

/// Reads requests and writes what the outbox gathers, in one task: whatever order a
/// client reads and writes in (one that sends a thousand requests before reading any is
/// common), replies keep going out while requests come in.
// Not an `async fn`, which would keep its arguments twice: see `serve`.
#[allow(clippy::manual_async_fn)]
fn read_loop<'a, R: ClientInput + 'a, W: AsyncWrite + Unpin>(
    shared: &'a Arc<Shared>,
    connection: &'a Arc<Connection>,
    frames: &'a mut FrameReader<R>,
    writer: &'a mut SocketWriter<W>,
) -> impl Future<Output = Result<(), ConnectionError>> + 'a {
    async move {
        // The opening's waits are boxed, as the handshake below: their timers, inline, would
        // size the task for the connection's life.
        let first = Box::pin(tokio::time::timeout(HANDSHAKE_TIMEOUT, frames.peek_header()))
            .await
            .map_err(|_| ConnectionError::HandshakeTimeout(HANDSHAKE_TIMEOUT))??;
        shared.stats.packets_received.fetch_add(1, Ordering::Relaxed);
        if first[0] == TLS_HANDSHAKE_RECORD {
            return Err(ConnectionError::TlsOnPlaintextPort);
        }
        if let Some(word) = FourLetterWord::parse(first) {
            shared.stats.bytes_received.fetch_add(4, Ordering::Relaxed);
            // Counted on the connection too, so `stat` and `cons` list it with
            // `recved=1`, as ZooKeeper does.
            connection.stats.lock().received += 1;
            four_letter::respond(shared, connection, word);
            return Ok(());
        }
        let connect = match Box::pin(tokio::time::timeout(HANDSHAKE_TIMEOUT, frames.next())).await {
            Err(_) => return Err(ConnectionError::HandshakeTimeout(HANDSHAKE_TIMEOUT)),
            Ok(None) => return Err(ConnectionError::ClosedByClient),
            Ok(Some(Err(err))) => return Err(err.into()),
            Ok(Some(Ok(connect))) => connect,
        };
        shared.stats.bytes_received.fetch_add(frame_bytes(&connect), Ordering::Relaxed);
        connection.stats.lock().received += 1;
        // Boxed: the handshake's state is needed once, and inline it would stay in every
        // connection's task for the connection's life. It takes the connect request along,
        // which shares the read buffer's allocation: kept here, it would pin that for life.
        let Some(session_id) = Box::pin(handshake(shared, connection, connect)).await? else {
            return Ok(());
        };

        let mut barrier_ends =
            shared.config.linearizable_reads.then(|| shared.read_barrier.subscribe());
        let mut session = Session {
            shared,
            connection,
            session_id,
            queue: RequestQueue::new(connection, &shared.large_requests),
            reads: ReadGate::default(),
            sasl: None,
            front_throttled: false,
        };
        let mut frames_since_write = 0;
        loop {
            // Read before the dispatch looks at what is in flight: a write that completes
            // after that look wakes the wait below.
            let completed = connection.writes_completed();
            session.dispatch().await?;
            let ticket = session.reads.waiting.map(|(ticket, _)| ticket);
            let outstanding = session.queue.len() as u64 + connection.writes_in_flight();
            let readable = session.queue.len() < QUEUED_REQUESTS_MAX
                && request_throttle::may_read(
                    &shared.config.request_throttle,
                    shared.registry.load(),
                    outstanding,
                );
            // Boxed, and only while a read waits for the barrier: inline, the wait would size
            // every connection's task, barrier or not.
            let mut barrier =
                ticket.map(|ticket| Box::pin(barrier_passage(barrier_ends.as_mut(), ticket)));
            // Replies are written once the requests that came together are read, so they
            // leave together; a client that never stops sending still gets its replies
            // every WRITE_AFTER_FRAMES requests. A try that finds the socket full leaves a
            // no-op waker registered, which the select below replaces before the task waits:
            // it polls every arm before it waits.
            if frames_since_write >= WRITE_AFTER_FRAMES {
                if let Some(wrote) = writer.write_some(&connection.outbox).now_or_never() {
                    frames_since_write = 0;
                    if let Some(end) = written_to_the_end(wrote?) {
                        return end;
                    }
                }
            }
            tokio::select! {
                biased;
                () = connection.closing() => return Ok(()),
                passage = OptionFuture::from(barrier.as_mut()), if barrier.is_some() => {
                    if let Some(passage) = passage {
                        session.reads.ended(passage)?;
                    }
                }
                frame = frames.next(), if readable => match frame {
                    None => return Err(ConnectionError::ClosedByClient),
                    Some(Err(err)) => return Err(err.into()),
                    Some(Ok(frame)) => {
                        frames_since_write += 1;
                        session.receive(frame)?;
                    }
                },
                wrote = writer.write_some(&connection.outbox) => {
                    frames_since_write = 0;
                    if let Some(end) = written_to_the_end(wrote?) {
                        return end;
                    }
                }
                () = connection.writes_completed_beyond(completed),
                    if !session.queue.is_empty() || !readable => {}
            }
        }
    }
}

/// How a running connection ends after a write step, if it does: its outbox closed
/// when the server asked it to close, or overflowed.
fn written_to_the_end(wrote: Wrote) -> Option<Result<(), ConnectionError>> {
    match wrote {
        Wrote::Bytes => None,
        Wrote::Everything => Some(Ok(())),
        Wrote::Overflowed => Some(Err(ConnectionError::TooSlow)),
    }
}

/// Reads the connect request and establishes or resumes the session. `None` when the
/// connection should close after the reply (an expired or unknown session).
async fn handshake(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    body: Bytes,
) -> Result<Option<SessionId>, ConnectionError> {
    match admit(shared, connection, &body)? {
        Admission::Create(input) => {
            let permit = tokio::select! {
                permit = shared.registry.load().permit() => permit,
                () = connection.closing() => return Ok(None),
            };
            connection.submit_write(permit);
            shared.driver.send(input).await.map_err(|_| ConnectionError::ServerStopping)?;
            // The driver binds the session and answers; wait for it like for any write.
            tokio::select! {
                () = connection.writes_completed_beyond(0) => {}
                () = connection.closing() => return Ok(None),
            }
            Ok(Some(connection.session_id()))
        }
        Admission::Resumed { session_id, attach } => {
            if let Some(attach) = attach {
                shared.driver.send(attach).await.map_err(|_| ConnectionError::ServerStopping)?;
            }
            Ok(Some(session_id))
        }
        Admission::Expired => Ok(None),
    }
}

/// Waits for the end of the barrier round `ticket` waits for.
async fn barrier_passage(ends: Option<&mut watch::Receiver<Finished>>, ticket: Ticket) -> Passage {
    match ends {
        Some(ends) => ReadBarrier::wait(ends, ticket).await,
        None => std::future::pending().await,
    }
}

/// The request loop's state for an established session.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    connection: &'a Arc<Connection>,
    session_id: SessionId,
    /// Requests not yet dispatched.
    queue: RequestQueue<'a>,
    /// Under `zkrs.linearizableReads`, which queued requests a barrier round covers.
    reads: ReadGate,
    /// The connection's SASL exchange, once the client has begun one. Boxed: few
    /// connections begin one, and inline it would size every connection's task.
    sasl: Option<Box<DigestMd5Server>>,
    /// Whether the request at the front waited too long at the request throttle and is
    /// to be answered THROTTLEDOP.
    front_throttled: bool,
}

/// A write waiting for room in the driver's queue.
type WaitForRoom<'a> = Pin<Box<dyn Future<Output = Result<(), SendError<Input>>> + Send + 'a>>;

/// Where a request stands after its turn at the request throttle.
enum Turn<'a> {
    /// It goes on, holding this place among the writes in process.
    Go(WritePermit<'a>),
    /// It waited too long: answer THROTTLEDOP.
    Throttled,
    /// The connection is closing; the request goes with it.
    Closing,
}

/// Where a session's reads stand with the read barrier: a round covers the requests
/// queued when its ticket was taken, since it began after they arrived.
#[derive(Debug, Default)]
struct ReadGate {
    /// The round the front of the queue waits for, and how many queued requests it
    /// covers.
    waiting: Option<(Ticket, usize)>,
    /// Requests at the front of the queue that a passed round covers.
    covered: usize,
}

impl ReadGate {
    /// A request left the front of the queue.
    fn popped(&mut self) {
        self.covered = self.covered.saturating_sub(1);
    }

    /// The round waited for ended.
    fn ended(&mut self, passage: Passage) -> Result<(), ConnectionError> {
        let covers = self.waiting.take().map_or(0, |(_, covers)| covers);
        match passage {
            Passage::Passed => {
                self.covered = covers;
                Ok(())
            }
            Passage::Failed => Err(ConnectionError::ReadBarrierFailed),
        }
    }
}

impl<'a> Session<'a> {
    fn receive(&mut self, body: Bytes) -> Result<(), ConnectionError> {
        self.shared.stats.packets_received.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.bytes_received.fetch_add(frame_bytes(&body), Ordering::Relaxed);
        self.connection.stats.lock().received += 1;
        let now_us = self.shared.clock.now_us();
        let now_ms = now_us / 1000;
        if !self.shared.sessions.lock().touch(self.session_id, now_ms) {
            return Err(ConnectionError::SessionGone);
        }
        let frame = Frame::decode(&body)?;
        match frame.request {
            Ok(Request::Auth(packet)) => {
                // Like ZooKeeper, auth is answered at once, ahead of queued requests.
                let digests = self.shared.config.digest.as_ref();
                match authenticate(&packet.scheme, &packet.auth, self.connection.peer.ip(), digests)
                {
                    Ok(ids) => {
                        self.connection.add_auth(ids);
                        let peer = self.connection.peer;
                        tracing::info!(peer = %peer, scheme = %packet.scheme, "auth success");
                        self.reply_now(reply::status(frame.xid, Zxid::ZERO, Code::Ok));
                    }
                    Err(code) => {
                        // Not in auth_failed_count: ZooKeeper counts only failed TLS
                        // handshakes there (checked beside it).
                        self.reply_now(reply::status(frame.xid, Zxid::ZERO, code));
                        self.close_after_refusal();
                        return Err(ConnectionError::AuthFailed(packet.scheme));
                    }
                }
            }
            // Like ZooKeeper, a SASL token is answered at once, ahead of queued requests.
            Ok(Request::Sasl(packet)) if self.shared.config.sasl.is_some() => {
                self.sasl_step(frame.xid, packet.token.as_deref().unwrap_or_default())?;
            }
            _ if !self.authenticated_as_enforced() => {
                // As ZooKeeper's AuthenticationHelper: the reply, then the connection
                // closes; the session stays until it expires.
                let code = Code::SessionClosedRequireSaslAuth;
                self.reply_now(reply::status(frame.xid, Zxid::ZERO, code));
                self.close_after_refusal();
                return Err(ConnectionError::AuthRequired(self.connection.auth().schemes()));
            }
            request => {
                self.queue.release_answered_writes();
                let settings = &self.shared.config.request_throttle;
                let large =
                    self.shared.large_requests.hold(settings, body.len()).inspect_err(|_| {
                        self.shared.stats.large_requests_rejected.fetch_add(1, Ordering::Relaxed);
                    })?;
                let xid = frame.xid;
                self.queue.push_back(Queued {
                    xid,
                    request,
                    received_us: now_us,
                    frame: body,
                    large,
                });
            }
        }
        Ok(())
    }

    /// Sends a reply the connection's task makes itself (auth, SASL, refusals), counted
    /// as ZooKeeper's `sendResponse` counts every reply: a packet sent, and its size.
    fn reply_now(&self, frame: Bytes) {
        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.responded(frame.len());
        self.connection.send(frame);
    }

    /// Closes the connection after the reply just sent to a failed `auth` or SASL
    /// exchange, or to a client that did not authenticate as enforced. ZooKeeper queues
    /// a close packet there, which it counts as a packet sent (checked beside it).
    fn close_after_refusal(&self) {
        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        self.connection.request_close();
    }

    /// Whether the connection has authenticated with a scheme the server enforces
    /// (`enforce.auth.schemes`), or nothing is enforced.
    fn authenticated_as_enforced(&self) -> bool {
        let Some(schemes) = &self.shared.config.enforced_auth_schemes else {
            return true;
        };
        self.connection.auth().ids().iter().any(|id| schemes.contains(&id.scheme))
    }

    /// One step of the connection's DIGEST-MD5 exchange. Completing it adds `sasl:<user>`
    /// (and `super` for `zookeeper.superUser`); failing it answers AUTHFAILED and closes
    /// the connection, as ZooKeeper does.
    fn sasl_step(&mut self, xid: i32, token: &[u8]) -> Result<(), ConnectionError> {
        let Some(users) = &self.shared.config.sasl else {
            return Ok(());
        };
        let step = match &mut self.sasl {
            Some(exchange) => exchange.step(token, &users.passwords),
            None => crate::sasl::new_exchange(crate::sasl::Service::CLIENTS).and_then(|exchange| {
                self.sasl.insert(Box::new(exchange)).step(token, &users.passwords)
            }),
        };
        let token = match step {
            Ok(Step::Challenge(token)) => token,
            Ok(Step::Done { token, identity }) => {
                let peer = self.connection.peer;
                tracing::info!(peer = %peer, id = %identity, "authenticated by SASL (DIGEST-MD5)");
                self.connection.add_auth(sasl_ids(identity, users.super_user.as_deref()));
                token
            }
            Err(err) => {
                // ZooKeeper's failure reply carries an empty token too, and tells a client
                // that must authenticate by SASL why it is disconnected. Like a failed
                // `auth`, not counted in auth_failed_count.
                let required = self.shared.config.enforced_auth_schemes.as_ref();
                let code = if required.is_some_and(|schemes| schemes.iter().any(|s| s == "sasl")) {
                    Code::SessionClosedRequireSaslAuth
                } else {
                    Code::AuthFailed
                };
                let empty = SetSaslResponse { token: None };
                let failed = reply::reply(xid, Zxid::ZERO, code, Some(&empty));
                self.reply_now(failed);
                self.close_after_refusal();
                return Err(err.into());
            }
        };
        let response = SetSaslResponse { token: Some(Bytes::from(token)) };
        self.reply_now(reply::ok(xid, Zxid::ZERO, &response));
        Ok(())
    }

    /// Sends writes to the driver and answers reads, in order, as far as the per-session
    /// ordering and the request throttle allow.
    async fn dispatch(&mut self) -> Result<(), ConnectionError> {
        self.queue.release_answered_writes();
        while let Some(front) = self.queue.front() {
            let (xid, received_us) = (front.xid, front.received_us);
            match &front.request {
                _ if self.front_throttled => {
                    if self.connection.writes_in_flight() > 0 {
                        return Ok(());
                    }
                    self.queue.pop_answered();
                    self.reads.popped();
                    self.front_throttled = false;
                    self.shared.stats.throttled_ops.fetch_add(1, Ordering::Relaxed);
                    let zxid = self.shared.database.last_applied_zxid();
                    self.reply_now(reply::status(xid, zxid, Code::ThrottledOp));
                }
                Ok(request) if request.is_write() => {
                    if self.connection.writes_in_flight() >= WRITES_IN_FLIGHT_MAX {
                        return Ok(());
                    }
                    let throttlable = !matches!(request, Request::CloseSession);
                    let permit = match self.take_turn(throttlable, received_us).await? {
                        Turn::Go(permit) => permit,
                        Turn::Throttled => {
                            self.front_throttled = true;
                            continue;
                        }
                        Turn::Closing => return Ok(()),
                    };
                    // Two statements on purpose: `if let Some(wait) = self.hand_on(..)?`
                    // would keep the call's temporaries alive across the await, 48 bytes
                    // more in every connection's task.
                    let wait = self.hand_on(permit)?;
                    if let Some(wait) = wait {
                        wait.await.map_err(|_| ConnectionError::ServerStopping)?;
                    }
                }
                _ if self.connection.writes_in_flight() > 0 => return Ok(()),
                Ok(request)
                    if request.reads_tree()
                        && self.reads.covered == 0
                        && self.needs_read_barrier() =>
                {
                    if self.reads.waiting.is_none() {
                        let ticket = self.shared.read_barrier.ticket(self.session_id);
                        self.reads.waiting = Some((ticket, self.queue.len()));
                    }
                    return Ok(());
                }
                Ok(request) => {
                    // Pings never wait: a client must hear from its server in time.
                    if !matches!(request, Request::Ping) {
                        match self.take_turn(true, received_us).await? {
                            Turn::Go(_) => {}
                            Turn::Throttled => {
                                self.front_throttled = true;
                                continue;
                            }
                            Turn::Closing => return Ok(()),
                        }
                    }
                    let Some(Queued { request: Ok(request), .. }) = self.queue.pop_answered()
                    else {
                        continue;
                    };
                    self.reads.popped();
                    self.read(xid, &request, received_us);
                }
                Err(RequestError::UnknownOpcode(op)) => {
                    let op = *op;
                    self.reply_now(reply::status(xid, Zxid::new(-1), Code::Unimplemented));
                    self.connection.request_close();
                    return Err(ConnectionError::UnknownOpcode(op));
                }
                Err(RequestError::Malformed(op, err)) => {
                    tracing::debug!(op = ?op, cause = %err, "malformed request");
                    let zxid = self.shared.database.last_applied_zxid();
                    self.reply_now(reply::status(xid, zxid, Code::MarshallingError));
                    self.queue.pop_answered();
                    self.reads.popped();
                }
            }
        }
        Ok(())
    }

    /// Takes the write at the front of the queue, which holds its turn at the request
    /// throttle, and hands it to the driver at once while the driver's queue has room;
    /// otherwise returns the wait for room, boxed (as the throttle's, see `take_turn`).
    /// Not `async`: neither the request nor the wait is then inline, where they would
    /// size every connection's task for a step that does not wait.
    fn hand_on(
        &mut self,
        permit: WritePermit<'_>,
    ) -> Result<Option<WaitForRoom<'a>>, ConnectionError> {
        let Some(Queued { xid, request: Ok(request), frame, received_us, .. }) =
            self.queue.pop_write()
        else {
            return Ok(None);
        };
        self.reads.popped();
        tracing::debug!(xid, op = ?request.op(), "write");
        let input = Input::Request {
            connection: self.connection.clone(),
            session_id: self.session_id,
            xid,
            request,
            frame,
            auth: self.connection.auth(),
            received_us,
        };
        self.connection.submit_write(permit);
        match self.shared.driver.try_send(input) {
            Ok(()) => Ok(None),
            Err(TrySendError::Full(input)) => Ok(Some(Box::pin(self.shared.driver.send(input)))),
            Err(TrySendError::Closed(_)) => Err(ConnectionError::ServerStopping),
        }
    }

    /// The front request's turn at the request throttle: at once while fewer writes
    /// than `request_throttle_max_requests` are in process, else after every request
    /// that began waiting before it. One that waited past `throttled_op_wait_time` is
    /// answered THROTTLEDOP (unless not `throttlable`), and one that waits past its
    /// session's timeout under `request_stale_latency_check` goes with its connection.
    /// A read gives its permit back as soon as it is answered.
    ///
    /// The wait is boxed: its timer and permit futures, inline, would size every
    /// connection's task for a wait most connections never make.
    async fn take_turn(
        &self,
        throttlable: bool,
        received_us: u64,
    ) -> Result<Turn<'a>, ConnectionError> {
        let shared: &'a Arc<Shared> = self.shared;
        if let Some(permit) = shared.registry.load().try_permit() {
            return Ok(Turn::Go(permit));
        }
        Box::pin(self.wait_turn(throttlable, received_us)).await
    }

    /// The front request's wait at the request throttle, once no permit was free.
    async fn wait_turn(
        &self,
        throttlable: bool,
        received_us: u64,
    ) -> Result<Turn<'a>, ConnectionError> {
        let shared: &'a Arc<Shared> = self.shared;
        let load = shared.registry.load();
        let settings = &self.shared.config.request_throttle;
        let stats = &self.shared.stats;
        stats.request_throttle_wait_count.fetch_add(1, Ordering::Relaxed);
        let started_ms = self.shared.clock.now_ms();
        let timeout_ms = u64::try_from(self.connection.session_timeout_ms()).unwrap_or(0);
        let late_in = Duration::from_millis(
            (received_us / 1000 + timeout_ms).saturating_sub(started_ms).saturating_add(1),
        );
        let stale = || {
            let dropped = self.queue.len() as u64;
            stats.stale_requests_dropped.fetch_add(dropped, Ordering::Relaxed);
        };
        tokio::select! {
            permit = load.permit() => {
                let waited_ms = self.shared.clock.now_ms().saturating_sub(started_ms);
                if request_throttle::waited_too_long(settings, waited_ms, throttlable) {
                    return Ok(Turn::Throttled);
                }
                Ok(Turn::Go(permit))
            }
            () = self.connection.closing() => {
                stale();
                Ok(Turn::Closing)
            }
            () = tokio::time::sleep(late_in), if settings.drop_late => {
                stale();
                Err(ConnectionError::LateRequest)
            }
        }
    }

    /// Whether a read must wait for the read barrier: `zkrs.linearizableReads` is on and
    /// this member serves as one of several. A standalone server has applied every write
    /// it acknowledged; a read-only member serves clients that chose stale reads.
    fn needs_read_barrier(&self) -> bool {
        self.shared.config.linearizable_reads
            && !matches!(*self.shared.mode.lock(), Mode::Standalone | Mode::ReadOnly)
    }

    fn read(&mut self, xid: i32, request: &Request, received_us: u64) {
        tracing::debug!(xid, op = ?request.op(), "read");
        let auth = self.connection.auth();
        let reader = reads::ReadRequester {
            connection: self.connection,
            session_id: self.session_id,
            auth: &auth,
            stats: &self.shared.stats,
        };
        let (zxid, size) = {
            let view = self.shared.database.read();
            reads::answer(&view, &reader, xid, request)
        };
        self.shared.stats.responded(size);
        let now_us = self.shared.clock.now_us();
        let stats = &self.shared.stats;
        let connection = &self.connection.stats;
        let latency_ms = stats.answered(connection, request.op(), xid, zxid, received_us, now_us);
        if request.reads_tree() {
            stats.read_latency.record(latency_ms);
            stats.reads.record(now_us.saturating_sub(received_us));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::registry::ConnectionLimits;
    use crate::server::Clock;
    use crate::session::SessionTracker;
    use crate::tree::Database;

    /// A plain connection's task is the largest cost of an idle session. tokio lays a
    /// task out as 80 bytes around its future, in steps of 128, and mimalloc gives a
    /// 128-aligned block 127 bytes of room: while this future stays within 536 bytes the
    /// task is a 640-byte layout in a 768-byte block; past it, every session costs 128
    /// bytes more.
    #[tokio::test]
    async fn a_plain_connection_task_stays_within_its_allocator_block() {
        let config = Config::parse("dataDir=/nonexistent\nclientPort=2181\n").expect("config");
        let sessions = SessionTracker::new(u64::from(config.tick_time_ms), SessionId::new(1));
        let database = Database::new(config.extended_types_enabled);
        let (shared, _inputs) = Shared::new(config, database, sessions, Clock::manual(0), true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, peer) = listener.accept().await.expect("accept");
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let connection = shared.registry.open(peer, false, limits, 0).expect("open");
        let task = serve(shared.clone(), connection, stream, Security::Plain);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 536, "a plain connection's future is {size} bytes");
    }
}
