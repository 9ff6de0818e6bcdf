use bytes::Bytes;

use super::*;

fn proposal(zxid: Zxid, txn: &'static [u8]) -> QuorumPacket {
    QuorumPacket::with_data(PacketType::Proposal, zxid.raw(), Bytes::from_static(txn))
}

fn feed(side: &mut LearnerSide, packets: Vec<QuorumPacket>) -> Vec<Message> {
    let mut out = Vec::new();
    for packet in packets {
        side.incoming(packet, &mut out).expect("a packet in place");
    }
    out
}

#[test]
fn a_trunc_and_the_txns_after_it_reach_the_core_as_one_diff_at_newleader() {
    let mut side = LearnerSide::new(2, 0);
    let (first, second) = (Zxid::epoch_start(3) + 1, Zxid::epoch_start(3) + 2);
    let messages = feed(
        &mut side,
        vec![
            QuorumPacket::bare(PacketType::Trunc, (Zxid::epoch_start(2) + 4).raw()),
            proposal(first, b"one"),
            QuorumPacket::bare(PacketType::Commit, first.raw()),
            proposal(second, b"two"),
        ],
    );
    assert_eq!(messages, vec![], "nothing before NEWLEADER");
    let messages = feed(
        &mut side,
        vec![QuorumPacket::bare(PacketType::NewLeader, Zxid::epoch_start(4).raw())],
    );
    let entries = vec![
        Entry { zxid: first, payload: seal(b"one") },
        Entry { zxid: second, payload: seal(b"two") },
    ];
    assert_eq!(
        messages,
        vec![
            Message::Diff {
                truncate_to: Some(Zxid::epoch_start(2) + 4),
                entries,
                committed: first,
                established: Zxid::epoch_start(2) + 4,
            },
            Message::NewLeader { epoch: 4 },
        ]
    );
    // After it, txns and commits pass one by one, and UPTODATE brings the last commit.
    let messages = feed(
        &mut side,
        vec![
            QuorumPacket::bare(PacketType::Commit, second.raw()),
            QuorumPacket::bare(PacketType::UpToDate, -1),
        ],
    );
    assert_eq!(
        messages,
        vec![Message::Commit { zxid: second }, Message::UpToDate { committed: second }]
    );
}

#[test]
fn an_empty_diff_says_how_far_the_learners_own_log_is_established() {
    // A leader that has what this learner logged sends DIFF at the learner's last zxid
    // and no COMMIT for it (ZooKeeper's learners applied their whole log before syncing).
    let mut side = LearnerSide::new(2, 0);
    let last = Zxid::epoch_start(1) + 7;
    let messages = feed(
        &mut side,
        vec![
            QuorumPacket::bare(PacketType::Diff, last.raw()),
            QuorumPacket::bare(PacketType::NewLeader, Zxid::epoch_start(2).raw()),
        ],
    );
    assert_eq!(
        messages,
        vec![
            Message::Diff {
                truncate_to: None,
                entries: vec![],
                committed: Zxid::ZERO,
                established: last
            },
            Message::NewLeader { epoch: 2 },
        ]
    );
}

#[test]
fn an_inform_is_a_proposal_and_its_commit() {
    let mut side = LearnerSide::new(4, 0);
    let zxid = Zxid::epoch_start(1) + 9;
    let inform = QuorumPacket::with_data(PacketType::Inform, zxid.raw(), Bytes::from_static(b"t"));
    assert_eq!(
        feed(&mut side, vec![inform]),
        vec![Message::Proposal(Entry { zxid, payload: seal(b"t") }), Message::Commit { zxid }]
    );
}

