//! The shell's commands: zkCli.sh's, with its options and output (results on standard
//! output, errors on standard error, both in zkCli's words), and a few of zkrs's own
//! (`tree`, `find`, `du`, `find_big`).

use std::collections::VecDeque;
use std::io::Write;

use base64::Engine;
use bytes::Bytes;
use jute::records::{
    Acl, AddWatchRequest, AuthPacket, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ExistsRequest, ExistsResponse, GetAclRequest, GetAclResponse,
    GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetChildren2Request,
    GetChildren2Response, GetDataRequest, GetDataResponse, GetEphemeralsRequest,
    GetEphemeralsResponse, Id, RemoveWatchesRequest, SetAclRequest, SetAclResponse, SetDataRequest,
    SetDataResponse, Stat, SyncRequest, WhoAmIResponse,
};
use jute::{Code, Empty, OpCode, Record, RecordRef};

use super::client::{Failure, Reply, Session, WatchKind};
use super::hex_dump::hex_dump;
use super::quota;
use crate::proto::stat_text::stat_lines;
use crate::tree::acl::{perm_letters, perms, world_anyone};

/// What a command left the shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Done,
    /// It failed (the error is printed); a script's exit status says so.
    Failed,
    /// `quit`.
    Quit,
}

/// The commands and their usage, as zkCli lists them.
pub const USAGE: &[(&str, &str)] = &[
    ("addWatch", "[-m mode] path # mode PERSISTENT, or PERSISTENT_RECURSIVE (the default)"),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("du", "path # zkrs: nodes and bytes of a subtree"),
    ("find", "path name # zkrs: nodes under path whose name contains name"),
    ("find_big", "path [-b bytes] [-c children] # zkrs: nodes over a size or child count"),
    ("get", "[-s] [-w] [-b] [-x] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("quit", ""),
    (
        "reconfig",
        concat!(
            "[-s] [-v version] [[-file path] | ",
            "[-members serverID=host:port1:port2;port3[,...]*]] | ",
            "[-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]"
        ),
    ),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "path data [-s] [-v version] [-b]"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("tree", "[path] # zkrs: the subtree drawn"),
    ("whoami", ""),
];

/// Prints zkCli's list of commands.
pub fn print_usage() {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "ZooKeeper -server host:port -timeout ms cmd args");
    for (name, arguments) in USAGE {
        let _ = writeln!(err, "\t{name} {arguments}");
    }
}

/// A command line split into its options (those among `switches`, and those among
/// `with_value` with the word after them, anywhere in the line, as zkCli's parser takes
/// them) and its other words.
pub(super) struct Parsed<'a> {
    flags: Vec<(&'a str, Option<&'a str>)>,
    pub(super) words: Vec<&'a str>,
}

impl<'a> Parsed<'a> {
    pub(super) fn new(
        arguments: &'a [String],
        switches: &[&str],
        with_value: &[&str],
    ) -> Parsed<'a> {
        let mut parsed = Parsed { flags: Vec::new(), words: Vec::new() };
        let mut items = arguments.iter().map(String::as_str);
        while let Some(item) = items.next() {
            if with_value.contains(&item) {
                parsed.flags.push((item, items.next()));
            } else if switches.contains(&item) {
                parsed.flags.push((item, None));
            } else {
                parsed.words.push(item);
            }
        }
        parsed
    }

    pub(super) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(name, _)| *name == flag)
    }

    pub(super) fn value(&self, flag: &str) -> Option<&'a str> {
        self.flags.iter().find(|(name, _)| *name == flag).and_then(|(_, value)| *value)
    }
}

/// Prints an error as zkCli words it.
pub(super) fn failed(message: impl AsRef<str>) -> Outcome {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", message.as_ref());
    let _ = err.flush();
    Outcome::Failed
}

