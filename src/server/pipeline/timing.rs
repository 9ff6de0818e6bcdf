//! Where the pipeline's time goes: each client write timed through its stages (the
//! histograms of [`WriteStage`]) and ZooKeeper's quorum metrics (elections, syncs,
//! proposals, commits), read from the pipeline's clock, so the simulator's runs time
//! themselves too. Recording never changes what the pipeline does.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::work::ReplyTo;
use super::Pipeline;
use crate::server::histogram::WriteStage;
use crate::server::stats::{AtomicLatency, ACK_SAMPLING};
use crate::txn::{Txn, TxnBody, Zxid};
use crate::zab::{Entry, Role, ServerId, SyncsInFlight};

/// Proposals a learner remembers the arrival of, for `commit_propagation_latency`;
/// past this many uncommitted ones, later arrivals go untimed.
const ARRIVALS_MAX: usize = 65_536;

/// Records in `latency` the milliseconds from the txn time `txn_ms` (the leader's wall
/// clock) until `now_ms`; skipped if the txn time is ahead, as ZooKeeper skips it.
fn record_since(latency: &AtomicLatency, txn_ms: i64, now_ms: i64) {
    if let Ok(elapsed) = u64::try_from(now_ms - txn_ms) {
        latency.record(elapsed);
    }
}

/// A leader's own proposal, with whom to answer and when it passed each stage.
pub(super) struct Proposed {
    pub(super) txn: Txn,
    pub(super) reply_to: ReplyTo,
    /// When it was proposed.
    pub(super) prepared_us: u64,
    /// When this member's log held it.
    pub(super) logged_us: Option<u64>,
}

/// The election this member is in, or the last one: for ZooKeeper's election metrics.
#[derive(Debug, Default)]
pub(super) struct ElectionClock {
    electing: bool,
    since_ms: u64,
    /// When the last election settled, until the member serves.
    settled_ms: Option<u64>,
}

impl ReplyTo {
    /// When a client's request arrived; none for the server's own txns and handshakes.
    pub(super) fn received_us(&self) -> Option<u64> {
        match self {
            ReplyTo::Client { received_us, .. } => Some(*received_us),
            _ => None,
        }
    }
}

impl Pipeline {
    fn record(&self, stage: WriteStage, from_us: u64, to_us: u64) {
        self.shared.stats.write_stages.stage(stage).record(to_us.saturating_sub(from_us));
    }

    /// A client write waited from `received_us` until it was proposed or forwarded at
    /// `now_us`; only the first is ZooKeeper's `prep_processor_queue_time_ms`.
    pub(super) fn time_queued(&self, received_us: u64, now_us: u64) {
        self.record(WriteStage::Queue, received_us, now_us);
        if self.is_leading() {
            let queued_ms = now_us.saturating_sub(received_us) / 1000;
            self.shared.stats.processors.prep_queue_time.record(queued_ms);
        }
    }

    /// A txn of time `txn_ms` (the leader's wall clock) is applied here:
    /// `propagation_latency`.
    pub(super) fn time_applied(&self, txn_ms: i64, wall_ms: i64) {
        record_since(&self.shared.stats.processors.propagation_latency, txn_ms, wall_ms);
    }

    /// A txn whose preparing began at `started_us` is prepared: ZooKeeper's
    /// `prep_process_time`, and `close_session_prep_time` for a closeSession.
    pub(super) fn time_prepared(&self, started_us: u64, txn: &Txn) {
        let took_ms = self.shared.clock.now_us().saturating_sub(started_us) / 1000;
        let processors = &self.shared.stats.processors;
        processors.prep_time.record(took_ms);
        if matches!(txn.body, TxnBody::CloseSession(_)) {
            processors.close_session_prep_time.record(took_ms);
        }
    }

    /// A `sync` passed where ZooKeeper's `PrepRequestProcessor` would take it, which
    /// prepares nothing for it: `prep_process_time` counts it, taking no time.
    pub(super) fn time_sync_prepared(&self) {
        self.shared.stats.processors.prep_time.record(0);
    }

    /// A txn committed at `committed_us` is applied, and its client answered if it has
    /// one here, or a learner's `sync` is answered: `write_final_proc_time_ms`.
    /// ZooKeeper times these in the commit processor of every ensemble member, and a
    /// standalone server has none.
    pub(super) fn time_final(&self, committed_us: u64) {
        if !self.standalone {
            let final_ms = self.shared.clock.now_us().saturating_sub(committed_us) / 1000;
            self.shared.stats.processors.write_final_time.record(final_ms);
        }
    }

