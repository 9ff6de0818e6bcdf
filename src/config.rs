//! `zoo.cfg` → a typed, validated [`Config`].
//!
//! The file is a Java properties file, read the way ZooKeeper's `QuorumPeerConfig` reads
//! it: `key=value` lines (`:` also separates), `#` and `!` comments, surrounding blanks
//! trimmed. Keys we do not know are logged and ignored, as ZooKeeper turns them into
//! system properties nobody reads. Everything the server needs is passed explicitly from
//! here; nothing reads global properties later.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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

/// The four-letter words zkrs knows, for `4lw.commands.whitelist=*`.
pub const FOUR_LETTER_WORDS: [&str; 15] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "isro", "mntr", "ruok", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs",
];

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Host of the quorum and election ports.
    pub host: String,
    /// Port followers use to talk to the leader.
    pub quorum_port: u16,
    /// Port of leader election.
    pub election_port: u16,
    /// Whether this member votes (`participant`) or only follows (`observer`).
    pub observer: bool,
    /// Client port given after `;`, if any.
    pub client_port: Option<u16>,
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A value could not be parsed.
    #[error("invalid value for {key}: {value:?} ({reason})")]
    Invalid {
        /// The key.
        key: String,
        /// The raw value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A required key is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
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
    /// Port clients connect to.
    pub client_port: u16,
    /// Address to bind the client port to; all addresses when unset.
    pub client_port_address: Option<IpAddr>,
    /// Connections allowed from one IP address; 0 means no limit.
    pub max_client_cnxns: u32,
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
    /// Enabled four-letter words.
    pub four_letter_words: BTreeSet<String>,
    /// Whether TTL nodes are allowed (`extendedTypesEnabled`).
    pub extended_types_enabled: bool,
    /// `user:base64(sha1(user:password))` of the super user, if any.
    pub super_digest: Option<String>,
    /// Whether `reconfig` is enabled (`reconfigEnabled`).
    pub reconfig_enabled: bool,
    /// Whether a lone server runs standalone (`standaloneEnabled`).
    pub standalone_enabled: bool,
    /// Whether to fsync the log before acknowledging (`forceSync`).
    pub force_sync: bool,
    /// Whether a member cut off from its quorum serves read-only clients
    /// (`readonlymode.enabled`).
    pub read_only_mode_enabled: bool,
    /// Whether ensemble members open sessions locally, without a txn
    /// (`localSessionsEnabled`).
    pub local_sessions_enabled: bool,
    /// Whether a local session that creates an ephemeral node becomes global rather than
    /// failing (`localSessionsUpgradingEnabled`).
    pub local_sessions_upgrading_enabled: bool,
    /// Interval of the container and TTL reaper (`znode.container.checkIntervalMs`).
    pub container_check_interval_ms: u64,
    /// Txns between snapshots, randomised over the second half (`snapCount`).
    pub snap_count: u64,
    /// Snapshots kept (`autopurge.snapRetainCount`, at least 3 as in ZooKeeper).
    pub snap_retain_count: usize,
    /// Hours between purges (`autopurge.purgeInterval`); 0 purges after every snapshot.
    pub purge_interval_hours: u64,
    /// The ensemble's members by id; empty for standalone.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// This server's id, read from `dataDir/myid` for ensembles.
    pub my_id: Option<u64>,
    /// The file this configuration came from, for the `conf` four-letter word.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Reads and validates a zoo.cfg file; `myid` is read from its `dataDir`.
    ///
    /// # Errors
    /// [`ConfigError`] if the file cannot be read or holds an invalid value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config = Config::parse(&text)?;
        config.source = Some(path.to_owned());
        if !config.servers.is_empty() {
            let myid_path = config.data_dir.join("myid");
            let myid = std::fs::read_to_string(&myid_path)
                .map_err(|source| ConfigError::Read { path: myid_path, source })?;
            config.my_id = Some(parse_number("myid", myid.trim())?);
        }
        Ok(config)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        match Config::parse(EMBEDDED_DEFAULT) {
            Ok(config) => config,
            Err(err) => unreachable!("the embedded default config is valid: {err}"),
        }
    }

    /// Parses zoo.cfg text. Relative paths are kept as written.
    ///
    /// # Errors
    /// [`ConfigError`] on a missing `dataDir` or an invalid value.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let properties = parse_properties(text);
        let get = |key: &str| properties.get(key).map(String::as_str);

        let tick_time_ms: u32 = match get("tickTime") {
            Some(value) => parse_number("tickTime", value)?,
            None => 2000,
        };
        if tick_time_ms == 0 {
            return Err(invalid("tickTime", "0", "must be positive"));
        }
        let data_dir = get("dataDir").map(PathBuf::from).ok_or(ConfigError::Missing("dataDir"))?;
        let session_timeout_ms_min = match get("minSessionTimeout") {
            Some(value) if value != "-1" => parse_number("minSessionTimeout", value)?,
            _ => tick_time_ms * 2,
        };
        let session_timeout_ms_max = match get("maxSessionTimeout") {
            Some(value) if value != "-1" => parse_number("maxSessionTimeout", value)?,
            _ => tick_time_ms * 20,
        };
        if session_timeout_ms_min > session_timeout_ms_max {
            return Err(invalid(
                "minSessionTimeout",
                &session_timeout_ms_min.to_string(),
                "must not exceed maxSessionTimeout",
            ));
        }

        let mut servers = BTreeMap::new();
        for (key, value) in &properties {
            if let Some(id) = key.strip_prefix("server.") {
                servers.insert(parse_number(key, id)?, parse_server_spec(key, value)?);
            }
        }
        for (key, _) in properties.iter().filter(|(key, _)| !is_known_key(key)) {
            tracing::warn!(key = %key, "ignoring unknown zoo.cfg key");
        }

        Ok(Config {
            tick_time_ms,
            data_dir,
            data_log_dir: get("dataLogDir").map(PathBuf::from),
            client_port: match get("clientPort") {
                Some(value) => parse_number("clientPort", value)?,
                None => 2181,
            },
            client_port_address: match get("clientPortAddress") {
                Some(value) => Some(parse_number("clientPortAddress", value)?),
                None => None,
            },
            max_client_cnxns: match get("maxClientCnxns") {
                Some(value) => parse_number("maxClientCnxns", value)?,
                None => 60,
            },
            session_timeout_ms_min,
            session_timeout_ms_max,
            init_limit: parse_or("initLimit", get("initLimit"), 10)?,
            sync_limit: parse_or("syncLimit", get("syncLimit"), 5)?,
            jute_max_buffer: parse_or(
                "jute.maxbuffer",
                get("jute.maxbuffer"),
                JUTE_MAX_BUFFER_DEFAULT,
            )?,
            four_letter_words: parse_whitelist(get("4lw.commands.whitelist")),
            extended_types_enabled: parse_bool(
                "extendedTypesEnabled",
                get("extendedTypesEnabled"),
                false,
            )?,
            super_digest: get("DigestAuthenticationProvider.superDigest")
                .or_else(|| get("zookeeper.DigestAuthenticationProvider.superDigest"))
                .map(str::to_owned),
            reconfig_enabled: parse_bool("reconfigEnabled", get("reconfigEnabled"), false)?,
            standalone_enabled: parse_bool("standaloneEnabled", get("standaloneEnabled"), true)?,
            force_sync: parse_bool("forceSync", get("forceSync"), true)?,
            read_only_mode_enabled: parse_bool(
                "readonlymode.enabled",
                get("readonlymode.enabled"),
                false,
            )?,
            local_sessions_enabled: parse_bool(
                "localSessionsEnabled",
                get("localSessionsEnabled"),
                false,
            )?,
            local_sessions_upgrading_enabled: parse_bool(
                "localSessionsUpgradingEnabled",
                get("localSessionsUpgradingEnabled"),
                false,
            )?,
            container_check_interval_ms: parse_or(
                "znode.container.checkIntervalMs",
                get("znode.container.checkIntervalMs"),
                1000,
            )?,
            snap_count: parse_or("snapCount", get("snapCount"), 100_000)?,
            snap_retain_count: parse_or(
                "autopurge.snapRetainCount",
                get("autopurge.snapRetainCount"),
                3usize,
            )?
            .max(3),
            purge_interval_hours: parse_or(
                "autopurge.purgeInterval",
                get("autopurge.purgeInterval"),
                0,
            )?,
            servers,
            my_id: None,
            source: None,
        })
    }

    /// Whether this server runs alone (no ensemble configured, or only itself).
    pub fn is_standalone(&self) -> bool {
        self.servers.len() <= 1 && self.standalone_enabled
    }

    /// Clamps a requested session timeout into the negotiable range.
    pub fn negotiate_session_timeout_ms(&self, requested_ms: i32) -> i32 {
        let min = i32::try_from(self.session_timeout_ms_min).unwrap_or(i32::MAX);
        let max = i32::try_from(self.session_timeout_ms_max).unwrap_or(i32::MAX);
        requested_ms.clamp(min, max)
    }

    /// The port clients connect to: this member's `;clientPort` in its `server.N` line,
    /// else `clientPort`.
    pub fn serving_client_port(&self) -> u16 {
        self.my_id
            .and_then(|id| self.servers.get(&id))
            .and_then(|spec| spec.client_port)
            .unwrap_or(self.client_port)
    }

    /// The directory of the transaction log.
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

