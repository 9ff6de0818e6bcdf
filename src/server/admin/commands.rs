//! The AdminServer's commands, as ZooKeeper 3.9's `Commands` defines them: each under
//! its primary name and aliases (the four-letter words among them), answering a JSON
//! object of ZooKeeper's field names with `command` and `error` after them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::server::four_letter::{self, VERSION};
use crate::server::registry::Connection;
use crate::server::{metrics, Mode, Shared};
use crate::storage::Storage;
use crate::txn::{SessionId, Zxid};

/// One command.
#[derive(Debug)]
pub struct Command {
    /// The primary name first, then the aliases.
    pub names: &'static [&'static str],
    /// Whether it answers only while the server serves clients.
    pub needs_server: bool,
    /// Whether the caller must hold every permission on `/` (ZooKeeper's `AuthRequest`).
    pub needs_auth: bool,
    /// Whether it is a POST with a body (`restore`) rather than a GET.
    pub post: bool,
}

impl Command {
    /// The name the answer carries.
    pub fn primary(&self) -> &'static str {
        self.names[0]
    }
}

const fn get(names: &'static [&'static str], needs_server: bool) -> Command {
    Command { names, needs_server, needs_auth: false, post: false }
}

/// Every command, as ZooKeeper 3.9 registers them.
pub const COMMANDS: &[Command] = &[
    get(&["connection_stat_reset", "crst"], true),
    get(&["configuration", "conf", "config"], true),
    get(&["connections", "cons"], true),
    get(&["hash"], true),
    get(&["dirs"], true),
    get(&["dump"], true),
    get(&["environment", "env", "envi"], false),
    get(&["get_trace_mask", "gtmk"], false),
    get(&["initial_configuration", "icfg"], true),
    get(&["is_read_only", "isro"], true),
    get(&["last_snapshot", "lsnp"], true),
    get(&["leader", "lead"], true),
    get(&["monitor", "mntr"], false),
    get(&["observer_connection_stat_reset", "orst"], true),
    Command { names: &["restore", "rest"], needs_server: true, needs_auth: true, post: true },
    get(&["ruok"], true),
    get(&["set_trace_mask", "stmk"], false),
    Command { names: &["snapshot", "snap"], needs_server: true, needs_auth: true, post: false },
    get(&["server_stats", "srvr"], true),
    get(&["stats", "stat"], true),
    get(&["stat_reset", "srst"], true),
    get(&["observers", "obsr"], true),
    get(&["system_properties", "sysp"], false),
    get(&["voting_view"], true),
    get(&["watches", "wchc"], true),
    get(&["watches_by_path", "wchp"], true),
    get(&["watch_summary", "wchs"], true),
    get(&["zabstate"], false),
];

/// The command called `name` (a primary name or an alias).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|command| command.names.contains(&name))
}

/// ZooKeeper's text trace mask by default (`ZooTrace`'s client request, ping and
/// session traces): `get_trace_mask` reports it until `set_trace_mask` changes it.
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// A command's answer: its data in order, then `command` and `error` as ZooKeeper's
/// `CommandResponse.toMap` orders them (an `error` the data sets keeps its place).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The command's primary name, or the name asked for when there is no such command.
    pub command: String,
    /// What it reports.
    pub data: Map<String, Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The HTTP status.
    pub status: u16,
}

impl Answer {
    /// An answer with no data yet.
    pub fn new(command: &str) -> Answer {
        Answer { command: command.to_owned(), data: Map::new(), error: None, status: 200 }
    }

    /// A failure with `status`.
    pub fn failed(command: &str, error: impl Into<String>, status: u16) -> Answer {
        Answer { error: Some(error.into()), status, ..Answer::new(command) }
    }

