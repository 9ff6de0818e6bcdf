//! The register workload: clients pinned to members read, write and compare-and-set a
//! few znodes (setData with a version), and every operation's invocation and outcome is
//! recorded for the checker.

use std::sync::Arc;

use bytes::Bytes;
use jute::records::SyncRequest;
use jute::records::{GetDataRequest, GetDataResponse, SetDataRequest, SetDataResponse};
use jute::{Code, OpCode};
use parking_lot::Mutex;

use crate::checker::{Op, Operation, State};
use crate::pinned::{call, decimal, Pinned};
use crate::support::rng::Rng;

/// How clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A plain getData.
    Plain,
    /// A `sync` of the znode, then getData: one read from the sync's invocation on.
    AfterSync,
}

/// The registers' paths.
pub fn path(key: usize) -> String {
    format!("/register/k{key}")
}

/// Every operation of a run, by register.
#[derive(Default)]
pub struct Recorder {
    operations: Mutex<Vec<(usize, Operation)>>,
}

impl Recorder {
    /// Adds `operation` to register `key`'s history.
    pub fn record(&self, key: usize, operation: Operation) {
        self.operations.lock().push((key, operation));
    }

    /// The history of register `key`.
    pub fn history(&self, key: usize) -> Vec<Operation> {
        let operations = self.operations.lock();
        operations.iter().filter(|(k, _)| *k == key).map(|(_, operation)| *operation).collect()
    }

    /// How many operations completed, failed definitely, and ended unknown.
    pub fn counts(&self) -> (usize, usize) {
        let operations = self.operations.lock();
        let unknown = operations.iter().filter(|(_, op)| op.completed.is_none()).count();
        (operations.len() - unknown, unknown)
    }
}

/// A client of the registers.
pub struct Worker {
    pub id: usize,
    pub pinned: Pinned,
    pub keys: usize,
    pub reads: Reads,
    pub recorder: Arc<Recorder>,
    pub seed: u64,
}

impl Worker {
    /// Runs operations until told to stop.
    pub async fn run(self) {
        let mut rng = Rng(self.seed);
        let mut versions = vec![0i32; self.keys];
        let mut next_value = 0u64;
        let mut client = None;
        while !self.pinned.stopped() {
            let Some(connected) = client.as_mut() else {
                client = self.pinned.connect().await;
                continue;
            };
            let key = rng.below(self.keys as u64) as usize;
            let path = path(key);
            next_value += 1;
            let value = (self.id as u64 + 1) * 1_000_000_000 + next_value;
            let invoked = self.pinned.now();
            let (op, outcome) = match rng.below(10) {
                0..=4 => {
                    if self.reads == Reads::AfterSync {
                        let sync = SyncRequest { path: path.clone() };
                        if call(connected, OpCode::Sync, &sync).await.is_none() {
                            client = None;
                            continue;
                        }
                    }
                    let request = GetDataRequest { path: path.clone(), watch: false };
                    let outcome = call(connected, OpCode::GetData, &request).await;
                    (Op::Read { seen: State { value: 0, version: 0 } }, outcome)
                }
                5..=6 => {
                    let data = Some(Bytes::from(value.to_string()));
                    let request = SetDataRequest { path: path.clone(), data, version: -1 };
                    let outcome = call(connected, OpCode::SetData, &request).await;
                    (Op::Write { value, version: None }, outcome)
                }
                _ => {
                    let expected = versions[key];
                    let data = Some(Bytes::from(value.to_string()));
                    let request = SetDataRequest { path: path.clone(), data, version: expected };
                    let outcome = call(connected, OpCode::SetData, &request).await;
                    (Op::Cas { expected, value, succeeded: None }, outcome)
                }
            };
            let reply = match outcome {
                None => {
                    if op.changes() {
                        self.recorder.record(
                            key,
                            Operation { client: self.id, invoked, completed: None, op },
                        );
                    }
                    client = None;
                    continue;
                }
                Some(reply) => reply,
            };
            let completed = Some(self.pinned.now());
            let op = match (op, reply.header.err) {
                (Op::Read { .. }, 0) => {
                    let response: GetDataResponse = reply.decode();
                    let seen = State {
                        value: decimal(response.data.as_ref()).unwrap_or(0),
                        version: response.stat.version,
                    };
                    versions[key] = seen.version;
                    Op::Read { seen }
                }
                (Op::Write { value, .. }, 0) => {
                    let version = reply.decode::<SetDataResponse>().stat.version;
                    versions[key] = version;
                    Op::Write { value, version: Some(version) }
                }
                (Op::Cas { expected, value, .. }, 0) => {
                    versions[key] = expected + 1;
                    Op::Cas { expected, value, succeeded: Some(true) }
                }
                (Op::Cas { expected, value, .. }, err) if err == Code::BadVersion.as_i32() => {
                    Op::Cas { expected, value, succeeded: Some(false) }
                }
                // Any other error reply: the request was refused and did nothing.
                _ => continue,
            };
            self.recorder.record(key, Operation { client: self.id, invoked, completed, op });
        }
    }
}

impl Op {
    /// Whether the operation may change the register, so that an unknown outcome must
    /// stay in the history.
    fn changes(&self) -> bool {
        !matches!(self, Op::Read { .. })
    }
}
