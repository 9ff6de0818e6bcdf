use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

use super::*;
use crate::ensemble::zookeeper::packet::{LearnerInfo, PacketCodec, PacketType, QuorumPacket};
use crate::txn::{SessionId, Zxid};
use crate::zab::{PeerState, Vote};

const PATIENCE: Duration = Duration::from_secs(10);

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    (listener, address)
}

/// Member `my_id`'s view of an ensemble whose members listen at `members`.
fn config(my_id: ServerId, members: &[(ServerId, PeerAddresses)]) -> LinkConfig {
    LinkConfig {
        my_id,
        members: members.iter().cloned().collect(),
        membership_text: "server.1=127.0.0.1:1:2:participant\nversion=0".into(),
        config_version: 0,
        packet_data_max: 2 << 20,
        security: stream::PeerSecurity::Plain,
        sasl: None,
    }
}

/// A member's addresses on 127.0.0.1.
fn at(quorum: SocketAddr, election: SocketAddr) -> PeerAddresses {
    PeerAddresses { quorum, election, host: "127.0.0.1".into() }
}

fn follower_info() -> PeerFrame {
    PeerFrame::Zab(Message::FollowerInfo { accepted_epoch: 1, observer: false })
}

/// A learner's connection to `address`, introduced with `id`'s FOLLOWERINFO.
async fn learner_dials(address: SocketAddr, id: ServerId) -> FramedRead<TcpStream, PacketCodec> {
    let mut stream = TcpStream::connect(address).await.expect("dial the quorum port");
    let info = LearnerInfo { server_id: id, protocol_version: 0x10000, config_version: 0 };
    let mut bytes = BytesMut::new();
    QuorumPacket::with_data(PacketType::FollowerInfo, 1 << 32, info.encode()).encode(&mut bytes);
    stream.write_all(&bytes).await.expect("FOLLOWERINFO");
    FramedRead::new(stream, PacketCodec::new(4 << 20))
}

#[tokio::test]
async fn a_leader_that_reads_nothing_is_disconnected_once_its_queue_is_full() {
    let (leader, quorum) = listener().await;
    let (_, election) = listener().await;
    let stop = CancellationToken::new();
    let (events_tx, mut events) = mpsc::channel(16);
    let members = config(2, &[(1, at(quorum, election)), (2, at(quorum, election))]);
    let mut links = Links::start(&members, None, events_tx, &stop);
    links.send(1, follower_info());
    let (held, _) = tokio::time::timeout(PATIENCE, leader.accept())
        .await
        .expect("the learner dials its leader")
        .expect("accepted");
    let request = PeerFrame::Request {
        session_id: SessionId::new(7),
        auth: Vec::new(),
        frame: Bytes::from(vec![7; 1 << 20]),
    };
    let mut sent = 0usize;
    let event = loop {
        assert!(sent < 4 * (QUEUE_BYTES_MAX >> 20), "no disconnection after {sent} MiB");
        links.send(1, request.clone());
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(5), events.recv()).await {
            Ok(event) => break event,
            Err(_) => continue,
        }
    };
    assert!(matches!(event, Some(LinkEvent::Disconnected { peer: 1, breaks: 1 })), "{event:?}");
    assert!(sent > QUEUE_BYTES_MAX >> 20, "disconnected after only {sent} MiB");
    drop(held);
    stop.cancel();
}

