//! `zoo.cfg` → a typed, validated [`Config`], read exactly as ZooKeeper 3.9 reads it.
//!
//! - [`properties`]: the file as `java.util.Properties` reads it, values typed by the
//!   rule ZooKeeper applies to each key.
//! - [`keys`]: every documented key and what zkrs does with it; keys that would make
//!   zkrs run weaker than configured stop start-up.
//! - [`membership`]: `server.N` lines, from zoo.cfg or from the `dynamicConfigFile`.
//!
//! Everything the server needs is passed explicitly from here; nothing reads global
//! properties later. What start-up must tell the operator (ignored keys, misspellings,
//! values ZooKeeper would reinterpret) is collected in [`Config::notices`].

pub mod admin;
pub mod enforce_auth;
pub mod keys;
pub mod membership;
pub mod properties;
pub mod quorum_sasl;
pub mod throttle;
pub mod tls;
pub mod values;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

pub use membership::{Membership, ServerSpec};
use properties::{Properties, Reader};

/// The zoo.cfg used by `zkrs server` with no argument: a standalone server on port 2181
/// with its data in `./zkrs-data`.
pub const EMBEDDED_DEFAULT: &str = "\
tickTime=2000
dataDir=./zkrs-data
clientPort=2181
4lw.commands.whitelist=*
";

/// ZooKeeper's default `jute.maxbuffer`: the largest frame a client may send.
pub const JUTE_MAX_BUFFER_DEFAULT: usize = 0xfffff;

/// The least `jute.maxbuffer.extrasize` ZooKeeper takes (its value before the setting).
const JUTE_EXTRA_MIN: usize = 1024;

/// The listen backlog of the client port when `clientPortListenBacklog` is -1.
pub const LISTEN_BACKLOG_DEFAULT: u32 = 1024;

/// The four-letter words zkrs knows, for `4lw.commands.whitelist=*`.
pub const FOUR_LETTER_WORDS: [&str; 16] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "hash", "isro", "mntr", "ruok", "srst", "srvr",
    "stat", "wchc", "wchp", "wchs",
];

/// Why a configuration was rejected. Every variant means exit status 2, as ZooKeeper's
/// "Invalid config, exiting abnormally".
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file is not a valid properties file.
    #[error("{file}{}: {message}", line.map(|line| format!(" line {line}")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: String,
        /// Where, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A value could not be used.
    #[error("invalid value for {key}: {value:?} ({reason})")]
    Invalid {
        /// The key.
        key: String,
        /// The raw value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A required key is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// Keys together make no configuration ZooKeeper would run.
    #[error("{0}")]
    Inconsistent(String),
    /// Keys ask for what zkrs does not support and must not run without.
    #[error(
        "refusing to start rather than run weaker than configured; zkrs does not support {}",
        .0.join("; ")
    )]
    Refused(Vec<String>),
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `key=value`.
    pub fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
        ConfigError::Invalid { key: key.to_owned(), value: value.to_owned(), reason }
    }
}

/// Something start-up tells the operator about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Whether it is worth a warning (else INFO).
    pub warn: bool,
    /// The message.
    pub message: String,
}

impl Notice {
    /// A warning.
    pub fn warn(message: String) -> Notice {
        Notice { warn: true, message }
    }

    /// An INFO line.
    pub fn info(message: String) -> Notice {
        Notice { warn: false, message }
    }
}

