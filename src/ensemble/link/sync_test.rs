//! A leader's and a learner's replication cores synchronising through the ZooKeeper
//! packets that carry their messages, each end translating as a quorum connection's
//! [`QuorumEnd`] does: what one core says must mean the same to the other once
//! translated, including what the packets leave unsaid (UPTODATE names no commit point).

use std::collections::VecDeque;

use super::QuorumEnd;
use crate::ensemble::frame::PeerFrame;
use crate::storage::record::seal;
use crate::storage::Epochs;
use crate::txn::Zxid;
use crate::zab::{
    Action, Entry, History, Input, Message, Notification, PeerState, Restored, Role, ServerId,
    Vote, Zab, ZabConfig,
};

const LEADER: ServerId = 1;
const LEARNER: ServerId = 2;

fn config(id: ServerId) -> ZabConfig {
    ZabConfig {
        id,
        voters: [1, 2, 3].into_iter().collect(),
        observers: Default::default(),
        groups: None,
        init_limit_ticks: 10,
        sync_limit_ticks: 5,
        finalize_ticks: 0,
        window_entries: 100,
    }
}

fn entry(counter: u32) -> Entry {
    Entry { zxid: Zxid::epoch_start(1) + counter, payload: seal(b"txn") }
}

/// A member of epoch 1 that logged 1.1 to 1.3 and applied 1.1.
fn member(id: ServerId) -> Zab {
    let history = History::new(Zxid::ZERO, Vec::new(), vec![entry(1), entry(2), entry(3)]);
    let epochs = Epochs { accepted: 1, current: 1 };
    let applied = Zxid::epoch_start(1) + 1;
    Zab::new(config(id), Restored { epochs, history, applied }).0
}

/// What `message` from `sender`'s end is once `receiver`'s end has read its packets.
fn carry(sender: &mut QuorumEnd, receiver: &mut QuorumEnd, message: Message) -> Vec<Message> {
    let mut packets = Vec::new();
    sender.translate_out(PeerFrame::Zab(message), &mut packets, &mut None).expect("sent");
    let mut frames = Vec::new();
    for packet in packets {
        receiver.translate_in(packet, &mut frames).expect("read");
    }
    let message = |frame| match frame {
        PeerFrame::Zab(message) => message,
        frame => panic!("a core message, not {frame:?}"),
    };
    frames.into_iter().map(message).collect()
}

/// Feeds `input` to `zab`, then reports every write durable at once (as a shell does once
/// its disk has them), and returns every action with the messages it sends.
fn step(zab: &mut Zab, input: Input, actions: &mut Vec<Action>) -> Vec<Message> {
    let mut taken = zab.step(input);
    if taken.iter().any(|action| matches!(action, Action::Append(_) | Action::PersistEpochs(_))) {
        let zxid = zab.last_zxid();
        taken.extend(zab.step(Input::Persisted { zxid }));
    }
    let sent = taken
        .iter()
        .filter_map(|action| match action {
            Action::Send { message, .. } | Action::SendAfterPersist { message, .. } => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    actions.extend(taken);
    sent
}

#[test]
fn a_learner_serves_only_once_it_applied_its_own_entries_the_new_epoch_commits() {
    // The leader of epoch 1 (member 3) died with 1.2 and 1.3 logged on members 1 and 2
    // and committed nowhere. Member 1 leads epoch 2 and commits them; member 2 holds
    // them already, so the DIFF it gets is empty and no COMMIT names them.
    let (mut leader, mut learner) = (member(LEADER), member(LEARNER));
    let vote = Vote { epoch: 1, zxid: Zxid::epoch_start(1) + 3, leader: LEADER };
    let looking = Notification { round: 2, vote, state: PeerState::Looking };
    leader.step(Input::Message { from: LEARNER, message: Message::Notification(looking) });
    leader.step(Input::Tick);
    let (mut leader_actions, mut learner_actions) = (Vec::new(), Vec::new());
    let mut to_leader = VecDeque::new();
    for (from, state) in [(3, PeerState::Following), (LEADER, PeerState::Leading)] {
        let n = Notification { round: 2, vote, state };
        let input = Input::Message { from, message: Message::Notification(n) };
        to_leader.extend(step(&mut learner, input, &mut learner_actions));
    }
    let mut leader_end = QuorumEnd::leader("server.1=h:1:2:participant\nversion=0");
    let mut learner_end = QuorumEnd::learner(LEARNER, 0);
    let mut to_learner = VecDeque::new();
    for _ in 0..20 {
        while let Some(message) = to_leader.pop_front() {
            for message in carry(&mut learner_end, &mut leader_end, message) {
                let input = Input::Message { from: LEARNER, message };
                to_learner.extend(step(&mut leader, input, &mut leader_actions));
            }
        }
        while let Some(message) = to_learner.pop_front() {
            for message in carry(&mut leader_end, &mut learner_end, message) {
                let input = Input::Message { from: LEADER, message };
                to_leader.extend(step(&mut learner, input, &mut learner_actions));
            }
        }
    }
    assert_eq!(leader.role(), Role::Leading { epoch: 2, last_zxid: Zxid::epoch_start(1) + 3 });
    let following = Action::Role(Role::Following { leader: LEADER, epoch: 2 });
    let serves_at = learner_actions.iter().position(|action| *action == following);
    let applied_at = learner_actions.iter().position(
        |action| matches!(action, Action::Apply(entries) if entries.last() == Some(&entry(3))),
    );
    let (Some(serves_at), Some(applied_at)) = (serves_at, applied_at) else {
        panic!("serves and applies 1.3: {learner_actions:?}");
    };
    assert!(applied_at < serves_at, "1.3 applied before serving: {learner_actions:?}");
    assert_eq!(learner.applied_zxid(), Zxid::epoch_start(1) + 3);
}
