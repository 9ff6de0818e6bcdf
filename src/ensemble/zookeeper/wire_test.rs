//! The codecs against bytes a ZooKeeper 3.8.0 leader sent (server.1, quorum port 16281,
//! election port 16381, with server.2 an observer at 16282/16382), captured while a test
//! client played the observer.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::election::{self, ElectionCodec, InitialMessage, WireNotification};
use super::packet::{self, LearnerInfo, PacketCodec, PacketType, QuorumPacket};
use crate::txn::{Txn, TxnBody, Zxid};
use crate::zab::PeerState;

const MEMBERSHIP: &str = "server.1=127.0.0.1:16281:16381:participant\n\
                          server.2=127.0.0.1:16282:16382:observer\nversion=0";

fn hex(text: &str) -> BytesMut {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map(|bytes| BytesMut::from(&bytes[..]))
        .expect("hex")
}

/// Decodes every packet in `stream`, checks each encodes back to its own bytes.
fn packets(stream: &str) -> Vec<QuorumPacket> {
    let mut buf = hex(stream);
    let mut codec = PacketCodec::new(1 << 20);
    let mut out = Vec::new();
    loop {
        let before = buf.clone();
        match codec.decode(&mut buf).expect("a packet") {
            Some(packet) => {
                let mut encoded = BytesMut::new();
                codec.encode(&packet, &mut encoded).expect("encode");
                assert_eq!(encoded[..], before[..before.len() - buf.len()], "{packet:?}");
                out.push(packet);
            }
            None => break,
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

#[test]
fn a_leaders_handshake_packets_decode_and_encode_to_the_same_bytes() {
    let received = packets(
        "0000001100000002000000000000000400010000ffffffff\
         0000000f0000000200000007ffffffffffffffff\
         0000000a00000002000000000000005c7365727665722e313d3132372e302e302e313a3136323831\
         3a31363338313a7061727469636970616e740a7365727665722e323d3132372e302e302e313a3136\
         3238323a31363338323a6f627365727665720a76657273696f6e3d30ffffffff\
         0000000cffffffffffffffffffffffffffffffff",
    );
    let kinds: Vec<_> = received.iter().map(|packet| packet.kind).collect();
    assert_eq!(
        kinds,
        [PacketType::LeaderInfo, PacketType::Snap, PacketType::NewLeader, PacketType::UpToDate]
    );
    assert_eq!(received[0].zxid, 0x2_0000_0000);
    assert_eq!(packet::read_int_payload(received[0].data.as_ref(), "protocol").ok(), Some(0x10000));
    assert_eq!(received[1], QuorumPacket::bare(PacketType::Snap, 0x2_0000_0007));
    assert_eq!(received[2].data.as_deref(), Some(MEMBERSHIP.as_bytes()));
    assert_eq!(received[3], QuorumPacket::bare(PacketType::UpToDate, -1));
}

#[test]
fn an_inform_carries_the_txn_as_the_log_stores_it_with_a_digest_after() {
    let received = packets(
        "00000008 0000000200000009 0000005f 0100009998070002 00000001 0000000200000009\
         000001a240b99628 00000001 00000006 2f7769726532 00000005 68656c6c6f 00000001\
         0000001f 00000005 776f726c64 00000006 616e796f6e65 00 00000003\
         00000002 00000001eec36985 ffffffff",
    );
    let [inform] = &received[..] else { panic!("one packet: {received:?}") };
    assert_eq!(inform.kind, PacketType::Inform);
    let txn = Txn::decode(inform.data.as_ref().expect("data")).expect("a txn");
    assert_eq!(txn.zxid(), Zxid::new(inform.zxid));
    let TxnBody::Create(create) = txn.body else { panic!("a create: {txn:?}") };
    assert_eq!(create.path, "/wire2");
    assert_eq!(create.data.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn a_packet_arriving_in_pieces_is_decoded_once_whole() {
    let whole = hex("0000000cffffffffffffffffffffffffffffffff");
    let mut codec = PacketCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    for (i, byte) in whole.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let decoded = codec.decode(&mut buf).expect("no error");
        assert_eq!(decoded.is_some(), i + 1 == whole.len(), "after {} bytes", i + 1);
    }
}

#[test]
fn lengths_past_the_limits_are_refused_before_anything_is_allocated() {
    let mut codec = PacketCodec::new(1024);
    let mut too_long = hex("00000002 0000000000000001 00000401");
    assert!(matches!(codec.decode(&mut too_long), Err(packet::PacketError::TooLong { .. })));
    let mut negative = hex("00000002 0000000000000001 fffffffe");
    assert!(codec.decode(&mut negative).is_err());
    let mut ids = hex("00000002 0000000000000001 ffffffff 7fffffff");
    assert!(codec.decode(&mut ids).is_err());
    let mut unknown = hex("00000063 0000000000000001 ffffffff ffffffff");
    assert!(matches!(codec.decode(&mut unknown), Err(packet::PacketError::UnknownType(99))));
}

#[test]
fn learner_info_reads_every_version_zookeeper_reads() {
    let info = LearnerInfo { server_id: 2, protocol_version: 0x10000, config_version: 0 };
    assert_eq!(&info.encode()[..], &hex("0000000000000002 00010000 0000000000000000")[..]);
    assert_eq!(LearnerInfo::decode(&info.encode()).ok(), Some(info));
    let old = LearnerInfo::decode(&hex("0000000000000007")).expect("3.3's form");
    assert_eq!((old.server_id, old.protocol_version), (7, 0));
    assert!(LearnerInfo::decode(&hex("00000007")).is_err());
}

#[test]
fn a_leaders_notification_decodes_and_encodes_to_the_same_bytes() {
    let frame =
        hex("00000088000000020000000000000001000000000000000000000000000000010000000000000002\
         000000020000005c7365727665722e313d3132372e302e302e313a31363238313a31363338313a70\
         61727469636970616e740a7365727665722e323d3132372e302e302e313a31363238323a31363338\
         323a6f627365727665720a76657273696f6e3d30");
    let mut buf = frame.clone();
    let payload = ElectionCodec.decode(&mut buf).expect("a frame").expect("whole");
    let wire = election::decode(&payload).expect("a notification");
    assert_eq!(wire.state, PeerState::Leading);
    assert_eq!((wire.leader, wire.zxid, wire.round, wire.peer_epoch), (1, Zxid::ZERO, 1, 2));
    assert_eq!(wire.config.as_deref(), Some(MEMBERSHIP));
    let notification = wire.notification().expect("meaningful");
    assert_eq!(WireNotification::new(&notification, MEMBERSHIP), wire);
    let mut encoded = BytesMut::new();
    ElectionCodec.encode(&wire, &mut encoded).expect("encode");
    assert_eq!(encoded, frame);
}

#[test]
fn older_notifications_are_read_as_zookeeper_reads_them() {
    let mut v33 = hex("00000000 0000000000000003 0000000500000009 0000000000000004");
    let wire = election::decode(&v33.split()).expect("28 bytes");
    assert_eq!((wire.peer_epoch, wire.version, wire.config), (5, 0, None));
    let v34 = hex(
        "00000001 0000000000000003 0000000500000009 0000000000000004 0000000000000006 00000000",
    );
    let wire = election::decode(&v34).expect("40 bytes");
    assert_eq!((wire.state, wire.peer_epoch, wire.version), (PeerState::Following, 6, 0));
    // 3.4.6's version 1 is 40 bytes too, and ZooKeeper reads it without its version.
    let v1 = hex(
        "00000003 0000000000000003 0000000500000009 0000000000000004 0000000000000006 00000001",
    );
    assert_eq!(election::decode(&v1).expect("40 bytes").version, 0);
    let v34_cut =
        hex("00000001 0000000000000003 0000000500000009 0000000000000004 0000000000000006");
    assert!(election::decode(&v34_cut).is_err(), "36 bytes: ZooKeeper skips it as partial");
    let bad_state = hex("00000009 0000000000000003 0000000500000009 0000000000000004");
    assert!(election::decode(&bad_state).is_err());
    let config_too_long =
        hex("00000000 0000000000000003 0000000500000009 0000000000000004 0000000000000006 00000002 00000010");
    assert!(election::decode(&config_too_long).is_err());
    assert!(election::decode(&hex("00000000 00000000")).is_err());
}

#[test]
fn frames_of_no_or_too_many_bytes_are_refused() {
    assert!(ElectionCodec.decode(&mut hex("00000000")).is_err());
    assert!(ElectionCodec.decode(&mut hex("ffffffff")).is_err());
    assert!(ElectionCodec.decode(&mut hex("00080001")).is_err());
    assert!(ElectionCodec.decode(&mut hex("0000001c 00")).expect("in time").is_none());
}

#[test]
fn initial_messages_of_every_version_parse() {
    let message = InitialMessage { server_id: 2, addresses: vec!["127.0.0.1:16382".to_owned()] };
    let mut out = BytesMut::new();
    message.encode(&mut out);
    assert_eq!(
        out,
        hex("ffffffffffff0000 0000000000000002 0000000f 3132372e302e302e313a3136333832")
    );
    assert_eq!(InitialMessage::parse(&out).ok().flatten(), Some((message, out.len())));
    assert!(InitialMessage::parse(&out[..out.len() - 1]).expect("no error").is_none());
    let several = InitialMessage {
        server_id: 3,
        addresses: vec!["10.0.0.1:3888".to_owned(), "[::1]:3888".to_owned()],
    };
    let mut out = BytesMut::new();
    several.encode(&mut out);
    assert_eq!(out[..8], (-65535i64).to_be_bytes());
    assert_eq!(InitialMessage::parse(&out).ok().flatten().map(|(parsed, _)| parsed), Some(several));
    let legacy = InitialMessage::parse(&7i64.to_be_bytes()).ok().flatten();
    assert_eq!(legacy, Some((InitialMessage { server_id: 7, addresses: Vec::new() }, 8)));
    assert!(InitialMessage::parse(&(-3i64).to_be_bytes()).is_err());
    let mut too_long = BytesMut::from(&(-65536i64).to_be_bytes()[..]);
    too_long.extend_from_slice(&hex("0000000000000002 00000801"));
    assert!(InitialMessage::parse(&too_long).is_err());
    let mut no_port = BytesMut::from(&(-65536i64).to_be_bytes()[..]);
    no_port.extend_from_slice(&hex("0000000000000002 00000004 686f7374"));
    assert!(InitialMessage::parse(&no_port).is_err());
}

#[test]
fn zkrs_membership_text_is_what_zookeeper_sends() {
    let config = crate::config::Config::parse(&format!(
        "dataDir=/tmp/x\nclientPort=16181\ninitLimit=5\nsyncLimit=2\nstandaloneEnabled=false\n{}",
        "server.1=127.0.0.1:16281:16381:participant\nserver.2=127.0.0.1:16282:16382:observer\n"
    ));
    let membership = config.expect("a zoo.cfg").membership;
    assert_eq!(membership.to_zookeeper_text(), MEMBERSHIP);
}

#[test]
fn an_observers_notification_has_no_vote_and_still_decodes() {
    let no_vote = WireNotification {
        state: PeerState::Looking,
        leader: election::NO_VOTE,
        zxid: Zxid::new(i64::MIN),
        round: 1,
        peer_epoch: election::NO_VOTE,
        version: 2,
        config: Some("server.3=127.0.0.1:1:2:observer\nversion=0".into()),
    };
    let mut bytes = BytesMut::new();
    no_vote.encode(&mut bytes);
    let decoded = election::decode(&bytes).expect("decodes").notification().expect("no vote");
    assert_eq!((decoded.vote.epoch, decoded.vote.leader), (0, election::NO_VOTE));
    let past = WireNotification { peer_epoch: 1 << 40, ..no_vote };
    assert!(past.notification().is_err(), "any other epoch past 32 bits is malformed");
}
