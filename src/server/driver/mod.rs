//! The write pipeline: prepare → log → commit → apply → notify → reply, one txn at a time
//! in zxid order, in batches of whatever arrived together.
//!
//! Standalone is an ensemble of one: a txn is committed as soon as it is logged. The
//! driver also owns time-based work that produces txns: session expiry every tick and
//! the container and TTL reaper.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use jute::records::ConnectResponse;
use jute::{OpCode, Record};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::prepare::{Context, Preparer, SessionCheck};
use crate::proto::reply::frame_with;
use crate::proto::write_reply::write_reply;
use crate::proto::{reply, Request};
use crate::server::log_writer::{LogWriter, Logged};
use crate::server::registry::Connection;
use crate::server::snapshotter::Snapshotter;
use crate::server::Shared;
use crate::session::password::session_password;
use crate::session::AuthIds;
use crate::storage::record::encode_entry_into;
use crate::storage::{LogEntry, Storage, StorageError};
use crate::tree::node::NodeKind;
use crate::txn::{SessionId, Txn, TxnBody};

pub mod member;

/// Most inputs prepared into one batch before it is logged.
const BATCH_MAX: usize = 1000;

/// Work for the driver, sent by connections.
#[derive(Debug)]
pub enum Input {
    /// A write request (or `sync`) of an established session.
    Request {
        /// Where to send the reply.
        connection: Arc<Connection>,
        /// The session, as bound when the request was read.
        session_id: SessionId,
        /// The request's xid.
        xid: i32,
        /// The request.
        request: Request,
        /// The request's frame as the client sent it, for a follower to forward.
        frame: bytes::Bytes,
        /// The connection's identities when the request was read.
        auth: Arc<AuthIds>,
        /// When the request was read, for latency statistics.
        received_ms: u64,
    },
    /// A handshake resumed an existing session on this server; in an ensemble, the
    /// leader learns that the session's client is here now.
    Attach {
        /// The session.
        session_id: SessionId,
    },
    /// A handshake that asked for a new session.
    CreateSession {
        /// The connection that asked.
        connection: Arc<Connection>,
        /// The negotiated timeout.
        timeout_ms: i32,
        /// Whether the client sent the `readOnly` byte; then the reply carries one too.
        sent_read_only: bool,
    },
}

/// Who gets told about a txn once it is applied.
enum ReplyTo {
    /// Nobody: the server's own txns.
    Nobody,
    /// A client request.
    Client { connection: Arc<Connection>, op: OpCode, xid: i32, received_ms: u64 },
    /// A handshake waiting for its new session.
    Handshake { connection: Arc<Connection>, sent_read_only: bool },
}

/// One prepared unit of work, kept in order.
enum Work {
    Txn(Txn, ReplyTo),
    Sync { connection: Arc<Connection>, xid: i32, path: String, received_ms: u64 },
}

struct Driver {
    shared: Arc<Shared>,
    preparer: Preparer,
    server_auth: AuthIds,
    storage: Arc<dyn Storage>,
    log: LogWriter,
    /// Prepared work waiting for the batch in flight to be logged.
    unlogged: Vec<Work>,
    /// The batch the log writer is syncing.
    logging: Option<Vec<Work>>,
    /// The last applied batch's emptied vector, reused for the next one so a busy server
    /// does not allocate (and page in) a fresh batch vector every round.
    spare: Vec<Work>,
    /// Where each batch is encoded for the log. Once the log writer has dropped a batch,
    /// the next one reuses the same allocation.
    log_buffer: BytesMut,
    snapshotter: Snapshotter,
}

/// Runs the pipeline until `stop` is cancelled, then stops the log writer and any
/// snapshot in progress and waits for both, so the store closes before the caller goes on.
///
/// # Errors
/// If the log fails; the server must stop.
pub async fn run(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    mut inputs: mpsc::Receiver<Input>,
    stop: CancellationToken,
) -> Result<(), StorageError> {
    let (mut driver, mut logged) = Driver::start(shared, storage)?;
    let outcome = driver.serve(&mut inputs, &mut logged, &stop).await;
    // The log writer may be waiting to hand over a completion nobody will read.
    drop(logged);
    driver.close();
    outcome
}

