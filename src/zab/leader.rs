//! The leader's side of ZAB.
//!
//! The leader's commit point is what it has applied (`Core::applied`): it applies each
//! entry as soon as it is committed.
//!
//! Discovery: collect FOLLOWERINFO from a quorum, choose an epoch above every accepted
//! one, collect ACKEPOCH from a quorum none of which is ahead of this history.
//! Synchronisation: bring each learner to this history (DIFF from the window, or SNAP,
//! after truncating what it holds beyond the common point), then NEWLEADER; once a quorum
//! (this server included) has the history durable, the epoch is established and the whole
//! history committed. Broadcast: propose, count acknowledgements, commit in order.

use std::collections::{BTreeMap, VecDeque};

use crate::storage::Epochs;
use crate::txn::Zxid;
use crate::zab::message::Message;
use crate::zab::peer::{Core, Transition};
use crate::zab::{Action, Entry, Role, ServerId};

/// A leader's learners and pending syncs, as `mntr` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderStatus {
    /// Learners connected.
    pub learners: usize,
    /// Voting followers in sync.
    pub synced_followers: usize,
    /// Observers in sync.
    pub synced_observers: usize,
    /// Who they are, for the AdminServer's `observers`.
    pub synced_observer_ids: Vec<ServerId>,
    /// Client `sync`s waiting for a quorum to confirm the leadership.
    pub pending_syncs: usize,
}

/// Learners sent a snapshot or a diff that have not yet acknowledged NEWLEADER: the
/// syncs in flight ZooKeeper's `inflight_snap_count` and `inflight_diff_count` sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncsInFlight {
    /// Sent a snapshot.
    pub snapshot: usize,
    /// Sent a diff (with or without a truncation).
    pub diff: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// FOLLOWERINFO received.
    Connected,
    /// ACKEPOCH received; waiting to be synchronised.
    EpochAcked { current_epoch: Option<u32>, last_zxid: Zxid },
    /// History (a snapshot, or a diff) and NEWLEADER sent.
    Syncing { by_snapshot: bool },
    /// NEWLEADER acknowledged: its acknowledgements count.
    Synced,
}

/// Most pings a learner may leave unanswered: a tick's ping and one per `sync` while
/// they travel. Past it the learner is not answering, and is dropped.
const UNANSWERED_PINGS_MAX: usize = 65_536;

#[derive(Debug)]
struct Learner {
    observer: bool,
    stage: Stage,
    /// The tick it was last heard from.
    heard_at: u64,
    /// Entries up to here are durable on it.
    acked: Zxid,
    /// The last ping round it answered.
    pong_round: u64,
    /// The rounds of the pings sent to it and not answered yet, oldest first: it answers
    /// every ping in order, so its next answer is to the first.
    unanswered: VecDeque<u64>,
}

impl Learner {
    /// Sends it the ping of `round`.
    fn ping(&mut self, to: ServerId, round: u64, last_proposed: Zxid, out: &mut Vec<Action>) {
        self.unanswered.push_back(round);
        out.push(Action::Send { to, message: Message::Ping { last_proposed } });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discovering,
    Synchronising,
    Broadcasting,
}

/// Who asked for a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncFor {
    /// A client of this server; the shell's handle for the request.
    Client(u64),
    /// A learner, for one of its clients; the reply says which by its order.
    Learner(ServerId),
}

/// A sync waiting for a quorum to answer a ping round.
#[derive(Debug)]
struct PendingSync {
    requester: SyncFor,
    round: u64,
    /// The last zxid proposed when the sync arrived: the requester's earlier writes are
    /// at or before it, and are answered before the sync.
    through: Zxid,
}

/// A leader's state for one term.
#[derive(Debug)]
pub(super) struct Leader {
    phase: Phase,
    /// The epoch being established, once a quorum's accepted epochs are known.
    epoch: Option<u32>,
    accepted_epochs: BTreeMap<ServerId, u32>,
    learners: BTreeMap<ServerId, Learner>,
    /// The history's last zxid when synchronisation began: established means committed.
    newleader_zxid: Zxid,
    now: u64,
    ping_round: u64,
    syncs: Vec<PendingSync>,
}