/// The server's configuration, with ZooKeeper's defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// Length of one tick, the unit of session timeouts and of the ensemble's limits.
    pub tick_time_ms: u32,
    /// Where snapshots (and, without `dataLogDir`, the log) live.
    pub data_dir: PathBuf,
    /// Where the transaction log lives, when apart from the snapshots.
    pub data_log_dir: Option<PathBuf>,
    /// Whether missing data directories are created (`zookeeper.datadir.autocreate`).
    pub data_dir_autocreate: bool,
    /// `clientPort` and `clientPortAddress` resolved; `None` without `clientPort`: no
    /// client listener, as in ZooKeeper. A member's `server.N` client address overrides
    /// it, see [`Config::client_address`].
    pub static_client_address: Option<SocketAddr>,
    /// TLS on the client ports (`secureClientPort`, `client.portUnification`, `ssl.*`);
    /// `None` when no client port speaks TLS.
    pub client_tls: Option<tls::ClientTls>,
    /// TLS between members (`sslQuorum`, `portUnification`, `ssl.quorum.*`); `None` when
    /// members speak only plain TCP.
    pub quorum_tls: Option<tls::QuorumTls>,
    /// Where ZooKeeper's Prometheus endpoint listens (`metricsProvider.httpHost` and
    /// `httpPort` with the Prometheus provider as `metricsProvider.className`).
    pub prometheus_address: Option<SocketAddr>,
    /// Whether the Prometheus endpoint adds the process's standard metrics
    /// (`metricsProvider.exportJvmInfo`, `true` unless set to anything else).
    pub prometheus_process_metrics: bool,
    /// The AdminServer (`admin.*`); `None` with `admin.enableServer=false`.
    pub admin: Option<admin::AdminSettings>,
    /// SASL between members (`quorum.auth.*`); `None` without `quorum.auth.enableSasl`.
    pub quorum_sasl: Option<quorum_sasl::QuorumSasl>,
    /// The certificate subject that is the super user
    /// (`X509AuthenticationProvider.superUser`).
    pub x509_super_user: Option<String>,
    /// The users SASL DIGEST-MD5 authenticates (the JAAS file's `Server` section);
    /// `None` without a JAAS file.
    pub sasl: Option<crate::sasl::SaslUsers>,
    /// The schemes a client must have authenticated with, one of them, before any request
    /// but `auth` and SASL is served (`enforce.auth.*`, `sessionRequireClientSASLAuth`);
    /// `None` when nothing is enforced.
    pub enforced_auth_schemes: Option<Vec<String>>,
    /// The handshakes' token bucket (`zookeeper.connection_throttle_*`).
    pub connection_throttle: throttle::ConnectionThrottleSettings,
    /// TLS handshakes in progress past which a new connection on a TLS or unified port
    /// is closed (`zookeeper.netty.server.outstandingHandshake.limit`); 0 for no limit.
    pub tls_handshake_limit: u64,
    /// How requests are admitted (`zookeeper.request_throttle_*`, `globalOutstandingLimit`,
    /// large requests).
    pub request_throttle: throttle::RequestThrottleSettings,
    /// Backlog of the client port's listen queue (`clientPortListenBacklog`).
    pub client_port_listen_backlog: u32,
    /// Connections allowed from one IP address; 0 means no limit.
    pub max_client_cnxns: u32,
    /// Client connections allowed in all (`maxCnxns`); 0 means no limit.
    pub max_cnxns: u32,
    /// Smallest session timeout a client may negotiate (default 2 ticks).
    pub session_timeout_ms_min: u32,
    /// Largest session timeout a client may negotiate (default 20 ticks).
    pub session_timeout_ms_max: u32,
    /// Ticks a follower may take to connect and sync with the leader.
    pub init_limit: u32,
    /// Ticks a follower may lag behind the leader.
    pub sync_limit: u32,
    /// Largest frame accepted from a client (`jute.maxbuffer`).
    pub jute_max_buffer: usize,
    /// What packets between members may carry beyond `jute.maxbuffer`
    /// (`jute.maxbuffer.extrasize`: by default as much again, at least 1024, as
    /// ZooKeeper's `BinaryInputArchive` allows).
    pub jute_max_buffer_extra: usize,
    /// Enabled four-letter words.
    pub four_letter_words: BTreeSet<String>,
    /// Whether TTL nodes are allowed (`extendedTypesEnabled`).
    pub extended_types_enabled: bool,
    /// Whether the tree's digest is kept (`digest.enabled`, ZooKeeper's
    /// `zookeeper.digest.enabled`).
    pub digest_enabled: bool,
    /// The digest scheme's provider: its hash (`DigestAuthenticationProvider.digestAlg`)
    /// and the super user's digest (`...superDigest`); `None` when it is off
    /// (`DigestAuthenticationProvider.enabled=false`).
    pub digest: Option<crate::session::auth::DigestProvider>,
    /// Whether `reconfig` is enabled (`reconfigEnabled`).
    pub reconfig_enabled: bool,
    /// Whether a leader serves clients too (`leaderServes`: anything but `no`).
    pub leader_serves: bool,
    /// Whether ACLs go unchecked (`skipACL=yes`).
    pub skip_acl: bool,
    /// Whether client writes and session ends are written to the audit log
    /// (`audit.enable`).
    pub audit_enabled: bool,
    /// Whether writes past a quota's hard limit are refused (`enforceQuota`).
    pub enforce_quota: bool,
    /// Whether a lone server runs standalone (`standaloneEnabled`).
    pub standalone_enabled: bool,
    /// Whether to fsync the log before acknowledging (`forceSync`).
    pub force_sync: bool,
    /// A log sync slower than this is logged at WARN (`fsync.warningthresholdms`).
    pub fsync_warning_threshold_ms: u64,
    /// Whether a member cut off from its quorum serves read-only clients
    /// (`readonlymode.enabled`).
    pub read_only_mode_enabled: bool,
    /// Whether ensemble members open sessions locally, without a txn
    /// (`localSessionsEnabled`).
    pub local_sessions_enabled: bool,
    /// Whether a local session that creates an ephemeral node becomes global rather than
    /// failing (`localSessionsUpgradingEnabled`).
    pub local_sessions_upgrading_enabled: bool,
    /// Whether an ensemble member answers a read only once it has applied every write
    /// committed before the read arrived (`zkrs.linearizableReads`, zkrs's own key).
    pub linearizable_reads: bool,
    /// Interval of the container and TTL reaper (`znode.container.checkIntervalMs`).
    pub container_check_interval_ms: u64,
    /// Txns between snapshots, randomised over the second half (`snapCount`).
    pub snap_count: u64,
    /// Snapshots kept (`autopurge.snapRetainCount`, at least 3 as in ZooKeeper).
    pub snap_retain_count: usize,
    /// Hours between purges (`autopurge.purgeInterval`); 0 purges after every snapshot.
    pub purge_interval_hours: u64,
    /// Whether members listen for each other on every address (`quorumListenOnAllIPs`).
    pub quorum_listen_on_all_ips: bool,
    /// The ensemble's members; empty for standalone.
    pub membership: Membership,
    /// This server's id, read from `dataDir/myid`.
    pub my_id: Option<u64>,
    /// The file this configuration came from, for the `conf` four-letter word.
    pub source: Option<PathBuf>,
    /// The static file's text as read at start, for the AdminServer's
    /// `initial_configuration`.
    pub initial_text: String,
    /// The dynamic file the membership came from, if any.
    pub dynamic_source: Option<PathBuf>,
    /// What start-up tells the operator about the configuration.
    pub notices: Vec<Notice>,
}

