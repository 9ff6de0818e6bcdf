//! What comes into the pipeline from clients, and what it makes of it: requests routed by
//! role (prepared here when leading, forwarded to the leader when following), and the
//! txns the server makes itself (session expiry, the container and TTL reaper).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use jute::OpCode;

use super::Pipeline;
use crate::audit::AuditRequest;
use crate::ensemble::frame::PeerFrame;
use crate::ensemble::zookeeper::sessions::Forwarded;
use crate::prepare::{quota_refused_at, Context, SessionCheck};
use crate::proto::{Frame, Request};
use crate::server::registry::Connection;
use crate::server::{Mode, Shared};
use crate::session::{AuthIds, SessionTracker};
use crate::storage::StorageError;
use crate::tree::node::NodeKind;
use crate::tree::quota;
use crate::txn::{SessionId, Txn, TxnBody};
use crate::zab::{Message, ServerId};

/// Work for the pipeline, sent by client connections.
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
        frame: Bytes,
        /// The connection's identities when the request was read.
        auth: Arc<AuthIds>,
        /// When the request was read, for latency statistics.
        received_us: u64,
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
        /// When the connect request was read, for latency statistics.
        received_us: u64,
    },
}

/// Who gets told about a txn once it is applied.
pub(super) enum ReplyTo {
    /// Nobody: the server's own txns, and those a learner forwarded.
    Nobody,
    /// A client request; `audit` is what the audit log needs of it, when it is on and
    /// the request is one ZooKeeper audits.
    Client {
        connection: Arc<Connection>,
        op: OpCode,
        xid: i32,
        received_us: u64,
        audit: Option<Box<AuditRequest>>,
    },
    /// A handshake waiting for its new session.
    Handshake { connection: Arc<Connection>, sent_read_only: bool, received_us: u64 },
}

impl ReplyTo {
    /// A request that will not be answered here: its client must reconnect elsewhere.
    pub(super) fn close(&self) {
        match self {
            ReplyTo::Nobody => {}
            ReplyTo::Client { connection, .. } | ReplyTo::Handshake { connection, .. } => {
                connection.request_close();
            }
        }
    }
}

/// One prepared unit of work, kept in order.
pub(super) enum Work {
    Txn(Txn, ReplyTo),
    Sync { connection: Arc<Connection>, xid: i32, path: String, received_us: u64 },
}

fn context<'a>(
    shared: &'a Shared,
    sessions: &'a SessionTracker,
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
        enforce_quota: shared.config.enforce_quota,
        digest_auth_enabled: shared.config.digest.is_some(),
    }
}

impl Pipeline {
    /// A request or handshake from one of this member's clients.
    ///
    /// # Errors
    /// If proposing fails; the server must stop.
    pub fn client_input(&mut self, input: Input) -> Result<(), StorageError> {
        if self.is_leading() {
            if !matches!(input, Input::Attach { .. }) {
                self.shared.stats.processors.prep_queued.fetch_add(1, Ordering::Relaxed);
            }
            return self.lead_input(input);
        }
        if *self.shared.mode.lock() == Mode::ReadOnly {
            self.read_only_input(input);
            return Ok(());
        }
        if let Input::Request { connection, session_id, .. } = &input {
            if !self.shared.sessions.lock().contains(*session_id) {
                // The session ended while the request waited for the pipeline (closed,
                // expired, or opened read-only and forgotten when read-only service
                // ended). As ZooKeeper drops a request whose session is missing, it goes
                // with its connection: forwarded, the leader could take it for another
                // member's local session and carry it out.
                tracing::debug!(session_id = %session_id, "request of a session that ended");
                connection.request_close();
                return Ok(());
            }
        }
        let input = if self.shared.config.local_sessions_enabled && !self.is_looking() {
            match self.local_session_input(input) {
                Some(input) => input,
                None => return Ok(()),
            }
        } else {
            input
        };
        let Some(leader) = self.leader() else {
            // Not serving: the client reconnects to a member that is.
            match input {
                Input::Request { connection, .. } | Input::CreateSession { connection, .. } => {
                    connection.request_close();
                }
                Input::Attach { .. } => {}
            }
            return Ok(());
        };
        self.forward_input(leader, input)
    }

