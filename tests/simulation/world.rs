//! The simulated world: members, their disks, the network, the clients, one clock, and
//! the faults, all driven by one seeded random sequence in 1 ms steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use zkrs::config::Config;
use zkrs::ensemble::frame::PeerFrame;
use zkrs::ensemble::Membership;
use zkrs::server::pipeline::{Effect, Input, Pipeline};
use zkrs::server::read_barrier::{Passage, ReadBarrier, Ticket};
use zkrs::server::reads::{self, ReadRequester};
use zkrs::server::{restore, Clock, Mode, Restart, Shared};
use zkrs::storage::{Storage, StorageError};
use zkrs::txn::Zxid;
use zkrs::zab::{Message, ServerId};

use crate::client::Client;
use crate::disk::Disk;
use crate::invariants::{applied, converged, digest, durable, ephemerals, served_state};
use crate::network::{Delivery, Network};
use crate::rng::Rng;
use crate::transfer;

/// Members of the simulated ensemble.
const MEMBERS: u64 = 3;
/// Clients writing keys to it, and clients running the lock recipe.
const WRITERS: usize = 5;
const LOCKERS: usize = 3;
/// The simulated zoo.cfg's tickTime.
const TICK_MS: u64 = 100;
/// Time with faults, then the longest the ensemble may take to settle once they stop.
const FAULTY_MS: u64 = 8_000;
const SETTLE_MS: u64 = 20_000;
/// How often a client's connection pings (touches its session).
const PING_MS: u64 = 300;

/// A member as it runs between crashes.
struct Running {
    pipeline: Pipeline,
    /// The mode last seen, to trace changes.
    mode: Mode,
    shared: Arc<Shared>,
    /// The queue the shell's clients would use; the simulator keeps its own (`inbox`).
    _inputs: tokio::sync::mpsc::Receiver<Input>,
    /// Client inputs on their way to the pipeline, as they wait in the shell's channel,
    /// each with the millisecond it arrives; in order, and lost in a crash.
    inbox: std::collections::VecDeque<(u64, Input)>,
    applied: Zxid,
    /// A snapshot the member is receiving.
    receiving: Option<transfer::Receiving>,
    /// Reads waiting for the read barrier, as their connections hold them: the client,
    /// its request and the round it waits for.
    held_reads: Vec<(usize, Input, Ticket)>,
}

/// One member: its disk outlives its crashes.
struct Member {
    id: ServerId,
    config: Config,
    membership: Membership,
    disk: Disk,
    running: Option<Running>,
    /// Counts starts, so a client knows its connection is from an earlier one.
    incarnation: u64,
}

/// What a run did, to show that it did something.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub acknowledged: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub disk_failures: u64,
    pub snapshots: u64,
    /// Starts that read a damaged log entry.
    pub damaged_reads: u64,
    /// Handshakes that asked to resume a session.
    pub resumed: u64,
    /// Times a locker took the lock.
    pub locks_taken: u64,
    /// Reads of another client's key after a sync.
    pub synced_reads: u64,
    /// Sessions members opened read-only, and writes refused in them.
    pub read_only_sessions: u64,
    pub read_only_refusals: u64,
    /// A hash of the converged tree (of the last seed, when added up).
    pub fingerprint: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.acknowledged += other.acknowledged;
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.disk_failures += other.disk_failures;
        self.snapshots += other.snapshots;
        self.damaged_reads += other.damaged_reads;
        self.resumed += other.resumed;
        self.locks_taken += other.locks_taken;
        self.synced_reads += other.synced_reads;
        self.read_only_sessions += other.read_only_sessions;
        self.read_only_refusals += other.read_only_refusals;
        self.fingerprint = other.fingerprint;
    }
}

