//! An established session's request loop state: requests received in order, dispatched
//! one at a time (writes handed to the driver, reads answered here once every earlier
//! write of the session has been answered), SASL exchanges, and the read barrier's
//! rounds under `zkrs.linearizableReads`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jute::records::SetSaslResponse;
use jute::Code;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::watch;

use super::{frame_bytes, ConnectionError};
use crate::proto::reply;
use crate::proto::{Frame, Request, RequestError};
use crate::sasl::{DigestMd5Server, Step};
use crate::server::pipeline::Input;
use crate::server::read_barrier::{Finished, Passage, ReadBarrier, Ticket};
use crate::server::reads;
use crate::server::registry::{Connection, WritePermit};
use crate::server::request_queue::{Queued, RequestQueue};
use crate::server::request_throttle;
use crate::server::{Mode, Shared};
use crate::session::auth::{authenticate, sasl_ids};
use crate::txn::{SessionId, Zxid};

/// Writes sent to the driver and not yet answered, per connection.
const WRITES_IN_FLIGHT_MAX: u64 = 1000;

/// Waits for the end of the barrier round `ticket` waits for.
pub(super) async fn barrier_passage(
    ends: Option<&mut watch::Receiver<Finished>>,
    ticket: Ticket,
) -> Passage {
    match ends {
        Some(ends) => ReadBarrier::wait(ends, ticket).await,
        None => std::future::pending().await,
    }
}

/// The request loop's state for an established session.
pub(super) struct Session<'a> {
    shared: &'a Arc<Shared>,
    connection: &'a Arc<Connection>,
    session_id: SessionId,
    /// Requests not yet dispatched.
    pub(super) queue: RequestQueue<'a>,
    /// Under `zkrs.linearizableReads`, which queued requests a barrier round covers.
    pub(super) reads: ReadGate,
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
pub(super) struct ReadGate {
    /// The round the front of the queue waits for, and how many queued requests it
    /// covers.
    pub(super) waiting: Option<(Ticket, usize)>,
    /// Requests at the front of the queue that a passed round covers.
    covered: usize,
}

impl ReadGate {
    /// A request left the front of the queue.
    fn popped(&mut self) {
        self.covered = self.covered.saturating_sub(1);
    }

    /// The round waited for ended.
    pub(super) fn ended(&mut self, passage: Passage) -> Result<(), ConnectionError> {
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
    /// The state of a session just established on `connection`.
    pub(super) fn new(
        shared: &'a Arc<Shared>,
        connection: &'a Arc<Connection>,
        session_id: SessionId,
    ) -> Session<'a> {
        Session {
            shared,
            connection,
            session_id,
            queue: RequestQueue::new(connection, &shared.large_requests),
            reads: ReadGate::default(),
            sasl: None,
            front_throttled: false,
        }
    }

    /// A request frame arrived: it joins the queue, or is answered at once.
    pub(super) fn receive(&mut self, body: Bytes) -> Result<(), ConnectionError> {
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
    pub(super) async fn dispatch(&mut self) -> Result<(), ConnectionError> {
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
        // ZooKeeper's `readlatency` takes every request without a txn, pings included.
        stats.read_latency.record(latency_ms);
        if request.reads_tree() {
            stats.reads.record(now_us.saturating_sub(received_us));
        }
    }
}
