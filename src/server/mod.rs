//! The server: listener, connections, the write pipeline and the shell that drives it.
//!
//! Requests flow: [`client`] decodes a frame → reads run at once against the tree
//! ([`reads`]) unless an earlier write of the session is still in flight → writes go
//! to the [`driver`], the async shell that feeds the [`pipeline`], a synchronous state
//! machine that prepares, proposes, applies and answers them in zxid order, and does
//! the IO it asks for.

pub mod admin;
pub mod client;
pub mod client_frame;
pub mod connection_throttle;
pub mod driver;
pub mod four_letter;
pub mod handshake;
pub mod histogram;
pub mod listener;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod prometheus;
pub mod read_barrier;
pub mod reads;
pub mod registry;
pub mod request_queue;
pub mod request_throttle;
pub mod restore;
pub mod snapshotter;
pub mod socket_writer;
pub mod stats;
pub mod storage_writer;
pub mod transfer;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ensemble::link::stream::PeerSecurity;
use crate::session::password::initial_session_id;
use crate::session::SessionTracker;
use crate::storage::recovery::{recover, Replay};
use crate::storage::rocks::RocksStorage;
use crate::storage::Storage;
use crate::tree::Database;
use crate::txn::Zxid;

/// Standalone servers use this id in their session ids, as ZooKeeper does.
const STANDALONE_SERVER_ID: u64 = 1;

/// Capacity of the queue from connections to the driver; connections wait when it is full.
const DRIVER_QUEUE_CAPACITY: usize = 4096;

/// The server's two clocks: a monotonic one for timeouts, wall time for txn headers.
/// A manual clock moves only when told to, so tests and the simulator decide what time
/// the pipeline sees.
#[derive(Debug)]
pub struct Clock {
    source: ClockSource,
}

#[derive(Debug)]
enum ClockSource {
    System { start: Instant },
    Manual { now_ms: AtomicU64, wall_start_ms: u64 },
}

impl Clock {
    /// The system's clocks, monotonic time counted from now.
    pub fn system() -> Clock {
        Clock { source: ClockSource::System { start: Instant::now() } }
    }

    /// A clock at 0 that moves only by [`Clock::advance`]; wall time is `wall_start_ms`
    /// plus the time advanced.
    pub fn manual(wall_start_ms: u64) -> Clock {
        Clock { source: ClockSource::Manual { now_ms: AtomicU64::new(0), wall_start_ms } }
    }

    /// Moves a manual clock forward by `ms`; the system clock moves by itself, so on it
    /// this does nothing.
    pub fn advance(&self, ms: u64) {
        if let ClockSource::Manual { now_ms, .. } = &self.source {
            now_ms.fetch_add(ms, Ordering::AcqRel);
        }
    }

    /// Milliseconds since the server started (monotonic).
    pub fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }

    /// Microseconds since the server started (monotonic): what a request's stages are
    /// timed in. A manual clock moves in whole milliseconds.
    pub fn now_us(&self) -> u64 {
        match &self.source {
            ClockSource::System { start } => {
                u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
            }
            ClockSource::Manual { now_ms, .. } => {
                now_ms.load(Ordering::Acquire).saturating_mul(1000)
            }
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn wall_ms(&self) -> u64 {
        match &self.source {
            ClockSource::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64),
            ClockSource::Manual { now_ms, wall_start_ms } => {
                wall_start_ms + now_ms.load(Ordering::Acquire)
            }
        }
    }
}

/// What the server does in its ensemble, as connections and the four-letter words see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Alone: every write is committed once logged.
    Standalone,
    /// Electing a leader or syncing with one: serves no clients.
    Looking,
    /// Leading an established epoch.
    Leader,
    /// Following an established leader.
    Follower,
    /// Observing an established leader.
    Observer,
    /// Cut off from the quorum with `readonlymode.enabled`: serves reads to clients that
    /// accept a read-only server, refuses their writes.
    ReadOnly,
}