/// Everything simulated.
pub struct World {
    rng: Rng,
    now: u64,
    members: Vec<Member>,
    network: Network,
    clients: Vec<Client>,
    /// Clients send no new requests.
    quiet: bool,
    /// Members serve read-only clients without a quorum; partitions then last long
    /// enough (seconds) for them to start.
    read_only: bool,
    /// Members answer reads past the read barrier (`zkrs.linearizableReads`).
    linearizable_reads: bool,
    stats: Stats,
    /// Snapshot chunks a leader made for a learner, waiting for the `Snap` they go ahead of.
    streams: BTreeMap<(ServerId, ServerId), Vec<PeerFrame>>,
    /// Runs the transfer thread's seal, which the shell would await.
    runtime: tokio::runtime::Runtime,
    /// What each member had applied when it last began to lead.
    established: BTreeMap<ServerId, Zxid>,
    trace: bool,
}

/// Hierarchical quorums some runs have instead of majorities: member 3 in every quorum;
/// member 2 carrying its group alone, so that {2, 3} is a quorum and {1, 3} is not; one
/// group in which member 3 weighs nothing and is never elected.
const HIERARCHIES: [&str; 3] = [
    "group.1=1:2\ngroup.2=3\n",
    "group.1=1:2\ngroup.2=3\nweight.2=2\n",
    "group.1=1:2:3\nweight.3=0\n",
];

/// `window_entries`: recent entries a leader keeps for a DIFF; a learner further behind
/// gets a snapshot. `local_sessions`: sessions start local to their member and become
/// global when they first create an ephemeral node. `read_only`: a member cut off from
/// its quorum serves clients that ask for read-only service. `groups`: the `group.N` and
/// `weight.N` lines, if any.
fn member_config(
    id: ServerId,
    window_entries: usize,
    local_sessions: bool,
    read_only: bool,
    linearizable_reads: bool,
    groups: &str,
) -> (Config, Membership) {
    let mut text = format!(
        "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent\nclientPort=2181\n"
    );
    if local_sessions {
        text.push_str("localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n");
    }
    if read_only {
        text.push_str("readonlymode.enabled=true\n");
    }
    if linearizable_reads {
        text.push_str("zkrs.linearizableReads=true\n");
    }
    for member in 1..=MEMBERS {
        text.push_str(&format!("server.{member}=127.0.0.1:{}:{}\n", 2888 + member, 3888 + member));
    }
    text.push_str(groups);
    let config = Config::parse(&text).and_then(|config| config.with_my_id(Some(id)));
    let config = config.expect("the simulated zoo.cfg is valid");
    let mut membership = Membership::from_config(&config).expect("membership");
    membership.zab.window_entries = window_entries;
    (config, membership)
}

