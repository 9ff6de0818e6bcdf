//! Leader election in the manner of ZooKeeper's fast leader election.
//!
//! A looking member votes for the best candidate it knows (highest currentEpoch, then last
//! zxid, then id), tells every voter, and adopts any better vote it hears in its round.
//! Once a quorum of the round's votes agree with its own, it waits a few ticks for a
//! better one and then follows (or leads). A member that joins late follows the leader a
//! quorum of already-settled members report. Election only proposes a leader: safety
//! comes from discovery, where the leader needs a quorum none of which is ahead of it.

use std::collections::BTreeMap;

use crate::zab::message::{Message, Notification, PeerState, Vote};
use crate::zab::quorum::Quorum;
use crate::zab::{Action, ServerId};

/// Ticks between re-sending the vote while looking: notifications may be lost.
const RESEND_TICKS: u32 = 2;

/// One election round in progress.
#[derive(Debug)]
pub(super) struct Election {
    id: ServerId,
    round: u64,
    vote: Vote,
    /// Votes of this round, by voter, with the sender's state.
    received: BTreeMap<ServerId, (Vote, PeerState)>,
    /// What settled members (following, leading) reported, with their rounds.
    settled: BTreeMap<ServerId, (u64, Vote, PeerState)>,
    /// Ticks left before deciding on the current vote, once a quorum agrees with it.
    settling: Option<u32>,
    finalize_ticks: u32,
    ticks_to_resend: u32,
}

impl Election {
    /// Starts round `round` with this member's own credentials as its vote.
    pub fn start(
        id: ServerId,
        round: u64,
        own: Vote,
        finalize_ticks: u32,
        quorum: &Quorum,
        out: &mut Vec<Action>,
    ) -> Election {
        let mut election = Election {
            id,
            round,
            vote: own,
            received: BTreeMap::new(),
            settled: BTreeMap::new(),
            settling: None,
            finalize_ticks,
            ticks_to_resend: RESEND_TICKS,
        };
        election.record_own();
        election.broadcast(quorum, out);
        election
    }

    /// The round in progress.
    pub fn round(&self) -> u64 {
        self.round
    }

    fn notification(&self) -> Notification {
        Notification { round: self.round, vote: self.vote, state: PeerState::Looking }
    }

    fn record_own(&mut self) {
        self.received.insert(self.id, (self.vote, PeerState::Looking));
    }

    fn broadcast(&self, quorum: &Quorum, out: &mut Vec<Action>) {
        for to in quorum.voters().filter(|voter| *voter != self.id) {
            out.push(Action::Send { to, message: Message::Notification(self.notification()) });
        }
    }

    /// A tick: re-sends the vote now and then, and decides once the settling wait is over.
    pub fn tick(&mut self, quorum: &Quorum, out: &mut Vec<Action>) -> Option<Vote> {
        self.ticks_to_resend = self.ticks_to_resend.saturating_sub(1);
        if self.ticks_to_resend == 0 {
            self.ticks_to_resend = RESEND_TICKS;
            self.broadcast(quorum, out);
        }
        if self.settling.is_none() && self.agreed(&self.received, self.vote, quorum) {
            self.settling = Some(self.finalize_ticks);
        }
        match self.settling {
            Some(0) => Some(self.vote),
            Some(left) => {
                self.settling = Some(left - 1);
                None
            }
            None => None,
        }
    }

    /// A notification from `from`. Returns the vote to act on once the election is over.
    pub fn on_notification(
        &mut self,
        from: ServerId,
        n: Notification,
        quorum: &Quorum,
        out: &mut Vec<Action>,
    ) -> Option<Vote> {
        if !quorum.is_voter(from) {
            // An observer looking for the leader gets this member's vote, as ZooKeeper's
            // voters answer a non-voter; its own vote counts for nothing. (Observers do
            // not answer each other, so two of them never keep each other busy.)
            if quorum.is_voter(self.id) {
                let message = Message::Notification(self.notification());
                out.push(Action::Send { to: from, message });
            }
            return None;
        }
        if n.state == PeerState::Looking {
            return self.on_looking(from, n, quorum, out);
        }
        if n.round == self.round {
            self.received.insert(from, (n.vote, n.state));
            if self.agreed(&self.received, n.vote, quorum) && self.leader_known(n.vote, n.round) {
                return Some(n.vote);
            }
        }
        self.settled.insert(from, (n.round, n.vote, n.state));
        let settled: BTreeMap<ServerId, (Vote, PeerState)> =
            self.settled.iter().map(|(id, (_, vote, state))| (*id, (*vote, *state))).collect();
        if self.agreed(&settled, n.vote, quorum) && self.leader_settled(n.vote) {
            self.round = n.round;
            return Some(n.vote);
        }
        None
    }

