//! A 3- or 5-member ensemble of the real `zkrs` binary (or, to compare, of Apache
//! ZooKeeper 3.8) on 127.0.0.1: start, kill, restart members, find the leader.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jute::records::SyncRequest;
use jute::OpCode;

use super::client::{Client, Handshake};
use super::network::Network;
use super::server::{scratch_dir, ServerProcess};
use super::zookeeper::ReferenceZooKeeper;

/// How long an ensemble may take to elect a leader.
pub const ELECTION_WAIT: Duration = Duration::from_secs(30);

/// Which server the members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zkrs,
    /// Apache ZooKeeper 3.8, to compare with.
    ZooKeeper,
}

/// A running member.
enum Member {
    Zkrs(ServerProcess),
    ZooKeeper(ReferenceZooKeeper),
}

impl Member {
    fn pid(&self) -> u32 {
        match self {
            Member::Zkrs(process) => process.pid(),
            Member::ZooKeeper(process) => process.pid(),
        }
    }

    fn is_running(&mut self) -> bool {
        match self {
            Member::Zkrs(process) => process.is_running(),
            Member::ZooKeeper(process) => process.is_running(),
        }
    }
}

/// The members of an ensemble; a stopped member is `None` but keeps its directory.
pub struct Ensemble {
    kind: Kind,
    members: Vec<Option<Member>>,
    /// Each member's log as its last process left it.
    last_logs: Vec<String>,
    dirs: Vec<PathBuf>,
    configs: Vec<String>,
    /// Each member's client address, fixed across restarts.
    pub addresses: Vec<SocketAddr>,
    /// Whether members take injected faults: storage faults from a control file in
    /// their directory (`ZKRS_INJECT_STORAGE_FAULTS`), and a wall clock that libfaketime
    /// moves as another file there says.
    injected_faults: bool,
}

/// libfaketime for multi-threaded programs (Debian's `faketime` package).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Ports free right now, outside the range outgoing connections take theirs from.
fn free_ports(count: usize) -> Vec<u16> {
    (0..count).map(|_| super::zookeeper::free_port()).collect()
}

impl Ensemble {
    /// Starts `size` voting members; `extra` is appended to every zoo.cfg.
    pub fn start(size: usize, extra: &str) -> Ensemble {
        Ensemble::start_with_observers(size, 0, extra)
    }

    /// Starts `voters` voting members, then `observers` observers.
    pub fn start_with_observers(voters: usize, observers: usize, extra: &str) -> Ensemble {
        Ensemble::start_members(Kind::Zkrs, voters, observers, extra, false, None)
    }

    /// Starts `size` voting members of `kind` that reach each other only through
    /// `network`'s proxies, so a test can partition them.
    pub fn start_partitionable(
        kind: Kind,
        size: usize,
        extra: &str,
        network: &mut Network,
    ) -> Ensemble {
        Ensemble::start_members(kind, size, 0, extra, false, Some(network))
    }

    /// Starts `size` voting members configured as ZooKeeper 3.5+ writes them: zoo.cfg
    /// names a `dynamicConfigFile` (`zoo.cfg.dynamic.100000000`, version 0x100000000)
    /// holding the `server.N` lines with each member's client address.
    pub fn start_dynamic(size: usize, extra: &str) -> Ensemble {
        Ensemble::start_members(Kind::Zkrs, size, 0, extra, true, None)
    }

