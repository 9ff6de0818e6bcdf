//! The end of the pipeline: a committed txn is applied to the tree (its watches fire),
//! the session tracker follows it, and whoever waits for it here is answered.

use jute::records::ConnectResponse;
use jute::{OpCode, Record};

use super::work::ReplyTo;
use super::Pipeline;
use crate::proto::reply::{self, frame_with};
use crate::proto::write_reply::write_reply;
use crate::server::registry::Connection;
use crate::session::password::session_password;
use crate::txn::{SessionId, Txn, TxnBody, Zxid};

impl Pipeline {
    /// Applies a committed `txn` and answers `reply_to`. A createSession starts tracking
    /// its session here, in every role; a closeSession ends it.
    pub(super) fn apply_txn(&mut self, txn: &Txn, reply_to: ReplyTo) {
        let shared = self.shared.clone();
        let result = shared.database.apply(txn, &mut |watcher, notification| {
            shared.registry.deliver(watcher, notification);
        });
        self.preparer.applied(txn.zxid());
        let zxid = txn.zxid();
        let session_id = txn.header.client_id;
        match &txn.body {
            TxnBody::CreateSession(create) => {
                let mut sessions = shared.sessions.lock();
                // A local session made global is tracked already.
                if !sessions.contains(session_id) {
                    let timeout_ms = u64::try_from(create.time_out).unwrap_or(0);
                    sessions.add(session_id, timeout_ms, shared.clock.now_ms());
                }
            }
            TxnBody::CloseSession(_) => {
                shared.sessions.lock().remove(session_id);
                let own_close =
                    matches!(&reply_to, ReplyTo::Client { op: OpCode::CloseSession, .. });
                if !own_close {
                    if let Some(connection) = shared.registry.for_session(session_id) {
                        connection.request_close();
                    }
                }
            }
            _ => {}
        }
        match reply_to {
            ReplyTo::Nobody => {}
            ReplyTo::Client { connection, op, xid, received_ms } => {
                let frame = write_reply(op, &result, xid, zxid);
                self.answer(&connection, frame, op, xid, zxid, received_ms);
                if op == OpCode::CloseSession {
                    connection.request_close();
                }
            }
            ReplyTo::Handshake { connection, sent_read_only } => {
                if let TxnBody::CreateSession(create) = &txn.body {
                    // A server with a committed txn has a quorum: it is not read-only.
                    let read_only = sent_read_only.then_some(false);
                    self.establish(&connection, session_id, create.time_out, read_only);
                }
            }
        }
    }

    /// Answers a handshake with its new session and binds the session to the connection.
    /// `read_only` is the flag to append, if the client sent one.
    pub(super) fn establish(
        &self,
        connection: &Connection,
        session_id: SessionId,
        timeout_ms: i32,
        read_only: Option<bool>,
    ) {
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms,
            session_id,
            passwd: bytes::Bytes::copy_from_slice(&session_password(session_id)),
        };
        connection.send(frame_with(|out| {
            response.write(out);
            if let Some(read_only) = read_only {
                read_only.write(out);
            }
        }));
        let shared = &self.shared;
        shared.stats.packets_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.registry.bind_session(connection, session_id, i64::from(timeout_ms));
        connection.complete_write();
        tracing::debug!(session_id = format_args!("0x{session_id:x}"), "session established");
    }

    /// Answers a request decided without a txn (a local session's close, a write refused
    /// by a read-only member) with `code`; a close also ends the connection.
    pub(super) fn answer_status(
        &self,
        connection: &Connection,
        op: OpCode,
        xid: i32,
        code: jute::Code,
        received_ms: u64,
    ) {
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::status(xid, zxid, code);
        self.answer(connection, frame, op, xid, zxid, received_ms);
        if op == OpCode::CloseSession {
            connection.request_close();
        }
    }

    /// Answers a `sync`: everything committed before it is applied.
    pub(super) fn answer_sync(
        &self,
        connection: &Connection,
        xid: i32,
        path: String,
        received_ms: u64,
    ) {
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::ok(xid, zxid, &jute::records::SyncResponse { path });
        self.answer(connection, frame, OpCode::Sync, xid, zxid, received_ms);
    }

    fn answer(
        &self,
        connection: &Connection,
        frame: bytes::Bytes,
        op: OpCode,
        xid: i32,
        zxid: Zxid,
        received_ms: u64,
    ) {
        connection.send(frame);
        let now_ms = self.shared.clock.now_ms();
        let latency_ms = now_ms.saturating_sub(received_ms);
        self.shared.stats.packets_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared.stats.latency.lock().record(latency_ms);
        {
            let mut stats = connection.stats.lock();
            stats.last_op = crate::server::stats::short_op_name(op);
            stats.last_cxid = i64::from(xid);
            stats.last_zxid = zxid;
            stats.last_response_ms = now_ms;
            stats.last_latency_ms = latency_ms;
            stats.latency.record(latency_ms);
        }
        connection.complete_write();
    }
}
