//! A learner's end of the quorum connection: the replication core's messages as the
//! packets a ZooKeeper leader expects, and the packets it sends as core messages.
//!
//! Most map one to one. The exceptions are the synchronisation, which ZooKeeper sends
//! as a stream and the core takes as one message, and the observer's INFORM:
//! - DIFF, TRUNC or SNAP opens it, then come the leader's txns as PROPOSALs (each
//!   committed one followed by its COMMIT), then NEWLEADER. The translator gathers them
//!   and hands the core one `Diff` or `Snap` and then `NewLeader`.
//! - UPTODATE carries no commit point: the core gets the last COMMIT heard, and the
//!   zxid of the DIFF or TRUNC, up to which the learner's own log is then committed (a
//!   ZooKeeper learner has applied its whole log before it syncs; it sends no COMMIT for
//!   what the learner already had).
//! - An INFORM is a committed txn: a `Proposal` and its `Commit`.
//! - The core acknowledges everything up to a zxid at once; a ZooKeeper leader counts
//!   an ACK for the one proposal it names, so each proposal gets its own: those of the
//!   synchronisation not yet committed with the ACK of NEWLEADER (as ZooKeeper's
//!   learners log and acknowledge them), later ones as the core's `Ack` covers them.
//!
//! What ZooKeeper's learner writes into PING answers (its sessions' activity) and the
//! requests it forwards belong to the sessions, not to the core: they are not here.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::ensemble::zookeeper::packet::{self, LearnerInfo, PacketType, QuorumPacket};
use crate::ensemble::zookeeper::TranslateError;
use crate::storage::record::seal;
use crate::txn::Zxid;
use crate::zab::{Entry, Message, ServerId};

/// Most bytes of txns a leader may send between the start of a synchronisation and
/// NEWLEADER: they are held until it comes.
const SYNC_BYTES_MAX: usize = 1 << 30;
/// Most proposals waiting for their acknowledgement: a leader with more outstanding
/// than this has long since given up on the learner.
const UNACKED_MAX: usize = 1 << 20;

/// How the leader opened the synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// DIFF: the learner's log is a prefix of the leader's, committed up to this zxid
    /// once UPTODATE comes.
    Diff(Zxid),
    /// TRUNC: drop the learner's log after this zxid first.
    Trunc(Zxid),
    /// SNAP: the state at this zxid came on the stream.
    Snap(Zxid),
}

/// A synchronisation the leader is sending.
#[derive(Debug)]
struct Synchronisation {
    opening: Opening,
    entries: Vec<Entry>,
    bytes: usize,
}

/// One learner's quorum connection to a ZooKeeper leader, in both directions.
#[derive(Debug)]
pub struct LearnerSide {
    info: LearnerInfo,
    sync: Option<Synchronisation>,
    /// The last commit the leader announced.
    committed: Zxid,
    /// Whether FOLLOWERINFO or OBSERVERINFO went out on this connection.
    introduced: bool,
    /// Proposals of the synchronisation that were not committed by NEWLEADER: the ACK
    /// of NEWLEADER acknowledges each.
    synced_unacked: Vec<Zxid>,
    /// Proposals since, oldest first, until the core's `Ack` covers them.
    unacked: VecDeque<Zxid>,
}

impl LearnerSide {
    /// The connection of the learner `server_id`, which knows the membership version
    /// `config_version` (0 for a static zoo.cfg).
    pub fn new(server_id: ServerId, config_version: u64) -> LearnerSide {
        let info =
            LearnerInfo { server_id, protocol_version: packet::PROTOCOL_VERSION, config_version };
        LearnerSide {
            info,
            sync: None,
            committed: Zxid::ZERO,
            introduced: false,
            synced_unacked: Vec::new(),
            unacked: VecDeque::new(),
        }
    }

    /// Appends to `out` the packets that say what the core's `message` says, if it is
    /// news to the leader: the core repeats FOLLOWERINFO until the leader answers, for
    /// links that may lose it, but a ZooKeeper leader takes it once per connection,
    /// which loses nothing it does not lose whole.
    ///
    /// # Errors
    /// For messages that go elsewhere: notifications (the election port), the leader's
    /// own messages, and syncs (forwarded as requests, with their session).
    pub fn outgoing(
        &mut self,
        message: &Message,
        out: &mut Vec<QuorumPacket>,
    ) -> Result<(), TranslateError> {
        match message {
            Message::FollowerInfo { .. } if self.introduced => {}
            Message::FollowerInfo { accepted_epoch, observer } => {
                self.introduced = true;
                let kind =
                    if *observer { PacketType::ObserverInfo } else { PacketType::FollowerInfo };
                let zxid = Zxid::epoch_start(*accepted_epoch).raw();
                out.push(QuorumPacket::with_data(kind, zxid, self.info.encode()));
            }
            Message::AckEpoch { current_epoch, last_zxid } => {
                let epoch = current_epoch.map_or(-1, |epoch| epoch as i32);
                out.push(QuorumPacket::with_data(
                    PacketType::AckEpoch,
                    last_zxid.raw(),
                    packet::int_payload(epoch),
                ));
            }
            Message::AckNewLeader { epoch } => {
                out.push(QuorumPacket::bare(PacketType::Ack, Zxid::epoch_start(*epoch).raw()));
                let acked = self.synced_unacked.drain(..);
                out.extend(acked.map(|zxid| QuorumPacket::bare(PacketType::Ack, zxid.raw())));
            }
            Message::Ack { zxid } => {
                while let Some(proposed) = self.unacked.front().copied().filter(|z| z <= zxid) {
                    self.unacked.pop_front();
                    out.push(QuorumPacket::bare(PacketType::Ack, proposed.raw()));
                }
            }
            Message::Pong { echoed } => {
                out.push(QuorumPacket::with_data(PacketType::Ping, echoed.raw(), Bytes::new()));
            }
            Message::Notification(_) => return Err(TranslateError::NotOnThisSide("a vote")),
            Message::SyncRequest { .. } => {
                return Err(TranslateError::NotOnThisSide("a sync without its request"))
            }
            _ => return Err(TranslateError::NotOnThisSide("a leader's message")),
        }
        Ok(())
    }

