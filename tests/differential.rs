//! Differential test: the same seeded random operations go to Apache ZooKeeper 3.8 and to
//! zkrs; every reply and every watch notification must match after normalising what may
//! legitimately differ (absolute zxids and times, session ids, child-list order).
//!
//! `ZKRS_DIFF_SEEDS` (default 12) and `ZKRS_DIFF_OPS` (default 250) size a run;
//! `ZKRS_SEED=n` replays one seed.

mod support;

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use jute::records::*;
use jute::{OpCode, Reader, Record};
use support::client::{Client, Empty, Handshake, Incoming};
use support::rng::Rng;
use support::server::{scratch_dir, ServerProcess};
use support::zookeeper::{free_port, ReferenceZooKeeper, StallBreaker};

const SESSIONS: usize = 3;

/// The timeout every session asks for, and the most both servers grant: a step's sessions
/// on one side sit idle while the other side answers, which on two loaded cores (four
/// JVMs beside zkrs) once took past ZooKeeper's default ceiling of 20 ticks, 10 s, and
/// expired an idle session mid-run. A minute outlasts the longest wait the test allows.
const SESSION_TIMEOUT_MS: i32 = 60_000;

/// zkrs's setting that keeps empty containers for the whole run, so that a reaping at a
/// different moment on each side cannot tell them apart ...
const NO_REAPING: &str = "znode.container.checkIntervalMs=3600000";

/// ... and ZooKeeper's, which reads it as a system property only.
const NO_REAPING_PROPERTY: &str = "-Dznode.container.checkIntervalMs=3600000";

/// One step of a scenario.
enum Step {
    /// A request, sent byte for byte to both servers on the same session.
    Request { session: usize, op: OpCode, body: Bytes, description: String },
    /// Close a session and open a new one in its place.
    Reconnect { session: usize },
}

struct Generator<'a> {
    rng: &'a mut Rng,
    prefix: String,
}