    /// The proposals up to `zxid` are durable in this member's log, and a voter of an
    /// ensemble acknowledges them: ZooKeeper's `proposal_ack_creation_latency`, and a
    /// leader's own `ack_latency`.
    pub(super) fn time_logged(&mut self, zxid: Zxid) {
        let now_us = self.shared.clock.now_us();
        let wall_ms = self.wall_ms();
        let own_id = self.zab.id();
        let quorum = &self.shared.stats.quorum;
        let ack_created = (!self.standalone).then_some(&quorum.proposal_ack_creation_latency);
        let start = self.proposed.partition_point(|proposed| proposed.logged_us.is_some());
        let stage = self.shared.stats.write_stages.stage(WriteStage::Log);
        for proposed in self.proposed.range_mut(start..) {
            if proposed.txn.zxid() > zxid {
                break;
            }
            proposed.logged_us = Some(now_us);
            if proposed.reply_to.received_us().is_some() {
                stage.record(now_us.saturating_sub(proposed.prepared_us));
            }
            if let Some(ack_created) = ack_created {
                let txn_ms = proposed.txn.header.time;
                record_since(ack_created, txn_ms, wall_ms);
                if proposed.txn.zxid().raw() % ACK_SAMPLING == 0 {
                    record_since(
                        quorum.ack_latency.lock().entry(own_id).or_default(),
                        txn_ms,
                        wall_ms,
                    );
                }
            }
        }
        while let Some((unacked, txn_ms)) = self.unacked.front().copied() {
            if unacked > zxid {
                break;
            }
            self.unacked.pop_front();
            if let (Some(ack_created), Some(txn_ms)) = (ack_created, txn_ms) {
                record_since(ack_created, txn_ms, wall_ms);
            }
        }
    }

    /// A leader heard voter `from` acknowledge its proposals up to `zxid`: the sampled
    /// ones among them that are not committed yet go into ZooKeeper's `ack_latency`
    /// (which skips an acknowledgement that comes after the commit).
    pub(super) fn time_ack(&mut self, from: ServerId, zxid: Zxid) {
        if !matches!(self.zab.role(), Role::Leading { .. }) {
            return;
        }
        let before = self.acked.insert(from, zxid).unwrap_or(Zxid::ZERO);
        let (Some(first), Some(last)) = (self.proposed.front(), self.proposed.back()) else {
            return;
        };
        let from_raw = before.raw().max(first.txn.zxid().raw() - 1);
        let to_raw = zxid.raw().min(last.txn.zxid().raw());
        let mut sampled = (from_raw.div_euclid(ACK_SAMPLING) + 1) * ACK_SAMPLING;
        let wall_ms = self.wall_ms();
        while sampled <= to_raw {
            let at = self.proposed.binary_search_by_key(&sampled, |p| p.txn.zxid().raw());
            if let Ok(index) = at {
                let txn_ms = self.proposed[index].txn.header.time;
                let mut latencies = self.shared.stats.quorum.ack_latency.lock();
                record_since(latencies.entry(from).or_default(), txn_ms, wall_ms);
            }
            sampled += ACK_SAMPLING;
        }
    }

    /// The wall clock in milliseconds, as txn times are.
    pub(super) fn wall_ms(&self) -> i64 {
        i64::try_from(self.shared.clock.wall_ms()).unwrap_or(i64::MAX)
    }

    /// This member's own proposal, committed at `committed_us`, is applied and answered.
    pub(super) fn time_own_commit(
        &self,
        received_us: Option<u64>,
        prepared_us: u64,
        logged_us: Option<u64>,
        committed_us: u64,
        quorum_acks_ms: &mut Vec<u64>,
    ) {
        if !self.standalone {
            let arrived_us = received_us.unwrap_or(prepared_us);
            quorum_acks_ms.push(committed_us.saturating_sub(arrived_us) / 1000);
        }
        let Some(received_us) = received_us else {
            return;
        };
        let answered_us = self.shared.clock.now_us();
        self.record(WriteStage::Quorum, logged_us.unwrap_or(committed_us), committed_us);
        self.record(WriteStage::Apply, committed_us, answered_us);
        self.record(WriteStage::Total, received_us, answered_us);
    }

    /// A write this member forwarded at `forwarded_us`, committed by the leader at
    /// `committed_us`, is applied and answered.
    pub(super) fn time_forwarded_commit(
        &self,
        received_us: Option<u64>,
        forwarded_us: u64,
        committed_us: u64,
    ) {
        let Some(received_us) = received_us else {
            return;
        };
        let answered_us = self.shared.clock.now_us();
        self.record(WriteStage::Leader, forwarded_us, committed_us);
        self.record(WriteStage::Apply, committed_us, answered_us);
        self.record(WriteStage::Total, received_us, answered_us);
    }

    /// What a batch of commits adds to ZooKeeper's quorum metrics.
    pub(super) fn time_commits(&self, count: u64, quorum_acks_ms: &[u64]) {
        let quorum = &self.shared.stats.quorum;
        if self.is_leading() && !self.standalone {
            quorum.commits.fetch_add(count, Ordering::Relaxed);
        }
        if !quorum_acks_ms.is_empty() {
            let latency = &quorum.quorum_ack_latency;
            quorum_acks_ms.iter().for_each(|ms| latency.record(*ms));
        }
    }

