//! The write pipeline of every server, as one synchronous state machine: prepare →
//! propose → log → commit → apply → notify → reply, in zxid order, in batches of
//! whatever arrived together. It does no IO: the shell (`server::driver`) feeds it
//! client inputs, peer frames, ticks and storage completions, hands the writes it asks
//! for to the storage thread, and carries out the [`Effect`]s it emits.
//!
//! The replication core ([`Zab`]) decides what is logged, committed and applied, and
//! holds the role; this module decides what a request becomes in that role:
//! - Standalone: an ensemble of one voter with no links, which elects itself before it
//!   takes its first input and then leads, committing what its own log holds.
//! - Leader: requests are prepared, then proposed; each is answered once the core has it
//!   committed and this member has applied it. The leader alone expires global
//!   sessions and reaps containers.
//! - Follower and observer: writes go to the leader as the client framed them, new
//!   sessions with an id this member chose; the answer goes out when the committed txn
//!   comes back and is applied here, matched by session and xid (by session id for a
//!   new session). Touched sessions are reported to the leader every core tick.
//! - Any role: `sync` asks the core, which has a quorum confirm the leadership first and
//!   answers it after the writes proposed before it.
//! - Looking: no clients are served; their connections are closed, and they reconnect
//!   to another member (or, with read-only mode, get a read-only session here).
//!
//! A session enters the session tracker when its createSession txn is applied, in every
//! role; a local session (never a txn) when it is opened.

mod answer;
mod persist_queue;
mod sessions;
mod timing;
mod work;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use jute::records::RequestHeader;
use jute::{OpCode, Record};

use crate::ensemble::frame::PeerFrame;
use crate::fast_hash::FastHashMap;
use crate::prepare::{ChangeCounts, Preparer};
use crate::server::registry::ConnId;
use crate::server::restore::{Installed, Restore};
use crate::server::storage_writer::{Batch, Write};
use crate::server::transfer::Sealed;
use crate::server::{Mode, Shared};
use crate::session::AuthIds;
use crate::storage::record::{decode_entry_with_digest, encode_entry_into, unseal};
use crate::storage::{LogEntry, StorageError};
use crate::txn::{SessionId, Txn, TxnBody, Zxid};
use crate::zab::{self, Action, Entry, Message, Restored, Role, ServerId, Zab, ZabConfig};

use answer::Slot;
use persist_queue::PersistQueue;
use timing::{ElectionClock, Proposed};
pub use work::Input;
use work::{ReplyTo, Work};

/// What the shell must do for the pipeline, in the order emitted.
#[derive(Debug)]
pub enum Effect {
    /// Send `frame` on the link to member `to`.
    Send {
        /// The member.
        to: ServerId,
        /// What to send.
        frame: PeerFrame,
    },
    /// Start streaming the applied state to `to`, labelled `zxid`, from a thread of its
    /// own; the chunks go ahead of the next `Snap` sent to `to`. It may start a little
    /// later than the state it is labelled with: it is fuzzy anyway, and the learner's
    /// replay of the entries after `zxid` makes later changes in it harmless.
    StreamSnapshot {
        /// The learner.
        to: ServerId,
        /// The zxid applied when the core offered the snapshot.
        zxid: Zxid,
    },
    /// Close the link to `peer` (it reconnects), with anything queued for it.
    ResetLink(ServerId),
    /// This member stopped leading or following: the connections of the term that
    /// ended close.
    EndTerm,
    /// `count` txns were applied, towards the next periodic snapshot.
    Applied(u64),
}

/// The log position a finished batch made durable (none when a truncation or snapshot
/// asked for after it makes its appends meaningless), for [`Pipeline::persisted`].
#[must_use = "the core must hear what is durable"]
#[derive(Debug)]
pub struct Durable(Option<Zxid>);

/// A `sync` waiting for the core: a client's, or a round of the read barrier
/// (`zkrs.linearizableReads`), asked for in the session of one of its readers.
enum PendingSync {
    Client(ClientSync),
    ReadBarrier { round: u64, session_id: SessionId },
}

/// A client's `sync` request.
struct ClientSync {
    connection: Arc<crate::server::registry::Connection>,
    xid: i32,
    path: String,
    received_us: u64,
}

