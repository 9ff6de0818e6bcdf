//! Deterministic simulation of the replication core (`zkrs::zab`): 3- and 5-member
//! ensembles (some with an observer) of the real state machine, driven by a seeded
//! scheduler through crashes and restarts that lose unsynced log and epoch writes
//! (a message the core sends after a persist reaches no one before it), partitions,
//! broken connections, lost, duplicated, delayed and reordered election messages, slow
//! disks, client writes, reads and syncs.
//!
//! Checked after every step:
//! - at most one leader is established per epoch;
//! - every member applies entries in strictly increasing zxid order, and what any two
//!   members apply agrees (one global committed sequence);
//! - every write acknowledged to a client is in the state of every later leader;
//! - reads see only committed state and never go back in time for a session; a read after
//!   `sync` sees every write acknowledged before the sync began;
//! - after the faults stop, the ensemble elects a leader, takes new writes, and every
//!   member converges on the same state holding every acknowledged write.
//!
//! `ZKRS_SIM_SEEDS` (default 1000) sets how many seeds run; `ZKRS_SEED=n` replays one
//! seed; a failure prints its seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

mod support;

use bytes::Bytes;
use support::rng::Rng;
use zkrs::storage::Epochs;
use zkrs::txn::Zxid;
use zkrs::zab::{Action, Entry, History, Input, Message, Restored, Role, ServerId, Zab, ZabConfig};

/// Simulated time units per tick.
const TICK: u64 = 10;
/// Simulated time with faults, then without.
const FAULTY_TIME: u64 = 12_000;
const CALM_TIME: u64 = 6_000;

#[derive(Debug)]
enum Event {
    Tick {
        server: ServerId,
        life: u64,
    },
    Deliver {
        from: ServerId,
        to: ServerId,
        message: Message,
        link: Option<u64>,
        snapshot: Option<Vec<Entry>>,
    },
    Disconnected {
        server: ServerId,
        peer: ServerId,
        life: u64,
    },
    Persisted {
        server: ServerId,
        life: u64,
        generation: u64,
        zxid: Zxid,
    },
    Faults,
    Write,
    Read,
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A member's disk: what survives a crash.
#[derive(Default)]
struct Disk {
    log: Vec<Entry>,
    /// Writes not yet durable, in the order they were asked for; lost in a crash.
    unsynced: Vec<Unsynced>,
    epochs: Epochs,
    snapshot_zxid: Zxid,
    snapshot_state: Vec<Entry>,
    snapshot_epoch_ends: Vec<Zxid>,
}

/// A write waiting to be durable.
enum Unsynced {
    Batch(Vec<Entry>),
    Epochs(Epochs),
}

impl Disk {
    /// Makes every write asked for so far durable.
    fn flush(&mut self) {
        for write in std::mem::take(&mut self.unsynced) {
            self.make_durable(write);
        }
    }

    /// Makes writes durable in order, through the batch that ends at `zxid`.
    fn flush_through(&mut self, zxid: Zxid) {
        while let Some(write) = self.unsynced.first() {
            if let Unsynced::Batch(batch) = write {
                if batch.first().is_some_and(|e| e.zxid > zxid) {
                    return;
                }
            }
            let write = self.unsynced.remove(0);
            self.make_durable(write);
        }
    }

    fn make_durable(&mut self, write: Unsynced) {
        match write {
            Unsynced::Batch(batch) => self.log.extend(batch),
            Unsynced::Epochs(epochs) => self.epochs = epochs,
        }
    }

