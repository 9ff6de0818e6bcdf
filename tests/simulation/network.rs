//! The links between members, as TCP gives them: frames on one link arrive in order or
//! not at all; a link that breaks loses what was in flight on it, and both ends hear
//! that it broke. A partition cuts links; a frame sent over a cut link, or to a member
//! that is down, is lost and its sender hears of a broken link.

use std::collections::{BTreeMap, BTreeSet};

use zkrs::ensemble::frame::PeerFrame;
use zkrs::zab::ServerId;

use crate::rng::Rng;

/// A frame on its way.
pub struct Flight {
    pub from: ServerId,
    pub to: ServerId,
    pub frame: PeerFrame,
    /// The generation of the link it was sent on; a broken link's frames are lost.
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

/// Every link and what is in flight on it.
#[derive(Default)]
pub struct Network {
    /// Per link, how often it broke: frames of an older generation are lost.
    generations: BTreeMap<(ServerId, ServerId), u64>,
    /// When the last frame on each directed link arrives: later ones arrive after it.
    last_arrival: BTreeMap<(ServerId, ServerId), u64>,
    /// Links a partition cuts.
    cut: BTreeSet<(ServerId, ServerId)>,
    /// What arrives when, in order: (time, sequence).
    schedule: BTreeMap<(u64, u64), Delivery>,
    /// Break notices not yet delivered, so one is pending per member and peer at a time.
    notices: BTreeSet<(ServerId, ServerId)>,
    sequence: u64,
}

impl Network {
    fn generation(&self, a: ServerId, b: ServerId) -> u64 {
        self.generations.get(&pair(a, b)).copied().unwrap_or(0)
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
        if !reachable || self.cut.contains(&pair(from, to)) {
            self.notice(now, from, to);
            return;
        }
        let delay = if rng.chance(2) { 5 + rng.below(46) } else { 1 + rng.below(5) };
        let arrival = (now + delay).max(self.last_arrival.get(&(from, to)).copied().unwrap_or(0));
        self.last_arrival.insert((from, to), arrival);
        let generation = self.generation(from, to);
        self.at(arrival, Delivery::Frame(Flight { from, to, frame, generation }));
    }

    /// Breaks the link between `a` and `b`: what is in flight is lost, both ends hear.
    pub fn break_link(&mut self, now: u64, a: ServerId, b: ServerId) {
        *self.generations.entry(pair(a, b)).or_insert(0) += 1;
        self.notice(now, a, b);
        self.notice(now, b, a);
    }

    /// Cuts every link of `member` until [`Network::heal`].
    pub fn isolate(&mut self, now: u64, member: ServerId, members: &[ServerId]) {
        for &other in members.iter().filter(|other| **other != member) {
            self.cut.insert(pair(member, other));
            self.break_link(now, member, other);
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
                    if flight.generation != self.generation(flight.from, flight.to) => {}
                Delivery::Broken { member, peer } => {
                    self.notices.remove(&(member, peer));
                    return Some(Delivery::Broken { member, peer });
                }
                delivery => return Some(delivery),
            }
        }
    }
}
