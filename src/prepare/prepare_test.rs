use bytes::Bytes;
use jute::records::{Acl, CreateRequest, DeleteRequest, Id, MultiOp, MultiRequest, SetDataRequest};

use super::*;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::Database;

const SESSION: SessionId = SessionId::new(0x42);

struct Fixture {
    db: Database,
    sessions: SessionTracker,
    auth: AuthIds,
    preparer: Preparer,
    enforce_quota: bool,
}

impl Fixture {
    fn new() -> Fixture {
        let mut sessions = SessionTracker::new(1000, SessionId::new(1));
        sessions.add(SESSION, 10_000, 0);
        Fixture {
            db: Database::new(true),
            sessions,
            auth: AuthIds::for_client("127.0.0.1".parse().expect("ip")),
            preparer: Preparer::new(Zxid::ZERO),
            enforce_quota: false,
        }
    }

    fn prepare(&mut self, request: Request) -> Txn {
        let context = Context {
            tree: self.db.tree(),
            sessions: &self.sessions,
            auth: &self.auth,
            session_id: SESSION,
            session_check: SessionCheck::Tracker,
            extended_types_enabled: true,
            reconfig_enabled: false,
            enforce_quota: self.enforce_quota,
            digest_auth_enabled: true,
        };
        self.preparer.prepare(&context, &request, 1, 1000).expect("a txn")
    }

    fn apply(&mut self, txn: &Txn) {
        self.db.apply(txn, &mut |_, _| {});
        self.preparer.applied(txn.zxid());
    }

    fn run(&mut self, request: Request) -> Txn {
        let txn = self.prepare(request);
        self.apply(&txn);
        txn
    }
}

fn create(path: &str, flags: i32) -> Request {
    create_with_acl(path, flags, vec![world_anyone(perms::ALL)])
}

fn create_with_acl(path: &str, flags: i32, acl: Vec<Acl>) -> Request {
    Request::Create {
        op: OpCode::Create,
        request: CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"d")),
            acl,
            flags,
        },
    }
}

fn error_of(txn: &Txn) -> Option<i32> {
    match &txn.body {
        TxnBody::Error(error) => Some(error.err),
        _ => None,
    }
}

#[test]
fn every_txn_takes_the_next_zxid() {
    let mut fixture = Fixture::new();
    let first = fixture.run(create("/a", 0));
    let failed = fixture.run(create("/a", 0));
    assert_eq!((first.zxid(), failed.zxid()), (Zxid::new(1), Zxid::new(2)));
    assert_eq!(error_of(&failed), Some(Code::NodeExists.as_i32()));
    assert_eq!(failed.header.op_type, OpCode::Error.as_i32());
}

#[test]
fn sequential_names_use_the_creation_count() {
    let mut fixture = Fixture::new();
    fixture.run(create("/p", 0));
    fixture.run(create("/p/a", 0));
    fixture.run(Request::Delete(DeleteRequest { path: "/p/a".into(), version: -1 }));
    let txn = fixture.run(create("/p/s-", 2));
    let TxnBody::Create(created) = &txn.body else { panic!("not a create: {txn:?}") };
    assert_eq!(created.path, "/p/s-0000000001");
    assert_eq!(created.parent_cversion, 2);
}

#[test]
fn pending_changes_are_seen_before_apply() {
    let mut fixture = Fixture::new();
    let first = fixture.prepare(create("/a", 0));
    let second = fixture.prepare(create("/a", 0));
    assert_eq!(error_of(&second), Some(Code::NodeExists.as_i32()));
    let child = fixture.prepare(create("/a/b", 0));
    assert_eq!(error_of(&child), None, "parent exists in the pending changes");
    fixture.apply(&first);
    fixture.apply(&second);
    fixture.apply(&child);
    assert!(fixture.db.tree().exists("/a/b"));
}