    /// The epochs as the member last asked them persisted.
    fn latest_epochs(&self) -> Epochs {
        let pending = self.unsynced.iter().rev().find_map(|write| match write {
            Unsynced::Epochs(epochs) => Some(*epochs),
            Unsynced::Batch(_) => None,
        });
        pending.unwrap_or(self.epochs)
    }
}

struct Server {
    zab: Option<Zab>,
    /// Bumped at every restart: events of an earlier life are stale.
    life: u64,
    /// Bumped at every truncation or snapshot install: append completions before it are
    /// not reported after it.
    generation: u64,
    disk: Disk,
    /// The applied state: the sequence of applied entries.
    state: Vec<Entry>,
    role: Role,
    next_zxid: Zxid,
    incoming_snapshot: Option<Vec<Entry>>,
    /// Connection incarnations this member knows of, by peer.
    known_links: BTreeMap<ServerId, u64>,
    persist_due: u64,
    syncs: BTreeMap<u64, usize>,
    /// Role changes so far, so sessions notice their connection was closed.
    role_changes: u64,
}

/// A client session: the server it is connected to, and the newest zxid it has read.
struct Session {
    /// The server, its life and its role change count when the session connected: a
    /// restart or a role change closes client connections, as ZooKeeper's do.
    connection: Option<(ServerId, u64, u64)>,
    seen: Zxid,
}

struct Sim {
    seed: u64,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    servers: BTreeMap<ServerId, Server>,
    config: ZabConfig,
    links: BTreeMap<(ServerId, ServerId), u64>,
    link_due: BTreeMap<(ServerId, ServerId), u64>,
    cut: BTreeSet<(ServerId, ServerId)>,
    faults: bool,
    /// Print role changes and faults (`ZKRS_SIM_TRACE=1` with `ZKRS_SEED`).
    trace: bool,
    /// The committed sequence as the first member to apply each position saw it.
    committed: Vec<Entry>,
    /// Acknowledged writes: their position in `committed`.
    acked: Vec<usize>,
    leaders: BTreeMap<u32, ServerId>,
    /// Writes acknowledged after the faults stopped.
    acked_when_calm: usize,
    written: u64,
    sessions: Vec<Session>,
    sync_ids: u64,
    pending_syncs: BTreeMap<u64, (ServerId, usize)>,
    /// Writes proposed and not yet acknowledged: by whom, in which of its lives.
    proposals: BTreeMap<Zxid, (ServerId, u64)>,
}

fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let voters: BTreeSet<ServerId> =
            if rng.chance(50) { (1..=3).collect() } else { (1..=5).collect() };
        let observers: BTreeSet<ServerId> =
            if rng.chance(25) { [9].into() } else { BTreeSet::new() };
        let config = ZabConfig {
            id: 0,
            voters: voters.clone(),
            observers: observers.clone(),
            groups: None,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_ticks: 1,
            window_entries: 1 + rng.below(40) as usize,
        };
        let mut sim = Sim {
            seed,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            servers: BTreeMap::new(),
            config,
            links: BTreeMap::new(),
            link_due: BTreeMap::new(),
            cut: BTreeSet::new(),
            faults: true,
            trace: false,
            committed: Vec::new(),
            acked: Vec::new(),
            leaders: BTreeMap::new(),
            acked_when_calm: 0,
            written: 0,
            sessions: (0..4).map(|_| Session { connection: None, seen: Zxid::ZERO }).collect(),
            sync_ids: 0,
            pending_syncs: BTreeMap::new(),
            proposals: BTreeMap::new(),
        };
        for id in voters.iter().chain(observers.iter()) {
            let server = Server {
                zab: None,
                life: 0,
                generation: 0,
                disk: Disk::default(),
                state: Vec::new(),
                role: Role::Looking,
                next_zxid: Zxid::ZERO,
                incoming_snapshot: None,
                known_links: BTreeMap::new(),
                persist_due: 0,
                syncs: BTreeMap::new(),
                role_changes: 0,
            };
            sim.servers.insert(*id, server);
        }
        let ids: Vec<ServerId> = sim.servers.keys().copied().collect();
        for id in ids {
            sim.start(id);
        }
        sim.schedule(1, Event::Faults);
        sim.schedule(1, Event::Write);
        sim.schedule(1, Event::Read);
        sim
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {}: at time {}: {what}", self.seed, self.now);
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: self.now + delay, seq: self.seq, event }));
    }

    fn ids(&self) -> Vec<ServerId> {
        self.servers.keys().copied().collect()
    }

    fn alive(&self, id: ServerId) -> bool {
        self.servers.get(&id).is_some_and(|s| s.zab.is_some())
    }

    /// Starts (or restarts) a member from its disk.
    fn start(&mut self, id: ServerId) {
        if self.trace {
            eprintln!("{:>6} {id}: start", self.now);
        }
        let mut config = self.config.clone();
        config.id = id;
        let links: Vec<(ServerId, u64)> = self
            .ids()
            .into_iter()
            .filter(|peer| *peer != id)
            .map(|peer| (peer, *self.links.get(&pair(id, peer)).unwrap_or(&0)))
            .collect();
        let server = self.servers.get_mut(&id).expect("member");
        let disk = &server.disk;
        let entries: Vec<Entry> =
            disk.log.iter().filter(|e| e.zxid > disk.snapshot_zxid).cloned().collect();
        let restored = Restored {
            epochs: disk.epochs,
            history: History::new(disk.snapshot_zxid, disk.snapshot_epoch_ends.clone(), entries),
            applied: disk.snapshot_zxid,
        };
        server.state = disk.snapshot_state.clone();
        server.role = Role::Looking;
        server.life += 1;
        server.known_links = links.into_iter().collect();
        server.incoming_snapshot = None;
        server.syncs.clear();
        let (zab, actions) = Zab::new(config, restored);
        server.zab = Some(zab);
        let life = server.life;
        let phase = self.rng.below(TICK) + 1;
        self.schedule(phase, Event::Tick { server: id, life });
        self.carry_out(id, actions);
    }

    fn crash(&mut self, id: ServerId) {
        if self.trace {
            eprintln!("{:>6} {id}: crash", self.now);
        }
        let server = self.servers.get_mut(&id).expect("member");
        server.zab = None;
        server.disk.unsynced.clear();
        server.role = Role::Looking;
        for peer in self.ids() {
            if peer != id {
                self.break_link(id, peer);
            }
        }
        let failed: Vec<u64> =
            self.pending_syncs.iter().filter(|(_, (s, _))| *s == id).map(|(k, _)| *k).collect();
        for sync in failed {
            self.pending_syncs.remove(&sync);
        }
    }

    fn break_link(&mut self, a: ServerId, b: ServerId) {
        let incarnation = self.links.entry(pair(a, b)).or_insert(0);
        *incarnation += 1;
        for (server, peer) in [(a, b), (b, a)] {
            if let Some(life) =
                self.servers.get(&server).filter(|s| s.zab.is_some()).map(|s| s.life)
            {
                let delay = 1 + self.rng.below(3 * TICK);
                self.schedule(delay, Event::Disconnected { server, peer, life });
            }
        }
    }

    fn send(&mut self, from: ServerId, to: ServerId, message: Message) {
        if !self.servers.contains_key(&to) {
            return;
        }
        let reachable = !self.cut.contains(&pair(from, to)) && self.alive(to);
        if let Message::Notification(_) = message {
            // Election messages: lost, duplicated, delayed and reordered freely.
            if !reachable || (self.faults && self.rng.chance(5)) {
                return;
            }
            let copies = if self.faults && self.rng.chance(3) { 2 } else { 1 };
            for _ in 0..copies {
                let spread = if self.faults && self.rng.chance(5) { 60 } else { 8 };
                let delay = 1 + self.rng.below(spread);
                self.schedule(
                    delay,
                    Event::Deliver {
                        from,
                        to,
                        message: message.clone(),
                        link: None,
                        snapshot: None,
                    },
                );
            }
            return;
        }
        let incarnation = *self.links.get(&pair(from, to)).unwrap_or(&0);
        let known = self.servers[&from].known_links.get(&to).copied().unwrap_or(0);
        if known != incarnation {
            return;
        }
        if !reachable {
            self.break_link(from, to);
            return;
        }
        let snapshot = match &message {
            Message::Snap { zxid, .. } => {
                let state = self.servers[&from].state.clone();
                if state.last().map_or(Zxid::ZERO, |e| e.zxid) != *zxid {
                    self.fail(format!("{from} sends a snapshot at 0x{zxid:x} of other state"));
                }
                Some(state)
            }
            _ => None,
        };
        let spread = if self.faults && self.rng.chance(3) { 40 } else { 6 };
        let delay = 1 + self.rng.below(spread);
        let due = self.link_due.entry((from, to)).or_insert(0);
        *due = (*due).max(self.now + delay);
        let at = *due - self.now;
        self.schedule(at, Event::Deliver { from, to, message, link: Some(incarnation), snapshot });
    }

    fn step(&mut self, id: ServerId, input: Input) {
        let Some(zab) = self.servers.get_mut(&id).and_then(|s| s.zab.as_mut()) else { return };
        let actions = zab.step(input);
        self.carry_out(id, actions);
    }

    fn carry_out(&mut self, id: ServerId, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, message } => self.send(id, to, message),
                // The shell holds the message until the writes before it are durable;
                // here they become durable at once, which a crash cannot tell apart.
                Action::SendAfterPersist { to, message } => {
                    self.servers.get_mut(&id).expect("member").disk.flush();
                    self.send(id, to, message);
                }
                Action::Append(entries) => {
                    let delay = 1 + self.rng.below(8);
                    let server = self.servers.get_mut(&id).expect("member");
                    let zxid = entries.last().map_or(Zxid::ZERO, |e| e.zxid);
                    server.disk.unsynced.push(Unsynced::Batch(entries));
                    server.persist_due = server.persist_due.max(self.now + delay);
                    let (life, generation) = (server.life, server.generation);
                    let at = server.persist_due - self.now;
                    self.schedule(at, Event::Persisted { server: id, life, generation, zxid });
                }
                Action::Truncate(zxid) => {
                    let server = self.servers.get_mut(&id).expect("member");
                    server.disk.flush();
                    server.disk.log.retain(|e| e.zxid <= zxid);
                    server.generation += 1;
                    if server.state.last().is_some_and(|e| e.zxid > zxid) {
                        self.fail(format!("{id} truncates applied entries after 0x{zxid:x}"));
                    }
                }
                Action::InstallSnapshot(zxid) => self.install_snapshot(id, zxid),
                Action::PersistEpochs(epochs) => {
                    let server = self.servers.get_mut(&id).expect("member");
                    let latest = server.disk.latest_epochs();
                    if epochs.accepted < latest.accepted || epochs.current < latest.current {
                        self.fail(format!("{id} lowers its epochs to {epochs:?}"));
                    }
                    server.disk.unsynced.push(Unsynced::Epochs(epochs));
                }
                Action::Apply(entries) => self.apply(id, entries),
                Action::Role(role) => self.role(id, role),
                Action::SyncDone { id: sync } => self.sync_done(id, sync),
                Action::SyncFailed { id: sync } => {
                    self.pending_syncs.remove(&sync);
                }
                // Correct members never break the protocol.
                Action::DropLink { peer } => self.fail(format!("{id} drops its link to {peer}")),
            }
        }
    }

    fn install_snapshot(&mut self, id: ServerId, zxid: Zxid) {
        let server = self.servers.get_mut(&id).expect("member");
        let Some(state) = server.incoming_snapshot.take() else {
            self.fail(format!("{id} installs a snapshot it never received"));
        };
        if state.last().map_or(Zxid::ZERO, |e| e.zxid) != zxid {
            self.fail(format!("{id} installs a snapshot labelled 0x{zxid:x} of other state"));
        }
        server.disk.flush();
        server.generation += 1;
        server.disk.snapshot_zxid = zxid;
        server.disk.snapshot_state = state.clone();
        server.disk.snapshot_epoch_ends =
            server.zab.as_ref().map(|z| z.history().epoch_ends().to_vec()).unwrap_or_default();
        // The whole log goes, as the server's storage drops it (`Store::finish`): entries
        // after the snapshot may be of an epoch that never committed.
        server.disk.log.clear();
        server.state = state;
        self.check_prefix(id);
    }

    fn check_prefix(&self, id: ServerId) {
        let state = &self.servers[&id].state;
        let agreeing = state.iter().zip(&self.committed).take_while(|(a, b)| a == b).count();
        if agreeing < state.len().min(self.committed.len()) {
            self.fail(format!("{id}'s state diverges from the committed sequence at {agreeing}"));
        }
    }

    fn apply(&mut self, id: ServerId, entries: Vec<Entry>) {
        for entry in entries {
            let server = self.servers.get_mut(&id).expect("member");
            let last = server.state.last().map_or(Zxid::ZERO, |e| e.zxid);
            if entry.zxid <= last {
                self.fail(format!("{id} applies 0x{:x} after 0x{last:x}", entry.zxid));
            }
            let position = server.state.len();
            server.state.push(entry.clone());
            match self.committed.get(position) {
                Some(committed) if *committed != entry => self.fail(format!(
                    "{id} applies 0x{:x} at {position} where 0x{:x} was committed",
                    entry.zxid, committed.zxid
                )),
                Some(_) => {}
                None => {
                    if position != self.committed.len() {
                        self.fail(format!("{id} applies past a gap at {position}"));
                    }
                    self.committed.push(entry.clone());
                }
            }
            let life = self.servers[&id].life;
            if self.proposals.get(&entry.zxid) == Some(&(id, life)) {
                self.proposals.remove(&entry.zxid);
                self.acked.push(position);
                if !self.faults {
                    self.acked_when_calm += 1;
                }
            }
        }
        self.check_prefix(id);
        self.maybe_snapshot(id);
    }

    /// Members snapshot their state now and then and drop the log behind it.
    fn maybe_snapshot(&mut self, id: ServerId) {
        if !self.rng.chance(10) {
            return;
        }
        let server = self.servers.get_mut(&id).expect("member");
        let Some(zab) = &server.zab else { return };
        let zxid = server.state.last().map_or(Zxid::ZERO, |e| e.zxid);
        server.disk.snapshot_zxid = zxid;
        server.disk.snapshot_state = server.state.clone();
        server.disk.snapshot_epoch_ends = epoch_ends_through(zab.history(), zxid);
        server.disk.log.retain(|e| e.zxid > zxid);
    }

    fn role(&mut self, id: ServerId, role: Role) {
        if self.trace {
            eprintln!("{:>6} {id}: {role:?}", self.now);
        }
        let server = self.servers.get_mut(&id).expect("member");
        server.role = role;
        server.role_changes += 1;
        if let Role::Leading { epoch, last_zxid } = role {
            server.next_zxid = if last_zxid.epoch() == epoch {
                last_zxid + 1
            } else {
                Zxid::epoch_start(epoch) + 1
            };
            if let Some(other) = self.leaders.insert(epoch, id) {
                if other != id {
                    self.fail(format!("epoch {epoch} established by {other} and {id}"));
                }
            }
            let state_len = self.servers[&id].state.len();
            if let Some(missing) = self.acked.iter().find(|position| **position >= state_len) {
                self.fail(format!("leader {id} of epoch {epoch} lacks acked write #{missing}"));
            }
        }
    }

    fn sync_done(&mut self, id: ServerId, sync: u64) {
        let Some((server, required)) = self.pending_syncs.remove(&sync) else { return };
        if server != id {
            self.fail(format!("sync {sync} of {server} answered by {id}"));
        }
        let applied = self.servers[&id].state.len();
        if applied < required {
            self.fail(format!("{id}'s sync sees {applied} entries; {required} were acked"));
        }
    }

    fn serving(&self, id: ServerId) -> Option<(ServerId, u64, u64)> {
        let server = self.servers.get(&id).filter(|s| s.zab.is_some())?;
        let serving = !matches!(server.role, Role::Looking);
        serving.then_some((id, server.life, server.role_changes))
    }

    fn read(&mut self) {
        let session = self.rng.below(self.sessions.len() as u64) as usize;
        let connection = self.sessions[session].connection;
        let still_open = connection.is_some_and(|(id, ..)| self.serving(id) == connection);
        if !still_open {
            // Connect anew; a ZooKeeper server behind what the client has seen refuses it.
            let ids = self.ids();
            let id = *self.rng.pick(&ids);
            let applied = self.servers[&id].state.last().map_or(Zxid::ZERO, |e| e.zxid);
            let accepted = self.serving(id).filter(|_| applied >= self.sessions[session].seen);
            self.sessions[session].connection = accepted;
            if accepted.is_none() {
                return;
            }
        }
        let Some((id, ..)) = self.sessions[session].connection else { return };
        self.check_prefix(id);
        let applied = self.servers[&id].state.last().map_or(Zxid::ZERO, |e| e.zxid);
        if applied < self.sessions[session].seen {
            self.fail(format!(
                "session {session} reads 0x{applied:x} at {id} after 0x{:x}",
                self.sessions[session].seen
            ));
        }
        self.sessions[session].seen = applied;
        if self.rng.chance(30) {
            self.sync_ids += 1;
            let sync = self.sync_ids;
            let required = self.acked.iter().map(|p| p + 1).max().unwrap_or(0);
            self.pending_syncs.insert(sync, (id, required));
            self.step(id, Input::Sync { id: sync });
        }
    }

    fn write(&mut self) {
        let leaders: Vec<ServerId> = self
            .ids()
            .into_iter()
            .filter(|id| self.alive(*id) && matches!(self.servers[id].role, Role::Leading { .. }))
            .collect();
        for id in leaders {
            self.written += 1;
            let server = self.servers.get_mut(&id).expect("member");
            let zxid = server.next_zxid;
            server.next_zxid += 1;
            self.proposals.insert(zxid, (id, server.life));
            let payload = Bytes::from(format!("w{}", self.written));
            self.step(id, Input::Propose(Entry { zxid, payload }));
        }
    }

    fn inject_faults(&mut self) {
        let ids = self.ids();
        let pick = |rng: &mut Rng| *rng.pick(&ids);
        if self.rng.chance(6) {
            let id = pick(&mut self.rng);
            if self.alive(id) {
                self.crash(id);
            } else {
                self.start(id);
            }
        }
        if self.rng.chance(4) {
            let id = pick(&mut self.rng);
            if !self.alive(id) {
                self.start(id);
            }
        }
        if self.rng.chance(3) {
            let (a, b) = (pick(&mut self.rng), pick(&mut self.rng));
            if a != b {
                self.break_link(a, b);
            }
        }
        if self.rng.chance(2) {
            // Partition: cut one random member off, or heal everything.
            if self.cut.is_empty() {
                let isolated = pick(&mut self.rng);
                for other in ids.iter().filter(|o| **o != isolated) {
                    self.cut.insert(pair(isolated, *other));
                }
            } else {
                self.cut.clear();
            }
        }
    }

    fn run(&mut self) {
        while let Some(Reverse(Scheduled { at, event, .. })) = self.queue.pop() {
            if at > FAULTY_TIME + CALM_TIME {
                break;
            }
            self.now = at;
            if self.faults && at > FAULTY_TIME {
                self.calm();
            }
            self.handle(event);
        }
        self.check_convergence();
    }

    /// Faults stop: heal the network and restart everyone.
    fn calm(&mut self) {
        self.faults = false;
        self.cut.clear();
        for id in self.ids() {
            if !self.alive(id) {
                self.start(id);
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { server, life } => {
                if self.servers[&server].life == life && self.alive(server) {
                    self.step(server, Input::Tick);
                    self.schedule(TICK, Event::Tick { server, life });
                }
            }
            Event::Deliver { from, to, message, link, snapshot } => {
                if let Some(incarnation) = link {
                    if self.links.get(&pair(from, to)).copied().unwrap_or(0) != incarnation {
                        return;
                    }
                }
                if !self.alive(to) {
                    return;
                }
                if snapshot.is_some() {
                    self.servers.get_mut(&to).expect("member").incoming_snapshot = snapshot;
                }
                self.step(to, Input::Message { from, message });
            }
            Event::Disconnected { server, peer, life } => {
                if self.servers[&server].life != life || !self.alive(server) {
                    return;
                }
                let incarnation = self.links.get(&pair(server, peer)).copied().unwrap_or(0);
                self.servers
                    .get_mut(&server)
                    .expect("member")
                    .known_links
                    .insert(peer, incarnation);
                self.step(server, Input::Disconnected { peer });
            }
            Event::Persisted { server, life, generation, zxid } => {
                let member = self.servers.get_mut(&server).expect("member");
                if member.life != life || member.generation != generation || member.zab.is_none() {
                    return;
                }
                member.disk.flush_through(zxid);
                self.step(server, Input::Persisted { zxid });
            }
            Event::Faults => {
                if self.faults {
                    self.inject_faults();
                }
                self.schedule(50, Event::Faults);
            }
            Event::Write => {
                // Writes stop shortly before the end, so everyone can catch up.
                if self.now + 1_000 < FAULTY_TIME + CALM_TIME {
                    self.write();
                }
                let delay = 5 + self.rng.below(30);
                self.schedule(delay, Event::Write);
            }
            Event::Read => {
                self.read();
                let delay = 5 + self.rng.below(20);
                self.schedule(delay, Event::Read);
            }
        }
    }

    fn check_convergence(&self) {
        let leaders: Vec<ServerId> = self
            .ids()
            .into_iter()
            .filter(|id| matches!(self.servers[id].role, Role::Leading { .. }))
            .collect();
        if leaders.len() != 1 {
            self.fail(format!("after the faults stopped, leaders: {leaders:?}"));
        }
        if self.acked_when_calm == 0 {
            self.fail("no write was acknowledged after the faults stopped".into());
        }
        for (id, server) in &self.servers {
            let len = server.state.len();
            if len != self.committed.len() {
                self.fail(format!("{id} did not catch up: {len} of {}", self.committed.len()));
            }
            self.check_prefix(*id);
        }
    }
}

