//! Command line: `zkrs server`, the dump tools, and `zkrs config`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};

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
  MIMALLOC_PURGE_DELAY, MIMALLOC_ALLOW_THP
                      allocator options the server sets for itself (1000, 0)

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
    /// A client shell with zkCli.sh's commands and output: `zkrs shell -server
    /// host:port,... [-timeout ms] [command args]`; a script on standard input, or
    /// interactive with line editing, history and tab completion.
    #[command(disable_help_flag = true)]
    Shell {
        /// zkCli's arguments: -server, -timeout, -waitforconnection, then a command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        arguments: Vec<String>,
    },
    /// Keeps a backup directory current from a running member's AdminServer: snapshots
    /// now and then, and every committed txn as it commits. Killed at any point, it goes
    /// on where it was. `zkrs backup verify DIR` checks a backup.
    Backup(BackupArgs),
    /// Makes a new data directory holding exactly the state after one txn of a backup,
    /// for a server or a new ensemble to start from.
    Restore {
        /// The backup directory, or its copy in object storage (`s3://bucket/prefix`,
        /// `file:///path`).
        #[arg(long)]
        backup: String,
        /// The state after this txn (`0x1f` or `31`).
        #[arg(long, value_parser = parse_zxid, conflicts_with = "to_time")]
        to_zxid: Option<i64>,
        /// The state after the last txn at or before this time: milliseconds since the
        /// epoch, or UTC as `2026-12-05T01:02:03Z` (fractions of a second allowed).
        #[arg(long, value_parser = parse_time)]
        to_time: Option<i64>,
        /// The new dataDir (it must not hold a zkrs store yet).
        #[arg(long)]
        to: PathBuf,
        /// The new dataLogDir, if the zoo.cfg will name one.
        #[arg(long)]
        to_data_log_dir: Option<PathBuf>,
    },
    /// Makes Apache ZooKeeper's data directory from a stopped zkrs server's: its newest
    /// snapshot as a ZooKeeper snapshot, with its sessions, the txns after it as a
    /// ZooKeeper txn log, epochs and myid (the way back after `zkrs import`).
    Export {
        /// The zkrs dataDir.
        data_dir: PathBuf,
        /// The zkrs dataLogDir, when it has one.
        #[arg(long)]
        data_log_dir: Option<PathBuf>,
        /// ZooKeeper's new dataDir (its version-2/ must be empty or missing).
        #[arg(long)]
        to: PathBuf,
        /// ZooKeeper's new dataLogDir, if its zoo.cfg will name one (its version-2/ must
        /// be empty or missing).
        #[arg(long)]
        to_data_log_dir: Option<PathBuf>,
    },
}

/// `zkrs backup`: keep a backup current, or check one.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct BackupArgs {
    #[command(subcommand)]
    action: Option<BackupAction>,
    /// The member's AdminServer: http://host:port.
    #[arg(long, required = true)]
    server: Option<String>,
    /// The Authorization header the AdminServer wants for snapshots: `digest user:password`
    /// (a user with every permission on /), or `ip`.
    #[arg(long)]
    auth: Option<String>,
    /// The backup directory.
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// Txns between snapshots.
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// Snapshots to keep, with the txns after the oldest of them; older ones are deleted
    /// after each new snapshot (0 keeps everything), in the copy too.
    #[arg(long, default_value_t = 0)]
    retain: usize,
    /// Keeps a copy of the backup in object storage: `s3://bucket/prefix` (credentials,
    /// region and endpoint from AWS_* variables) or `file:///path`.
    #[arg(long)]
    upload: Option<String>,
    /// Seconds between updates of the copy: txns reach it within about twice this.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    upload_every: u64,
}

