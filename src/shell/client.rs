//! The shell's ZooKeeper client: one session over a blocking socket, a reader thread
//! that matches replies to requests and prints watch events as zkCli prints them, and a
//! pinger that keeps the session alive. A broken connection is tried again on the next
//! server of the list, with the same session.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use jute::records::{
    ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, SetWatches2, WatcherEvent,
};
use jute::{Code, Empty, OpCode, Reader, Record, RecordRef};

/// Largest frame the shell takes from a server (ZooKeeper's default `jute.maxbuffer`).
const FRAME_MAX: usize = 0xfffff + 1024;

/// The xid of a ping, as ZooKeeper's clients send it.
const PING_XID: i32 = -2;
/// The xid of an `addauth`.
const AUTH_XID: i32 = -4;
/// The xid of a watch notification.
const NOTIFICATION_XID: i32 = -1;
/// The xid of the watches set again after a reconnect, as ZooKeeper's clients send it.
const SET_WATCHES_XID: i32 = -8;

/// The kinds of watch a client sets, as the Java client's `ZKWatchManager` keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// On a node's data (`get -w`, `stat -w` of a node that exists).
    Data,
    /// On a node's creation (`stat -w` of a node that does not exist).
    Exist,
    /// On a node's children (`ls -w`).
    Child,
    /// `addWatch -m PERSISTENT`.
    Persistent,
    /// `addWatch` (PERSISTENT_RECURSIVE).
    PersistentRecursive,
}

/// The watches this session has set and not yet seen fire: the server a reconnect lands
/// on hears them again (`SetWatches2`), so none is lost with the connection.
#[derive(Debug, Default)]
pub struct Watches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl Watches {
    fn set_of(&mut self, kind: WatchKind) -> &mut BTreeSet<String> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    /// A one-time watch fired on `path` with an event of `event_type`: it is gone, as
    /// the Java client drops it (persistent ones stay).
    fn fired(&mut self, event_type: i32, path: &str) {
        let kinds: &[WatchKind] = match event_type {
            1 | 3 => &[WatchKind::Data, WatchKind::Exist],
            2 => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            4 => &[WatchKind::Child],
            _ => &[],
        };
        for kind in kinds {
            self.set_of(*kind).remove(path);
        }
    }

    /// The request that sets them again on a new connection, if there are any.
    fn to_set_again(&self, relative_zxid: i64) -> Option<SetWatches2> {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        let request = SetWatches2 {
            relative_zxid,
            data_watches: list(&self.data),
            exist_watches: list(&self.exist),
            child_watches: list(&self.child),
            persistent_watches: list(&self.persistent),
            persistent_recursive_watches: list(&self.recursive),
        };
        let empty = [&self.data, &self.exist, &self.child, &self.persistent, &self.recursive]
            .iter()
            .all(|set| set.is_empty());
        (!empty).then_some(request)
    }
}

/// What a request got back.
#[derive(Debug)]
pub struct Reply {
    /// Its header: the zxid and the error code.
    pub header: ReplyHeader,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The error code, `Ok` for success.
    pub fn code(&self) -> Code {
        Code::from_i32(self.header.err).unwrap_or(Code::SystemError)
    }

    /// The body decoded as `T`.
    ///
    /// # Errors
    /// A body that does not decode.
    pub fn decode<T: Record>(&self) -> Result<T, String> {
        T::read(&mut Reader::new(&self.body)).map_err(|err| err.to_string())
    }
}

/// Why a request got no reply.
#[derive(Debug)]
pub enum Failure {
    /// The connection broke (or none could be made): the request may or may not have
    /// been carried out.
    ConnectionLoss,
    /// The session expired.
    SessionExpired,
}

/// What the reader thread hands the shell.
type Waiting = Arc<Mutex<Option<(i32, SyncSender<Reply>)>>>;

/// One session.
pub struct Session {
    servers: Vec<SocketAddr>,
    next_server: usize,
    timeout_ms: i32,
    session_id: i64,
    password: Bytes,
    last_zxid: Arc<AtomicI64>,
    next_xid: AtomicI32,
    /// The connection's writing side, shared with the pinger so frames never interleave.
    stream: Option<Arc<Mutex<TcpStream>>>,
    waiting: Waiting,
    alive: Arc<AtomicBool>,
    expired: bool,
    watches: Arc<Mutex<Watches>>,
}

impl Session {
    /// The servers of `-server host:port,host:port`, resolved.
    ///
    /// # Errors
    /// A host that does not resolve.
    pub fn resolve(list: &str) -> Result<Vec<SocketAddr>, String> {
        let mut servers = Vec::new();
        for server in list.split(',').map(str::trim).filter(|server| !server.is_empty()) {
            let address =
                if server.contains(':') { server.to_owned() } else { format!("{server}:2181") };
            let resolved = address.to_socket_addrs().map_err(|err| format!("{server}: {err}"))?;
            servers.extend(resolved);
        }
        if servers.is_empty() {
            return Err(format!("no server in {list:?}"));
        }
        Ok(servers)
    }

