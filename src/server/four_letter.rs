//! The answers to four-letter words, in ZooKeeper 3.8's text formats, so monitoring
//! scripts and clients (kazoo reads `envi`, Curator and zkServer.sh read `srvr`) parse them.

use std::fmt::Write;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::proto::four_letter::FourLetterWord;
use crate::server::registry::Connection;
use crate::server::stats::ConnectionStats;
use crate::server::{metrics, Mode, Shared};
use crate::txn::SessionId;

/// The version zkrs reports: ZooKeeper's protocol generation, then our own version.
/// kazoo parses the leading `x.y.z` to decide which features the server has.
pub const VERSION: &str = concat!("3.8.4-zkrs-", env!("CARGO_PKG_VERSION"));

/// Answers a four-letter word on `connection`, then closes it.
pub fn respond(shared: &Shared, connection: &Connection, word: FourLetterWord) {
    let name = word.name();
    let text = if shared.config.four_letter_words.contains(name) {
        // Monitoring polls these every few seconds: one INFO line each (as ZooKeeper
        // logs them) would bury everything else.
        tracing::debug!(command = name, "processing four-letter word");
        render(shared, word)
    } else {
        format!("{name} is not executed because it is not in the whitelist.\n")
    };
    connection.send(bytes::Bytes::from(text));
    connection.request_close();
}

/// What ZooKeeper answers to the statistics words while no leader is established.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

fn render(shared: &Shared, word: FourLetterWord) -> String {
    let serving = shared.serves_clients();
    if !serving && needs_a_running_server(word) {
        // ZooKeeper's `hash` prints it without a line end.
        let answer =
            if word == FourLetterWord::Hash { NOT_SERVING.trim_end() } else { NOT_SERVING };
        return answer.to_owned();
    }
    let mut out = String::new();
    match word {
        FourLetterWord::Ruok => out.push_str("imok"),
        FourLetterWord::Hash => digests(shared, &mut out),
        FourLetterWord::Isro => out.push_str(match *shared.mode.lock() {
            Mode::ReadOnly => "ro",
            _ if serving => "rw",
            _ => "null",
        }),
        FourLetterWord::Srvr => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            server_stats(shared, &mut out);
        }
        FourLetterWord::Stat => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            out.push_str("Clients:\n");
            for connection in shared.registry.all() {
                connection_info(&connection, true, &mut out);
                out.push('\n');
            }
            out.push('\n');
            server_stats(shared, &mut out);
        }
        FourLetterWord::Cons => {
            for connection in shared.registry.all() {
                connection_info(&connection, false, &mut out);
                out.push('\n');
            }
            out.push('\n');
        }
        FourLetterWord::Crst => {
            reset_connection_stats(shared);
            out.push_str("Connection stats reset.\n");
        }
        FourLetterWord::Srst => {
            crate::server::metrics::reset(shared);
            out.push_str("Server stats reset.\n");
        }
        FourLetterWord::Conf => conf(shared, &mut out),
        FourLetterWord::Envi => envi(&mut out),
        FourLetterWord::Mntr => mntr(shared, &mut out),
        FourLetterWord::Wchs => {
            let summary = shared.database.data_watches().summary();
            let _ = writeln!(
                out,
                "{} connections watching {} paths",
                summary.connections, summary.paths
            );
            let _ = writeln!(out, "Total watches:{}", summary.watches);
        }
        FourLetterWord::Wchc => {
            for (watcher, paths) in shared.database.data_watches().by_watcher() {
                let session_id =
                    shared.registry.get(watcher).map_or(SessionId::NONE, |c| c.session_id());
                let _ = writeln!(out, "{session_id}");
                for path in paths {
                    let _ = writeln!(out, "\t{path}");
                }
            }
            out.push('\n');
        }
        FourLetterWord::Wchp => {
            for (path, watchers) in shared.database.data_watches().by_path() {
                let _ = writeln!(out, "{path}");
                for watcher in watchers {
                    let session_id =
                        shared.registry.get(watcher).map_or(SessionId::NONE, |c| c.session_id());
                    let _ = writeln!(out, "\t{session_id}");
                }
            }
            out.push('\n');
        }
        FourLetterWord::Dump => dump(shared, &mut out),
        FourLetterWord::Dirs => {
            let _ = writeln!(out, "datadir_size: {}", directory_size(&shared.config.data_dir));
            let _ = writeln!(out, "logdir_size: {}", directory_size(shared.config.log_dir()));
        }
    }
    out
}

/// `crst`: every connection's counters start again, its last xid and zxid unknown (-1)
/// as ZooKeeper's `resetStats` leaves them.
pub(super) fn reset_connection_stats(shared: &Shared) {
    for connection in shared.registry.all() {
        let mut stats = connection.stats.lock();
        *stats = ConnectionStats {
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            ..ConnectionStats::default()
        };
    }
}