#[test]
fn errors_come_in_zookeepers_order() {
    let mut fixture = Fixture::new();
    assert_eq!(error_of(&fixture.run(create("/x", 9))), Some(Code::BadArguments.as_i32()));
    assert_eq!(error_of(&fixture.run(create("noslash", 0))), Some(Code::BadArguments.as_i32()));
    assert_eq!(
        error_of(&fixture.run(create_with_acl("/x", 0, vec![]))),
        Some(Code::InvalidAcl.as_i32())
    );
    assert_eq!(error_of(&fixture.run(create("/missing/x", 0))), Some(Code::NoNode.as_i32()));
    assert_eq!(
        error_of(&fixture.run(create("/x/", 0))),
        Some(Code::NoNode.as_i32()),
        "parent /x missing"
    );
    fixture.run(create("/e", 1));
    assert_eq!(
        error_of(&fixture.run(create("/e/c", 0))),
        Some(Code::NoChildrenForEphemerals.as_i32())
    );
    assert_eq!(error_of(&fixture.run(create("/e/", 0))), Some(Code::BadArguments.as_i32()));
    let readonly =
        vec![Acl { perms: perms::READ, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    fixture.run(create_with_acl("/r", 0, readonly));
    assert_eq!(error_of(&fixture.run(create("/r/c", 0))), Some(Code::NoAuth.as_i32()));
    let delete_root =
        fixture.run(Request::Delete(DeleteRequest { path: "/zookeeper".into(), version: -1 }));
    assert_eq!(error_of(&delete_root), Some(Code::BadArguments.as_i32()));
    let bad_version =
        fixture.run(Request::SetData(SetDataRequest { path: "/e".into(), data: None, version: 3 }));
    assert_eq!(error_of(&bad_version), Some(Code::BadVersion.as_i32()));
}

#[test]
fn expired_sessions_cannot_write() {
    let mut fixture = Fixture::new();
    fixture.sessions.set_closing(SESSION);
    assert_eq!(error_of(&fixture.run(create("/a", 0))), Some(Code::SessionExpired.as_i32()));
}

#[test]
fn a_session_whose_creation_is_prepared_can_write_before_it_is_applied() {
    let Fixture { db, sessions, auth, mut preparer, .. } = Fixture::new();
    let context = Context {
        tree: db.tree(),
        sessions: &sessions,
        auth: &auth,
        session_id: SessionId::new(0x77),
        session_check: SessionCheck::Tracker,
        extended_types_enabled: true,
        reconfig_enabled: false,
        enforce_quota: false,
        digest_auth_enabled: true,
    };
    let unknown = preparer.prepare(&context, &create("/u", 0), 1, 1000).expect("a txn");
    assert_eq!(error_of(&unknown), Some(Code::SessionExpired.as_i32()), "not a session yet");
    let opened = preparer.prepare_create_session(&context, 10_000, 1000);
    let created = preparer.prepare(&context, &create("/e", 1), 1, 1000).expect("a txn");
    assert_eq!(error_of(&created), None, "the session's createSession is ahead of it");
    preparer.applied(opened.zxid());
    let applied = preparer.prepare(&context, &create("/f", 0), 1, 1000).expect("a txn");
    assert_eq!(
        error_of(&applied),
        Some(Code::SessionExpired.as_i32()),
        "once its creation is applied, the tracker alone decides"
    );

    let _ = preparer.prepare_create_session(&context, 10_000, 1000);
    let closed = preparer.prepare(&context, &Request::CloseSession, 2, 1000);
    assert!(matches!(closed.map(|txn| txn.body), Some(TxnBody::CloseSession(_))));
    let after = preparer.prepare(&context, &create("/g", 0), 3, 1000).expect("a txn");
    assert_eq!(error_of(&after), Some(Code::SessionExpired.as_i32()), "its close is ahead of it");
}

#[test]
fn failed_multi_leaves_no_pending_changes() {
    let mut fixture = Fixture::new();
    let ops = vec![
        MultiOp::Create {
            op_type: 1,
            request: CreateRequest {
                path: "/m".into(),
                data: None,
                acl: vec![world_anyone(perms::ALL)],
                flags: 0,
            },
        },
        MultiOp::Delete(DeleteRequest { path: "/nope".into(), version: -1 }),
        MultiOp::Delete(DeleteRequest { path: "/m".into(), version: -1 }),
    ];
    let txn = fixture.prepare(Request::Multi(MultiRequest { ops }));
    let TxnBody::Multi(subs) = &txn.body else { panic!("not a multi") };
    let codes: Vec<_> = subs
        .iter()
        .map(|sub| error_of(&Txn { header: txn.header.clone(), body: sub.body.clone() }))
        .collect();
    assert_eq!(
        codes,
        [None, Some(Code::NoNode.as_i32()), Some(Code::RuntimeInconsistency.as_i32())]
    );
    assert_eq!(fixture.preparer.pending_len(), 0);
    // ZooKeeper counts the records of the create (the node and its parent) all the same.
    let counts = fixture.preparer.take_change_counts();
    assert_eq!(counts, ChangeCounts { queued: 2, removed: 0 });
    let after = fixture.prepare(create("/m", 0));
    assert_eq!(error_of(&after), None, "the failed multi's create was rolled back");
}

#[test]
fn change_records_are_counted_as_made_and_as_dropped_once_applied() {
    let mut fixture = Fixture::new();
    let created = fixture.prepare(create("/a", 0));
    let set = fixture.prepare(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(fixture.preparer.take_change_counts(), ChangeCounts { queued: 3, removed: 0 });
    fixture.apply(&created);
    assert_eq!(fixture.preparer.take_change_counts(), ChangeCounts { queued: 0, removed: 2 });
    fixture.apply(&set);
    assert_eq!(fixture.preparer.take_change_counts(), ChangeCounts { queued: 0, removed: 1 });
    assert_eq!(fixture.preparer.take_change_counts(), ChangeCounts::default(), "taken once");
}

#[test]
fn close_session_lists_its_ephemerals() {
    let mut fixture = Fixture::new();
    fixture.run(create("/e1", 1));
    let pending_create = fixture.prepare(create("/e2", 1));
    let close = fixture.prepare(Request::CloseSession);
    let TxnBody::CloseSession(close_txn) = &close.body else { panic!("not a close") };
    // In ZooKeeper's order: a copy of the hash set {/e1}, then /e2 added (OpenJDK 17).
    assert_eq!(close_txn.paths_to_delete, ["/e2", "/e1"]);
    fixture.apply(&pending_create);
    fixture.apply(&close);
    assert_eq!(fixture.db.tree().ephemeral_count(), 0);
}

#[test]
fn ttl_rules() {
    let mut fixture = Fixture::new();
    let ttl = |ttl: i64, flags: i32| {
        Request::CreateTtl(jute::records::CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: vec![world_anyone(perms::ALL)],
            flags,
            ttl,
        })
    };
    assert_eq!(error_of(&fixture.run(ttl(0, 5))), Some(Code::BadArguments.as_i32()));
    assert_eq!(error_of(&fixture.run(ttl(100, 0))), Some(Code::BadArguments.as_i32()));
    assert_eq!(
        error_of(&fixture.run(ttl(-1, 1))),
        Some(Code::BadArguments.as_i32()),
        "ZooKeeper crashes here"
    );
    assert_eq!(error_of(&fixture.run(ttl(100, 5))), None);
    assert_eq!(fixture.db.tree().ttls(), ["/t"]);
}

fn create_data(path: &str, data: &'static [u8]) -> Request {
    Request::Create {
        op: OpCode::Create,
        request: CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(data)),
            acl: vec![world_anyone(perms::ALL)],
            flags: 0,
        },
    }
}

