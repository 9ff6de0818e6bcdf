//! Simulated clients. Each talks to one member through a real connection object (its
//! replies come out of the connection's outbox as the bytes a socket would carry),
//! writes keys no other client writes, and keeps, per key, every state the key may be
//! in given the replies it had: what the `durable` invariant checks the converged tree
//! against. A key whose last write has an unknown outcome (the connection broke before
//! the reply) is never written again, since that write may still commit later.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use jute::records::{
    ConnectResponse, CreateRequest, DeleteRequest, GetDataRequest, GetDataResponse, ReplyHeader,
    RequestHeader, SetDataRequest, SyncRequest, WatcherEvent,
};
use jute::{OpCode, Reader, Record};
use zkrs::proto::Frame;
use zkrs::server::outbox::Taken;
use zkrs::server::pipeline::Input;
use zkrs::server::registry::{Connection, ConnectionLimits};
use zkrs::server::Shared;
use zkrs::tree::acl::{perms, world_anyone};
use zkrs::txn::SessionId;
use zkrs::zab::ServerId;

use crate::invariants::{ordered, read_your_writes};
use crate::rng::Rng;

/// Session timeout the clients ask for.
pub const SESSION_TIMEOUT_MS: i32 = 1000;
/// Requests a client has in flight at most.
const IN_FLIGHT_MAX: usize = 4;

/// A write and what it would make of its key.
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
    Sync,
    /// getData, setting a data watch if `watch`.
    Read {
        key: usize,
        watch: bool,
    },
}

impl Op {
    /// The key it writes and the state it leaves it in, for persistent keys.
    fn outcome(&self) -> Option<(usize, Option<Bytes>)> {
        match self {
            Op::Create { key, value, ephemeral: false } | Op::Set { key, value } => {
                Some((*key, Some(value.clone())))
            }
            Op::Delete { key } => Some((*key, None)),
            Op::Create { ephemeral: true, .. } | Op::Sync | Op::Read { .. } => None,
        }
    }
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
}

/// One simulated client.
pub struct Client {
    pub id: usize,
    /// The member it is connected to, and that member's incarnation then.
    pub member: Option<(ServerId, u64)>,
    connection: Option<Arc<Connection>>,
    session: Option<SessionId>,
    next_xid: i32,
    outstanding: VecDeque<(i32, Op)>,
    received: Vec<u8>,
    pub keys: Vec<KeyModel>,
    busy: BTreeSet<usize>,
    /// Keys with a data watch set on this connection and not yet fired.
    watching: BTreeSet<usize>,
    /// A key to read back as soon as nothing is in flight: its write was just answered.
    read_back: Option<usize>,
    ephemerals: u64,
    /// Writes answered with success.
    pub acknowledged: u64,
}

impl Client {
    pub fn new(id: usize) -> Client {
        Client {
            id,
            member: None,
            connection: None,
            session: None,
            next_xid: 1,
            outstanding: VecDeque::new(),
            received: Vec::new(),
            keys: Vec::new(),
            busy: BTreeSet::new(),
            watching: BTreeSet::new(),
            read_back: None,
            ephemerals: 0,
            acknowledged: 0,
        }
    }

    /// The path of this client's key `key`.
    pub fn path(&self, key: usize) -> String {
        format!("/c{}-k{key}", self.id)
    }

    /// Opens a connection to `member` (incarnation `incarnation`) and asks for a session.
    pub fn connect(&mut self, shared: &Shared, member: ServerId, incarnation: u64) -> Input {
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
        let address = format!("127.0.0.1:{}", 10_000 + self.id).parse().expect("address");
        let connection = shared.registry.open(address, limits, 0).expect("no limits");
        self.member = Some((member, incarnation));
        self.connection = Some(connection.clone());
        self.session = None;
        Input::CreateSession { connection, timeout_ms: SESSION_TIMEOUT_MS, sent_read_only: false }
    }

    /// The session, if established.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The session, 0 before it is established.
    pub fn session_id(&self) -> SessionId {
        self.session.unwrap_or(0)
    }

    /// Whether the client wants to read back a write just answered.
    pub fn wants_read_back(&self) -> bool {
        self.read_back.is_some() && self.outstanding.is_empty()
    }

    /// Whether no request waits for its reply.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Whether a session is established and may take another request.
    pub fn is_ready(&self) -> bool {
        self.session.is_some() && self.outstanding.len() < IN_FLIGHT_MAX
    }

    /// The connection is gone (its member crashed, or the member closed it): what was
    /// in flight has an unknown outcome.
    pub fn disconnect(&mut self) {
        for (_, op) in std::mem::take(&mut self.outstanding) {
            if let Some((key, state)) = op.outcome() {
                let model = &mut self.keys[key];
                if !model.possible.contains(&state) {
                    model.possible.push(state);
                }
                model.retired = true;
            }
        }
        for model in &mut self.keys {
            model.known_in = None;
        }
        self.busy.clear();
        self.watching.clear();
        self.read_back = None;
        self.member = None;
        self.connection = None;
        self.session = None;
        self.received.clear();
    }