impl Config {
    /// Reads and validates a zoo.cfg file, the `dynamicConfigFile` it names, and `myid`
    /// from its `dataDir`.
    ///
    /// # Errors
    /// [`ConfigError`] for a file that cannot be read, an invalid value, or a setting
    /// zkrs must not run without.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let properties = Properties::parse(&path.display().to_string(), &text)?;
        let dynamic = match properties.get("dynamicConfigFile") {
            Some((_, file)) => Some(read_dynamic(Path::new(file))?),
            None => None,
        };
        let mut config = Config::from_properties(&properties, dynamic)?;
        config.source = Some(path.to_owned());
        config.initial_text = String::from_utf8_lossy(&text).into_owned();
        let my_id = read_my_id(&config.data_dir)?;
        config.with_my_id(my_id)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        match Config::parse(EMBEDDED_DEFAULT) {
            Ok(config) => config,
            Err(err) => unreachable!("the embedded default config is valid: {err}"),
        }
    }

    /// Parses zoo.cfg text with its membership inline and no `myid`. Relative paths are
    /// kept as written.
    ///
    /// # Errors
    /// [`ConfigError`] on a missing `dataDir`, an invalid value or a refused key.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config =
            Config::from_properties(&Properties::parse("zoo.cfg", text.as_bytes())?, None)?;
        Ok(Config { initial_text: text.to_owned(), ..config })
    }

    /// The configuration of a static file's properties and, when it names one, the
    /// membership of its dynamic file (with that file's path).
    fn from_properties(
        properties: &Properties,
        dynamic: Option<(PathBuf, Membership)>,
    ) -> Result<Config, ConfigError> {
        let mut notices = classify_keys(properties, dynamic.is_some())?;
        let mut read = Reader::new(properties);
        let tick_time_ms: u32 = read.number("tickTime", 3000)?;
        if tick_time_ms == 0 {
            return Err(ConfigError::Missing("tickTime"));
        }
        let data_dir =
            read.text("dataDir").map(PathBuf::from).ok_or(ConfigError::Missing("dataDir"))?;
        let session_timeout_ms_min = match read.number::<i64>("minSessionTimeout", -1)? {
            -1 => tick_time_ms.saturating_mul(2),
            ms => u32::try_from(ms).map_err(|_| out_of_range("minSessionTimeout", ms))?,
        };
        let session_timeout_ms_max = match read.number::<i64>("maxSessionTimeout", -1)? {
            -1 => tick_time_ms.saturating_mul(20),
            ms => u32::try_from(ms).map_err(|_| out_of_range("maxSessionTimeout", ms))?,
        };
        if session_timeout_ms_min > session_timeout_ms_max {
            return Err(ConfigError::Inconsistent(
                "minSessionTimeout must not be larger than maxSessionTimeout".to_owned(),
            ));
        }
        let read_only_mode_enabled = read.flag("readonlymode.enabled", false)?;
        let jute_max_buffer = read.number("jute.maxbuffer", JUTE_MAX_BUFFER_DEFAULT)?;
        let (dynamic_source, membership) = match dynamic {
            Some((path, membership)) => (Some(path), membership),
            None => (None, static_membership(properties)?),
        };
        let snap_retain_count = read.number("autopurge.snapRetainCount", 3usize)?;
        if snap_retain_count < 3 {
            notices.push(Notice::warn(format!(
                "Invalid autopurge.snapRetainCount: {snap_retain_count}. Defaulting to 3"
            )));
        }
        let backlog = read.number::<i64>("clientPortListenBacklog", -1)?;
        let client_tls = tls::read_client_tls(&mut read, &mut notices)?;
        let quorum_tls = tls::read_quorum_tls(&mut read, &mut notices)?;
        let quorum_sasl = quorum_sasl::read_quorum_sasl(&mut read)?;
        let prometheus_address = read_metrics_provider(&mut read, &mut notices)?;
        let admin = admin::read_admin(&mut read, &mut notices)?;
        let digest = read_digest_provider(&mut read)?;
        let sasl = read_sasl(&read, properties)?;
        let enforced_auth_schemes =
            enforce_auth::read_enforced_auth(&mut read, properties, digest.is_some())?;
        let connection_throttle = throttle::read_connection_throttle(&mut read, &mut notices)?;
        let request_throttle = throttle::read_request_throttle(&mut read, &mut notices)?;
        let config = Config {
            tick_time_ms,
            data_dir,
            data_log_dir: read.text("dataLogDir").map(PathBuf::from),
            data_dir_autocreate: read.flag("zookeeper.datadir.autocreate", true)?,
            static_client_address: static_client_address(&read)?,
            client_tls,
            quorum_tls,
            quorum_sasl,
            prometheus_address,
            prometheus_process_metrics: read.flag("metricsProvider.exportJvmInfo", true)?,
            admin,
            sasl,
            enforced_auth_schemes,
            connection_throttle,
            tls_handshake_limit: u64::try_from(
                read.number::<i32>("zookeeper.netty.server.outstandingHandshake.limit", -1)?,
            )
            .unwrap_or(0),
            request_throttle,
            x509_super_user: read.text("X509AuthenticationProvider.superUser").map(str::to_owned),
            client_port_listen_backlog: u32::try_from(backlog)
                .ok()
                .filter(|backlog| *backlog > 0)
                .unwrap_or(LISTEN_BACKLOG_DEFAULT),
            max_client_cnxns: read.number("maxClientCnxns", 60)?,
            max_cnxns: read.number::<i64>("maxCnxns", 0)?.clamp(0, i64::from(u32::MAX)) as u32,
            session_timeout_ms_min,
            session_timeout_ms_max,
            init_limit: read.number("initLimit", 0)?,
            sync_limit: read.number("syncLimit", 0)?,
            jute_max_buffer,
            jute_max_buffer_extra: read
                .number("jute.maxbuffer.extrasize", jute_max_buffer)?
                .max(JUTE_EXTRA_MIN),
            four_letter_words: parse_whitelist(
                read.text("4lw.commands.whitelist"),
                read_only_mode_enabled,
            ),
            extended_types_enabled: read.flag("extendedTypesEnabled", false)?,
            digest_enabled: read.flag("digest.enabled", true)?,
            digest,
            reconfig_enabled: read.flag("reconfigEnabled", false)?,
            leader_serves: read.flag("leaderServes", true)?,
            skip_acl: read.flag("skipACL", false)?,
            audit_enabled: read.flag("audit.enable", false)?,
            enforce_quota: read.flag("enforceQuota", false)?,
            standalone_enabled: read.flag("standaloneEnabled", true)?,
            force_sync: read.flag("forceSync", true)?,
            fsync_warning_threshold_ms: read.number("fsync.warningthresholdms", 1000)?,
            read_only_mode_enabled,
            local_sessions_enabled: read.flag("localSessionsEnabled", false)?,
            local_sessions_upgrading_enabled: read.flag("localSessionsUpgradingEnabled", false)?,
            linearizable_reads: read.flag("zkrs.linearizableReads", false)?,
            container_check_interval_ms: read.number("znode.container.checkIntervalMs", 60_000)?,
            snap_count: read.number::<u64>("snapCount", 100_000)?.max(2),
            snap_retain_count: snap_retain_count.max(3),
            purge_interval_hours: read.number("autopurge.purgeInterval", 0)?,
            quorum_listen_on_all_ips: read.flag("quorumListenOnAllIPs", false)?,
            membership,
            my_id: None,
            source: None,
            initial_text: String::new(),
            dynamic_source,
            notices: Vec::new(),
        };
        let election_algorithm: i64 = read.number("electionAlg", 3)?;
        if election_algorithm != 3 {
            return Err(ConfigError::Inconsistent(
                "Invalid electionAlg value. Only 3 is supported.".to_owned(),
            ));
        }
        notices.append(&mut read.notices);
        if config.skip_acl {
            notices.push(Notice::warn("skipACL=yes: no ACL is checked, for any client".into()));
        }
        let config = Config { notices, ..config };
        config.check_membership()
    }

    /// ZooKeeper's checks of the membership (`parseDynamicConfig`): which combinations of
    /// participants, observers and `standaloneEnabled` run at all.
    fn check_membership(mut self) -> Result<Config, ConfigError> {
        self.membership.check_groups().map_err(ConfigError::Inconsistent)?;
        let participants = self.membership.participants();
        let observers = self.membership.servers.len() - participants;
        match participants {
            0 if !self.standalone_enabled => {
                return Err(ConfigError::Inconsistent(
                    "standaloneEnabled = false then number of participants should be >0".into(),
                ))
            }
            0 if observers > 0 => {
                return Err(ConfigError::Inconsistent(
                    "Observers w/o participants is an invalid configuration".into(),
                ))
            }
            0 => {}
            1 if self.standalone_enabled => {
                if observers > 0 {
                    return Err(ConfigError::Inconsistent(
                        "Observers w/o quorum is an invalid configuration".into(),
                    ));
                }
                self.notices.push(Notice::warn(
                    "Invalid configuration, only one server specified (ignoring): running \
                     standalone, as ZooKeeper does"
                        .into(),
                ));
            }
            1 | 2 => self.notices.push(Notice::warn(
                "No server failure will be tolerated. You need at least 3 servers.".into(),
            )),
            even if even % 2 == 0 => self.notices.push(Notice::warn(
                "Non-optimal configuration, consider an odd number of servers.".into(),
            )),
            _ => {}
        }
        if !self.is_standalone() {
            if self.init_limit == 0 {
                return Err(ConfigError::Missing("initLimit"));
            }
            if self.sync_limit == 0 {
                return Err(ConfigError::Missing("syncLimit"));
            }
        }
        Ok(self)
    }

    /// Sets this server's id (from `myid`) and checks what depends on it: an ensemble
    /// member needs one that is among the members, and its `server.N` client address
    /// must agree with `clientPortAddress`.
    ///
    /// # Errors
    /// [`ConfigError`] when a member has no id, an unknown one, or conflicting client
    /// addresses.
    pub fn with_my_id(mut self, my_id: Option<u64>) -> Result<Config, ConfigError> {
        self.my_id = my_id;
        if self.is_standalone() {
            return Ok(self);
        }
        let id = my_id.ok_or_else(|| ConfigError::Inconsistent("myid file is missing".into()))?;
        let Some(me) = self.membership.servers.get(&id) else {
            return Err(ConfigError::Inconsistent(format!(
                "myid {id} has no server.{id} line in the membership"
            )));
        };
        if let (Some(static_address), Some((host, port))) = (self.static_client_address, &me.client)
        {
            let dynamic = resolve(&format!("server.{id}"), host, *port)?;
            let conflicts = if static_address.ip().is_unspecified() {
                static_address.port() != dynamic.port()
            } else {
                static_address != dynamic
            };
            if conflicts {
                return Err(ConfigError::Inconsistent(format!(
                    "client address for this server (id = {id}) in static config file is \
                     {static_address} is different from client address found in dynamic \
                     file: {dynamic}"
                )));
            }
        }
        Ok(self)
    }

    /// Whether this server runs alone: ZooKeeper runs standalone unless
    /// `standaloneEnabled=false` or more than one member votes.
    pub fn is_standalone(&self) -> bool {
        self.standalone_enabled && self.membership.participants() <= 1
    }

    /// Clamps a requested session timeout into the negotiable range.
    pub fn negotiate_session_timeout_ms(&self, requested_ms: i32) -> i32 {
        let min = i32::try_from(self.session_timeout_ms_min).unwrap_or(i32::MAX);
        let max = i32::try_from(self.session_timeout_ms_max).unwrap_or(i32::MAX);
        requested_ms.clamp(min, max)
    }

    /// Where clients connect: this member's client address in its `server.N` line, else
    /// `clientPort`/`clientPortAddress`; `None` when neither is set (no client listener).
    ///
    /// # Errors
    /// When the member's client host does not resolve.
    pub fn client_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let member_client = if self.is_standalone() {
            None
        } else {
            self.my_id
                .and_then(|id| self.membership.servers.get(&id))
                .and_then(|me| me.client.as_ref())
        };
        match member_client {
            Some((host, port)) => resolve("server line's client address", host, *port).map(Some),
            None => Ok(self.static_client_address),
        }
    }

    /// The port clients connect to, for the `conf` four-letter word (0 when none).
    pub fn serving_client_port(&self) -> u16 {
        self.client_address().ok().flatten().map_or(0, |address| address.port())
    }

    /// The directory of the transaction log.
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