/// The pipeline of a server, standalone or an ensemble member.
pub struct Pipeline {
    shared: Arc<Shared>,
    zab: Zab,
    /// An ensemble of one, shown as ZooKeeper's standalone mode.
    standalone: bool,
    preparer: Preparer,
    /// Who the server's own txns (expiry, reaping) run as.
    server_auth: AuthIds,
    /// Writes asked of the storage thread, and the messages that wait for them.
    persist: PersistQueue<PeerFrame>,
    /// Prepared work, in order, waiting to be proposed.
    prepared: Vec<Work>,
    /// The leader's own proposals, in zxid order, with whom to answer.
    proposed: VecDeque<Proposed>,
    /// Writes forwarded to the leader, by session and xid, with when they went.
    forwarded: FastHashMap<(SessionId, i32), (ReplyTo, u64)>,
    /// A follower's proposals not yet applied, with when each arrived.
    arrivals: VecDeque<(Zxid, u64)>,
    /// Txns applied since the pipeline started.
    applied_txns: u64,
    /// Watchers woken by the txns applied since the last batch went to the storage thread.
    woken: usize,
    /// A follower's proposals not yet in its log, with each one's txn time.
    unacked: VecDeque<(Zxid, Option<i64>)>,
    /// On a leader, the last zxid each voter acknowledged.
    acked: BTreeMap<ServerId, Zxid>,
    /// The election under way or the last one, for ZooKeeper's election metrics.
    election: ElectionClock,
    /// New sessions asked of the leader, by the id this member chose.
    handshakes: FastHashMap<SessionId, ReplyTo>,
    syncs: FastHashMap<u64, PendingSync>,
    next_sync: u64,
    /// A round of the read barrier ended while the core was stepped: the next may begin.
    read_barrier_ended: bool,
    /// Per connection with a `sync` waiting, its replies from that sync on, in order.
    behind_syncs: FastHashMap<ConnId, VecDeque<Slot>>,
    /// The snapshot a leader (the member named) sent in full, installed by its `Snap`.
    sealed: Option<(ServerId, Sealed)>,
    /// Where proposals are encoded.
    entry_buffer: BytesMut,
    /// Since when (clock milliseconds) this member has been looking for a leader.
    looking_since_ms: Option<u64>,
    /// When a digest mismatch was last logged.
    digest_warned_ms: Option<u64>,
    effects: Vec<Effect>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("role", &self.zab.role()).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// The pipeline of a member with `config`, its state at `restored.applied`. A
    /// standalone server (`standalone`) has elected itself when this returns.
    ///
    /// # Errors
    /// If carrying out the core's first actions fails.
    pub fn start(
        shared: Arc<Shared>,
        config: ZabConfig,
        restored: Restored,
        standalone: bool,
    ) -> Result<Pipeline, StorageError> {
        let (zab, actions) = Zab::new(config, restored);
        let mut pipeline = Pipeline {
            preparer: Preparer::new(shared.database.last_applied_zxid()),
            persist: PersistQueue::new(zab.last_zxid()),
            looking_since_ms: Some(shared.clock.now_ms()),
            digest_warned_ms: None,
            shared,
            zab,
            standalone,
            server_auth: AuthIds::server(),
            prepared: Vec::new(),
            proposed: VecDeque::new(),
            forwarded: FastHashMap::default(),
            arrivals: VecDeque::new(),
            applied_txns: 0,
            woken: 0,
            unacked: VecDeque::new(),
            acked: BTreeMap::new(),
            election: ElectionClock::default(),
            handshakes: FastHashMap::default(),
            syncs: FastHashMap::default(),
            next_sync: 0,
            read_barrier_ended: false,
            behind_syncs: FastHashMap::default(),
            sealed: None,
            entry_buffer: BytesMut::new(),
            effects: Vec::new(),
        };
        pipeline.carry_out(actions)?;
        pipeline.time_election();
        if standalone {
            pipeline.step(zab::Input::Tick)?;
        }
        Ok(pipeline)
    }

    /// Moves the effects emitted so far into `into` (which the shell passes empty).
    /// The shell takes them after every input, so the change records counted since
    /// the last input are published here too.
    pub fn take_effects(&mut self, into: &mut Vec<Effect>) {
        std::mem::swap(&mut self.effects, into);
        self.publish_change_counts();
    }