/// A fixture enforcing quotas, with `/p` (data "d") under a quota of `limits`, set as
/// zkCli's `setquota` sets it.
fn quota_fixture(limits: &'static [u8]) -> Fixture {
    let mut fixture = Fixture::new();
    fixture.enforce_quota = true;
    fixture.run(create("/p", 0));
    fixture.run(create_data("/zookeeper/quota/p", b""));
    fixture.run(create_data("/zookeeper/quota/p/zookeeper_limits", limits));
    fixture.run(create_data("/zookeeper/quota/p/zookeeper_stats", b"count=0,bytes=0"));
    fixture
}

fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(MultiRequest { ops })
}

fn multi_create(path: &str) -> MultiOp {
    let Request::Create { request, .. } = create(path, 0) else { panic!("not a create") };
    MultiOp::Create { op_type: OpCode::Create.as_i32(), request }
}

fn multi_errors(txn: &Txn) -> Vec<Option<i32>> {
    let TxnBody::Multi(subs) = &txn.body else { panic!("not a multi: {txn:?}") };
    subs.iter()
        .map(|sub| match &sub.body {
            TxnBody::Error(error) => Some(error.err),
            _ => None,
        })
        .collect()
}

const COUNT_HARD_3: &[u8] = b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3";
const EXCEEDED: Option<i32> = Some(Code::QuotaExceeded as i32);