    /// Adds a field (last, or in place of one of the same name).
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.data.insert(key.to_owned(), value.into());
    }

    /// The JSON object ZooKeeper prints.
    pub fn to_json(&self) -> Value {
        let mut object = self.data.clone();
        object.insert("command".into(), Value::String(self.command.clone()));
        if !self.data.contains_key("error") {
            object.insert("error".into(), self.error.clone().map_or(Value::Null, Value::String));
        }
        Value::Object(object)
    }
}

/// What the GET commands other than `snapshot` read.
pub struct Context<'a> {
    /// The server.
    pub shared: &'a Shared,
    /// Its store, for `last_snapshot`.
    pub storage: &'a Arc<dyn Storage>,
    /// The trace mask `get_trace_mask` and `set_trace_mask` keep.
    pub trace_mask: &'a std::sync::atomic::AtomicI64,
}

/// Runs a GET command other than `snapshot` with its query `arguments`.
pub fn run(context: &Context<'_>, command: &Command, arguments: &[(String, String)]) -> Answer {
    let shared = context.shared;
    let mut answer = Answer::new(command.primary());
    match command.primary() {
        "connection_stat_reset" => four_letter::reset_connection_stats(shared),
        "configuration" => configuration(shared, &mut answer),
        "connections" => connections(shared, false, &mut answer),
        "hash" => {
            let digests: Vec<Value> = shared
                .database
                .digests()
                .entries()
                .into_iter()
                .map(|(zxid, digest)| {
                    serde_json::json!({
                        "zxid": zxid.raw(),
                        "digest": digest as i64,
                        "digest_version": crate::tree::digest::DIGEST_VERSION,
                    })
                })
                .collect();
            answer.put("digests", digests);
        }
        "dirs" => {
            let config = &shared.config;
            answer.put("datadir_size", four_letter::directory_size(&config.data_dir));
            answer.put("logdir_size", four_letter::directory_size(config.log_dir()));
        }
        "dump" => dump(shared, &mut answer),
        "environment" => {
            for (name, value) in four_letter::environment() {
                answer.put(name, value);
            }
        }
        "get_trace_mask" => answer.put("tracemask", context.trace_mask.load(Ordering::Relaxed)),
        "set_trace_mask" => set_trace_mask(context, arguments, &mut answer),
        "initial_configuration" => {
            answer.put("initial_configuration", shared.config.initial_text.clone());
        }
        "is_read_only" => answer.put("read_only", *shared.mode.lock() == Mode::ReadOnly),
        "last_snapshot" => last_snapshot(context.storage.as_ref(), &mut answer),
        "leader" => leader(shared, &mut answer),
        "monitor" => {
            for (name, value) in metrics::monitor_entries(&metrics::collect(shared)) {
                answer.data.insert(name, value.into());
            }
        }
        "observer_connection_stat_reset" | "ruok" => {}
        "observers" => observers(shared, &mut answer),
        "server_stats" => server_stats(shared, &mut answer),
        "stats" => {
            server_stats(shared, &mut answer);
            connections(shared, true, &mut answer);
        }
        "stat_reset" => crate::server::metrics::reset(shared),
        "system_properties" => system_properties(shared, &mut answer),
        "voting_view" => voting_view(shared, &mut answer),
        "watches" => watches(shared, &mut answer),
        "watches_by_path" => watches_by_path(shared, &mut answer),
        "watch_summary" => {
            let summary = shared.database.data_watches().summary();
            answer.put("num_connections", summary.connections);
            answer.put("num_paths", summary.paths);
            answer.put("num_total_watches", summary.watches);
        }
        "zabstate" => zabstate(shared, &mut answer),
        other => answer.error = Some(format!("{other} is answered elsewhere")),
    }
    answer
}

