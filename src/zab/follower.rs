//! A learner's side of ZAB: join the leader (FOLLOWERINFO, ACKEPOCH), take its history
//! (DIFF or SNAP, then proposals), persist it with the new currentEpoch before
//! acknowledging NEWLEADER, then log, acknowledge and apply what the leader broadcasts.

use crate::storage::Epochs;
use crate::txn::Zxid;
use crate::zab::message::Message;
use crate::zab::peer::{Core, Transition};
use crate::zab::{Action, Entry, PeerError, Role, ServerId};

/// How far a learner has come with its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    Connecting,
    /// ACKEPOCH sent; taking the leader's history.
    Syncing,
    /// NEWLEADER received; waiting for the history up to `zxid` to be durable.
    Persisting { zxid: Zxid },
    /// NEWLEADER acknowledged; waiting for UPTODATE.
    Synced,
    /// Serving.
    Active,
}

/// A learner's state while following (or observing) one leader.
#[derive(Debug)]
pub(super) struct Follower {
    leader: ServerId,
    observer: bool,
    stage: Stage,
    /// The epoch from LEADERINFO.
    epoch: u32,
    /// Whether the leader's DIFF or SNAP has been taken: before it, the leader's commit
    /// point says nothing about this learner's own entries.
    has_history: bool,
    /// How far the history taken is committed once UPTODATE comes (the DIFF's zxid).
    established: Zxid,
    leader_committed: Zxid,
    /// The last zxid acknowledged to the leader.
    acked: Zxid,
    silent_ticks: u32,
    /// Client syncs: sent to the leader (`None`), or waiting to apply up to a zxid.
    syncs: Vec<(u64, Option<Zxid>)>,
}

impl Follower {
    /// Starts following `leader`: FOLLOWERINFO.
    pub fn start(core: &Core, leader: ServerId, observer: bool, out: &mut Vec<Action>) -> Self {
        let follower = Follower {
            leader,
            observer,
            stage: Stage::Connecting,
            epoch: 0,
            has_history: false,
            established: Zxid::ZERO,
            leader_committed: Zxid::ZERO,
            acked: Zxid::ZERO,
            silent_ticks: 0,
            syncs: Vec::new(),
        };
        follower.send_info(core, out);
        follower
    }

    /// The leader followed.
    pub fn leader(&self) -> ServerId {
        self.leader
    }

    /// Whether the leader's epoch is established here (UPTODATE received).
    pub fn is_active(&self) -> bool {
        self.stage == Stage::Active
    }

    fn send_info(&self, core: &Core, out: &mut Vec<Action>) {
        let message =
            Message::FollowerInfo { accepted_epoch: core.epochs.accepted, observer: self.observer };
        out.push(Action::Send { to: self.leader, message });
    }

    fn send(&self, message: Message, out: &mut Vec<Action>) {
        out.push(Action::Send { to: self.leader, message });
    }

    /// Sends what promises the epochs or history just stored, once they are durable.
    fn send_after_persist(&self, message: Message, out: &mut Vec<Action>) {
        out.push(Action::SendAfterPersist { to: self.leader, message });
    }

    /// A tick: gives up on a silent leader; repeats FOLLOWERINFO until it is answered.
    pub fn tick(&mut self, core: &Core, out: &mut Vec<Action>) -> Transition {
        self.silent_ticks += 1;
        let limit = if self.stage == Stage::Active {
            core.config.sync_limit_ticks
        } else {
            core.config.init_limit_ticks
        };
        if self.silent_ticks > limit {
            return Transition::StepDown;
        }
        if self.stage == Stage::Connecting {
            self.send_info(core, out);
        }
        Transition::Stay
    }

    /// The connection to `peer` broke.
    pub fn disconnected(&mut self, peer: ServerId) -> Transition {
        if peer == self.leader {
            Transition::StepDown
        } else {
            Transition::Stay
        }
    }

