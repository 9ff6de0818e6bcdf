//! The links between members, as `zkrs::ensemble::link` makes them over TCP: two
//! connections per pair, one for election notifications and one for everything else
//! (the quorum connection). Frames on one connection arrive in order or not at all; a
//! quorum connection that breaks loses what was in flight on it, and both ends hear that
//! it broke. An election connection breaks silently: votes are sent again. A partition
//! cuts both; a frame sent over a cut link, or to a member that is down, is lost, and if
//! it was for the quorum connection its sender hears of a break.
//!
//! A quorum connection is up once a learner's FOLLOWERINFO dials it, and until it breaks;
//! frames sent while none is up are lost, as the link drops them. Its frames go as
//! ZooKeeper's packets, through both ends' [`QuorumEnd`]s and through the bytes the
//! quorum port carries, so what a member hears is what the packets say (UPTODATE, for
//! one, names no commit point). A frame that does not translate or decode breaks the
//! connection, as a bad packet does. Votes go as the election port's notifications, in
//! their bytes; one that does not decode is lost.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};
use zkrs::ensemble::frame::PeerFrame;
use zkrs::ensemble::link::QuorumEnd;
use zkrs::ensemble::zookeeper::election::{self, ElectionCodec, WireNotification};
use zkrs::ensemble::zookeeper::packet::{PacketCodec, QuorumPacket};
use zkrs::ensemble::zookeeper::TranslateError;
use zkrs::zab::{Message, Notification, ServerId};

use crate::rng::Rng;

/// Which of a pair's two connections a frame takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Connection {
    Election,
    Quorum,
}

impl Connection {
    fn of(frame: &PeerFrame) -> Connection {
        match frame {
            PeerFrame::Zab(Message::Notification(_)) => Connection::Election,
            _ => Connection::Quorum,
        }
    }
}

/// A frame on its way.
pub struct Flight {
    pub from: ServerId,
    pub to: ServerId,
    pub frame: PeerFrame,
    /// The generation of the connection it was sent on; a broken one's frames are lost.
    generation: u64,
}

/// What the network does next.
pub enum Delivery {
    /// A frame arrives.
    Frame(Flight),
    /// `member` hears its link to `peer` broke.
    Broken { member: ServerId, peer: ServerId },
}

fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

/// What a leader's NEWLEADER and every vote say of the membership; the core reads
/// neither.
const MEMBERSHIP: &str = "version=0";

/// The longest packet data the simulated quorum port takes (the members' default
/// `jute.maxbuffer` is below it).
const PACKET_DATA_MAX: usize = 4 << 20;

/// `notification` as the receiving end reads it off the election port: framed,
/// decoded and read as a vote, as `ensemble::link::election` does; `None` if any step
/// fails.
fn over_the_election_port(notification: &Notification) -> Option<Notification> {
    let mut bytes = BytesMut::new();
    ElectionCodec.encode(&WireNotification::new(notification, MEMBERSHIP), &mut bytes).ok()?;
    let payload = ElectionCodec.decode(&mut bytes).ok()??;
    if !bytes.is_empty() {
        return None;
    }
    election::decode(&payload).and_then(|wire| wire.notification()).ok()
}

/// `packets` as the receiving end reads them off the quorum port: written one after the
/// other and cut apart again; `None` if they do not come back whole and the same.
fn over_the_quorum_port(packets: Vec<QuorumPacket>) -> Option<Vec<QuorumPacket>> {
    let mut codec = PacketCodec::new(PACKET_DATA_MAX);
    let mut bytes = BytesMut::new();
    for packet in &packets {
        codec.encode(packet, &mut bytes).ok()?;
    }
    let mut read = Vec::with_capacity(packets.len());
    while let Some(packet) = codec.decode(&mut bytes).ok()? {
        read.push(packet);
    }
    (bytes.is_empty() && read == packets).then_some(read)
}

/// A quorum connection that is up: the learner that dialled it, and each end's
/// translation to and from packets.
struct QuorumConnection {
    generation: u64,
    learner: ServerId,
    learner_end: QuorumEnd,
    leader_end: QuorumEnd,
}

/// Every link and what is in flight on it.
#[derive(Default)]
pub struct Network {
    /// Per connection, how often it broke: frames of an older generation are lost.
    generations: BTreeMap<(ServerId, ServerId, Connection), u64>,
    /// When the last frame on each directed connection arrives: later ones arrive after
    /// it.
    last_arrival: BTreeMap<(ServerId, ServerId, Connection), u64>,
    /// Links a partition cuts.
    cut: BTreeSet<(ServerId, ServerId)>,
    /// What arrives when, in order: (time, sequence).
    schedule: BTreeMap<(u64, u64), Delivery>,
    /// Break notices not yet delivered, so one is pending per member and peer at a time.
    notices: BTreeSet<(ServerId, ServerId)>,
    /// The quorum connection of each pair, while it is up.
    connections: BTreeMap<(ServerId, ServerId), QuorumConnection>,
    sequence: u64,
}

impl Network {
    fn generation(&self, a: ServerId, b: ServerId, connection: Connection) -> u64 {
        let (low, high) = pair(a, b);
        self.generations.get(&(low, high, connection)).copied().unwrap_or(0)
    }

    fn bump(&mut self, a: ServerId, b: ServerId, connection: Connection) {
        let (low, high) = pair(a, b);
        *self.generations.entry((low, high, connection)).or_insert(0) += 1;
    }

    fn at(&mut self, time: u64, delivery: Delivery) {
        self.sequence += 1;
        self.schedule.insert((time, self.sequence), delivery);
    }

