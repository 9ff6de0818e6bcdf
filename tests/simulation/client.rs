//! Simulated clients. Each talks to one member through a real connection object: its
//! handshake goes through the server's own admission (`server::handshake`), its replies
//! come out of the connection's outbox as the bytes a socket would carry.
//!
//! A writer writes keys no other client writes, alone and in `multi`s, and keeps, per
//! key, every state the key may be in given the replies it had (what the `durable`
//! invariant checks the converged tree against) and the history of its writes (what a
//! `sync` then read by another client is checked against). A key whose last write has
//! an unknown outcome (the connection broke before the reply) is never written again,
//! since that write may still commit later. A writer whose connection breaks often
//! resumes its session on another member, as ZooKeeper's clients do.
//!
//! A locker runs ZooKeeper's lock recipe (`lock`) and, while it holds the lock, writes a
//! guarded node conditionally on the version it read.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use jute::records::{
    CheckVersionRequest, ConnectRequest, ConnectResponse, CreateRequest, CreateResponse,
    DeleteRequest, ExistsRequest, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, MultiOp, MultiRequest, MultiResponse, MultiResult, ReplyHeader, RequestHeader,
    SetDataRequest, SyncRequest, WatcherEvent,
};
use jute::{Code, OpCode, Reader, Record};
use zkrs::proto::Frame;
use zkrs::server::handshake::{admit, Admission};
use zkrs::server::outbox::Taken;
use zkrs::server::pipeline::Input;
use zkrs::server::registry::{Connection, ConnectionLimits};
use zkrs::server::Shared;
use zkrs::tree::acl::{perms, world_anyone};
use zkrs::txn::{SessionId, Zxid};
use zkrs::zab::ServerId;

use crate::invariants::{lock, ordered, read_only, read_your_writes, sync_then_read};
use crate::rng::Rng;

/// Session timeout the clients ask for.
pub const SESSION_TIMEOUT_MS: i32 = 1000;
/// Requests a client has in flight at most.
const IN_FLIGHT_MAX: usize = 4;
/// Where the lockers queue, and the node only the lock's holder writes.
const LOCK_PATH: &str = "/lock";
const GUARDED_PATH: &str = "/guarded";

/// Another client's key, read after a `sync`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The client that writes it.
    pub owner: usize,
    /// Its key.
    pub key: usize,
    /// Its path.
    pub path: String,
    /// When the reader sent its `sync`.
    pub synced_at: u64,
}

/// What a read of another client's key after a `sync` saw, for the world to check
/// against that client's history.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The reader.
    pub reader: usize,
    /// What it read.
    pub target: Target,
    /// The data it saw; `None` for no such node.
    pub seen: Option<Bytes>,
}

/// A step of the lock recipe.
#[derive(Debug, Clone)]
pub enum LockOp {
    /// Creates a persistent node the recipe needs (it may already exist).
    CreateParent(&'static str),
    /// Creates this locker's ephemeral sequential node under the lock.
    Enqueue,
    /// Lists the queue: the lowest node holds the lock.
    List,
    /// Watches the node just ahead of this locker's.
    WatchPredecessor(String),
    /// The holder reads the guarded node's version.
    ReadGuard,
    /// The holder writes the guarded node if its version is still the one read.
    WriteGuard(i32),
    /// Deletes this locker's node, releasing the lock.
    Release(String),
}

impl LockOp {
    fn is_read(&self) -> bool {
        matches!(self, LockOp::List | LockOp::WatchPredecessor(_) | LockOp::ReadGuard)
    }
}

/// A request and what it would make of the keys it writes.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        key: usize,
        value: Bytes,
        ephemeral: bool,
    },
    Set {
        key: usize,
        value: Bytes,
    },
    Delete {
        key: usize,
    },
    /// Writes several keys at once, each to the state given (creating, setting or
    /// deleting it); if `fails`, a version check that cannot pass goes first, so none
    /// may change.
    Multi {
        writes: Vec<(usize, Option<Bytes>)>,
        fails: bool,
    },
    /// A `sync`, then, if `then_read`, a read of another client's key.
    Sync {
        then_read: Option<Target>,
    },
    /// getData, setting a data watch if `watch`.
    Read {
        key: usize,
        watch: bool,
    },
    /// getData of another client's key, after a `sync` (or, under linearizable reads,
    /// without one).
    ReadOther(Target),
    Lock(LockOp),
}

