use super::*;

const SESSION: SessionId = SessionId::new(0x0200_0000_0000_0001);

#[test]
fn a_forwarded_request_is_the_session_then_the_clients_frame() {
    let frame = Bytes::from_static(&[0, 0, 0, 7, 0, 0, 0, 1, 0xaa]);
    let auth = vec![Id { scheme: "ip".into(), id: "127.0.0.1".into() }];
    let forwarded = Forwarded { session_id: SESSION, frame: frame.clone(), auth };
    let packet = forwarded.packet();
    assert_eq!((packet.kind, packet.zxid), (PacketType::Request, -1));
    let data = packet.data.clone().expect("data");
    assert_eq!(&data[..8], &SESSION.raw().to_be_bytes());
    assert_eq!(data.slice(8..), frame);
    assert_eq!(Forwarded::read(&packet).ok(), Some(forwarded));
    let short = QuorumPacket::with_data(PacketType::Request, -1, Bytes::from_static(&[0; 15]));
    assert!(Forwarded::read(&short).is_err());
}

#[test]
fn a_new_session_is_a_create_session_request_with_its_timeout() {
    let created = Forwarded::create_session(SESSION, 30_000);
    let mut frame = &created.frame[..];
    assert_eq!((frame.get_i32(), frame.get_i32(), frame.get_i32()), (0, -10, 30_000));
}

#[test]
fn touches_and_revalidations_read_back() {
    let sessions = [(SESSION, 30_000), (SessionId::new(5), 4_000)];
    assert_eq!(read_touches(Some(&touches(&sessions))).ok(), Some(sessions.to_vec()));
    assert_eq!(read_touches(None).ok(), Some(Vec::new()));
    assert!(read_touches(Some(&Bytes::from_static(&[0; 13]))).is_err());
    assert_eq!(read_revalidate(&revalidate(SESSION, 9_000)).ok(), Some((SESSION, 9_000)));
    assert_eq!(read_revalidated(&revalidated(SESSION, true)).ok(), Some((SESSION, true)));
    assert!(read_revalidated(&QuorumPacket::bare(PacketType::Revalidate, -1)).is_err());
}

#[test]
fn a_new_sessions_request_reads_back_its_timeout_and_no_other_request_has_one() {
    let created = Forwarded::create_session(SessionId::new(9), 4000);
    assert_eq!(Forwarded::new_session_timeout(&created.frame), Some(4000));
    let mut sync = BytesMut::new();
    sync.put_i32(5);
    sync.put_i32(OpCode::Sync.as_i32());
    sync.put_i32(1);
    sync.put_u8(b'/');
    assert_eq!(Forwarded::new_session_timeout(&sync.freeze()), None);
    assert_eq!(Forwarded::new_session_timeout(&Bytes::from_static(b"\0\0")), None);
}
