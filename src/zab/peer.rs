//! [`Zab`]: one member's state machine, switching between electing, leading and following.

use std::collections::BTreeMap;

use crate::storage::Epochs;
use crate::txn::Zxid;
use crate::zab::election::Election;
use crate::zab::follower::Follower;
use crate::zab::history::History;
use crate::zab::leader::{Leader, LeaderStatus, SyncFor, SyncsInFlight};
use crate::zab::message::{Message, Notification, PeerState, Vote};
use crate::zab::quorum::Quorum;
use crate::zab::{Action, Input, PeerError, Restored, Role, ServerId, ZabConfig};

/// What every role shares: the configuration and the durable state as the core knows it.
#[derive(Debug)]
pub(super) struct Core {
    pub config: ZabConfig,
    pub quorum: Quorum,
    pub epochs: Epochs,
    pub history: History,
    /// Every log entry up to here is durable.
    pub persisted: Zxid,
    /// The shell's state has applied every entry up to here, all committed.
    pub applied: Zxid,
}

impl Core {
    /// Has the shell apply committed entries up to `zxid`.
    pub fn apply_through(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        let zxid = zxid.min(self.history.last());
        if zxid <= self.applied {
            return;
        }
        let entries = self.history.entries_between(self.applied, zxid);
        self.applied = zxid;
        self.history.trim(self.applied, self.config.window_entries);
        if !entries.is_empty() {
            out.push(Action::Apply(entries));
        }
    }

    fn own_vote(&self) -> Vote {
        Vote { epoch: self.epochs.current, zxid: self.history.last(), leader: self.config.id }
    }
}

/// Whether a role keeps going or gives up and elects again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    Stay,
    StepDown,
}

#[derive(Debug)]
enum State {
    Looking(Election),
    Leading(Leader),
    Following(Follower),
}

/// One member of the ensemble: feed it [`Input`]s, carry out the [`Action`]s it returns.
#[derive(Debug)]
pub struct Zab {
    core: Core,
    state: State,
    /// The vote the last election settled on, told to members still looking.
    settled_vote: Vote,
    round: u64,
    /// FOLLOWERINFOs that arrived while this member was still electing, from members
    /// that already settled on it: handed to it if it leads, so they need not wait
    /// for the learner's next re-send.
    early_learners: BTreeMap<ServerId, Message>,
    /// The role last announced with [`Action::Role`]: the one place the role lives.
    role: Role,
}

impl Zab {
    /// A member starting from what it recovered; it begins by looking for a leader. The
    /// shell's state is at the history's start (its snapshot): the logged entries after it
    /// are applied only once a leader has them committed.
    pub fn new(config: ZabConfig, restored: Restored) -> (Zab, Vec<Action>) {
        let core = Core {
            quorum: Quorum::new(config.voters.clone(), config.groups.clone()),
            epochs: restored.epochs,
            persisted: restored.history.last(),
            applied: restored.applied,
            history: restored.history,
            config,
        };
        let settled_vote = core.own_vote();
        let mut out = Vec::new();
        let election = Election::start(
            core.config.id,
            1,
            settled_vote,
            core.config.finalize_ticks,
            &core.quorum,
            &mut out,
        );
        out.push(Action::Role(Role::Looking));
        let zab = Zab {
            core,
            state: State::Looking(election),
            settled_vote,
            round: 1,
            early_learners: BTreeMap::new(),
            role: Role::Looking,
        };
        (zab, out)
    }

    /// This member's id.
    pub fn id(&self) -> ServerId {
        self.core.config.id
    }

    /// The role last announced: what the member serves as once the actions of the last
    /// step are carried out.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether an election is under way (ZooKeeper's LOOKING state proper): false from
    /// the moment it settles, while the member syncs with its leader or leads.
    pub fn is_electing(&self) -> bool {
        matches!(self.state, State::Looking(_))
    }

    /// The last logged zxid.
    pub fn last_zxid(&self) -> Zxid {
        self.core.history.last()
    }

    /// The last applied zxid.
    pub fn applied_zxid(&self) -> Zxid {
        self.core.applied
    }

    /// The persisted epochs as the core knows them.
    pub fn epochs(&self) -> Epochs {
        self.core.epochs
    }

    /// The leader's learners and pending syncs; `None` unless leading.
    pub fn status(&self) -> Option<LeaderStatus> {
        match &self.state {
            State::Leading(leader) => Some(leader.status()),
            _ => None,
        }
    }

    /// The leader's learners in the middle of their sync; `None` unless leading.
    pub fn syncs_in_flight(&self) -> Option<SyncsInFlight> {
        match &self.state {
            State::Leading(leader) => Some(leader.syncs_in_flight()),
            _ => None,
        }
    }

    /// The history, for tests and the shell's diagnostics.
    pub fn history(&self) -> &History {
        &self.core.history
    }

