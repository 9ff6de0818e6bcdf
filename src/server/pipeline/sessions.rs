//! Who owns a session and where it lives: global sessions (a txn, owned by the member
//! whose client holds them, expired by the leader), local sessions (known to one member
//! only, with no txn), and the read-only service of a member cut off from its quorum.

use jute::{Code, OpCode};

use super::work::Input;
use super::Pipeline;
use crate::ensemble::frame::PeerFrame;
use crate::prepare::SessionCheck;
use crate::proto::Request;
use crate::server::registry::Connection;
use crate::server::Mode;
use crate::txn::SessionId;
use crate::zab::ServerId;

/// How long a member looks for a leader before it serves read-only clients: time for an
/// election to succeed, the larger of this and a tick.
const READ_ONLY_GRACE_MS: u64 = 2000;

impl Pipeline {
    /// With local sessions: a new session is opened here without a txn; a local session
    /// closes here; one creating an ephemeral node becomes global first (or fails with
    /// EphemeralOnLocalSession when upgrading is off). `None` when nothing is left to do.
    pub(super) fn local_session_input(&mut self, input: Input) -> Option<Input> {
        let shared = self.shared.clone();
        match input {
            Input::CreateSession { connection, timeout_ms, sent_read_only, received_us } => {
                let read_only = sent_read_only.then_some(false);
                self.open_local_session(&connection, timeout_ms, read_only, received_us);
                None
            }
            Input::Request { connection, session_id, xid, request, received_us, .. }
                if shared.sessions.lock().is_local(session_id)
                    && (matches!(request, Request::CloseSession)
                        || (request.creates_ephemeral()
                            && !shared.config.local_sessions_upgrading_enabled)) =>
            {
                let refusal = Code::EphemeralOnLocalSession;
                self.answer_here(&connection, session_id, xid, &request, refusal, received_us);
                None
            }
            Input::Request { session_id, ref request, .. }
                if request.creates_ephemeral() && shared.sessions.lock().is_local(session_id) =>
            {
                self.upgrade_session(session_id);
                Some(input)
            }
            input => Some(input),
        }
    }

    /// Makes a local session global: its createSession txn goes ahead of the request
    /// that needs it, in the same order to the leader. Local sessions live on learners
    /// only, so there is a leader to ask.
    fn upgrade_session(&mut self, session_id: SessionId) {
        let Some(leader) = self.leader() else {
            return;
        };
        let timeout_ms = {
            let mut sessions = self.shared.sessions.lock();
            if !sessions.upgrade(session_id) {
                // Already on its way: the request follows it to the leader.
                return;
            }
            sessions.timeout_ms(session_id).unwrap_or(0)
        };
        let timeout_ms = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        tracing::debug!(session_id = %session_id, "upgrading local session");
        self.send_to(leader, PeerFrame::create_session(session_id, timeout_ms));
    }

    /// Expires sessions: local ones here, with no txn; global ones only on the leader,
    /// which owns them.
    pub(super) fn expire_sessions(&mut self) {
        let shared = self.shared.clone();
        let leading = self.is_leading();
        let (local, global): (Vec<SessionId>, Vec<SessionId>) = {
            let mut sessions = shared.sessions.lock();
            let expired = sessions.expire_owned(shared.clock.now_ms(), leading);
            let count = expired.len() as u64;
            shared.stats.sessions_expired.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
            let (local, global): (Vec<SessionId>, Vec<SessionId>) =
                expired.into_iter().partition(|id| sessions.is_local(*id));
            for session_id in &local {
                sessions.remove(*session_id);
            }
            (local, global)
        };
        for session_id in local {
            tracing::info!(session_id = %session_id, "local session expired");
            if let Some(connection) = shared.registry.for_session(session_id) {
                connection.request_close();
            }
        }
        if leading {
            self.close_expired(global);
        }
    }

    /// ZooKeeper's read-only server: after a grace period of looking, serve read-only
    /// clients.
    pub(super) fn start_read_only_when_due(&mut self) {
        let shared = &self.shared;
        let grace_ms = u64::from(shared.config.tick_time_ms).max(READ_ONLY_GRACE_MS);
        let now_ms = shared.clock.now_ms();
        let due =
            self.looking_since_ms.is_some_and(|since| now_ms.saturating_sub(since) >= grace_ms);
        let mut mode = shared.mode.lock();
        if shared.config.read_only_mode_enabled && due && *mode == Mode::Looking {
            *mode = Mode::ReadOnly;
            tracing::info!("no quorum; serving read-only clients");
        }
    }