impl Driver {
    /// A driver with its log writer started; log completions arrive on the receiver.
    fn start(
        shared: Arc<Shared>,
        storage: Arc<dyn Storage>,
    ) -> Result<(Driver, mpsc::Receiver<Logged>), StorageError> {
        let (log, logged) =
            LogWriter::spawn(storage.clone(), shared.config.fsync_warning_threshold_ms).map_err(
                |err| StorageError::Backend(format!("cannot start the log writer: {err}")),
            )?;
        let config = &shared.config;
        let snapshotter = Snapshotter::new(
            config.snap_count,
            config.snap_retain_count,
            config.purge_interval_hours == 0,
            shared.clock.wall_ms(),
        );
        let driver = Driver {
            preparer: Preparer::new(shared.database.last_applied_zxid()),
            server_auth: AuthIds::server(),
            storage,
            log,
            unlogged: Vec::new(),
            logging: None,
            spare: Vec::new(),
            log_buffer: BytesMut::new(),
            snapshotter,
            shared,
        };
        Ok((driver, logged))
    }

    /// Waits for the batch being logged and any snapshot in progress, then stops both.
    /// Drop the completion receiver first.
    fn close(self) {
        self.log.close();
        self.snapshotter.close();
    }
}

/// An interval that skips ticks missed while the driver was busy.
fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

impl Driver {
    async fn serve(
        &mut self,
        inputs: &mut mpsc::Receiver<Input>,
        logged: &mut mpsc::Receiver<Logged>,
        stop: &CancellationToken,
    ) -> Result<(), StorageError> {
        let (mut ticks, mut reaps) = self.intervals();
        loop {
            self.start_logging()?;
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                input = inputs.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.prepare(input);
                    while self.unlogged.len() < BATCH_MAX {
                        match inputs.try_recv() {
                            Ok(input) => self.prepare(input),
                            Err(_) => break,
                        }
                    }
                }
                outcome = logged.recv(), if self.logging.is_some() => {
                    let outcome = outcome.unwrap_or_else(|| {
                        Err(StorageError::Backend("the log writer thread stopped".into()))
                    });
                    self.commit_logged(outcome)?;
                }
                _ = ticks.tick() => self.expire_sessions(),
                _ = reaps.tick() => self.reap_containers(),
            }
        }
    }
}

/// The live global sessions and their timeouts, as snapshots record them (local sessions
/// die with their server).
fn live_sessions(shared: &Shared) -> Vec<(SessionId, i32)> {
    shared
        .sessions
        .lock()
        .sessions()
        .iter()
        .filter(|session| !session.local)
        .map(|session| (session.session_id, i32::try_from(session.timeout_ms).unwrap_or(i32::MAX)))
        .collect()
}

impl Driver {
    /// The session expiry tick and the container reaper's period.
    fn intervals(&self) -> (tokio::time::Interval, tokio::time::Interval) {
        let config = &self.shared.config;
        let tick = Duration::from_millis(u64::from(config.tick_time_ms));
        let reap_period = Duration::from_millis(config.container_check_interval_ms.max(1));
        (interval(tick), interval(reap_period))
    }
}

fn context<'a>(
    shared: &'a Shared,
    sessions: &'a crate::session::SessionTracker,
    auth: &'a AuthIds,
    session_id: SessionId,
) -> Context<'a> {
    Context {
        tree: shared.database.tree(),
        sessions,
        auth,
        session_id,
        session_check: SessionCheck::Tracker,
        extended_types_enabled: shared.config.extended_types_enabled,
        reconfig_enabled: shared.config.reconfig_enabled,
    }
}

impl Driver {
    fn prepare(&mut self, input: Input) {
        self.prepare_checked(input, SessionCheck::Tracker);
    }

    /// Prepares `input`, checking a request's session as `session_check` says.
    fn prepare_checked(&mut self, input: Input, session_check: SessionCheck) {
        match input {
            Input::Attach { .. } => {}
            Input::Request { connection, session_id, xid, request, auth, received_ms, .. } => {
                match self.prepare_request(session_id, xid, &request, &auth, session_check) {
                    Some(txn) => {
                        let op = request.op();
                        self.unlogged.push(Work::Txn(
                            txn,
                            ReplyTo::Client { connection, op, xid, received_ms },
                        ));
                    }
                    None => {
                        let path = match request {
                            Request::Sync(sync) => sync.path,
                            _ => String::new(),
                        };
                        self.unlogged.push(Work::Sync { connection, xid, path, received_ms });
                    }
                }
            }
            Input::CreateSession { connection, timeout_ms, sent_read_only } => {
                let session_id = self.shared.sessions.lock().next_session_id();
                let txn = self.prepare_create_session(session_id, timeout_ms);
                self.unlogged
                    .push(Work::Txn(txn, ReplyTo::Handshake { connection, sent_read_only }));
            }
        }
    }

    /// The txn for a write request of `session_id`, or `None` for `sync`, which has none.
    fn prepare_request(
        &mut self,
        session_id: SessionId,
        xid: i32,
        request: &Request,
        auth: &AuthIds,
        session_check: SessionCheck,
    ) -> Option<Txn> {
        let wall_ms = self.shared.clock.wall_ms() as i64;
        let shared = self.shared.clone();
        let mut sessions = shared.sessions.lock();
        let context = Context { session_check, ..context(&shared, &sessions, auth, session_id) };
        let txn = self.preparer.prepare(&context, request, xid, wall_ms)?;
        if matches!(txn.body, TxnBody::CloseSession(_)) {
            sessions.set_closing(session_id);
        }
        Some(txn)
    }

