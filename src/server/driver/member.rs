//! The write pipeline of every server: the replication core ([`Zab`]) decides what is
//! logged, committed and applied; this shell feeds it and carries out its actions.
//!
//! - Standalone: an ensemble of one voter with no links, which elects itself before it
//!   takes its first input and then leads, committing what its own log holds.
//! - Leader: requests are prepared, then proposed; each is answered once the core has it
//!   committed and this member has applied it. The leader alone expires sessions and
//!   reaps containers.
//! - Follower and observer: writes go to the leader as the client framed them, new
//!   sessions with an id this member chose; the answer goes out when the committed txn
//!   comes back and is applied here, matched by session and xid (by session id for a
//!   new session). Touched sessions are reported to the leader every core tick.
//! - Any role: `sync` asks the core, which has a quorum confirm the leadership first and
//!   answers it after the writes proposed before it.
//! - Looking: no clients are served; their connections are closed, and they reconnect
//!   to another member.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use jute::{Code, OpCode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::persist_queue::PersistQueue;
use super::transfer::{self, Inbound, Outbound, Sealed};
use super::{interval, live_sessions, Driver, Input, ReplyTo, Work};
use crate::ensemble::frame::PeerFrame;
use crate::ensemble::link::{LinkEvent, Links};
use crate::ensemble::Membership;
use crate::fast_hash::FastHashMap;
use crate::prepare::{Preparer, SessionCheck};
use crate::proto::{Frame, Request};
use crate::server::registry::Connection;
use crate::server::storage_writer::{Write, Written};
use crate::server::{Mode, Shared};
use crate::session::AuthIds;
use crate::storage::record::{decode_entry, encode_entry_into};
use crate::storage::{LogEntry, Storage, StorageError};
use crate::txn::{SessionId, Txn, TxnBody, Zxid};
use crate::zab::{self, Action, Entry, Message, Restored, Role, ServerId, Zab};

/// A client's `sync` waiting for the core.
struct PendingSync {
    connection: Arc<Connection>,
    xid: i32,
    path: String,
    received_ms: u64,
}

/// A message to a member as this shell sends it: a `Snap` goes behind the stream of
/// its snapshot's chunks.
struct Outgoing {
    message: Message,
    snapshot: Option<mpsc::Receiver<Bytes>>,
}

/// The driver of a server, standalone or an ensemble member.
struct Member {
    base: Driver,
    zab: Zab,
    links: Links,
    /// An ensemble of one, shown as ZooKeeper's standalone mode.
    standalone: bool,
    /// Batch completions from the storage thread.
    written: mpsc::Receiver<Written>,
    /// Writes asked of the storage thread, and the messages that wait for them.
    persist: PersistQueue<Outgoing>,
    /// The leader's own proposals, in zxid order, with whom to answer.
    proposed: VecDeque<(Txn, ReplyTo)>,
    /// Writes forwarded to the leader, by session and xid.
    forwarded: FastHashMap<(SessionId, i32), ReplyTo>,
    /// New sessions asked of the leader, by the id this member chose.
    handshakes: FastHashMap<SessionId, ReplyTo>,
    syncs: FastHashMap<u64, PendingSync>,
    next_sync: u64,
    /// The snapshot a leader (the member named) is sending.
    inbound: Option<(ServerId, Inbound)>,
    /// The snapshot that leader sent in full, installed by the `Snap` it offers.
    sealed: Option<(ServerId, Sealed)>,
    /// Snapshots this member is sending its learners.
    outbound: Vec<Outbound>,
    /// Where proposals are encoded.
    entry_buffer: BytesMut,
    /// Since when this member has been looking for a leader.
    looking_since: Option<Instant>,
}

