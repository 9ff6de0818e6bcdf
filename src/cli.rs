//! Command line: `zkrs server [zoo.cfg]`, `zkrs log dump DIR`, `zkrs snapshot dump DIR`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::storage::rocks::RocksStorage;

/// zkrs: a ZooKeeper-compatible coordination server.
#[derive(Debug, Parser)]
#[command(name = "zkrs", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this command runs a server (rather than a tool that reads a data
    /// directory and exits), for set-up only a long-running server needs.
    pub fn runs_server(&self) -> bool {
        matches!(self.command, Command::Server { .. })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a server from a zoo.cfg, or from the embedded default (standalone, port
    /// 2181, data in ./zkrs-data) when none is given.
    Server {
        /// Path of a zoo.cfg file.
        config: Option<PathBuf>,
    },
    /// The transaction log of a data directory.
    Log {
        #[command(subcommand)]
        action: DumpAction,
    },
    /// The newest snapshot of a data directory.
    Snapshot {
        #[command(subcommand)]
        action: DumpAction,
    },
}

#[derive(Debug, Subcommand)]
enum DumpAction {
    /// Prints every entry, with checksums verified.
    Dump {
        /// The server's dataDir.
        data_dir: PathBuf,
        /// The server's dataLogDir, when it has one.
        #[arg(long)]
        data_log_dir: Option<PathBuf>,
    },
}

/// Runs the command the arguments name.
///
/// # Errors
/// A bad configuration, a port that cannot be bound, or a failed server.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server { config } => {
            let config = match config {
                Some(path) => {
                    Config::load(&path).with_context(|| format!("loading {}", path.display()))?
                }
                None => Config::embedded_default(),
            };
            serve(config)
        }
        Command::Log { action: DumpAction::Dump { data_dir, data_log_dir } } => {
            let storage = RocksStorage::open_read_only(&data_dir, data_log_dir.as_deref())?;
            crate::dump::dump_log(&storage, &mut std::io::stdout().lock())
        }
        Command::Snapshot { action: DumpAction::Dump { data_dir, data_log_dir } } => {
            let storage = RocksStorage::open_read_only(&data_dir, data_log_dir.as_deref())?;
            crate::dump::dump_snapshot(&storage, &mut std::io::stdout().lock())
        }
    }
}

/// Tokio workers for a server: half the cores, at least one. The other half is left to
/// the threads that finish each write (the log thread's syncs, snapshots, RocksDB's
/// flushes and compactions) and to whatever else runs there. On this project's 2-core
/// machine one worker beat two on every zkbench workload (get +17%, connect +12%, set,
/// create and lock +5-6%), with fewer wake-ups crossing cores.
fn server_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_worker_threads())
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Listening for the stop signals comes first: one that arrives while the server
        // starts must stop it, not be swallowed by a handler installed meanwhile.
        let shutdown = shutdown_signal().context("listening for SIGTERM and SIGINT")?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating dataDir {}", config.data_dir.display()))?;
        let address = SocketAddr::new(
            config.client_port_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            config.serving_client_port(),
        );
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        crate::server::run(config, listener, shutdown).await
    })
}

/// Completes at the first SIGTERM or SIGINT received after this call.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