    /// The createSession txn of a new session, which is tracked from now on.
    fn prepare_create_session(&mut self, session_id: SessionId, timeout_ms: i32) -> Txn {
        let wall_ms = self.shared.clock.wall_ms() as i64;
        let shared = self.shared.clone();
        let mut sessions = shared.sessions.lock();
        sessions.add(session_id, u64::try_from(timeout_ms).unwrap_or(0), shared.clock.now_ms());
        let context = context(&shared, &sessions, &self.server_auth, session_id);
        self.preparer.prepare_create_session(&context, timeout_ms, wall_ms)
    }

    /// Closes the sessions whose time is up, with a closeSession txn each.
    fn expire_sessions(&mut self) {
        let expired = self.shared.sessions.lock().expire(self.shared.clock.now_ms());
        self.close_expired(expired);
    }

    /// Prepares a closeSession txn for each expired session.
    fn close_expired(&mut self, expired: Vec<SessionId>) {
        let shared = self.shared.clone();
        let sessions = shared.sessions.lock();
        for session_id in expired {
            tracing::info!(
                session_id = format_args!("0x{session_id:x}"),
                timeout_ms = sessions.timeout_ms(session_id).unwrap_or(0),
                "expiring session"
            );
            let context = context(&shared, &sessions, &self.server_auth, session_id);
            let wall_ms = shared.clock.wall_ms() as i64;
            if let Some(txn) = self.preparer.prepare(&context, &Request::CloseSession, 0, wall_ms) {
                self.unlogged.push(Work::Txn(txn, ReplyTo::Nobody));
            }
        }
    }

    /// Deletes empty containers that once had a child, and childless TTL nodes unchanged
    /// for longer than their TTL (ZooKeeper's `ContainerManager`).
    fn reap_containers(&mut self) {
        let shared = self.shared.clone();
        let tree = shared.database.tree();
        let wall_ms = shared.clock.wall_ms() as i64;
        let mut candidates = Vec::new();
        for path in tree.containers() {
            if tree.with_node(&path, |node, children| children == 0 && node.cversion > 0)
                == Some(true)
            {
                candidates.push(path);
            }
        }
        for path in tree.ttls() {
            let expired = tree.with_node(&path, |node, children| {
                let kind =
                    NodeKind::from_owner(node.ephemeral_owner, tree.extended_types_enabled());
                matches!(kind, NodeKind::Ttl(ttl) if children == 0 && wall_ms - node.mtime > ttl)
            });
            if expired == Some(true) {
                candidates.push(path);
            }
        }
        let sessions = shared.sessions.lock();
        for path in candidates {
            tracing::debug!(path = %path, "reaping container or TTL node");
            let context = context(&shared, &sessions, &self.server_auth, 0);
            if let Some(txn) =
                self.preparer.prepare(&context, &Request::DeleteContainer(path), 0, wall_ms)
            {
                self.unlogged.push(Work::Txn(txn, ReplyTo::Nobody));
            }
        }
    }