    /// A session not yet connected.
    pub fn new(servers: Vec<SocketAddr>, timeout_ms: i32) -> Session {
        Session {
            servers,
            next_server: 0,
            timeout_ms,
            session_id: 0,
            password: Bytes::from_static(&[0u8; 16]),
            last_zxid: Arc::new(AtomicI64::new(0)),
            next_xid: AtomicI32::new(1),
            stream: None,
            waiting: Arc::new(Mutex::new(None)),
            alive: Arc::new(AtomicBool::new(false)),
            expired: false,
            watches: Arc::new(Mutex::new(Watches::default())),
        }
    }

    /// Connects (again) to the servers in turn until one takes the session, trying each
    /// once; prints zkCli's connection events.
    ///
    /// # Errors
    /// When none does.
    pub fn connect(&mut self) -> Result<(), Failure> {
        self.disconnect();
        for _ in 0..self.servers.len() {
            let server = self.servers[self.next_server % self.servers.len()];
            self.next_server += 1;
            match self.handshake(server) {
                Ok(()) => return Ok(()),
                Err(Failure::SessionExpired) => {
                    print_event("Expired", "None", None);
                    *lock(&self.watches) = Watches::default();
                    self.session_id = 0;
                    self.password = Bytes::from_static(&[0u8; 16]);
                    self.expired = true;
                    return Err(Failure::SessionExpired);
                }
                Err(Failure::ConnectionLoss) => {}
            }
        }
        Err(Failure::ConnectionLoss)
    }

    fn handshake(&mut self, server: SocketAddr) -> Result<(), Failure> {
        let timeout = Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(30_000));
        let mut stream = TcpStream::connect_timeout(&server, timeout.min(Duration::from_secs(10)))
            .map_err(|_| Failure::ConnectionLoss)?;
        let _ = stream.set_nodelay(true);
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid.load(Ordering::Acquire),
            time_out: self.timeout_ms,
            session_id: self.session_id,
            passwd: self.password.clone(),
        };
        let mut out = BytesMut::new();
        request.write(&mut out);
        out.extend_from_slice(&[0]);
        send_frame(&mut stream, &out).map_err(|_| Failure::ConnectionLoss)?;
        stream.set_read_timeout(Some(timeout)).map_err(|_| Failure::ConnectionLoss)?;
        let frame = read_frame(&mut stream).map_err(|_| Failure::ConnectionLoss)?;
        let response =
            ConnectResponse::read(&mut Reader::new(&frame)).map_err(|_| Failure::ConnectionLoss)?;
        if response.time_out <= 0 {
            return Err(Failure::SessionExpired);
        }
        self.session_id = response.session_id;
        self.password = response.passwd;
        self.timeout_ms = response.time_out;
        stream.set_read_timeout(None).map_err(|_| Failure::ConnectionLoss)?;
        let alive = Arc::new(AtomicBool::new(true));
        self.alive = alive.clone();
        let reading = stream.try_clone().map_err(|_| Failure::ConnectionLoss)?;
        let (waiting, last_zxid) = (self.waiting.clone(), self.last_zxid.clone());
        let watches = self.watches.clone();
        std::thread::spawn(move || read_replies(reading, &waiting, &last_zxid, &watches, &alive));
        // Before anything else goes out, the server hears the watches set on the last one.
        let relative_zxid = self.last_zxid.load(Ordering::Acquire);
        if let Some(set_again) = lock(&self.watches).to_set_again(relative_zxid) {
            let mut out = BytesMut::new();
            let header =
                RequestHeader { xid: SET_WATCHES_XID, op_type: OpCode::SetWatches2.as_i32() };
            header.write(&mut out);
            set_again.write(&mut out);
            send_frame(&mut stream, &out).map_err(|_| Failure::ConnectionLoss)?;
        }
        let stream = Arc::new(Mutex::new(stream));
        let pinging = stream.clone();
        let interval = Duration::from_millis(u64::try_from(self.timeout_ms / 3).unwrap_or(1000));
        let alive = self.alive.clone();
        std::thread::spawn(move || ping(&pinging, interval, &alive));
        self.stream = Some(stream);
        print_event("SyncConnected", "None", None);
        Ok(())
    }

    /// Closes the connection, leaving the session to expire (or to be closed first).
    pub fn disconnect(&mut self) {
        self.alive.store(false, Ordering::Release);
        if let Some(stream) = self.stream.take() {
            let _ = lock(&stream).shutdown(std::net::Shutdown::Both);
        }
    }

    /// A watch of `kind` on `path` was set: it is set again after a reconnect until it
    /// fires.
    pub fn watching(&self, kind: WatchKind, path: &str) {
        lock(&self.watches).set_of(kind).insert(path.to_owned());
    }

    /// Watches of these `kinds` on `path` were removed (`removewatches`).
    pub fn unwatch(&self, kinds: &[WatchKind], path: &str) {
        let mut watches = lock(&self.watches);
        for kind in kinds {
            watches.set_of(*kind).remove(path);
        }
    }

    /// Whether a session is established and its connection up.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some() && self.alive.load(Ordering::Acquire)
    }

    /// The session timeout, as negotiated once connected.
    pub fn timeout_ms(&self) -> i32 {
        self.timeout_ms
    }

    /// The children of `path`, sorted, or none if they cannot be read (for completion).
    pub fn child_names(&mut self, path: &str) -> Vec<String> {
        let request = jute::records::GetChildrenRequest { path: path.to_owned(), watch: false };
        match self.call(OpCode::GetChildren, &request) {
            Ok(reply) if reply.code() == Code::Ok => {
                let mut names = reply
                    .decode::<jute::records::GetChildrenResponse>()
                    .map(|response| response.children)
                    .unwrap_or_default();
                names.sort();
                names
            }
            _ => Vec::new(),
        }
    }

    /// Sends a request and waits for its reply, connecting again first if the
    /// connection broke (a request in flight when it breaks is not sent again).
    ///
    /// # Errors
    /// [`Failure`].
    pub fn call(&mut self, op: OpCode, body: &dyn RecordRef) -> Result<Reply, Failure> {
        let xid = if op == OpCode::Auth {
            AUTH_XID
        } else {
            self.next_xid.fetch_add(1, Ordering::Relaxed)
        };
        self.call_with_xid(xid, op, body)
    }

    fn call_with_xid(
        &mut self,
        xid: i32,
        op: OpCode,
        body: &dyn RecordRef,
    ) -> Result<Reply, Failure> {
        if !self.is_connected() {
            self.connect()?;
        }
        let (answer, answered) = sync_channel(1);
        *lock(&self.waiting) = Some((xid, answer));
        let mut out = BytesMut::new();
        RequestHeader { xid, op_type: op.as_i32() }.write(&mut out);
        body.write_to(&mut out);
        let sent = match self.stream.as_ref() {
            Some(stream) => send_frame(&mut lock(stream), &out).is_ok(),
            None => false,
        };
        if !sent {
            self.disconnect();
            return Err(Failure::ConnectionLoss);
        }
        let reply = wait(&answered, &self.alive);
        *lock(&self.waiting) = None;
        match reply {
            Some(reply) => Ok(reply),
            None => {
                self.disconnect();
                print_event("Disconnected", "None", None);
                Err(Failure::ConnectionLoss)
            }
        }
    }

    /// Closes the session (`closeSession`) and the connection.
    pub fn close(&mut self) {
        if self.is_connected() {
            let _ = self.call(OpCode::CloseSession, &Empty);
        }
        self.disconnect();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits for the reply while the connection lives.
fn wait(answered: &Receiver<Reply>, alive: &AtomicBool) -> Option<Reply> {
    loop {
        match answered.recv_timeout(Duration::from_millis(50)) {
            Ok(reply) => return Some(reply),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if alive.load(Ordering::Acquire) => {}
            Err(_) => return None,
        }
    }
}

/// Prints a watch event's lines as zkCli's default watcher does.
pub fn print_event(state: &str, event_type: &str, path: Option<&str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nWATCHER::\n");
    let _ = writeln!(
        out,
        "WatchedEvent state:{state} type:{event_type} path:{}",
        path.unwrap_or("null")
    );
    let _ = out.flush();
}

fn event_type_name(event_type: i32) -> &'static str {
    match event_type {
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "None",
    }
}

