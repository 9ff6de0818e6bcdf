//! Engine tests: feed one input, check the exact actions out.

use bytes::Bytes;

use crate::storage::Epochs;
use crate::txn::Zxid;
use crate::zab::message::{Message, Notification, PeerState, Vote};
use crate::zab::{Action, Entry, History, Input, Restored, Role, SyncsInFlight, Zab, ZabConfig};

fn config(id: u64, voters: &[u64]) -> ZabConfig {
    ZabConfig {
        id,
        voters: voters.iter().copied().collect(),
        observers: Default::default(),
        groups: None,
        init_limit_ticks: 10,
        sync_limit_ticks: 5,
        finalize_ticks: 0,
        window_entries: 100,
    }
}

fn entry(epoch: u32, counter: u32) -> Entry {
    Entry {
        zxid: Zxid::epoch_start(epoch) + counter,
        payload: Bytes::from(format!("{epoch}.{counter}")),
    }
}

fn restored(entries: Vec<Entry>, epochs: Epochs) -> Restored {
    Restored { epochs, history: History::new(Zxid::ZERO, Vec::new(), entries), applied: Zxid::ZERO }
}

fn messages_to(actions: &[Action], peer: u64) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send { to, message } | Action::SendAfterPersist { to, message }
                if *to == peer =>
            {
                Some(message.clone())
            }
            _ => None,
        })
        .collect()
}

/// A DIFF for a learner that has all the leader's log.
fn empty_diff(committed: Zxid, established: Zxid) -> Message {
    Message::Diff { truncate_to: None, entries: vec![], committed, established }
}

/// Members 3 and 1 tell `zab` they settled on 1 as leader with `vote`, in `round`.
fn settle_on_leader_1(zab: &mut Zab, vote: Vote, round: u64) {
    for (from, state) in [(3, PeerState::Following), (1, PeerState::Leading)] {
        let n = Notification { round, vote, state };
        zab.step(Input::Message { from, message: Message::Notification(n) });
    }
}

#[test]
fn a_single_member_leads_and_commits_what_it_persists() {
    let (mut zab, actions) =
        Zab::new(config(1, &[1]), restored(vec![entry(1, 1)], Epochs::default()));
    assert_eq!(actions, vec![Action::Role(Role::Looking)]);
    let actions = zab.step(Input::Tick);
    assert_eq!(
        actions,
        vec![
            Action::PersistEpochs(Epochs { accepted: 1, current: 0 }),
            Action::PersistEpochs(Epochs { accepted: 1, current: 1 }),
            Action::Apply(vec![entry(1, 1)]),
            Action::Role(Role::Leading { epoch: 1, last_zxid: Zxid::epoch_start(1) + 1 }),
        ]
    );
    let actions = zab.step(Input::Propose(entry(1, 2)));
    assert_eq!(actions, vec![Action::Append(vec![entry(1, 2)])]);
    let actions = zab.step(Input::Persisted { zxid: Zxid::epoch_start(1) + 2 });
    assert_eq!(actions, vec![Action::Apply(vec![entry(1, 2)])]);
}

/// Member 1 of three, elected with 2's vote and leading, before anyone joined.
fn leader_of_three(entries: Vec<Entry>) -> Zab {
    let epochs = Epochs { accepted: 1, current: 1 };
    let (mut zab, _) = Zab::new(config(1, &[1, 2, 3]), restored(entries, epochs));
    let vote = Vote { epoch: 1, zxid: zab.last_zxid(), leader: 1 };
    let n = Notification { round: 1, vote, state: PeerState::Looking };
    zab.step(Input::Message { from: 2, message: Message::Notification(n) });
    zab.step(Input::Tick);
    zab
}