    /// Hands the prepared work to the log writer unless a batch is already syncing.
    /// Work without txns (syncs only) needs no log and is answered at once.
    fn start_logging(&mut self) -> Result<(), StorageError> {
        if self.logging.is_some() || self.unlogged.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.unlogged, std::mem::take(&mut self.spare));
        let mut bounds = Vec::with_capacity(batch.len());
        for work in &batch {
            if let Work::Txn(txn, _) = work {
                let start = self.log_buffer.len();
                encode_entry_into(txn, &mut self.log_buffer);
                bounds.push((txn.zxid(), start, self.log_buffer.len()));
            }
        }
        let encoded = self.log_buffer.split().freeze();
        let entries: Vec<LogEntry> = bounds
            .into_iter()
            .map(|(zxid, start, end)| LogEntry { zxid, value: encoded.slice(start..end) })
            .collect();
        if entries.is_empty() {
            self.apply_batch(batch);
            return Ok(());
        }
        self.log.write(entries)?;
        self.logging = Some(batch);
        Ok(())
    }

    /// The batch in flight is durable (or the log failed): commit and apply it.
    fn commit_logged(&mut self, outcome: Logged) -> Result<(), StorageError> {
        if let Err(err) = outcome {
            tracing::error!(cause = %err, "the transaction log failed; stopping");
            return Err(err);
        }
        if let Some(batch) = self.logging.take() {
            self.apply_batch(batch);
        }
        Ok(())
    }

    fn apply_batch(&mut self, mut batch: Vec<Work>) {
        let mut applied = 0u64;
        for work in batch.drain(..) {
            match work {
                Work::Txn(txn, reply_to) => {
                    self.apply(&txn, reply_to);
                    applied += 1;
                }
                Work::Sync { connection, xid, path, received_ms } => {
                    self.answer_sync(&connection, xid, path, received_ms);
                }
            }
        }
        self.spare = batch;
        self.count_applied(applied);
    }

    /// Answers a request decided without a txn (a local session's close, a write refused
    /// by a read-only member) with `code`; a close also ends the connection.
    fn answer_locally(
        &self,
        connection: &Connection,
        op: OpCode,
        xid: i32,
        code: jute::Code,
        received_ms: u64,
    ) {
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::status(xid, zxid, code);
        self.answer(connection, frame, op, xid, zxid, received_ms);
        if op == OpCode::CloseSession {
            connection.request_close();
        }
    }

    /// Answers a `sync`: everything committed before it is applied.
    fn answer_sync(&self, connection: &Connection, xid: i32, path: String, received_ms: u64) {
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::ok(xid, zxid, &jute::records::SyncResponse { path });
        self.answer(connection, frame, OpCode::Sync, xid, zxid, received_ms);
    }

    /// Counts `applied` txns towards the next snapshot, starting one when it is due.
    fn count_applied(&mut self, applied: u64) {
        if applied == 0 {
            return;
        }
        let zxid = self.shared.database.last_applied_zxid();
        let shared = self.shared.clone();
        self.snapshotter
            .applied(applied, zxid, &self.shared, &self.storage, || live_sessions(&shared));
    }

    fn apply(&mut self, txn: &Txn, reply_to: ReplyTo) {
        let shared = self.shared.clone();
        let result = shared.database.apply(txn, &mut |watcher, notification| {
            shared.registry.deliver(watcher, notification);
        });
        self.preparer.applied(txn.zxid());
        let zxid = txn.zxid();
        let session_id = txn.header.client_id;
        if let TxnBody::CloseSession(_) = txn.body {
            shared.sessions.lock().remove(session_id);
            let own_close = matches!(&reply_to, ReplyTo::Client { op: OpCode::CloseSession, .. });
            if !own_close {
                if let Some(connection) = shared.registry.for_session(session_id) {
                    connection.request_close();
                }
            }
        }
        match reply_to {
            ReplyTo::Nobody => {}
            ReplyTo::Client { connection, op, xid, received_ms } => {
                let frame = write_reply(op, &result, xid, zxid);
                self.answer(&connection, frame, op, xid, zxid, received_ms);
                if op == OpCode::CloseSession {
                    connection.request_close();
                }
            }
            ReplyTo::Handshake { connection, sent_read_only } => {
                if let TxnBody::CreateSession(create) = &txn.body {
                    // A server with a committed txn has a quorum: it is not read-only.
                    let read_only = sent_read_only.then_some(false);
                    self.establish(&connection, session_id, create.time_out, read_only);
                }
            }
        }
    }

    /// Answers a handshake with its new session and binds the session to the connection.
    /// `read_only` is the flag to append, if the client sent one.
    fn establish(
        &self,
        connection: &Connection,
        session_id: SessionId,
        timeout_ms: i32,
        read_only: Option<bool>,
    ) {
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms,
            session_id,
            passwd: bytes::Bytes::copy_from_slice(&session_password(session_id)),
        };
        connection.send(frame_with(|out| {
            response.write(out);
            if let Some(read_only) = read_only {
                read_only.write(out);
            }
        }));
        let shared = &self.shared;
        shared.stats.packets_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.registry.bind_session(connection, session_id, i64::from(timeout_ms));
        connection.complete_write();
        tracing::debug!(session_id = format_args!("0x{session_id:x}"), "session established");
    }

    fn answer(
        &self,
        connection: &Connection,
        frame: bytes::Bytes,
        op: OpCode,
        xid: i32,
        zxid: i64,
        received_ms: u64,
    ) {
        connection.send(frame);
        let now_ms = self.shared.clock.now_ms();
        let latency_ms = now_ms.saturating_sub(received_ms);
        self.shared.stats.packets_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared.stats.latency.lock().record(latency_ms);
        {
            let mut stats = connection.stats.lock();
            stats.last_op = crate::server::stats::short_op_name(op);
            stats.last_cxid = i64::from(xid);
            stats.last_zxid = zxid;
            stats.last_response_ms = now_ms;
            stats.last_latency_ms = latency_ms;
            stats.latency.record(latency_ms);
        }
        connection.complete_write();
    }
}