impl Generator<'_> {
    fn path(&mut self) -> String {
        let prefix = self.prefix.clone();
        match self.rng.below(100) {
            0 => format!("{prefix}/a/"),
            1 => format!("{prefix}//a"),
            2 => "relative".into(),
            3 => format!("{prefix}/a/."),
            4 => prefix,
            _ => {
                let depth = 1 + self.rng.below(3);
                let mut path = prefix;
                for _ in 0..depth {
                    let name =
                        *self.rng.pick(&["a", "b", "c", "s-0000000000", "s-0000000001", "e"]);
                    path.push('/');
                    path.push_str(name);
                }
                path
            }
        }
    }

    fn data(&mut self) -> Option<Bytes> {
        match self.rng.below(5) {
            0 => None,
            1 => Some(Bytes::new()),
            2 => Some(Bytes::from_static(b"hello")),
            _ => Some(
                (0..self.rng.below(16))
                    .map(|_| self.rng.below(256) as u8)
                    .collect::<Vec<u8>>()
                    .into(),
            ),
        }
    }

    fn acl(&mut self) -> Vec<Acl> {
        let entry = |perms: i32, scheme: &str, id: &str| Acl {
            perms,
            id: Id { scheme: scheme.into(), id: id.into() },
        };
        match self.rng.below(12) {
            0 => vec![entry(1, "world", "anyone")],
            1 => vec![entry(31, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")],
            2 => vec![entry(self.rng.below(32) as i32, "auth", "")],
            3 => vec![entry(31, "digest", "nocolon")],
            4 => Vec::new(),
            5 => vec![entry(31, "ip", "127.0.0.1")],
            6 => vec![entry(31, "ip", "10.0.0.0/8"), entry(1, "world", "anyone")],
            7 => vec![entry(31, "world", "someone")],
            8 => vec![
                entry(3, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
                entry(3, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
            ],
            _ => vec![entry(31, "world", "anyone")],
        }
    }

    fn flags(&mut self) -> i32 {
        match self.rng.below(20) {
            0 => 7,
            1 => -1,
            _ => self.rng.below(7) as i32,
        }
    }

    fn version(&mut self) -> i32 {
        if self.rng.chance(60) {
            -1
        } else {
            self.rng.below(4) as i32
        }
    }

    fn create(&mut self) -> CreateRequest {
        CreateRequest { path: self.path(), data: self.data(), acl: self.acl(), flags: self.flags() }
    }

    fn ttl_create(&mut self) -> CreateTtlRequest {
        let flags = if self.rng.chance(70) { 5 + self.rng.below(2) as i32 } else { self.flags() };
        // A createTTL with a non-TTL mode and a negative TTL kills ZooKeeper 3.8 (it
        // fails while applying the txn); zkrs answers BadArguments instead.
        let ttl = if (5..=6).contains(&flags) {
            *self.rng.pick(&[-1i64, 0, 1, 3_600_000, 1 << 41])
        } else {
            *self.rng.pick(&[0i64, 1, 3_600_000])
        };
        CreateTtlRequest { path: self.path(), data: self.data(), acl: self.acl(), flags, ttl }
    }

    fn multi_op(&mut self) -> MultiOp {
        match self.rng.below(6) {
            0 | 1 => {
                MultiOp::Create { op_type: *self.rng.pick(&[1, 15, 19]), request: self.create() }
            }
            2 => MultiOp::Delete(DeleteRequest { path: self.path(), version: self.version() }),
            3 => MultiOp::SetData(SetDataRequest {
                path: self.path(),
                data: self.data(),
                version: self.version(),
            }),
            4 => MultiOp::Check(CheckVersionRequest { path: self.path(), version: self.version() }),
            _ => MultiOp::CreateTtl(self.ttl_create()),
        }
    }

    fn step(&mut self) -> Step {
        let session = self.rng.below(SESSIONS as u64) as usize;
        if self.rng.chance(2) {
            return Step::Reconnect { session };
        }
        let watch = self.rng.chance(50);
        let (op, body, description) = match self.rng.below(24) {
            0..=3 => {
                let op = *self.rng.pick(&[
                    OpCode::Create,
                    OpCode::Create,
                    OpCode::Create2,
                    OpCode::CreateContainer,
                ]);
                request(op, self.create())
            }
            4 => request(OpCode::CreateTtl, self.ttl_create()),
            5 | 6 => request(
                OpCode::Delete,
                DeleteRequest { path: self.path(), version: self.version() },
            ),
            7 | 8 => {
                let request_body = SetDataRequest {
                    path: self.path(),
                    data: self.data(),
                    version: self.version(),
                };
                request(OpCode::SetData, request_body)
            }
            9 | 10 => request(OpCode::GetData, GetDataRequest { path: self.path(), watch }),
            11 => request(OpCode::Exists, ExistsRequest { path: self.path(), watch }),
            12 => {
                let op = *self.rng.pick(&[OpCode::GetChildren, OpCode::GetChildren2]);
                request(op, GetChildrenRequest { path: self.path(), watch })
            }
            13 => request(OpCode::GetAcl, GetAclRequest { path: self.path() }),
            14 => {
                let request_body =
                    SetAclRequest { path: self.path(), acl: self.acl(), version: self.version() };
                request(OpCode::SetAcl, request_body)
            }
            15 | 16 => {
                let count = 1 + self.rng.below(4);
                request(
                    OpCode::Multi,
                    MultiRequest { ops: (0..count).map(|_| self.multi_op()).collect() },
                )
            }
            17 => {
                let ops = (0..1 + self.rng.below(3))
                    .map(|_| {
                        let path = self.path();
                        if self.rng.chance(50) {
                            MultiOp::GetData(GetDataRequest { path, watch: false })
                        } else {
                            MultiOp::GetChildren(GetChildrenRequest { path, watch: false })
                        }
                    })
                    .collect();
                request(OpCode::MultiRead, MultiRequest { ops })
            }
            18 => {
                let mode = self.rng.below(3) as i32;
                request(OpCode::AddWatch, AddWatchRequest { path: self.path(), mode })
            }
            19 => {
                let op = *self.rng.pick(&[OpCode::CheckWatches, OpCode::RemoveWatches]);
                let watcher_type = 1 + self.rng.below(3) as i32;
                request(op, CheckWatchesRequest { path: self.path(), watcher_type })
            }
            20 => request(
                OpCode::GetAllChildrenNumber,
                GetAllChildrenNumberRequest { path: self.path() },
            ),
            21 => request(
                OpCode::GetEphemerals,
                GetEphemeralsRequest { prefix_path: self.prefix.clone() },
            ),
            22 => {
                let user = *self.rng.pick(&["alice:secret", "bob:x"]);
                let auth =
                    AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Bytes::from(user) };
                request(OpCode::Auth, auth)
            }
            _ => request(OpCode::Sync, SyncRequest { path: self.path() }),
        };
        Step::Request { session, op, body, description }
    }
}

/// Encodes a request body and describes it for failure messages.
fn request<T: Record + std::fmt::Debug>(op: OpCode, body: T) -> (OpCode, Bytes, String) {
    let mut bytes = BytesMut::new();
    body.write(&mut bytes);
    (op, bytes.freeze(), format!("{op:?} {body:?}"))
}

/// One server's side of the comparison.
struct Side {
    /// Which server this is, for failure messages.
    name: &'static str,
    address: std::net::SocketAddr,
    clients: Vec<Client>,
    /// Session id → stable label ("S0", "S1", ...).
    labels: HashMap<i64, String>,
    next_label: usize,
    base_zxid: i64,
}

impl Side {
    async fn open(name: &'static str, address: std::net::SocketAddr) -> Side {
        let mut side = Side {
            name,
            address,
            clients: Vec::new(),
            labels: HashMap::new(),
            next_label: 0,
            base_zxid: 0,
        };
        for _ in 0..SESSIONS {
            let client = side.connect().await;
            side.clients.push(client);
        }
        let ping = side.clients[0].call(OpCode::Sync, &SyncRequest { path: "/".into() }).await;
        side.base_zxid = ping.header.zxid;
        side
    }

    async fn connect(&mut self) -> Client {
        let handshake = Handshake {
            timeout_ms: SESSION_TIMEOUT_MS,
            read_only_flag: true,
            ..Handshake::default()
        };
        let client = Client::handshake(self.address, handshake).await.expect("handshake");
        assert_eq!(client.timeout_ms, SESSION_TIMEOUT_MS, "{}: the session timeout", self.name);
        self.labels.insert(client.session_id, format!("S{}", self.next_label));
        self.next_label += 1;
        client
    }

    fn zxid(&self, zxid: i64) -> i64 {
        if zxid <= 0 {
            zxid
        } else {
            zxid - self.base_zxid
        }
    }

    fn stat(&self, stat: &mut Stat) {
        stat.czxid = self.zxid(stat.czxid);
        stat.mzxid = self.zxid(stat.mzxid);
        stat.pzxid = self.zxid(stat.pzxid);
        stat.ctime = 0;
        stat.mtime = 0;
        if stat.ephemeral_owner != 0 {
            stat.ephemeral_owner = self
                .labels
                .get(&stat.ephemeral_owner)
                .map_or(-1, |label| label[1..].parse().unwrap_or(-1));
        }
    }

    fn reply(&self, op: OpCode, reply: &Incoming) -> String {
        let zxid = self.zxid(reply.header.zxid);
        let mut out = format!("xid={} zxid={zxid} err={}", reply.header.xid, reply.header.err);
        if reply.header.err != 0 || reply.body.is_empty() {
            return out;
        }
        let reader = &mut Reader::new(&reply.body);
        let body = match op {
            OpCode::Create => show(reader, |_: &mut CreateResponse| {}),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                show(reader, |r: &mut Create2Response| self.stat(&mut r.stat))
            }
            OpCode::SetData => show(reader, |r: &mut SetDataResponse| self.stat(&mut r.stat)),
            OpCode::SetAcl => show(reader, |r: &mut SetAclResponse| self.stat(&mut r.stat)),
            OpCode::GetData => show(reader, |r: &mut GetDataResponse| self.stat(&mut r.stat)),
            OpCode::Exists => show(reader, |r: &mut ExistsResponse| self.stat(&mut r.stat)),
            OpCode::GetAcl => show(reader, |r: &mut GetAclResponse| self.stat(&mut r.stat)),
            OpCode::GetChildren => show(reader, |r: &mut GetChildrenResponse| r.children.sort()),
            OpCode::GetChildren2 => show(reader, |r: &mut GetChildren2Response| {
                r.children.sort();
                self.stat(&mut r.stat);
            }),
            OpCode::Multi | OpCode::MultiRead => show(reader, |r: &mut MultiResponse| {
                for result in &mut r.results {
                    match result {
                        MultiResult::Create2 { stat, .. }
                        | MultiResult::SetData(stat)
                        | MultiResult::GetData { stat, .. } => self.stat(stat),
                        MultiResult::GetChildren(children) => children.sort(),
                        _ => {}
                    }
                }
            }),
            OpCode::GetEphemerals => {
                show(reader, |r: &mut GetEphemeralsResponse| r.ephemerals.sort())
            }
            OpCode::GetAllChildrenNumber => show(reader, |_: &mut GetAllChildrenNumberResponse| {}),
            OpCode::Sync => show(reader, |_: &mut SyncResponse| {}),
            OpCode::AddWatch => show(reader, |_: &mut ErrorResponse| {}),
            OpCode::WhoAmI => show(reader, |_: &mut WhoAmIResponse| {}),
            _ => format!("{:?}", reply.body),
        };
        let _ = write!(out, " {body}");
        out
    }

    /// Pings every session and returns the notifications each received before the pong.
    async fn drain_events(&mut self, sort: bool) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for (index, client) in self.clients.iter_mut().enumerate() {
            client.send_with_xid(-2, OpCode::Ping, &Empty).await;
            let mut events = Vec::new();
            let mut waits = 0;
            loop {
                // A ping waits behind the session's requests in flight, which on two
                // loaded cores (ZooKeeper JVMs beside zkrs) once took past one wait.
                let frame = match client.next_frame().await {
                    Ok(frame) => frame,
                    Err(err) if err.kind() == std::io::ErrorKind::TimedOut && waits < 2 => {
                        waits += 1;
                        eprintln!("{} S{index}: no pong yet after {waits} waits", self.name);
                        continue;
                    }
                    Err(err) => panic!("{} S{index}: no pong: {err}", self.name),
                };
                match frame.event() {
                    Some(event) => {
                        events.push(format!("{} {} {}", event.event_type, event.state, event.path))
                    }
                    None => {
                        assert_eq!(
                            frame.header.xid, -2,
                            "only the pong may follow the notifications"
                        );
                        break;
                    }
                }
            }
            if sort {
                events.sort();
            }
            all.push(events);
        }
        all
    }

    async fn run(&mut self, step: &Step, xid: i32) -> String {
        match step {
            Step::Request { session, op, body, .. } => {
                let client = &mut self.clients[*session];
                client.send_with_xid(xid, *op, &RawBody(body.clone())).await;
                let reply = client.reply(xid).await;
                self.reply(*op, &reply)
            }
            Step::Reconnect { session } => {
                let new_client = self.connect().await;
                let old = std::mem::replace(&mut self.clients[*session], new_client);
                old.close().await;
                "reconnected".into()
            }
        }
    }
}

