use super::*;
use crate::storage::{Epochs, LogEntry};

fn entries(zxids: &[Zxid]) -> Write {
    Write::Append(
        zxids.iter().map(|zxid| LogEntry { zxid: *zxid, value: Default::default() }).collect(),
    )
}

fn appended(batch: &[Write]) -> Vec<Zxid> {
    batch
        .iter()
        .flat_map(|write| match write {
            Write::Append(entries) => entries.iter().map(|entry| entry.zxid).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn appends_asked_for_together_form_one_write() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(1)]));
    let first = queue.take_batch().expect("waiting");
    assert_eq!(appended(&first), [Zxid::new(1)]);
    assert!(queue.take_batch().is_none(), "nothing waits");
    queue.push(entries(&[Zxid::new(2)]));
    queue.push(entries(&[Zxid::new(3), Zxid::new(4)]));
    let second = queue.take_batch().expect("handed over while the first is written");
    assert_eq!(second.len(), 1, "consecutive appends are one write");
    assert_eq!(appended(&second), [Zxid::new(2), Zxid::new(3), Zxid::new(4)]);
    assert_eq!(queue.written(1).persisted, Some(Zxid::new(1)));
    assert!(queue.is_writing());
    assert_eq!(queue.written(1).persisted, Some(Zxid::new(4)));
    assert!(queue.is_idle());
}

#[test]
fn one_completion_may_cover_several_batches() {
    let mut queue = PersistQueue::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(1)]));
    let _first = queue.take_batch();
    queue.push(entries(&[Zxid::new(2)]));
    assert_eq!(queue.send_after_persist(2, "after 2"), None);
    let _second = queue.take_batch();
    queue.push(entries(&[Zxid::new(3)]));
    assert_eq!(queue.send_after_persist(2, "after 3"), None);
    let _third = queue.take_batch();
    let done = queue.written(2);
    assert_eq!(done.persisted, Some(Zxid::new(2)));
    assert_eq!(done.released, [(2, "after 2")]);
    let done = queue.written(1);
    assert_eq!(done.persisted, Some(Zxid::new(3)));
    assert_eq!(done.released, [(2, "after 3")]);
}

#[test]
fn no_more_than_the_limit_of_batches_is_in_flight() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    for zxid in 1..=BATCHES_IN_FLIGHT as i64 {
        queue.push(entries(&[Zxid::new(zxid)]));
        assert!(queue.take_batch().is_some());
    }
    queue.push(entries(&[Zxid::new(100)]));
    assert!(queue.take_batch().is_none(), "the storage thread has its fill");
    let _done = queue.written(1);
    assert_eq!(appended(&queue.take_batch().expect("room again")), [Zxid::new(100)]);
}

#[test]
fn a_message_after_a_persist_waits_for_every_write_before_it() {
    let mut queue = PersistQueue::new(Zxid::ZERO);
    assert_eq!(queue.send_after_persist(2, "nothing pending"), Some("nothing pending"));
    queue.push(entries(&[Zxid::new(1)]));
    let _batch = queue.take_batch();
    queue.push(Write::Epochs(Epochs { accepted: 2, current: 1 }));
    assert_eq!(queue.send_after_persist(2, "ack epoch"), None);
    assert_eq!(queue.send(2, "after it"), None, "never overtakes a held message");
    assert_eq!(queue.send(3, "another member"), Some("another member"));
    let _batch = queue.take_batch().expect("the epochs");
    let done = queue.written(1);
    assert!(done.released.is_empty(), "the epochs are not written yet");
    let done = queue.written(1);
    assert_eq!(done.released, [(2, "ack epoch"), (2, "after it")]);
    assert_eq!(queue.send(2, "free again"), Some("free again"));
}

#[test]
fn an_append_overtaken_by_a_truncation_is_not_reported() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(5), Zxid::new(6), Zxid::new(7)]));
    let _batch = queue.take_batch();
    queue.push(Write::Truncate(Zxid::new(5)));
    queue.push(entries(&[Zxid::new(6)]));
    assert!(queue.rewriting());
    let _batch = queue.take_batch().expect("the truncation and the new entry");
    assert_eq!(queue.written(1).persisted, None, "6 and 7 are no longer the log's");
    assert!(queue.rewriting(), "the truncation is not written yet");
    assert_eq!(queue.written(1).persisted, Some(Zxid::new(6)));
    assert!(!queue.rewriting());
}

#[test]
fn a_truncation_alone_reports_what_is_left() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(5), Zxid::new(6), Zxid::new(7)]));
    queue.push(Write::Truncate(Zxid::new(6)));
    let _batch = queue.take_batch();
    assert_eq!(queue.written(1).persisted, Some(Zxid::new(6)));
}

#[test]
fn messages_held_for_a_broken_connection_are_dropped() {
    let mut queue = PersistQueue::new(Zxid::ZERO);
    queue.push(Write::Epochs(Epochs { accepted: 1, current: 0 }));
    assert_eq!(queue.send_after_persist(2, "to 2"), None);
    assert_eq!(queue.send_after_persist(3, "to 3"), None);
    queue.forget(2);
    let _batch = queue.take_batch();
    assert_eq!(queue.written(1).released, [(3, "to 3")]);
}