/// zkCli's message for a failed request on `path`.
fn error_text(code: Code, path: &str) -> String {
    match code {
        Code::NoNode => format!("Node does not exist: {path}"),
        Code::NodeExists => format!("Node already exists: {path}"),
        Code::NotEmpty => format!("Node not empty: {path}"),
        Code::BadVersion => format!("version No is not valid : {path}"),
        Code::NoAuth => format!("Insufficient permission : {path}"),
        Code::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Code::InvalidAcl => format!("Acl is not valid : {path}"),
        // Java's message leaves the path out when the request has none (reconfig).
        other if path.is_empty() => format!("KeeperErrorCode = {other:?}"),
        other => format!("KeeperErrorCode = {other:?} for {path}"),
    }
}

/// Sends a request and decodes its answer as `T`, printing the error otherwise.
fn request<T: Record>(
    session: &mut Session,
    op: OpCode,
    body: &dyn RecordRef,
    path: &str,
) -> Result<T, Outcome> {
    let reply = call(session, op, body, path)?;
    reply.decode().map_err(|err| failed(format!("a reply that does not decode: {err}")))
}

/// Sends a request; a failure is printed.
pub(super) fn call(
    session: &mut Session,
    op: OpCode,
    body: &dyn RecordRef,
    path: &str,
) -> Result<Reply, Outcome> {
    answered(session.call(op, body), path)
}

/// Sends a request; `None` if it fails with `expected` (NONODE for a node that may be
/// missing, say), any other failure printed.
pub(super) fn call_unless(
    session: &mut Session,
    op: OpCode,
    body: &dyn RecordRef,
    path: &str,
    expected: Code,
) -> Result<Option<Reply>, Outcome> {
    match session.call(op, body) {
        Ok(reply) if reply.code() == expected => Ok(None),
        other => answered(other, path).map(Some),
    }
}

/// A successful reply, or the failure printed in zkCli's words.
fn answered(reply: Result<Reply, Failure>, path: &str) -> Result<Reply, Outcome> {
    match reply {
        Ok(reply) if reply.code() == Code::Ok => Ok(reply),
        Ok(reply) => Err(failed(error_text(reply.code(), path))),
        Err(Failure::ConnectionLoss) => {
            Err(failed(format!("KeeperErrorCode = ConnectionLoss for {path}")))
        }
        Err(Failure::SessionExpired) => {
            Err(failed(format!("KeeperErrorCode = Session expired for {path}")))
        }
    }
}

pub(super) fn print(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}

/// zkCli's list format: `[a, b]`.
fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Parses zkCli's ACL argument: `scheme:id:perms` entries separated by commas (a digest
/// id holds a colon itself).
fn parse_acl(text: &str) -> Result<Vec<Acl>, String> {
    text.split(',')
        .map(|entry| {
            let (scheme, rest) =
                entry.split_once(':').ok_or_else(|| format!("{entry} is not scheme:id:perm"))?;
            let (id, perms) =
                rest.rsplit_once(':').ok_or_else(|| format!("{entry} is not scheme:id:perm"))?;
            let mut bits = 0;
            for letter in perms.chars() {
                bits |= match letter {
                    'r' => 1,
                    'w' => 2,
                    'c' => 4,
                    'd' => 8,
                    'a' => 16,
                    other => return Err(format!("Unknown perm type: {other}")),
                };
            }
            Ok(Acl { perms: bits, id: Id { scheme: scheme.to_owned(), id: id.to_owned() } })
        })
        .collect()
}

pub(super) fn open_acl() -> Vec<Acl> {
    vec![world_anyone(perms::ALL)]
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

fn children(
    session: &mut Session,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, Stat), Outcome> {
    let body = GetChildren2Request { path: path.to_owned(), watch };
    let GetChildren2Response { mut children, stat } =
        request(session, OpCode::GetChildren2, &body, path)?;
    children.sort();
    Ok((children, stat))
}

/// Every path of the subtree at `path`, breadth first, each level sorted.
fn subtree(session: &mut Session, path: &str) -> Result<Vec<String>, Outcome> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([path.to_owned()]);
    while let Some(next) = queue.pop_front() {
        let (names, _) = children(session, &next, false)?;
        queue.extend(names.iter().map(|name| child_path(&next, name)));
        found.push(next);
    }
    Ok(found)
}

