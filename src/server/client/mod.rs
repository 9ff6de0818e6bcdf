//! One client connection: the handshake (or a four-letter word), then the request loop.
//!
//! Requests are handled in the order they arrive. Writes go to the driver at once and
//! pipeline freely; a read waits until every earlier write of the connection has been
//! answered, then runs against the tree right here, so each session sees its own writes
//! and replies leave in request order (ZooKeeper's per-session FIFO guarantee). Under
//! `zkrs.linearizableReads` a read also waits for a round of the read barrier that began
//! after it arrived (`server::read_barrier`); one round covers every request queued when
//! its ticket was taken.
//!
//! This module runs the connection (its handshake, reading frames, writing replies);
//! `session` holds an established session's queue and dispatches its requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, OptionFuture};
use futures_util::FutureExt;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::proto::four_letter::FourLetterWord;
use crate::sasl::DigestError;
use crate::server::client_frame::{ClientInput, FrameError, FrameReader, FrameTooLong};
use crate::server::handshake::{admit, Admission, Refusal};
use crate::server::listener::{opening, Opening, Security, TLS_HANDSHAKE_RECORD};
use crate::server::outbox::OUTBOX_BYTES_MAX;
use crate::server::registry::{Connection, ConnectionLimits, TooManyConnections};
use crate::server::request_throttle::{self, LargeRequestRejected};
use crate::server::socket_writer::{SocketWriter, Wrote};
use crate::server::{four_letter, Shared};
use crate::session::auth::x509_ids;
use crate::tls::subject::rfc2253_subject;
use crate::tls::ServerTls;
use crate::txn::SessionId;

mod session;

use session::{barrier_passage, Session};

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
    #[error("more TLS handshakes in progress than outstandingHandshake.limit")]
    TooManyTlsHandshakes,
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
        let Some(handshaking) = HandshakeSlot::take(&shared) else {
            return ended(&shared, &connection, Err(ConnectionError::TooManyTlsHandshakes));
        };
        match security.tls_for(&stream).await {
            None => {
                drop(handshaking);
                let (read_half, write_half) = stream.into_split();
                run(shared, connection, read_half, write_half).await
            }
            Some(tls) => {
                let accepted = accept_tls(&shared, &connection, &tls, stream).await;
                drop(handshaking);
                match accepted {
                    Ok(stream) => {
                        let (read_half, write_half) = tokio::io::split(stream);
                        run(shared, connection, read_half, write_half).await
                    }
                    Err(err) => ended(&shared, &connection, Err(err)),
                }
            }
        }
    }))
}

/// A TLS handshake counted in progress, from the connection's arrival on a TLS or
/// unified port until the handshake ends (or the client turns out plain), while
/// `zookeeper.netty.server.outstandingHandshake.limit` is set, as ZooKeeper's Netty
/// connection factory counts them.
struct HandshakeSlot<'a> {
    /// The count to give the slot back to; `None` when no limit is set.
    outstanding: Option<&'a AtomicU64>,
}

impl<'a> HandshakeSlot<'a> {
    /// A slot, or `None` (counted in `tls_handshake_exceeded`) when the limit's worth of
    /// handshakes are in progress.
    fn take(shared: &'a Shared) -> Option<HandshakeSlot<'a>> {
        let limit = shared.config.tls_handshake_limit;
        if limit == 0 {
            return Some(HandshakeSlot { outstanding: None });
        }
        let outstanding = &shared.stats.outstanding_tls_handshakes;
        if outstanding.fetch_add(1, Ordering::Relaxed) >= limit {
            outstanding.fetch_sub(1, Ordering::Relaxed);
            shared.stats.tls_handshakes_exceeded.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(HandshakeSlot { outstanding: Some(outstanding) })
    }
}

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        if let Some(outstanding) = self.outstanding {
            outstanding.fetch_sub(1, Ordering::Relaxed);
        }
    }
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
            | ConnectionError::TooManyTlsHandshakes
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
        let mut session = Session::new(shared, connection, session_id);
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