    /// Adds the change records the preparer made and dropped since last asked to
    /// ZooKeeper's counters of them.
    fn publish_change_counts(&mut self) {
        let counts = self.preparer.take_change_counts();
        if counts != ChangeCounts::default() {
            let processors = &self.shared.stats.processors;
            processors.outstanding_changes_queued.fetch_add(counts.queued, Ordering::Relaxed);
            processors.outstanding_changes_removed.fetch_add(counts.removed, Ordering::Relaxed);
        }
    }

    /// A new preparer whose first txn follows `zxid`, the pending changes of the one
    /// it replaces dropped (as ZooKeeper drops its outstanding changes with its server).
    fn replace_preparer(&mut self, zxid: Zxid) {
        self.publish_change_counts();
        self.preparer = Preparer::new(zxid);
    }

    /// The writes to hand the storage thread now, if any are waiting and it does not
    /// have [`crate::server::storage_writer::BATCHES_IN_FLIGHT`] batches in hand already.
    pub fn take_batch(&mut self) -> Option<Batch> {
        let writes = self.persist.take_batch()?;
        Some(Batch { writes, awaited: std::mem::take(&mut self.woken) })
    }

    /// Whether the storage thread is writing a batch the pipeline waits for.
    pub fn is_writing(&self) -> bool {
        self.persist.is_writing()
    }

    /// Whether the member is looking for a leader (and so serves no writes).
    fn is_looking(&self) -> bool {
        self.zab.role() == Role::Looking
    }

    /// The oldest `batches` batches handed to the storage thread are durable: the messages
    /// waiting for them go. The shell then hands the storage thread what waits
    /// ([`Pipeline::take_batch`]) and only then tells the core ([`Pipeline::persisted`]),
    /// so the disk writes what was proposed meanwhile while this member commits, applies
    /// and answers.
    pub fn batch_written(&mut self, batches: usize) -> Durable {
        let done = self.persist.written(batches);
        for (to, frame) in done.released {
            self.effects.push(Effect::Send { to, frame });
        }
        Durable(done.persisted)
    }

    /// The core hears what a finished batch made durable, and commits what it can.
    ///
    /// # Errors
    /// If applying what this commits fails; the server must stop.
    pub fn persisted(&mut self, durable: Durable) -> Result<(), StorageError> {
        match durable.0 {
            Some(zxid) => {
                self.time_logged(zxid);
                self.step(zab::Input::Persisted { zxid })
            }
            None => Ok(()),
        }
    }

    /// The core's tick: elections, heartbeats, session reports, read-only service.
    ///
    /// # Errors
    /// If applying what this commits fails; the server must stop.
    pub fn core_tick(&mut self) -> Result<(), StorageError> {
        self.step(zab::Input::Tick)?;
        self.report_touches();
        if !self.standalone {
            *self.shared.leader_status.lock() = self.zab.status();
        }
        self.start_read_only_when_due();
        Ok(())
    }

    /// The session tick: expired sessions are closed.
    ///
    /// # Errors
    /// If proposing fails; the server must stop.
    pub fn session_tick(&mut self) -> Result<(), StorageError> {
        if self.is_looking() {
            return Ok(());
        }
        self.expire_sessions();
        self.propose_prepared()
    }

    /// The container reaper's tick; only the leader reaps.
    ///
    /// # Errors
    /// If proposing fails; the server must stop.
    pub fn reap_tick(&mut self) -> Result<(), StorageError> {
        if !self.is_leading() {
            return Ok(());
        }
        self.reap_containers();
        self.propose_prepared()
    }

    /// The link to `peer` broke: what waits for it is dropped, and the core hears.
    ///
    /// # Errors
    /// If applying what this commits fails; the server must stop.
    pub fn disconnected(&mut self, peer: ServerId) -> Result<(), StorageError> {
        self.persist.forget(peer);
        self.step(zab::Input::Disconnected { peer })
    }

    /// Drops the link to `peer` with what waits for it; it reconnects.
    pub fn drop_link(&mut self, peer: ServerId) {
        self.persist.forget(peer);
        self.effects.push(Effect::ResetLink(peer));
    }

    /// The leader `from` sent every chunk of a snapshot; its `Snap` follows and installs
    /// it. The shell has stopped whatever was reading the state.
    pub fn snapshot_sealed(&mut self, from: ServerId, sealed: Sealed) {
        self.sealed = Some((from, sealed));
    }