    /// The leader prepares and proposes its clients' requests.
    fn lead_input(&mut self, input: Input) -> Result<(), StorageError> {
        match input {
            Input::Request {
                request: Request::Sync(sync), connection, xid, received_us, ..
            } => {
                return self.sync(connection, xid, sync.path, received_us);
            }
            Input::Request { connection, session_id, xid, request, auth, received_us, .. } => {
                let check = self.session_check(session_id, self.zab.id());
                match self.prepare_request(session_id, xid, &request, &auth, check) {
                    Some(txn) => {
                        let op = request.op();
                        let audit = self.audit(&request, session_id, &auth, &connection);
                        let reply_to = ReplyTo::Client { connection, op, xid, received_us, audit };
                        self.prepared.push(Work::Txn(txn, reply_to));
                    }
                    None => {
                        let path = match request {
                            Request::Sync(sync) => sync.path,
                            _ => String::new(),
                        };
                        self.prepared.push(Work::Sync { connection, xid, path, received_us });
                    }
                }
            }
            Input::Attach { session_id } => {
                self.attach(session_id);
                return Ok(());
            }
            Input::CreateSession { connection, timeout_ms, sent_read_only, received_us } => {
                let session_id = self.shared.sessions.lock().next_session_id();
                let txn = self.prepare_create_session(session_id, timeout_ms);
                let reply_to = ReplyTo::Handshake { connection, sent_read_only, received_us };
                self.prepared.push(Work::Txn(txn, reply_to));
            }
        }
        self.propose_prepared()
    }

    /// What the audit log will say of `request` once applied, if it is on.
    fn audit(
        &self,
        request: &Request,
        session_id: SessionId,
        auth: &AuthIds,
        connection: &Connection,
    ) -> Option<Box<AuditRequest>> {
        if !self.shared.config.audit_enabled {
            return None;
        }
        AuditRequest::new(request, session_id, auth, connection.peer.ip()).map(Box::new)
    }

    /// A learner sends its clients' writes and new sessions to the `leader`.
    fn forward_input(&mut self, leader: ServerId, input: Input) -> Result<(), StorageError> {
        match input {
            Input::Request {
                connection, request: Request::Sync(sync), xid, received_us, ..
            } => {
                self.sync(connection, xid, sync.path, received_us)?;
            }
            Input::Request { connection, session_id, xid, request, frame, auth, received_us } => {
                if matches!(request, Request::CloseSession) {
                    self.shared.sessions.lock().set_closing(session_id);
                }
                let op = request.op();
                let now_us = self.shared.clock.now_us();
                self.time_queued(received_us, now_us);
                let audit = self.audit(&request, session_id, &auth, &connection);
                let reply_to = ReplyTo::Client { connection, op, xid, received_us, audit };
                self.forwarded.insert((session_id, xid), (reply_to, now_us));
                let auth = auth.ids().to_vec();
                self.send_to(leader, PeerFrame::Request { session_id, auth, frame });
            }
            Input::CreateSession { connection, timeout_ms, sent_read_only, received_us } => {
                let session_id = self.shared.sessions.lock().next_session_id();
                let reply_to = ReplyTo::Handshake { connection, sent_read_only, received_us };
                self.handshakes.insert(session_id, reply_to);
                self.send_to(leader, PeerFrame::create_session(session_id, timeout_ms));
            }
            Input::Attach { session_id } => self.attach(session_id),
        }
        Ok(())
    }

    /// A request a learner forwarded: a new session (whose id the learner chose), a
    /// `sync` (which the core confirms and answers in order), or a write.
    pub(super) fn learner_request(
        &mut self,
        from: ServerId,
        session_id: SessionId,
        auth: Vec<jute::records::Id>,
        frame: &Bytes,
    ) -> Result<(), StorageError> {
        self.shared.stats.processors.prep_queued.fetch_add(1, Ordering::Relaxed);
        if let Some(timeout_ms) = Forwarded::new_session_timeout(frame) {
            let txn = self.prepare_create_session(session_id, timeout_ms);
            self.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
            return self.propose_prepared();
        }
        match Frame::decode(frame) {
            Ok(Frame { request: Ok(Request::Sync(_)), .. }) => {
                self.time_sync_prepared();
                let message = Message::SyncRequest { id: 0 };
                self.step(crate::zab::Input::Message { from, message })
            }
            Ok(Frame { xid, request: Ok(request) }) if request.is_write() => {
                self.forwarded_request(from, session_id, auth, xid, &request);
                self.propose_prepared()
            }
            _ => {
                tracing::warn!(from, "a learner forwarded a request that is not a write; ignored");
                Ok(())
            }
        }
    }

    /// A learner's client resumed `session_id` there (REVALIDATE): if the session is
    /// alive, its deadline moves back and the learner owns it; the learner hears which.
    pub(super) fn revalidate(&mut self, from: ServerId, session_id: SessionId) {
        self.shared.stats.processors.revalidations.fetch_add(1, Ordering::Relaxed);
        let valid = {
            let mut sessions = self.shared.sessions.lock();
            let valid = sessions.touch(session_id, self.shared.clock.now_ms());
            if valid {
                sessions.set_owner(session_id, from);
            }
            valid
        };
        self.send_to(from, PeerFrame::Revalidated { session_id, valid });
    }