    /// Appends to `out` what the leader's `packet` means to the core (nothing while a
    /// synchronisation is being gathered).
    ///
    /// # Errors
    /// A packet out of place or without the data it needs, or a synchronisation larger
    /// than a learner holds.
    pub fn incoming(
        &mut self,
        packet: QuorumPacket,
        out: &mut Vec<Message>,
    ) -> Result<(), TranslateError> {
        let zxid = Zxid::new(packet.zxid);
        match packet.kind {
            PacketType::LeaderInfo => out.push(Message::LeaderInfo { epoch: zxid.epoch() }),
            PacketType::Diff => self.open(Opening::Diff(zxid), packet.kind)?,
            PacketType::Trunc => self.open(Opening::Trunc(zxid), packet.kind)?,
            PacketType::Snap => {
                self.committed = self.committed.max(zxid);
                self.open(Opening::Snap(zxid), packet.kind)?;
            }
            PacketType::Proposal => {
                let entry = entry(zxid, packet.data, PacketType::Proposal)?;
                match &mut self.sync {
                    Some(sync) => {
                        sync.bytes += entry.payload.len();
                        if sync.bytes > SYNC_BYTES_MAX {
                            return Err(TranslateError::SyncTooLarge { max: SYNC_BYTES_MAX });
                        }
                        sync.entries.push(entry);
                    }
                    None => {
                        if self.unacked.len() >= UNACKED_MAX {
                            return Err(TranslateError::TooManyUncommitted { max: UNACKED_MAX });
                        }
                        self.unacked.push_back(zxid);
                        out.push(Message::Proposal(entry));
                    }
                }
            }
            PacketType::Commit => {
                self.committed = self.committed.max(zxid);
                if self.sync.is_none() {
                    out.push(Message::Commit { zxid });
                }
            }
            PacketType::Inform => {
                let entry = entry(zxid, packet.data, PacketType::Inform)?;
                self.committed = self.committed.max(zxid);
                out.push(Message::Proposal(entry));
                out.push(Message::Commit { zxid });
            }
            PacketType::NewLeader => {
                let sync = self.sync.take().ok_or(TranslateError::Unexpected(packet.kind))?;
                let committed = self.committed;
                let Synchronisation { opening, entries, .. } = sync;
                self.synced_unacked = entries
                    .iter()
                    .map(|entry| entry.zxid)
                    .filter(|zxid| *zxid > committed)
                    .collect();
                out.push(match opening {
                    Opening::Diff(established) => {
                        Message::Diff { truncate_to: None, entries, committed, established }
                    }
                    Opening::Trunc(to) => {
                        Message::Diff { truncate_to: Some(to), entries, committed, established: to }
                    }
                    Opening::Snap(zxid) => Message::Snap { zxid, entries, committed },
                });
                out.push(Message::NewLeader { epoch: zxid.epoch() });
            }
            PacketType::UpToDate => out.push(Message::UpToDate { committed: self.committed }),
            PacketType::Ping => out.push(Message::Ping { last_proposed: zxid }),
            PacketType::Sync => out.push(Message::SyncReply),
            kind => return Err(TranslateError::Unexpected(kind)),
        }
        Ok(())
    }

    /// A DIFF, TRUNC or SNAP starts the synchronisation; a second before NEWLEADER is
    /// out of place.
    fn open(&mut self, opening: Opening, kind: PacketType) -> Result<(), TranslateError> {
        if self.sync.is_some() {
            return Err(TranslateError::Unexpected(kind));
        }
        self.sync = Some(Synchronisation { opening, entries: Vec::new(), bytes: 0 });
        Ok(())
    }
}

/// The log entry a PROPOSAL or INFORM carries: its txn, sealed as zkrs logs it.
fn entry(zxid: Zxid, data: Option<Bytes>, kind: PacketType) -> Result<Entry, TranslateError> {
    let txn = data.ok_or(TranslateError::Malformed {
        kind,
        source: packet::PacketError::Malformed(jute::DecodeError::Incomplete {
            what: "the txn",
            offset: 0,
            needed: 1,
        }),
    })?;
    Ok(Entry { zxid, payload: seal(&txn) })
}

#[cfg(test)]
#[path = "learner_test.rs"]
mod tests;
