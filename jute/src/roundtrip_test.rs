//! Property tests: every record survives encode → decode, and no input makes decoding panic.
#![allow(clippy::indexing_slicing)] // Tests may index: a wrong index fails the test.

use bytes::Bytes;
use proptest::prelude::*;

use crate::generate::{Generate, Source};
use crate::records::*;
use crate::{from_bytes, to_bytes, Record};

fn round_trip<T: Record + Generate + PartialEq + std::fmt::Debug>(entropy: &[u8]) {
    let value = T::generate(&mut Source::new(entropy));
    let encoded = to_bytes(&value);
    assert!(encoded.len() >= T::MIN_LEN);
    assert_eq!(value.size_hint(), encoded.len(), "{value:?}");
    let decoded: T = from_bytes(&encoded).expect("a value we encoded must decode");
    assert_eq!(decoded, value);
}

fn decode_garbage<T: Record>(bytes: &[u8]) {
    let _ = from_bytes::<T>(&Bytes::copy_from_slice(bytes));
}

macro_rules! for_every_record {
    ($check:ident, $input:expr) => {{
        $check::<Id>($input);
        $check::<Acl>($input);
        $check::<Stat>($input);
        $check::<StatPersisted>($input);
        $check::<ClientInfo>($input);
        $check::<ConnectRequest>($input);
        $check::<ConnectResponse>($input);
        $check::<RequestHeader>($input);
        $check::<ReplyHeader>($input);
        $check::<AuthPacket>($input);
        $check::<GetSaslRequest>($input);
        $check::<SetSaslResponse>($input);
        $check::<CreateRequest>($input);
        $check::<CreateTtlRequest>($input);
        $check::<CreateResponse>($input);
        $check::<Create2Response>($input);
        $check::<DeleteRequest>($input);
        $check::<ExistsRequest>($input);
        $check::<ExistsResponse>($input);
        $check::<GetDataRequest>($input);
        $check::<GetDataResponse>($input);
        $check::<SetDataRequest>($input);
        $check::<SetDataResponse>($input);
        $check::<GetAclRequest>($input);
        $check::<GetAclResponse>($input);
        $check::<SetAclRequest>($input);
        $check::<SetAclResponse>($input);
        $check::<GetChildrenRequest>($input);
        $check::<GetChildrenResponse>($input);
        $check::<GetChildren2Request>($input);
        $check::<GetChildren2Response>($input);
        $check::<CheckVersionRequest>($input);
        $check::<SyncRequest>($input);
        $check::<SyncResponse>($input);
        $check::<GetAllChildrenNumberRequest>($input);
        $check::<GetAllChildrenNumberResponse>($input);
        $check::<GetEphemeralsRequest>($input);
        $check::<GetEphemeralsResponse>($input);
        $check::<WhoAmIResponse>($input);
        $check::<ReconfigRequest>($input);
        $check::<ErrorResponse>($input);
        $check::<WatcherEvent>($input);
        $check::<SetWatches>($input);
        $check::<SetWatches2>($input);
        $check::<AddWatchRequest>($input);
        $check::<CheckWatchesRequest>($input);
        $check::<RemoveWatchesRequest>($input);
        $check::<MultiHeader>($input);
        $check::<MultiRequest>($input);
        $check::<MultiResponse>($input);
        $check::<TxnHeader>($input);
        $check::<CreateTxn>($input);
        $check::<CreateTtlTxn>($input);
        $check::<CreateContainerTxn>($input);
        $check::<DeleteTxn>($input);
        $check::<SetDataTxn>($input);
        $check::<CheckVersionTxn>($input);
        $check::<SetAclTxn>($input);
        $check::<CreateSessionTxn>($input);
        $check::<CloseSessionTxn>($input);
        $check::<ErrorTxn>($input);
        $check::<Txn>($input);
        $check::<MultiTxn>($input);
    }};
}