fn configuration(shared: &Shared, answer: &mut Answer) {
    let config = &shared.config;
    answer.put("client_port", config.serving_client_port());
    answer.put("data_dir", config.data_dir.display().to_string());
    answer.put("data_log_dir", config.log_dir().display().to_string());
    answer.put("tick_time", config.tick_time_ms);
    answer.put("max_client_cnxns", config.max_client_cnxns);
    answer.put("min_session_timeout", config.session_timeout_ms_min);
    answer.put("max_session_timeout", config.session_timeout_ms_max);
    answer.put("server_id", config.my_id.unwrap_or(0));
    answer.put("client_port_listen_backlog", -1);
}

/// ZooKeeper's `getConnectionInfo`: the counters, and unless `brief` the session's.
fn connection_info(connection: &Connection, brief: bool) -> Value {
    let stats = connection.stats.lock().clone();
    let mut info = Map::new();
    let mut put = |key: &str, value: Value| {
        info.insert(key.to_owned(), value);
    };
    put("remote_socket_address", json!(connection.peer.to_string()));
    put("interest_ops", json!(four_letter::interest_ops(connection)));
    put("outstanding_requests", json!(connection.writes_in_flight()));
    put("packets_received", json!(stats.received));
    put("packets_sent", json!(stats.sent));
    if !brief {
        put("session_id", json!(connection.session_id().raw()));
        put("last_operation", json!(if stats.last_op.is_empty() { "NA" } else { stats.last_op }));
        put("established", json!(connection.established_ms));
        put("session_timeout", json!(connection.session_timeout_ms()));
        put("last_cxid", json!(stats.last_cxid));
        put("last_zxid", json!(stats.last_zxid));
        put("last_response_time", json!(stats.last_response_ms));
        put("last_latency", json!(stats.last_latency_ms));
        put("min_latency", json!(stats.latency.min));
        put("avg_latency", json!(stats.average_latency_ms()));
        put("max_latency", json!(stats.latency.max));
    }
    Value::Object(info)
}

fn connections(shared: &Shared, brief: bool, answer: &mut Answer) {
    let (secure, plain): (Vec<_>, Vec<_>) =
        shared.registry.all().into_iter().partition(|connection| connection.on_secure_port);
    let list = |connections: Vec<Arc<Connection>>| -> Vec<Value> {
        connections.iter().map(|connection| connection_info(connection, brief)).collect()
    };
    answer.put("connections", list(plain));
    answer.put("secure_connections", list(secure));
}

