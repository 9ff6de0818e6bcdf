use bytes::Bytes;

use super::*;
use crate::storage::record::seal;

fn entry(counter: u32) -> Entry {
    Entry { zxid: Zxid::epoch_start(2) + counter, payload: seal(b"txn") }
}

fn packets(out: &[Outgoing]) -> Vec<(PacketType, i64)> {
    out.iter()
        .map(|item| match item {
            Outgoing::Packet(packet) => (packet.kind, packet.zxid),
            Outgoing::Snapshot(zxid) => (PacketType::Snap, zxid.raw()),
        })
        .collect()
}

fn introduced(observer: bool) -> LeaderSide {
    let mut side = LeaderSide::new("server.1=h:1:2:participant\nversion=0");
    let kind = if observer { PacketType::ObserverInfo } else { PacketType::FollowerInfo };
    let info =
        LearnerInfo { server_id: 3, protocol_version: packet::PROTOCOL_VERSION, config_version: 0 };
    let packet = QuorumPacket::with_data(kind, Zxid::epoch_start(1).raw(), info.encode());
    let message = side.incoming(packet).expect("a packet");
    assert_eq!(message, Some(Message::FollowerInfo { accepted_epoch: 1, observer }));
    assert_eq!(side.learner().map(|info| info.server_id), Some(3));
    side
}

#[test]
fn a_diff_is_each_txn_proposed_and_the_committed_ones_committed() {
    let mut side = introduced(false);
    let mut out = Vec::new();
    // The DIFF's zxid is where the log is committed once UPTODATE comes, as ZooKeeper's.
    let diff = Message::Diff {
        truncate_to: None,
        entries: vec![entry(1), entry(2)],
        committed: entry(1).zxid,
        established: entry(2).zxid,
    };
    side.outgoing(diff, &mut out).expect("sent");
    let z = |counter| (Zxid::epoch_start(2) + counter).raw();
    assert_eq!(
        packets(&out),
        vec![
            (PacketType::Diff, z(2)),
            (PacketType::Proposal, z(1)),
            (PacketType::Commit, z(1)),
            (PacketType::Proposal, z(2)),
        ]
    );
    let Outgoing::Packet(proposal) = &out[1] else { panic!("a packet") };
    assert_eq!(proposal.data.as_deref(), Some(&b"txn"[..]), "the txn, without zkrs's seal");
    // One core commit past two more proposals becomes a COMMIT for each.
    out.clear();
    side.outgoing(Message::Proposal(entry(3)), &mut out).expect("sent");
    side.outgoing(Message::Commit { zxid: entry(3).zxid }, &mut out).expect("sent");
    side.outgoing(Message::UpToDate { committed: entry(3).zxid }, &mut out).expect("sent");
    assert_eq!(
        packets(&out),
        vec![
            (PacketType::Proposal, z(3)),
            (PacketType::Commit, z(2)),
            (PacketType::Commit, z(3)),
            (PacketType::UpToDate, -1),
        ]
    );
}

#[test]
fn an_observer_gets_each_txn_as_an_inform_once_committed() {
    let mut side = introduced(true);
    let mut out = Vec::new();
    side.outgoing(Message::Proposal(entry(1)), &mut out).expect("sent");
    assert!(out.is_empty(), "nothing before the commit");
    side.outgoing(Message::Commit { zxid: entry(1).zxid }, &mut out).expect("sent");
    assert_eq!(packets(&out), vec![(PacketType::Inform, entry(1).zxid.raw())]);
}

#[test]
fn a_snap_leaves_room_for_the_snapshot_right_after_it() {
    let mut side = introduced(false);
    let mut out = Vec::new();
    let zxid = Zxid::epoch_start(2);
    side.outgoing(Message::Snap { zxid, entries: vec![entry(1)], committed: zxid }, &mut out)
        .expect("sent");
    assert_eq!(
        out[..2],
        [
            Outgoing::Packet(QuorumPacket::bare(PacketType::Snap, zxid.raw())),
            Outgoing::Snapshot(zxid)
        ]
    );
    assert_eq!(packets(&out[2..]), vec![(PacketType::Proposal, entry(1).zxid.raw())]);
}

#[test]
fn a_learners_packets_are_the_core_messages_they_mean() {
    let mut side = introduced(false);
    let ack_epoch = QuorumPacket::with_data(PacketType::AckEpoch, 7, packet::int_payload(-1));
    assert_eq!(
        side.incoming(ack_epoch).expect("a packet"),
        Some(Message::AckEpoch { current_epoch: None, last_zxid: Zxid::new(7) })
    );
    let ack = |zxid: Zxid| side_ack(zxid);
    assert_eq!(ack(Zxid::epoch_start(4)), Some(Message::AckNewLeader { epoch: 4 }));
    assert_eq!(
        ack(Zxid::epoch_start(4) + 2),
        Some(Message::Ack { zxid: Zxid::epoch_start(4) + 2 })
    );
    let ping = QuorumPacket::with_data(PacketType::Ping, 9, Bytes::from_static(&[0; 12]));
    assert_eq!(
        side.incoming(ping).expect("a packet"),
        Some(Message::Pong { echoed: Zxid::new(9) })
    );
    assert!(side.incoming(QuorumPacket::bare(PacketType::Diff, 0)).is_err());
    assert!(side.incoming(QuorumPacket::bare(PacketType::AckEpoch, 0)).is_err(), "no epoch");
}

fn side_ack(zxid: Zxid) -> Option<Message> {
    let mut side = introduced(false);
    side.incoming(QuorumPacket::bare(PacketType::Ack, zxid.raw())).expect("a packet")
}

#[test]
fn a_corrupt_entry_is_never_sent() {
    let mut side = introduced(false);
    let bad = Entry { zxid: Zxid::epoch_start(2) + 1, payload: Bytes::from_static(b"no seal") };
    assert!(side.outgoing(Message::Proposal(bad), &mut Vec::new()).is_err());
}