impl Mode {
    /// The name ZooKeeper's `srvr` and `mntr` give the mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Looking => "looking",
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::ReadOnly => "read-only",
        }
    }

    /// ZooKeeper's `zk_peer_state`: the role and the ZAB phase; `None` standalone.
    pub fn peer_state(self) -> Option<&'static str> {
        match self {
            Mode::Standalone => None,
            Mode::Looking | Mode::ReadOnly => Some("looking - election"),
            Mode::Leader => Some("leading - broadcast"),
            Mode::Follower => Some("following - broadcast"),
            Mode::Observer => Some("observing - broadcast"),
        }
    }

    /// Whether clients are served.
    pub fn is_serving(self) -> bool {
        self != Mode::Looking
    }
}

/// What every task of the server shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the server runs with.
    pub config: Config,
    /// Znodes and watches.
    pub database: Database,
    /// Live sessions; touched by connections, expired by the pipeline.
    pub sessions: Mutex<SessionTracker>,
    /// Live connections.
    pub registry: registry::Registry,
    /// Counters for the four-letter words.
    pub stats: stats::ServerStats,
    /// The queue into the write pipeline.
    pub driver: mpsc::Sender<pipeline::Input>,
    /// Timeouts and timestamps.
    pub clock: Clock,
    /// The server's mode, set by the pipeline.
    pub mode: Mutex<Mode>,
    /// The established leader this member follows or observes, or itself leading: the
    /// AdminServer's `leader` and `zabstate` name it.
    pub leader: Mutex<Option<crate::zab::ServerId>>,
    /// A leader's learners and pending syncs, refreshed every core tick.
    pub leader_status: Mutex<Option<crate::zab::LeaderStatus>>,
    /// Where reads wait under `zkrs.linearizableReads`.
    pub read_barrier: read_barrier::ReadBarrier,
    /// The handshakes' token bucket (`connection_throttle_tokens`).
    pub connection_throttle: Mutex<connection_throttle::ConnectionThrottle>,
    /// The budget of large requests (`largeRequestMaxBytes`).
    pub large_requests: request_throttle::LargeRequests,
    /// A restore waiting for the driver (the AdminServer's `restore`).
    pub restore: restore::RestoreSlot,
}

impl Shared {
    /// What the tasks of a server starting from `database` and `sessions` share, and the
    /// receiving end of the queue into its write pipeline. It starts standalone or
    /// looking for a leader.
    pub fn new(
        config: Config,
        database: Database,
        sessions: SessionTracker,
        clock: Clock,
        standalone: bool,
    ) -> (Arc<Shared>, mpsc::Receiver<pipeline::Input>) {
        let (driver, inputs) = mpsc::channel(DRIVER_QUEUE_CAPACITY);
        let mode = if standalone { Mode::Standalone } else { Mode::Looking };
        let throttle = connection_throttle::ConnectionThrottle::new(
            config.connection_throttle.clone(),
            clock.now_ms(),
        );
        let shared = Arc::new(Shared {
            database,
            sessions: Mutex::new(sessions),
            registry: registry::Registry::new(
                config.request_throttle.max_requests,
                config.skip_acl,
            ),
            stats: stats::ServerStats::default(),
            driver,
            clock,
            config,
            mode: Mutex::new(mode),
            leader: Mutex::new(None),
            leader_status: Mutex::new(None),
            read_barrier: read_barrier::ReadBarrier::default(),
            connection_throttle: Mutex::new(throttle),
            large_requests: request_throttle::LargeRequests::default(),
            restore: restore::RestoreSlot::default(),
        });
        (shared, inputs)
    }