/// Keys zkrs reads, plus ZooKeeper keys it accepts without using them, so they are not
/// reported as unknown.
fn is_known_key(key: &str) -> bool {
    const KNOWN: &[&str] = &[
        "tickTime",
        "dataDir",
        "dataLogDir",
        "clientPort",
        "clientPortAddress",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "initLimit",
        "syncLimit",
        "jute.maxbuffer",
        "4lw.commands.whitelist",
        "extendedTypesEnabled",
        "DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "reconfigEnabled",
        "standaloneEnabled",
        "forceSync",
        "readonlymode.enabled",
        "znode.container.checkIntervalMs",
        "globalOutstandingLimit",
        "admin.enableServer",
        "admin.serverPort",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "snapCount",
        "preAllocSize",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "peerType",
        "electionAlg",
        "quorumListenOnAllIPs",
        "metricsProvider.className",
        "secureClientPort",
        "clientPortListenBacklog",
    ];
    KNOWN.contains(&key) || key.starts_with("server.") || key.starts_with("authProvider.")
}

fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split_at = line.find(['=', ':']).unwrap_or(line.len());
        let (key, rest) = line.split_at(split_at);
        let value = rest.get(1..).unwrap_or("");
        properties.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    properties
}

fn parse_whitelist(value: Option<&str>) -> BTreeSet<String> {
    let mut words: BTreeSet<String> = BTreeSet::new();
    for word in value.unwrap_or("").split(',').map(str::trim).filter(|word| !word.is_empty()) {
        if word == "*" {
            words.extend(FOUR_LETTER_WORDS.iter().map(|word| (*word).to_owned()));
        } else {
            words.insert(word.to_owned());
        }
    }
    // ZooKeeper always allows srvr: zkServer.sh depends on it.
    words.insert("srvr".to_owned());
    words
}

