//! A leader's end of one learner's quorum connection: the replication core's messages
//! as the packets a ZooKeeper learner expects, and the learner's packets as core
//! messages.
//!
//! Most map one to one. The exceptions:
//! - The core sends a synchronisation as one `Diff` or `Snap`; ZooKeeper's learner takes
//!   DIFF, TRUNC or SNAP (the snapshot itself follows on the stream, written by the
//!   shell), then each txn as a PROPOSAL, followed by its COMMIT when it is committed.
//! - The core's `Commit` covers every txn up to its zxid; ZooKeeper's names one, so
//!   each txn proposed to this learner and not yet committed gets its own.
//! - An observer gets no PROPOSAL: each txn waits here until it is committed, then goes
//!   as one INFORM.
//! - ZooKeeper's learner acknowledges NEWLEADER with an ACK of the epoch's first zxid,
//!   which no txn has: that is the core's `AckNewLeader`.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::ensemble::zookeeper::packet::{self, LearnerInfo, PacketType, QuorumPacket};
use crate::ensemble::zookeeper::TranslateError;
use crate::storage::record::unseal;
use crate::txn::Zxid;
use crate::zab::{Entry, Message};

/// Most txns proposed to one learner and not yet committed that the connection holds
/// (an observer's wait here whole). Past it the learner is dropped.
const UNCOMMITTED_MAX: usize = 100_000;

/// What goes on the learner's connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A packet.
    Packet(QuorumPacket),
    /// Here the shell writes the snapshot at this zxid, as ZooKeeper's leader streams it
    /// after SNAP.
    Snapshot(Zxid),
}

/// A ZooKeeper learner's quorum connection to a zkrs leader, in both directions.
#[derive(Debug)]
pub struct LeaderSide {
    /// The membership text NEWLEADER carries.
    membership: Bytes,
    /// What the learner said it is, once it has.
    learner: Option<(LearnerInfo, bool)>,
    /// Txns proposed to the learner and not yet committed, oldest first: a follower has
    /// them and waits for their COMMITs, an observer gets them with their INFORMs.
    uncommitted: VecDeque<Entry>,
}

impl LeaderSide {
    /// A learner's connection to a leader whose membership text is `membership`.
    pub fn new(membership: &str) -> LeaderSide {
        LeaderSide {
            membership: Bytes::copy_from_slice(membership.as_bytes()),
            learner: None,
            uncommitted: VecDeque::new(),
        }
    }

    /// Who the learner is, once its FOLLOWERINFO or OBSERVERINFO came.
    pub fn learner(&self) -> Option<LearnerInfo> {
        self.learner.map(|(info, _)| info)
    }

    /// Appends to `out` what the core's `message` to this learner is on the wire.
    ///
    /// # Errors
    /// For messages that do not go to a learner, entries whose checksum fails, and more
    /// uncommitted txns than the connection holds.
    pub fn outgoing(
        &mut self,
        message: Message,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), TranslateError> {
        match message {
            Message::LeaderInfo { epoch } => out.push(Outgoing::Packet(QuorumPacket::with_data(
                PacketType::LeaderInfo,
                Zxid::epoch_start(epoch).raw(),
                packet::int_payload(packet::PROTOCOL_VERSION),
            ))),
            Message::Diff { truncate_to, entries, committed, established } => {
                out.push(Outgoing::Packet(match truncate_to {
                    Some(zxid) => QuorumPacket::bare(PacketType::Trunc, zxid.raw()),
                    None => QuorumPacket::bare(PacketType::Diff, established.raw()),
                }));
                self.history(entries, committed, out)?;
            }
            Message::Snap { zxid, entries, committed } => {
                out.push(Outgoing::Packet(QuorumPacket::bare(PacketType::Snap, zxid.raw())));
                out.push(Outgoing::Snapshot(zxid));
                self.history(entries, committed, out)?;
            }
            Message::NewLeader { epoch } => out.push(Outgoing::Packet(QuorumPacket::with_data(
                PacketType::NewLeader,
                Zxid::epoch_start(epoch).raw(),
                self.membership.clone(),
            ))),
            Message::UpToDate { committed } => {
                self.commit(committed, out)?;
                out.push(Outgoing::Packet(QuorumPacket::bare(PacketType::UpToDate, -1)));
            }
            Message::Proposal(entry) => self.propose(entry, out)?,
            Message::Commit { zxid } => self.commit(zxid, out)?,
            Message::Ping { last_proposed } => {
                out.push(Outgoing::Packet(QuorumPacket::bare(
                    PacketType::Ping,
                    last_proposed.raw(),
                )));
            }
            Message::SyncReply => {
                out.push(Outgoing::Packet(QuorumPacket::bare(PacketType::Sync, 0)))
            }
            Message::Notification(_) => return Err(TranslateError::NotOnThisSide("a vote")),
            _ => return Err(TranslateError::NotOnThisSide("a learner's message")),
        }
        Ok(())
    }