fn stat_of(session: &mut Session, path: &str, watch: bool) -> Result<Stat, Outcome> {
    let body = ExistsRequest { path: path.to_owned(), watch };
    let ExistsResponse { stat } = request(session, OpCode::Exists, &body, path)?;
    Ok(stat)
}

/// Runs one command line's words; `history` is the lines run so far.
pub fn run(session: &mut Session, words: &[String], history: &[String]) -> Outcome {
    let Some((name, arguments)) = words.split_first() else {
        return Outcome::Done;
    };
    let outcome = match name.as_str() {
        "ls" => ls(session, arguments),
        "create" => create(session, arguments),
        "get" => get(session, arguments),
        "set" => set(session, arguments),
        "stat" => stat(session, arguments),
        "delete" => delete(session, arguments),
        "deleteall" => deleteall(session, arguments),
        "getAcl" => get_acl(session, arguments),
        "setAcl" => set_acl(session, arguments),
        "addauth" => addauth(session, arguments),
        "whoami" => whoami(session),
        "sync" => sync(session, arguments),
        "getAllChildrenNumber" => count_children(session, arguments),
        "getEphemerals" => ephemerals(session, arguments),
        "setquota" => quota::setquota(session, arguments),
        "listquota" => quota::listquota(session, arguments),
        "delquota" => quota::delquota(session, arguments),
        "addWatch" => add_watch(session, arguments),
        "removewatches" => remove_watches(session, arguments),
        "config" => config(session, arguments),
        "reconfig" => reconfig(session, arguments),
        "tree" => tree(session, arguments),
        "find" => find(session, arguments),
        "du" => du(session, arguments),
        "find_big" => find_big(session, arguments),
        "history" => {
            for (number, line) in history.iter().enumerate() {
                print(format!("{number} - {line}"));
            }
            Ok(Outcome::Done)
        }
        "close" => {
            session.close();
            super::client::print_event("Closed", "None", None);
            Ok(Outcome::Done)
        }
        "connect" => connect(session, arguments),
        "quit" => {
            session.close();
            super::client::print_event("Closed", "None", None);
            Ok(Outcome::Quit)
        }
        _ => {
            print_usage();
            Ok(Outcome::Failed)
        }
    };
    outcome.unwrap_or_else(|failed| failed)
}

/// The path argument, or zkCli's usage line when it is missing.
fn path_of<'a>(parsed: &Parsed<'a>, command: &str) -> Result<&'a str, Outcome> {
    match parsed.words.first() {
        Some(path) if path.starts_with('/') => Ok(path),
        Some(path) => Err(failed(format!("Path must start with / character: {path}"))),
        None => {
            let usage = USAGE.iter().find(|(name, _)| *name == command).map_or("", |(_, u)| u);
            Err(failed(format!("{command} {usage}")))
        }
    }
}

