//! The replication core: leader election, discovery, synchronisation and broadcast
//! (ZooKeeper's ZAB) as a pure state machine.
//!
//! [`Zab::step`] takes one [`Input`] (a peer's message, a tick, a storage completion, a
//! proposal) and returns the [`Action`]s to carry out, in order. The core owns no
//! sockets, threads, clocks, files or randomness: time arrives as ticks, persistence is an
//! action whose completion comes back as an input. The server's shell does the IO; the
//! simulator in `tests/zab_simulation.rs` drives the same core through crashes,
//! partitions and message loss.
//!
//! What it does not own: the znode tree, sessions and the meaning of a txn. Entries are
//! opaque payloads with a zxid; the leader's shell prepares them (assigning zxids from the
//! epoch the core announces) and every server's shell applies them when the core says so.
//!
//! # Persist before send
//! Storage actions ([`Action::Append`], [`Action::Truncate`], [`Action::InstallSnapshot`],
//! [`Action::PersistEpochs`]) are carried out in order but may complete later, off the
//! shell's task. Whether a message may leave before them is a property of its action:
//! [`Action::Send`] goes at once, [`Action::SendAfterPersist`] only once every storage
//! action before it is durable (a promise about the epochs or the history rides on it).
//! Messages to one member never overtake each other, so a `Send` that follows a
//! `SendAfterPersist` to the same member waits with it. An append's completion comes
//! back as [`Input::Persisted`]; only then does the core acknowledge the entries to the
//! leader or count them towards a quorum.

mod election;
mod follower;
mod history;
mod leader;
mod message;
mod peer;
mod quorum;

pub use history::History;
pub use leader::{LeaderStatus, SyncsInFlight};
pub use message::{Message, Notification, PeerState, Vote};
pub use peer::Zab;
pub use quorum::Groups;

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::storage::Epochs;
use crate::txn::Zxid;

/// A server's `myid`.
pub type ServerId = u64;

/// One entry of the replicated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its position: epoch in the high 32 bits, counter in the low.
    pub zxid: Zxid,
    /// The encoded txn, opaque to the core.
    pub payload: Bytes,
}

/// Who the ensemble is and how patient to be, in ticks.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    /// This server.
    pub id: ServerId,
    /// The members that vote (ZooKeeper's participants), this one included if it votes.
    pub voters: BTreeSet<ServerId>,
    /// Members that follow without voting.
    pub observers: BTreeSet<ServerId>,
    /// The voters' groups and weights when quorums are hierarchical (`group.N` lines);
    /// majorities otherwise.
    pub groups: Option<Groups>,
    /// Ticks a new leader waits for a quorum to join and sync (`initLimit`).
    pub init_limit_ticks: u32,
    /// Ticks without hearing from the other side before giving up on it (`syncLimit`).
    pub sync_limit_ticks: u32,
    /// Ticks an election waits after reaching a quorum, for a better vote to show up.
    pub finalize_ticks: u32,
    /// Recent entries kept in memory so a follower that is a little behind is brought
    /// up to date with a DIFF rather than a whole snapshot.
    pub window_entries: usize,
}

/// What a server recovered from its storage at start-up.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// acceptedEpoch and currentEpoch.
    pub epochs: Epochs,
    /// The history: what is logged, starting from the state's snapshot.
    pub history: History,
    /// The zxid of the state the shell recovered (its snapshot's): entries logged after
    /// it are applied only once a leader has them committed.
    pub applied: Zxid,
}

/// The server's part in the ensemble, announced with [`Action::Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Looking for a leader; serves nobody.
    Looking,
    /// Leading `epoch`, and a quorum is in sync: it takes proposals, whose zxids continue
    /// after `last_zxid`.
    Leading {
        /// The established epoch.
        epoch: u32,
        /// The last zxid of the history the epoch starts from.
        last_zxid: Zxid,
    },
    /// Following `leader` in `epoch`, in sync: it may serve reads.
    Following {
        /// The leader.
        leader: ServerId,
        /// The established epoch.
        epoch: u32,
    },
    /// Observing `leader` in `epoch`, in sync: it may serve reads.
    Observing {
        /// The leader.
        leader: ServerId,
        /// The established epoch.
        epoch: u32,
    },
}