    /// The txns of a synchronisation, each committed one followed by its COMMIT.
    fn history(
        &mut self,
        entries: Vec<Entry>,
        committed: Zxid,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), TranslateError> {
        for entry in entries {
            let zxid = entry.zxid;
            self.propose(entry, out)?;
            if zxid <= committed {
                self.commit(zxid, out)?;
            }
        }
        Ok(())
    }

    /// A txn: a follower gets it now, an observer once it is committed.
    fn propose(&mut self, entry: Entry, out: &mut Vec<Outgoing>) -> Result<(), TranslateError> {
        if self.uncommitted.len() >= UNCOMMITTED_MAX {
            return Err(TranslateError::TooManyUncommitted { max: UNCOMMITTED_MAX });
        }
        if !self.is_observer() {
            let txn = unseal(&entry.payload).ok_or(TranslateError::Unsealed(entry.zxid))?;
            let proposal = QuorumPacket::with_data(PacketType::Proposal, entry.zxid.raw(), txn);
            out.push(Outgoing::Packet(proposal));
        }
        self.uncommitted.push_back(entry);
        Ok(())
    }

    /// Every txn proposed to the learner up to `zxid` is committed: a COMMIT for each
    /// (a follower), or an INFORM (an observer).
    fn commit(&mut self, zxid: Zxid, out: &mut Vec<Outgoing>) -> Result<(), TranslateError> {
        while self.uncommitted.front().is_some_and(|entry| entry.zxid <= zxid) {
            let Some(entry) = self.uncommitted.pop_front() else { break };
            let packet = if self.is_observer() {
                let txn = unseal(&entry.payload).ok_or(TranslateError::Unsealed(entry.zxid))?;
                QuorumPacket::with_data(PacketType::Inform, entry.zxid.raw(), txn)
            } else {
                QuorumPacket::bare(PacketType::Commit, entry.zxid.raw())
            };
            out.push(Outgoing::Packet(packet));
        }
        Ok(())
    }

    fn is_observer(&self) -> bool {
        self.learner.is_some_and(|(_, observer)| observer)
    }

    /// The core message the learner's `packet` is, if it is one (requests and
    /// revalidations are the sessions', not the core's).
    ///
    /// # Errors
    /// A packet a learner does not send, or one without the data it needs.
    pub fn incoming(&mut self, packet: QuorumPacket) -> Result<Option<Message>, TranslateError> {
        let zxid = Zxid::new(packet.zxid);
        let malformed = |kind, source| TranslateError::Malformed { kind, source };
        let message = match packet.kind {
            kind @ (PacketType::FollowerInfo | PacketType::ObserverInfo) => {
                let data = packet.data.unwrap_or_default();
                let info = LearnerInfo::decode(&data).map_err(|source| malformed(kind, source))?;
                let observer = kind == PacketType::ObserverInfo;
                self.learner = Some((info, observer));
                Message::FollowerInfo { accepted_epoch: zxid.epoch(), observer }
            }
            PacketType::AckEpoch => {
                let epoch = packet::read_int_payload(packet.data.as_ref(), "currentEpoch")
                    .map_err(|source| malformed(PacketType::AckEpoch, source))?;
                let current_epoch = (epoch != -1).then_some(epoch as u32);
                Message::AckEpoch { current_epoch, last_zxid: zxid }
            }
            // No txn has a zxid with a zero counter: this acknowledges NEWLEADER.
            PacketType::Ack if zxid.counter() == 0 => Message::AckNewLeader { epoch: zxid.epoch() },
            PacketType::Ack => Message::Ack { zxid },
            PacketType::Ping => Message::Pong { echoed: zxid },
            PacketType::Request | PacketType::Revalidate => return Ok(None),
            kind => return Err(TranslateError::Unexpected(kind)),
        };
        Ok(Some(message))
    }
}

#[cfg(test)]
#[path = "leader_test.rs"]
mod tests;