fn out_of_range(key: &str, value: i64) -> ConfigError {
    ConfigError::invalid(key, &value.to_string(), "out of range".to_owned())
}

/// Reports every key the table does not mark honoured, and refuses all at once those
/// zkrs must not run without.
fn classify_keys(
    properties: &Properties,
    has_dynamic_file: bool,
) -> Result<Vec<Notice>, ConfigError> {
    let mut notices = Vec::new();
    let mut refusals = Vec::new();
    for (key, value) in properties.iter() {
        let is_membership =
            key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight");
        if has_dynamic_file && is_membership {
            return Err(ConfigError::Inconsistent(format!(
                "parameter: {key} must be in a separate dynamic config file"
            )));
        }
        match keys::classify(key, value) {
            keys::Verdict::Honoured => {}
            keys::Verdict::Ignored(message) => notices.push(Notice::info(message)),
            keys::Verdict::Warn(message) => notices.push(Notice::warn(message)),
            keys::Verdict::Refuse(message) => refusals.push(message),
        }
    }
    if refusals.is_empty() {
        Ok(notices)
    } else {
        Err(ConfigError::Refused(refusals))
    }
}

/// ZooKeeper's metrics providers: its default (the metrics `mntr` shows, which zkrs always
/// has), the null one, and the Prometheus one, whose endpoint zkrs serves.
const METRICS_PROVIDERS: [&str; 3] = [
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
    PROMETHEUS_PROVIDER,
];

