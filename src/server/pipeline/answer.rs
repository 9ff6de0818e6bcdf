//! The end of the pipeline: a committed txn is applied to the tree (its watches fire),
//! the session tracker follows it, and whoever waits for it here is answered. A `sync`
//! is answered when the core says, which may be after later writes of its session are
//! applied: their replies wait behind it, so a session's replies keep its order.

use std::sync::atomic::Ordering;

use jute::OpCode;

use super::work::ReplyTo;
use super::{ClientSync, PendingSync, Pipeline};
use crate::audit;
use crate::proto::reply;
use crate::proto::write_reply::write_reply;
use crate::server::read_barrier::Passage;
use crate::server::registry::Connection;
use crate::server::Shared;
use crate::session::password::session_password;
use crate::tree::digest;
use crate::txn::{SessionId, Txn, TxnBody, TxnDigest, Zxid};

impl Pipeline {
    /// Applies a committed `txn` and answers `reply_to`. A createSession starts tracking
    /// its session here, in every role; a closeSession ends it.
    pub(super) fn apply_txn(&mut self, txn: &Txn, reply_to: ReplyTo) {
        let shared = self.shared.clone();
        let mut woken = 0;
        let result = shared.database.apply(txn, &mut |watcher, notification| {
            shared.registry.deliver(watcher, notification, &shared.stats);
            woken += 1;
        });
        self.woken += woken;
        self.preparer.applied(txn.zxid());
        let zxid = txn.zxid();
        if digest::kept_at(zxid) && self.in_sync() {
            shared.database.keep_digest(zxid);
        }
        let session_id = txn.session_id();
        match &txn.body {
            TxnBody::CreateSession(create) => {
                // A local session being upgraded becomes global here, where its txn is.
                let timeout_ms = u64::try_from(create.time_out).unwrap_or(0);
                shared.sessions.lock().add(session_id, timeout_ms, shared.clock.now_ms());
            }
            TxnBody::CloseSession(_) => {
                shared.sessions.lock().remove(session_id);
                if shared.config.audit_enabled {
                    for (path, deleted) in &result.ephemerals {
                        audit::ephemeral_deleted(session_id, path, *deleted);
                    }
                }
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
            ReplyTo::Client { connection, op, xid, received_us, audit } => {
                if let Some(audit) = audit {
                    audit.applied(&txn.body, &result);
                }
                let frame = write_reply(op, &result, xid, zxid);
                let then_close = op == OpCode::CloseSession;
                self.answer(&connection, Reply { frame, op, xid, zxid, received_us, then_close });
            }
            ReplyTo::Handshake { connection, sent_read_only, received_us } => {
                if let TxnBody::CreateSession(create) = &txn.body {
                    // A server with a committed txn has a quorum: it is not read-only.
                    let read_only = sent_read_only.then_some(false);
                    let timeout_ms = create.time_out;
                    let latency_ms = self.establish(
                        &connection,
                        session_id,
                        timeout_ms,
                        read_only,
                        received_us,
                        zxid,
                    );
                    self.shared.stats.update_latency.record(latency_ms);
                }
            }
        }
    }

    /// Whether this member's tree follows its leader's txn by txn: once it serves, not
    /// while a log replayed at start or a sync after a snapshot may still meet changes
    /// the snapshot already holds (ZooKeeper's fuzzy state, in which it neither keeps
    /// nor compares digests).
    fn in_sync(&self) -> bool {
        self.looking_since_ms.is_none()
    }

    /// Compares the tree's digest after the txn `zxid` with the one the leader's
    /// proposal carried, as ZooKeeper's `DataTree.compareDigest` does: a mismatch counts
    /// in `digest_mismatches_count` and is logged (once a second at most).
    pub(super) fn check_digest(&mut self, zxid: Zxid, expected: TxnDigest) {
        if !self.in_sync() || expected.version != digest::DIGEST_VERSION {
            return;
        }
        let actual = self.shared.database.tree().digest() as i64;
        if actual == expected.tree_digest {
            return;
        }
        let stats = &self.shared.stats.processors;
        let mismatches = stats.digest_mismatches.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = self.shared.clock.now_ms();
        if self.digest_warned_ms.is_none_or(|warned| now_ms.saturating_sub(warned) >= 1000) {
            self.digest_warned_ms = Some(now_ms);
            tracing::warn!(
                %zxid,
                expected = expected.tree_digest,
                actual,
                mismatches,
                "the tree's digest differs from the leader's: this member's data may diverge"
            );
        }
    }

    /// Answers a handshake read at `received_us` with its new session, opened at `zxid`,
    /// and binds the session to the connection. `read_only` is the flag to append, if
    /// the client sent one. Counts the reply as ZooKeeper counts a createSession's and
    /// returns its latency in milliseconds.
    pub(super) fn establish(
        &self,
        connection: &Connection,
        session_id: SessionId,
        timeout_ms: i32,
        read_only: Option<bool>,
        received_us: u64,
        zxid: Zxid,
    ) -> u64 {
        let passwd = session_password(session_id);
        connection.send(reply::connect_response(timeout_ms, session_id, &passwd, read_only));
        let shared = &self.shared;
        let now_us = shared.clock.now_us();
        let stats = &shared.stats;
        let latency_ms = stats.answered(
            &connection.stats,
            OpCode::CreateSession,
            0,
            zxid.raw(),
            received_us,
            now_us,
        );
        shared.registry.bind_session(connection, session_id, i64::from(timeout_ms));
        connection.complete_write();
        tracing::debug!(session_id = %session_id, "session established");
        latency_ms
    }

    /// Answers a request decided without a txn (a local session's close, a write refused
    /// by a read-only member) with `code`; a close also ends the connection.
    pub(super) fn answer_status(
        &mut self,
        connection: &Connection,
        op: OpCode,
        xid: i32,
        code: jute::Code,
        received_us: u64,
    ) {
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::status(xid, zxid, code);
        let then_close = op == OpCode::CloseSession;
        self.answer(connection, Reply { frame, op, xid, zxid, received_us, then_close });
    }

    /// Answers the `sync` the core calls `id` done: everything committed before it is
    /// applied. Replies held behind it go now, up to the next `sync` still waiting.
    pub(super) fn sync_done(&mut self, id: u64) {
        let ClientSync { connection, xid, path, received_us } = match self.syncs.remove(&id) {
            Some(PendingSync::Client(sync)) => sync,
            Some(PendingSync::ReadBarrier { round, .. }) => {
                self.shared.read_barrier.end(round, Passage::Passed);
                self.read_barrier_ended = true;
                return;
            }
            None => return,
        };
        // A learner's commit processor takes a sync as a write to match with the
        // leader's answer, so ZooKeeper times it among them.
        if !self.is_leading() {
            self.time_final(self.shared.clock.now_us());
        }
        let zxid = self.shared.database.last_applied_zxid();
        let frame = reply::ok(xid, zxid, &jute::records::SyncResponse { path });
        let reply = Reply { frame, op: OpCode::Sync, xid, zxid, received_us, then_close: false };
        let Some(slots) = self.behind_syncs.get_mut(&connection.id) else {
            deliver(&self.shared, &connection, reply);
            return;
        };
        let waiting = slots
            .iter_mut()
            .find(|slot| matches!(slot, Slot::Sync { id: waiting, .. } if *waiting == id));
        if let Some(slot) = waiting {
            *slot = Slot::Ready(reply);
        }
        while let Some(Slot::Ready(_)) = slots.front() {
            if let Some(Slot::Ready(reply)) = slots.pop_front() {
                deliver(&self.shared, &connection, reply);
            }
        }
        if slots.is_empty() {
            self.behind_syncs.remove(&connection.id);
        }
    }

    /// The `sync` the core calls `id` failed: its client reconnects, and what was held
    /// behind it is dropped with the connection.
    pub(super) fn sync_failed(&mut self, id: u64) {
        match self.syncs.remove(&id) {
            Some(PendingSync::Client(sync)) => {
                self.behind_syncs.remove(&sync.connection.id);
                sync.connection.request_close();
            }
            Some(PendingSync::ReadBarrier { round, .. }) => {
                self.shared.read_barrier.end(round, Passage::Failed);
                self.read_barrier_ended = true;
            }
            None => {}
        }
    }

    /// Sends `reply`, unless a `sync` the client sent before the request is still
    /// waiting: then it waits behind it, so a session's replies keep the order of its
    /// requests (clients number their requests in increasing xids).
    fn answer(&mut self, connection: &Connection, reply: Reply) {
        match self.behind_syncs.get_mut(&connection.id) {
            Some(slots) if slots.front().is_some_and(|oldest| oldest.xid() < reply.xid) => {
                let at = slots.iter().position(|slot| slot.xid() > reply.xid);
                slots.insert(at.unwrap_or(slots.len()), Slot::Ready(reply));
            }
            _ => deliver(&self.shared, connection, reply),
        }
    }
}

/// A reply to a client's request, ready to go.
pub(super) struct Reply {
    frame: bytes::Bytes,
    op: OpCode,
    xid: i32,
    zxid: Zxid,
    received_us: u64,
    /// The connection ends once the reply is out (a closeSession).
    then_close: bool,
}

/// One of a connection's replies, in xid order, from its oldest waiting `sync` on.
pub(super) enum Slot {
    /// A `sync` not answered yet: the core's id for it, and its xid.
    Sync { id: u64, xid: i32 },
    /// A reply that waits for the syncs before it.
    Ready(Reply),
}

impl Slot {
    fn xid(&self) -> i32 {
        match self {
            Slot::Sync { xid, .. } => *xid,
            Slot::Ready(reply) => reply.xid,
        }
    }
}

/// Queues `reply` for its client and counts it.
fn deliver(shared: &Shared, connection: &Connection, reply: Reply) {
    let Reply { frame, op, xid, zxid, received_us, then_close } = reply;
    shared.stats.responded(frame.len());
    if !connection.send(frame) {
        shared.stats.processors.stale_replies.fetch_add(1, Ordering::Relaxed);
    }
    let now_us = shared.clock.now_us();
    let latency_ms =
        shared.stats.answered(&connection.stats, op, xid, zxid.raw(), received_us, now_us);
    // A sync has no txn, so ZooKeeper counts it among the reads.
    if op == jute::OpCode::Sync {
        shared.stats.read_latency.record(latency_ms);
    } else {
        shared.stats.update_latency.record(latency_ms);
    }
    connection.complete_write();
    if then_close {
        connection.request_close();
    }
}
