use std::collections::BTreeSet;

use bytes::Bytes;
use jute::records::CreateRequest;
use jute::OpCode;

use super::*;
use crate::config::Config;
use crate::ensemble::Membership;
use crate::proto::Request;
use crate::server::registry::{Connection, ConnectionLimits};
use crate::server::Clock;
use crate::session::SessionTracker;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::digest::DIGEST_VERSION;
use crate::tree::{Database, WatcherMode};
use crate::txn::TxnDigest;

const EPHEMERAL: i32 = 1;

/// A pipeline over a fresh state with a manual clock; `voters` other than 1 make it an
/// ensemble member that starts looking.
fn pipeline(voters: &[ServerId]) -> (Pipeline, Arc<Shared>) {
    pipeline_with(voters, "")
}

/// [`pipeline`] with `extra` zoo.cfg lines.
fn pipeline_with(voters: &[ServerId], extra: &str) -> (Pipeline, Arc<Shared>) {
    let config = format!("dataDir=/nonexistent\nclientPort=2181\n{extra}");
    let config = Config::parse(&config).expect("config");
    let mut membership = Membership::standalone(&config, 1);
    let standalone = voters == [1];
    membership.zab.voters = voters.iter().copied().collect::<BTreeSet<_>>();
    let sessions = SessionTracker::new(u64::from(config.tick_time_ms), SessionId::new(0x100));
    let database = Database::new(config.extended_types_enabled);
    let (shared, _inputs) = Shared::new(config, database, sessions, Clock::manual(0), standalone);
    let pipeline = Pipeline::start(shared.clone(), membership.zab, Restored::default(), standalone)
        .expect("started");
    (pipeline, shared)
}

fn connection(shared: &Shared) -> Arc<Connection> {
    let limits = ConnectionLimits { per_ip_max: 0, total_max: 0 };
    shared
        .registry
        .open("127.0.0.1:40000".parse().expect("address"), false, limits, 0)
        .expect("open")
}

fn create(connection: &Arc<Connection>, path: &str, flags: i32) -> Input {
    create_as(connection, 1, path, flags)
}

fn create_as(connection: &Arc<Connection>, xid: i32, path: &str, flags: i32) -> Input {
    Input::Request {
        connection: connection.clone(),
        session_id: connection.session_id(),
        xid,
        request: Request::Create {
            op: OpCode::Create,
            request: CreateRequest {
                path: path.into(),
                data: Some(Bytes::from_static(b"d")),
                acl: vec![world_anyone(perms::ALL)],
                flags,
            },
        },
        frame: Bytes::new(),
        auth: connection.auth(),
        received_us: 0,
    }
}

fn new_session(connection: &Arc<Connection>, timeout_ms: i32, sent_read_only: bool) -> Input {
    let connection = connection.clone();
    Input::CreateSession { connection, timeout_ms, sent_read_only, received_us: 0 }
}

/// Hands the waiting writes to a storage that always succeeds, as the shell would.
fn write_all(pipeline: &mut Pipeline) -> usize {
    let mut batches = 0;
    while pipeline.take_batch().is_some() {
        let durable = pipeline.batch_written(1);
        pipeline.persisted(durable).expect("applied");
        batches += 1;
    }
    batches
}

fn effects(pipeline: &mut Pipeline) -> Vec<Effect> {
    let mut effects = Vec::new();
    pipeline.take_effects(&mut effects);
    effects
}

/// A standalone server's new session, ready for requests.
fn session(pipeline: &mut Pipeline, shared: &Shared, timeout_ms: i32) -> Arc<Connection> {
    let connection = connection(shared);
    pipeline.client_input(new_session(&connection, timeout_ms, false)).expect("prepared");
    write_all(pipeline);
    connection
}

#[test]
fn a_standalone_write_is_answered_once_its_log_batch_is_durable() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let connection = connection(&shared);
    pipeline.client_input(new_session(&connection, 30_000, false)).expect("prepared");
    assert_eq!(connection.outbox.queued(), 0, "no answer before the log is durable");
    assert_eq!(connection.session_id(), SessionId::NONE);
    assert!(!shared.sessions.lock().contains(SessionId::new(0x100)), "the session enters at apply");

    let batch = pipeline.take_batch().expect("the createSession txn is to be logged");
    assert!(matches!(&batch.writes[..], [Write::Append(entries)] if entries.len() == 1));
    assert!(pipeline.is_writing());
    let durable = pipeline.batch_written(1);
    pipeline.persisted(durable).expect("applied");
    assert_eq!(connection.outbox.queued(), 1, "the handshake is answered");
    let session_id = connection.session_id();
    assert_ne!(session_id, SessionId::NONE);
    assert!(shared.sessions.lock().contains(session_id));

    pipeline.client_input(create(&connection, "/a", 0)).expect("prepared");
    assert!(!shared.database.tree().exists("/a"));
    assert_eq!(write_all(&mut pipeline), 1);
    assert!(shared.database.tree().exists("/a"));
    assert_eq!(connection.outbox.queued(), 2);
    assert!(effects(&mut pipeline).iter().all(|effect| matches!(effect, Effect::Applied(_))));
}