/// Decodes a reply body, normalises it, and prints it for comparison.
fn show<T: Record + std::fmt::Debug>(
    reader: &mut Reader<'_>,
    normalise: impl FnOnce(&mut T),
) -> String {
    match T::read(reader) {
        Ok(mut value) => {
            normalise(&mut value);
            format!("{value:?}")
        }
        Err(err) => format!("undecodable: {err}"),
    }
}

struct RawBody(Bytes);

impl Record for RawBody {
    const MIN_LEN: usize = 0;
    fn read_as(_: &mut Reader<'_>, _: &'static str) -> Result<Self, jute::DecodeError> {
        unreachable!("only written")
    }
    fn write(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.0);
    }
}

async fn four_letter(address: std::net::SocketAddr, word: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(word.as_bytes()).await.expect("send");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out
}

/// Runs seed `seed`'s `ops` steps against ZooKeeper at `reference` and zkrs at
/// `candidate`, comparing every reply and notification.
async fn run_seed(seed: u64, ops: usize, reference: SocketAddr, candidate: SocketAddr) {
    let mut rng = Rng(seed);
    let prefix = format!("/d{seed}");
    let mut zookeeper = Side::open("zookeeper", reference).await;
    let mut zkrs = Side::open("zkrs", candidate).await;
    for side in [&mut zookeeper, &mut zkrs] {
        assert_eq!(side.clients[0].create(&prefix, b"", 0).await, Ok(prefix.clone()));
    }
    let mut generator = Generator { rng: &mut rng, prefix: prefix.clone() };
    for index in 0..ops {
        let step = generator.step();
        let xid = i32::try_from(index).unwrap_or(0) + 10;
        let what = match &step {
            Step::Request { session, description, .. } => format!("S{session}: {description}"),
            Step::Reconnect { session } => format!("reconnect S{session}"),
        };
        let trace = std::env::var_os("ZKRS_DIFF_TRACE").is_some();
        if trace {
            eprintln!("step {index}: {what}");
        }
        let expected = zookeeper.run(&step, xid).await;
        let got = zkrs.run(&step, xid).await;
        if trace {
            eprintln!("  -> {expected}");
        }
        assert_eq!(
            got, expected,
            "seed {seed} step {index}: {what}\n(replay with ZKRS_SEED={seed})"
        );
        let reconnect = matches!(step, Step::Reconnect { .. });
        let expected_events = zookeeper.drain_events(reconnect).await;
        let got_events = zkrs.drain_events(reconnect).await;
        if std::env::var_os("ZKRS_DIFF_TRACE").is_some()
            && expected_events.iter().any(|e| !e.is_empty())
        {
            eprintln!("  events {expected_events:?}");
        }
        if got_events != expected_events {
            for (name, address) in [("zookeeper", reference), ("zkrs", candidate)] {
                eprintln!("{name} wchc:\n{}", four_letter(address, "wchc").await);
            }
        }
        assert_eq!(
            got_events, expected_events,
            "seed {seed} step {index}: notifications after {what}"
        );
    }
    for side in [zookeeper, zkrs] {
        for client in side.clients {
            client.close().await;
        }
    }
}