fn run_seed(seed: u64, trace: bool) {
    let mut sim = Sim::new(seed);
    sim.trace = trace;
    sim.run();
    if std::env::var_os("ZKRS_SIM_TRACE").is_some() {
        eprintln!(
            "seed {seed}: {} members, {} epochs, {} committed, {} acked, {} written, {} syncs",
            sim.servers.len(),
            sim.leaders.len(),
            sim.committed.len(),
            sim.acked.len(),
            sim.written,
            sim.sync_ids
        );
    }
}

#[test]
fn ensembles_survive_crashes_partitions_and_message_loss() {
    if let Some(seed) = std::env::var("ZKRS_SEED").ok().and_then(|s| s.parse().ok()) {
        run_seed(seed, std::env::var_os("ZKRS_SIM_TRACE").is_some());
        return;
    }
    let seeds: u64 =
        std::env::var("ZKRS_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    for seed in 0..seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(seed, false));
        if outcome.is_err() {
            panic!("simulation failed; replay with ZKRS_SEED={seed}");
        }
    }
}

/// What a member keeps of its history's epoch ends with a snapshot at `zxid`, as the
/// server's store keeps them beside its own snapshots: the ends up to `zxid`, and `zxid`
/// as the end of its epoch so far.
fn epoch_ends_through(history: &History, zxid: Zxid) -> Vec<Zxid> {
    let mut ends: Vec<Zxid> = history.epoch_ends().iter().copied().filter(|e| *e <= zxid).collect();
    if zxid.counter() != 0 && ends.last().map(|end| end.epoch()) != Some(zxid.epoch()) {
        ends.push(zxid);
    }
    ends
}