#[test]
fn a_create_past_a_hard_count_limit_is_refused() {
    let mut fixture = quota_fixture(COUNT_HARD_3);
    assert_eq!(error_of(&fixture.run(create("/p/a", 0))), None);
    assert_eq!(error_of(&fixture.run(create("/p/b", 0))), None);
    let refused_request = create("/p/c", 0);
    let refused = fixture.run(refused_request.clone());
    assert_eq!(error_of(&refused), EXCEEDED);
    assert_eq!(quota_refused_at(&refused_request, &refused), Some("/p/c"));
    assert!(!fixture.db.tree().exists("/p/c"));
    assert_eq!(error_of(&fixture.run(create("/elsewhere", 0))), None, "outside the quota");
    fixture.run(Request::Delete(DeleteRequest { path: "/p/a".into(), version: -1 }));
    assert_eq!(error_of(&fixture.run(create("/p/c", 0))), None, "room again");
}

#[test]
fn writes_prepared_but_not_applied_count_against_the_limit() {
    let mut fixture = quota_fixture(COUNT_HARD_3);
    let first = fixture.prepare(create("/p/a", 0));
    let second = fixture.prepare(create("/p/b", 0));
    let third = fixture.prepare(create("/p/c", 0));
    assert_eq!((error_of(&first), error_of(&second), error_of(&third)), (None, None, EXCEEDED));
    for txn in [&first, &second, &third] {
        fixture.apply(txn);
    }
    let usage = fixture.db.tree().stats_track("/zookeeper/quota/p/zookeeper_stats");
    assert_eq!(usage.map(|track| track.usage().count), Some(3));
}

#[test]
fn a_multi_is_held_to_the_limit_as_a_whole_and_leaves_nothing_behind() {
    let mut fixture = quota_fixture(COUNT_HARD_3);
    fixture.run(create("/p/a", 0));
    let two = multi(vec![multi_create("/p/x"), multi_create("/p/y")]);
    let refused = fixture.run(two.clone());
    assert_eq!(multi_errors(&refused), [None, EXCEEDED]);
    assert_eq!(quota_refused_at(&two, &refused), Some("/p/y"));
    assert!(!fixture.db.tree().exists("/p/x"));
    let delete = MultiOp::Delete(DeleteRequest { path: "/p/a".into(), version: -1 });
    let swap = fixture.run(multi(vec![delete, multi_create("/p/x"), multi_create("/p/y")]));
    assert_eq!(multi_errors(&swap), [None, None, None], "the delete makes room first");
    assert!(fixture.db.tree().exists("/p/y"));
}

#[test]
fn data_past_a_hard_byte_limit_is_refused_and_shrinking_is_not() {
    let mut fixture = quota_fixture(b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1");
    let set = |data: &'static [u8]| {
        Request::SetData(SetDataRequest {
            path: "/p".into(),
            data: Some(Bytes::from_static(data)),
            version: -1,
        })
    };
    assert_eq!(error_of(&fixture.run(set(b"0123456789"))), None, "exactly the limit");
    assert_eq!(error_of(&fixture.run(set(b"0123456789a"))), EXCEEDED);
    assert_eq!(error_of(&fixture.run(create_data("/p/a", b""))), None, "no bytes added");
    assert_eq!(error_of(&fixture.run(create_data("/p/b", b"x"))), EXCEEDED);
    assert_eq!(error_of(&fixture.run(set(b"01234"))), None);
    assert_eq!(error_of(&fixture.run(create_data("/p/b", b"x"))), None);
}

#[test]
fn soft_limits_and_unenforced_quotas_refuse_nothing() {
    let mut soft = quota_fixture(b"count=1,bytes=1=;byteHardLimit=-1;countHardLimit=-1");
    assert_eq!(error_of(&soft.run(create_data("/p/a", b"xyz"))), None);
    let mut unenforced = quota_fixture(COUNT_HARD_3);
    unenforced.enforce_quota = false;
    for path in ["/p/a", "/p/b", "/p/c"] {
        assert_eq!(error_of(&unenforced.run(create(path, 0))), None);
    }
    let usage = unenforced.db.tree().stats_track("/zookeeper/quota/p/zookeeper_stats");
    assert_eq!(usage.map(|track| track.usage().count), Some(4), "still counted");
}