#[test]
fn packets_out_of_place_are_refused() {
    let mut out = Vec::new();
    let mut side = LearnerSide::new(2, 0);
    assert!(side.incoming(QuorumPacket::bare(PacketType::NewLeader, 0), &mut out).is_err());
    assert!(side.incoming(QuorumPacket::bare(PacketType::Diff, 0), &mut out).is_ok());
    assert!(side.incoming(QuorumPacket::bare(PacketType::Snap, 0), &mut out).is_err());
    assert!(side.incoming(QuorumPacket::bare(PacketType::Proposal, 1), &mut out).is_err());
    assert!(side.incoming(QuorumPacket::bare(PacketType::FollowerInfo, 0), &mut out).is_err());
}

#[test]
fn the_learners_messages_become_its_packets_and_followerinfo_goes_once() {
    let mut side = LearnerSide::new(2, 7);
    let sent = |side: &mut LearnerSide, message: &Message| {
        let mut out = Vec::new();
        side.outgoing(message, &mut out).expect("a learner's message");
        out
    };
    let info = Message::FollowerInfo { accepted_epoch: 3, observer: true };
    let first = sent(&mut side, &info);
    assert_eq!(
        (first[0].kind, first[0].zxid),
        (PacketType::ObserverInfo, Zxid::epoch_start(3).raw())
    );
    let learner = LearnerInfo::decode(first[0].data.as_deref().unwrap_or_default()).expect("info");
    assert_eq!((learner.server_id, learner.config_version), (2, 7));
    assert_eq!(sent(&mut side, &info), vec![], "once per connection");
    let ack = Message::AckEpoch { current_epoch: None, last_zxid: Zxid::epoch_start(2) + 1 };
    let acked = sent(&mut side, &ack);
    assert_eq!(packet::read_int_payload(acked[0].data.as_ref(), "epoch").ok(), Some(-1));
    let acked = sent(&mut side, &Message::AckNewLeader { epoch: 4 });
    assert_eq!((acked[0].kind, acked[0].zxid), (PacketType::Ack, Zxid::epoch_start(4).raw()));
    assert!(side.outgoing(&Message::SyncRequest { id: 1 }, &mut Vec::new()).is_err());
    assert!(side.outgoing(&Message::LeaderInfo { epoch: 4 }, &mut Vec::new()).is_err());
}

#[test]
fn each_proposal_is_acknowledged_on_its_own_as_a_zookeeper_leader_counts_them() {
    let mut side = LearnerSide::new(2, 0);
    let mut messages = Vec::new();
    let zxid = |counter| Zxid::epoch_start(4) + counter;
    let proposal = |counter| {
        QuorumPacket::with_data(
            PacketType::Proposal,
            zxid(counter).raw(),
            Bytes::from_static(b"txn"),
        )
    };
    let packets = [
        QuorumPacket::bare(PacketType::Diff, zxid(1).raw()),
        proposal(1),
        QuorumPacket::bare(PacketType::Commit, zxid(1).raw()),
        proposal(2),
        QuorumPacket::bare(PacketType::NewLeader, zxid(0).raw()),
        QuorumPacket::bare(PacketType::UpToDate, -1),
        proposal(3),
        proposal(4),
        proposal(5),
    ];
    for packet in packets {
        side.incoming(packet, &mut messages).expect("the leader's packets");
    }
    let acks = |side: &mut LearnerSide, message: Message| {
        let mut out = Vec::new();
        side.outgoing(&message, &mut out).expect("a learner's message");
        out.iter().map(|packet| (packet.kind, packet.zxid)).collect::<Vec<_>>()
    };
    let ack = |counter| (PacketType::Ack, zxid(counter).raw());
    assert_eq!(
        acks(&mut side, Message::AckNewLeader { epoch: 4 }),
        [ack(0), ack(2)],
        "NEWLEADER's, and the synchronisation's uncommitted proposal's"
    );
    assert_eq!(acks(&mut side, Message::Ack { zxid: zxid(4) }), [ack(3), ack(4)]);
    assert_eq!(acks(&mut side, Message::Ack { zxid: zxid(4) }), [], "each once");
    assert_eq!(acks(&mut side, Message::Ack { zxid: zxid(5) }), [ack(5)]);
}