fn ls(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s", "-w", "-R"], &[]);
    let path = path_of(&parsed, "ls")?;
    if parsed.has("-R") {
        for found in subtree(session, path)? {
            print(found);
        }
        return Ok(Outcome::Done);
    }
    let (names, stat) = children(session, path, parsed.has("-w"))?;
    if parsed.has("-w") {
        session.watching(WatchKind::Child, path);
    }
    print(list(&names));
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn create(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s", "-e", "-c"], &["-t", "-f"]);
    let path = path_of(&parsed, "create")?;
    let (data, next) = data_of(&parsed)?;
    let acl = match parsed.words.get(next) {
        Some(text) => parse_acl(text).map_err(failed)?,
        None => open_acl(),
    };
    let (ephemeral, sequential) = (parsed.has("-e"), parsed.has("-s"));
    let ttl = parsed.value("-t").map(|ttl| ttl.parse::<i64>()).transpose();
    let ttl = ttl.map_err(|_| failed("-t ttl must be a number"))?;
    let path_owned = path.to_owned();
    let created: CreateResponse = match (ttl, parsed.has("-c")) {
        (Some(ttl), _) => {
            let flags = if sequential { 6 } else { 5 };
            let body = CreateTtlRequest { path: path_owned, data, acl, flags, ttl };
            let reply = call(session, OpCode::CreateTtl, &body, path)?;
            let response: jute::records::Create2Response = reply.decode().map_err(failed)?;
            CreateResponse { path: response.path }
        }
        (None, true) => {
            let body = CreateRequest { path: path_owned, data, acl, flags: 4 };
            let reply = call(session, OpCode::CreateContainer, &body, path)?;
            let response: jute::records::Create2Response = reply.decode().map_err(failed)?;
            CreateResponse { path: response.path }
        }
        (None, false) => {
            let flags = i32::from(ephemeral) + 2 * i32::from(sequential);
            let body = CreateRequest { path: path_owned, data, acl, flags };
            request(session, OpCode::Create, &body, path)?
        }
    };
    let _ = writeln!(std::io::stderr().lock(), "Created {}", created.path);
    Ok(Outcome::Done)
}

/// The data a `create` or `set` writes: the bytes of the file `-f` names (zkrs's own
/// option, for binary data), else the word after the path as UTF-8 text, as zkCli takes
/// it; with the index of the word after it.
fn data_of(parsed: &Parsed<'_>) -> Result<(Option<Bytes>, usize), Outcome> {
    match parsed.value("-f") {
        Some(file) => match std::fs::read(file) {
            Ok(bytes) => Ok((Some(Bytes::from(bytes)), 1)),
            Err(err) => Err(failed(format!("cannot read {file}: {err}"))),
        },
        None => Ok((parsed.words.get(1).map(|data| Bytes::copy_from_slice(data.as_bytes())), 2)),
    }
}

fn get(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s", "-w", "-b", "-x"], &["-f"]);
    let path = path_of(&parsed, "get")?;
    let body = GetDataRequest { path: path.to_owned(), watch: parsed.has("-w") };
    let GetDataResponse { data, stat } = request(session, OpCode::GetData, &body, path)?;
    if parsed.has("-w") {
        session.watching(WatchKind::Data, path);
    }
    if let Some(file) = parsed.value("-f") {
        // The bytes as they are, into the file (zkrs's own option, for binary data).
        return match std::fs::write(file, data.as_deref().unwrap_or_default()) {
            Ok(()) => Ok(Outcome::Done),
            Err(err) => Err(failed(format!("cannot write {file}: {err}"))),
        };
    }
    // As zkCli 3.9: no data reads as "null", then base64 (-b) or a hex dump (-x).
    let data = data.unwrap_or(Bytes::from_static(b"null"));
    if parsed.has("-x") {
        print(hex_dump(&data));
    } else if parsed.has("-b") {
        print(base64::engine::general_purpose::STANDARD.encode(&data));
    } else {
        print(String::from_utf8_lossy(&data));
    }
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn version(parsed: &Parsed<'_>) -> Result<i32, Outcome> {
    match parsed.value("-v") {
        Some(text) => text.parse().map_err(|_| failed(format!("-v {text} is not a version"))),
        None => Ok(-1),
    }
}

fn set(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s", "-b"], &["-v", "-f"]);
    let path = path_of(&parsed, "set")?;
    let (mut data, _) = data_of(&parsed)?;
    if parsed.has("-b") {
        // zkCli 3.9: the data given in base64.
        let text = data.unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|err| failed(format!("the data is not base64: {err}")))?;
        data = Some(Bytes::from(decoded));
    }
    let body = SetDataRequest { path: path.to_owned(), data, version: version(&parsed)? };
    let SetDataResponse { stat } = request(session, OpCode::SetData, &body, path)?;
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn stat(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-w"], &[]);
    let path = path_of(&parsed, "stat")?;
    let watch = parsed.has("-w");
    let stat = stat_of(session, path, watch).inspect_err(|_| {
        // A watch on a node that does not exist waits for its creation.
        if watch {
            session.watching(WatchKind::Exist, path);
        }
    })?;
    if watch {
        session.watching(WatchKind::Data, path);
    }
    print(stat_lines(&stat));
    Ok(Outcome::Done)
}

fn delete(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &["-v"]);
    let path = path_of(&parsed, "delete")?;
    let body = DeleteRequest { path: path.to_owned(), version: version(&parsed)? };
    call(session, OpCode::Delete, &body, path)?;
    Ok(Outcome::Done)
}

fn deleteall(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &["-b"]);
    let path = path_of(&parsed, "deleteall")?;
    for found in subtree(session, path)?.iter().rev() {
        let body = DeleteRequest { path: found.clone(), version: -1 };
        match session.call(OpCode::Delete, &body) {
            Ok(reply) if matches!(reply.code(), Code::Ok | Code::NoNode) => {}
            Ok(reply) => return Err(failed(error_text(reply.code(), found))),
            Err(_) => return Err(failed(format!("KeeperErrorCode = ConnectionLoss for {found}"))),
        }
    }
    Ok(Outcome::Done)
}