/// Runs the pipeline until `stop` is cancelled, then stops the storage thread and any
/// snapshot in progress and waits for both, so the store closes before the caller goes
/// on. `restored` is what it recovered (the state is at `restored.applied`), `election`
/// its election port (none when standalone). A standalone server elects itself before
/// it takes its first input.
///
/// # Errors
/// If the log or the store fails; the server must stop.
pub async fn run(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    mut inputs: mpsc::Receiver<Input>,
    stop: CancellationToken,
    membership: Membership,
    restored: Restored,
    election: Option<tokio::net::TcpListener>,
) -> Result<(), StorageError> {
    let (base, written) = Driver::start(shared, storage)?;
    let (events_tx, mut events) = mpsc::channel(4096);
    let links = Links::start(membership.id(), &membership.addresses, election, events_tx, &stop);
    let (zab, actions) = Zab::new(membership.zab.clone(), restored);
    let persist = PersistQueue::new(zab.last_zxid());
    let mut member = Member {
        base,
        zab,
        links,
        standalone: membership.standalone,
        written,
        persist,
        proposed: VecDeque::new(),
        forwarded: FastHashMap::default(),
        handshakes: FastHashMap::default(),
        syncs: FastHashMap::default(),
        next_sync: 0,
        inbound: None,
        sealed: None,
        outbound: Vec::new(),
        entry_buffer: BytesMut::new(),
        looking_since: Some(Instant::now()),
    };
    let core_tick = Duration::from_millis(membership.core_tick_ms);
    let mut started = member.carry_out(actions);
    if started.is_ok() && member.standalone {
        started = member.step(zab::Input::Tick);
    }
    let outcome = match started {
        Ok(()) => member.serve(&mut inputs, &mut events, core_tick, &stop).await,
        Err(err) => Err(err),
    };
    let Member { base, written, outbound, .. } = member;
    drop(written);
    outbound.into_iter().for_each(Outbound::stop);
    base.close();
    outcome
}