    fn on_looking(
        &mut self,
        from: ServerId,
        n: Notification,
        quorum: &Quorum,
        out: &mut Vec<Action>,
    ) -> Option<Vote> {
        if n.round < self.round {
            // The sender is behind: tell it where the election is.
            out.push(Action::Send {
                to: from,
                message: Message::Notification(self.notification()),
            });
            return None;
        }
        // A vote for a member of weight 0 is never better (ZooKeeper's
        // totalOrderPredicate), nor answered: its sender keeps it for want of a better one.
        let better = n.vote > self.vote && quorum.may_lead(n.vote.leader);
        if n.round > self.round {
            self.round = n.round;
            self.received.clear();
            if better {
                self.vote = n.vote;
            }
            self.settling = None;
            self.record_own();
            self.broadcast(quorum, out);
        } else if better {
            self.vote = n.vote;
            self.settling = None;
            self.record_own();
            self.broadcast(quorum, out);
        } else if n.vote < self.vote {
            // The sender has not heard the better vote (it may have been settled when it
            // came): tell it now rather than at the next re-send.
            out.push(Action::Send {
                to: from,
                message: Message::Notification(self.notification()),
            });
        }
        self.received.insert(from, (n.vote, n.state));
        if self.settling.is_none() && self.agreed(&self.received, self.vote, quorum) {
            self.settling = Some(self.finalize_ticks);
        }
        None
    }

    /// Whether a quorum of `votes` name the same leader and epoch as `vote`.
    fn agreed(
        &self,
        votes: &BTreeMap<ServerId, (Vote, PeerState)>,
        vote: Vote,
        quorum: &Quorum,
    ) -> bool {
        let same = votes.iter().filter(|(_, (other, state))| {
            if *state == PeerState::Looking {
                *other == vote
            } else {
                other.leader == vote.leader && other.epoch == vote.epoch
            }
        });
        quorum.contains_quorum(same.map(|(id, _)| *id))
    }

    /// ZooKeeper's checkLeader: a settled quorum counts only if its leader says it leads
    /// (or, when it names this member, if the rounds match).
    fn leader_known(&self, vote: Vote, round: u64) -> bool {
        if vote.leader == self.id {
            return round == self.round;
        }
        self.received.get(&vote.leader).is_some_and(|(_, state)| *state == PeerState::Leading)
            || self.leader_settled(vote)
    }