    /// Leaving read-only service: its clients reconnect (to a read-write server, if they
    /// can), and its local sessions are forgotten.
    pub(super) fn end_read_only(&mut self) {
        let shared = &self.shared;
        if *shared.mode.lock() != Mode::ReadOnly {
            return;
        }
        for connection in shared.registry.all() {
            connection.request_close();
        }
        shared.sessions.lock().remove_local();
    }

    /// A read-only member opens sessions locally and refuses every change.
    pub(super) fn read_only_input(&mut self, input: Input) {
        match input {
            Input::Attach { .. } => {}
            // Sessions opened while read-only are local: known to no one else, and
            // forgotten when read-only service ends.
            Input::CreateSession { connection, timeout_ms, received_us, .. } => {
                self.open_local_session(&connection, timeout_ms, Some(true), received_us);
            }
            Input::Request { connection, session_id, xid, request, received_us, .. } => {
                let refusal = Code::NotReadOnly;
                self.answer_here(&connection, session_id, xid, &request, refusal, received_us);
            }
        }
    }

    /// Opens a session known only to this member, with no txn, and answers the handshake
    /// (`read_only`: the flag to append, if the client sent one).
    fn open_local_session(
        &mut self,
        connection: &Connection,
        timeout_ms: i32,
        read_only: Option<bool>,
        received_us: u64,
    ) {
        let shared = &self.shared;
        let session_id = {
            let mut sessions = shared.sessions.lock();
            let session_id = sessions.next_session_id();
            let timeout = u64::try_from(timeout_ms).unwrap_or(0);
            sessions.add_local(session_id, timeout, shared.clock.now_ms());
            session_id
        };
        let zxid = shared.database.last_applied_zxid();
        let latency_ms =
            self.establish(connection, session_id, timeout_ms, read_only, received_us, zxid);
        // Without a txn, ZooKeeper counts the new session among the reads.
        shared.stats.read_latency.record(latency_ms);
    }

    /// Answers a request decided here, without a txn: a close of a local session ends
    /// it; anything else is refused with `refusal`.
    fn answer_here(
        &mut self,
        connection: &Connection,
        session_id: SessionId,
        xid: i32,
        request: &Request,
        refusal: Code,
        received_us: u64,
    ) {
        let op = request.op();
        let code = if op == OpCode::CloseSession {
            self.shared.sessions.lock().remove(session_id);
            Code::Ok
        } else {
            refusal
        };
        self.answer_status(connection, op, xid, code, received_us);
    }

    /// The leader's check of a request that `member` sent for `session_id`: once the
    /// session's client has resumed on another member, this one's requests are stale
    /// (SessionMoved). The first member heard from owns a session whose owner is not
    /// known yet (one created through another member, or before this leader's term).
    pub(super) fn session_check(&self, session_id: SessionId, member: ServerId) -> SessionCheck {
        let mut sessions = self.shared.sessions.lock();
        match sessions.owner(session_id) {
            Some(owner) if owner != member => SessionCheck::Moved,
            Some(_) => SessionCheck::Tracker,
            None => {
                sessions.set_owner(session_id, member);
                SessionCheck::Tracker
            }
        }
    }

    /// A client resumed `session_id` here: the leader records this member as its owner.
    pub(super) fn attach(&mut self, session_id: SessionId) {
        if self.is_leading() {
            self.shared.sessions.lock().set_owner(session_id, self.zab.id());
        } else if let Some(leader) = self.leader() {
            let timeout_ms = self.shared.sessions.lock().timeout_ms(session_id).unwrap_or(0);
            let timeout_ms = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
            self.send_to(leader, PeerFrame::Revalidate { session_id, timeout_ms });
        }
    }

    /// A follower tells the leader which of its sessions were active.
    pub(super) fn report_touches(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let touched = self.shared.sessions.lock().take_touched();
        if !touched.is_empty() {
            self.send_to(leader, PeerFrame::Touch(touched));
        }
    }
}