impl Member {
    async fn serve(
        &mut self,
        inputs: &mut mpsc::Receiver<Input>,
        events: &mut mpsc::Receiver<LinkEvent>,
        core_tick: Duration,
        stop: &CancellationToken,
    ) -> Result<(), StorageError> {
        let (mut ticks, mut reaps) = self.base.intervals();
        let mut core_ticks = interval(core_tick);
        loop {
            self.start_writing()?;
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                input = inputs.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.client_input(input)?;
                    for _ in 0..super::BATCH_MAX {
                        match inputs.try_recv() {
                            Ok(input) => self.client_input(input)?,
                            Err(_) => break,
                        }
                    }
                }
                // A standalone server has no links, so no sender of link events.
                event = events.recv(), if !self.standalone => {
                    let Some(event) = event else { return Ok(()) };
                    self.link_event(event).await?;
                }
                outcome = self.written.recv(), if self.persist.is_writing() => {
                    write_outcome(outcome)?;
                    self.batch_written()?;
                }
                _ = core_ticks.tick() => {
                    self.step(zab::Input::Tick)?;
                    self.report_touches();
                    if !self.standalone {
                        *self.base.shared.leader_status.lock() = self.zab.status();
                    }
                    self.start_read_only_when_due();
                }
                _ = ticks.tick(), if self.zab.role() != Role::Looking => {
                    self.expire_sessions();
                    self.propose_prepared()?;
                }
                _ = reaps.tick(), if self.is_leading() => {
                    self.base.reap_containers();
                    self.propose_prepared()?;
                }
            }
        }
    }

    fn is_leading(&self) -> bool {
        matches!(self.zab.role(), Role::Leading { .. })
    }

    fn leader(&self) -> Option<ServerId> {
        match self.zab.role() {
            Role::Following { leader, .. } | Role::Observing { leader, .. } => Some(leader),
            _ => None,
        }
    }

    /// Feeds the core one input and carries out what it says.
    fn step(&mut self, input: zab::Input) -> Result<(), StorageError> {
        if !matches!(input, zab::Input::Tick) {
            tracing::trace!(?input, "core input");
        }
        let actions = self.zab.step(input);
        self.carry_out(actions)
    }

    /// A request or handshake from one of this member's clients.
    fn client_input(&mut self, input: Input) -> Result<(), StorageError> {
        if self.is_leading() {
            if let Input::Request {
                request: Request::Sync(sync),
                connection,
                xid,
                received_ms,
                ..
            } = input
            {
                return self.sync(connection, xid, sync.path, received_ms);
            }
            let check = match &input {
                Input::Request { session_id, .. } => self.session_check(*session_id, self.zab.id()),
                Input::Attach { session_id } => {
                    self.attach(*session_id);
                    return Ok(());
                }
                Input::CreateSession { .. } => SessionCheck::Tracker,
            };
            self.base.prepare_checked(input, check);
            return self.propose_prepared();
        }
        if *self.base.shared.mode.lock() == Mode::ReadOnly {
            self.read_only_input(input);
            return Ok(());
        }
        let input =
            if self.base.shared.config.local_sessions_enabled && self.zab.role() != Role::Looking {
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
        match input {
            Input::Request {
                connection, request: Request::Sync(sync), xid, received_ms, ..
            } => {
                self.sync(connection, xid, sync.path, received_ms)?;
            }
            Input::Request { connection, session_id, xid, request, frame, auth, received_ms } => {
                if matches!(request, Request::CloseSession) {
                    self.base.shared.sessions.lock().set_closing(session_id);
                }
                let op = request.op();
                self.forwarded.insert(
                    (session_id, xid),
                    ReplyTo::Client { connection, op, xid, received_ms },
                );
                let auth = auth.ids().to_vec();
                self.links.send(leader, &PeerFrame::Request { session_id, auth, frame });
            }
            Input::CreateSession { connection, timeout_ms, sent_read_only } => {
                let session_id = self.base.shared.sessions.lock().next_session_id();
                self.handshakes
                    .insert(session_id, ReplyTo::Handshake { connection, sent_read_only });
                self.links.send(leader, &PeerFrame::CreateSession { session_id, timeout_ms });
            }
            Input::Attach { session_id } => self.attach(session_id),
        }
        Ok(())
    }

    /// With local sessions: a new session is opened here without a txn; a local session
    /// closes here; one creating an ephemeral node becomes global first (or fails with
    /// EphemeralOnLocalSession when upgrading is off). `None` when nothing is left to do.
    fn local_session_input(&mut self, input: Input) -> Option<Input> {
        let shared = self.base.shared.clone();
        match input {
            Input::CreateSession { connection, timeout_ms, sent_read_only } => {
                self.open_local_session(&connection, timeout_ms, sent_read_only.then_some(false));
                None
            }
            Input::Request { connection, session_id, xid, request, received_ms, .. }
                if shared.sessions.lock().is_local(session_id)
                    && (matches!(request, Request::CloseSession)
                        || (request.creates_ephemeral()
                            && !shared.config.local_sessions_upgrading_enabled)) =>
            {
                let refusal = Code::EphemeralOnLocalSession;
                self.answer_locally(&connection, session_id, xid, &request, refusal, received_ms);
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
    /// that needs it, in the same order to the leader.
    fn upgrade_session(&mut self, session_id: SessionId) {
        let shared = self.base.shared.clone();
        let timeout_ms = {
            let mut sessions = shared.sessions.lock();
            sessions.upgrade(session_id);
            sessions.timeout_ms(session_id).unwrap_or(0)
        };
        let timeout_ms = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        tracing::debug!(session_id = format_args!("0x{session_id:x}"), "upgrading local session");
        match self.leader() {
            Some(leader) => {
                self.links.send(leader, &PeerFrame::CreateSession { session_id, timeout_ms });
            }
            None => {
                let txn = self.base.prepare_create_session(session_id, timeout_ms);
                self.base.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
            }
        }
    }

    /// Expires sessions: local ones here, with no txn; global ones only on the leader,
    /// which owns them.
    fn expire_sessions(&mut self) {
        let shared = self.base.shared.clone();
        let leading = self.is_leading();
        let (local, global): (Vec<SessionId>, Vec<SessionId>) = {
            let mut sessions = shared.sessions.lock();
            let expired = sessions.expire_owned(shared.clock.now_ms(), leading);
            let (local, global): (Vec<SessionId>, Vec<SessionId>) =
                expired.into_iter().partition(|id| sessions.is_local(*id));
            for session_id in &local {
                sessions.remove(*session_id);
            }
            (local, global)
        };
        for session_id in local {
            tracing::info!(session_id = format_args!("0x{session_id:x}"), "local session expired");
            if let Some(connection) = shared.registry.for_session(session_id) {
                connection.request_close();
            }
        }
        if leading {
            self.base.close_expired(global);
        }
    }

    /// ZooKeeper's read-only server: after a grace period of looking (the larger of 2 s
    /// and a tick, time for an election to succeed), serve read-only clients.
    fn start_read_only_when_due(&mut self) {
        let shared = &self.base.shared;
        let grace = Duration::from_millis(u64::from(shared.config.tick_time_ms).max(2000));
        let due = self.looking_since.is_some_and(|since| since.elapsed() >= grace);
        let mut mode = shared.mode.lock();
        if shared.config.read_only_mode_enabled && due && *mode == Mode::Looking {
            *mode = Mode::ReadOnly;
            tracing::info!("no quorum; serving read-only clients");
        }
    }

    /// A read-only member opens sessions locally and refuses every change.
    fn read_only_input(&mut self, input: Input) {
        match input {
            Input::Attach { .. } => {}
            // Sessions opened while read-only are local: known to no one else, and
            // forgotten when read-only service ends.
            Input::CreateSession { connection, timeout_ms, .. } => {
                self.open_local_session(&connection, timeout_ms, Some(true));
            }
            Input::Request { connection, session_id, xid, request, received_ms, .. } => {
                let refusal = Code::NotReadOnly;
                self.answer_locally(&connection, session_id, xid, &request, refusal, received_ms);
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
    ) {
        let shared = &self.base.shared;
        let session_id = {
            let mut sessions = shared.sessions.lock();
            let session_id = sessions.next_session_id();
            let timeout = u64::try_from(timeout_ms).unwrap_or(0);
            sessions.add_local(session_id, timeout, shared.clock.now_ms());
            session_id
        };
        self.base.establish(connection, session_id, timeout_ms, read_only);
    }

    /// Answers a request decided here, without a txn: a close of a local session ends
    /// it; anything else is refused with `refusal`.
    fn answer_locally(
        &self,
        connection: &Connection,
        session_id: SessionId,
        xid: i32,
        request: &Request,
        refusal: Code,
        received_ms: u64,
    ) {
        let op = request.op();
        let code = if op == OpCode::CloseSession {
            self.base.shared.sessions.lock().remove(session_id);
            Code::Ok
        } else {
            refusal
        };
        self.base.answer_locally(connection, op, xid, code, received_ms);
    }

    fn sync(
        &mut self,
        connection: Arc<Connection>,
        xid: i32,
        path: String,
        received_ms: u64,
    ) -> Result<(), StorageError> {
        let id = self.next_sync;
        self.next_sync += 1;
        self.syncs.insert(id, PendingSync { connection, xid, path, received_ms });
        self.step(zab::Input::Sync { id })
    }

    /// Proposes what the base driver prepared (the leader's txns, in zxid order).
    fn propose_prepared(&mut self) -> Result<(), StorageError> {
        let prepared = std::mem::take(&mut self.base.prepared);
        for work in prepared {
            match work {
                Work::Txn(txn, reply_to) => {
                    if !self.is_leading() {
                        // Leadership was lost while proposing: the client reconnects.
                        close_reply(&reply_to);
                        continue;
                    }
                    if crate::txn::zxid_counter(txn.zxid()) == u32::MAX {
                        // ZooKeeper's xid rollover: a new epoch restarts the counter.
                        close_reply(&reply_to);
                        self.step(zab::Input::StepDown)?;
                        continue;
                    }
                    encode_entry_into(&txn, &mut self.entry_buffer);
                    let entry =
                        Entry { zxid: txn.zxid(), payload: self.entry_buffer.split().freeze() };
                    self.proposed.push_back((txn, reply_to));
                    self.step(zab::Input::Propose(entry))?;
                }
                Work::Sync { connection, xid, path, received_ms } => {
                    self.sync(connection, xid, path, received_ms)?;
                }
            }
        }
        Ok(())
    }

    async fn link_event(&mut self, event: LinkEvent) -> Result<(), StorageError> {
        match event {
            LinkEvent::Disconnected { peer, breaks } => {
                self.links.disconnected(peer, breaks);
                self.persist.forget(peer);
                // A snapshot in transit is incomplete: the leader sends a whole one again.
                if self.inbound.as_ref().is_some_and(|(source, _)| *source == peer) {
                    self.inbound = None;
                }
                self.step(zab::Input::Disconnected { peer })
            }
            LinkEvent::Frame { from, frame: PeerFrame::Zab(message) } => {
                if let Message::Snap { zxid, .. } = &message {
                    if !self.seal_snapshot(from, *zxid).await {
                        return Ok(());
                    }
                }
                self.step(zab::Input::Message { from, message })
            }
            LinkEvent::Frame { from, frame: PeerFrame::SnapshotChunk { zxid, index, chunk } } => {
                self.snapshot_chunk(from, zxid, index, chunk).await
            }
            LinkEvent::Frame { from, .. } if !self.is_leading() => {
                tracing::debug!(from, "a learner's frame while not leading; ignored");
                Ok(())
            }
            LinkEvent::Frame { from, frame: PeerFrame::Request { session_id, auth, frame } } => {
                self.forwarded_request(from, session_id, auth, &frame);
                self.propose_prepared()
            }
            LinkEvent::Frame { from, frame: PeerFrame::Attach { session_id } } => {
                self.base.shared.sessions.lock().set_owner(session_id, from);
                Ok(())
            }
            LinkEvent::Frame {
                from,
                frame: PeerFrame::CreateSession { session_id, timeout_ms },
            } => {
                let txn = self.base.prepare_create_session(session_id, timeout_ms);
                self.base.shared.sessions.lock().set_owner(session_id, from);
                self.base.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
                self.propose_prepared()
            }
            LinkEvent::Frame { frame: PeerFrame::Touch(sessions), .. } => {
                let shared = self.base.shared.clone();
                let now_ms = shared.clock.now_ms();
                let mut tracker = shared.sessions.lock();
                for session_id in sessions {
                    tracker.touch(session_id, now_ms);
                }
                Ok(())
            }
        }
    }

    /// Prepares a write a learner forwarded; the learner answers its client.
    fn forwarded_request(
        &mut self,
        from: ServerId,
        session_id: SessionId,
        auth: Vec<jute::records::Id>,
        frame: &Bytes,
    ) {
        let decoded = match Frame::decode(frame) {
            Ok(Frame { xid, request: Ok(request) }) if request.is_write() => (xid, request),
            _ => {
                tracing::warn!(from, "a learner forwarded a request that is not a write; ignored");
                return;
            }
        };
        let (xid, request) = decoded;
        let shared = self.base.shared.clone();
        let known = shared.sessions.lock().touch(session_id, shared.clock.now_ms());
        // A session the leader does not know, opened by another member while local
        // sessions are on, is that member's local session: ZooKeeper's leader lets it
        // through, except to own ephemerals, which need a global session.
        let check = if !known
            && shared.config.local_sessions_enabled
            && (session_id as u64 >> 56) != self.zab.id()
            && !request.creates_ephemeral()
        {
            SessionCheck::OwnedElsewhere
        } else {
            self.session_check(session_id, from)
        };
        let auth = AuthIds::from_ids(auth);
        if let Some(txn) = self.base.prepare_request(session_id, xid, &request, &auth, check) {
            self.base.prepared.push(Work::Txn(txn, ReplyTo::Nobody));
        }
    }

    /// The leader's check of a request that `member` sent for `session_id`: once the
    /// session's client has resumed on another member, this one's requests are stale
    /// (SessionMoved). The first member heard from owns a session whose owner is not
    /// known yet (one created before this leader's term).
    fn session_check(&self, session_id: SessionId, member: ServerId) -> SessionCheck {
        let mut sessions = self.base.shared.sessions.lock();
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
    fn attach(&mut self, session_id: SessionId) {
        if self.is_leading() {
            self.base.shared.sessions.lock().set_owner(session_id, self.zab.id());
        } else if let Some(leader) = self.leader() {
            self.links.send(leader, &PeerFrame::Attach { session_id });
        }
    }

    /// A follower tells the leader which of its sessions were active.
    fn report_touches(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let touched = self.base.shared.sessions.lock().take_touched();
        if !touched.is_empty() {
            self.links.send(leader, &PeerFrame::Touch(touched));
        }
    }

    /// Carries out the core's actions in order; storage writes go to the storage thread.
    fn carry_out(&mut self, actions: Vec<Action>) -> Result<(), StorageError> {
        for action in actions {
            tracing::trace!(?action, "core action");
            match action {
                Action::Send { to, message } => self.send(to, message, false),
                Action::SendAfterPersist { to, message } => self.send(to, message, true),
                Action::Append(entries) => self.persist.append(
                    entries
                        .into_iter()
                        .map(|entry| LogEntry { zxid: entry.zxid, value: entry.payload }),
                ),
                Action::Truncate(zxid) => self.persist.push(Write::Truncate(zxid)),
                Action::InstallSnapshot(zxid) => self.install_snapshot(zxid)?,
                Action::PersistEpochs(epochs) => self.persist.push(Write::Epochs(epochs)),
                Action::Apply(entries) => self.apply(entries)?,
                Action::Role(role) => self.take_role(role),
                Action::SyncDone { id } => {
                    if let Some(sync) = self.syncs.remove(&id) {
                        let PendingSync { connection, xid, path, received_ms } = sync;
                        self.base.answer_sync(&connection, xid, path, received_ms);
                    }
                }
                Action::SyncFailed { id } => {
                    if let Some(sync) = self.syncs.remove(&id) {
                        sync.connection.request_close();
                    }
                }
                Action::DropLink { peer } => self.reset_link(peer),
            }
        }
        Ok(())
    }

    /// Sends `message` now, or once the writes asked for before it are durable if
    /// `after_persist` (or an earlier message to `to` still waits). The leader starts
    /// streaming the snapshot a `Snap` offers at once, at the state it is about, even if
    /// the message waits.
    fn send(&mut self, to: ServerId, message: Message, after_persist: bool) {
        let snapshot = match &message {
            Message::Snap { zxid, .. } => self.send_snapshot(to, *zxid),
            _ => None,
        };
        let outgoing = Outgoing { message, snapshot };
        let now = if after_persist {
            self.persist.send_after_persist(to, outgoing)
        } else {
            self.persist.send(to, outgoing)
        };
        if let Some(outgoing) = now {
            self.transmit(to, outgoing);
        }
    }

    fn transmit(&mut self, to: ServerId, outgoing: Outgoing) {
        if let Some(frames) = outgoing.snapshot {
            self.links.stream(to, frames);
        }
        self.links.send(to, &PeerFrame::Zab(outgoing.message));
    }

    /// Closes the connection to `peer` (it reconnects), with the messages waiting for it.
    fn reset_link(&mut self, peer: ServerId) {
        self.persist.forget(peer);
        self.links.reset(peer);
    }

    /// Hands the writes waiting to the storage thread unless a batch is in flight.
    fn start_writing(&mut self) -> Result<(), StorageError> {
        match self.persist.take_batch() {
            Some(batch) => self.base.writer.write(batch),
            None => Ok(()),
        }
    }

    /// The batch in flight is durable: the messages waiting for it go, and the core
    /// hears which log position is durable.
    fn batch_written(&mut self) -> Result<(), StorageError> {
        let done = self.persist.written();
        for (to, outgoing) in done.released {
            self.transmit(to, outgoing);
        }
        match done.persisted {
            Some(zxid) => self.step(zab::Input::Persisted { zxid }),
            None => Ok(()),
        }
    }

    /// Applies committed entries and answers the clients waiting for them.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let count = entries.len() as u64;
        for entry in entries {
            let own = self.proposed.front().is_some_and(|(txn, _)| txn.zxid() == entry.zxid);
            let proposed = if own { self.proposed.pop_front() } else { None };
            let (txn, reply_to) = match proposed {
                Some(proposed) => proposed,
                None => {
                    let txn = decode_entry(&LogEntry { zxid: entry.zxid, value: entry.payload })?;
                    let reply_to = self.reply_to(&txn);
                    (txn, reply_to)
                }
            };
            if let TxnBody::CreateSession(create) = &txn.body {
                let shared = &self.base.shared;
                let mut sessions = shared.sessions.lock();
                if !sessions.contains(txn.header.client_id) {
                    let timeout_ms = u64::try_from(create.time_out).unwrap_or(0);
                    sessions.add(txn.header.client_id, timeout_ms, shared.clock.now_ms());
                }
            }
            self.base.apply(&txn, reply_to);
        }
        // A periodic snapshot would store the received state before the store holds it.
        if !self.persist.rewriting() {
            self.base.count_applied(count);
        }
        Ok(())
    }

    /// Who waits here for a txn the leader committed: a forwarded write or handshake.
    fn reply_to(&mut self, txn: &Txn) -> ReplyTo {
        let session_id = txn.header.client_id;
        let waiting = if matches!(txn.body, TxnBody::CreateSession(_)) {
            self.handshakes.remove(&session_id)
        } else {
            self.forwarded.remove(&(session_id, txn.header.cxid))
        };
        waiting.unwrap_or(ReplyTo::Nobody)
    }

    /// The leader starts sending a learner its state at `zxid` (which is what is applied
    /// here) from a thread of its own; the chunks come out of the channel returned.
    fn send_snapshot(&mut self, to: ServerId, zxid: Zxid) -> Option<mpsc::Receiver<Bytes>> {
        self.outbound.retain(|outbound| !outbound.is_finished());
        let shared = self.base.shared.clone();
        let applied = shared.database.last_applied_zxid();
        if applied != zxid {
            tracing::error!(
                zxid = format_args!("0x{zxid:x}"),
                applied = format_args!("0x{applied:x}"),
                "snapshot asked for a zxid that is not the applied one"
            );
        }
        let sessions = live_sessions(&shared);
        match Outbound::start(shared, to, zxid, sessions) {
            Ok((outbound, frames)) => {
                self.outbound.push(outbound);
                Some(frames)
            }
            Err(err) => {
                tracing::error!(learner = to, cause = %err, "cannot start a snapshot transfer");
                self.reset_link(to);
                None
            }
        }
    }

    /// A chunk of the snapshot the leader `from` is sending: the first starts a new
    /// transfer. A chunk out of order drops the link; the leader starts over.
    async fn snapshot_chunk(
        &mut self,
        from: ServerId,
        zxid: Zxid,
        index: u32,
        chunk: Bytes,
    ) -> Result<(), StorageError> {
        if index == 0 {
            self.inbound = None;
            self.sealed = None;
            self.base.snapshotter.interrupt();
            let storage = self.base.storage.clone();
            let created_ms = self.base.shared.clock.wall_ms() as i64;
            let tree = self.base.shared.database.tree();
            let inbound = Inbound::start(storage, tree, zxid, created_ms).map_err(|err| {
                StorageError::Backend(format!("cannot start a snapshot transfer: {err}"))
            })?;
            self.inbound = Some((from, inbound));
        }
        let received = match &mut self.inbound {
            Some((source, inbound)) if *source == from => inbound.chunk(zxid, index, chunk).await,
            _ => Err(transfer::TransferError::Unexpected { zxid, index }),
        };
        if let Err(err) = received {
            self.abandon_snapshot(from, &err);
        }
        Ok(())
    }

    /// Gives up the transfer from `from` and drops the link; the leader starts over.
    fn abandon_snapshot(&mut self, from: ServerId, err: &transfer::TransferError) {
        tracing::warn!(from, cause = %err, "a bad snapshot transfer; dropping the link");
        self.inbound = None;
        self.reset_link(from);
    }

    /// The leader `from` offers the snapshot `zxid` it sent: whether every chunk of it
    /// came and loaded. If not, the link is dropped and the offer ignored.
    async fn seal_snapshot(&mut self, from: ServerId, zxid: Zxid) -> bool {
        let sealed = match self.inbound.take() {
            Some((source, inbound)) if source == from && inbound.zxid() == zxid => {
                inbound.seal().await
            }
            _ => Err(transfer::TransferError::Missing { zxid }),
        };
        match sealed {
            Ok(sealed) => {
                self.sealed = Some((from, sealed));
                true
            }
            Err(err) => {
                self.abandon_snapshot(from, &err);
                false
            }
        }
    }

    /// Replaces the state with the snapshot the leader sent and has the storage thread
    /// store it, after every write asked for before.
    fn install_snapshot(&mut self, zxid: Zxid) -> Result<(), StorageError> {
        let Some((_, sealed)) =
            self.sealed.take().filter(|(_, sealed)| sealed.store.zxid() == zxid)
        else {
            return Err(StorageError::Corrupt(format!(
                "the core installs snapshot 0x{zxid:x}, which did not arrive"
            )));
        };
        self.base.snapshotter.interrupt();
        self.outbound.drain(..).for_each(Outbound::stop);
        let Sealed { tree, loaded, store } = sealed;
        let shared = self.base.shared.clone();
        shared.database.install(zxid, tree);
        {
            let now_ms = shared.clock.now_ms();
            let mut sessions = shared.sessions.lock();
            sessions.clear();
            for (session_id, timeout_ms) in &loaded.sessions {
                sessions.add(*session_id, u64::try_from(*timeout_ms).unwrap_or(0), now_ms);
            }
        }
        self.base.preparer = Preparer::new(zxid);
        self.persist.push(Write::Snapshot(store, self.zab.history().epoch_ends().to_vec()));
        tracing::info!(
            zxid = format_args!("0x{zxid:x}"),
            nodes = loaded.nodes,
            "installed the leader's snapshot"
        );
        Ok(())
    }

    /// The core announced a role: serve clients or stop serving them.
    fn take_role(&mut self, role: Role) {
        let shared = self.base.shared.clone();
        if role == Role::Looking {
            self.looking_since.get_or_insert_with(Instant::now);
        } else {
            self.looking_since = None;
            self.end_read_only();
        }
        let mode = match role {
            _ if self.standalone => Mode::Standalone,
            Role::Looking => Mode::Looking,
            Role::Leading { .. } => Mode::Leader,
            Role::Following { .. } => Mode::Follower,
            Role::Observing { .. } => Mode::Observer,
        };
        *shared.mode.lock() = mode;
        match role {
            Role::Looking => {
                let mut sessions = shared.sessions.lock();
                sessions.set_reporting(false);
                sessions.remove_local();
                drop(sessions);
                for connection in shared.registry.all() {
                    connection.request_close();
                }
                self.proposed.clear();
                self.forwarded.clear();
                self.handshakes.clear();
                self.syncs.clear();
                return;
            }
            Role::Leading { epoch, .. } => {
                self.base.preparer = Preparer::new(zab::epoch_start(epoch));
                let mut sessions = shared.sessions.lock();
                sessions.set_reporting(false);
                sessions.touch_all(shared.clock.now_ms());
            }
            Role::Following { .. } | Role::Observing { .. } => {
                shared.sessions.lock().set_reporting(true);
            }
        }
        let zxid = format_args!("0x{:x}", shared.database.last_applied_zxid());
        if self.standalone {
            tracing::debug!(?role, zxid, "a standalone server leads itself");
        } else {
            tracing::info!(mode = mode.name(), zxid, "serving clients");
        }
        self.persist.push(Write::EpochEnds(self.zab.history().epoch_ends().to_vec()));
    }
}

impl Member {
    /// Leaving read-only service: its clients reconnect (to a read-write server, if they
    /// can), and its local sessions are forgotten.
    fn end_read_only(&mut self) {
        let shared = self.base.shared.clone();
        if *shared.mode.lock() != Mode::ReadOnly {
            return;
        }
        for connection in shared.registry.all() {
            connection.request_close();
        }
        shared.sessions.lock().remove_local();
    }
}

/// A batch's outcome, or the error that must stop the server.
fn write_outcome(outcome: Option<Written>) -> Result<(), StorageError> {
    let outcome =
        outcome.unwrap_or_else(|| Err(StorageError::Backend("the storage thread stopped".into())));
    if let Err(err) = &outcome {
        tracing::error!(cause = %err, "writing to the store failed; stopping");
    }
    outcome
}

/// A request that will not be answered here: its client must reconnect elsewhere.
fn close_reply(reply_to: &ReplyTo) {
    match reply_to {
        ReplyTo::Nobody => {}
        ReplyTo::Client { connection, .. } | ReplyTo::Handshake { connection, .. } => {
            connection.request_close();
        }
    }
}