    /// A message from a member; only the leader's count. A message that breaks the
    /// protocol is an error, and nothing of it is taken.
    pub fn on_message(
        &mut self,
        core: &mut Core,
        from: ServerId,
        message: Message,
        out: &mut Vec<Action>,
    ) -> Result<Transition, PeerError> {
        if from != self.leader {
            return Ok(Transition::Stay);
        }
        if matches!(message, Message::FollowerInfo { .. }) {
            // The member this one follows follows it in turn (both settled on stale
            // votes): neither leads, and each one's messages would keep the other from
            // ever giving up. Elect again.
            tracing::info!(leader = self.leader, "the leader follows this member; electing again");
            return Ok(Transition::StepDown);
        }
        self.silent_ticks = 0;
        match message {
            Message::LeaderInfo { epoch } => return Ok(self.on_leader_info(core, epoch, out)),
            Message::Diff { truncate_to, entries, committed, established }
                if self.stage == Stage::Syncing =>
            {
                self.take_history(core, truncate_to, None, entries, committed, out)?;
                self.established = established;
            }
            Message::Snap { zxid, entries, committed } if self.stage == Stage::Syncing => {
                if zxid >= core.applied {
                    self.take_history(core, None, Some(zxid), entries, committed, out)?;
                } else {
                    self.take_entries_after_applied(core, zxid, entries, committed, out)?;
                }
            }
            Message::NewLeader { epoch } if self.stage == Stage::Syncing => {
                if epoch != self.epoch || !self.has_history {
                    return Ok(Transition::StepDown);
                }
                self.stage = Stage::Persisting { zxid: core.history.last() };
                self.on_persisted(core, out);
            }
            Message::Proposal(entry) if self.has_history => {
                follows(core.history.last(), &[&entry])?;
                core.history.append(entry.clone());
                out.push(Action::Append(vec![entry]));
            }
            Message::UpToDate { committed } if self.stage == Stage::Synced => {
                // Apply before serving: the shell takes clients, and answers their reads
                // from the tree on other threads, as soon as it hears the role. Serving
                // first, or without this member's own entries that the leader committed
                // when it established the epoch, would show a client that retries an
                // unanswered write the state before that write; the client would write
                // again (a second lock node, which no one ever deletes).
                self.committed(core, committed.max(self.established), out);
                self.stage = Stage::Active;
                let (leader, epoch) = (self.leader, self.epoch);
                out.push(Action::Role(if self.observer {
                    Role::Observing { leader, epoch }
                } else {
                    Role::Following { leader, epoch }
                }));
            }
            Message::Commit { zxid } if self.has_history => self.committed(core, zxid, out),
            Message::Ping { last_proposed } => {
                self.send(Message::Pong { echoed: last_proposed }, out);
            }
            Message::SyncReply => {
                // Replies come in the order the syncs were sent, after the commits they
                // must see: the oldest unconfirmed one is done once this member has
                // applied what the leader committed so far.
                let confirmed = self.leader_committed;
                if let Some(sync) = self.syncs.iter_mut().find(|(_, zxid)| zxid.is_none()) {
                    sync.1 = Some(confirmed);
                }
                self.finish_syncs(core, out);
            }
            _ => {}
        }
        Ok(Transition::Stay)
    }

    fn on_leader_info(&mut self, core: &mut Core, epoch: u32, out: &mut Vec<Action>) -> Transition {
        if self.stage != Stage::Connecting {
            return Transition::Stay;
        }
        if epoch < core.epochs.accepted {
            tracing::warn!(epoch, accepted = core.epochs.accepted, "leader's epoch is stale");
            return Transition::StepDown;
        }
        let first_to_accept = epoch > core.epochs.accepted;
        if first_to_accept {
            core.epochs = Epochs { accepted: epoch, current: core.epochs.current };
            out.push(Action::PersistEpochs(core.epochs));
        }
        self.epoch = epoch;
        self.stage = Stage::Syncing;
        self.send_after_persist(
            Message::AckEpoch {
                current_epoch: first_to_accept.then_some(core.epochs.current),
                last_zxid: core.history.last(),
            },
            out,
        );
        Transition::Stay
    }

    /// A SNAP older than this member's state: a leader not yet established has applied
    /// only the part of its log its snapshot had, while this member applied more. All
    /// this member applied is committed, so the leader's entries after its snapshot hold
    /// it too: the member keeps its state rather than go back, drops its log after it,
    /// and takes the entries after it, as from a DIFF. The shell discards the snapshot.
    fn take_entries_after_applied(
        &mut self,
        core: &mut Core,
        zxid: Zxid,
        entries: Vec<Entry>,
        committed: Zxid,
        out: &mut Vec<Action>,
    ) -> Result<(), PeerError> {
        let applied = core.applied;
        if !entries.iter().any(|entry| entry.zxid == applied) {
            return Err(PeerError::SnapshotSkipsApplied { zxid, applied });
        }
        let after: Vec<Entry> = entries.into_iter().filter(|entry| entry.zxid > applied).collect();
        let truncate_to = (core.history.last() > applied).then_some(applied);
        self.take_history(core, truncate_to, None, after, committed, out)
    }