/// ZooKeeper's node count, which counts the root twice (under `/` and its alias `""`);
/// reporting the same number keeps dashboards comparable.
pub(super) fn zookeeper_node_count(shared: &Shared) -> usize {
    shared.database.tree().node_count() + 1
}

/// Writes in process, ZooKeeper's outstanding requests.
pub(super) fn outstanding(shared: &Shared) -> u64 {
    shared.registry.load().in_process()
}

/// `hash`: each digest kept, `<zxid in hex>: <digest>` (ZooKeeper's `DigestCommand`).
fn digests(shared: &Shared, out: &mut String) {
    for (zxid, digest) in shared.database.digests().entries() {
        // A Java long: a sum that wrapped past 2^63 prints negative.
        let _ = writeln!(out, "{:x}: {}", zxid.raw(), digest as i64);
    }
}

/// The words ZooKeeper answers only while it serves clients.
fn needs_a_running_server(word: FourLetterWord) -> bool {
    !matches!(word, FourLetterWord::Ruok | FourLetterWord::Isro | FourLetterWord::Envi)
}

fn server_stats(shared: &Shared, out: &mut String) {
    let latency = shared.stats.latency.read();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{:?}/{}",
        latency.min,
        latency.average(),
        latency.max
    );
    let _ = writeln!(out, "Received: {}", shared.stats.packets_received.load(Ordering::Relaxed));
    let _ = writeln!(out, "Sent: {}", shared.stats.packets_sent.load(Ordering::Relaxed));
    let _ = writeln!(out, "Connections: {}", shared.registry.len());
    let _ = writeln!(out, "Outstanding: {}", outstanding(shared));
    let _ = writeln!(out, "Zxid: 0x{:x}", shared.database.last_applied_zxid());
    let _ = writeln!(out, "Mode: {}", shared.mode.lock().name());
    let _ = writeln!(out, "Node count: {}", zookeeper_node_count(shared));
}

/// ZooKeeper's interest ops of a connection: reading (1) once it has a session.
pub(super) fn interest_ops(connection: &Connection) -> u8 {
    u8::from(connection.session_id() != SessionId::NONE)
}

fn connection_info(connection: &Connection, brief: bool, out: &mut String) {
    let stats = connection.stats.lock().clone();
    let session_id = connection.session_id();
    let interest = interest_ops(connection);
    let _ = write!(
        out,
        " /{}[{interest}](queued={},recved={},sent={}",
        connection.peer,
        connection.writes_in_flight(),
        stats.received,
        stats.sent
    );
    if !brief && session_id != SessionId::NONE {
        let average = stats.average_latency_ms();
        let _ = write!(
            out,
            ",sid={session_id},lop={},est={},to={}",
            if stats.last_op.is_empty() { "NA" } else { stats.last_op },
            connection.established_ms,
            connection.session_timeout_ms()
        );
        if stats.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", stats.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={average},maxlat={}",
            stats.last_zxid,
            stats.last_response_ms,
            stats.last_latency_ms,
            stats.latency.min,
            stats.latency.max
        );
    }
    out.push(')');
}

fn conf(shared: &Shared, out: &mut String) {
    let config = &shared.config;
    let _ = writeln!(out, "clientPort={}", config.serving_client_port());
    let secure_port = config.client_tls.as_ref().and_then(|tls| tls.secure_address);
    let secure_port = secure_port.map_or(-1, |address| i32::from(address.port()));
    let _ = writeln!(out, "secureClientPort={secure_port}");
    let _ = writeln!(out, "dataDir={}", config.data_dir.display());
    let _ = writeln!(out, "dataDirSize={}", directory_size(&config.data_dir));
    let _ = writeln!(out, "dataLogDir={}", config.log_dir().display());
    let _ = writeln!(out, "dataLogSize={}", directory_size(config.log_dir()));
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", config.session_timeout_ms_min);
    let _ = writeln!(out, "maxSessionTimeout={}", config.session_timeout_ms_max);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", config.my_id.unwrap_or(0));
    let Some(me) = config.my_id.and_then(|id| config.membership.servers.get(&id)) else {
        return;
    };
    if config.is_standalone() {
        return;
    }
    let _ = writeln!(out, "initLimit={}", config.init_limit);
    let _ = writeln!(out, "syncLimit={}", config.sync_limit);
    let _ = writeln!(out, "electionAlg=3");
    let _ = writeln!(out, "electionPort={}", me.election_port);
    let _ = writeln!(out, "quorumPort={}", me.quorum_port);
    let _ = writeln!(out, "peerType={}", u8::from(me.observer));
    out.push_str("membership: \n");
    out.push_str(&config.membership.to_zookeeper_text());
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    for (name, value) in environment() {
        let _ = writeln!(out, "{name}={value}");
    }
}