#[derive(Debug, Subcommand)]
enum BackupAction {
    /// Reads every snapshot and txn of a backup, checking every checksum, and says which
    /// zxids it can restore; fails on a damaged file.
    Verify {
        /// The backup directory, or its copy in object storage.
        dir: String,
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

/// Milliseconds since the epoch, or a UTC time `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("{text:?} is neither milliseconds nor YYYY-MM-DDTHH:MM:SS[.fff]Z");
    let utc = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = utc.split_once('T').ok_or_else(bad)?;
    let numbers = |part: &str, separator: char| -> Result<Vec<i64>, String> {
        part.split(separator).map(|field| field.parse::<i64>().map_err(|_| bad())).collect()
    };
    let (seconds_text, fraction) = time.split_once('.').unwrap_or((time, ""));
    let [year, month, day] = numbers(date, '-')?[..] else { return Err(bad()) };
    let [hour, minute, second] = numbers(seconds_text, ':')?[..] else { return Err(bad()) };
    let millis: i64 =
        format!("{fraction:0<3}").get(..3).and_then(|ms| ms.parse().ok()).ok_or_else(bad)?;
    // Howard Hinnant's days-from-civil.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// `0x1f` or `31`, as a raw zxid.
fn parse_zxid(text: &str) -> Result<i64, String> {
    Zxid::parse(text).map(Zxid::raw)
}

/// A shell command or script failed: the shell has said why, so nothing more is logged,
/// and the exit status is 1, as zkCli's.
#[derive(Debug, thiserror::Error)]
#[error("a shell command failed")]
pub struct ShellFailed;

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
    // Not locked for the whole command: the shell's threads print too (watch events).
    let mut out = std::io::stdout();
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
        Command::Shell { arguments } => match crate::shell::run(&arguments) {
            0 => Ok(()),
            _ => Err(anyhow::Error::new(ShellFailed)),
        },
        Command::Backup(BackupArgs { action: Some(BackupAction::Verify { dir }), .. }) => {
            let location = crate::backup::Location::parse(&dir);
            crate::backup::verify_at(&location, &mut out).map_err(anyhow::Error::msg)?;
            Ok(())
        }
        Command::Backup(BackupArgs {
            action: None,
            server,
            auth,
            dir,
            snapshot_every,
            retain,
            upload,
            upload_every,
        }) => {
            let (Some(server), Some(dir)) = (server, dir) else {
                anyhow::bail!("zkrs backup needs --server and --dir");
            };
            let options = crate::backup::Options {
                server,
                authorization: auth,
                dir,
                snapshot_every: snapshot_every.max(1),
                retain,
                upload,
                upload_every: std::time::Duration::from_secs(upload_every),
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                // Interrupted or terminated (as a service manager stops it), it aborts a
                // copy to object storage under way before it exits.
                let stop = tokio_util::sync::CancellationToken::new();
                let mut terminate = signal(SignalKind::terminate())?;
                let on_signal = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = terminate.recv() => {}
                    }
                    on_signal.cancel();
                });
                Ok(crate::backup::keep_current(options, stop).await?)
            })
        }
        Command::Restore { backup, to_zxid, to_time, to, to_data_log_dir } => {
            use crate::backup::restore::Target;
            let target = match (to_zxid, to_time) {
                (Some(zxid), _) => Target::Zxid(Zxid::new(zxid)),
                (None, Some(ms)) => Target::Time(ms),
                (None, None) => Target::Latest,
            };
            let location = crate::backup::Location::parse(&backup);
            crate::backup::restore_from(
                &location,
                target,
                &to,
                to_data_log_dir.as_deref(),
                &mut out,
            )
            .map_err(anyhow::Error::msg)?;
            Ok(())
        }
        Command::Export { data_dir, data_log_dir, to, to_data_log_dir } => {
            let to = crate::export::ZooKeeperTarget { data_dir: to, data_log_dir: to_data_log_dir };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_utc() {
        assert_eq!(parse_time("1796433371766"), Ok(1_796_433_371_766));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        // ZooKeeper's `dump` on 2026-11-22 printed this time for 1795306529000.
        assert_eq!(parse_time("2026-11-22T00:15:29Z"), Ok(1_795_306_529_000));
        assert_eq!(parse_time("2000-02-29T12:00:00.5Z"), Ok(951_825_600_500));
        assert!(parse_time("yesterday").is_err());
    }
}