impl Op {
    /// The keys it writes and the states it leaves them in, for persistent keys.
    fn outcomes(&self) -> Vec<(usize, Option<Bytes>)> {
        match self {
            Op::Create { key, value, ephemeral: false } | Op::Set { key, value } => {
                vec![(*key, Some(value.clone()))]
            }
            Op::Delete { key } => vec![(*key, None)],
            Op::Multi { writes, fails: false } => writes.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether the sim answers it from the tree at once, as a connection answers a read
    /// once its session's earlier requests are answered.
    pub fn is_read(&self) -> bool {
        match self {
            Op::Read { .. } | Op::ReadOther(_) => true,
            Op::Lock(step) => step.is_read(),
            _ => false,
        }
    }
}

/// One write of a key that may have taken effect.
#[derive(Debug, Clone)]
pub struct Written {
    /// The state it leaves the key in.
    pub state: Option<Bytes>,
    /// When its success reached the client.
    pub acked_at: Option<u64>,
    /// It was answered with an error: it changed nothing.
    pub failed: bool,
}

/// Every state a key may be in.
#[derive(Debug, Clone)]
pub struct KeyModel {
    /// The possible values; `None` for absent.
    pub possible: Vec<Option<Bytes>>,
    /// A write of unknown outcome: never written again.
    pub retired: bool,
    /// The session whose acknowledged write left the key in its one possible state: a
    /// read in that session must see it.
    pub known_in: Option<SessionId>,
    /// The writes sent, in order.
    pub history: Vec<Written>,
}

impl KeyModel {
    /// The one state the key is in, if the replies tell it.
    fn known(&self) -> Option<&Option<Bytes>> {
        match self.possible.as_slice() {
            [state] if !self.retired => Some(state),
            _ => None,
        }
    }
}

/// Where a locker is in the recipe.
#[derive(Debug, Clone)]
enum LockState {
    /// Not trying to take the lock.
    Idle,
    /// The next step, to send once nothing is in flight.
    Next(LockOp),
    /// A step is in flight.
    Sent,
    /// Waiting for the watch on this node (the predecessor) to fire.
    Waiting(String),
}

/// One simulated client.
pub struct Client {
    pub id: usize,
    /// Runs the lock recipe instead of writing keys.
    pub locker: bool,
    /// Asks for read-only service in its handshakes, as kazoo's `read_only=True` does.
    read_only: bool,
    /// The member opened the current session read-only.
    session_read_only: bool,
    /// Sessions members opened read-only for it.
    pub read_only_sessions: u64,
    /// Writes refused in those sessions.
    pub read_only_refusals: u64,
    /// The member it is connected to, and that member's incarnation then.
    pub member: Option<(ServerId, u64)>,
    connection: Option<Arc<Connection>>,
    session: Option<SessionId>,
    /// The session to resume on the next connection, with its password.
    resumable: Option<(SessionId, Bytes)>,
    /// The latest zxid a reply carried, sent along when resuming.
    last_zxid: Zxid,
    next_xid: i32,
    outstanding: VecDeque<(i32, Op)>,
    received: Vec<u8>,
    pub keys: Vec<KeyModel>,
    busy: BTreeSet<usize>,
    /// Keys with a data watch set on this connection and not yet fired.
    watching: BTreeSet<usize>,
    /// A read to send as soon as nothing is in flight: of the client's own key whose
    /// write was just answered, or of another client's after a `sync`.
    read_back: Option<Op>,
    ephemerals: u64,
    lock: LockState,
    /// This locker's node in the queue.
    lock_node: Option<String>,
    /// The lock's parents exist.
    lock_ready: bool,
    /// Writes answered with success.
    pub acknowledged: u64,
    /// Times this locker took the lock.
    pub locks_taken: u64,
    /// Reads of other clients' keys after a sync, for the world to check.
    pub observations: Vec<Observation>,
    /// The time, as the world last said.
    now: u64,
    /// Members answer reads only past the read barrier (`zkrs.linearizableReads`): the
    /// client reads other clients' keys without a `sync` first, too.
    pub linearizable_reads: bool,
}

impl Client {
    pub fn new(id: usize, locker: bool, read_only: bool) -> Client {
        Client {
            id,
            locker,
            read_only,
            linearizable_reads: false,
            session_read_only: false,
            read_only_sessions: 0,
            read_only_refusals: 0,
            member: None,
            connection: None,
            session: None,
            resumable: None,
            last_zxid: Zxid::ZERO,
            next_xid: 1,
            outstanding: VecDeque::new(),
            received: Vec::new(),
            keys: Vec::new(),
            busy: BTreeSet::new(),
            watching: BTreeSet::new(),
            read_back: None,
            ephemerals: 0,
            lock: LockState::Idle,
            lock_node: None,
            lock_ready: false,
            acknowledged: 0,
            locks_taken: 0,
            observations: Vec::new(),
            now: 0,
        }
    }

    /// The path of this client's key `key`.
    pub fn path(&self, key: usize) -> String {
        format!("/c{}-k{key}", self.id)
    }

    /// Opens a connection to `member` (incarnation `incarnation`) and sends the
    /// handshake: resuming the last session if `resume` and it has one. The input for
    /// the member's pipeline, if the handshake needs one.
    pub fn connect(
        &mut self,
        shared: &Shared,
        (member, incarnation): (ServerId, u64),
        resume: bool,
    ) -> Option<Input> {
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let address = format!("127.0.0.1:{}", 10_000 + self.id).parse().expect("address");
        let connection = shared.registry.open(address, false, limits, 0).expect("no limits");
        let (session_id, passwd) = match (&self.resumable, resume) {
            (Some((session_id, passwd)), true) => (*session_id, passwd.clone()),
            _ => (SessionId::NONE, Bytes::from_static(&[0; 16])),
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid.raw(),
            time_out: SESSION_TIMEOUT_MS,
            session_id: session_id.raw(),
            passwd,
        };
        let mut body = BytesMut::new();
        request.write(&mut body);
        self.read_only.write(&mut body);
        let input = match admit(shared, &connection, &body.freeze()) {
            Ok(Admission::Create(input)) => Some(input),
            Ok(Admission::Resumed { attach, .. }) => attach,
            Ok(Admission::Expired) => None,
            Err(_) => {
                // Refused without a reply: the client tries again later.
                shared.registry.close(&connection);
                return None;
            }
        };
        self.member = Some((member, incarnation));
        self.connection = Some(connection);
        self.session = None;
        input
    }

    /// The connection, if open.
    pub fn connection(&self) -> Option<&Arc<Connection>> {
        self.connection.as_ref()
    }

    /// The session, if established.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The session, [`SessionId::NONE`] before it is established.
    pub fn session_id(&self) -> SessionId {
        self.session.unwrap_or(SessionId::NONE)
    }

    /// Whether the client wants to send a read the moment nothing is in flight.
    pub fn wants_read_back(&self) -> bool {
        let lock_read = matches!(&self.lock, LockState::Next(step) if step.is_read());
        (self.read_back.is_some() || lock_read) && self.outstanding.is_empty()
    }

    /// Whether no request waits for its reply.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Whether a session is established and may take another request.
    pub fn is_ready(&self) -> bool {
        self.session.is_some() && self.outstanding.len() < IN_FLIGHT_MAX
    }

    /// Whether the client has keys another may read.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The connection is gone (its member crashed, closed it, or the client left): what
    /// was in flight has an unknown outcome. The session may be resumed elsewhere.
    pub fn disconnect(&mut self) {
        for (_, op) in std::mem::take(&mut self.outstanding) {
            if self.session_read_only {
                // Refused or never carried out: a read-only session changes nothing.
                continue;
            }
            for (key, state) in op.outcomes() {
                let model = &mut self.keys[key];
                if !model.possible.contains(&state) {
                    model.possible.push(state);
                }
                model.retired = true;
            }
        }
        self.busy.clear();
        self.watching.clear();
        self.read_back = None;
        self.lock = LockState::Idle;
        self.lock_node = None;
        self.member = None;
        self.connection = None;
        self.session = None;
        self.session_read_only = false;
        self.received.clear();
    }

    /// The client stops for good: its session is not resumed.
    pub fn stop(&mut self) {
        self.disconnect();
        self.resumable = None;
    }

    /// Picks the next request, if the client has one: a pending read when nothing is
    /// in flight (a connection runs a read only after the session's earlier requests are
    /// answered), the lock recipe's next step for a locker, or a write on keys not in
    /// flight, ones that are new or still known. `other` is another client's key to
    /// read after a sync, if the world offers one.
    pub fn next_op(&mut self, rng: &mut Rng, other: Option<Target>) -> Option<Op> {
        if !self.outstanding.is_empty() && (self.locker || self.read_back.is_some()) {
            return None;
        }
        if let Some(read) = self.read_back.take() {
            return Some(read);
        }
        if self.locker {
            return self.next_lock_op(rng);
        }
        if self.outstanding.is_empty() && !self.keys.is_empty() && rng.chance(30) {
            let key = rng.below(self.keys.len() as u64) as usize;
            return Some(Op::Read { key, watch: rng.chance(50) });
        }
        if rng.chance(10) {
            let then_read = other.filter(|_| self.outstanding.is_empty());
            // A read-only session asked for possibly stale reads: a read-only member
            // serves it without the read barrier, as the README says.
            if self.linearizable_reads && !self.session_read_only && rng.chance(50) {
                if let Some(target) = then_read {
                    // Linearizable without a sync: as if synced when the read leaves.
                    return Some(Op::ReadOther(Target { synced_at: self.now, ..target }));
                }
            }
            return Some(Op::Sync { then_read });
        }
        if rng.chance(10) {
            self.ephemerals += 1;
            let value = Bytes::from(format!("e{}", self.ephemerals));
            return Some(Op::Create { key: self.ephemerals as usize, value, ephemeral: true });
        }
        let writable: Vec<usize> = (0..self.keys.len())
            .filter(|key| !self.keys[*key].retired && !self.busy.contains(key))
            .collect();
        let value = Bytes::from(format!("v{}", rng.next() % 1000));
        if writable.is_empty() || rng.chance(20) {
            self.new_key();
            return Some(Op::Create { key: self.keys.len() - 1, value, ephemeral: false });
        }
        if rng.chance(15) {
            return Some(self.multi(rng, &writable));
        }
        let key = *rng.pick(&writable);
        Some(match rng.below(3) {
            0 => Op::Create { key, value, ephemeral: false },
            1 => Op::Set { key, value },
            _ => Op::Delete { key },
        })
    }

    fn new_key(&mut self) -> usize {
        let model =
            KeyModel { possible: vec![None], retired: false, known_in: None, history: Vec::new() };
        self.keys.push(model);
        self.keys.len() - 1
    }

    /// A multi over up to three keys whose state is known (new keys among them), each
    /// created, set or deleted according to it.
    fn multi(&mut self, rng: &mut Rng, writable: &[usize]) -> Op {
        let mut keys: BTreeSet<usize> = (0..1 + rng.below(3))
            .filter_map(|_| {
                let key = *rng.pick(writable);
                self.keys[key].known().is_some().then_some(key)
            })
            .collect();
        if keys.is_empty() || rng.chance(30) {
            keys.insert(self.new_key());
        }
        let writes = keys
            .into_iter()
            .map(|key| {
                let absent = matches!(self.keys[key].known(), Some(None));
                let state = if !absent && rng.chance(30) {
                    None
                } else {
                    Some(Bytes::from(format!("m{}", rng.next() % 1000)))
                };
                (key, state)
            })
            .collect();
        Op::Multi { writes, fails: rng.chance(25) }
    }

    fn next_lock_op(&mut self, rng: &mut Rng) -> Option<Op> {
        match std::mem::replace(&mut self.lock, LockState::Sent) {
            LockState::Next(step) => Some(Op::Lock(step)),
            LockState::Idle if rng.chance(20) => Some(Op::Lock(if self.lock_ready {
                LockOp::Enqueue
            } else {
                LockOp::CreateParent(LOCK_PATH)
            })),
            state => {
                self.lock = state;
                None
            }
        }
    }

    /// The request for `op`, as the connection would hand it to the pipeline, from a
    /// frame encoded as the client would send it.
    pub fn request(&mut self, mut op: Op, now_ms: u64) -> Input {
        let xid = self.next_xid;
        self.next_xid += 1;
        if let Op::Sync { then_read: Some(target) } = &mut op {
            target.synced_at = self.now;
        }
        let mut body = BytesMut::new();
        RequestHeader { xid, op_type: self.op_code(&op).as_i32() }.write(&mut body);
        self.write_body(&op, &mut body);
        let frame = body.freeze();
        let request = match Frame::decode(&frame) {
            Ok(Frame { request: Ok(request), .. }) => request,
            other => panic!("the simulator encoded a request that does not decode: {other:?}"),
        };
        for (key, state) in op.outcomes() {
            self.busy.insert(key);
            self.keys[key].history.push(Written { state, acked_at: None, failed: false });
        }
        if let Op::Read { key, watch: true } = op {
            self.watching.insert(key);
        }
        self.outstanding.push_back((xid, op));
        let connection = self.connection.clone().expect("ready clients are connected");
        let session_id = self.session.unwrap_or(SessionId::NONE);
        let auth = connection.auth();
        Input::Request {
            connection,
            session_id,
            xid,
            request,
            frame,
            auth,
            received_us: now_ms * 1000,
        }
    }

    fn op_code(&self, op: &Op) -> OpCode {
        match op {
            Op::Create { .. } => OpCode::Create,
            Op::Set { .. } => OpCode::SetData,
            Op::Delete { .. } => OpCode::Delete,
            Op::Multi { .. } => OpCode::Multi,
            Op::Sync { .. } => OpCode::Sync,
            Op::Read { .. } | Op::ReadOther(_) => OpCode::GetData,
            Op::Lock(step) => match step {
                LockOp::CreateParent(_) | LockOp::Enqueue => OpCode::Create,
                LockOp::List => OpCode::GetChildren,
                LockOp::WatchPredecessor(_) => OpCode::Exists,
                LockOp::ReadGuard => OpCode::GetData,
                LockOp::WriteGuard(_) => OpCode::SetData,
                LockOp::Release(_) => OpCode::Delete,
            },
        }
    }

    fn write_body(&self, op: &Op, body: &mut BytesMut) {
        let acl = vec![world_anyone(perms::ALL)];
        let create = |path: String, data: Bytes, flags: i32| CreateRequest {
            path,
            data: Some(data),
            acl: acl.clone(),
            flags,
        };
        match op {
            Op::Create { key, value, ephemeral } => {
                let path =
                    if *ephemeral { format!("/c{}-e{key}", self.id) } else { self.path(*key) };
                create(path, value.clone(), i32::from(*ephemeral)).write(body);
            }
            Op::Set { key, value } => {
                let path = self.path(*key);
                SetDataRequest { path, data: Some(value.clone()), version: -1 }.write(body);
            }
            Op::Delete { key } => DeleteRequest { path: self.path(*key), version: -1 }.write(body),
            Op::Multi { writes, fails } => {
                let mut ops = Vec::new();
                if *fails {
                    let path = self.path(writes[0].0);
                    ops.push(MultiOp::Check(CheckVersionRequest { path, version: 1 << 30 }));
                }
                for (key, state) in writes {
                    let path = self.path(*key);
                    let exists = !matches!(self.keys[*key].known(), Some(None));
                    ops.push(match (state, exists) {
                        (Some(value), false) => MultiOp::Create {
                            op_type: OpCode::Create.as_i32(),
                            request: create(path, value.clone(), 0),
                        },
                        (Some(value), true) => MultiOp::SetData(SetDataRequest {
                            path,
                            data: Some(value.clone()),
                            version: -1,
                        }),
                        (None, _) => MultiOp::Delete(DeleteRequest { path, version: -1 }),
                    });
                }
                MultiRequest { ops }.write(body);
            }
            Op::Sync { .. } => SyncRequest { path: "/".into() }.write(body),
            Op::Read { key, watch } => {
                GetDataRequest { path: self.path(*key), watch: *watch }.write(body);
            }
            Op::ReadOther(target) => {
                GetDataRequest { path: target.path.clone(), watch: false }.write(body);
            }
            Op::Lock(step) => match step {
                LockOp::CreateParent(path) => create((*path).into(), Bytes::new(), 0).write(body),
                LockOp::Enqueue => {
                    let path = format!("{LOCK_PATH}/n-");
                    create(path, Bytes::from(format!("{}", self.id)), 3).write(body);
                }
                LockOp::List => {
                    GetChildrenRequest { path: LOCK_PATH.into(), watch: false }.write(body);
                }
                LockOp::WatchPredecessor(node) => {
                    let path = format!("{LOCK_PATH}/{node}");
                    ExistsRequest { path, watch: true }.write(body);
                }
                LockOp::ReadGuard => {
                    GetDataRequest { path: GUARDED_PATH.into(), watch: false }.write(body);
                }
                LockOp::WriteGuard(version) => {
                    let data = Some(Bytes::from(format!("held by client {}", self.id)));
                    SetDataRequest { path: GUARDED_PATH.into(), data, version: *version }
                        .write(body);
                }
                LockOp::Release(node) => {
                    let path = format!("{LOCK_PATH}/{node}");
                    DeleteRequest { path, version: -1 }.write(body);
                }
            },
        }
    }

    /// Reads what the member sent by `now`; `Err` if the replies break an invariant.
    /// Returns whether the connection is still open.
    pub fn poll(&mut self, now: u64) -> Result<bool, String> {
        self.now = now;
        let Some(connection) = self.connection.clone() else {
            return Ok(false);
        };
        let open = connection.outbox.take_into(&mut self.received) != Taken::Closed;
        while let Some(frame) = take_frame(&mut self.received) {
            self.frame(frame)?;
        }
        Ok(open && !connection.close_requested())
    }

    fn frame(&mut self, frame: Bytes) -> Result<(), String> {
        let mut reader = Reader::new(&frame);
        if self.session.is_none() {
            let response = ConnectResponse::read(&mut reader).map_err(|err| err.to_string())?;
            // The member appends whether it opened the session read-only to the reply
            // of a client that asked for read-only service.
            self.session_read_only = self.read_only && bool::read(&mut reader).unwrap_or(false);
            self.read_only_sessions += u64::from(self.session_read_only);
            let session_id = SessionId::new(response.session_id);
            if session_id == SessionId::NONE {
                // Expired: the connection closes; the next one asks for a new session.
                self.resumable = None;
            } else {
                self.session = Some(session_id);
                self.resumable = Some((session_id, response.passwd));
            }
            return Ok(());
        }
        let header = ReplyHeader::read(&mut reader).map_err(|err| err.to_string())?;
        if header.xid == -1 {
            let event = WatcherEvent::read(&mut reader).map_err(|err| err.to_string())?;
            let key = (0..self.keys.len()).find(|key| self.path(*key) == event.path);
            if let Some(key) = key {
                self.watching.remove(&key);
            }
            if let LockState::Waiting(node) = &self.lock {
                if event.path == format!("{LOCK_PATH}/{node}") {
                    self.lock = LockState::Next(LockOp::List);
                }
            }
            return Ok(());
        }
        self.last_zxid = self.last_zxid.max(Zxid::new(header.zxid));
        let (_, op) = ordered::next_reply(self.id, &mut self.outstanding, header.xid)?;
        if self.session_read_only && !op.is_read() {
            read_only::check_write(self.id, header.err)?;
            self.read_only_refusals += 1;
        }
        match op {
            Op::Read { key, .. } => {
                let seen = read_data(header.err, &mut reader)?;
                if seen.is_none() {
                    // getData sets no watch on a node that does not exist.
                    self.watching.remove(&key);
                }
                read_your_writes::check(self, key, seen)
            }
            Op::ReadOther(target) => {
                let seen = read_data(header.err, &mut reader)?;
                self.observations.push(Observation { reader: self.id, target, seen });
                Ok(())
            }
            Op::Sync { then_read } => {
                if header.err == 0 {
                    self.read_back = then_read.map(Op::ReadOther);
                }
                Ok(())
            }
            Op::Lock(step) => self.lock_reply(step, header.err, &mut reader),
            op => self.write_reply(op, header.err, &mut reader),
        }
    }

    fn write_reply(&mut self, op: Op, err: i32, reader: &mut Reader) -> Result<(), String> {
        let mut succeeded = err == 0;
        if let Op::Multi { fails, .. } = &op {
            if succeeded {
                let response = MultiResponse::read(reader).map_err(|err| err.to_string())?;
                let failed =
                    response.results.iter().any(|result| matches!(result, MultiResult::Error(_)));
                succeeded = !failed;
            }
            if *fails && succeeded {
                return Err(format!(
                    "client {}: a multi whose version check cannot pass succeeded",
                    self.id
                ));
            }
        }
        if succeeded {
            self.acknowledged += 1;
        }
        for (key, state) in op.outcomes() {
            self.busy.remove(&key);
            let model = &mut self.keys[key];
            if let Some(last) = model.history.last_mut() {
                if succeeded {
                    last.acked_at = Some(self.now);
                } else {
                    last.failed = true;
                }
            }
            if succeeded {
                if self.watching.contains(&key) {
                    return Err(format!(
                        "client {}: {} changed by its own write, answered before the watch \
                         it set on the key fired",
                        self.id,
                        self.path(key)
                    ));
                }
                let model = &mut self.keys[key];
                model.possible = vec![state];
                model.known_in = self.session;
                self.read_back = Some(Op::Read { key, watch: false });
            }
        }
        Ok(())
    }

    /// The lock recipe's next step, given the reply to the last.
    fn lock_reply(&mut self, step: LockOp, err: i32, reader: &mut Reader) -> Result<(), String> {
        let decode = |err: jute::DecodeError| err.to_string();
        self.lock = match step {
            LockOp::CreateParent(path) if err == 0 || err == Code::NodeExists.as_i32() => {
                if path == LOCK_PATH {
                    LockState::Next(LockOp::CreateParent(GUARDED_PATH))
                } else {
                    self.lock_ready = true;
                    LockState::Next(LockOp::Enqueue)
                }
            }
            LockOp::Enqueue if err == 0 => {
                let path = CreateResponse::read(reader).map_err(decode)?.path;
                let node = path.trim_start_matches(&format!("{LOCK_PATH}/")).to_string();
                self.lock_node = Some(node);
                LockState::Next(LockOp::List)
            }
            LockOp::List if err == 0 => {
                let mut queue = GetChildrenResponse::read(reader).map_err(decode)?.children;
                queue.sort();
                let mine = self.lock_node.as_ref().and_then(|node| {
                    let position = queue.iter().position(|queued| queued == node)?;
                    Some((position, node.clone()))
                });
                match mine {
                    Some((0, _)) => {
                        self.locks_taken += 1;
                        LockState::Next(LockOp::ReadGuard)
                    }
                    Some((position, _)) => {
                        LockState::Next(LockOp::WatchPredecessor(queue[position - 1].clone()))
                    }
                    None => {
                        // The node is gone with an earlier session: start again.
                        self.lock_node = None;
                        LockState::Idle
                    }
                }
            }
            LockOp::WatchPredecessor(_) if err == Code::NoNode.as_i32() => {
                LockState::Next(LockOp::List)
            }
            LockOp::WatchPredecessor(node) if err == 0 => LockState::Waiting(node),
            LockOp::ReadGuard if err == 0 => {
                let version = GetDataResponse::read(reader).map_err(decode)?.stat.version;
                LockState::Next(LockOp::WriteGuard(version))
            }
            LockOp::WriteGuard(version) => {
                lock::check_guarded_write(self.id, version, err)?;
                self.release()
            }
            LockOp::Release(_) => {
                self.lock_node = None;
                LockState::Idle
            }
            _ => self.release(),
        };
        Ok(())
    }

    /// Leaves the queue: deletes this locker's node if it has one.
    fn release(&mut self) -> LockState {
        match self.lock_node.clone() {
            Some(node) => LockState::Next(LockOp::Release(node)),
            None => LockState::Idle,
        }
    }

    /// Checks what this client reads of another client's key against that client's
    /// history.
    ///
    /// # Errors
    /// If the read missed a write acknowledged before its sync.
    pub fn check_observation(&self, observation: &Observation) -> Result<(), String> {
        sync_then_read::check(&self.keys[observation.target.key], observation)
    }
}

/// A getData reply's data; `None` for no such node.
fn read_data(err: i32, reader: &mut Reader) -> Result<Option<Bytes>, String> {
    if err != 0 {
        return Ok(None);
    }
    let response = GetDataResponse::read(reader).map_err(|err| err.to_string())?;
    Ok(Some(response.data.unwrap_or_default()))
}

/// The next whole frame's body, without its length, if one has arrived.
fn take_frame(received: &mut Vec<u8>) -> Option<Bytes> {
    let length: [u8; 4] = received.get(..4)?.try_into().ok()?;
    let length = usize::try_from(i32::from_be_bytes(length)).ok()?;
    if received.len() < 4 + length {
        return None;
    }
    let frame = Bytes::copy_from_slice(&received[4..4 + length]);
    received.drain(..4 + length);
    Some(frame)
}