fn parse_server_spec(key: &str, value: &str) -> Result<ServerSpec, ConfigError> {
    let (server_part, client_part) = match value.split_once(';') {
        Some((server, client)) => (server, Some(client)),
        None => (value, None),
    };
    let parts: Vec<&str> = server_part.split(':').map(str::trim).collect();
    let [host, quorum_port, election_port, role @ ..] = parts.as_slice() else {
        return Err(invalid(key, value, "expected host:quorumPort:electionPort"));
    };
    let observer = match role {
        [] | ["participant"] => false,
        ["observer"] => true,
        _ => return Err(invalid(key, value, "role must be participant or observer")),
    };
    let client_port = match client_part {
        None => None,
        Some(client) => {
            let port = client.rsplit(':').next().unwrap_or(client).trim();
            Some(parse_number(key, port)?)
        }
    };
    Ok(ServerSpec {
        host: (*host).to_owned(),
        quorum_port: parse_number(key, quorum_port)?,
        election_port: parse_number(key, election_port)?,
        observer,
        client_port,
    })
}

fn invalid(key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), value: value.to_owned(), reason }
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| invalid(key, value, "not a valid number or address"))
}

fn parse_or<T: std::str::FromStr>(
    key: &str,
    value: Option<&str>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(value) => parse_number(key, value),
        None => Ok(default),
    }
}

fn parse_bool(key: &str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "yes") => Ok(true),
        Some("false" | "no") => Ok(false),
        Some(other) => Err(invalid(key, other, "expected true/false or yes/no")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_standalone_on_2181() {
        let config = Config::embedded_default();
        assert_eq!(config.client_port, 2181);
        assert_eq!(config.data_dir, PathBuf::from("./zkrs-data"));
        assert!(config.is_standalone());
        assert_eq!(config.session_timeout_ms_min, 4000);
        assert_eq!(config.session_timeout_ms_max, 40000);
    }

    #[test]
    fn parses_the_compat_harness_config() {
        let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/x/data\n\
                    clientPort=32310\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n\
                    extendedTypesEnabled=true\nadmin.enableServer=false\n\
                    DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
                    server.1=127.0.0.1:32111:32112\nserver.2=127.0.0.1:32121:32122:observer;2182\n";
        let config = Config::parse(text).expect("valid");
        assert_eq!(config.client_port, 32310);
        assert_eq!(config.max_client_cnxns, 0);
        assert!(config.extended_types_enabled);
        assert!(config.four_letter_words.contains("mntr"));
        assert_eq!(config.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(config.servers.len(), 2);
        let second = &config.servers[&2];
        assert!(second.observer);
        assert_eq!(second.client_port, Some(2182));
        assert_eq!(config.servers[&1].quorum_port, 32111);
    }

    #[test]
    fn whitelist_defaults_to_srvr_only() {
        let config = Config::parse("dataDir=/d\n").expect("valid");
        assert_eq!(config.four_letter_words, BTreeSet::from(["srvr".to_owned()]));
    }

    #[test]
    fn rejects_bad_values_with_the_key_named() {
        let err = Config::parse("dataDir=/d\nclientPort=nope\n").expect_err("invalid");
        assert!(err.to_string().contains("clientPort"));
        assert!(matches!(Config::parse("tickTime=5\n"), Err(ConfigError::Missing("dataDir"))));
    }

    #[test]
    fn session_timeouts_are_clamped() {
        let config = Config::parse("dataDir=/d\ntickTime=100\n").expect("valid");
        assert_eq!(config.negotiate_session_timeout_ms(1), 200);
        assert_eq!(config.negotiate_session_timeout_ms(100_000), 2000);
        assert_eq!(config.negotiate_session_timeout_ms(700), 700);
    }
}