    /// Picks the next request: a read of a key when nothing is in flight (as a
    /// connection runs a read only after the session's earlier writes are answered), or a
    /// write on a key not in flight, one that is new or still known.
    pub fn next_op(&mut self, rng: &mut Rng) -> Op {
        if self.outstanding.is_empty() {
            if let Some(key) = self.read_back.take() {
                return Op::Read { key, watch: rng.chance(50) };
            }
        }
        if self.outstanding.is_empty() && !self.keys.is_empty() && rng.chance(30) {
            let key = rng.below(self.keys.len() as u64) as usize;
            return Op::Read { key, watch: rng.chance(50) };
        }
        if rng.chance(10) {
            return Op::Sync;
        }
        if rng.chance(10) {
            self.ephemerals += 1;
            let value = Bytes::from(format!("e{}", self.ephemerals));
            return Op::Create { key: self.ephemerals as usize, value, ephemeral: true };
        }
        let writable: Vec<usize> = (0..self.keys.len())
            .filter(|key| !self.keys[*key].retired && !self.busy.contains(key))
            .collect();
        let value = Bytes::from(format!("v{}", rng.next() % 1000));
        if writable.is_empty() || rng.chance(20) {
            self.keys.push(KeyModel { possible: vec![None], retired: false, known_in: None });
            return Op::Create { key: self.keys.len() - 1, value, ephemeral: false };
        }
        let key = *rng.pick(&writable);
        match rng.below(3) {
            0 => Op::Create { key, value, ephemeral: false },
            1 => Op::Set { key, value },
            _ => Op::Delete { key },
        }
    }

    /// The request for `op`, as the connection would hand it to the pipeline, from a
    /// frame encoded as the client would send it.
    pub fn request(&mut self, op: Op, now_ms: u64) -> Input {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut body = BytesMut::new();
        let op_type = match &op {
            Op::Create { .. } => OpCode::Create,
            Op::Set { .. } => OpCode::SetData,
            Op::Delete { .. } => OpCode::Delete,
            Op::Sync => OpCode::Sync,
            Op::Read { .. } => OpCode::GetData,
        };
        RequestHeader { xid, op_type: op_type.as_i32() }.write(&mut body);
        match &op {
            Op::Create { key, value, ephemeral } => {
                let path =
                    if *ephemeral { format!("/c{}-e{key}", self.id) } else { self.path(*key) };
                let acl = vec![world_anyone(perms::ALL)];
                let flags = i32::from(*ephemeral);
                CreateRequest { path, data: Some(value.clone()), acl, flags }.write(&mut body);
            }
            Op::Set { key, value } => {
                let path = self.path(*key);
                SetDataRequest { path, data: Some(value.clone()), version: -1 }.write(&mut body);
            }
            Op::Delete { key } => {
                DeleteRequest { path: self.path(*key), version: -1 }.write(&mut body)
            }
            Op::Sync => SyncRequest { path: "/".into() }.write(&mut body),
            Op::Read { key, watch } => {
                GetDataRequest { path: self.path(*key), watch: *watch }.write(&mut body);
            }
        }
        let frame = body.freeze();
        let request = match Frame::decode(&frame) {
            Ok(Frame { request: Ok(request), .. }) => request,
            other => panic!("the simulator encoded a request that does not decode: {other:?}"),
        };
        if let Some((key, _)) = op.outcome() {
            self.busy.insert(key);
        }
        if let Op::Read { key, watch: true } = op {
            self.watching.insert(key);
        }
        self.outstanding.push_back((xid, op));
        let connection = self.connection.clone().expect("ready clients are connected");
        let session_id = self.session.unwrap_or(0);
        let auth = connection.auth();
        Input::Request { connection, session_id, xid, request, frame, auth, received_ms: now_ms }
    }

    /// Reads what the member sent; `Err` if the replies break an invariant. Returns
    /// whether the connection is still open.
    pub fn poll(&mut self) -> Result<bool, String> {
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
            self.session = Some(response.session_id);
            return Ok(());
        }
        let header = ReplyHeader::read(&mut reader).map_err(|err| err.to_string())?;
        if header.xid == -1 {
            let event = WatcherEvent::read(&mut reader).map_err(|err| err.to_string())?;
            let key = (0..self.keys.len()).find(|key| self.path(*key) == event.path);
            if let Some(key) = key {
                self.watching.remove(&key);
            }
            return Ok(());
        }
        let (_, op) = ordered::next_reply(self.id, &mut self.outstanding, header.xid)?;
        if let Op::Read { key, .. } = op {
            let seen = match header.err {
                0 => Some(GetDataResponse::read(&mut reader).map_err(|err| err.to_string())?),
                _ => None,
            };
            let seen = seen.map(|response| response.data.unwrap_or_default());
            if seen.is_none() {
                // getData sets no watch on a node that does not exist.
                self.watching.remove(&key);
            }
            return read_your_writes::check(self, key, seen);
        }
        if header.err == 0 && !matches!(op, Op::Sync) {
            self.acknowledged += 1;
        }
        if let Some((key, state)) = op.outcome() {
            self.busy.remove(&key);
            if header.err == 0 {
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
                self.read_back = Some(key);
            }
        }
        Ok(())
    }
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