/// ZooKeeper's Prometheus metrics provider.
const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// The Prometheus endpoint's address, when `metricsProvider.className` names
/// ZooKeeper's Prometheus provider (`metricsProvider.httpHost`, default every address;
/// `metricsProvider.httpPort`, default 7000). Another provider class is warned about:
/// zkrs has no JVM to load it.
fn read_metrics_provider(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let class = read.text("metricsProvider.className").map(str::trim).unwrap_or_default();
    if class != PROMETHEUS_PROVIDER {
        if !class.is_empty() && !METRICS_PROVIDERS.contains(&class) {
            notices.push(Notice::warn(format!(
                "metricsProvider.className={class} is not a provider zkrs has; mntr shows the \
                 metrics"
            )));
        }
        return Ok(None);
    }
    let port: u16 = read.number("metricsProvider.httpPort", 7000)?;
    Ok(Some(http_address(read, "metricsProvider.httpHost", port)?))
}

/// Where an HTTP endpoint listens: the host its `host_key` names (every address by
/// default), resolved, and `port`.
///
/// # Errors
/// A host that does not resolve.
fn http_address(read: &Reader<'_>, host_key: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let host = read.text(host_key).unwrap_or("0.0.0.0").trim();
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| ConfigError::invalid(host_key, host, "does not resolve".into()))
}