    /// Takes one input; returns what to do, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let transition = match input {
            Input::Tick => self.tick(&mut out),
            Input::Message { from, message: Message::Notification(n) } => {
                self.on_notification(from, n, &mut out);
                Transition::Stay
            }
            Input::Message { from, message } => match &mut self.state {
                State::Looking(_) => {
                    if matches!(message, Message::FollowerInfo { .. }) {
                        self.early_learners.insert(from, message);
                    }
                    Transition::Stay
                }
                State::Leading(leader) => {
                    leader.on_message(&mut self.core, from, message, &mut out)
                }
                State::Following(follower) => {
                    match follower.on_message(&mut self.core, from, message, &mut out) {
                        Ok(transition) => transition,
                        Err(error) => Self::refuse(from, &error, &mut out),
                    }
                }
            },
            Input::Disconnected { peer } => match &mut self.state {
                State::Looking(_) => Transition::Stay,
                State::Leading(leader) => {
                    leader.disconnected(peer);
                    Transition::Stay
                }
                State::Following(follower) => follower.disconnected(peer),
            },
            Input::Persisted { zxid } => {
                let zxid = zxid.min(self.core.history.last());
                self.core.persisted = self.core.persisted.max(zxid);
                match &mut self.state {
                    State::Looking(_) => {}
                    State::Leading(leader) => leader.on_persisted(&mut self.core, &mut out),
                    State::Following(follower) => follower.on_persisted(&mut self.core, &mut out),
                }
                Transition::Stay
            }
            Input::Propose(entry) => {
                match &mut self.state {
                    State::Leading(leader) => leader.propose(&mut self.core, entry, &mut out),
                    _ => panic!("a proposal while not leading"),
                }
                Transition::Stay
            }
            Input::StepDown => match self.state {
                State::Leading(_) => {
                    tracing::info!("the zxid counter is exhausted; electing a new epoch");
                    Transition::StepDown
                }
                _ => Transition::Stay,
            },
            Input::Sync { id } | Input::ReadIndex { id } => {
                match &mut self.state {
                    State::Looking(_) => out.push(Action::SyncFailed { id }),
                    State::Leading(leader) => {
                        let through = match input {
                            Input::ReadIndex { .. } => self.core.applied,
                            _ => self.core.history.last(),
                        };
                        leader.sync_for(SyncFor::Client(id), through, &self.core, &mut out);
                    }
                    State::Following(follower) => follower.sync(id, &mut out),
                }
                Transition::Stay
            }
        };
        if transition == Transition::StepDown {
            self.look(&mut out);
        }
        let announced = out.iter().rev().find_map(|action| match action {
            Action::Role(role) => Some(*role),
            _ => None,
        });
        if let Some(role) = announced {
            self.role = role;
        }
        out
    }

    /// A member broke the protocol: drop the link to it. Only a learner's leader sends
    /// messages that can, so the learner elects again.
    fn refuse(from: ServerId, error: &PeerError, out: &mut Vec<Action>) -> Transition {
        tracing::warn!(peer = from, %error, "a member broke the protocol; dropping the link");
        out.push(Action::DropLink { peer: from });
        Transition::StepDown
    }

    fn tick(&mut self, out: &mut Vec<Action>) -> Transition {
        match &mut self.state {
            State::Looking(election) => {
                if let Some(vote) = election.tick(&self.core.quorum, out) {
                    self.round = election.round();
                    self.settle(vote, out);
                }
                Transition::Stay
            }
            State::Leading(leader) => leader.tick(&mut self.core, out),
            State::Following(follower) => follower.tick(&self.core, out),
        }
    }

    fn on_notification(&mut self, from: ServerId, n: Notification, out: &mut Vec<Action>) {
        let id = self.core.config.id;
        let (state, established_leader) = match &mut self.state {
            State::Looking(election) => {
                if let Some(vote) = election.on_notification(from, n, &self.core.quorum, out) {
                    self.round = election.round();
                    self.settle(vote, out);
                }
                return;
            }
            State::Leading(leader) => (PeerState::Leading, leader.is_established().then_some(id)),
            State::Following(follower) => {
                let state = if self.core.quorum.is_voter(id) {
                    PeerState::Following
                } else {
                    PeerState::Observing
                };
                (state, follower.is_active().then(|| follower.leader()))
            }
        };
        if n.state != PeerState::Looking {
            return;
        }
        // Members in an established epoch all report the same vote: its leader and epoch.
        // (Their election votes may differ: some joined late, on what others reported.)
        let vote = match established_leader {
            Some(leader) => Vote { epoch: self.core.epochs.current, zxid: Zxid::ZERO, leader },
            None => self.settled_vote,
        };
        let reply = Notification { round: self.round, vote, state };
        out.push(Action::Send { to: from, message: Message::Notification(reply) });
    }

    /// The election chose `vote`: lead or follow.
    fn settle(&mut self, vote: Vote, out: &mut Vec<Action>) {
        self.settled_vote = vote;
        let id = self.core.config.id;
        let voter = self.core.quorum.is_voter(id);
        let early_learners = std::mem::take(&mut self.early_learners);
        self.state = if vote.leader == id && voter {
            let mut leader = Leader::start(&mut self.core, out);
            for (from, message) in early_learners {
                // FOLLOWERINFO only registers the learner: it cannot end the term.
                let _ = leader.on_message(&mut self.core, from, message, out);
            }
            State::Leading(leader)
        } else {
            State::Following(Follower::start(&self.core, vote.leader, !voter, out))
        };
    }

    /// Gives up the current role and starts a new election round.
    fn look(&mut self, out: &mut Vec<Action>) {
        match &mut self.state {
            State::Leading(leader) => leader.abandon(out),
            State::Following(follower) => {
                tracing::info!(leader = follower.leader(), "lost the leader; electing again");
                follower.abandon(out);
            }
            State::Looking(_) => return,
        }
        self.round += 1;
        self.early_learners.clear();
        let own = self.core.own_vote();
        let election = Election::start(
            self.core.config.id,
            self.round,
            own,
            self.core.config.finalize_ticks,
            &self.core.quorum,
            out,
        );
        self.state = State::Looking(election);
        out.push(Action::Role(Role::Looking));
    }
}
