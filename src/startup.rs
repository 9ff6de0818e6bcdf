//! What `zkrs server` does before the server runs, as ZooKeeper's start-up does it: the
//! banner with the version and the effective configuration, the report on the zoo.cfg's
//! keys, the open files limit, the stop signals, the pid file, the data directories, and
//! the client listener.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::{Config, ConfigError};
use crate::server::{ClientListeners, ServerError};
use crate::tls::ServerTls;

/// A data directory is missing and `zookeeper.datadir.autocreate=false` forbids creating
/// it; exit status 3, ZooKeeper's "Unable to access datadir".
#[derive(Debug, thiserror::Error)]
#[error(
    "{kind} {} does not exist and zookeeper.datadir.autocreate=false forbids creating it",
    path.display()
)]
pub struct DataDirMissing {
    kind: &'static str,
    path: PathBuf,
}

/// Why `zkrs server` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A data directory is missing and may not be created (exit status 3).
    #[error(transparent)]
    DataDirMissing(#[from] DataDirMissing),
    /// The configuration cannot be served (exit status 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The client TLS stores cannot be used (exit status 2, as a bad configuration).
    #[error("client TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A file-system or socket call failed; `what` says what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartupError {
    let what = what.into();
    move |source| StartupError::Io { what, source }
}

/// Runs a server for `config` until a stop signal.
///
/// # Errors
/// A data directory that cannot be made, a port that cannot be bound, or a failed server.
pub fn serve(config: Config) -> Result<(), StartupError> {
    log_banner(&config);
    raise_open_files_limit();
    let audited = config.audit_enabled;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_worker_threads(&config))
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    runtime
        .block_on(async move {
            // Listening for the stop signals comes first: one that arrives while the server
            // starts must stop it, not be swallowed by a handler installed meanwhile.
            let shutdown = shutdown_signal().map_err(io("listening for stop signals"))?;
            prepare_directory("dataDir", &config.data_dir, config.data_dir_autocreate)?;
            if let Some(log_dir) = &config.data_log_dir {
                prepare_directory("dataLogDir", log_dir, config.data_dir_autocreate)?;
            }
            let _pid_file = PidFile::create()?;
            let backlog = config.client_port_listen_backlog;
            let tls = match &config.client_tls {
                Some(client_tls) => Some(Arc::new(ServerTls::new(client_tls.settings.clone())?)),
                None => None,
            };
            let secure_address = config.client_tls.as_ref().and_then(|tls| tls.secure_address);
            let listeners = ClientListeners {
                plain: match config.client_address()? {
                    Some(address) => Some(bind_client_port(address, backlog)?),
                    None if secure_address.is_some() => None,
                    None => {
                        tracing::warn!(
                            "clientPort is not set: no client listener, as ZooKeeper does (check \
                         the key's spelling)"
                        );
                        None
                    }
                },
                secure: secure_address
                    .map(|address| bind_client_port(address, backlog))
                    .transpose()?,
                tls,
            };
            Ok(crate::server::run(config, listeners, shutdown).await?)
        })
        .inspect_err(|_| {
            if audited {
                crate::audit::server_started(false);
            }
        })
}

/// Raises the soft limit on open files to the hard one, as the JVM does for ZooKeeper at
/// start (HotSpot's `MaxFDLimit`, on by default on Linux): with the common soft limit of
/// 1,024 the server would refuse connections ZooKeeper takes. Failing to is logged, as the
/// JVM warns of it, and the server runs on the limit it has.
fn raise_open_files_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let shown = |value: Option<u64>| value.map_or("unlimited".to_owned(), |n| n.to_string());
    let (from, to) = (shown(limit.current), shown(limit.maximum));
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(%from, %to, "raised the open files limit to its hard limit"),
        Err(err) => tracing::warn!(%from, %to, %err, "cannot raise the open files limit"),
    }
}

/// Tokio workers for a server: half the cores, at least one. The other half is left to
/// the threads that finish each write (the log thread's syncs, snapshots, RocksDB's
/// flushes and compactions) and to whatever else runs there. On this project's 2-core
/// machine one worker beat two on every zkbench workload (get +17%, connect +12%, set,
/// create and lock +5-6%), with fewer wake-ups crossing cores. TLS changes that: its
/// handshakes and record encryption are CPU work on the workers, so a server with TLS
/// clients gets a worker per core.
fn server_worker_threads(config: &Config) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    if config.client_tls.is_some() {
        cores
    } else {
        (cores / 2).max(1)
    }
}

/// The start-up banner: version, where the configuration came from, the effective
/// settings and data directories, then what the zoo.cfg's keys mean to zkrs.
fn log_banner(config: &Config) {
    let source = config
        .source
        .as_ref()
        .map_or("the embedded default".to_owned(), |path| path.display().to_string());
    tracing::info!(version = crate::cli::VERSION, config = %source, "zkrs starting");
    if let Some(dynamic) = &config.dynamic_source {
        tracing::info!(file = %dynamic.display(), "membership from the dynamic config file");
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        data_log_dir = %config.log_dir().display(),
        "data directories"
    );
    tracing::info!("effective configuration: {}", effective_settings(config).join(" "));
    for notice in &config.notices {
        if notice.warn {
            tracing::warn!("zoo.cfg: {}", notice.message);
        } else {
            tracing::info!("zoo.cfg: {}", notice.message);
        }
    }
}