/// The digest provider, `None` when `DigestAuthenticationProvider.enabled` is not `true`.
/// An algorithm Java's `MessageDigest` lacks stops ZooKeeper's provider from loading; zkrs
/// refuses to start, naming it.
fn read_digest_provider(
    read: &mut Reader<'_>,
) -> Result<Option<crate::session::auth::DigestProvider>, ConfigError> {
    use crate::session::auth::{DigestAlgorithm, DigestProvider};
    if !read.flag("DigestAuthenticationProvider.enabled", true)? {
        return Ok(None);
    }
    let key = "DigestAuthenticationProvider.digestAlg";
    let algorithm = match read.text(key) {
        None => DigestAlgorithm::default(),
        Some(name) => DigestAlgorithm::from_java_name(name).ok_or_else(|| {
            ConfigError::invalid(
                key,
                name,
                format!(
                    "don't support this ACL digest algorithm: {name} in the current environment"
                ),
            )
        })?,
    };
    let super_digest = read.text("DigestAuthenticationProvider.superDigest").map(str::to_owned);
    Ok(Some(DigestProvider { algorithm, super_digest }))
}

/// The SASL users: the JAAS file's `Server` section, which a SASL authentication provider
/// needs. A section without ZooKeeper's DIGEST-MD5 module (Kerberos' module, say) is
/// refused: zkrs does not speak GSSAPI.
fn read_sasl(
    read: &Reader<'_>,
    properties: &Properties,
) -> Result<Option<crate::sasl::SaslUsers>, ConfigError> {
    let key = "java.security.auth.login.config";
    let provider = enforce_auth::configured_schemes(properties).contains("sasl");
    let Some(path) = read.text(key) else {
        if provider {
            return Err(ConfigError::Inconsistent(format!(
                "the SASL authentication provider needs {key}, a JAAS file whose Server \
                 section lists its users"
            )));
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let sections = crate::sasl::jaas::parse(&text)
        .map_err(|err| ConfigError::invalid(key, path, err.to_string()))?;
    let section = crate::sasl::SERVER_SECTION;
    if !provider && !sections.contains_key(section) {
        // A JAAS file for members only (QuorumServer, QuorumLearner).
        return Ok(None);
    }
    let passwords = crate::sasl::jaas::digest_users(&sections, section).ok_or_else(|| {
        ConfigError::invalid(
            key,
            path,
            format!(
                "its {section} section has no {} (GSSAPI/Kerberos is not supported)",
                crate::sasl::jaas::DIGEST_LOGIN_MODULE
            ),
        )
    })?;
    let super_user = read.text("zookeeper.superUser").map(str::to_owned);
    Ok(Some(crate::sasl::SaslUsers { passwords, super_user }))
}

fn read_properties(path: &Path) -> Result<Properties, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    Properties::parse(&path.display().to_string(), &bytes)
}

/// The membership in a `dynamicConfigFile`: only `server.N`, `group.N` and `weight.N`
/// lines; its version is the hex suffix of the file's name, as in ZooKeeper.
fn read_dynamic(path: &Path) -> Result<(PathBuf, Membership), ConfigError> {
    let properties = read_properties(path)?;
    if properties.contains("version") {
        return Err(ConfigError::Inconsistent(format!(
            "{}: dynamic file shouldn't have version inside",
            path.display()
        )));
    }
    for (key, _) in properties.iter() {
        if !["server.", "group", "weight"].iter().any(|prefix| key.starts_with(prefix)) {
            return Err(ConfigError::Inconsistent(format!(
                "{}: Unrecognised parameter: {key}",
                path.display()
            )));
        }
    }
    let mut membership = membership_lines(&properties)?;
    membership.version = dynamic_file_version(path).unwrap_or(0);
    Ok((path.to_owned(), membership))
}

/// `QuorumPeerConfig.getVersionFromFilename`: the hex number after the last dot.
fn dynamic_file_version(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let (_, suffix) = name.rsplit_once('.')?;
    u64::from_str_radix(suffix, 16).ok()
}

/// The membership written in zoo.cfg itself (before ZooKeeper 3.5), with its optional
/// `version` key.
fn static_membership(properties: &Properties) -> Result<Membership, ConfigError> {
    let mut membership = membership_lines(properties)?;
    if let Some((key, value)) = properties.get("version") {
        membership.version = u64::from_str_radix(value, 16)
            .map_err(|_| ConfigError::invalid(key, value, "not a hex number".to_owned()))?;
    }
    Ok(membership)
}

/// The `server.N`, `group.N` and `weight.N` lines among `properties`.
fn membership_lines(properties: &Properties) -> Result<Membership, ConfigError> {
    let mut membership = Membership::default();
    for (key, value) in properties.iter() {
        let id = |id: &str| {
            values::parse_long(id)
                .and_then(|id| u64::try_from(id).ok())
                .ok_or_else(|| ConfigError::invalid(key, value, "the id is not a number".into()))
        };
        if let Some(server) = key.strip_prefix("server.") {
            membership.servers.insert(id(server)?, membership::parse_server(key, value)?);
        } else if let Some(group) = key.strip_prefix("group.") {
            membership.groups.insert(id(group)?, membership::parse_group(key, value)?);
        } else if let Some(server) = key.strip_prefix("weight.") {
            membership.weights.insert(id(server)?, membership::parse_weight(key, value)?);
        }
    }
    Ok(membership)
}

/// `clientPort` with `clientPortAddress` (an address or a host name), as ZooKeeper
/// resolves them when it reads the file.
fn static_client_address(read: &Reader<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    port_on_address(read, "clientPort", "clientPortAddress")
}

/// A port key with its optional address key (every address when unset); an address
/// without its port is an error, as in ZooKeeper.
fn port_on_address(
    read: &Reader<'_>,
    port_key: &str,
    address_key: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let port = match read.text(port_key) {
        None => None,
        Some(value) => Some(
            values::parse_long(value)
                .and_then(|port| u16::try_from(port).ok())
                .ok_or_else(|| ConfigError::invalid(port_key, value, "not a port".into()))?,
        ),
    };
    match (port, read.text(address_key)) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError::Inconsistent(format!(
            "{address_key} is set but {port_key} is not set"
        ))),
        (Some(port), None) => Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))),
        (Some(port), Some(host)) => resolve(address_key, host, port).map(Some),
    }
}

