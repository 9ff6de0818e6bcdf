//! Apache ZooKeeper's own peer protocol, byte for byte, so that zkrs members and
//! ZooKeeper members can form one ensemble: the election port's initial message and
//! notifications ([`election`]), the quorum port's packets between a learner and its
//! leader ([`packet`]), what the replication core's messages are as those packets, on a
//! learner's side ([`learner`]) and on a leader's ([`leader`]), and what a learner says
//! of its clients' sessions ([`sessions`]).
//!
//! Every format here was read from ZooKeeper's sources (`QuorumCnxManager`,
//! `FastLeaderElection`, `Leader`, `Learner`, `LearnerHandler`) and checked against a
//! running ZooKeeper 3.8 (`tests/zookeeper_wire.rs`, and the captured bytes in the unit
//! tests).
//!
//! How the core's messages travel (`zab::Message` → ZooKeeper):
//!
//! | core message | on ZooKeeper's wire |
//! |---|---|
//! | `Notification` | a notification on the election port |
//! | `FollowerInfo` | FOLLOWERINFO or OBSERVERINFO, once per connection |
//! | `LeaderInfo` / `AckEpoch` | LEADERINFO / ACKEPOCH (`None` epoch is -1) |
//! | `Diff` / `Snap` | DIFF, TRUNC or SNAP (+ the snapshot), then PROPOSAL and COMMIT per txn |
//! | `NewLeader` / `AckNewLeader` | NEWLEADER / ACK of the epoch's first zxid |
//! | `UpToDate` | COMMITs still owed, then UPTODATE |
//! | `Proposal` / `Ack` / `Commit` | PROPOSAL / ACK / a COMMIT per txn (an observer: INFORM) |
//! | `Ping` / `Pong` | PING both ways (the learner's carries its session touches) |
//! | `SyncRequest` / `SyncReply` | the client's own `sync`, forwarded as a REQUEST / SYNC |
//!
//! The shell's frames between members become REQUEST (forwarded writes, `sync` and new
//! sessions), PING data (touches) and REVALIDATE (a session resumed elsewhere, and the
//! leader's answer): [`sessions`]. `ensemble::link` carries all of it on ZooKeeper's
//! connections.

pub mod election;
pub mod leader;
pub mod learner;
pub mod packet;
pub mod quorum_auth;
pub mod sessions;

use crate::txn::Zxid;
use packet::{PacketError, PacketType};

/// Why the packets on a quorum connection, or the core's messages for it, cannot go on:
/// the connection is dropped.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// A packet the other side should not send, or not now.
    #[error("a {0:?} packet where the learner protocol has none")]
    Unexpected(PacketType),
    /// A packet without the data its type needs.
    #[error("a malformed {kind:?} packet: {source}")]
    Malformed {
        /// The packet's type.
        kind: PacketType,
        /// What is wrong.
        source: PacketError,
    },
    /// A leader's synchronisation larger than a learner holds before NEWLEADER.
    #[error("the leader's synchronisation passed {max} bytes before NEWLEADER")]
    SyncTooLarge {
        /// The limit.
        max: usize,
    },
    /// More txns waiting for their commit than a leader holds for one learner.
    #[error("the learner has {max} txns waiting for their commit")]
    TooManyUncommitted {
        /// The limit.
        max: usize,
    },
    /// A core entry whose checksum fails: it is never sent.
    #[error("the entry 0x{0:x} fails its checksum")]
    Unsealed(Zxid),
    /// A core message that does not go on this side of the quorum connection.
    #[error("{0} does not go on this side of the quorum connection")]
    NotOnThisSide(&'static str),
}

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