    /// A learner received the leader's proposal `entry`: ZooKeeper's
    /// `learner_proposal_received_count` and `proposal_latency` (from the txn's time,
    /// the leader's wall clock, as ZooKeeper measures it; skipped if that is ahead).
    pub(super) fn time_proposal_arrived(&mut self, entry: &Entry) {
        if !matches!(self.zab.role(), Role::Following { .. }) {
            return;
        }
        let quorum = &self.shared.stats.quorum;
        quorum.learner_proposals.fetch_add(1, Ordering::Relaxed);
        let txn_ms = Txn::header_time_ms(&entry.payload);
        if let Some(txn_ms) = txn_ms {
            record_since(&quorum.proposal_latency, txn_ms, self.wall_ms());
        }
        if self.arrivals.len() < ARRIVALS_MAX {
            self.arrivals.push_back((entry.zxid, self.shared.clock.now_us()));
        }
        if self.unacked.len() < ARRIVALS_MAX {
            self.unacked.push_back((entry.zxid, txn_ms));
        }
    }

    /// A learner applies `zxid`, committed at `committed_us`: the time since its
    /// proposal arrived (`commit_propagation_latency`).
    pub(super) fn time_learner_commit(&mut self, zxid: Zxid, committed_us: u64) {
        while let Some((arrived, arrived_us)) = self.arrivals.front().copied() {
            if arrived > zxid {
                break;
            }
            self.arrivals.pop_front();
            if arrived == zxid {
                let latency_ms = committed_us.saturating_sub(arrived_us) / 1000;
                self.shared.stats.quorum.commit_propagation_latency.record(latency_ms);
            }
        }
    }

    /// Samples the syncs in flight of the kind of the one that just began or ended, as
    /// the leader's core counts them now (nothing unless leading).
    pub(super) fn sample_syncs_in_flight(&self, by_snapshot: bool) {
        let Some(syncing) = self.zab.syncs_in_flight() else { return };
        let quorum = &self.shared.stats.quorum;
        if by_snapshot {
            quorum.inflight_snaps.record(syncing.snapshot as u64);
        } else {
            quorum.inflight_diffs.record(syncing.diff as u64);
        }
    }

    /// Samples the syncs in flight if the learner's message just ended one (its
    /// acknowledgement of NEWLEADER), given those in flight before the message.
    pub(super) fn sample_ended_syncs(&self, before: Option<SyncsInFlight>) {
        let (Some(before), Some(after)) = (before, self.zab.syncs_in_flight()) else { return };
        if after.snapshot < before.snapshot {
            self.sample_syncs_in_flight(true);
        }
        if after.diff < before.diff {
            self.sample_syncs_in_flight(false);
        }
    }

    /// After each step of the core: an election began or settled.
    pub(super) fn time_election(&mut self) {
        let electing = self.zab.is_electing();
        if self.standalone || electing == self.election.electing {
            return;
        }
        let now_ms = self.shared.clock.now_ms();
        let quorum = &self.shared.stats.quorum;
        self.election.electing = electing;
        if electing {
            quorum.looking.fetch_add(1, Ordering::Relaxed);
            self.election.since_ms = now_ms;
            self.election.settled_ms = None;
        } else {
            quorum.election_time.record(now_ms.saturating_sub(self.election.since_ms));
            self.election.settled_ms = Some(now_ms);
        }
    }

    /// The member serves as `role` after being unavailable since `looking_since_ms`.
    pub(super) fn time_serving(&mut self, role: Role, looking_since_ms: Option<u64>) {
        if self.standalone {
            return;
        }
        let now_ms = self.shared.clock.now_ms();
        let quorum = &self.shared.stats.quorum;
        if let Some(since_ms) = looking_since_ms {
            let unavailable_ms = now_ms.saturating_sub(since_ms);
            quorum.unavailable_time.record(unavailable_ms);
            if matches!(role, Role::Leading { .. }) {
                quorum.leader_unavailable_time.record(unavailable_ms);
            }
        }
        let Some(settled_ms) = self.election.settled_ms.take() else {
            return;
        };
        let sync_ms = now_ms.saturating_sub(settled_ms);
        match role {
            Role::Following { .. } => quorum.follower_sync_time.record(sync_ms),
            Role::Observing { .. } => quorum.observer_sync_time.record(sync_ms),
            Role::Leading { .. } | Role::Looking => {}
        }
    }

    /// A role ended: proposals that arrived in it will not be committed in it.
    pub(super) fn forget_arrivals(&mut self) {
        self.arrivals = VecDeque::new();
        self.unacked = VecDeque::new();
        self.acked.clear();
    }
}