impl Generate for MultiOp {
    fn generate(source: &mut Source<'_>) -> Self {
        match u8::try_from(i32::generate(source).rem_euclid(7)).unwrap_or(0) {
            0 => MultiOp::Create { op_type: 15, request: Generate::generate(source) },
            1 => MultiOp::CreateTtl(Generate::generate(source)),
            2 => MultiOp::Delete(Generate::generate(source)),
            3 => MultiOp::SetData(Generate::generate(source)),
            4 => MultiOp::Check(Generate::generate(source)),
            5 => MultiOp::GetChildren(Generate::generate(source)),
            _ => MultiOp::GetData(Generate::generate(source)),
        }
    }
}

impl Generate for MultiRequest {
    fn generate(source: &mut Source<'_>) -> Self {
        MultiRequest { ops: Generate::generate(source) }
    }
}

impl Generate for MultiResult {
    fn generate(source: &mut Source<'_>) -> Self {
        match u8::try_from(i32::generate(source).rem_euclid(8)).unwrap_or(0) {
            0 => MultiResult::Create(Generate::generate(source)),
            1 => MultiResult::Create2 {
                path: Generate::generate(source),
                stat: Generate::generate(source),
            },
            2 => MultiResult::Delete,
            3 => MultiResult::SetData(Generate::generate(source)),
            4 => MultiResult::Check,
            5 => MultiResult::GetChildren(Generate::generate(source)),
            6 => MultiResult::GetData {
                data: Generate::generate(source),
                stat: Generate::generate(source),
            },
            _ => MultiResult::Error(Generate::generate(source)),
        }
    }
}

impl Generate for MultiResponse {
    fn generate(source: &mut Source<'_>) -> Self {
        MultiResponse { results: Generate::generate(source) }
    }
}

proptest! {
    #[test]
    fn every_record_round_trips(entropy in proptest::collection::vec(any::<u8>(), 0..600)) {
        for_every_record!(round_trip, &entropy);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for_every_record!(decode_garbage, &bytes);
    }

    #[test]
    fn truncated_encodings_are_incomplete(entropy in proptest::collection::vec(any::<u8>(), 0..200),
                                          cut in 0usize..64) {
        let value = CreateRequest::generate(&mut Source::new(&entropy));
        let encoded = to_bytes(&value);
        let cut = cut.min(encoded.len().saturating_sub(1));
        let truncated = encoded.slice(..cut);
        let result = from_bytes::<CreateRequest>(&truncated);
        let is_incomplete = matches!(result, Err(crate::DecodeError::Incomplete { .. }));
        prop_assert!(is_incomplete);
    }
}

#[test]
fn forged_vector_count_is_rejected_before_allocating() {
    let mut bytes = vec![0u8; 4];
    bytes.extend_from_slice(&i32::MAX.to_be_bytes());
    let result = from_bytes::<GetChildrenResponse>(&Bytes::from(bytes[4..].to_vec()));
    assert!(matches!(result, Err(crate::DecodeError::Incomplete { .. })));
}

#[test]
fn negative_lengths_other_than_null_are_invalid() {
    let bytes = Bytes::from((-2i32).to_be_bytes().to_vec());
    let result = from_bytes::<SyncRequest>(&bytes);
    assert!(matches!(result, Err(crate::DecodeError::Invalid { .. })));
}

#[test]
fn null_data_stays_null() {
    let request = SetDataRequest { path: "/a".into(), data: None, version: -1 };
    let encoded = to_bytes(&request);
    assert_eq!(&encoded[6..10], &(-1i32).to_be_bytes());
    assert_eq!(from_bytes::<SetDataRequest>(&encoded).expect("decodes"), request);
}

#[test]
fn stat_layout_matches_zookeeper() {
    let stat = Stat { czxid: 1, num_children: 2, pzxid: 3, ..Stat::default() };
    let encoded = to_bytes(&stat);
    assert_eq!(encoded.len(), 68);
    assert_eq!(&encoded[0..8], &1i64.to_be_bytes());
    assert_eq!(&encoded[56..60], &2i32.to_be_bytes());
    assert_eq!(&encoded[60..68], &3i64.to_be_bytes());
}
