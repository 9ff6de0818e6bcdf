use jute::OpCode;

use super::*;
use crate::txn::{Txn, TxnBody};

const FIXTURES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zookeeper-3.8/version-2");

fn fixture() -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join("log.1")).expect("fixture")
}

#[test]
fn a_log_holds_every_txn_in_zxid_order() {
    let log = decode(&Bytes::from(fixture()), "log.1").expect("reads");
    assert!(!log.partial_tail);
    let zxids: Vec<i64> = log.txns.iter().map(|txn| txn.zxid).collect();
    assert_eq!(zxids, (1..=zxids.len() as i64).collect::<Vec<_>>());
    let txns: Vec<Txn> =
        log.txns.iter().map(|txn| Txn::decode(&txn.bytes).expect("a ZooKeeper txn")).collect();
    assert!(matches!(txns[0].body, TxnBody::CreateSession(_)));
    let ops: Vec<i32> = txns.iter().map(|txn| txn.header.op_type).collect();
    assert!(ops.contains(&OpCode::Multi.as_i32()));
    assert!(ops.contains(&OpCode::Delete.as_i32()));
    assert!(ops.contains(&OpCode::SetData.as_i32()));
}

#[test]
fn a_record_cut_short_ends_the_file_as_in_zookeeper() {
    let bytes = fixture();
    let whole = decode(&Bytes::from(bytes.clone()), "log.1").expect("reads").txns;
    let end = bytes.len() - bytes.iter().rev().position(|byte| *byte != 0).unwrap_or(0);
    let cut = decode(&Bytes::from(bytes[..end - 3].to_vec()), "log.1").expect("reads");
    assert!(cut.partial_tail);
    assert_eq!(cut.txns, whole[..whole.len() - 1]);
}

#[test]
fn a_changed_byte_fails_the_record_checksum() {
    let mut bytes = fixture();
    let at = bytes.windows(9).position(|window| window == b"root data").expect("data");
    bytes[at] ^= 0x20;
    let err = decode(&Bytes::from(bytes), "log.1").expect_err("refused");
    assert!(matches!(err, ZkFileError::Checksum { .. }), "{err}");
}

#[test]
fn an_encoded_log_is_byte_for_byte_what_zookeeper_wrote() {
    let bytes = fixture();
    let log = decode(&Bytes::from(bytes.clone()), "log.1").expect("reads");
    let encoded = encode(log.txns.iter().map(|txn| &txn.bytes[..]));
    let end = bytes.len() - bytes.iter().rev().position(|byte| *byte != 0).unwrap_or(0);
    assert_eq!(&encoded[..], &bytes[..end]);
    assert_eq!(decode(&encoded.freeze(), "log.1").expect("reads back").txns, log.txns);
}

#[test]
fn a_log_of_no_txns_is_only_the_header() {
    let encoded = encode(std::iter::empty()).freeze();
    assert_eq!(encoded.len(), 16);
    assert_eq!(decode(&encoded, "log.1").expect("reads").txns, vec![]);
}