    fn leader_settled(&self, vote: Vote) -> bool {
        if vote.leader == self.id {
            return false;
        }
        self.settled.get(&vote.leader).is_some_and(|(_, _, state)| *state == PeerState::Leading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::Zxid;
    use crate::zab::quorum::Groups;

    fn quorum() -> Quorum {
        Quorum::new([1, 2, 3].into(), None)
    }

    fn vote(leader: ServerId, zxid: i64) -> Vote {
        Vote { epoch: 1, zxid: Zxid::new(zxid), leader }
    }

    fn looking(round: u64, vote: Vote) -> Notification {
        Notification { round, vote, state: PeerState::Looking }
    }

    #[test]
    fn a_better_vote_is_adopted_and_announced() {
        let mut out = Vec::new();
        let mut e = Election::start(1, 1, vote(1, 5), 2, &quorum(), &mut out);
        assert_eq!(out.len(), 2, "the vote goes to both other voters");
        out.clear();
        assert_eq!(e.on_notification(2, looking(1, vote(2, 9)), &quorum(), &mut out), None);
        let announced: Vec<_> = out
            .iter()
            .map(|action| match action {
                Action::Send { to, message: Message::Notification(n) } => (*to, n.vote),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(announced, vec![(2, vote(2, 9)), (3, vote(2, 9))]);
    }

    #[test]
    fn a_worse_vote_of_the_round_is_answered_with_the_better_one() {
        let mut out = Vec::new();
        let mut e = Election::start(2, 3, vote(2, 9), 2, &quorum(), &mut out);
        out.clear();
        assert_eq!(e.on_notification(1, looking(3, vote(1, 9)), &quorum(), &mut out), None);
        let expected =
            Action::Send { to: 1, message: Message::Notification(looking(3, vote(2, 9))) };
        assert_eq!(out, vec![expected]);
        out.clear();
        // An equal vote needs no answer.
        assert_eq!(e.on_notification(1, looking(3, vote(2, 9)), &quorum(), &mut out), None);
        assert!(out.is_empty());
    }

    #[test]
    fn a_vote_for_a_member_of_weight_zero_is_neither_adopted_nor_answered() {
        // group.1=1:2, group.2=3, weight.2=0: member 2 may vote but never lead.
        let groups = Groups {
            group_of: [(1, 1), (2, 1), (3, 2)].into(),
            weight_of: [(1, 1), (2, 0), (3, 1)].into(),
        };
        let weighed = Quorum::new([1, 2, 3].into(), Some(groups));
        let mut out = Vec::new();
        let mut e = Election::start(1, 1, vote(1, 5), 1, &weighed, &mut out);
        out.clear();
        assert_eq!(e.on_notification(2, looking(1, vote(2, 9)), &weighed, &mut out), None);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(e.on_notification(2, looking(2, vote(2, 9)), &weighed, &mut out), None);
        assert_eq!(e.round(), 2);
        let announced = out.iter().all(|action| {
            matches!(action, Action::Send { message: Message::Notification(n), .. }
                if n.vote == vote(1, 5))
        });
        assert!(announced, "a new round keeps the vote for 1: {out:?}");
        // With member 3 the vote for 1 is a quorum: both groups, each by a majority.
        assert_eq!(e.on_notification(3, looking(2, vote(1, 5)), &weighed, &mut out), None);
        assert_eq!(e.tick(&weighed, &mut out), None);
        assert_eq!(e.tick(&weighed, &mut out), Some(vote(1, 5)));
    }

    #[test]
    fn a_quorum_decides_after_the_settling_ticks() {
        let mut out = Vec::new();
        let mut e = Election::start(1, 1, vote(1, 5), 1, &quorum(), &mut out);
        assert_eq!(e.on_notification(2, looking(1, vote(1, 5)), &quorum(), &mut out), None);
        assert_eq!(e.tick(&quorum(), &mut out), None);
        assert_eq!(e.tick(&quorum(), &mut out), Some(vote(1, 5)));
    }

    #[test]
    fn a_late_member_follows_the_settled_quorum() {
        let mut out = Vec::new();
        let mut e = Election::start(3, 1, vote(3, 1), 1, &quorum(), &mut out);
        let settled = |state| Notification { round: 4, vote: vote(1, 7), state };
        assert_eq!(e.on_notification(2, settled(PeerState::Following), &quorum(), &mut out), None);
        let decided = e.on_notification(1, settled(PeerState::Leading), &quorum(), &mut out);
        assert_eq!(decided, Some(vote(1, 7)));
        assert_eq!(e.round(), 4);
    }

    #[test]
    fn followers_without_their_leader_are_not_enough() {
        let mut out = Vec::new();
        let mut e = Election::start(3, 1, vote(3, 1), 1, &quorum(), &mut out);
        let following = Notification { round: 4, vote: vote(1, 7), state: PeerState::Following };
        assert_eq!(e.on_notification(2, following, &quorum(), &mut out), None);
        // 3 itself does not count as settled for leader 1.
        assert_eq!(e.on_notification(2, following, &quorum(), &mut out), None);
    }
}
