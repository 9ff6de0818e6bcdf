//! A client's handshake, decided at once: whether this server takes the connection, and
//! whether it opens a new session or resumes one. Nothing here waits, so the connection
//! task and the whole-server simulator run the same decision.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use jute::records::ConnectRequest;
use jute::{Reader, Record};

use crate::proto::reply::connect_response;
use crate::server::pipeline::Input;
use crate::server::registry::Connection;
use crate::server::{Mode, Shared};
use crate::session::password::{session_password, PASSWORD_LEN};
use crate::txn::{SessionId, Zxid};

/// What a handshake that this server takes leads to.
pub enum Admission {
    /// A new session: the pipeline creates it and sends the reply.
    Create(Input),
    /// An existing session resumed on this connection; the reply is sent. An ensemble
    /// member hands the pipeline `attach`, so the leader learns where the session is.
    Resumed {
        /// The session.
        session_id: SessionId,
        /// The input that tells the pipeline, for an ensemble member.
        attach: Option<Input>,
    },
    /// The session has expired or the password is wrong: the reply says so (session 0)
    /// and the connection is to close.
    Expired,
}

/// Why this server does not take a handshake at all; the connection closes without a
/// reply, and the client tries another server.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The connect request does not decode.
    #[error("malformed connect request: {0}")]
    Malformed(#[from] jute::DecodeError),
    /// No leader is established, or the server is read-only and the client will not be.
    #[error("not serving clients: no leader is established")]
    NotServing,
    /// The client has seen a later state than this server has applied; taking it would
    /// show it the past.
    #[error("client has seen zxid 0x{client:x}, ahead of this server's 0x{server:x}")]
    ZxidAhead {
        /// What the client last saw.
        client: Zxid,
        /// What this server has applied.
        server: Zxid,
    },
    /// As ZooKeeper's read-only server: a global session may have expired on the quorum
    /// this member lost, its ephemerals (a lock) gone to another client.
    #[error("refusing to resume global session {0} in read-only mode")]
    GlobalSessionWhileReadOnly(SessionId),
    /// The connection throttle's bucket is empty (`connection_throttle_tokens`).
    #[error("connection throttled: too many handshakes (zookeeper.connection_throttle_tokens)")]
    Throttled,
}

/// Decides the handshake whose connect request is `body`, on `connection`.
///
/// # Errors
/// A [`Refusal`] when this server does not take the connection.
pub fn admit(
    shared: &Shared,
    connection: &Arc<Connection>,
    body: &Bytes,
) -> Result<Admission, Refusal> {
    let mode = *shared.mode.lock();
    if !shared.serves_clients() {
        return Err(Refusal::NotServing);
    }
    let mut reader = Reader::new(body);
    let request = ConnectRequest::read(&mut reader)?;
    let sent_read_only = reader.remaining() > 0;
    let can_be_read_only = sent_read_only && reader.read_bool("readOnly")?;
    if mode == Mode::ReadOnly && !can_be_read_only {
        return Err(Refusal::NotServing);
    }
    let server_zxid = shared.database.last_applied_zxid();
    if request.last_zxid_seen > server_zxid.raw() {
        return Err(Refusal::ZxidAhead {
            client: Zxid::new(request.last_zxid_seen),
            server: server_zxid,
        });
    }
    let session_id = SessionId::new(request.session_id);
    throttle(shared, session_id)?;
    let timeout_ms = shared.config.negotiate_session_timeout_ms(request.time_out);
    if session_id == SessionId::NONE {
        let connection = connection.clone();
        return Ok(Admission::Create(Input::CreateSession {
            connection,
            timeout_ms,
            sent_read_only,
            received_us: shared.clock.now_us(),
        }));
    }
    if mode == Mode::ReadOnly && shared.sessions.lock().is_global(session_id) {
        return Err(Refusal::GlobalSessionWhileReadOnly(session_id));
    }
    shared.stats.processors.connection_revalidations.fetch_add(1, Ordering::Relaxed);
    let password_ok = request.passwd.as_ref() == session_password(session_id);
    let valid = password_ok && shared.sessions.lock().touch(session_id, shared.clock.now_ms());
    let (time_out, reply_session, passwd) = if valid {
        (timeout_ms, session_id, session_password(session_id))
    } else {
        tracing::info!(
            peer = %connection.peer,
            session_id = %session_id,
            password_ok,
            "refusing to resume session"
        );
        (0, SessionId::NONE, [0u8; PASSWORD_LEN])
    };
    let read_only = sent_read_only.then_some(mode == Mode::ReadOnly);
    connection.send(connect_response(time_out, reply_session, &passwd, read_only));
    if !valid {
        connection.request_close();
        return Ok(Admission::Expired);
    }
    shared.registry.bind_session(connection, session_id, i64::from(timeout_ms));
    let attach = (mode != Mode::Standalone).then_some(Input::Attach { session_id });
    Ok(Admission::Resumed { session_id, attach })
}

/// Takes the handshake's tokens from the connection throttle, as ZooKeeper's
/// `processConnectRequest` does before anything else: a new session costs the global or
/// local weight, a resumed one the renew weight (all 1 unless weights are enabled).
/// Without throttling every handshake passes, and is counted, as in ZooKeeper.
fn throttle(shared: &Shared, session_id: SessionId) -> Result<(), Refusal> {
    let mut throttle = shared.connection_throttle.lock();
    let weights = throttle.settings().weights;
    let need = match session_id {
        SessionId::NONE if shared.config.local_sessions_enabled => weights.local,
        SessionId::NONE => weights.global,
        _ => weights.renew,
    };
    let draw = if throttle.settings().freeze_time_ms == -1 { 0.0 } else { random_unit() };
    if !throttle.admit(need, shared.clock.now_ms(), draw) {
        shared.stats.connection_rejected.fetch_add(1, Ordering::Relaxed);
        return Err(Refusal::Throttled);
    }
    shared.stats.connection_requests.fetch_add(1, Ordering::Relaxed);
    let deficit = u64::try_from(throttle.deficit()).unwrap_or(0);
    shared.stats.connection_token_deficit.record(deficit);
    Ok(())
}

/// A uniform draw from [0, 1) for BLUE's random drops, from the standard library's
/// per-process random hash keys (which change with every `RandomState`).
fn random_unit() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(0u8) >> 11;
    bits as f64 / (1u64 << 53) as f64
}