/// The first address `host` resolves to, as Java's `InetAddress.getByName`.
fn resolve(key: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|err| ConfigError::invalid(key, host, format!("does not resolve: {err}")))?
        .next()
        .ok_or_else(|| ConfigError::invalid(key, host, "has no address".to_owned()))
}

/// `dataDir/myid` as ZooKeeper reads it: the first line, a number, when the file exists.
fn read_my_id(data_dir: &Path) -> Result<Option<u64>, ConfigError> {
    let path = data_dir.join("myid");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    let line = text.lines().next().unwrap_or("");
    values::parse_long(line)
        .and_then(|id| u64::try_from(id).ok())
        .map(Some)
        .ok_or_else(|| ConfigError::Inconsistent(format!("serverid {line} is not a number")))
}

/// `4lw.commands.whitelist` as ZooKeeper's `FourLetterCommands.isEnabled` reads it: a
/// comma list or `*`; `srvr` always, and `isro` in read-only mode.
fn parse_whitelist(value: Option<&str>, read_only_mode: bool) -> BTreeSet<String> {
    let mut words: BTreeSet<String> = BTreeSet::new();
    for word in value.unwrap_or("").split(',').map(str::trim).filter(|word| !word.is_empty()) {
        if word == "*" {
            words.extend(FOUR_LETTER_WORDS.iter().map(|word| (*word).to_owned()));
            break;
        }
        words.insert(word.to_owned());
    }
    if read_only_mode {
        words.insert("isro".to_owned());
    }
    words.insert("srvr".to_owned());
    words
}

#[cfg(test)]
mod config_test;