/// How many seeds of how many steps a run takes: `ZKRS_DIFF_SEEDS` and `ZKRS_DIFF_OPS`,
/// or the one seed `ZKRS_SEED`.
fn seeds_and_ops(default_seeds: u64) -> (Vec<u64>, usize) {
    let env = |name: &str, default: u64| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let ops = env("ZKRS_DIFF_OPS", 250) as usize;
    let seeds: Vec<u64> = match std::env::var("ZKRS_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(seed) => vec![seed],
        None => (1..=env("ZKRS_DIFF_SEEDS", default_seeds)).collect(),
    };
    (seeds, ops)
}

#[tokio::test]
async fn random_operations_match_zookeeper() {
    let longest = format!("maxSessionTimeout={SESSION_TIMEOUT_MS}\n");
    let reference = ReferenceZooKeeper::start(&longest, &[NO_REAPING_PROPERTY]).await;
    let candidate = ServerProcess::start(&format!("{NO_REAPING}\n{longest}"));
    let (seeds, ops) = seeds_and_ops(12);
    for seed in seeds {
        run_seed(seed, ops, reference.address, candidate.address).await;
    }
}

/// The `server.N` lines of a two-voter ensemble on fresh ports, and the settings its
/// members share.
fn two_voters() -> String {
    let mut lines = format!("initLimit=10\nsyncLimit=5\nmaxSessionTimeout={SESSION_TIMEOUT_MS}\n");
    for id in 1..=2 {
        lines.push_str(&format!("server.{id}=127.0.0.1:{}:{}\n", free_port(), free_port()));
    }
    lines
}