/// Work for the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passed: one tick.
    Tick,
    /// A message from another member.
    Message {
        /// Who sent it.
        from: ServerId,
        /// What it says.
        message: Message,
    },
    /// The connection to `peer` broke; messages to it may have been lost.
    Disconnected {
        /// The other side.
        peer: ServerId,
    },
    /// Every entry up to `zxid` is durable in the log.
    Persisted {
        /// The last durable zxid.
        zxid: Zxid,
    },
    /// The leader proposes a new entry; its zxid follows the last one. Only while the
    /// last role announced is [`Role::Leading`]: the core panics otherwise, as that is a
    /// broken invariant of the shell, not bad input.
    Propose(Entry),
    /// The leader's zxid counter is exhausted (ZooKeeper's xid rollover): give up the
    /// leadership so that an election starts a new epoch. Ignored unless leading.
    StepDown,
    /// A client asked for `sync`: answer with [`Action::SyncDone`] once this server has
    /// applied everything committed before the request, as confirmed by a quorum, and
    /// everything proposed before it (the session's own earlier writes among them).
    Sync {
        /// The shell's handle for the request.
        id: u64,
    },
    /// A round of the read barrier: like [`Input::Sync`], but a leader waits only for
    /// what was committed when it arrived, not for what was proposed (Raft's ReadIndex),
    /// as the reads it lets through wait for their sessions' writes themselves. A learner
    /// cannot ask for less than a sync, so it asks for one.
    ReadIndex {
        /// The shell's handle for the round.
        id: u64,
    },
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a member (over the connection to it, in order).
    Send {
        /// The member.
        to: ServerId,
        /// The message.
        message: Message,
    },
    /// Send a message to a member once every storage action before this one is durable:
    /// it promises what they store (an epoch accepted, a history taken on).
    SendAfterPersist {
        /// The member.
        to: ServerId,
        /// The message.
        message: Message,
    },
    /// Append entries to the log; report [`Input::Persisted`] once they are durable.
    Append(Vec<Entry>),
    /// Remove every log entry after the zxid. Never below what is applied: only entries
    /// no quorum committed are dropped. Completions of appends made before it are not
    /// reported after it.
    Truncate(Zxid),
    /// Replace the state with the snapshot that came with the last [`Message::Snap`]
    /// (the state at its zxid or later) before the next action, store it, then drop the
    /// whole log: the entries it covers, and any after it, which may belong to an epoch
    /// that never committed (the leader sends a snapshot when it cannot place the
    /// learner's log); the leader's entries after the snapshot follow as appends.
    /// Completions of appends made before it are not reported after it.
    InstallSnapshot(Zxid),
    /// Persist the epochs.
    PersistEpochs(Epochs),
    /// Apply these committed entries to the state, in order.
    Apply(Vec<Entry>),
    /// The role changed.
    Role(Role),
    /// The `sync` request `id` may be answered: everything committed before it is applied.
    SyncDone {
        /// The request's handle.
        id: u64,
    },
    /// The `sync` request `id` cannot be answered here (no established leader); the
    /// client gets an error and retries elsewhere.
    SyncFailed {
        /// The request's handle.
        id: u64,
    },
    /// Close the connection to `peer`: it sent a message that breaks the protocol. The
    /// link reconnects, and both sides start over from the handshake.
    DropLink {
        /// The member.
        peer: ServerId,
    },
}

/// A message from a member that breaks the protocol. It never stops this member: the
/// core drops the link to the sender (and, if that is its leader, elects again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// A proposal or history entry whose zxid does not follow the last one logged.
    #[error("entry 0x{zxid:x} does not follow 0x{last:x}")]
    ZxidNotIncreasing {
        /// The entry's zxid.
        zxid: Zxid,
        /// The last zxid of the history it was to follow.
        last: Zxid,
    },
    /// A DIFF or SNAP asked to drop entries this member has already applied.
    #[error("truncation after 0x{zxid:x} is below the applied 0x{applied:x}")]
    TruncateBelowApplied {
        /// Where the leader asked to truncate.
        zxid: Zxid,
        /// What this member has applied.
        applied: Zxid,
    },
    /// A SNAP older than this member's state whose entries do not hold the txn this
    /// member applied last: the leader lacks a committed txn.
    #[error("a snapshot at 0x{zxid:x} with entries that skip the applied 0x{applied:x}")]
    SnapshotSkipsApplied {
        /// The snapshot's zxid.
        zxid: Zxid,
        /// What this member has applied.
        applied: Zxid,
    },
}

#[cfg(test)]
mod peer_test;