    /// A frame from member `from` (snapshot chunks are the shell's, not this).
    ///
    /// # Errors
    /// If applying or proposing fails; the server must stop.
    pub fn peer_frame(&mut self, from: ServerId, frame: PeerFrame) -> Result<(), StorageError> {
        match frame {
            PeerFrame::Zab(message) => {
                if let Some(zxid) = first_unsealed(&message) {
                    tracing::warn!(
                        from,
                        %zxid,
                        "a member sent a log entry that fails its checksum; dropping the link"
                    );
                    self.drop_link(from);
                    return Ok(());
                }
                match &message {
                    Message::Proposal(entry) => self.time_proposal_arrived(entry),
                    Message::Ack { zxid } => self.time_ack(from, *zxid),
                    _ => {}
                }
                let offers_snapshot = matches!(message, Message::Snap { .. });
                let commits = matches!(message, Message::Commit { .. });
                let ends_sync = matches!(message, Message::AckNewLeader { .. });
                let syncing_before = if ends_sync { self.zab.syncs_in_flight() } else { None };
                let applied_before = self.applied_txns;
                self.step(zab::Input::Message { from, message })?;
                self.sample_ended_syncs(syncing_before);
                if commits {
                    // ZooKeeper counts a COMMIT packet per txn; one Commit here may cover many.
                    let committed = self.applied_txns - applied_before;
                    self.shared
                        .stats
                        .quorum
                        .learner_commits
                        .fetch_add(committed, Ordering::Relaxed);
                }
                // The core installs an offered snapshot at once, or keeps its own newer
                // state: then the snapshot goes, unstored.
                if offers_snapshot && self.sealed.take().is_some() {
                    tracing::info!(
                        from,
                        "kept this member's newer state over the leader's snapshot"
                    );
                }
                Ok(())
            }
            PeerFrame::SnapshotPieces { .. } => {
                tracing::debug!(from, "a snapshot's pieces reached the pipeline; ignored");
                Ok(())
            }
            PeerFrame::Revalidated { session_id, valid } => {
                tracing::debug!(from, %session_id, valid, "the leader revalidated a session");
                Ok(())
            }
            _ if !self.is_leading() => {
                tracing::debug!(from, "a learner's frame while not leading; ignored");
                Ok(())
            }
            PeerFrame::Request { session_id, auth, frame } => {
                self.learner_request(from, session_id, auth, &frame)
            }
            PeerFrame::Revalidate { session_id, .. } => {
                self.revalidate(from, session_id);
                Ok(())
            }
            PeerFrame::Touch(sessions) => {
                let now_ms = self.shared.clock.now_ms();
                let mut tracker = self.shared.sessions.lock();
                for (session_id, _) in sessions {
                    tracker.touch(session_id, now_ms);
                }
                Ok(())
            }
        }
    }

    /// Whether this member leads (a standalone server leads itself): it prepares its
    /// clients' writes itself, where ZooKeeper has a `PrepRequestProcessor`, so its
    /// `prep_processor_*` metrics count only then.
    pub fn is_leading(&self) -> bool {
        matches!(self.zab.role(), Role::Leading { .. })
    }

    fn leader(&self) -> Option<ServerId> {
        match self.zab.role() {
            Role::Following { leader, .. } | Role::Observing { leader, .. } => Some(leader),
            _ => None,
        }
    }

    /// Sends `frame` to `to` behind whatever waits to go to it: frames to one member
    /// never overtake each other (a forwarded write must not pass a `sync` before it).
    fn send_to(&mut self, to: ServerId, frame: PeerFrame) {
        if let Some(frame) = self.persist.send(to, frame) {
            self.effects.push(Effect::Send { to, frame });
        }
    }

    /// Feeds the core one input and carries out what it says.
    fn step(&mut self, input: zab::Input) -> Result<(), StorageError> {
        if !matches!(input, zab::Input::Tick) {
            tracing::trace!(?input, "core input");
        }
        let actions = self.zab.step(input);
        self.carry_out(actions)?;
        self.time_election();
        if std::mem::take(&mut self.read_barrier_ended) {
            self.read_barrier()?;
        }
        Ok(())
    }