#[test]
fn a_batch_goes_to_the_storage_thread_while_the_one_before_is_written() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let connection = session(&mut pipeline, &shared, 30_000);
    pipeline.client_input(create_as(&connection, 1, "/a", 0)).expect("prepared");
    assert!(pipeline.take_batch().is_some(), "/a is being written");
    pipeline.client_input(create_as(&connection, 2, "/b", 0)).expect("prepared");
    let next = pipeline.take_batch().expect("/b goes to the storage thread at once");
    assert!(matches!(&next.writes[..], [Write::Append(entries)] if entries.len() == 1));

    let durable = pipeline.batch_written(1);
    assert!(!shared.database.tree().exists("/a"), "not applied before the core hears");
    assert_eq!(connection.outbox.queued(), 1, "only the handshake's answer so far");
    pipeline.persisted(durable).expect("applied");
    assert!(shared.database.tree().exists("/a"));
    assert!(!shared.database.tree().exists("/b"), "/b is still being written");
    assert_eq!(connection.outbox.queued(), 2, "/a is answered while /b is written");
    let durable = pipeline.batch_written(1);
    pipeline.persisted(durable).expect("applied");
    assert!(shared.database.tree().exists("/b"));
}

#[test]
fn a_batch_after_txns_that_woke_watchers_awaits_as_many_entries() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let watcher = session(&mut pipeline, &shared, 30_000);
    let writer = session(&mut pipeline, &shared, 30_000);
    assert!(shared.database.data_watches().add("/b", watcher.id, WatcherMode::Standard));
    pipeline.client_input(create_as(&writer, 1, "/a", 0)).expect("prepared");
    let batch = pipeline.take_batch().expect("/a");
    assert_eq!(batch.awaited, 0, "no watch fired yet");
    pipeline.client_input(create_as(&writer, 2, "/b", 0)).expect("prepared");
    let batch = pipeline.take_batch().expect("/b");
    assert_eq!(batch.awaited, 0, "nothing applied yet");
    let durable = pipeline.batch_written(2);
    pipeline.persisted(durable).expect("applied: /b fires the watch");
    pipeline.client_input(create_as(&writer, 3, "/c", 0)).expect("prepared");
    let batch = pipeline.take_batch().expect("/c");
    assert_eq!(batch.awaited, 1, "the woken watcher's client may write in reply");
    let durable = pipeline.batch_written(1);
    pipeline.persisted(durable).expect("applied");
    pipeline.client_input(create_as(&writer, 4, "/d", 0)).expect("prepared");
    assert_eq!(pipeline.take_batch().expect("/d").awaited, 0, "counted once");
}

#[test]
fn an_expired_session_is_closed_with_its_ephemerals_on_the_session_tick() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let connection = session(&mut pipeline, &shared, 4000);
    let session_id = connection.session_id();
    pipeline.client_input(create(&connection, "/e", EPHEMERAL)).expect("prepared");
    write_all(&mut pipeline);
    assert!(shared.database.tree().exists("/e"));

    shared.clock.advance(2000);
    pipeline.session_tick().expect("ticked");
    assert_eq!(write_all(&mut pipeline), 0, "not expired before its timeout");

    shared.clock.advance(10_000);
    pipeline.session_tick().expect("ticked");
    assert_eq!(write_all(&mut pipeline), 1, "the closeSession txn");
    assert!(!shared.database.tree().exists("/e"));
    assert!(!shared.sessions.lock().contains(session_id));
    assert!(connection.close_requested());
}

#[test]
fn a_member_that_sends_a_corrupt_entry_loses_its_link_and_nothing_is_logged() {
    let (mut pipeline, _shared) = pipeline(&[1, 2, 3]);
    effects(&mut pipeline);
    let entry =
        Entry { zxid: Zxid::new(0x1_0000_0001), payload: Bytes::from_static(b"not sealed") };
    pipeline.peer_frame(2, PeerFrame::Zab(Message::Proposal(entry))).expect("no stop");
    let dropped = effects(&mut pipeline);
    assert!(matches!(&dropped[..], [Effect::ResetLink(2)]), "{dropped:?}");
    let batch = pipeline.take_batch().unwrap_or_default();
    assert!(!batch.writes.iter().any(|write| matches!(write, Write::Append(_))));

    let sealed = crate::storage::record::seal(b"sealed");
    let entry = Entry { zxid: Zxid::new(0x1_0000_0001), payload: sealed };
    pipeline.peer_frame(2, PeerFrame::Zab(Message::Proposal(entry))).expect("no stop");
    let kept = effects(&mut pipeline);
    assert!(!kept.iter().any(|effect| matches!(effect, Effect::ResetLink(_))), "{kept:?}");
}