fn dump(shared: &Shared, answer: &mut Answer) {
    let mut expiring: Map<String, Value> = Map::new();
    for session in shared.sessions.lock().sessions() {
        let ids = expiring.entry(session.expires_at_ms.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(ids) = ids {
            ids.push(json!(session.session_id.raw()));
        }
    }
    let mut ephemerals = Map::new();
    for (session_id, paths) in shared.database.tree().all_ephemerals() {
        ephemerals.insert(session_id.raw().to_string(), json!(paths));
    }
    answer.put("expiry_time_to_session_ids", expiring);
    answer.put("session_id_to_ephemeral_paths", ephemerals);
}

fn set_trace_mask(context: &Context<'_>, arguments: &[(String, String)], answer: &mut Answer) {
    let Some((_, value)) = arguments.iter().find(|(name, _)| name == "traceMask") else {
        answer.put("error", "setTraceMask requires long traceMask argument");
        return;
    };
    match value.parse::<i64>() {
        Ok(mask) => {
            context.trace_mask.store(mask, Ordering::Relaxed);
            answer.put("tracemask", mask);
        }
        Err(_) => answer
            .put("error", format!("setTraceMask requires long traceMask argument, got {value}")),
    }
}

fn last_snapshot(storage: &dyn Storage, answer: &mut Answer) {
    let newest = storage.snapshots().ok().and_then(|snapshots| snapshots.into_iter().next());
    match newest {
        Some(header) => {
            answer.put("zxid", format!("{:x}", header.zxid.raw()));
            answer.put("timestamp", header.created_ms / 1000);
        }
        None => {
            answer.put("zxid", format!("{:x}", -1i64));
            answer.put("timestamp", -1);
        }
    }
}

fn leader(shared: &Shared, answer: &mut Answer) {
    if shared.config.is_standalone() {
        answer.put("error", "server is not initialized");
        return;
    }
    let leader = *shared.leader.lock();
    let own = shared.config.my_id;
    answer.put("is_leader", leader.is_some() && leader == own);
    answer.put("leader_id", leader.map_or(-1, |id| i64::try_from(id).unwrap_or(-1)));
    let host = leader
        .and_then(|id| shared.config.membership.servers.get(&id))
        .map(|server| server.host.clone())
        .unwrap_or_default();
    answer.put("leader_ip", host);
}

fn observers(shared: &Shared, answer: &mut Answer) {
    let status = shared.leader_status.lock().clone().unwrap_or_default();
    answer.put("synced_observers", status.synced_observers);
    let observers: Vec<Value> =
        status.synced_observer_ids.iter().map(|id| json!({ "sid": id })).collect();
    answer.put("observers", observers);
}

fn server_stats(shared: &Shared, answer: &mut Answer) {
    let stats = &shared.stats;
    let latency = stats.latency.read();
    let (last, min, max) = stats.response_sizes.read();
    let response_sizes =
        json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max });
    let config = &shared.config;
    let mode = *shared.mode.lock();
    let server = json!({
        "packets_sent": stats.packets_sent.load(Ordering::Relaxed),
        "packets_received": stats.packets_received.load(Ordering::Relaxed),
        "fsync_threshold_exceed_count": stats.fsync_threshold_exceeded.load(Ordering::Relaxed),
        "client_response_stats": response_sizes.clone(),
        "data_dir_size": four_letter::directory_size(&config.data_dir),
        "log_dir_size": four_letter::directory_size(config.log_dir()),
        "server_state": mode.name(),
        "last_processed_zxid": shared.database.last_applied_zxid().raw(),
        "outstanding_requests": four_letter::outstanding(shared),
        "avg_latency": latency.average(),
        "max_latency": latency.max,
        "min_latency": latency.min,
        "num_alive_client_connections": shared.registry.len(),
        "uptime": shared.clock.now_ms(),
        "auth_failed_count": stats.auth_failed.load(Ordering::Relaxed),
    });
    answer.put("version", VERSION);
    answer.put("read_only", mode == Mode::ReadOnly);
    answer.put("server_stats", server);
    answer.put("client_response", response_sizes);
    answer.put("node_count", four_letter::zookeeper_node_count(shared));
}

/// What stands in for Java's system properties: the operating system's and the
/// user's, as `environment` reports them, with Java's separators.
fn system_properties(shared: &Shared, answer: &mut Answer) {
    let mut properties: Vec<(String, String)> = four_letter::environment()
        .into_iter()
        .filter(|(name, _)| *name != "zookeeper.version" && *name != "host.name")
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    properties.extend([
        ("file.separator".to_owned(), "/".to_owned()),
        ("line.separator".to_owned(), "\n".to_owned()),
        ("path.separator".to_owned(), ":".to_owned()),
    ]);
    if let Some(source) = &shared.config.source {
        properties.push(("zkrs.config".to_owned(), source.display().to_string()));
    }
    properties.sort();
    for (name, value) in properties {
        answer.put(&name, value);
    }
}

/// A member's address as ZooKeeper prints one: `host:port`, an IPv6 host bracketed.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn own_client_address(shared: &Shared) -> String {
    match shared.config.client_address() {
        Ok(Some(client)) => client.to_string(),
        _ => String::new(),
    }
}

fn voting_view(shared: &Shared, answer: &mut Answer) {
    let mut view = Map::new();
    if !shared.config.is_standalone() {
        for (id, server) in &shared.config.membership.servers {
            if server.observer {
                continue;
            }
            let client = match &server.client {
                Some((host, port)) => address(host, *port),
                None if Some(*id) == shared.config.my_id => own_client_address(shared),
                None => String::new(),
            };
            view.insert(
                id.to_string(),
                json!({
                    "server_addresses": [address(&server.host, server.quorum_port)],
                    "election_addresses": [address(&server.host, server.election_port)],
                    "client_address": client,
                    "learner_type": "participant",
                }),
            );
        }
    }
    answer.put("current_config", view);
}