#[test]
fn a_leader_steps_down_for_a_voter_that_accepted_a_later_epoch() {
    let mut zab = leader_of_three(vec![entry(1, 1)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    zab.step(Input::Message { from: 2, message: info });
    assert_eq!(zab.role(), Role::Looking, "epoch 2 chosen, not yet established");
    // Member 3 once proposed epoch 5 itself and so refuses epoch 2: electing again
    // chooses an epoch it accepts.
    let info = Message::FollowerInfo { accepted_epoch: 5, observer: false };
    let actions = zab.step(Input::Message { from: 3, message: info });
    assert!(actions.contains(&Action::Role(Role::Looking)), "{actions:?}");
    assert!(!messages_to(&actions, 3).contains(&Message::LeaderInfo { epoch: 2 }));
}

#[test]
fn a_leader_establishes_its_epoch_with_one_follower() {
    let mut zab = leader_of_three(vec![entry(1, 1), entry(1, 2)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    let actions = zab.step(Input::Message { from: 2, message: info });
    assert_eq!(
        actions,
        vec![
            Action::PersistEpochs(Epochs { accepted: 2, current: 1 }),
            Action::SendAfterPersist { to: 2, message: Message::LeaderInfo { epoch: 2 } },
        ]
    );
    // The follower is simply behind: it gets 1.2, with nothing to truncate.
    let ack = Message::AckEpoch { current_epoch: Some(1), last_zxid: Zxid::epoch_start(1) + 1 };
    let actions = zab.step(Input::Message { from: 2, message: ack });
    assert_eq!(actions[0], Action::PersistEpochs(Epochs { accepted: 2, current: 2 }));
    assert_eq!(
        messages_to(&actions, 2),
        vec![
            Message::Diff {
                truncate_to: None,
                entries: vec![entry(1, 2)],
                committed: Zxid::ZERO,
                established: Zxid::epoch_start(1) + 2,
            },
            Message::NewLeader { epoch: 2 },
        ]
    );
    assert_eq!(zab.syncs_in_flight(), Some(SyncsInFlight { snapshot: 0, diff: 1 }));
    let actions = zab.step(Input::Message { from: 2, message: Message::AckNewLeader { epoch: 2 } });
    assert_eq!(zab.syncs_in_flight(), Some(SyncsInFlight::default()), "NEWLEADER acknowledged");
    assert_eq!(
        actions,
        vec![
            Action::Apply(vec![entry(1, 1), entry(1, 2)]),
            Action::Role(Role::Leading { epoch: 2, last_zxid: Zxid::epoch_start(1) + 2 }),
            Action::Send {
                to: 2,
                message: Message::UpToDate { committed: Zxid::epoch_start(1) + 2 }
            },
        ]
    );
    // Broadcast: the follower hears of a commit before the leader answers its clients.
    let actions = zab.step(Input::Propose(entry(2, 1)));
    assert_eq!(
        actions,
        vec![
            Action::Append(vec![entry(2, 1)]),
            Action::Send { to: 2, message: Message::Proposal(entry(2, 1)) },
        ]
    );
    assert_eq!(zab.step(Input::Persisted { zxid: Zxid::epoch_start(2) + 1 }), vec![]);
    let ack = Message::Ack { zxid: Zxid::epoch_start(2) + 1 };
    assert_eq!(
        zab.step(Input::Message { from: 2, message: ack }),
        vec![
            Action::Send { to: 2, message: Message::Commit { zxid: Zxid::epoch_start(2) + 1 } },
            Action::Apply(vec![entry(2, 1)]),
        ]
    );
}

#[test]
fn a_learner_whose_last_epoch_the_leader_lacks_gets_a_snapshot() {
    let mut zab = leader_of_three(vec![entry(1, 1), entry(1, 2)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    zab.step(Input::Message { from: 2, message: info });
    // Its log ends in an epoch that never committed: whether it holds 1.1 cannot be told
    // from its last zxid, so no DIFF or TRUNC is safe.
    let ack = Message::AckEpoch { current_epoch: Some(0), last_zxid: Zxid::new(5) };
    let actions = zab.step(Input::Message { from: 2, message: ack });
    let sent = messages_to(&actions, 2);
    let Some(Message::Snap { zxid, entries, .. }) = sent.first() else {
        panic!("a snapshot first: {sent:?}")
    };
    let last = entries.last().map_or(*zxid, |entry| entry.zxid);
    assert_eq!(last, Zxid::epoch_start(1) + 2, "the snapshot and entries reach the leader's last");
    assert!(matches!(sent.get(1), Some(Message::NewLeader { .. })), "{sent:?}");
    assert_eq!(zab.syncs_in_flight(), Some(SyncsInFlight { snapshot: 1, diff: 0 }));
    zab.step(Input::Disconnected { peer: 2 });
    assert_eq!(zab.syncs_in_flight(), Some(SyncsInFlight::default()));
}

#[test]
fn a_learner_ahead_of_the_leader_sends_it_back_to_election() {
    let mut zab = leader_of_three(vec![entry(1, 1)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    zab.step(Input::Message { from: 2, message: info });
    let ack = Message::AckEpoch { current_epoch: Some(1), last_zxid: Zxid::epoch_start(1) + 5 };
    let actions = zab.step(Input::Message { from: 2, message: ack });
    assert!(actions.contains(&Action::Role(Role::Looking)), "{actions:?}");
}

#[test]
fn a_follower_drops_a_divergent_tail_and_acks_newleader_only_once_durable() {
    let epochs = Epochs { accepted: 2, current: 2 };
    let mine = vec![entry(1, 1), entry(2, 1), entry(2, 2)];
    let (mut zab, _) = Zab::new(config(2, &[1, 2, 3]), restored(mine, epochs));
    // Members 1 and 3 settled on 1 as leader.
    let vote = Vote { epoch: 3, zxid: Zxid::epoch_start(3) + 1, leader: 1 };
    settle_on_leader_1(&mut zab, vote, 7);
    let leader_info = Message::LeaderInfo { epoch: 4 };
    let actions = zab.step(Input::Message { from: 1, message: leader_info });
    assert_eq!(actions[0], Action::PersistEpochs(Epochs { accepted: 4, current: 2 }));
    let diff = Message::Diff {
        truncate_to: Some(Zxid::epoch_start(1) + 1),
        entries: vec![entry(3, 1)],
        committed: Zxid::epoch_start(1) + 1,
        established: Zxid::epoch_start(1) + 1,
    };
    let actions = zab.step(Input::Message { from: 1, message: diff });
    assert_eq!(
        actions,
        vec![
            Action::Truncate(Zxid::epoch_start(1) + 1),
            Action::Append(vec![entry(3, 1)]),
            Action::Apply(vec![entry(1, 1)]),
        ]
    );
    let new_leader = Message::NewLeader { epoch: 4 };
    assert_eq!(zab.step(Input::Message { from: 1, message: new_leader }), vec![]);
    let actions = zab.step(Input::Persisted { zxid: Zxid::epoch_start(3) + 1 });
    assert_eq!(
        actions,
        vec![
            Action::PersistEpochs(Epochs { accepted: 4, current: 4 }),
            Action::SendAfterPersist { to: 1, message: Message::AckNewLeader { epoch: 4 } },
        ]
    );
    let actions = zab.step(Input::Message {
        from: 1,
        message: Message::UpToDate { committed: Zxid::epoch_start(3) + 1 },
    });
    // What the leader committed is applied before the member serves clients.
    assert_eq!(
        actions,
        vec![
            Action::Apply(vec![entry(3, 1)]),
            Action::Role(Role::Following { leader: 1, epoch: 4 }),
        ]
    );
}

#[test]
fn a_follower_applies_a_commit_before_its_own_log_is_durable() {
    let epochs = Epochs { accepted: 2, current: 2 };
    let (mut zab, _) = Zab::new(config(2, &[1, 2, 3]), restored(vec![entry(2, 1)], epochs));
    let vote = Vote { epoch: 2, zxid: Zxid::epoch_start(2) + 1, leader: 1 };
    settle_on_leader_1(&mut zab, vote, 3);
    let from_leader = [
        Message::LeaderInfo { epoch: 3 },
        empty_diff(Zxid::epoch_start(2) + 1, Zxid::epoch_start(2) + 1),
        Message::NewLeader { epoch: 3 },
        Message::UpToDate { committed: Zxid::epoch_start(2) + 1 },
    ];
    for message in from_leader {
        zab.step(Input::Message { from: 1, message });
    }
    let proposal = Message::Proposal(entry(3, 1));
    assert_eq!(
        zab.step(Input::Message { from: 1, message: proposal }),
        vec![Action::Append(vec![entry(3, 1)])]
    );
    // Members 1 and 3 made it durable and the leader committed it: it is applied here
    // while this member's own write is still on its way to the disk.
    let commit = Message::Commit { zxid: Zxid::epoch_start(3) + 1 };
    assert_eq!(
        zab.step(Input::Message { from: 1, message: commit }),
        vec![Action::Apply(vec![entry(3, 1)])]
    );
    let ack = Message::Ack { zxid: Zxid::epoch_start(3) + 1 };
    assert_eq!(
        zab.step(Input::Persisted { zxid: Zxid::epoch_start(3) + 1 }),
        vec![Action::Send { to: 1, message: ack }]
    );
}

#[test]
fn a_follower_applies_its_own_entries_the_new_leader_established_before_it_serves() {
    // Member 2 logged 1.2 and 1.3 from the old leader, which died before committing
    // them. The new leader has them too: the DIFF is empty and no COMMIT names them, but
    // its epoch commits them, and a client must see them once this member serves.
    let epochs = Epochs { accepted: 1, current: 1 };
    let mine = vec![entry(1, 1), entry(1, 2), entry(1, 3)];
    let history = History::new(Zxid::ZERO, vec![], mine);
    let applied = Zxid::epoch_start(1) + 1;
    let (mut zab, _) = Zab::new(config(2, &[1, 2, 3]), Restored { epochs, history, applied });
    let vote = Vote { epoch: 1, zxid: Zxid::epoch_start(1) + 3, leader: 1 };
    settle_on_leader_1(&mut zab, vote, 2);
    let from_leader = [
        Message::LeaderInfo { epoch: 2 },
        empty_diff(applied, Zxid::epoch_start(1) + 3),
        Message::NewLeader { epoch: 2 },
    ];
    for message in from_leader {
        let actions = zab.step(Input::Message { from: 1, message });
        assert!(!actions.iter().any(|a| matches!(a, Action::Apply(_))), "{actions:?}");
    }
    zab.step(Input::Persisted { zxid: Zxid::epoch_start(1) + 3 });
    let up_to_date = Message::UpToDate { committed: applied };
    assert_eq!(
        zab.step(Input::Message { from: 1, message: up_to_date }),
        vec![
            Action::Apply(vec![entry(1, 2), entry(1, 3)]),
            Action::Role(Role::Following { leader: 1, epoch: 2 }),
        ]
    );
}

#[test]
fn a_leader_told_to_step_down_starts_a_new_election() {
    let (mut zab, _) = Zab::new(config(1, &[1]), restored(vec![entry(1, 1)], Epochs::default()));
    assert_eq!(zab.role(), Role::Looking);
    zab.step(Input::Tick);
    assert_eq!(zab.role(), Role::Leading { epoch: 1, last_zxid: Zxid::epoch_start(1) + 1 });
    assert_eq!(zab.step(Input::StepDown), vec![Action::Role(Role::Looking)]);
    assert_eq!(zab.role(), Role::Looking);
    assert!(zab.step(Input::StepDown).is_empty(), "ignored unless leading");
    // The next election establishes a later epoch, whose counter starts again.
    let leading = Action::Role(Role::Leading { epoch: 2, last_zxid: Zxid::epoch_start(1) + 1 });
    assert!(zab.step(Input::Tick).contains(&leading));
}

/// Member 2 of three, synced with leader 1 in epoch 3 and serving; it has applied
/// `applied` (a snapshot's zxid in epoch 2).
fn follower_in_epoch_3(applied: Zxid) -> Zab {
    let epochs = Epochs { accepted: 2, current: 2 };
    let history = History::new(applied, vec![applied], Vec::new());
    let (mut zab, _) = Zab::new(config(2, &[1, 2, 3]), Restored { epochs, history, applied });
    let vote = Vote { epoch: 2, zxid: applied, leader: 1 };
    settle_on_leader_1(&mut zab, vote, 3);
    zab.step(Input::Message { from: 1, message: Message::LeaderInfo { epoch: 3 } });
    zab
}

fn drops_the_leader(actions: &[Action]) -> bool {
    actions.contains(&Action::DropLink { peer: 1 })
        && actions.contains(&Action::Role(Role::Looking))
}

#[test]
fn a_follower_whose_leader_follows_it_elects_again() {
    let mut zab = follower_in_epoch_3(Zxid::epoch_start(2) + 5);
    let info = Message::FollowerInfo { accepted_epoch: 2, observer: false };
    let actions = zab.step(Input::Message { from: 1, message: info });
    assert!(actions.contains(&Action::Role(Role::Looking)), "{actions:?}");
    assert_eq!(zab.role(), Role::Looking);
}

#[test]
fn a_diff_that_truncates_applied_entries_drops_the_link_and_keeps_the_state() {
    let applied = Zxid::epoch_start(2) + 5;
    let mut zab = follower_in_epoch_3(applied);
    let diff = Message::Diff {
        truncate_to: Some(Zxid::epoch_start(2) + 1),
        entries: vec![entry(3, 1)],
        committed: Zxid::epoch_start(3) + 1,
        established: Zxid::epoch_start(2) + 1,
    };
    let actions = zab.step(Input::Message { from: 1, message: diff });
    assert!(drops_the_leader(&actions), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Truncate(_) | Action::Append(_))));
    assert_eq!((zab.last_zxid(), zab.applied_zxid()), (applied, applied));
}

#[test]
fn a_snapshot_older_than_the_applied_state_is_not_installed_and_its_entries_are() {
    // The leader restarted with its whole log unapplied: its snapshot is at 2.3, while
    // this member applied up to 2.5.
    let applied = Zxid::epoch_start(2) + 5;
    let mut zab = follower_in_epoch_3(applied);
    let snap = Message::Snap {
        zxid: Zxid::epoch_start(2) + 3,
        entries: vec![entry(2, 4), entry(2, 5), entry(2, 6)],
        committed: Zxid::epoch_start(2) + 3,
    };
    let actions = zab.step(Input::Message { from: 1, message: snap });
    assert_eq!(actions, vec![Action::Append(vec![entry(2, 6)])]);
    assert_eq!((zab.last_zxid(), zab.applied_zxid()), (Zxid::epoch_start(2) + 6, applied));
}

#[test]
fn an_older_snapshot_whose_entries_skip_the_applied_state_drops_the_link() {
    let applied = Zxid::epoch_start(2) + 5;
    let mut zab = follower_in_epoch_3(applied);
    let snap = Message::Snap {
        zxid: Zxid::epoch_start(2) + 3,
        entries: vec![entry(2, 4)],
        committed: Zxid::epoch_start(2) + 3,
    };
    let actions = zab.step(Input::Message { from: 1, message: snap });
    assert!(drops_the_leader(&actions), "{actions:?}");
    assert_eq!((zab.last_zxid(), zab.applied_zxid()), (applied, applied));
}

#[test]
fn entries_whose_zxids_do_not_increase_drop_the_link_and_are_not_logged() {
    let applied = Zxid::epoch_start(2) + 1;
    let mut zab = follower_in_epoch_3(applied);
    let backwards = Message::Diff {
        truncate_to: None,
        entries: vec![entry(3, 2), entry(3, 1)],
        committed: applied,
        established: applied,
    };
    let actions = zab.step(Input::Message { from: 1, message: backwards });
    assert!(drops_the_leader(&actions), "{actions:?}");
    assert_eq!(zab.last_zxid(), applied);

    let mut zab = follower_in_epoch_3(applied);
    let from_leader = [
        empty_diff(applied, applied),
        Message::NewLeader { epoch: 3 },
        Message::UpToDate { committed: applied },
        Message::Proposal(entry(3, 1)),
    ];
    for message in from_leader {
        zab.step(Input::Message { from: 1, message });
    }
    let actions = zab.step(Input::Message { from: 1, message: Message::Proposal(entry(3, 1)) });
    assert!(drops_the_leader(&actions), "{actions:?}");
    assert_eq!(zab.last_zxid(), Zxid::epoch_start(3) + 1);
}

#[test]
fn a_sync_is_answered_after_the_writes_proposed_before_it() {
    let (mut zab, _) = Zab::new(config(1, &[1]), restored(vec![], Epochs::default()));
    zab.step(Input::Tick);
    assert_eq!(zab.step(Input::Propose(entry(1, 1))), vec![Action::Append(vec![entry(1, 1)])]);
    assert!(zab.step(Input::Sync { id: 7 }).is_empty(), "the write before it is not committed");
    assert_eq!(
        zab.step(Input::Persisted { zxid: Zxid::epoch_start(1) + 1 }),
        vec![Action::Apply(vec![entry(1, 1)]), Action::SyncDone { id: 7 }]
    );
    assert_eq!(zab.step(Input::Sync { id: 8 }), vec![Action::SyncDone { id: 8 }]);
}

#[test]
fn a_read_index_round_needs_a_quorum_but_not_the_writes_proposed_before_it() {
    let (mut zab, _) = Zab::new(config(1, &[1]), restored(vec![], Epochs::default()));
    zab.step(Input::Tick);
    zab.step(Input::Propose(entry(1, 1)));
    assert_eq!(
        zab.step(Input::ReadIndex { id: 7 }),
        vec![Action::SyncDone { id: 7 }],
        "nothing was committed before it that is not applied"
    );

    let mut zab = leading_epoch_2_with_follower_2();
    zab.step(Input::Propose(entry(2, 1)));
    let actions = zab.step(Input::ReadIndex { id: 8 });
    assert!(!actions.contains(&Action::SyncDone { id: 8 }), "the leadership is not confirmed");
    let pong = Input::Message { from: 2, message: Message::Pong { echoed: Zxid::ZERO } };
    assert!(zab.step(pong).contains(&Action::SyncDone { id: 8 }), "confirmed, 2.1 uncommitted");
}

/// Member 1 of three, leading epoch 2 with member 2 synced (both hold 1.1).
fn leading_epoch_2_with_follower_2() -> Zab {
    let mut zab = leader_of_three(vec![entry(1, 1)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    zab.step(Input::Message { from: 2, message: info });
    let ack = Message::AckEpoch { current_epoch: Some(1), last_zxid: Zxid::epoch_start(1) + 1 };
    zab.step(Input::Message { from: 2, message: ack });
    zab.step(Input::Persisted { zxid: Zxid::epoch_start(1) + 1 });
    zab.step(Input::Message { from: 2, message: Message::AckNewLeader { epoch: 2 } });
    zab
}

#[test]
fn a_sync_is_confirmed_by_the_answer_to_its_own_ping_not_an_earlier_one() {
    let mut zab = leading_epoch_2_with_follower_2();
    let pings = |actions: &[Action]| {
        messages_to(actions, 2).iter().filter(|m| matches!(m, Message::Ping { .. })).count()
    };
    assert_eq!(pings(&zab.step(Input::Tick)), 1, "the tick's ping");
    assert_eq!(pings(&zab.step(Input::Sync { id: 9 })), 1, "the sync's own ping");
    let pong = || Input::Message { from: 2, message: Message::Pong { echoed: Zxid::ZERO } };
    let done = Action::SyncDone { id: 9 };
    assert!(!zab.step(pong()).contains(&done), "an answer to the tick's ping confirms nothing");
    assert!(zab.step(pong()).contains(&done), "the answer to the sync's ping confirms it");
}

#[test]
fn sync_replies_confirm_a_learners_syncs_in_the_order_it_sent_them() {
    let applied = Zxid::epoch_start(2) + 5;
    let mut zab = follower_in_epoch_3(applied);
    let from_leader = [
        empty_diff(applied, applied),
        Message::NewLeader { epoch: 3 },
        Message::UpToDate { committed: applied },
    ];
    for message in from_leader {
        zab.step(Input::Message { from: 1, message });
    }
    assert_eq!(zab.role(), Role::Following { leader: 1, epoch: 3 });
    for id in [1, 2] {
        let actions = zab.step(Input::Sync { id });
        assert_eq!(messages_to(&actions, 1), vec![Message::SyncRequest { id }]);
    }
    zab.step(Input::Message { from: 1, message: Message::Proposal(entry(3, 1)) });
    zab.step(Input::Message {
        from: 1,
        message: Message::Commit { zxid: Zxid::epoch_start(3) + 1 },
    });
    let reply = || Input::Message { from: 1, message: Message::SyncReply };
    assert_eq!(zab.step(reply()), vec![Action::SyncDone { id: 1 }]);
    assert_eq!(zab.step(reply()), vec![Action::SyncDone { id: 2 }]);
    assert_eq!(zab.step(reply()), vec![], "a reply with no sync waiting answers nothing");
}

#[test]
fn a_learners_sync_is_answered_after_the_commit_of_what_was_proposed_before_it() {
    let mut zab = leading_epoch_2_with_follower_2();
    zab.step(Input::Propose(entry(2, 1)));
    zab.step(Input::Message { from: 2, message: Message::SyncRequest { id: 5 } });
    let pong = Input::Message { from: 2, message: Message::Pong { echoed: Zxid::ZERO } };
    assert_eq!(messages_to(&zab.step(pong), 2), vec![], "confirmed, but 2.1 is not committed");
    zab.step(Input::Persisted { zxid: Zxid::epoch_start(2) + 1 });
    let acked =
        Input::Message { from: 2, message: Message::Ack { zxid: Zxid::epoch_start(2) + 1 } };
    assert_eq!(
        messages_to(&zab.step(acked), 2),
        vec![Message::Commit { zxid: Zxid::epoch_start(2) + 1 }, Message::SyncReply]
    );
}

#[test]
fn an_epoch_accepted_before_is_acknowledged_as_zookeepers_minus_one_and_not_counted() {
    // The follower's side: it had accepted epoch 3 already.
    let epochs = Epochs { accepted: 3, current: 2 };
    let (mut follower, _) = Zab::new(config(2, &[1, 2, 3]), restored(vec![], epochs));
    let vote = Vote { epoch: 2, zxid: Zxid::ZERO, leader: 1 };
    settle_on_leader_1(&mut follower, vote, 3);
    let actions =
        follower.step(Input::Message { from: 1, message: Message::LeaderInfo { epoch: 3 } });
    assert_eq!(
        messages_to(&actions, 1),
        vec![Message::AckEpoch { current_epoch: None, last_zxid: Zxid::ZERO }]
    );
    // The leader's side: such an acknowledgement does not make a quorum for the epoch.
    let mut leader = leader_of_three(vec![entry(1, 1)]);
    let info = Message::FollowerInfo { accepted_epoch: 1, observer: false };
    leader.step(Input::Message { from: 2, message: info });
    let ack = Message::AckEpoch { current_epoch: None, last_zxid: Zxid::epoch_start(1) + 1 };
    assert_eq!(leader.step(Input::Message { from: 2, message: ack }), vec![]);
}