#[test]
fn a_looking_member_closes_its_clients_and_a_grace_period_later_serves_them_read_only() {
    let (mut pipeline, shared) = pipeline_with(&[1, 2, 3], "readonlymode.enabled=true\n");

    let early = connection(&shared);
    pipeline.client_input(new_session(&early, 30_000, true)).expect("handled");
    assert!(early.close_requested(), "no leader: the client goes elsewhere");

    shared.clock.advance(READ_ONLY_DUE_MS);
    pipeline.core_tick().expect("ticked");
    assert_eq!(*shared.mode.lock(), Mode::ReadOnly);
    let late = connection(&shared);
    pipeline.client_input(new_session(&late, 30_000, true)).expect("handled");
    assert!(!late.close_requested());
    assert_eq!(late.outbox.queued(), 1, "a read-only session, opened at once");
    assert!(shared.sessions.lock().is_local(late.session_id()));
    pipeline.client_input(create(&late, "/a", 0)).expect("refused");
    assert_eq!(late.outbox.queued(), 2, "the write is refused");
    assert!(pipeline.take_batch().is_none());
}

/// Past the read-only grace period of the default tick.
const READ_ONLY_DUE_MS: u64 = 3000;

/// The xids of the replies queued for `connection` (the handshake's answer skipped).
fn reply_xids(connection: &Connection) -> Vec<i32> {
    let mut bytes = Vec::new();
    connection.outbox.take_into(&mut bytes);
    let mut xids = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 8 {
        let length = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        xids.push(i32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        rest = &rest[4 + length..];
    }
    xids
}

#[test]
fn a_write_after_a_sync_is_answered_after_it_even_when_both_are_applied_at_once() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let connection = session(&mut pipeline, &shared, 30_000);
    reply_xids(&connection);
    pipeline.client_input(create_as(&connection, 1, "/before", 0)).expect("prepared");
    let sync = Input::Request {
        connection: connection.clone(),
        session_id: connection.session_id(),
        xid: 2,
        request: Request::Sync(jute::records::SyncRequest { path: "/".into() }),
        frame: Bytes::new(),
        auth: connection.auth(),
        received_us: 0,
    };
    pipeline.client_input(sync).expect("asked");
    pipeline.client_input(create_as(&connection, 3, "/after", 0)).expect("prepared");
    write_all(&mut pipeline);
    assert!(shared.database.tree().exists("/after"));
    assert_eq!(reply_xids(&connection), [1, 2, 3]);
}

/// How a read barrier round for `ticket` ended, if it has.
fn barrier_passage(
    shared: &Shared,
    ticket: crate::server::read_barrier::Ticket,
) -> Option<crate::server::read_barrier::Passage> {
    let mut ends = shared.read_barrier.subscribe();
    let wait = crate::server::read_barrier::ReadBarrier::wait(&mut ends, ticket);
    futures_util::FutureExt::now_or_never(wait)
}

#[test]
fn a_read_barrier_round_passes_once_confirmed_and_fails_while_looking() {
    use crate::server::read_barrier::Passage;
    let (mut leading, shared) = pipeline(&[1]);
    let ticket = shared.read_barrier.ticket(SessionId::new(7));
    assert_eq!(barrier_passage(&shared, ticket), None, "no round has run");
    leading.read_barrier().expect("begun");
    assert_eq!(barrier_passage(&shared, ticket), Some(Passage::Passed), "a quorum of one");

    let (mut looking, shared) = pipeline(&[1, 2, 3]);
    let ticket = shared.read_barrier.ticket(SessionId::new(7));
    looking.read_barrier().expect("begun");
    assert_eq!(barrier_passage(&shared, ticket), Some(Passage::Failed), "no leader to ask");
    let again = shared.read_barrier.ticket(SessionId::new(7));
    assert_ne!(again, ticket, "a failed round is not waited for again");
}

#[test]
fn a_writes_latency_counts_from_its_arrival_in_milliseconds() {
    let (mut pipeline, shared) = pipeline(&[1]);
    write_all(&mut pipeline);
    let connection = session(&mut pipeline, &shared, 30_000);
    shared.clock.advance(5);
    let mut request = create(&connection, "/timed", 0);
    if let Input::Request { received_us, .. } = &mut request {
        *received_us = 5_000;
    }
    pipeline.client_input(request).expect("prepared");
    shared.clock.advance(7);
    write_all(&mut pipeline);
    let latency = shared.stats.update_latency.read();
    assert_eq!(latency.summary.max, 7, "from 5 ms to 12 ms");
}

#[test]
fn a_digest_other_than_the_trees_counts_as_a_mismatch() {
    let (mut pipeline, shared) = pipeline(&[1]);
    let connection = session(&mut pipeline, &shared, 30_000);
    pipeline.client_input(create(&connection, "/a", 0)).expect("prepared");
    write_all(&mut pipeline);
    let tree = shared.database.tree().digest() as i64;
    let zxid = shared.database.last_applied_zxid();
    let mismatches = || shared.stats.processors.digest_mismatches.load(Ordering::Relaxed);
    pipeline.check_digest(zxid, TxnDigest { version: DIGEST_VERSION, tree_digest: tree });
    assert_eq!(mismatches(), 0, "the leader's digest");
    pipeline.check_digest(zxid, TxnDigest { version: DIGEST_VERSION, tree_digest: tree + 1 });
    assert_eq!(mismatches(), 1, "another digest");
    pipeline.check_digest(zxid, TxnDigest { version: 1, tree_digest: tree + 1 });
    assert_eq!(mismatches(), 1, "a digest of another version is not compared");
}
