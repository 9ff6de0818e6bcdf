//! What members say to each other: election notifications, and the ZAB messages between a
//! leader and its learners.

use crate::txn::Zxid;
use crate::zab::{Entry, ServerId};

/// A proposal for who should lead: ZooKeeper's vote. Votes are ordered by the candidate's
/// currentEpoch, then its last zxid, then its id; the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    /// The candidate's currentEpoch.
    pub epoch: u32,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate.
    pub leader: ServerId,
}

/// What a member is doing, as it tells others during elections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Electing.
    Looking,
    /// Following the vote's leader.
    Following,
    /// Leading.
    Leading,
    /// Observing the vote's leader.
    Observing,
}

impl PeerState {
    /// ZooKeeper's number for the state (`ServerState.ordinal()`), which both the
    /// election notifications and zkrs's own frames carry.
    pub fn number(self) -> u8 {
        match self {
            PeerState::Looking => 0,
            PeerState::Following => 1,
            PeerState::Leading => 2,
            PeerState::Observing => 3,
        }
    }

    /// The state ZooKeeper numbers `number`, if any.
    pub fn from_number(number: i32) -> Option<PeerState> {
        Some(match number {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }
}

/// An election message: the sender's round, its current vote and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The sender's election round (ZooKeeper's logical clock).
    pub round: u64,
    /// Whom the sender votes for (or follows).
    pub vote: Vote,
    /// What the sender is doing.
    pub state: PeerState,
}

/// Everything members send each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election.
    Notification(Notification),
    /// Learner → leader, first on a connection: FOLLOWERINFO.
    FollowerInfo {
        /// The learner's acceptedEpoch.
        accepted_epoch: u32,
        /// Whether the learner observes rather than votes.
        observer: bool,
    },
    /// Leader → learner: LEADERINFO, the new epoch.
    LeaderInfo {
        /// The epoch the leader will establish.
        epoch: u32,
    },
    /// Learner → leader: ACKEPOCH, after persisting acceptedEpoch. As in ZooKeeper, it
    /// says where the learner's log ends and nothing more; the leader finds the common
    /// point from its own history ([`crate::zab::History::common_point`]).
    AckEpoch {
        /// The learner's currentEpoch; `None` (ZooKeeper's -1) when it had accepted this
        /// epoch already, before this LEADERINFO: it cannot acknowledge the epoch twice,
        /// so the leader syncs it without counting it towards the epoch's quorum.
        current_epoch: Option<u32>,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// Leader → learner: the learner's log matches up to a point; drop what follows it
    /// (if `truncate_to` is set) and append `entries`.
    Diff {
        /// Where the learner's log diverges, when it has entries after it.
        truncate_to: Option<Zxid>,
        /// The leader's entries after the common point.
        entries: Vec<Entry>,
        /// The leader's commit point: entries up to it are committed.
        committed: Zxid,
        /// How far the learner's log, once it has taken this, is committed when UPTODATE
        /// comes (ZooKeeper's DIFF zxid): a leader establishing its epoch commits its
        /// whole log with NEWLEADER, an established one only what it has committed. The
        /// learner's own entries up to here need no COMMIT of their own.
        established: Zxid,
    },
    /// Leader → learner: replace the state and the whole log with the snapshot at `zxid`
    /// that the shell sends along, then append `entries`.
    Snap {
        /// The snapshot's zxid.
        zxid: Zxid,
        /// The leader's entries after the snapshot.
        entries: Vec<Entry>,
        /// The leader's commit point.
        committed: Zxid,
    },
    /// Leader → learner: NEWLEADER; persist the history sent before it and
    /// currentEpoch. As ZooKeeper's, it does not say where that history ends: the
    /// learner has all of it when this arrives.
    NewLeader {
        /// The new epoch.
        epoch: u32,
    },
    /// Learner → leader: the history and currentEpoch are durable.
    AckNewLeader {
        /// The epoch acknowledged.
        epoch: u32,
    },
    /// Leader → learner: the epoch is established; serve clients.
    UpToDate {
        /// The leader's commit point.
        committed: Zxid,
    },
    /// Leader → learner: a new entry.
    Proposal(Entry),
    /// Learner → leader: every entry up to `zxid` is durable here.
    Ack {
        /// The learner's last durable zxid.
        zxid: Zxid,
    },
    /// Leader → learner: entries up to `zxid` are committed.
    Commit {
        /// The commit point.
        zxid: Zxid,
    },
    /// Leader → learner, every tick and for each `sync`: the leader is alive. A learner
    /// answers every ping, in order, as ZooKeeper's learners do, so the leader knows
    /// which ping an answer is to without numbering them.
    Ping {
        /// The leader's last proposed zxid, which ZooKeeper's PING carries (a learner
        /// only echoes it).
        last_proposed: Zxid,
    },
    /// Learner → leader: the answer to the oldest ping not yet answered.
    Pong {
        /// The ping's `last_proposed`, echoed.
        echoed: Zxid,
    },
    /// Learner → leader: a client of the learner asked for `sync`.
    SyncRequest {
        /// The learner's handle for it, for its shell, which forwards the client's
        /// request in its place (as ZooKeeper does): the leader never sees it.
        id: u64,
    },
    /// Leader → learner: the oldest sync the learner asked for and not yet heard of is
    /// confirmed, and every commit it must see has been sent before this (ZooKeeper's
    /// SYNC, which carries neither an id nor a zxid either).
    SyncReply,
}