    fn notice(&mut self, now: u64, member: ServerId, peer: ServerId) {
        if self.notices.insert((member, peer)) {
            self.at(now + 1, Delivery::Broken { member, peer });
        }
    }

    /// Sends `frame` from `from` to `to`, which is up if `reachable`; it arrives 1 to 5
    /// ms later (rarely up to 50), after what was sent before on the link.
    pub fn send(
        &mut self,
        rng: &mut Rng,
        now: u64,
        flight: (ServerId, ServerId, PeerFrame),
        reachable: bool,
    ) {
        let (from, to, frame) = flight;
        let connection = Connection::of(&frame);
        if !reachable || self.cut.contains(&pair(from, to)) {
            if connection == Connection::Quorum {
                self.notice(now, from, to);
            }
            return;
        }
        let frames = match (connection, frame) {
            (Connection::Election, PeerFrame::Zab(Message::Notification(notification))) => {
                match over_the_election_port(&notification) {
                    Some(read) => vec![PeerFrame::Zab(Message::Notification(read))],
                    None => return,
                }
            }
            (_, frame) => match self.carry(now, from, to, frame) {
                Some(frames) => frames,
                None => return,
            },
        };
        let delay = if rng.chance(2) { 5 + rng.below(46) } else { 1 + rng.below(5) };
        let last = self.last_arrival.get(&(from, to, connection)).copied().unwrap_or(0);
        let arrival = (now + delay).max(last);
        self.last_arrival.insert((from, to, connection), arrival);
        let generation = self.generation(from, to, connection);
        for frame in frames {
            self.at(arrival, Delivery::Frame(Flight { from, to, frame, generation }));
        }
    }

    /// What `frame` from `from` is when it reaches `to` over their quorum connection:
    /// its packets, read by the other end. `None` if it is lost: no connection is up
    /// and the frame is not the FOLLOWERINFO that dials one, the frame is not for this
    /// end, or it does not translate (the connection then breaks).
    fn carry(
        &mut self,
        now: u64,
        from: ServerId,
        to: ServerId,
        frame: PeerFrame,
    ) -> Option<Vec<PeerFrame>> {
        let generation = self.generation(from, to, Connection::Quorum);
        let key = pair(from, to);
        if self.connections.get(&key).is_none_or(|up| up.generation != generation) {
            self.connections.remove(&key);
            if !matches!(frame, PeerFrame::Zab(Message::FollowerInfo { .. })) {
                return None;
            }
            let up = QuorumConnection {
                generation,
                learner: from,
                learner_end: QuorumEnd::learner(from, 0),
                leader_end: QuorumEnd::leader(MEMBERSHIP),
            };
            self.connections.insert(key, up);
        }
        let up = self.connections.get_mut(&key)?;
        if let PeerFrame::SnapshotPieces { .. } = frame {
            // A snapshot's bytes follow its SNAP on the connection as they are.
            return Some(vec![frame]);
        }
        let (sender, receiver) = if from == up.learner {
            (&mut up.learner_end, &mut up.leader_end)
        } else {
            (&mut up.leader_end, &mut up.learner_end)
        };
        let mut packets = Vec::new();
        match sender.translate_out(frame, &mut packets, &mut None) {
            Err(TranslateError::NotOnThisSide(_)) => return None,
            Err(_) => {}
            Ok(()) => {
                let mut frames = Vec::new();
                if let Some(read) = over_the_quorum_port(packets) {
                    let mut read = read.into_iter();
                    let translated =
                        read.try_for_each(|packet| receiver.translate_in(packet, &mut frames));
                    if translated.is_ok() {
                        return Some(frames);
                    }
                }
            }
        }
        self.break_link(now, from, to);
        None
    }

    /// Breaks the quorum connection between `a` and `b`: what is in flight is lost,
    /// both ends hear.
    pub fn break_link(&mut self, now: u64, a: ServerId, b: ServerId) {
        self.bump(a, b, Connection::Quorum);
        self.notice(now, a, b);
        self.notice(now, b, a);
    }

    /// Breaks the election connection between `a` and `b`: the votes in flight are
    /// lost, and nobody hears (the member that dials it dials again).
    pub fn break_election(&mut self, a: ServerId, b: ServerId) {
        self.bump(a, b, Connection::Election);
    }

    /// Breaks both connections between `a` and `b` (one of them stopped).
    pub fn break_both(&mut self, now: u64, a: ServerId, b: ServerId) {
        self.break_election(a, b);
        self.break_link(now, a, b);
    }

    /// Cuts both connections of `member` to each other member until [`Network::heal`].
    pub fn isolate(&mut self, now: u64, member: ServerId, members: &[ServerId]) {
        for &other in members.iter().filter(|other| **other != member) {
            self.cut.insert(pair(member, other));
            self.break_both(now, member, other);
        }
    }

    /// Whether a partition cuts any link.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The next thing due by `now`, if any. A frame from a link that broke since it was
    /// sent is dropped on the way.
    pub fn next_due(&mut self, now: u64) -> Option<Delivery> {
        loop {
            let (&key, _) = self.schedule.first_key_value()?;
            if key.0 > now {
                return None;
            }
            match self.schedule.remove(&key)? {
                Delivery::Frame(flight)
                    if flight.generation
                        != self.generation(
                            flight.from,
                            flight.to,
                            Connection::of(&flight.frame),
                        ) => {}
                Delivery::Broken { member, peer } => {
                    self.notices.remove(&(member, peer));
                    return Some(Delivery::Broken { member, peer });
                }
                delivery => return Some(delivery),
            }
        }
    }
}