    fn take_history(
        &mut self,
        core: &mut Core,
        truncate_to: Option<Zxid>,
        snapshot: Option<Zxid>,
        entries: Vec<Entry>,
        committed: Zxid,
        out: &mut Vec<Action>,
    ) -> Result<(), PeerError> {
        if let Some(zxid) = truncate_to {
            if zxid < core.applied {
                return Err(PeerError::TruncateBelowApplied { zxid, applied: core.applied });
            }
        }
        let base = match (&snapshot, truncate_to) {
            (Some(zxid), _) => *zxid,
            (None, Some(zxid)) => zxid.min(core.history.last()),
            (None, None) => core.history.last(),
        };
        follows(base, &entries.iter().collect::<Vec<_>>())?;
        if let Some(zxid) = truncate_to {
            out.push(Action::Truncate(zxid));
            core.history.truncate_after(zxid);
            core.persisted = core.persisted.min(zxid);
        }
        if let Some(zxid) = snapshot {
            out.push(Action::InstallSnapshot(zxid));
            core.history.install_snapshot(zxid);
            core.persisted = zxid;
            core.applied = zxid;
        }
        if !entries.is_empty() {
            for entry in &entries {
                core.history.append(entry.clone());
            }
            out.push(Action::Append(entries));
        }
        self.has_history = true;
        self.committed(core, committed, out);
        Ok(())
    }

    /// Entries up to `zxid` are durable.
    pub fn on_persisted(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        match self.stage {
            Stage::Persisting { zxid } if core.persisted >= zxid => {
                core.epochs = Epochs { accepted: core.epochs.accepted, current: self.epoch };
                out.push(Action::PersistEpochs(core.epochs));
                self.send_after_persist(Message::AckNewLeader { epoch: self.epoch }, out);
                self.acked = zxid;
                self.stage = Stage::Synced;
            }
            Stage::Synced | Stage::Active if core.persisted > self.acked => {
                self.acked = core.persisted;
                self.send(Message::Ack { zxid: core.persisted }, out);
            }
            _ => {}
        }
        let committed = self.leader_committed;
        self.committed(core, committed, out);
    }

    /// Applies what the leader committed as soon as it is here, durable here or not, as
    /// ZooKeeper's followers do: a quorum already holds it durably, so no election can
    /// lose it. Waiting for this member's own log would let a client that saw its write
    /// answered by another member read the old state here.
    fn committed(&mut self, core: &mut Core, zxid: Zxid, out: &mut Vec<Action>) {
        self.leader_committed = self.leader_committed.max(zxid);
        core.apply_through(self.leader_committed, out);
        self.finish_syncs(core, out);
    }

    /// A client's sync: ask the leader to confirm its leadership.
    pub fn sync(&mut self, id: u64, out: &mut Vec<Action>) {
        if self.stage != Stage::Active {
            out.push(Action::SyncFailed { id });
            return;
        }
        self.syncs.push((id, None));
        self.send(Message::SyncRequest { id }, out);
    }

    fn finish_syncs(&mut self, core: &Core, out: &mut Vec<Action>) {
        self.syncs.retain(|(id, zxid)| match zxid {
            Some(zxid) if *zxid <= core.applied => {
                out.push(Action::SyncDone { id: *id });
                false
            }
            _ => true,
        });
    }

    /// Leaving: syncs still waiting fail.
    pub fn abandon(&mut self, out: &mut Vec<Action>) {
        for (id, _) in self.syncs.drain(..) {
            out.push(Action::SyncFailed { id });
        }
    }
}

/// Checks that `entries` continue a history ending at `last`, each after the one before.
fn follows(mut last: Zxid, entries: &[&Entry]) -> Result<(), PeerError> {
    for entry in entries {
        if entry.zxid <= last {
            return Err(PeerError::ZxidNotIncreasing { zxid: entry.zxid, last });
        }
        last = entry.zxid;
    }
    Ok(())
}
