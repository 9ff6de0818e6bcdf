//! Command line: `zkrs server`, the dump tools, and `zkrs config`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::storage::rocks::RocksStorage;
use crate::txn::Zxid;

/// The version `--version` and the start-up banner print: the crate's version and the
/// commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ZKRS_COMMIT"), ")");

/// The environment variables `zkrs server` reads, for `zkrs server --help`.
const SERVER_ENVIRONMENT: &str = "\
Environment:
  ZKRS_LOG            log filter: a level (error, warn, info, debug, trace) or
                      target=level directives, e.g. info,zkrs::server=debug (default info)
  RUST_LOG            read when ZKRS_LOG is unset
  ZKRS_LOG_DIR        also write the log to DIR/zkrs.log, rotated daily
  ZKRS_LOG_MAX_FILES  rotated log files kept in ZKRS_LOG_DIR (default 7)
  ZKRS_LOG_FORMAT     text (default) or json: one JSON object per line
  ZKRS_PID_FILE       write the server's pid to this file while it runs
  NOTIFY_SOCKET       set by systemd (Type=notify): readiness is reported there
  MIMALLOC_PURGE_DECOMMITS  the allocator option the server sets for itself (0)

Signals: SIGTERM, SIGINT and SIGHUP stop the server cleanly (ZooKeeper's JVM also
exits on SIGHUP); under nohup, SIGHUP stays ignored.";

/// zkrs: a ZooKeeper-compatible coordination server.
#[derive(Debug, Parser)]
#[command(name = "zkrs", version = VERSION)]
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
    #[command(after_help = SERVER_ENVIRONMENT)]
    Server {
        /// Path of a zoo.cfg file.
        config: Option<PathBuf>,
    },
    /// The transaction log of a data directory.
    Log {
        #[command(subcommand)]
        action: LogAction,
    },
    /// The snapshots of a data directory.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// The zoo.cfg keys zkrs knows, and checking a zoo.cfg.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Makes a zkrs data directory from Apache ZooKeeper's (stopped) data directory: the
    /// newest snapshot that reads cleanly and every logged txn after it, the sessions and
    /// the epochs, as ZooKeeper would restore them at start.
    Import {
        /// ZooKeeper's dataDir (the one holding version-2/).
        zookeeper_data_dir: PathBuf,
        /// ZooKeeper's dataLogDir, when its txn logs are kept apart.
        #[arg(long)]
        data_log_dir: Option<PathBuf>,
        /// The new zkrs dataDir (it must not hold a zkrs store yet).
        #[arg(long)]
        to: PathBuf,
        /// The new zkrs dataLogDir, if the zkrs zoo.cfg will name one.
        #[arg(long)]
        to_data_log_dir: Option<PathBuf>,
    },
    /// Makes Apache ZooKeeper's data directory from a stopped zkrs server's: one
    /// ZooKeeper snapshot of the whole state, with its sessions, epochs and myid (the way
    /// back after `zkrs import`).
    Export {
        /// The zkrs dataDir.
        data_dir: PathBuf,
        /// The zkrs dataLogDir, when it has one.
        #[arg(long)]
        data_log_dir: Option<PathBuf>,
        /// ZooKeeper's new dataDir (its version-2/ must be empty or missing).
        #[arg(long)]
        to: PathBuf,
    },
}

/// Where a tool finds the data: a zoo.cfg (which names both directories) or the
/// directories themselves.
#[derive(Debug, Args)]
struct DataLocation {
    /// The server's dataDir (or give --config).
    #[arg(required_unless_present = "config")]
    data_dir: Option<PathBuf>,
    /// The server's zoo.cfg: its dataDir and dataLogDir are used.
    #[arg(long, conflicts_with_all = ["data_dir", "data_log_dir"])]
    config: Option<PathBuf>,
    /// The server's dataLogDir, when it has one.
    #[arg(long)]
    data_log_dir: Option<PathBuf>,
}

impl DataLocation {
    fn open(&self) -> anyhow::Result<RocksStorage> {
        let (data_dir, data_log_dir) = match (&self.config, &self.data_dir) {
            (Some(path), _) => {
                let config =
                    Config::load(path).with_context(|| format!("loading {}", path.display()))?;
                (config.data_dir.clone(), config.data_log_dir.clone())
            }
            (None, Some(data_dir)) => (data_dir.clone(), self.data_log_dir.clone()),
            (None, None) => anyhow::bail!("give a data directory or --config"),
        };
        Ok(RocksStorage::open_read_only(&data_dir, data_log_dir.as_deref())?)
    }
}