#[tokio::test]
async fn a_snapshot_runs_between_its_snap_and_the_packets_queued_after_it() {
    let (quorum, quorum_address) = listener().await;
    let (election, election_address) = listener().await;
    let own = at(quorum_address, election_address);
    let (_, elsewhere) = listener().await;
    let learner = at(elsewhere, elsewhere);
    let stop = CancellationToken::new();
    let (events_tx, mut events) = mpsc::channel(16);
    let members = config(1, &[(1, own), (2, learner)]);
    let mut links = Links::start(&members, Some(Listeners { quorum, election }), events_tx, &stop);
    let mut connection = learner_dials(quorum_address, 2).await;
    let heard = tokio::time::timeout(PATIENCE, events.recv()).await.expect("the FOLLOWERINFO");
    assert!(
        matches!(
            heard,
            Some(LinkEvent::Frame { from: 2, frame: PeerFrame::Zab(Message::FollowerInfo { .. }) })
        ),
        "{heard:?}"
    );
    let (bytes, stream) = mpsc::channel(1);
    let zxid = Zxid::new(5);
    let snap = Message::Snap { zxid, entries: Vec::new(), committed: zxid };
    links.send_snapshot(2, PeerFrame::Zab(snap), stream);
    links.send(2, PeerFrame::Zab(Message::Ping { last_proposed: zxid }));
    let sender = tokio::spawn(async move {
        for piece in [&b"abc"[..], b"def"] {
            bytes.send(Streamed::Bytes(Bytes::from_static(piece))).await.expect("room");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bytes.send(Streamed::End).await.expect("room");
    });
    let first = connection.next().await.expect("a packet").expect("decodes");
    assert_eq!((first.kind, first.zxid), (PacketType::Snap, 5));
    // The snapshot's bytes, then the PING packet, whose type is 5.
    let mut rest = connection.read_buffer().to_vec();
    let mut stream = connection.into_inner();
    let expected_len = 6 + 4 + 8 + 4 + 4;
    while rest.len() < expected_len {
        let mut more = vec![0u8; 64];
        let read = tokio::io::AsyncReadExt::read(&mut stream, &mut more).await.expect("read");
        assert!(read > 0, "closed after {rest:?}");
        rest.extend_from_slice(&more[..read]);
    }
    sender.await.expect("sender");
    assert_eq!(&rest[..6], b"abcdef");
    assert_eq!(&rest[6..10], &5i32.to_be_bytes(), "PING after the snapshot");
    stop.cancel();
}

#[tokio::test]
async fn members_exchange_votes_whichever_one_needs_the_connection_first() {
    let mut addresses = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let (quorum, quorum_address) = listener().await;
        let (election, election_address) = listener().await;
        addresses.push(at(quorum_address, election_address));
        listeners.push(Some(Listeners { quorum, election }));
    }
    let members = [(1, addresses[0].clone()), (2, addresses[1].clone())];
    let stop = CancellationToken::new();
    let mut links = Vec::new();
    let mut events = Vec::new();
    for (index, id) in [1u64, 2].into_iter().enumerate() {
        let (events_tx, events_rx) = mpsc::channel(64);
        let started =
            Links::start(&config(id, &members), listeners[index].take(), events_tx, &stop);
        links.push(started);
        events.push(events_rx);
    }
    let vote = |leader| Notification {
        round: 1,
        vote: Vote { epoch: 0, zxid: Zxid::ZERO, leader },
        state: PeerState::Looking,
    };
    // Member 1 has the lower id: it asks member 2 to dial, as ZooKeeper's members do,
    // and repeats its vote until it gets through, as the core does.
    let heard = tokio::time::timeout(PATIENCE, async {
        loop {
            links[0].send(2, PeerFrame::Zab(Message::Notification(vote(1))));
            if let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(50), events[1].recv()).await
            {
                return event;
            }
        }
    })
    .await
    .expect("member 2 hears member 1's vote");
    let expected = PeerFrame::Zab(Message::Notification(vote(1)));
    assert!(
        matches!(&heard, LinkEvent::Frame { from: 1, frame } if *frame == expected),
        "{heard:?}"
    );
    links[1].send(1, PeerFrame::Zab(Message::Notification(vote(2))));
    let answer = tokio::time::timeout(PATIENCE, events[0].recv()).await.expect("an answer");
    let expected = PeerFrame::Zab(Message::Notification(vote(2)));
    assert!(
        matches!(&answer, Some(LinkEvent::Frame { from: 2, frame }) if *frame == expected),
        "{answer:?}"
    );
    stop.cancel();
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_on_a_quorum_connection_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        snapshot_first in proptest::prelude::any::<bool>(),
        split in 1usize..64,
    ) {
        use tokio_util::codec::Decoder;
        let mut stream = BytesMut::new();
        if snapshot_first {
            // A SNAP puts the decoder in the snapshot's stream, which it then reads.
            QuorumPacket::bare(PacketType::Snap, 5).encode(&mut stream);
        }
        stream.extend_from_slice(&bytes);
        let mut decoder = quorum::QuorumDecoder::new(1 << 16);
        let mut buffer = BytesMut::new();
        'fed: for part in stream.chunks(split) {
            buffer.extend_from_slice(part);
            loop {
                match decoder.decode(&mut buffer) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => break 'fed,
                }
            }
        }
    }
}