/// What ZooKeeper's `Environment.list()` reports that applies to zkrs: its version, the
/// host, the operating system and the user it runs as, with the values Java's system
/// properties give them (`os.name` `Linux`, `os.arch` `amd64`, the user's name and home
/// from the password database).
pub(super) fn environment() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let current_dir =
        std::env::current_dir().map(|dir| dir.display().to_string()).unwrap_or_default();
    let (user, home) = process_user();
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host.trim().to_owned()),
        ("os.name", java_os_name(std::env::consts::OS)),
        ("os.arch", java_os_arch(std::env::consts::ARCH).to_owned()),
        ("os.version", os_version.trim().to_owned()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", current_dir),
    ]
}

/// Java's `os.name` for a Rust target OS: `Linux`, `Mac OS X`, `FreeBSD`, ...
fn java_os_name(os: &str) -> String {
    match os {
        "macos" => "Mac OS X".to_owned(),
        "freebsd" => "FreeBSD".to_owned(),
        other => {
            let mut chars = other.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        }
    }
}

/// Java's `os.arch` for a Rust target architecture, which differs for x86.
fn java_os_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// The name and home directory of the user the server runs as, from the password
/// database as Java's `user.name` and `user.home` read them (else `$USER`, `$HOME`).
pub(crate) fn process_user() -> (String, String) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uid = rustix::process::getuid().as_raw();
    user_entry(&passwd, uid).unwrap_or_else(|| {
        let variable = |name: &str| std::env::var(name).unwrap_or_default();
        (variable("USER"), variable("HOME"))
    })
}

/// The name and home directory of user `uid` in an `/etc/passwd` text.
fn user_entry(passwd: &str, uid: u32) -> Option<(String, String)> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let (name, id, home) = (fields.first()?, fields.get(2)?, fields.get(5)?);
        (id.parse::<u32>().ok()? == uid).then(|| (name.to_string(), home.to_string()))
    })
}

fn mntr(shared: &Shared, out: &mut String) {
    metrics::mntr(&metrics::collect(shared), out);
}

fn dump(shared: &Shared, out: &mut String) {
    let sessions = shared.sessions.lock().sessions();
    let now_ms = shared.clock.now_ms();
    let wall_ms = shared.clock.wall_ms();
    let mut buckets: Vec<(u64, Vec<SessionId>)> = Vec::new();
    for session in &sessions {
        match buckets.last_mut() {
            Some((expires, ids)) if *expires == session.expires_at_ms => {
                ids.push(session.session_id)
            }
            _ => buckets.push((session.expires_at_ms, vec![session.session_id])),
        }
    }
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), sessions.len());
    for (expires_at_ms, ids) in &buckets {
        let expires_wall_ms = (wall_ms + expires_at_ms).saturating_sub(now_ms);
        let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(expires_wall_ms));
        for id in ids {
            let _ = writeln!(out, "\t{id}");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let ephemerals = shared.database.tree().all_ephemerals();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", ephemerals.len());
    for (session_id, paths) in ephemerals {
        let _ = writeln!(out, "{session_id}:");
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push_str("Connections dump:\n");
    let connections = shared.registry.all();
    let _ = writeln!(out, "Connections Sets (1)/({}):", connections.len());
    let _ = writeln!(out, "{} expire at {}:", connections.len(), java_date(wall_ms));
    for connection in connections {
        let _ = writeln!(out, "\tip: /{} sessionId: {}", connection.peer, connection.session_id());
    }
}

/// Total size of the files in a directory tree, 0 if it cannot be read.
pub(super) fn directory_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_size(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Formats epoch milliseconds as Java's `Date.toString()` in UTC:
/// `Sun Nov 22 00:15:29 UTC 2026`.
pub fn java_date(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = epoch_ms / 1000;
    let days = (seconds / 86_400) as i64;
    let time = seconds % 86_400;
    // Howard Hinnant's civil-from-days.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS.get(days.rem_euclid(7) as usize).unwrap_or(&"???"),
        MONTHS.get((month - 1) as usize).unwrap_or(&"???"),
        day,
        time / 3600,
        time % 3600 / 60,
        time % 60,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // Seen from ZooKeeper's `dump` on 2026-11-22.
        assert_eq!(java_date(1_795_306_529_000), "Sun Nov 22 00:15:29 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn the_environment_names_the_system_as_java_does() {
        // ZooKeeper 3.8 on OpenJDK 17 on this machine: os.name=Linux, os.arch=amd64.
        assert_eq!(java_os_name("linux"), "Linux");
        assert_eq!(java_os_name("macos"), "Mac OS X");
        assert_eq!(java_os_arch("x86_64"), "amd64");
        assert_eq!(java_os_arch("aarch64"), "aarch64");
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nzk:x:107:113::/var/lib/zookeeper:/bin/false\n";
        assert_eq!(user_entry(passwd, 107), Some(("zk".into(), "/var/lib/zookeeper".into())));
        assert_eq!(user_entry(passwd, 0), Some(("root".into(), "/root".into())));
        assert_eq!(user_entry(passwd, 5), None);
        assert_eq!(user_entry("broken line\n", 0), None);
    }

    #[test]
    fn version_keeps_the_zookeeper_prefix() {
        assert!(VERSION.starts_with("3.8.4-zkrs-"));
    }
}