    fn start_members(
        kind: Kind,
        voters: usize,
        observers: usize,
        extra: &str,
        dynamic: bool,
        mut network: Option<&mut Network>,
    ) -> Ensemble {
        let size = voters + observers;
        let injected_faults = network.is_some() && kind == Kind::Zkrs;
        let ports = free_ports(3 * size);
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        // The server lines member `me` reads: its own ports, and the others' as it
        // reaches them (through a proxy when the test partitions the network).
        let mut servers_for = |me: usize| -> String {
            (0..size)
                .map(|i| {
                    let role = if i < voters { "" } else { ":observer" };
                    let (mut quorum, mut election) = (ports[3 * i + 1], ports[3 * i + 2]);
                    if let Some(network) = network.as_deref_mut().filter(|_| i != me) {
                        quorum = network.route(me, i, local(quorum)).port();
                        election = network.route(me, i, local(election)).port();
                    }
                    let client = if dynamic {
                        format!(";127.0.0.1:{}", ports[3 * i])
                    } else {
                        String::new()
                    };
                    format!("server.{}=127.0.0.1:{quorum}:{election}{role}{client}\n", i + 1)
                })
                .collect()
        };
        let mut ensemble = Ensemble {
            kind,
            members: Vec::new(),
            last_logs: vec![String::new(); size],
            dirs: Vec::new(),
            configs: Vec::new(),
            addresses: Vec::new(),
            injected_faults,
        };
        for i in 0..size {
            let servers = servers_for(i);
            let dir = scratch_dir(&format!("member{}", i + 1));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
            let membership = if dynamic {
                let file = dir.join("zoo.cfg.dynamic.100000000");
                std::fs::write(&file, &servers).expect("dynamic config file");
                format!("dynamicConfigFile={}\n", file.display())
            } else {
                format!("clientPort={}\nclientPortAddress=127.0.0.1\n{servers}", ports[3 * i])
            };
            let config = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nadmin.enableServer=false\nmaxClientCnxns=0\n\
                 4lw.commands.whitelist=*\n{membership}{extra}\n",
                data.display(),
            );
            ensemble.addresses.push(SocketAddr::from(([127, 0, 0, 1], ports[3 * i])));
            ensemble.dirs.push(dir);
            ensemble.configs.push(config);
            ensemble.members.push(None);
        }
        for i in 0..size {
            ensemble.restart(i);
        }
        ensemble
    }

    /// Starts member `i` (again) on its data.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].is_none(), "member {} is running", i + 1);
        let member = match self.kind {
            Kind::Zkrs => {
                let control = self.storage_fault_control(i).to_string_lossy().into_owned();
                let clock = self.clock_control(i).to_string_lossy().into_owned();
                let envs: &[(&str, &str)] = if self.injected_faults {
                    assert!(
                        std::path::Path::new(LIBFAKETIME).exists(),
                        "{LIBFAKETIME} is missing: apt-get install faketime (scripts/test does)"
                    );
                    if !self.clock_control(i).exists() {
                        std::fs::write(self.clock_control(i), "+0").expect("the clock file");
                    }
                    &[
                        ("ZKRS_INJECT_STORAGE_FAULTS", &control),
                        ("LD_PRELOAD", LIBFAKETIME),
                        ("FAKETIME_TIMESTAMP_FILE", &clock),
                        ("FAKETIME_CACHE_DURATION", "1"),
                        ("DONT_FAKE_MONOTONIC", "1"),
                    ]
                } else {
                    &[]
                };
                Member::Zkrs(ServerProcess::start_with_environment(
                    self.dirs[i].clone(),
                    &self.configs[i],
                    true,
                    envs,
                ))
            }
            Kind::ZooKeeper => {
                let data = self.dirs[i].join("data");
                let id = u64::try_from(i + 1).expect("a member id");
                let port = self.addresses[i].port();
                let member =
                    ReferenceZooKeeper::spawn_member_on(Some(&data), id, port, &self.configs[i]);
                Member::ZooKeeper(member)
            }
        };
        self.members[i] = Some(member);
    }

    fn storage_fault_control(&self, i: usize) -> PathBuf {
        self.dirs[i].join("storage-faults")
    }

    fn clock_control(&self, i: usize) -> PathBuf {
        self.dirs[i].join("clock")
    }

    /// Gives member `i`'s store the fault `fault` (`slow MS`, `fail`, `full`; empty for
    /// none), in an ensemble started with a network to fault.
    pub fn inject_storage_fault(&self, i: usize, fault: &str) {
        assert!(self.injected_faults, "this ensemble's members take no injected faults");
        std::fs::write(self.storage_fault_control(i), fault).expect("write the control file");
    }

    /// Sets member `i`'s wall clock `offset` from the machine's (`+300s`, `-1h`, `+0`),
    /// as libfaketime reads it, within a second; its monotonic clock runs on untouched,
    /// as an NTP step leaves it.
    pub fn set_clock_offset(&self, i: usize, offset: &str) {
        assert!(self.injected_faults, "this ensemble's members take no injected faults");
        std::fs::write(self.clock_control(i), offset).expect("write the clock file");
    }

    /// If member `i` has exited, forgets its process (so it can be restarted) and returns
    /// its log.
    pub fn reap(&mut self, i: usize) -> Option<String> {
        if !self.has_died(i) {
            return None;
        }
        self.take(i);
        Some(self.last_logs[i].clone())
    }

    /// Takes member `i`'s process out of the ensemble, keeping its log.
    fn take(&mut self, i: usize) -> Option<Member> {
        self.last_logs[i] = self.log(i);
        self.members[i].take()
    }

    /// Kills member `i` with SIGKILL (a ZooKeeper member is killed when dropped).
    pub fn kill(&mut self, i: usize) {
        if let Some(Member::Zkrs(process)) = self.take(i) {
            process.kill();
        }
    }

    /// Stops member `i` with SIGTERM, checking it exits cleanly (a ZooKeeper member is
    /// killed).
    pub fn terminate(&mut self, i: usize) {
        if let Some(Member::Zkrs(process)) = self.take(i) {
            process.terminate();
        }
    }

    /// Whether member `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].is_some()
    }

    /// Member `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].as_ref().map(Member::pid)
    }

    /// Whether member `i` was started and its process has ended since, without the test
    /// stopping it.
    pub fn has_died(&mut self, i: usize) -> bool {
        self.members[i].as_mut().is_some_and(|member| !member.is_running())
    }

    /// Creates `path` through member `from` and checks that member `to` reads it back
    /// after a `sync`.
    pub async fn assert_replicated(&self, from: usize, to: usize, path: &str) {
        let mut writer = self.connect(from).await;
        assert_eq!(writer.create(path, b"replicated", 0).await.as_deref(), Ok(path));
        let mut reader = self.connect(to).await;
        reader.call(OpCode::Sync, &SyncRequest { path: path.into() }).await;
        let (data, _) = reader.get_data(path, false).await.expect("replicated");
        assert_eq!(data.as_deref(), Some(&b"replicated"[..]));
    }

    /// Waits until member `i`'s log holds `needle`.
    pub fn wait_for_log(&self, i: usize, needle: &str) {
        let deadline = Instant::now() + ELECTION_WAIT * 2;
        while !self.log(i).contains(needle) {
            assert!(Instant::now() < deadline, "no \"{needle}\" in:\n{}", self.log(i));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Adds `lines` to member `i`'s zoo.cfg for its next start (a later line of a key
    /// wins, as in Java's `Properties`).
    pub fn append_config(&mut self, i: usize, lines: &str) {
        self.configs[i].push_str(lines);
        self.configs[i].push('\n');
    }

    /// Member `i`'s quorum and election addresses, from its `server.N` line.
    pub fn peer_addresses(&self, i: usize) -> (SocketAddr, SocketAddr) {
        let prefix = format!("server.{}=127.0.0.1:", i + 1);
        let line = self.configs[i]
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .expect("a server line");
        let mut ports =
            line.split([':', ';']).take(2).map(|port| port.parse::<u16>().expect("a port"));
        let mut address = || SocketAddr::from(([127, 0, 0, 1], ports.next().expect("a port")));
        (address(), address())
    }

    /// Member `i`'s log so far (its last process's, while it is stopped).
    pub fn log(&self, i: usize) -> String {
        match (&self.members[i], self.kind) {
            (Some(Member::ZooKeeper(process)), _) => process.log(),
            (None, Kind::ZooKeeper) => self.last_logs[i].clone(),
            _ => std::fs::read_to_string(self.dirs[i].join("server.log")).unwrap_or_default(),
        }
    }

    /// Member `i`'s mode as `srvr` reports it, if it answers.
    pub fn mode(&self, i: usize) -> Option<String> {
        if !self.is_running(i) {
            return None;
        }
        let text = four_letter(self.addresses[i], "srvr")?;
        text.lines().find_map(|line| line.strip_prefix("Mode: ").map(str::to_owned))
    }

    /// The running members' modes, for failure messages.
    pub fn modes(&self) -> Vec<Option<String>> {
        (0..self.members.len()).map(|i| self.mode(i)).collect()
    }

    /// Waits until a leader serves and every other running member follows (or observes)
    /// it; returns the leader.
    pub fn wait_until_settled(&self) -> usize {
        let deadline = Instant::now() + ELECTION_WAIT;
        loop {
            let modes = self.modes();
            let leaders: Vec<usize> =
                (0..modes.len()).filter(|i| modes[*i].as_deref() == Some("leader")).collect();
            let all_serving = (0..modes.len()).all(|i| {
                !self.is_running(i)
                    || matches!(modes[i].as_deref(), Some("leader" | "follower" | "observer"))
            });
            if leaders.len() == 1 && all_serving {
                return leaders[0];
            }
            assert!(Instant::now() < deadline, "no settled leader: {modes:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of member `i` (a new session with a 10 s timeout), retrying while the
    /// member does not serve yet.
    pub async fn connect(&self, i: usize) -> Client {
        let deadline = Instant::now() + ELECTION_WAIT * 2;
        loop {
            let handshake = Handshake { timeout_ms: 10_000, ..Handshake::default() };
            if let Ok(client) = Client::handshake(self.addresses[i], handshake).await {
                if client.session_id != 0 {
                    return client;
                }
            }
            assert!(
                Instant::now() < deadline,
                "member {} does not serve: {:?}",
                i + 1,
                self.modes()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The members' client addresses, for writers under load.
    pub fn members(&self) -> super::load::Members {
        std::sync::Arc::new(parking_lot::Mutex::new(self.addresses.clone()))
    }

    /// All members' client addresses as a connect string.
    pub fn connect_string(&self) -> String {
        self.addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for member in &mut self.members {
            drop(member.take());
        }
        if !std::thread::panicking() {
            for dir in &self.dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Sends a four-letter word and returns the answer, if the member answers.
pub fn four_letter(address: SocketAddr, word: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}