fn get_acl(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s"], &[]);
    let path = path_of(&parsed, "getAcl")?;
    let body = GetAclRequest { path: path.to_owned() };
    let GetAclResponse { acl, stat } = request(session, OpCode::GetAcl, &body, path)?;
    for entry in &acl {
        print(format!("'{},'{}\n: {}", entry.id.scheme, entry.id.id, perm_letters(entry.perms)));
    }
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn set_acl(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s", "-R"], &["-v"]);
    let path = path_of(&parsed, "setAcl")?;
    let acl_text =
        parsed.words.get(1).ok_or_else(|| failed("setAcl [-s] [-v version] [-R] path acl"))?;
    let acl = parse_acl(acl_text).map_err(failed)?;
    let paths = if parsed.has("-R") { subtree(session, path)? } else { vec![path.to_owned()] };
    let version = version(&parsed)?;
    let mut last = None;
    for target in &paths {
        let body = SetAclRequest { path: target.clone(), acl: acl.clone(), version };
        let SetAclResponse { stat } = request(session, OpCode::SetAcl, &body, target)?;
        last = Some(stat);
    }
    if let (true, Some(stat)) = (parsed.has("-s"), last) {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn addauth(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let [scheme, auth, ..] = arguments else {
        return Err(failed("addauth scheme auth"));
    };
    let packet = AuthPacket {
        auth_type: 0,
        scheme: scheme.clone(),
        auth: Bytes::copy_from_slice(auth.as_bytes()),
    };
    match session.call(OpCode::Auth, &packet) {
        Ok(reply) if reply.code() == Code::Ok => Ok(Outcome::Done),
        Ok(_) => {
            super::client::print_event("AuthFailed", "None", None);
            session.disconnect();
            Err(Outcome::Failed)
        }
        Err(_) => Err(failed("KeeperErrorCode = ConnectionLoss")),
    }
}

fn whoami(session: &mut Session) -> Result<Outcome, Outcome> {
    let WhoAmIResponse { client_info } = request(session, OpCode::WhoAmI, &Empty, "/")?;
    print("Auth scheme: User");
    for info in client_info {
        print(format!("{}: {}", info.auth_scheme, info.user));
    }
    Ok(Outcome::Done)
}

fn sync(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &[]);
    let path = path_of(&parsed, "sync")?;
    call(session, OpCode::Sync, &SyncRequest { path: path.to_owned() }, path)?;
    print("Sync is OK");
    Ok(Outcome::Done)
}

fn count_children(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &[]);
    let path = path_of(&parsed, "getAllChildrenNumber")?;
    let body = GetAllChildrenNumberRequest { path: path.to_owned() };
    let GetAllChildrenNumberResponse { total_number } =
        request(session, OpCode::GetAllChildrenNumber, &body, path)?;
    print(total_number.to_string());
    Ok(Outcome::Done)
}

fn ephemerals(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let prefix = arguments.first().cloned().unwrap_or_else(|| "/".to_owned());
    let body = GetEphemeralsRequest { prefix_path: prefix.clone() };
    let GetEphemeralsResponse { ephemerals } =
        request(session, OpCode::GetEphemerals, &body, &prefix)?;
    print(list(&ephemerals));
    Ok(Outcome::Done)
}

fn add_watch(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &["-m"]);
    let path = path_of(&parsed, "addWatch")?;
    let mode = match parsed.value("-m").map(str::to_ascii_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => 1,
        Some("PERSISTENT") => 0,
        Some(other) => return Err(failed(format!("Unsupported mode: {other}"))),
    };
    call(session, OpCode::AddWatch, &AddWatchRequest { path: path.to_owned(), mode }, path)?;
    let kind = if mode == 0 { WatchKind::Persistent } else { WatchKind::PersistentRecursive };
    session.watching(kind, path);
    Ok(Outcome::Done)
}