/// A client cannot tell a zkrs member of a ZooKeeper ensemble from a ZooKeeper member:
/// two ensembles of two voters, each led by a ZooKeeper member (the higher id), one
/// followed by ZooKeeper and the other by zkrs, get the same operations through their
/// followers, and every reply and notification matches.
#[tokio::test]
async fn a_zkrs_follower_of_zookeeper_answers_as_a_zookeeper_follower_does() {
    follower_matches_zookeepers("").await;
}

/// The same under `zkrs.linearizableReads`: the zkrs follower's reads wait for barrier
/// rounds its ZooKeeper leader confirms as syncs, and still every reply and
/// notification, in order, is ZooKeeper's.
#[tokio::test]
async fn a_zkrs_follower_with_linearizable_reads_answers_as_a_zookeeper_follower_does() {
    follower_matches_zookeepers("zkrs.linearizableReads=true").await;
}

/// Runs the differential seeds through a ZooKeeper follower and a zkrs follower (with
/// `extra` in its zoo.cfg), each of a ZooKeeper leader.
async fn follower_matches_zookeepers(extra: &str) {
    let property = NO_REAPING_PROPERTY;
    let all_zookeeper = two_voters();
    let zookeeper_follower = ReferenceZooKeeper::spawn_member(1, &all_zookeeper, &[property]);
    let _first_leader = ReferenceZooKeeper::start_member(2, &all_zookeeper, &[property]).await;
    zookeeper_follower.wait_until_serving().await;
    let _stall_breaker = StallBreaker::start(zookeeper_follower.address).await;
    let mixed = two_voters();
    let dir = scratch_dir("zkrs-follower");
    std::fs::create_dir_all(dir.join("data")).expect("dataDir");
    std::fs::write(dir.join("data/myid"), "1\n").expect("myid");
    let config = format!(
        "tickTime=500\ndataDir={}\nadmin.enableServer=false\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n\
         {NO_REAPING}\n{extra}\n{mixed}",
        dir.join("data").display()
    );
    let zkrs_follower = ServerProcess::start_with_config(dir, &config, false);
    let _second_leader = ReferenceZooKeeper::start_member(2, &mixed, &[property]).await;
    let (seeds, ops) = seeds_and_ops(4);
    for seed in seeds {
        run_seed(seed, ops, zookeeper_follower.address, zkrs_follower.address).await;
    }
}