impl World {
    pub fn new(seed: u64, trace: bool) -> World {
        let mut rng = Rng(seed);
        // Some runs keep every entry (DIFF only), others few (a lagging member gets a
        // snapshot).
        let window_entries = *rng.pick(&[usize::MAX, 50, 500]);
        let local_sessions = rng.chance(30);
        // In some runs members serve read-only clients without a quorum, and every
        // client asks for that.
        let read_only = rng.chance(30);
        // In some, members answer reads past the read barrier.
        let linearizable_reads = rng.chance(30);
        // In some, quorums are hierarchical.
        let groups = if rng.chance(30) { *rng.pick(&HIERARCHIES) } else { "" };
        let members = (1..=MEMBERS)
            .map(|id| {
                let (config, membership) = member_config(
                    id,
                    window_entries,
                    local_sessions,
                    read_only,
                    linearizable_reads,
                    groups,
                );
                Member {
                    id,
                    config,
                    membership,
                    disk: Disk::default(),
                    running: None,
                    incarnation: 0,
                }
            })
            .collect();
        let clients = (0..WRITERS + LOCKERS)
            .map(|id| {
                let mut client = Client::new(id, id >= WRITERS, read_only);
                client.linearizable_reads = linearizable_reads;
                client
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        World {
            rng,
            runtime,
            streams: BTreeMap::new(),
            now: 0,
            members,
            network: Network::default(),
            clients,
            quiet: false,
            read_only,
            linearizable_reads,
            stats: Stats::default(),
            established: BTreeMap::new(),
            trace,
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>6} ms  {}", self.now, what());
        }
    }

    /// Runs faults, then calm, then checks the state; the first broken invariant.
    pub fn run(mut self) -> Result<Stats, String> {
        for index in 0..self.members.len() {
            self.start(index)?;
        }
        while self.now < FAULTY_MS {
            self.step(true)?;
        }
        self.trace(|| "faults stop".into());
        self.network.heal();
        for member in &mut self.members {
            member.disk.failing = false;
        }
        let settle_by = self.now + SETTLE_MS;
        while !self.settled() {
            if self.now >= settle_by {
                return Err(format!(
                    "not settled {SETTLE_MS} ms after the faults stopped: {}",
                    self.modes()
                ));
            }
            self.step(false)?;
        }
        // The clients take no new requests; what they sent is answered.
        self.quiet = true;
        while !(self.settled() && self.clients.iter().all(Client::is_idle)) {
            if self.now >= settle_by + SETTLE_MS {
                return Err(format!("requests unanswered once settled: {}", self.modes()));
            }
            self.step(false)?;
        }
        self.check_settled()?;
        // Every client stops; their sessions expire and take their ephemerals along.
        for client_index in 0..self.clients.len() {
            self.leave(client_index);
            self.clients[client_index].stop();
        }
        let quiet_until = self.now + 20 * TICK_MS + 4 * crate::client::SESSION_TIMEOUT_MS as u64;
        while self.now < quiet_until || !self.settled() {
            if self.now >= quiet_until + SETTLE_MS {
                return Err(format!("not settled after the sessions expired: {}", self.modes()));
            }
            self.step_members()?;
            self.now += 1;
        }
        self.check_settled()?;
        for member in &self.members {
            if let Some(running) = &member.running {
                ephemerals::check(member.id, running.shared.database.tree())?;
            }
        }
        self.stats.acknowledged = self.clients.iter().map(|client| client.acknowledged).sum();
        self.stats.locks_taken = self.clients.iter().map(|client| client.locks_taken).sum();
        self.stats.read_only_sessions =
            self.clients.iter().map(|client| client.read_only_sessions).sum();
        self.stats.read_only_refusals =
            self.clients.iter().map(|client| client.read_only_refusals).sum();
        if let Some(running) = self.members.iter().find_map(|member| member.running.as_ref()) {
            let listing = converged::listing(running.shared.database.tree());
            // FNV-1a: the same listing, the same number, on every run.
            self.stats.fingerprint = listing.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        }
        Ok(self.stats)
    }

    fn modes(&self) -> String {
        self.members
            .iter()
            .map(|member| match &member.running {
                Some(running) => format!(
                    "{}:{}@0x{:x}",
                    member.id,
                    running.shared.mode.lock().name(),
                    running.shared.database.last_applied_zxid()
                ),
                None => format!("{}:down", member.id),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every member up and serving, one leading, all at the same applied zxid, nothing
    /// being written.
    fn settled(&self) -> bool {
        let mut leaders = 0;
        let mut zxids = Vec::new();
        for member in &self.members {
            let Some(running) = &member.running else { return false };
            match *running.shared.mode.lock() {
                Mode::Leader => leaders += 1,
                Mode::Follower => {}
                _ => return false,
            }
            if member.disk.is_writing() {
                return false;
            }
            zxids.push(running.shared.database.last_applied_zxid());
        }
        leaders == 1 && zxids.windows(2).all(|pair| pair[0] == pair[1])
    }

    fn check_settled(&self) -> Result<(), String> {
        let listings: Vec<(ServerId, String)> = self
            .members
            .iter()
            .filter_map(|member| {
                let running = member.running.as_ref()?;
                Some((member.id, converged::listing(running.shared.database.tree())))
            })
            .collect();
        converged::check(&listings)?;
        for member in &self.members {
            if let Some(running) = &member.running {
                digest::check(member.id, running.shared.database.tree())?;
            }
        }
        let running = self.members.iter().find_map(|member| member.running.as_ref());
        match running {
            Some(running) => durable::check(&self.clients, running.shared.database.tree()),
            None => Err("no member is running".into()),
        }
    }

    /// Starts member `index` from what its disk holds. While faults run, its disk may
    /// return one damaged log entry as it is read: the member must then refuse to start
    /// (and starts on a later try, when the disk reads right) or start from a state the
    /// invariants accept.
    fn start(&mut self, index: usize) -> Result<(), String> {
        let damage = self.now < FAULTY_MS && self.rng.chance(10);
        let member = &mut self.members[index];
        let damaged = if damage { member.disk.damage_one_entry(&mut self.rng) } else { None };
        let clock = Clock::manual(1_700_000_000_000 + self.now);
        let restored =
            restore(member.config.clone(), member.disk.durable.as_ref(), member.id, false, clock);
        let id = member.id;
        if let Some(damaged) = damaged {
            let zxid = damaged.0;
            member.disk.repair(damaged);
            self.stats.damaged_reads += 1;
            if let Err(err) = &restored {
                self.trace(|| format!("member {id} reads entry 0x{zxid:x} damaged: {err}"));
                return Ok(());
            }
            self.trace(|| format!("member {id} reads entry 0x{zxid:x} damaged and starts"));
        }
        let member = &mut self.members[index];
        member.incarnation += 1;
        let restart = restored.map_err(|err| format!("member {id} cannot recover: {err}"))?;
        let Restart { shared, inputs, restored } = restart;
        let pipeline =
            Pipeline::start(shared.clone(), member.membership.zab.clone(), restored, false)
                .map_err(|err| format!("member {} cannot start: {err}", member.id))?;
        let applied = shared.database.last_applied_zxid();
        let mode = *shared.mode.lock();
        member.running = Some(Running {
            pipeline,
            mode,
            shared,
            _inputs: inputs,
            inbox: std::collections::VecDeque::new(),
            held_reads: Vec::new(),
            applied,
            receiving: None,
        });
        self.trace(|| format!("member {id} starts"));
        self.carry_out(index)
    }

    /// Member `index` stops at once: its connections and what it was writing are lost.
    fn crash(&mut self, index: usize) {
        let member = &mut self.members[index];
        let Some(running) = member.running.take() else { return };
        for connection in running.shared.registry.all() {
            connection.request_close();
        }
        member.disk.crash(&mut self.rng);
        self.stats.crashes += 1;
        let id = member.id;
        self.streams.retain(|(from, to), _| *from != id && *to != id);
        let ids: Vec<ServerId> = self.members.iter().map(|member| member.id).collect();
        for other in ids.into_iter().filter(|other| *other != id) {
            self.network.break_both(self.now, id, other);
        }
        self.trace(|| format!("member {id} crashes"));
    }

    /// One millisecond: faults (if `faulty`; otherwise members that are down start
    /// again, as a supervisor would start them), clients, then the members.
    fn step(&mut self, faulty: bool) -> Result<(), String> {
        if faulty {
            self.fault();
        } else {
            for index in 0..self.members.len() {
                if self.members[index].running.is_none() {
                    self.start(index)?;
                }
            }
        }
        self.step_clients()?;
        self.step_members()?;
        self.now += 1;
        Ok(())
    }

    fn fault(&mut self) {
        let index = self.rng.below(MEMBERS) as usize;
        let id = self.members[index].id;
        match self.rng.below(10_000) {
            0..=2 => self.crash(index),
            3..=40 if self.members[index].running.is_none() => {
                let _ = self.start(index);
            }
            41..=42 if !self.network.is_partitioned() => {
                self.trace(|| format!("member {id} is cut off"));
                self.stats.partitions += 1;
                let ids: Vec<ServerId> = self.members.iter().map(|member| member.id).collect();
                self.network.isolate(self.now, id, &ids);
            }
            43..=60
                if self.network.is_partitioned() && (!self.read_only || self.rng.chance(15)) =>
            {
                self.trace(|| "the partition heals".into());
                self.network.heal();
            }
            61..=63 => {
                let other = self.members[(index + 1) % self.members.len()].id;
                self.trace(|| format!("the link {id}-{other} breaks"));
                self.network.break_link(self.now, id, other);
            }
            71..=73 => {
                let other = self.members[(index + 1) % self.members.len()].id;
                self.trace(|| format!("the election connection {id}-{other} breaks"));
                self.network.break_election(id, other);
            }
            65..=70 => {
                let client_index = self.rng.below(self.clients.len() as u64) as usize;
                if self.clients[client_index].member.is_some() {
                    self.trace(|| format!("client {client_index} leaves its member"));
                    self.leave(client_index);
                    self.clients[client_index].disconnect();
                }
            }
            64 => {
                self.trace(|| format!("member {id}'s disk fails its next write"));
                self.members[index].disk.failing = true;
                self.stats.disk_failures += 1;
            }
            _ => {}
        }
    }

    fn step_clients(&mut self) -> Result<(), String> {
        for client_index in 0..self.clients.len() {
            let open = self.clients[client_index].poll(self.now)?;
            for observation in std::mem::take(&mut self.clients[client_index].observations) {
                self.stats.synced_reads += 1;
                self.clients[observation.target.owner].check_observation(&observation)?;
            }
            let member = self.clients[client_index].member;
            let Some((index, running)) = self.current_member(client_index) else {
                if member.is_some() {
                    self.clients[client_index].disconnect();
                }
                if self.rng.chance(5) {
                    self.connect(client_index)?;
                }
                continue;
            };
            if !open {
                self.leave(client_index);
                self.clients[client_index].disconnect();
                continue;
            }
            let client = &mut self.clients[client_index];
            if client.is_ready() && self.now % PING_MS == client_index as u64 {
                let session = client.session_id();
                if !running.sessions.lock().touch(session, running.clock.now_ms()) {
                    self.leave(client_index);
                    self.clients[client_index].disconnect();
                    continue;
                }
            }
            let holding = self.members[index]
                .running
                .as_ref()
                .is_some_and(|running| running.held_reads.iter().any(|(c, ..)| *c == client_index));
            if holding {
                // Its connection holds a read for the barrier; later requests wait behind.
                continue;
            }
            let client = &mut self.clients[client_index];
            let acts = client.wants_read_back() || self.rng.chance(3);
            if !(client.is_ready() && !self.quiet && acts) {
                continue;
            }
            let session = client.session_id();
            if !running.sessions.lock().touch(session, running.clock.now_ms()) {
                self.leave(client_index);
                self.clients[client_index].disconnect();
                continue;
            }
            let other = self.other_key(client_index);
            let Some(op) = self.clients[client_index].next_op(&mut self.rng, other) else {
                continue;
            };
            if self.trace {
                let mode = running.mode.lock().name();
                println!(
                    "{:>6} ms  client {client_index} ({}) on member {} ({mode}): {op:?}",
                    self.now,
                    self.clients[client_index].session_id(),
                    index + 1
                );
            }
            let is_read = op.is_read();
            let input = self.clients[client_index].request(op, running.clock.now_ms());
            let behind_barrier = self.linearizable_reads
                && *running.mode.lock() != Mode::ReadOnly
                && matches!(&input, Input::Request { request, .. } if request.reads_tree());
            if is_read && behind_barrier {
                let Input::Request { session_id, .. } = &input else { continue };
                let ticket = running.read_barrier.ticket(*session_id);
                if let Some(member) = &mut self.members[index].running {
                    member.held_reads.push((client_index, input, ticket));
                }
            } else if is_read {
                read(&running, &input);
            } else {
                self.input(index, input)?;
            }
        }
        Ok(())
    }

    /// The member client `client_index` is connected to, if that member is still the
    /// incarnation it connected to.
    fn current_member(&self, client_index: usize) -> Option<(usize, Arc<Shared>)> {
        let (id, incarnation) = self.clients[client_index].member?;
        let index = self.index_of(id)?;
        let running = self.members[index].running.as_ref()?;
        (self.members[index].incarnation == incarnation).then(|| (index, running.shared.clone()))
    }

    /// A key of another writer for client `client_index` to read after a sync, sometimes.
    fn other_key(&mut self, client_index: usize) -> Option<crate::client::Target> {
        if self.clients[client_index].locker || !self.rng.chance(30) {
            return None;
        }
        let owner = self.rng.below(self.clients.len() as u64) as usize;
        let owner_client = &self.clients[owner];
        if owner == client_index || owner_client.locker || !owner_client.has_keys() {
            return None;
        }
        let key = self.rng.below(owner_client.keys.len() as u64) as usize;
        let path = owner_client.path(key);
        Some(crate::client::Target { owner, key, path, synced_at: 0 })
    }

    /// Client `client_index` closes its connection, as the member sees a socket close.
    fn leave(&mut self, client_index: usize) {
        let Some((_, shared)) = self.current_member(client_index) else { return };
        if let Some(connection) = self.clients[client_index].connection() {
            connection.request_close();
            shared.registry.close(connection);
            shared.database.remove_watcher(connection.id);
        }
    }

    /// Client `client_index` connects to a member that is up: a writer resumes its
    /// session there most of the time, a locker always asks for a new one.
    fn connect(&mut self, client_index: usize) -> Result<(), String> {
        let up: Vec<usize> = (0..self.members.len())
            .filter(|index| self.members[*index].running.is_some())
            .collect();
        if up.is_empty() {
            return Ok(());
        }
        let index = *self.rng.pick(&up);
        let resume = !self.clients[client_index].locker && self.rng.chance(70);
        let member = &self.members[index];
        let Some(running) = &member.running else { return Ok(()) };
        let client = &mut self.clients[client_index];
        let input = client.connect(&running.shared, (member.id, member.incarnation), resume);
        if resume && client.connection().is_some() {
            self.stats.resumed += 1;
        }
        match input {
            Some(input) => self.input(index, input),
            None => Ok(()),
        }
    }

    /// Sends member `index` a client's input, as its connection would: it waits in the
    /// channel to the pipeline for up to a millisecond, behind the inputs sent before it.
    fn input(&mut self, index: usize, input: Input) -> Result<(), String> {
        let delay_ms = self.rng.below(2);
        let Some(running) = &mut self.members[index].running else { return Ok(()) };
        let after_last = running.inbox.back().map_or(0, |(at, _)| *at);
        running.inbox.push_back(((self.now + delay_ms).max(after_last), input));
        Ok(())
    }

    /// Member `index`'s pipeline takes the client inputs that have arrived.
    fn take_inputs(&mut self, index: usize) -> Result<(), String> {
        loop {
            let Some(running) = &mut self.members[index].running else { return Ok(()) };
            if running.inbox.front().is_none_or(|(at, _)| *at > self.now) {
                return Ok(());
            }
            let Some((_, input)) = running.inbox.pop_front() else { return Ok(()) };
            let outcome = running.pipeline.client_input(input);
            self.after(index, outcome)?;
        }
    }

    /// What a member does in this millisecond: arrivals, its disk, its ticks.
    fn step_members(&mut self) -> Result<(), String> {
        while let Some(delivery) = self.network.next_due(self.now) {
            let (member, outcome) = match delivery {
                Delivery::Frame(flight) => {
                    let Some(index) = self.index_of(flight.to) else { continue };
                    (index, self.arrive(index, flight.from, flight.frame))
                }
                Delivery::Broken { member, peer } => {
                    let Some(index) = self.index_of(member) else { continue };
                    let Some(running) = &mut self.members[index].running else { continue };
                    if running.receiving.as_ref().is_some_and(|transfer| transfer.from == peer) {
                        running.receiving = None;
                    }
                    (index, running.pipeline.disconnected(peer))
                }
            };
            self.after(member, outcome)?;
        }
        for index in 0..self.members.len() {
            self.take_inputs(index)?;
            let Some(running) = &mut self.members[index].running else { continue };
            // The shell wakes when a connection asks for a round.
            let outcome = running.pipeline.read_barrier();
            self.after(index, outcome)?;
            if self.members[index].running.is_none() {
                continue;
            }
            let done = self.members[index].disk.finish_due(self.now);
            let outcome = match (done, &self.members[index].running) {
                (Some(Ok(batches)), Some(_)) => self.batch_written(index, batches),
                (Some(Err(err)), _) => Err(err),
                _ => Ok(()),
            };
            self.after(index, outcome)?;
            self.tick(index)?;
            self.release_reads(index);
        }
        Ok(())
    }

    /// Answers the reads whose barrier round passed on member `index`; a failed round
    /// closes its reads' connections, as the shell does.
    fn release_reads(&mut self, index: usize) {
        let Some(running) = &mut self.members[index].running else { return };
        let shared = running.shared.clone();
        let mut ends = shared.read_barrier.subscribe();
        running.held_reads.retain(|(_, input, ticket)| {
            let wait = ReadBarrier::wait(&mut ends, *ticket);
            match futures_util::FutureExt::now_or_never(wait) {
                None => true,
                Some(Passage::Passed) => {
                    read(&shared, input);
                    false
                }
                Some(Passage::Failed) => {
                    if let Input::Request { connection, .. } = input {
                        connection.request_close();
                    }
                    false
                }
            }
        });
    }

    /// A frame from `from` reaches member `index`, handled as its shell would: snapshot
    /// chunks go to the transfer thread, a `Snap` brings the sealed snapshot along.
    fn arrive(
        &mut self,
        index: usize,
        from: ServerId,
        frame: PeerFrame,
    ) -> Result<(), StorageError> {
        let member = &mut self.members[index];
        let Some(running) = &mut member.running else { return Ok(()) };
        match frame {
            PeerFrame::SnapshotPieces { zxid, index, pieces } => {
                let storage: Arc<dyn Storage> = member.disk.durable.clone();
                let shared = &running.shared;
                let batch = (zxid, index, pieces);
                if transfer::pieces(&mut running.receiving, shared, storage, from, batch).is_err() {
                    running.receiving = None;
                    running.pipeline.drop_link(from);
                }
                Ok(())
            }
            PeerFrame::Zab(Message::Snap { zxid, .. }) => {
                match transfer::seal(&mut running.receiving, &self.runtime, from, zxid) {
                    Ok(sealed) => {
                        running.pipeline.snapshot_sealed(from, sealed);
                        running.pipeline.peer_frame(from, frame)
                    }
                    Err(_) => {
                        running.pipeline.drop_link(from);
                        Ok(())
                    }
                }
            }
            frame => running.pipeline.peer_frame(from, frame),
        }
    }

    fn index_of(&self, id: ServerId) -> Option<usize> {
        self.members.iter().position(|member| member.id == id)
    }

    /// The ticks due for member `index` this millisecond.
    fn tick(&mut self, index: usize) -> Result<(), String> {
        let core_tick_ms = self.members[index].membership.core_tick_ms;
        let phase = index as u64;
        let Some(running) = &mut self.members[index].running else { return Ok(()) };
        running.shared.clock.advance(1);
        let mut outcome = Ok(());
        if self.now % core_tick_ms == phase {
            outcome = running.pipeline.core_tick();
        }
        if outcome.is_ok() && self.now % TICK_MS == phase {
            outcome = running.pipeline.session_tick();
        }
        self.after(index, outcome)
    }

    /// After member `index` took an input: a storage error stops it; otherwise its
    /// effects are carried out and its next batch goes to its disk.
    fn after(&mut self, index: usize, outcome: Result<(), StorageError>) -> Result<(), String> {
        if let Err(err) = outcome {
            let id = self.members[index].id;
            self.trace(|| format!("member {id} stops: {err}"));
            self.crash(index);
            return Ok(());
        }
        self.carry_out(index)
    }

    fn carry_out(&mut self, index: usize) -> Result<(), String> {
        let id = self.members[index].id;
        let mut effects = Vec::new();
        loop {
            let Some(running) = &mut self.members[index].running else { return Ok(()) };
            running.pipeline.take_effects(&mut effects);
            let applied_now = running.shared.database.last_applied_zxid();
            applied::check(id, &mut running.applied, applied_now)?;
            let mode = *running.shared.mode.lock();
            if mode != running.mode {
                running.mode = mode;
                match mode {
                    Mode::Leader => {
                        self.established.insert(id, applied_now);
                    }
                    Mode::Follower | Mode::Observer => {
                        let leader = running.shared.leader.lock().unwrap_or_default();
                        let established = self.established.get(&leader).copied();
                        served_state::check(id, applied_now, leader, established)?;
                    }
                    _ => {}
                }
                if self.trace {
                    println!(
                        "{:>6} ms  member {id} is {} at 0x{applied_now:x}",
                        self.now,
                        mode.name()
                    );
                }
            }
            if effects.is_empty() {
                break;
            }
            let shared = running.shared.clone();
            for effect in effects.drain(..) {
                match effect {
                    Effect::Send { to, frame } => {
                        let reachable =
                            self.index_of(to).is_some_and(|to| self.members[to].running.is_some());
                        let mut frames = Vec::new();
                        if let PeerFrame::Zab(Message::Snap { .. }) = &frame {
                            // Its chunks go just ahead of it, or it does not go at all.
                            let Some(chunks) = self.streams.remove(&(id, to)) else { continue };
                            frames = chunks;
                        }
                        frames.push(frame);
                        for frame in frames {
                            self.network.send(&mut self.rng, self.now, (id, to, frame), reachable);
                        }
                    }
                    Effect::ResetLink(peer) => {
                        self.streams.remove(&(id, peer));
                        self.network.break_link(self.now, id, peer);
                    }
                    Effect::EndTerm => {
                        self.streams.retain(|(from, _), _| *from != id);
                        let peers: Vec<ServerId> = self.members.iter().map(|m| m.id).collect();
                        for peer in peers.into_iter().filter(|peer| *peer != id) {
                            self.network.break_link(self.now, id, peer);
                        }
                    }
                    Effect::StreamSnapshot { to, zxid } => {
                        self.trace(|| {
                            format!("member {id} sends member {to} a snapshot at 0x{zxid:x}")
                        });
                        self.stats.snapshots += 1;
                        let chunks = transfer::chunks_of(&shared, zxid);
                        self.streams.insert((id, to), chunks);
                    }
                    Effect::Applied(_) => {}
                }
            }
        }
        self.start_write(index);
        Ok(())
    }

    /// Member `index`'s oldest `batches` batches are durable: as the shell does, its disk
    /// takes what waits before the core hears of the finished ones.
    fn batch_written(&mut self, index: usize, batches: usize) -> Result<(), StorageError> {
        let Some(running) = &mut self.members[index].running else { return Ok(()) };
        let durable = running.pipeline.batch_written(batches);
        self.start_write(index);
        match &mut self.members[index].running {
            Some(running) => running.pipeline.persisted(durable),
            None => Ok(()),
        }
    }

    /// Member `index`'s disk takes the writes its pipeline asks for.
    fn start_write(&mut self, index: usize) {
        let member = &mut self.members[index];
        let Some(running) = member.running.as_mut() else { return };
        while let Some(batch) = running.pipeline.take_batch() {
            let latency =
                if self.rng.chance(3) { 10 + self.rng.below(30) } else { 1 + self.rng.below(3) };
            member.disk.start(batch.writes, self.now, latency);
        }
    }
}

/// Answers a read as the connection that received it would: from the tree, at once,
/// registering its watch.
fn read(shared: &Shared, input: &Input) {
    if let Input::Request { connection, session_id, xid, request, auth, .. } = input {
        let reader =
            ReadRequester { connection, session_id: *session_id, auth, stats: &shared.stats };
        let view = shared.database.read();
        reads::answer(&view, &reader, *xid, request);
    }
}
