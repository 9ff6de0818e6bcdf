//! Starts Apache ZooKeeper 3.8 (Debian's package) as a reference server for
//! differential tests.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jute::records::ExistsRequest;
use jute::OpCode;

use super::client::{Client, Empty, Handshake};
use super::server::scratch_dir;

/// Jars that make up a runnable ZooKeeper server (the package's manifest pulls in the
/// rest, but for the two Netty jars its TLS code needs, which Debian's manifest leaves
/// out).
const CLASSPATH: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-simple.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
];

/// A running reference ZooKeeper; killed when dropped.
pub struct ReferenceZooKeeper {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its `dataDir`.
    pub data_dir: std::path::PathBuf,
    /// Its zoo.cfg.
    pub config: std::path::PathBuf,
}

/// Keeps a ZooKeeper 3.8.0 quorum member's request pipeline from stalling while a test
/// talks to it.
///
/// Debian's ZooKeeper is 3.8.0, whose CommitProcessor can go to sleep just after a
/// request or a commit arrived and miss its wake-up (ZOOKEEPER-4537, fixed in 3.8.1):
/// that request, and any behind it, then waits for the next one to arrive. A member
/// that serves one test client at a time can so leave a reply or a pong unsent for good
/// (seen in CI and here, about one run of the differential tests in ten, always with a
/// follower). This session asks `exists /` five times a second, as the other clients of
/// a busy ensemble would, so such a stall lasts a fifth of a second. It sets no watch
/// and writes nothing: no other session's replies or notifications change, and the
/// zxid moves only once, when its session is created. Stops when dropped.
pub struct StallBreaker {
    task: tokio::task::JoinHandle<()>,
}

/// How often a [`StallBreaker`] sends its read.
const STALL_BREAK_INTERVAL: Duration = Duration::from_millis(200);

impl StallBreaker {
    /// Opens its session on the member at `address` and starts asking.
    ///
    /// # Panics
    /// If the member grants no session in three tries (each new connection is itself
    /// the arrival that ends a stall of the one before).
    pub async fn start(address: SocketAddr) -> StallBreaker {
        let mut session = None;
        for _ in 0..3 {
            if let Ok(client) = Client::try_connect(address).await {
                session = Some(client);
                break;
            }
        }
        let mut client = session.expect("a session for the stall breaker");
        let task = tokio::spawn(async move {
            let root = ExistsRequest { path: "/".into(), watch: false };
            loop {
                let _ = client.try_call(OpCode::Exists, &root, Duration::from_secs(1)).await;
                tokio::time::sleep(STALL_BREAK_INTERVAL).await;
            }
        });
        StallBreaker { task }
    }
}

impl Drop for StallBreaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the ports tests hand out start: below Linux's ephemeral range (32768 and up),
/// from which the system picks the local port of every outgoing connection. A port
/// taken from that range by binding port 0 may be the local end of some member's
/// connection by the time a server binds it.
const PORTS_FROM: u16 = 12_000;
/// How many ports there are to hand out.
const PORTS: u16 = 20_000;

/// A port nothing listens on now, outside the ephemeral range, and not handed out
/// before in this process (each test process starts at a place its id picks).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7919) % u32::from(PORTS);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        start,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    for _ in 0..PORTS {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % u32::from(PORTS);
        let port = PORTS_FROM + u16::try_from(offset).expect("below PORTS");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {PORTS_FROM} and {}", PORTS_FROM + PORTS);
}

impl ReferenceZooKeeper {
    /// Starts ZooKeeper with `extra` appended to its zoo.cfg and `properties` as `-D` flags.
    ///
    /// # Panics
    /// If ZooKeeper is not installed: the test suite needs it (`scripts/test` installs it).
    pub async fn start(extra: &str, properties: &[&str]) -> ReferenceZooKeeper {
        let zookeeper = ReferenceZooKeeper::launch(None, None, None, extra, properties);
        zookeeper.wait_until_serving().await;
        zookeeper
    }

    /// Starts ZooKeeper as the member `my_id` of the ensemble whose `server.N` lines
    /// (and other settings) `extra` gives, and waits until it serves (it needs a quorum
    /// of those members for that).
    pub async fn start_member(my_id: u64, extra: &str, properties: &[&str]) -> ReferenceZooKeeper {
        let zookeeper = ReferenceZooKeeper::launch(Some(my_id), None, None, extra, properties);
        zookeeper.wait_until_serving().await;
        zookeeper
    }

    /// Starts ZooKeeper as the member `my_id`, as [`ReferenceZooKeeper::start_member`],
    /// without waiting: the rest of its quorum is the caller's to provide.
    pub fn spawn_member(my_id: u64, extra: &str, properties: &[&str]) -> ReferenceZooKeeper {
        ReferenceZooKeeper::launch(Some(my_id), None, None, extra, properties)
    }

    /// Starts ZooKeeper as the member `my_id` serving clients on `client_port`, on the
    /// data already in `data_dir` if given (a restart, or data `zkrs export` wrote),
    /// without waiting.
    pub fn spawn_member_on(
        data_dir: Option<&Path>,
        my_id: u64,
        client_port: u16,
        extra: &str,
    ) -> ReferenceZooKeeper {
        ReferenceZooKeeper::launch(Some(my_id), data_dir, Some(client_port), extra, &[])
    }

    fn launch(
        my_id: Option<u64>,
        data_dir: Option<&Path>,
        client_port: Option<u16>,
        extra: &str,
        properties: &[&str],
    ) -> ReferenceZooKeeper {
        for jar in CLASSPATH {
            assert!(
                Path::new(jar).exists(),
                "{jar} is missing: the differential tests need Apache ZooKeeper 3.8 \
                 (apt-get install zookeeper libslf4j-java, or run scripts/test)"
            );
        }
        let dir = scratch_dir("zookeeper");
        let data = data_dir.map_or_else(|| dir.join("data"), Path::to_path_buf);
        if let Some(my_id) = my_id {
            std::fs::create_dir_all(&data).expect("dataDir");
            std::fs::write(data.join("myid"), format!("{my_id}\n")).expect("myid");
        }
        let port = client_port.unwrap_or_else(free_port);
        let config = dir.join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
                 4lw.commands.whitelist=*\nextendedTypesEnabled=true\nadmin.enableServer=false\n{extra}\n",
                data.display()
            ),
        )
        .expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("zookeeper.log")).expect("log");
        let child = Command::new("java")
            .args([
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false",
            ])
            .args(properties)
            .arg("-cp")
            .arg(CLASSPATH.join(":"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("java is required for the differential tests");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        ReferenceZooKeeper { child, address, data_dir: data, config }
    }

    /// Waits until ZooKeeper opens and closes a session. Both are asked: a leader
    /// just elected has been seen (in CI) to grant a session and then drop the
    /// connection without answering its close, so a handshake alone does not yet
    /// mean it serves.
    ///
    /// # Panics
    /// If it does not within a minute.
    pub async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let handshake = Handshake { timeout_ms: 5000, ..Handshake::default() };
            if let Ok(mut client) = Client::handshake(self.address, handshake).await {
                let closed = client
                    .try_call(OpCode::CloseSession, &Empty, Duration::from_secs(5))
                    .await
                    .is_some_and(|reply| reply.header.err == 0);
                if client.session_id != 0 && closed {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start; see {}",
                self.config.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl ReferenceZooKeeper {
    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the JVM still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        let log = self.config.with_file_name("zookeeper.log");
        std::fs::read_to_string(log).unwrap_or_default()
    }
}

impl Drop for ReferenceZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