fn remove_watches(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-c", "-d", "-a", "-l"], &[]);
    let path = path_of(&parsed, "removewatches")?;
    let watcher_type = if parsed.has("-c") {
        1
    } else if parsed.has("-d") {
        2
    } else {
        3
    };
    let body = RemoveWatchesRequest { path: path.to_owned(), watcher_type };
    call(session, OpCode::RemoveWatches, &body, path)?;
    let kinds: &[WatchKind] = match watcher_type {
        1 => &[WatchKind::Child],
        2 => &[WatchKind::Data, WatchKind::Exist],
        _ => &[
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ],
    };
    session.unwatch(kinds, path);
    Ok(Outcome::Done)
}

/// `reconfig`: zkCli's checks of its options, then the request; the new configuration
/// as zkCli prints it, or why the ensemble refused.
fn reconfig(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-s"], &["-v", "-file", "-members", "-add", "-remove"]);
    let whole = parsed.has("-file") || parsed.has("-members");
    let incremental = parsed.has("-add") || parsed.has("-remove");
    if !whole && !incremental {
        let usage = USAGE.iter().find(|(name, _)| *name == "reconfig").map_or("", |(_, u)| u);
        return Err(failed(format!("reconfig {usage}")));
    }
    let cur_config_id = match parsed.value("-v") {
        Some(text) => i64::from_str_radix(text, 16)
            .map_err(|_| failed("-v must be followed by a long (configuration version)"))?,
        None => -1,
    };
    if whole && incremental {
        return Err(failed(
            "Can't use -file or -members together with -add or -remove (mixing incremental \
             and non-incremental modes is not allowed)",
        ));
    }
    if parsed.has("-file") && parsed.has("-members") {
        return Err(failed(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let lower = |option: &str| parsed.value(option).map(str::to_lowercase);
    let new_members = match parsed.value("-file") {
        Some(file) => Some(members_of_file(file)?),
        None => lower("-members"),
    };
    let body = jute::records::ReconfigRequest {
        joining_servers: lower("-add"),
        leaving_servers: lower("-remove"),
        new_members,
        cur_config_id,
    };
    let Some(reply) = call_unless(session, OpCode::Reconfig, &body, "", Code::ReconfigDisabled)?
    else {
        return Err(failed("KeeperErrorCode = Reconfig is disabled"));
    };
    let GetDataResponse { data, stat } = reply.decode().map_err(failed)?;
    print(format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(data.as_deref().unwrap_or_default())
    ));
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

/// The membership lines (`server.N=...`) of a dynamic configuration file, for
/// `reconfig -file`.
fn members_of_file(file: &str) -> Result<String, Outcome> {
    let text = std::fs::read_to_string(file)
        .map_err(|err| failed(format!("Error processing {file}{err}")))?;
    let members: Vec<&str> =
        text.lines().map(str::trim).filter(|line| line.starts_with("server.")).collect();
    Ok(members.join("\n"))
}

fn config(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &["-c", "-w", "-s"], &[]);
    let path = "/zookeeper/config";
    let body = GetDataRequest { path: path.to_owned(), watch: parsed.has("-w") };
    let GetDataResponse { data, stat } = request(session, OpCode::GetData, &body, path)?;
    if parsed.has("-w") {
        session.watching(WatchKind::Data, path);
    }
    print(String::from_utf8_lossy(data.as_deref().unwrap_or_default()));
    if parsed.has("-s") {
        print(stat_lines(&stat));
    }
    Ok(Outcome::Done)
}

fn connect(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let servers = arguments.first().ok_or_else(|| failed("connect host:port"))?;
    let servers = Session::resolve(servers).map_err(failed)?;
    session.close();
    *session = Session::new(servers, session.timeout_ms());
    session.connect().map_err(|_| failed("could not connect"))?;
    Ok(Outcome::Done)
}

/// zkrs's `tree`: the subtree drawn with its data sizes.
fn tree(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let root = arguments.first().map_or("/", String::as_str);
    print(root);
    draw(session, root, "")?;
    Ok(Outcome::Done)
}

fn draw(session: &mut Session, path: &str, indent: &str) -> Result<(), Outcome> {
    let (names, _) = children(session, path, false)?;
    for (index, name) in names.iter().enumerate() {
        let last = index + 1 == names.len();
        print(format!("{indent}{}{name}", if last { "└── " } else { "├── " }));
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        draw(session, &child_path(path, name), &deeper)?;
    }
    Ok(())
}

/// zkrs's `find`: the paths under `path` whose last name contains `name`.
fn find(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let [path, name, ..] = arguments else {
        return Err(failed("find path name"));
    };
    for found in subtree(session, path)? {
        if found.rsplit('/').next().is_some_and(|last| last.contains(name.as_str())) {
            print(found);
        }
    }
    Ok(Outcome::Done)
}

/// zkrs's `du`: the nodes and data bytes of the subtree at `path`.
fn du(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let path = arguments.first().map_or("/", String::as_str);
    let (mut nodes, mut bytes) = (0u64, 0u64);
    for found in subtree(session, path)? {
        let stat = stat_of(session, &found, false)?;
        nodes += 1;
        bytes += u64::try_from(stat.data_length).unwrap_or(0);
    }
    print(format!("{bytes}\t{nodes} nodes\t{path}"));
    Ok(Outcome::Done)
}

/// zkrs's `find_big`: the nodes under `path` with more data than `-b` bytes (default
/// 1 MiB / 2) or more children than `-c` (default 1000), biggest first.
fn find_big(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &["-b", "-c"]);
    let path = path_of(&parsed, "find_big")?;
    let number = |flag: &str, default: i64| -> Result<i64, Outcome> {
        parsed.value(flag).map_or(Ok(default), |text| {
            text.parse().map_err(|_| failed(format!("{flag} {text} is not a number")))
        })
    };
    let (bytes, count) = (number("-b", 512 * 1024)?, number("-c", 1000)?);
    let mut big = Vec::new();
    for found in subtree(session, path)? {
        let stat = stat_of(session, &found, false)?;
        if i64::from(stat.data_length) > bytes || i64::from(stat.num_children) > count {
            big.push((stat.data_length, stat.num_children, found));
        }
    }
    big.sort_by_key(|(length, children, _)| std::cmp::Reverse((*length, *children)));
    for (length, children, found) in big {
        print(format!("{length}\t{children} children\t{found}"));
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_parse_as_zkcli_reads_them() {
        let acl =
            parse_acl("digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa,auth::rw").expect("parses");
        assert_eq!(acl[0].id.id, "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
        assert_eq!((acl[0].perms, perm_letters(acl[0].perms).as_str()), (31, "cdrwa"));
        assert_eq!(
            (acl[1].id.scheme.as_str(), acl[1].id.id.as_str(), acl[1].perms),
            ("auth", "", 3)
        );
        assert!(parse_acl("world:anyone:x").is_err());
    }

    #[test]
    fn options_are_taken_anywhere_and_other_words_kept() {
        let words: Vec<String> =
            ["-s", "/a", "-v", "3", "-x"].iter().map(|word| (*word).to_owned()).collect();
        let parsed = Parsed::new(&words, &["-s"], &["-v"]);
        assert!(parsed.has("-s"));
        assert_eq!(parsed.value("-v"), Some("3"));
        assert_eq!(parsed.words, vec!["/a", "-x"]);
    }
}