/// The settings the server runs with, as `key=value` in ZooKeeper's names.
fn effective_settings(config: &Config) -> Vec<String> {
    let client = match config.client_address() {
        Ok(Some(address)) => address.to_string(),
        Ok(None) => "none".to_owned(),
        Err(err) => err.to_string(),
    };
    let mut settings = vec![
        format!("mode={}", if config.is_standalone() { "standalone" } else { "ensemble" }),
        format!("clientAddress={client}"),
        format!("tickTime={}", config.tick_time_ms),
        format!("minSessionTimeout={}", config.session_timeout_ms_min),
        format!("maxSessionTimeout={}", config.session_timeout_ms_max),
        format!("maxClientCnxns={}", config.max_client_cnxns),
        format!("maxCnxns={}", config.max_cnxns),
        format!("jute.maxbuffer={}", config.jute_max_buffer),
        format!("forceSync={}", if config.force_sync { "yes" } else { "no" }),
        format!("snapCount={}", config.snap_count),
        format!("autopurge.snapRetainCount={}", config.snap_retain_count),
        format!("autopurge.purgeInterval={}", config.purge_interval_hours),
        format!("extendedTypesEnabled={}", config.extended_types_enabled),
        format!(
            "4lw.commands.whitelist={}",
            config.four_letter_words.iter().cloned().collect::<Vec<_>>().join(",")
        ),
    ];
    if !config.is_standalone() {
        settings.push(format!("myid={}", config.my_id.unwrap_or(0)));
        settings.push(format!("initLimit={}", config.init_limit));
        settings.push(format!("syncLimit={}", config.sync_limit));
        settings.push(format!("localSessionsEnabled={}", config.local_sessions_enabled));
        settings.push(format!("readonlymode.enabled={}", config.read_only_mode_enabled));
    }
    settings
}

/// `zkrs config check`: what start-up would report, and the effective settings.
///
/// # Errors
/// When `out` fails.
pub fn describe_config(config: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    for notice in &config.notices {
        writeln!(out, "{}: {}", if notice.warn { "WARN" } else { "INFO" }, notice.message)?;
    }
    for setting in effective_settings(config) {
        writeln!(out, "{setting}")?;
    }
    writeln!(out, "dataDir={}", config.data_dir.display())?;
    writeln!(out, "dataLogDir={}", config.log_dir().display())?;
    if !config.membership.servers.is_empty() {
        writeln!(out, "membership:\n{}", config.membership.to_zookeeper_text())?;
    }
    Ok(())
}

/// Creates a data directory when missing, unless `autocreate` is off.
fn prepare_directory(
    kind: &'static str,
    path: &Path,
    autocreate: bool,
) -> Result<(), StartupError> {
    if path.is_dir() {
        return Ok(());
    }
    if !autocreate {
        return Err(DataDirMissing { kind, path: path.to_owned() }.into());
    }
    std::fs::create_dir_all(path).map_err(io(format!("creating {kind} {}", path.display())))
}

/// Binds the client port with the configured listen backlog.
fn bind_client_port(
    address: SocketAddr,
    backlog: u32,
) -> Result<tokio::net::TcpListener, StartupError> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(io("opening the client socket"))?;
    socket.set_reuseaddr(true).map_err(io("opening the client socket"))?;
    socket.bind(address).map_err(io(format!("binding the client port {address}")))?;
    socket.listen(backlog).map_err(io(format!("listening on {address}")))
}

/// The file named by `ZKRS_PID_FILE`, holding the server's pid while it runs (what
/// zkServer.sh's `ZOOPIDFILE` holds); removed when the server stops.
struct PidFile {
    path: Option<PathBuf>,
}

impl PidFile {
    fn create() -> Result<PidFile, StartupError> {
        let Some(path) = std::env::var_os("ZKRS_PID_FILE").map(PathBuf::from) else {
            return Ok(PidFile { path: None });
        };
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .map_err(io(format!("writing the pid file {}", path.display())))?;
        Ok(PidFile { path: Some(path) })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether this process started with SIGHUP ignored (`nohup`, as zkServer.sh starts
/// ZooKeeper): then a hang-up must not stop it. Read from `/proc/self/status`, so no
/// signal call is needed.
fn hangup_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 != 0)
}

/// Completes at the first SIGTERM, SIGINT or SIGHUP received after this call, logging
/// which; SIGHUP is left alone when the process started with it ignored.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = if hangup_ignored() {
        tracing::info!("SIGHUP is ignored (nohup): a hang-up will not stop the server");
        None
    } else {
        Some(signal(SignalKind::hangup())?)
    };
    Ok(async move {
        let hung_up = async {
            match hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = hung_up => "SIGHUP",
        };
        tracing::info!(signal = name, "stop signal received");
    })
}