impl Leader {
    /// Starts leading: discovery, counting this server's own accepted epoch.
    pub fn start(core: &mut Core, out: &mut Vec<Action>) -> Leader {
        let mut leader = Leader {
            phase: Phase::Discovering,
            epoch: None,
            accepted_epochs: BTreeMap::from([(core.config.id, core.epochs.accepted)]),
            learners: BTreeMap::new(),
            newleader_zxid: Zxid::ZERO,
            now: 0,
            ping_round: 0,
            syncs: Vec::new(),
        };
        leader.try_choose_epoch(core, out);
        leader
    }

    /// Whether the epoch is established.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Broadcasting
    }

    /// A tick: pings everyone, and steps down without a quorum.
    pub fn tick(&mut self, core: &mut Core, out: &mut Vec<Action>) -> Transition {
        self.now += 1;
        self.ping_round += 1;
        let silence_max = u64::from(match self.phase {
            Phase::Broadcasting => core.config.sync_limit_ticks,
            _ => core.config.init_limit_ticks,
        });
        let now = self.now;
        // A learner silent too long, or that leaves too many pings unanswered, is gone.
        self.learners.retain(|_, learner| {
            now - learner.heard_at <= silence_max
                && learner.unanswered.len() <= UNANSWERED_PINGS_MAX
        });
        let learners = &self.learners;
        self.syncs.retain(|sync| match sync.requester {
            SyncFor::Learner(peer) => learners.contains_key(&peer),
            SyncFor::Client(_) => true,
        });
        if self.phase != Phase::Broadcasting && now > u64::from(core.config.init_limit_ticks) {
            tracing::info!(phase = ?self.phase, "no quorum joined in time; electing again");
            return Transition::StepDown;
        }
        if self.phase == Phase::Broadcasting {
            let live = self.learners.iter().filter(|(_, l)| l.stage == Stage::Synced);
            let ids = live.map(|(id, _)| *id).chain([core.config.id]);
            if !core.quorum.contains_quorum(ids) {
                tracing::info!("lost the quorum; electing again");
                return Transition::StepDown;
            }
        }
        let (round, last_proposed) = (self.ping_round, core.history.last());
        for (id, learner) in &mut self.learners {
            if matches!(learner.stage, Stage::Syncing { .. } | Stage::Synced) {
                learner.ping(*id, round, last_proposed, out);
            }
        }
        self.finish_syncs(core, out);
        Transition::Stay
    }

    /// How many learners are connected and synced (voters and observers), and how many
    /// syncs wait.
    pub fn status(&self) -> LeaderStatus {
        let mut counts = LeaderStatus {
            learners: self.learners.len(),
            pending_syncs: self.syncs.len(),
            ..LeaderStatus::default()
        };
        for (id, learner) in &self.learners {
            match (learner.stage == Stage::Synced, learner.observer) {
                (true, false) => counts.synced_followers += 1,
                (true, true) => {
                    counts.synced_observers += 1;
                    counts.synced_observer_ids.push(*id);
                }
                (false, _) => {}
            }
        }
        counts
    }

    /// The learners in the middle of their sync, by snapshot and by diff.
    pub fn syncs_in_flight(&self) -> SyncsInFlight {
        let mut syncing = SyncsInFlight::default();
        for learner in self.learners.values() {
            match learner.stage {
                Stage::Syncing { by_snapshot: true } => syncing.snapshot += 1,
                Stage::Syncing { by_snapshot: false } => syncing.diff += 1,
                _ => {}
            }
        }
        syncing
    }

    /// The connection to a learner broke: it starts over when it reconnects.
    pub fn disconnected(&mut self, peer: ServerId) {
        self.learners.remove(&peer);
        self.forget_syncs_of(peer);
    }

    /// Drops the syncs a learner asked for on a connection now gone: it failed them
    /// when the connection went, and a reply on its next one would answer another.
    fn forget_syncs_of(&mut self, peer: ServerId) {
        self.syncs.retain(|sync| sync.requester != SyncFor::Learner(peer));
    }

    /// A message from a learner.
    pub fn on_message(
        &mut self,
        core: &mut Core,
        from: ServerId,
        message: Message,
        out: &mut Vec<Action>,
    ) -> Transition {
        if let Message::FollowerInfo { accepted_epoch, observer } = message {
            return self.on_follower_info(core, from, accepted_epoch, observer, out);
        }
        let now = self.now;
        let Some(learner) = self.learners.get_mut(&from) else {
            return Transition::Stay;
        };
        learner.heard_at = now;
        match message {
            Message::AckEpoch { current_epoch, last_zxid }
                if learner.stage == Stage::Connected && self.epoch.is_some() =>
            {
                learner.stage = Stage::EpochAcked { current_epoch, last_zxid };
                return self.on_ack_epoch(core, from, current_epoch, last_zxid, out);
            }
            Message::AckNewLeader { epoch } if matches!(learner.stage, Stage::Syncing { .. }) => {
                if Some(epoch) != self.epoch {
                    return Transition::Stay;
                }
                learner.stage = Stage::Synced;
                if self.phase == Phase::Broadcasting {
                    let committed = core.applied;
                    out.push(Action::Send { to: from, message: Message::UpToDate { committed } });
                }
                self.progress(core, out);
            }
            Message::Ack { zxid } if learner.stage == Stage::Synced => {
                learner.acked = learner.acked.max(zxid);
                self.progress(core, out);
            }
            Message::Pong { .. } => {
                if let Some(round) = learner.unanswered.pop_front() {
                    learner.pong_round = round;
                }
                self.finish_syncs(core, out);
            }
            Message::SyncRequest { .. } => {
                self.sync_for(SyncFor::Learner(from), core.history.last(), core, out);
            }
            _ => {}
        }
        Transition::Stay
    }

    fn on_follower_info(
        &mut self,
        core: &mut Core,
        from: ServerId,
        accepted_epoch: u32,
        observer: bool,
        out: &mut Vec<Action>,
    ) -> Transition {
        if let Some(epoch) = self.epoch.filter(|epoch| accepted_epoch > *epoch && !observer) {
            // The voter accepted a later epoch (one a leader proposed that never became
            // established) and must refuse this one, as ZooKeeper's learners do; left
            // alone it could never join. A new election chooses an epoch above it.
            tracing::warn!(
                learner = from,
                accepted_epoch,
                epoch,
                "a voter accepted a later epoch than this one; electing again"
            );
            return Transition::StepDown;
        }
        let fresh = Learner {
            observer,
            stage: Stage::Connected,
            heard_at: self.now,
            acked: Zxid::ZERO,
            pong_round: 0,
            unanswered: VecDeque::new(),
        };
        match self.learners.get_mut(&from) {
            // A repeated FOLLOWERINFO before LEADERINFO arrived: answer it again.
            Some(learner) if learner.stage == Stage::Connected => learner.heard_at = self.now,
            // Anything else is a new connection: the learner starts over.
            _ => {
                self.learners.insert(from, fresh);
                self.forget_syncs_of(from);
            }
        }
        if let Some(epoch) = self.epoch {
            out.push(Action::SendAfterPersist { to: from, message: Message::LeaderInfo { epoch } });
        } else if !observer {
            self.accepted_epochs.insert(from, accepted_epoch);
            self.try_choose_epoch(core, out);
        }
        Transition::Stay
    }

    /// Once a quorum's accepted epochs are known: the new epoch is above all of them.
    fn try_choose_epoch(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        if self.epoch.is_some()
            || !core.quorum.contains_quorum(self.accepted_epochs.keys().copied())
        {
            return;
        }
        let epoch = self.accepted_epochs.values().copied().max().unwrap_or(0) + 1;
        self.epoch = Some(epoch);
        core.epochs = Epochs { accepted: epoch, current: core.epochs.current };
        out.push(Action::PersistEpochs(core.epochs));
        for (id, learner) in &self.learners {
            if learner.stage == Stage::Connected {
                out.push(Action::SendAfterPersist {
                    to: *id,
                    message: Message::LeaderInfo { epoch },
                });
            }
        }
        self.try_synchronise(core, out);
    }

    fn on_ack_epoch(
        &mut self,
        core: &mut Core,
        from: ServerId,
        current_epoch: Option<u32>,
        last_zxid: Zxid,
        out: &mut Vec<Action>,
    ) -> Transition {
        if self.phase == Phase::Discovering {
            // An acknowledgement of an epoch the learner had accepted already is not
            // one (ZooKeeper's -1): it is neither counted nor compared.
            let Some(current_epoch) = current_epoch else { return Transition::Stay };
            if (current_epoch, last_zxid) > (core.epochs.current, core.history.last()) {
                tracing::info!(learner = from, "a learner is ahead of this leader; electing again");
                return Transition::StepDown;
            }
            self.try_synchronise(core, out);
        } else {
            self.sync_learner(core, from, out);
        }
        Transition::Stay
    }

    /// Once a quorum acknowledged the epoch: persist it as current and sync everyone.
    fn try_synchronise(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        let Some(epoch) = self.epoch else { return };
        let acked = self
            .learners
            .iter()
            .filter(|(_, l)| matches!(l.stage, Stage::EpochAcked { current_epoch: Some(_), .. }));
        let ids = acked.map(|(id, _)| *id).chain([core.config.id]);
        if self.phase != Phase::Discovering || !core.quorum.contains_quorum(ids) {
            return;
        }
        self.phase = Phase::Synchronising;
        self.newleader_zxid = core.history.last();
        core.epochs = Epochs { accepted: epoch, current: epoch };
        out.push(Action::PersistEpochs(core.epochs));
        let waiting: Vec<ServerId> = self.learners.keys().copied().collect();
        for id in waiting {
            self.sync_learner(core, id, out);
        }
        self.progress(core, out);
    }

    /// Sends a learner that acknowledged the epoch what it lacks of the history, then
    /// NEWLEADER.
    fn sync_learner(&mut self, core: &Core, id: ServerId, out: &mut Vec<Action>) {
        let (Some(epoch), Some(learner)) = (self.epoch, self.learners.get_mut(&id)) else {
            return;
        };
        let Stage::EpochAcked { last_zxid, .. } = &learner.stage else { return };
        let last_zxid = *last_zxid;
        let committed = core.applied;
        let established =
            if self.phase == Phase::Broadcasting { committed } else { self.newleader_zxid };
        let diff = core.history.common_point(last_zxid).and_then(|common| {
            let entries = core.history.entries_after(common)?;
            let truncate_to = (last_zxid > common).then_some(common);
            Some(Message::Diff { truncate_to, entries, committed, established })
        });
        let by_snapshot = diff.is_none();
        let message = diff.unwrap_or_else(|| Message::Snap {
            zxid: core.applied,
            entries: core.history.entries_between(core.applied, core.history.last()),
            committed,
        });
        out.push(Action::SendAfterPersist { to: id, message });
        out.push(Action::SendAfterPersist { to: id, message: Message::NewLeader { epoch } });
        learner.stage = Stage::Syncing { by_snapshot };
        learner.acked = core.history.last();
    }

    /// Establishes the epoch or advances the commit point, as acknowledgements allow.
    fn progress(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Discovering => {}
            Phase::Synchronising => {
                if core.persisted < self.newleader_zxid {
                    return;
                }
                let synced = self.learners.iter().filter(|(_, l)| l.stage == Stage::Synced);
                let ids = synced.map(|(id, _)| *id).chain([core.config.id]);
                if core.quorum.contains_quorum(ids) {
                    self.establish(core, out);
                }
            }
            Phase::Broadcasting => self.advance_commit(core, out),
        }
    }

    fn establish(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        let epoch = self.epoch.unwrap_or(core.epochs.current);
        tracing::info!(epoch, zxid = %self.newleader_zxid, "leading");
        self.phase = Phase::Broadcasting;
        core.apply_through(self.newleader_zxid, out);
        out.push(Action::Role(Role::Leading { epoch, last_zxid: core.history.last() }));
        let committed = core.applied;
        for (id, learner) in &self.learners {
            if learner.stage == Stage::Synced {
                out.push(Action::Send { to: *id, message: Message::UpToDate { committed } });
            }
        }
    }

    /// The highest zxid durable on a quorum, this server included.
    fn advance_commit(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        let mut acked_by: Vec<(ServerId, Zxid)> = core
            .quorum
            .voters()
            .map(|id| {
                if id == core.config.id {
                    return (id, core.persisted);
                }
                let learner = self.learners.get(&id);
                let synced = learner.filter(|l| l.stage == Stage::Synced && !l.observer);
                (id, synced.map_or(Zxid::ZERO, |l| l.acked))
            })
            .collect();
        let durable_on_quorum = core.quorum.durable_point(&mut acked_by);
        let commit = durable_on_quorum.min(core.persisted);
        if commit <= core.applied {
            return;
        }
        // Pair assertion: counted the other way, the voters holding the commit point
        // durably are a quorum. A commit past that could lose an acknowledged write.
        let holders = acked_by.iter().filter(|(_, zxid)| *zxid >= commit).map(|(id, _)| *id);
        assert!(
            core.quorum.contains_quorum(holders),
            "commit 0x{commit:x} passes what a quorum persisted: {acked_by:?}"
        );
        // Learners hear of the commit before this server answers its own clients, as in
        // ZooKeeper: a client told of its write here then finds it on the other members
        // as soon as it can ask them.
        for (id, learner) in &self.learners {
            if learner.stage == Stage::Synced {
                out.push(Action::Send { to: *id, message: Message::Commit { zxid: commit } });
            }
        }
        core.apply_through(commit, out);
        self.finish_syncs(core, out);
    }

    /// A new entry from this server's shell, once established.
    pub fn propose(&mut self, core: &mut Core, entry: Entry, out: &mut Vec<Action>) {
        assert_eq!(self.phase, Phase::Broadcasting, "proposal before the epoch is established");
        assert_eq!(entry.zxid.epoch(), self.epoch.unwrap_or(0), "proposal outside the epoch");
        core.history.append(entry.clone());
        out.push(Action::Append(vec![entry.clone()]));
        for (id, learner) in &self.learners {
            if matches!(learner.stage, Stage::Syncing { .. } | Stage::Synced) {
                out.push(Action::Send { to: *id, message: Message::Proposal(entry.clone()) });
            }
        }
    }

    /// This server's log is durable up to `core.persisted`.
    pub fn on_persisted(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        self.progress(core, out);
    }

    /// A sync from this server's client or a learner's: confirmed
    /// once a quorum answers a ping sent after it arrived, and answered once `through` is
    /// committed (for a sync, every entry proposed before it, so a session's replies keep
    /// their order; for a read barrier round, what was committed when it arrived).
    pub fn sync_for(
        &mut self,
        requester: SyncFor,
        through: Zxid,
        core: &Core,
        out: &mut Vec<Action>,
    ) {
        if self.phase != Phase::Broadcasting {
            if let SyncFor::Client(id) = requester {
                out.push(Action::SyncFailed { id });
            }
            return;
        }
        self.ping_round += 1;
        self.syncs.push(PendingSync { requester, round: self.ping_round, through });
        let (round, last_proposed) = (self.ping_round, core.history.last());
        for (to, learner) in &mut self.learners {
            if learner.stage == Stage::Synced && !learner.observer {
                learner.ping(*to, round, last_proposed, out);
            }
        }
        self.finish_syncs(core, out);
    }

    fn finish_syncs(&mut self, core: &Core, out: &mut Vec<Action>) {
        let committed = core.applied;
        let learners = &self.learners;
        self.syncs.retain(|sync| {
            let answered = learners
                .iter()
                .filter(|(_, l)| l.stage == Stage::Synced && l.pong_round >= sync.round)
                .map(|(id, _)| *id)
                .chain([core.config.id]);
            if !core.quorum.contains_quorum(answered) {
                return true;
            }
            if committed < sync.through {
                return true;
            }
            match sync.requester {
                SyncFor::Client(id) => out.push(Action::SyncDone { id }),
                // The commits through `through` went to the learner before this, so it
                // has them when the reply comes; replies leave in the order the syncs
                // came, which is how the learner tells them apart.
                SyncFor::Learner(to) => out.push(Action::Send { to, message: Message::SyncReply }),
            }
            false
        });
    }

    /// Leaving: this server's own syncs fail.
    pub fn abandon(&mut self, out: &mut Vec<Action>) {
        for sync in self.syncs.drain(..) {
            if let SyncFor::Client(id) = sync.requester {
                out.push(Action::SyncFailed { id });
            }
        }
    }
}
