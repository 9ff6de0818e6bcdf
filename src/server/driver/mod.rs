//! The write pipeline, the same for every role: prepare → propose → log → commit →
//! apply → notify → reply, in zxid order, in batches of whatever arrived together.
//!
//! [`member`] runs it: the replication core (`crate::zab`) decides what is logged,
//! committed and applied, and a standalone server is an ensemble of one voter, which
//! commits what it logs. This module holds the steps every role shares: preparing a
//! request into a txn ([`Driver::prepare_checked`]), applying a committed txn and
//! answering whoever waits for it, and the time-based work that produces txns (session
//! expiry and the container and TTL reaper).

use std::sync::Arc;
use std::time::Duration;

use jute::records::ConnectResponse;
use jute::{OpCode, Record};
use tokio::sync::mpsc;

use crate::prepare::{Context, Preparer, SessionCheck};
use crate::proto::reply::frame_with;
use crate::proto::write_reply::write_reply;
use crate::proto::{reply, Request};
use crate::server::registry::Connection;
use crate::server::snapshotter::Snapshotter;
use crate::server::storage_writer::{StorageWriter, Written};
use crate::server::Shared;
use crate::session::password::session_password;
use crate::session::AuthIds;
use crate::storage::{Storage, StorageError};
use crate::tree::node::NodeKind;
use crate::txn::{SessionId, Txn, TxnBody};

pub mod member;
mod persist_queue;
pub mod transfer;

/// Most client inputs taken in one round before the pipeline logs what they made.
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

/// What every role's pipeline shares: preparing, applying, answering, snapshots.
struct Driver {
    shared: Arc<Shared>,
    preparer: Preparer,
    server_auth: AuthIds,
    storage: Arc<dyn Storage>,
    writer: StorageWriter,
    /// Prepared work, in order, waiting to be proposed.
    prepared: Vec<Work>,
    snapshotter: Snapshotter,
}

impl Driver {
    /// A driver with its storage thread started; batch completions arrive on the receiver.
    fn start(
        shared: Arc<Shared>,
        storage: Arc<dyn Storage>,
    ) -> Result<(Driver, mpsc::Receiver<Written>), StorageError> {
        let (writer, written) =
            StorageWriter::spawn(storage.clone(), shared.config.fsync_warning_threshold_ms)
                .map_err(|err| {
                    StorageError::Backend(format!("cannot start the storage thread: {err}"))
                })?;
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
            writer,
            prepared: Vec::new(),
            snapshotter,
            shared,
        };
        Ok((driver, written))
    }

    /// Waits for the batch being written and any snapshot in progress, then stops both.
    /// Drop the completion receiver first.
    fn close(self) {
        self.writer.close();
        self.snapshotter.close();
    }
}

/// An interval that skips ticks missed while the driver was busy.
fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
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
    /// Prepares `input`, checking a request's session as `session_check` says.
    fn prepare_checked(&mut self, input: Input, session_check: SessionCheck) {
        match input {
            Input::Attach { .. } => {}
            Input::Request { connection, session_id, xid, request, auth, received_ms, .. } => {
                match self.prepare_request(session_id, xid, &request, &auth, session_check) {
                    Some(txn) => {
                        let op = request.op();
                        self.prepared.push(Work::Txn(
                            txn,
                            ReplyTo::Client { connection, op, xid, received_ms },
                        ));
                    }
                    None => {
                        let path = match request {
                            Request::Sync(sync) => sync.path,
                            _ => String::new(),
                        };
                        self.prepared.push(Work::Sync { connection, xid, path, received_ms });
                    }
                }
            }
            Input::CreateSession { connection, timeout_ms, sent_read_only } => {
                let session_id = self.shared.sessions.lock().next_session_id();
                let txn = self.prepare_create_session(session_id, timeout_ms);
                self.prepared
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
                self.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
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
                self.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
            }
        }
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