    /// Prepares a write a learner forwarded; the learner answers its client.
    pub(super) fn forwarded_request(
        &mut self,
        from: ServerId,
        session_id: SessionId,
        auth: Vec<jute::records::Id>,
        xid: i32,
        request: &Request,
    ) {
        let shared = self.shared.clone();
        let known = shared.sessions.lock().touch(session_id, shared.clock.now_ms());
        // A session the leader does not know, opened by another member while local
        // sessions are on, is that member's local session: ZooKeeper's leader lets it
        // through, except to own ephemerals, which need a global session.
        let check = if !known
            && shared.config.local_sessions_enabled
            && session_id.server_id() != self.zab.id()
            && !request.creates_ephemeral()
        {
            SessionCheck::OwnedElsewhere
        } else {
            self.session_check(session_id, from)
        };
        let auth = AuthIds::from_ids(auth).skipping_acl(shared.config.skip_acl);
        if let Some(txn) = self.prepare_request(session_id, xid, request, &auth, check) {
            self.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
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
        let started_us = shared.clock.now_us();
        let mut sessions = shared.sessions.lock();
        let context = Context { session_check, ..context(&shared, &sessions, auth, session_id) };
        let txn = self.preparer.prepare(&context, request, xid, wall_ms)?;
        self.time_prepared(started_us, &txn);
        if matches!(txn.body, TxnBody::CloseSession(_)) {
            sessions.set_closing(session_id);
        }
        if let Some(namespace) = quota_refused_at(request, &txn).and_then(quota::namespace) {
            *shared.stats.quota_exceeded.lock().entry(namespace.to_owned()).or_default() += 1;
        }
        Some(txn)
    }

    /// The createSession txn of a new session; the session is tracked once it applies.
    pub(super) fn prepare_create_session(&mut self, session_id: SessionId, timeout_ms: i32) -> Txn {
        let wall_ms = self.shared.clock.wall_ms() as i64;
        let shared = self.shared.clone();
        let started_us = shared.clock.now_us();
        let sessions = shared.sessions.lock();
        let context = context(&shared, &sessions, &self.server_auth, session_id);
        let txn = self.preparer.prepare_create_session(&context, timeout_ms, wall_ms);
        self.time_prepared(started_us, &txn);
        txn
    }

    /// Prepares what the server asks of itself (a closeSession for an expired session, a
    /// deleteContainer for a container or TTL node to reap), as `session_id`. ZooKeeper
    /// sends these through its `PrepRequestProcessor` too, so they count there.
    fn prepare_own(&mut self, session_id: SessionId, request: &Request) {
        let shared = self.shared.clone();
        shared.stats.processors.prep_queued.fetch_add(1, Ordering::Relaxed);
        let started_us = shared.clock.now_us();
        let wall_ms = shared.clock.wall_ms() as i64;
        let sessions = shared.sessions.lock();
        let context = context(&shared, &sessions, &self.server_auth, session_id);
        if let Some(txn) = self.preparer.prepare(&context, request, 0, wall_ms) {
            self.time_prepared(started_us, &txn);
            self.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
        }
    }

    /// Prepares a closeSession txn for each expired session.
    pub(super) fn close_expired(&mut self, expired: Vec<SessionId>) {
        for session_id in expired {
            let timeout_ms = self.shared.sessions.lock().timeout_ms(session_id).unwrap_or(0);
            tracing::info!(session_id = %session_id, timeout_ms, "expiring session");
            self.prepare_own(session_id, &Request::CloseSession);
        }
    }

    /// Deletes empty containers that once had a child, and childless TTL nodes unchanged
    /// for longer than their TTL (ZooKeeper's `ContainerManager`).
    pub(super) fn reap_containers(&mut self) {
        let shared = self.shared.clone();
        let tree = shared.database.tree();
        let wall_ms = shared.clock.wall_ms() as i64;
        let mut candidates = Vec::new();
        for path in tree.containers() {
            if tree.with_node(&path, |node, children| children == 0 && node.cversion() > 0)
                == Some(true)
            {
                candidates.push(path);
            }
        }
        for path in tree.ttls() {
            let expired = tree.with_node(&path, |node, children| {
                let stat = node.persisted_stat();
                let kind =
                    NodeKind::from_owner(stat.ephemeral_owner, tree.extended_types_enabled());
                matches!(kind, NodeKind::Ttl(ttl) if children == 0 && wall_ms - stat.mtime > ttl)
            });
            if expired == Some(true) {
                candidates.push(path);
            }
        }
        for path in candidates {
            tracing::debug!(path = %path, "reaping container or TTL node");
            self.prepare_own(SessionId::NONE, &Request::DeleteContainer(path));
        }
    }
}
