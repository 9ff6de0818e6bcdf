//! The tokio shell: listener, connections, and the write pipeline driver.
//!
//! This is the only module with sockets, tasks and clocks. Requests flow:
//! [`connection`] decodes a frame → reads run at once against the tree ([`reads`]) unless
//! an earlier write of the session is still in flight → writes go to the [`driver`],
//! which prepares, logs, applies and answers them in zxid order.

pub mod connection;
pub mod driver;
pub mod four_letter;
pub mod listener;
pub mod log_writer;
pub mod outbox;
pub mod reads;
pub mod registry;
pub mod snapshotter;
pub mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::session::password::initial_session_id;
use crate::session::SessionTracker;
use crate::storage::recovery::recover;
use crate::storage::rocks::RocksStorage;
use crate::storage::Storage;
use crate::tree::Database;

/// Standalone servers use this id in their session ids, as ZooKeeper does.
const STANDALONE_SERVER_ID: u64 = 1;

/// Capacity of the queue from connections to the driver; connections wait when it is full.
const DRIVER_QUEUE_CAPACITY: usize = 4096;

/// The server's two clocks: a monotonic one for timeouts, wall time for txn headers.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Milliseconds since the server started (monotonic).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Milliseconds since the Unix epoch.
    pub fn wall_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
    }
}

/// What every task of the server shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the server runs with.
    pub config: Config,
    /// Znodes and watches.
    pub database: Database,
    /// Live sessions; touched by connections, expired by the driver.
    pub sessions: Mutex<SessionTracker>,
    /// Live connections.
    pub registry: registry::Registry,
    /// Counters for the four-letter words.
    pub stats: stats::ServerStats,
    /// The queue into the write pipeline.
    pub driver: mpsc::Sender<driver::Input>,
    /// Timeouts and timestamps.
    pub clock: Clock,
}

/// Runs a server on `listener` until `shutdown` completes, with its state in RocksDB in
/// the configured `dataDir` (recovered first).
///
/// # Errors
/// When the store cannot be opened or recovered, or the write pipeline fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (data_dir, log_dir, sync) =
        (config.data_dir.clone(), config.data_log_dir.clone(), config.force_sync);
    let storage = tokio::task::spawn_blocking(move || {
        RocksStorage::open(&data_dir, log_dir.as_deref(), sync)
    })
    .await??;
    run_with_storage(config, Arc::new(storage), listener, shutdown).await
}

/// Runs a server over any [`Storage`]: recovers its state, then serves until `shutdown`.
///
/// # Errors
/// When recovery fails or the write pipeline stops.
pub async fn run_with_storage(
    config: Config,
    storage: Arc<dyn Storage>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let clock = Clock { start: Instant::now() };
    let started = Instant::now();
    let extended = config.extended_types_enabled;
    let recovering = storage.clone();
    let recovered =
        tokio::task::spawn_blocking(move || recover(recovering.as_ref(), extended)).await??;
    let mut sessions = SessionTracker::new(
        u64::from(config.tick_time_ms),
        initial_session_id(STANDALONE_SERVER_ID, clock.wall_ms()),
    );
    for (session_id, timeout_ms) in &recovered.sessions {
        // Sessions restored from disk expire by their timeouts from now, as in ZooKeeper.
        sessions.add(*session_id, u64::try_from(*timeout_ms).unwrap_or(0), clock.now_ms());
    }
    tracing::info!(
        zxid = format_args!("0x{:x}", recovered.last_zxid),
        nodes = recovered.database.tree().node_count(),
        sessions = recovered.sessions.len(),
        replayed = recovered.replayed,
        seconds = started.elapsed().as_secs_f64(),
        "state recovered"
    );
    let (driver_tx, driver_rx) = mpsc::channel(DRIVER_QUEUE_CAPACITY);
    let shared = Arc::new(Shared {
        database: recovered.database,
        sessions: Mutex::new(sessions),
        registry: registry::Registry::default(),
        stats: stats::ServerStats::default(),
        driver: driver_tx,
        clock,
        config,
    });
    let stop = CancellationToken::new();
    let mut driver = tokio::spawn(driver::run(shared.clone(), storage, driver_rx, stop.clone()));
    tracing::info!(address = %listener.local_addr()?, "serving clients");
    // Accepting runs on the runtime's workers, like the connections it spawns, not on the
    // thread that awaits this function.
    let accepting = tokio::spawn(listener::run(shared.clone(), listener));
    tokio::select! {
        result = &mut driver => return Ok(result??),
        () = shutdown => tracing::info!("shutting down"),
    }
    accepting.abort();
    // The driver closes the store on its way out: RocksDB must not outlive it in
    // background threads while the process exits.
    stop.cancel();
    Ok(driver.await??)
}