fn read_replies(
    mut stream: TcpStream,
    waiting: &Waiting,
    last_zxid: &AtomicI64,
    watches: &Mutex<Watches>,
    alive: &AtomicBool,
) {
    while alive.load(Ordering::Acquire) {
        let Ok(frame) = read_frame(&mut stream) else {
            break;
        };
        let mut reader = Reader::new(&frame);
        let Ok(header) = ReplyHeader::read(&mut reader) else {
            break;
        };
        if header.zxid > 0 {
            last_zxid.fetch_max(header.zxid, Ordering::AcqRel);
        }
        let body = frame.slice(reader.position()..);
        match header.xid {
            PING_XID | SET_WATCHES_XID => {}
            NOTIFICATION_XID => {
                if let Ok(event) = WatcherEvent::read(&mut Reader::new(&body)) {
                    lock(watches).fired(event.event_type, &event.path);
                    print_event(
                        "SyncConnected",
                        event_type_name(event.event_type),
                        Some(&event.path),
                    );
                }
            }
            xid => {
                let waiter = lock(waiting).take();
                match waiter {
                    Some((expected, answer)) if expected == xid => {
                        let _ = answer.send(Reply { header, body });
                    }
                    other => *lock(waiting) = other,
                }
            }
        }
    }
    alive.store(false, Ordering::Release);
}

fn ping(stream: &Mutex<TcpStream>, interval: Duration, alive: &AtomicBool) {
    let mut out = BytesMut::new();
    RequestHeader { xid: PING_XID, op_type: OpCode::Ping.as_i32() }.write(&mut out);
    while alive.load(Ordering::Acquire) {
        std::thread::sleep(interval);
        if !alive.load(Ordering::Acquire) || send_frame(&mut lock(stream), &out).is_err() {
            break;
        }
    }
}

fn send_frame(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_MAX {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}
