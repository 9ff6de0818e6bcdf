use bytes::Bytes;
use jute::records::{CloseSessionTxn, CreateTxn, DeleteTxn, ErrorTxn, SetDataTxn, TxnHeader};

use super::*;
use crate::tree::acl::{perms, world_anyone};
use crate::tree::WatcherMode;

fn txn(zxid: Zxid, op_type: OpCode, body: TxnBody) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: 0x55,
            cxid: 1,
            zxid: zxid.raw(),
            time: 100,
            op_type: op_type.as_i32(),
        },
        body,
    }
}

fn create(path: &str, ephemeral: bool) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::from_static(b"v")),
        acl: vec![world_anyone(perms::ALL)],
        ephemeral,
        parent_cversion: -1,
    })
}

fn apply(db: &Database, txn: &Txn) -> (TxnResult, Vec<(WatcherId, EventType, String)>) {
    let mut seen = Vec::new();
    let result =
        db.apply(txn, &mut |watcher, n: &WatchEvent| seen.push((watcher, n.event, n.path.clone())));
    (result, seen)
}

#[test]
fn create_fires_created_then_children_changed() {
    let db = Database::new(false);
    db.data_watches().add("/a", 1, WatcherMode::Standard);
    db.child_watches().add("/", 1, WatcherMode::Standard);
    let (result, seen) = apply(&db, &txn(Zxid::new(1), OpCode::Create2, create("/a", false)));
    assert_eq!(result.err, Code::Ok);
    assert_eq!(result.stat.as_ref().map(|s| s.czxid), Some(1));
    assert_eq!(
        seen,
        [(1, EventType::NodeCreated, "/a".into()), (1, EventType::NodeChildrenChanged, "/".into())]
    );
    assert_eq!(db.last_applied_zxid(), Zxid::new(1));
}

#[test]
fn delete_notifies_each_watcher_once() {
    let db = Database::new(false);
    apply(&db, &txn(Zxid::new(1), OpCode::Create, create("/a", false)));
    db.data_watches().add("/a", 1, WatcherMode::Standard);
    db.child_watches().add("/a", 1, WatcherMode::Standard);
    db.child_watches().add("/a", 2, WatcherMode::Standard);
    let (result, seen) = apply(
        &db,
        &txn(Zxid::new(2), OpCode::Delete, TxnBody::Delete(DeleteTxn { path: "/a".into() })),
    );
    assert_eq!(result.err, Code::Ok);
    assert_eq!(
        seen,
        [(1, EventType::NodeDeleted, "/a".into()), (2, EventType::NodeDeleted, "/a".into())]
    );
}

#[test]
fn failed_multi_reports_rollback_codes_and_changes_nothing() {
    let db = Database::new(false);
    let subs = vec![
        SubTxn { op_type: OpCode::Create, body: create("/m", false) },
        SubTxn {
            op_type: OpCode::Error,
            body: TxnBody::Error(ErrorTxn { err: Code::BadVersion.as_i32() }),
        },
        SubTxn {
            op_type: OpCode::Error,
            body: TxnBody::Error(ErrorTxn { err: Code::RuntimeInconsistency.as_i32() }),
        },
    ];
    let (result, seen) = apply(&db, &txn(Zxid::new(1), OpCode::Multi, TxnBody::Multi(subs)));
    let codes: Vec<_> = result.multi.iter().map(|r| r.err).collect();
    assert_eq!(codes, [Code::Ok, Code::BadVersion, Code::RuntimeInconsistency]);
    assert_eq!(result.err, Code::BadVersion);
    assert!(seen.is_empty());
    assert!(!db.tree().exists("/m"));
    assert_eq!(db.last_applied_zxid(), Zxid::new(1), "a failed multi still takes its zxid");
}

#[test]
fn successful_multi_applies_every_op() {
    let db = Database::new(false);
    let subs = vec![
        SubTxn { op_type: OpCode::Create, body: create("/m", false) },
        SubTxn {
            op_type: OpCode::SetData,
            body: TxnBody::SetData(SetDataTxn { path: "/m".into(), data: None, version: 1 }),
        },
    ];
    let (result, _) = apply(&db, &txn(Zxid::new(1), OpCode::Multi, TxnBody::Multi(subs)));
    assert_eq!(result.err, Code::Ok);
    assert_eq!(result.multi[1].stat.as_ref().map(|s| s.version), Some(1));
}

#[test]
fn close_session_deletes_listed_and_leftover_ephemerals() {
    let db = Database::new(false);
    apply(&db, &txn(Zxid::new(1), OpCode::Create, create("/e1", true)));
    apply(&db, &txn(Zxid::new(2), OpCode::Create, create("/e2", true)));
    db.data_watches().add("/e2", 9, WatcherMode::Standard);
    let close = TxnBody::CloseSession(CloseSessionTxn { paths_to_delete: vec!["/e1".into()] });
    let (_, seen) = apply(&db, &txn(Zxid::new(3), OpCode::CloseSession, close));
    assert!(!db.tree().exists("/e1"));
    assert!(!db.tree().exists("/e2"));
    assert_eq!(seen, [(9, EventType::NodeDeleted, "/e2".into())]);
    assert_eq!(db.tree().stat("/").map(|s| s.pzxid), Some(3));
}

#[test]
fn error_txn_reports_its_code() {
    let db = Database::new(false);
    let (result, _) =
        apply(&db, &txn(Zxid::new(4), OpCode::Error, TxnBody::Error(ErrorTxn { err: -110 })));
    assert_eq!(result.err, Code::NodeExists);
    assert_eq!(db.last_applied_zxid(), Zxid::new(4));
}