    /// Carries out the core's actions in order; storage writes are queued for the
    /// storage thread, messages for the links.
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
                Action::SyncDone { id } => self.sync_done(id),
                Action::SyncFailed { id } => self.sync_failed(id),
                Action::DropLink { peer } => self.drop_link(peer),
            }
        }
        Ok(())
    }

    /// Sends `message` now, or once the writes asked for before it are durable if
    /// `after_persist` (or an earlier message to `to` still waits). A `Snap` has the
    /// snapshot it offers start streaming at once, at the state it is about.
    fn send(&mut self, to: ServerId, message: Message, after_persist: bool) {
        if let Message::Snap { zxid, .. } = &message {
            let applied = self.shared.database.last_applied_zxid();
            if applied != *zxid {
                tracing::error!(
                    %zxid,
                    %applied,
                    "snapshot asked for a zxid that is not the applied one"
                );
            }
            self.effects.push(Effect::StreamSnapshot { to, zxid: *zxid });
        }
        let quorum = &self.shared.stats.quorum;
        match &message {
            Message::Snap { .. } => {
                quorum.snaps.fetch_add(1, Ordering::Relaxed);
                self.sample_syncs_in_flight(true);
            }
            Message::Diff { .. } => {
                quorum.diffs.fetch_add(1, Ordering::Relaxed);
                self.sample_syncs_in_flight(false);
            }
            _ => {}
        }
        let frame = match message {
            Message::SyncRequest { id } => match self.forwarded_sync(id) {
                Some(frame) => frame,
                None => return,
            },
            message => PeerFrame::Zab(message),
        };
        if !after_persist {
            return self.send_to(to, frame);
        }
        if let Some(frame) = self.persist.send_after_persist(to, frame) {
            self.effects.push(Effect::Send { to, frame });
        }
    }

    /// A client's `sync`, answered once the core says everything before it is applied.
    fn sync(
        &mut self,
        connection: Arc<crate::server::registry::Connection>,
        xid: i32,
        path: String,
        received_us: u64,
    ) -> Result<(), StorageError> {
        if self.is_leading() {
            self.time_sync_prepared();
        }
        let id = self.next_sync;
        self.next_sync += 1;
        self.behind_syncs.entry(connection.id).or_default().push_back(Slot::Sync { id, xid });
        let sync = ClientSync { connection, xid, path, received_us };
        self.syncs.insert(id, PendingSync::Client(sync));
        self.step(zab::Input::Sync { id })
    }

    /// Begins the rounds of the read barrier its readers asked for, one at a time: each
    /// is a `sync` of the core's, and the next begins when it ends.
    ///
    /// # Errors
    /// If carrying out the core's actions fails; the server must stop.
    pub fn read_barrier(&mut self) -> Result<(), StorageError> {
        while let Some((round, session_id)) = self.shared.read_barrier.begin() {
            let id = self.next_sync;
            self.next_sync += 1;
            self.syncs.insert(id, PendingSync::ReadBarrier { round, session_id });
            self.step(zab::Input::ReadIndex { id })?;
        }
        Ok(())
    }

    /// The request that asks the leader for the sync `id`, as ZooKeeper's learners
    /// forward it: the client's own `sync` request, in its session (a round of the read
    /// barrier is a `sync` of the root in a reader's session).
    fn forwarded_sync(&self, id: u64) -> Option<PeerFrame> {
        let (session_id, auth, xid, path) = match self.syncs.get(&id)? {
            PendingSync::Client(sync) => (
                sync.connection.session_id(),
                sync.connection.auth().ids().to_vec(),
                sync.xid,
                sync.path.clone(),
            ),
            PendingSync::ReadBarrier { session_id, .. } => {
                (*session_id, Vec::new(), 0, "/".to_owned())
            }
        };
        let mut frame = BytesMut::new();
        RequestHeader { xid, op_type: OpCode::Sync.as_i32() }.write(&mut frame);
        jute::records::SyncRequest { path }.write(&mut frame);
        Some(PeerFrame::Request { session_id, auth, frame: frame.freeze() })
    }

    /// Proposes what was prepared (the leader's txns, in zxid order).
    fn propose_prepared(&mut self) -> Result<(), StorageError> {
        let prepared = std::mem::take(&mut self.prepared);
        let now_us = self.shared.clock.now_us();
        for work in prepared {
            match work {
                Work::Txn(txn, reply_to) => {
                    if !self.is_leading() {
                        // Leadership was lost while proposing: the client reconnects.
                        reply_to.close();
                        continue;
                    }
                    if txn.zxid().counter() == u32::MAX {
                        // ZooKeeper's xid rollover: a new epoch restarts the counter.
                        reply_to.close();
                        self.step(zab::Input::StepDown)?;
                        continue;
                    }
                    encode_entry_into(&txn, &mut self.entry_buffer);
                    let entry =
                        Entry { zxid: txn.zxid(), payload: self.entry_buffer.split().freeze() };
                    if let Some(received_us) = reply_to.received_us() {
                        self.time_queued(received_us, now_us);
                    }
                    if !self.standalone {
                        self.shared.stats.quorum.proposals.fetch_add(1, Ordering::Relaxed);
                    }
                    let prepared_us = now_us;
                    self.proposed.push_back(Proposed {
                        txn,
                        reply_to,
                        prepared_us,
                        logged_us: None,
                    });
                    self.step(zab::Input::Propose(entry))?;
                }
                Work::Sync { connection, xid, path, received_us } => {
                    self.sync(connection, xid, path, received_us)?;
                }
            }
        }
        Ok(())
    }

    /// Applies committed entries and answers the clients waiting for them.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let count = entries.len() as u64;
        self.applied_txns += count;
        let committed_us = self.shared.clock.now_us();
        let wall_ms = self.wall_ms();
        let mut quorum_acks_ms = Vec::new();
        for entry in entries {
            let own = self.proposed.front().is_some_and(|own| own.txn.zxid() == entry.zxid);
            match if own { self.proposed.pop_front() } else { None } {
                Some(Proposed { txn, reply_to, prepared_us, logged_us }) => {
                    let received_us = reply_to.received_us();
                    self.time_applied(txn.header.time, wall_ms);
                    self.apply_txn(&txn, reply_to);
                    self.time_own_commit(
                        received_us,
                        prepared_us,
                        logged_us,
                        committed_us,
                        &mut quorum_acks_ms,
                    );
                }
                None => {
                    let logged = LogEntry { zxid: entry.zxid, value: entry.payload };
                    let (txn, digest) = decode_entry_with_digest(&logged)?;
                    let (reply_to, forwarded_us) = self.reply_to(&txn);
                    let received_us = reply_to.received_us();
                    self.time_applied(txn.header.time, wall_ms);
                    self.apply_txn(&txn, reply_to);
                    if let Some(digest) = digest {
                        self.check_digest(entry.zxid, digest);
                    }
                    self.time_learner_commit(entry.zxid, committed_us);
                    self.time_forwarded_commit(received_us, forwarded_us, committed_us);
                }
            }
            self.time_final(committed_us);
        }
        self.time_commits(count, &quorum_acks_ms);
        // A periodic snapshot would store the received state before the store holds it.
        if count > 0 && !self.persist.rewriting() {
            self.effects.push(Effect::Applied(count));
        }
        Ok(())
    }

    /// Who waits here for a txn the leader committed (a forwarded write or handshake),
    /// and when a write was forwarded.
    fn reply_to(&mut self, txn: &Txn) -> (ReplyTo, u64) {
        let session_id = txn.session_id();
        let waiting = if matches!(txn.body, TxnBody::CreateSession(_)) {
            self.handshakes.remove(&session_id).map(|reply_to| (reply_to, 0))
        } else {
            self.forwarded.remove(&(session_id, txn.header.cxid))
        };
        waiting.unwrap_or((ReplyTo::Nobody, 0))
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
        let Sealed { tree, loaded, store } = sealed;
        let shared = self.shared.clone();
        shared.database.install(zxid, tree);
        crate::server::put_membership(&shared.config, &shared.database, shared.clock.wall_ms());
        replace_sessions(&shared, &loaded.sessions);
        self.replace_preparer(zxid);
        self.persist.push(Write::Snapshot(store, self.zab.history().epoch_ends().to_vec()));
        tracing::info!(
            %zxid,
            nodes = loaded.nodes,
            "installed the leader's snapshot"
        );
        Ok(())
    }

    /// Whether every write taken is applied and durable: a restore may replace the state.
    pub fn drained(&self) -> bool {
        self.prepared.is_empty() && self.proposed.is_empty() && self.persist.is_idle()
    }

    /// Replaces a standalone server's state with `restore`'s, once [`Pipeline::drained`]:
    /// installed at the last applied zxid, with its sessions; every client connection
    /// closes (its watches were set on the old state, and a session the restored state
    /// lacks is gone), and the restore is answered once the new state is durable.
    pub fn restore(&mut self, restore: Restore) {
        let Restore { tree, sessions, done } = restore;
        if !self.standalone {
            let refusal = "restore replaces a standalone server's state; an ensemble member \
                           restored alone would part from its ensemble";
            let _ = done.send(Err(refusal.into()));
            return;
        }
        let shared = self.shared.clone();
        let zxid = shared.database.last_applied_zxid();
        shared.database.install(zxid, tree);
        replace_sessions(&shared, &sessions);
        for connection in shared.registry.all() {
            connection.request_close();
        }
        self.replace_preparer(zxid);
        tracing::info!(%zxid, nodes = shared.database.tree().node_count(), "state restored");
        self.persist.push(Write::Restore(Installed { shared, zxid, sessions, done }));
    }

    /// The core announced a role: serve clients or stop serving them.
    fn take_role(&mut self, role: Role) {
        let shared = self.shared.clone();
        if role == Role::Looking {
            self.looking_since_ms.get_or_insert_with(|| shared.clock.now_ms());
            self.forget_arrivals();
        } else {
            let looking_since_ms = self.looking_since_ms.take();
            self.time_serving(role, looking_since_ms);
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
        *shared.leader.lock() = match role {
            Role::Looking => None,
            Role::Leading { .. } => Some(self.zab.id()),
            Role::Following { leader, .. } | Role::Observing { leader, .. } => Some(leader),
        };
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
                self.behind_syncs.clear();
                shared.read_barrier.fail_all();
                // Connections made for the term that ended (a learner's to its leader,
                // even one still syncing) close; the next term makes its own.
                if !self.standalone {
                    self.effects.push(Effect::EndTerm);
                }
                return;
            }
            Role::Leading { epoch, .. } => {
                self.replace_preparer(Zxid::epoch_start(epoch));
                let mut sessions = shared.sessions.lock();
                sessions.set_reporting(false);
                sessions.touch_all(shared.clock.now_ms());
            }
            Role::Following { .. } | Role::Observing { .. } => {
                shared.sessions.lock().set_reporting(true);
                crate::server::put_membership(
                    &shared.config,
                    &shared.database,
                    shared.clock.wall_ms(),
                );
            }
        }
        let zxid = shared.database.last_applied_zxid();
        if self.standalone {
            tracing::debug!(?role, %zxid, "a standalone server leads itself");
        } else if shared.serves_clients() {
            tracing::info!(mode = mode.name(), %zxid, "serving clients");
        } else {
            let why = "leaderServes=no";
            tracing::info!(mode = mode.name(), %zxid, why, "leading; clients go to followers");
        }
        self.persist.push(Write::EpochEnds(self.zab.history().epoch_ends().to_vec()));
    }
}

/// The first log entry in `message` whose checksum fails, if any: a member's entries are
/// checked as they arrive, so a corrupted one drops that link instead of reaching the log.
fn first_unsealed(message: &Message) -> Option<Zxid> {
    let entries: &[Entry] = match message {
        Message::Proposal(entry) => std::slice::from_ref(entry),
        Message::Diff { entries, .. } | Message::Snap { entries, .. } => entries,
        _ => &[],
    };
    entries.iter().find(|entry| unseal(&entry.payload).is_none()).map(|entry| entry.zxid)
}

/// The session tracker holds exactly `sessions`, each with a full timeout from now: the
/// state was replaced.
fn replace_sessions(shared: &Shared, sessions: &[(SessionId, i32)]) {
    let now_ms = shared.clock.now_ms();
    let mut tracker = shared.sessions.lock();
    tracker.clear();
    for (session_id, timeout_ms) in sessions {
        tracker.add(*session_id, u64::try_from(*timeout_ms).unwrap_or(0), now_ms);
    }
}

#[cfg(test)]
#[path = "pipeline_test.rs"]
mod tests;