#[derive(Debug, Subcommand)]
enum LogAction {
    /// Prints the logged txns, with checksums verified.
    Dump {
        #[command(flatten)]
        location: DataLocation,
        /// The first zxid to print (hex with 0x, or decimal).
        #[arg(long, value_parser = parse_zxid)]
        from: Option<i64>,
        /// The last zxid to print (hex with 0x, or decimal).
        #[arg(long, value_parser = parse_zxid)]
        to: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotAction {
    /// Prints a snapshot: the newest, or the one with --zxid.
    Dump {
        #[command(flatten)]
        location: DataLocation,
        /// The zxid of the snapshot to print (hex with 0x, or decimal).
        #[arg(long, value_parser = parse_zxid)]
        zxid: Option<i64>,
    },
    /// Lists the snapshots, newest first.
    List {
        #[command(flatten)]
        location: DataLocation,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Prints every zoo.cfg key ZooKeeper documents and what zkrs does with it.
    Keys,
    /// Reads a zoo.cfg as `zkrs server` would, prints what start-up would report and the
    /// effective settings, and exits 2 if the server would refuse it.
    Check {
        /// Path of a zoo.cfg file.
        config: PathBuf,
    },
}

/// `0x1f` or `31`.
fn parse_zxid(text: &str) -> Result<i64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|err| format!("{text:?} is not a zxid: {err}"))
}

/// How a failed command ends, with ZooKeeper's exit codes: 2 for a configuration it
/// would also refuse ("Invalid config, exiting abnormally"), 3 for a data directory it
/// may not create, 1 for everything else.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    use crate::startup::{DataDirMissing, StartupError};
    let is_config = |cause: &(dyn std::error::Error + 'static)| {
        cause.is::<ConfigError>()
            || matches!(
                cause.downcast_ref::<StartupError>(),
                Some(StartupError::Config(_) | StartupError::Tls(_))
            )
    };
    let is_data_dir = |cause: &(dyn std::error::Error + 'static)| {
        cause.is::<DataDirMissing>()
            || matches!(cause.downcast_ref::<StartupError>(), Some(StartupError::DataDirMissing(_)))
    };
    if err.chain().any(is_config) {
        2
    } else if err.chain().any(is_data_dir) {
        3
    } else {
        1
    }
}

/// Runs the command the arguments name.
///
/// # Errors
/// A bad configuration, a port that cannot be bound, or a failed server.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Server { config } => {
            let config = match &config {
                Some(path) => {
                    Config::load(path).with_context(|| format!("loading {}", path.display()))?
                }
                None => Config::embedded_default(),
            };
            Ok(crate::startup::serve(config)?)
        }
        Command::Log { action: LogAction::Dump { location, from, to } } => {
            let range = Zxid::new(from.unwrap_or(i64::MIN))..=Zxid::new(to.unwrap_or(i64::MAX));
            Ok(crate::dump::dump_log(&location.open()?, range, &mut out)?)
        }
        Command::Snapshot { action: SnapshotAction::Dump { location, zxid } } => {
            Ok(crate::dump::dump_snapshot(&location.open()?, zxid.map(Zxid::new), &mut out)?)
        }
        Command::Snapshot { action: SnapshotAction::List { location } } => {
            Ok(crate::dump::list_snapshots(&location.open()?, &mut out)?)
        }
        Command::Import { zookeeper_data_dir, data_log_dir, to, to_data_log_dir } => {
            let from = crate::import::ZooKeeperDirs { data_dir: zookeeper_data_dir, data_log_dir };
            crate::import::import(&from, &to, to_data_log_dir.as_deref(), &mut out)?;
            Ok(())
        }
        Command::Export { data_dir, data_log_dir, to } => {
            crate::export::export(&data_dir, data_log_dir.as_deref(), &to, &mut out)?;
            Ok(())
        }
        Command::Config { action: ConfigAction::Keys } => {
            use std::io::Write as _;
            out.write_all(crate::config::keys::markdown_table().as_bytes())?;
            Ok(())
        }
        Command::Config { action: ConfigAction::Check { config } } => {
            let config =
                Config::load(&config).with_context(|| format!("loading {}", config.display()))?;
            Ok(crate::startup::describe_config(&config, &mut out)?)
        }
    }
}