fn session_of(shared: &Shared, watcher: crate::tree::WatcherId) -> SessionId {
    shared.registry.get(watcher).map_or(SessionId::NONE, |connection| connection.session_id())
}

fn watches(shared: &Shared, answer: &mut Answer) {
    let mut by_session = Map::new();
    for (watcher, paths) in shared.database.data_watches().by_watcher() {
        by_session.insert(session_of(shared, watcher).raw().to_string(), json!(paths));
    }
    answer.put("session_id_to_watched_paths", by_session);
}

fn watches_by_path(shared: &Shared, answer: &mut Answer) {
    let mut by_path = Map::new();
    for (path, watchers) in shared.database.data_watches().by_path() {
        let sessions: Vec<i64> =
            watchers.into_iter().map(|watcher| session_of(shared, watcher).raw()).collect();
        by_path.insert(path, json!(sessions));
    }
    answer.put("path_to_session_ids", by_path);
}

/// ZooKeeper's `MultipleAddresses` as Jackson prints the bean, for one address.
fn multiple_addresses(host: &str, port: u16) -> Value {
    let one = address(host, port);
    json!({
        "empty": false,
        "all_addresses": [one],
        "all_reachable_addresses": [one],
        "one": one,
        "reachable_address": one,
        "wildcard_addresses": [format!("0.0.0.0:{port}")],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [one],
        "reachable_or_one": one,
    })
}

fn zabstate(shared: &Shared, answer: &mut Answer) {
    let config = &shared.config;
    let own = config.my_id.and_then(|id| config.membership.servers.get(&id));
    let (Some(my_id), Some(own)) = (config.my_id, own.filter(|_| !config.is_standalone())) else {
        answer.put("voting", false);
        answer.put("zabstate", "");
        return;
    };
    let mode = *shared.mode.lock();
    let zxid: Zxid = shared.database.last_applied_zxid();
    answer.put("myid", my_id);
    answer.put("is_leader", mode == Mode::Leader);
    answer.put("quorum_address", multiple_addresses(&own.host, own.quorum_port));
    answer.put("election_address", multiple_addresses(&own.host, own.election_port));
    answer.put("client_address", own_client_address(shared));
    answer.put("voting", !own.observer);
    answer.put("last_zxid", format!("0x{:x}", zxid.raw()));
    answer.put("zab_epoch", zxid.epoch());
    answer.put("zab_counter", zxid.counter());
    answer.put("zabstate", if mode.is_serving() { "broadcast" } else { "election" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_find_their_command() {
        assert_eq!(find("mntr").map(Command::primary), Some("monitor"));
        assert_eq!(find("config").map(Command::primary), Some("configuration"));
        assert_eq!(find("snap").map(|command| command.needs_auth), Some(true));
        assert!(find("nosuch").is_none());
        let mut names: Vec<&str> = COMMANDS.iter().flat_map(|c| c.names.iter().copied()).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name belongs to one command");
    }

    #[test]
    fn answers_order_command_and_error_as_zookeeper() {
        let mut answer = Answer::new("dirs");
        answer.put("datadir_size", 1);
        let text = crate::server::admin::json::pretty(&answer.to_json());
        assert_eq!(
            text,
            "{\n  \"datadir_size\" : 1,\n  \"command\" : \"dirs\",\n  \"error\" : null\n}"
        );
        let mut answer = Answer::new("leader");
        answer.put("error", "server is not initialized");
        let text = crate::server::admin::json::pretty(&answer.to_json());
        assert_eq!(
            text,
            "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}"
        );
    }
}
