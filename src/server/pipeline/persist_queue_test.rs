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
fn appends_asked_for_while_a_batch_is_written_form_the_next_batch() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(1)]));
    let first = queue.take_batch().expect("idle");
    assert_eq!(appended(&first), [Zxid::new(1)]);
    queue.push(entries(&[Zxid::new(2)]));
    queue.push(entries(&[Zxid::new(3), Zxid::new(4)]));
    assert!(queue.take_batch().is_none(), "one batch at a time");
    assert_eq!(queue.written().persisted, Some(Zxid::new(1)));
    let second = queue.take_batch().expect("idle again");
    assert_eq!(second.len(), 1, "consecutive appends are one write");
    assert_eq!(appended(&second), [Zxid::new(2), Zxid::new(3), Zxid::new(4)]);
    assert_eq!(queue.written().persisted, Some(Zxid::new(4)));
    assert!(queue.take_batch().is_none());
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
    let done = queue.written();
    assert!(done.released.is_empty(), "the epochs are not written yet");
    let _batch = queue.take_batch().expect("the epochs");
    let done = queue.written();
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
    assert_eq!(queue.written().persisted, None, "6 and 7 are no longer the log's");
    assert!(queue.rewriting(), "the truncation is not written yet");
    let _batch = queue.take_batch().expect("the truncation and the new entry");
    assert_eq!(queue.written().persisted, Some(Zxid::new(6)));
    assert!(!queue.rewriting());
}

#[test]
fn a_truncation_alone_reports_what_is_left() {
    let mut queue = PersistQueue::<&str>::new(Zxid::ZERO);
    queue.push(entries(&[Zxid::new(5), Zxid::new(6), Zxid::new(7)]));
    queue.push(Write::Truncate(Zxid::new(6)));
    let _batch = queue.take_batch();
    assert_eq!(queue.written().persisted, Some(Zxid::new(6)));
}

#[test]
fn messages_held_for_a_broken_connection_are_dropped() {
    let mut queue = PersistQueue::new(Zxid::ZERO);
    queue.push(Write::Epochs(Epochs { accepted: 1, current: 0 }));
    assert_eq!(queue.send_after_persist(2, "to 2"), None);
    assert_eq!(queue.send_after_persist(3, "to 3"), None);
    queue.forget(2);
    let _batch = queue.take_batch();
    assert_eq!(queue.written().released, [(3, "to 3")]);
}