    /// Whether this server takes clients now: in a serving mode, and not a leader told
    /// to leave its clients to the followers (`leaderServes=no`, as ZooKeeper's leader
    /// then never hands its connection factory a server to serve with).
    pub fn serves_clients(&self) -> bool {
        let mode = *self.mode.lock();
        mode.is_serving() && (mode != Mode::Leader || self.config.leader_serves)
    }
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration names no membership this server can take part in.
    #[error(transparent)]
    Membership(#[from] crate::ensemble::MembershipError),
    /// The store failed: it could not be opened or recovered, or a write failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The quorum or election port cannot be bound.
    #[error("binding the {what} port {address}: {source}")]
    Bind {
        /// Which port.
        what: &'static str,
        /// The port's address.
        address: std::net::SocketAddr,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The client listener does not say where it listens.
    #[error("the client listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The AdminServer's HTTPS context cannot be built from the `ssl.quorum` stores.
    #[error("the AdminServer's TLS: {0}")]
    AdminTls(#[source] crate::tls::TlsError),
    /// A task of the server panicked or was cancelled.
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A server's state recovered from its store, ready for its pipeline.
#[derive(Debug)]
pub struct Restart {
    /// What the server's tasks share, the tree and sessions recovered.
    pub shared: Arc<Shared>,
    /// The queue into the pipeline.
    pub inputs: mpsc::Receiver<pipeline::Input>,
    /// What the replication core starts from.
    pub restored: crate::zab::Restored,
}

/// Puts the ensemble's membership from `config` in `/zookeeper/config` at `wall_ms`, as
/// ZooKeeper's `initConfigInZKDatabase` does: when a member starts, and on a learner once
/// it has the leader's snapshot and once it is in sync (so the node shows this member's
/// own configuration, whatever the leader's tree held).
pub fn put_membership(config: &Config, database: &Database, wall_ms: u64) {
    let text = config.membership.to_zookeeper_text();
    let version = i64::try_from(config.membership.version).unwrap_or(i64::MAX);
    let now_ms = i64::try_from(wall_ms).unwrap_or(i64::MAX);
    database.set_config_node(&text, Zxid::new(version), now_ms);
}

/// Recovers server `id`'s state from `storage`: the tree and sessions of its newest
/// loadable snapshot and, on a standalone server, the log after it replayed; an ensemble
/// member's log may end in txns no quorum committed, so those are handed to the core
/// unapplied, for a leader to decide. Blocks on the store.
///
/// # Errors
/// When the store cannot be read or what it holds is damaged.
pub fn restore(
    config: Config,
    storage: &dyn Storage,
    id: crate::zab::ServerId,
    standalone: bool,
    clock: Clock,
) -> Result<Restart, crate::storage::StorageError> {
    let started = Instant::now();
    let replay = if standalone { Replay::Apply } else { Replay::Collect };
    let recovered = recover(storage, config.extended_types_enabled, replay)?;
    let mut sessions = SessionTracker::new(
        u64::from(config.tick_time_ms),
        initial_session_id(id, clock.wall_ms()),
    );
    for (session_id, timeout_ms) in &recovered.sessions {
        // Sessions restored from disk expire by their timeouts from now, as in ZooKeeper.
        sessions.add(*session_id, u64::try_from(*timeout_ms).unwrap_or(0), clock.now_ms());
    }
    tracing::info!(
        zxid = %recovered.last_zxid,
        nodes = recovered.database.tree().node_count(),
        sessions = recovered.sessions.len(),
        replayed = recovered.replayed,
        unapplied = recovered.unapplied.len(),
        seconds = started.elapsed().as_secs_f64(),
        "state recovered"
    );
    if !standalone {
        put_membership(&config, &recovered.database, clock.wall_ms());
    }
    if !config.digest_enabled {
        recovered.database.tree().disable_digest();
    }
    // ZooKeeper counts every txn it read from the log at start, applied or not.
    let txns_read = recovered.replayed + recovered.unapplied.len() as u64;
    let (snapshot_load, log_read) = (recovered.snapshot_load, recovered.log_read);
    // The state is at its snapshot's zxid, or, on a standalone server, at the end of the
    // log it replayed; the history the core starts from begins there.
    let applied = recovered.database.last_applied_zxid();
    let unapplied: Vec<crate::zab::Entry> = recovered
        .unapplied
        .into_iter()
        .map(|entry| crate::zab::Entry { zxid: entry.zxid, payload: entry.value })
        .collect();
    let restored = crate::zab::Restored {
        epochs: storage.epochs()?,
        history: crate::zab::History::new(applied, storage.epoch_ends()?, unapplied),
        applied,
    };
    let (shared, inputs) = Shared::new(config, recovered.database, sessions, clock, standalone);
    let millis = |took: std::time::Duration| u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let stats = &shared.stats;
    stats.db_init_time.record(millis(started.elapsed()));
    stats.startup_snap_load_time.record(millis(snapshot_load));
    if txns_read > 0 {
        stats.startup_txns_loaded.record(txns_read);
        stats.startup_txns_load_time.record(millis(log_read));
    }
    Ok(Restart { shared, inputs, restored })
}

/// The AdminServer's port, bound, and what it speaks: HTTP, or HTTPS with the `ssl.quorum`
/// stores (alone, or beside HTTP under `admin.portUnification`).
async fn open_admin(
    settings: &crate::config::admin::AdminSettings,
) -> Result<(TcpListener, listener::Security), ServerError> {
    let security = match &settings.tls {
        None => listener::Security::Plain,
        Some(tls) => {
            let context =
                crate::tls::ServerTls::new(tls.settings.clone()).map_err(ServerError::AdminTls)?;
            let context = Arc::new(context);
            if tls.port_unification {
                listener::Security::Unified(context)
            } else {
                listener::Security::Tls(context)
            }
        }
    };
    Ok((bind("AdminServer", settings.address, false).await?, security))
}

/// Binds a member's quorum or election port (`what`), on every address of the host if
/// `quorumListenOnAllIPs` (`all_ips`).
async fn bind(
    what: &'static str,
    mut address: std::net::SocketAddr,
    all_ips: bool,
) -> Result<TcpListener, ServerError> {
    if all_ips {
        address.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    }
    TcpListener::bind(address).await.map_err(|source| ServerError::Bind { what, address, source })
}

/// The client ports a server accepts on, bound before it starts.
#[derive(Debug, Default)]
pub struct ClientListeners {
    /// `clientPort`; none without it, as in ZooKeeper.
    pub plain: Option<TcpListener>,
    /// `secureClientPort`.
    pub secure: Option<TcpListener>,
    /// The TLS context of the secure port, and of the plain one under
    /// `client.portUnification`.
    pub tls: Option<Arc<crate::tls::ServerTls>>,
}

impl ClientListeners {
    /// Starts accepting on every port; the tasks run until aborted.
    fn accept(self, shared: &Arc<Shared>) -> Result<Vec<JoinHandle<()>>, ServerError> {
        let unification = shared.config.client_tls.as_ref().is_some_and(|tls| tls.port_unification);
        let unified = self.tls.as_ref().filter(|_| unification);
        let plain_security = match unified {
            Some(tls) => listener::Security::Unified(tls.clone()),
            None => listener::Security::Plain,
        };
        let ports = [
            (self.plain, plain_security),
            (
                self.secure,
                self.tls.clone().map_or(listener::Security::Plain, listener::Security::Tls),
            ),
        ];
        let mut tasks = Vec::new();
        for (listener, security) in ports {
            let Some(listener) = listener else { continue };
            let address = listener.local_addr().map_err(ServerError::Listener)?;
            match security {
                listener::Security::Plain => tracing::info!(%address, "serving clients"),
                listener::Security::Tls(_) => tracing::info!(%address, "serving clients over TLS"),
                listener::Security::Unified(_) => {
                    tracing::info!(%address, "serving clients, in plain or over TLS")
                }
            }
            tasks.push(tokio::spawn(listener::run(shared.clone(), listener, security)));
        }
        if let Some(tls) = self.tls {
            tasks.push(tokio::spawn(tls.reload_on_change()));
        }
        Ok(tasks)
    }
}

/// Runs a server on its client ports (none without `clientPort`, as in ZooKeeper) until
/// `shutdown` completes, with its state in RocksDB in the configured `dataDir`
/// (recovered first).
///
/// # Errors
/// When the store cannot be opened or recovered, or the write pipeline fails.
pub async fn run(
    config: Config,
    listeners: ClientListeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let (data_dir, log_dir, sync) =
        (config.data_dir.clone(), config.data_log_dir.clone(), config.force_sync);
    let storage = tokio::task::spawn_blocking(move || {
        RocksStorage::open(&data_dir, log_dir.as_deref(), sync)
    })
    .await??;
    let storage = crate::storage::injected::Injected::from_environment(Arc::new(storage));
    run_with_storage(config, storage, listeners, shutdown).await
}

/// Runs a server over any [`Storage`]: recovers its state, then serves until `shutdown`.
///
/// # Errors
/// When recovery fails or the write pipeline stops.
pub async fn run_with_storage(
    config: Config,
    storage: Arc<dyn Storage>,
    clients: ClientListeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let membership = if config.is_standalone() {
        crate::ensemble::Membership::standalone(&config, STANDALONE_SERVER_ID)
    } else {
        crate::ensemble::Membership::from_config(&config)?
    };
    let recovering = storage.clone();
    let standalone = membership.standalone;
    let id = membership.id();
    let Restart { shared, inputs: driver_rx, restored } = tokio::task::spawn_blocking(move || {
        restore(config, recovering.as_ref(), id, standalone, Clock::system())
    })
    .await??;
    let stop = CancellationToken::new();
    let listeners = if membership.standalone {
        None
    } else {
        let own = membership.links.members[&membership.id()].clone();
        let all_ips = shared.config.quorum_listen_on_all_ips;
        let listeners = crate::ensemble::link::Listeners {
            quorum: bind("quorum", own.quorum, all_ips).await?,
            election: bind("election", own.election, all_ips).await?,
        };
        tracing::info!(
            id = membership.id(),
            quorum = %own.quorum,
            election = %own.election,
            "ensemble member; electing a leader"
        );
        Some(listeners)
    };
    let prometheus = match shared.config.prometheus_address {
        Some(address) => Some(bind("Prometheus metrics", address, false).await?),
        None => None,
    };
    let admin = match &shared.config.admin {
        Some(settings) => match open_admin(settings).await {
            Ok((listener, security)) => Some((settings.clone(), listener, security)),
            // As ZooKeeper: a standalone server stops, an ensemble member goes on without.
            Err(err) if membership.standalone => return Err(err),
            Err(err) => {
                let problem = "problem starting the AdminServer; going on without it";
                tracing::warn!(cause = %err, "{problem}");
                None
            }
        },
        None => None,
    };
    let reloading_member_tls = match &membership.links.security {
        PeerSecurity::Tls(tls, _) => Some(tokio::spawn(tls.clone().reload_on_change())),
        PeerSecurity::Plain => None,
    };
    let admin_storage = storage.clone();
    let mut driver = tokio::spawn(driver::run(
        shared.clone(),
        storage,
        driver_rx,
        stop.clone(),
        membership,
        restored,
        listeners,
    ));
    // Accepting runs on the runtime's workers, like the connections it spawns, not on the
    // thread that awaits this function.
    let mut accepting = clients.accept(&shared)?;
    accepting.extend(reloading_member_tls);
    if let Some(listener) = prometheus {
        let address = listener.local_addr().map_err(ServerError::Listener)?;
        tracing::info!(%address, "serving Prometheus metrics at /metrics");
        accepting.push(tokio::spawn(prometheus::serve(shared.clone(), listener)));
    }
    if let Some((settings, listener, security)) = admin {
        let address = listener.local_addr().map_err(ServerError::Listener)?;
        let url = settings.command_url.clone();
        let https = settings.tls.is_some();
        tracing::info!(%address, %url, https, "started the AdminServer");
        let serving = admin::serve(shared.clone(), admin_storage, settings, listener, security)
            .map_err(ServerError::Listener)?;
        accepting.push(tokio::spawn(serving));
    }
    // Under systemd (Type=notify) the unit is ready now; elsewhere this does nothing.
    if let Err(err) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(cause = %err, "cannot tell systemd the server is ready");
    }
    let audited = shared.config.audit_enabled;
    if audited {
        crate::audit::server_started(true);
    }
    tokio::select! {
        result = &mut driver => return Ok(result??),
        () = shutdown => tracing::info!("shutting down"),
    }
    if audited {
        crate::audit::server_stopping();
    }
    accepting.iter().for_each(JoinHandle::abort);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // The driver closes the store on its way out: RocksDB must not outlive it in
    // background threads while the process exits.
    stop.cancel();
    Ok(driver.await??)
}
