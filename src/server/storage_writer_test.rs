use super::*;
use crate::storage::memory::MemoryStorage;
use crate::storage::record::seal;
use bytes::Bytes;

fn entry(zxid: Zxid, payload: &'static [u8]) -> LogEntry {
    LogEntry { zxid, value: seal(payload) }
}

/// Writes `batch` on the storage thread and waits for its outcome.
fn write_one(storage: Arc<MemoryStorage>, writes: Vec<Write>) -> Written {
    let (writer, mut done) = StorageWriter::spawn(storage, 1000, |_| {}).expect("thread");
    writer.write(Batch { writes, awaited: 0 }).expect("thread running");
    let outcome = done.blocking_recv().expect("an outcome");
    drop(done);
    writer.close();
    outcome
}

#[test]
fn writes_are_carried_out_in_the_order_asked() {
    let storage = Arc::new(MemoryStorage::default());
    let batch = vec![
        Write::Append(vec![
            entry(Zxid::new(1), b"a"),
            entry(Zxid::new(2), b"b"),
            entry(Zxid::new(3), b"c"),
        ]),
        Write::Truncate(Zxid::new(1)),
        Write::Epochs(Epochs { accepted: 2, current: 1 }),
        Write::Append(vec![entry(Zxid::new(5), b"e")]),
        Write::EpochEnds(vec![Zxid::new(1)]),
    ];
    write_one(storage.clone(), batch).expect("written");
    let mut logged = Vec::new();
    storage
        .read_log(Zxid::ZERO, &mut |entry| {
            logged.push(entry.zxid);
            true
        })
        .expect("readable");
    assert_eq!(logged, [Zxid::new(1), Zxid::new(5)]);
    assert_eq!(storage.epochs().expect("readable"), Epochs { accepted: 2, current: 1 });
    assert_eq!(storage.epoch_ends().expect("readable"), [Zxid::new(1)]);
}

#[test]
fn an_entry_whose_checksum_fails_is_never_logged() {
    let storage = Arc::new(MemoryStorage::default());
    let mut damaged = entry(Zxid::new(2), b"payload").value.to_vec();
    damaged[0] ^= 0x40;
    let batch = vec![Write::Append(vec![
        entry(Zxid::new(1), b"fine"),
        LogEntry { zxid: Zxid::new(2), value: Bytes::from(damaged) },
    ])];
    let outcome = write_one(storage.clone(), batch);
    assert!(matches!(outcome, Err(StorageError::Corrupt(_))), "{outcome:?}");
    assert_eq!(storage.last_logged_zxid(), Zxid::ZERO, "none of the batch is written");
}

#[test]
fn each_group_is_told_with_the_wait_of_each_of_its_batches() {
    let storage = Arc::new(MemoryStorage::default());
    let (told, heard) = std_mpsc::channel();
    let timed = move |synced: &Synced<'_>| {
        let waited: Vec<usize> = synced.waited.iter().map(|(entries, _)| *entries).collect();
        told.send((synced.appended, waited)).expect("the test listens");
    };
    let (writer, mut done) = StorageWriter::spawn(storage, 1000, timed).expect("thread");
    writer.write(Batch { writes: vec![appends(&[1, 2])], awaited: 0 }).expect("running");
    done.blocking_recv().expect("an outcome").expect("written");
    writer.write(Batch { writes: vec![Write::Truncate(Zxid::new(2))], awaited: 0 }).expect("up");
    done.blocking_recv().expect("an outcome").expect("written");
    drop(done);
    writer.close();
    assert_eq!(heard.try_iter().collect::<Vec<_>>(), [(2, vec![2]), (0, vec![0])]);
}

fn appends(zxids: &[i64]) -> Write {
    Write::Append(zxids.iter().map(|zxid| entry(Zxid::new(*zxid), b"x")).collect())
}

#[test]
fn batches_taken_together_are_written_as_one_append_per_run_of_appends() {
    let mut group = Group::default();
    group.add((Instant::now(), Batch { writes: vec![appends(&[1, 2])], awaited: 0 }));
    group.add((Instant::now(), Batch { writes: vec![appends(&[3])], awaited: 0 }));
    group.add((
        Instant::now(),
        Batch { writes: vec![Write::Truncate(Zxid::new(2)), appends(&[3])], awaited: 0 },
    ));
    assert_eq!(group.batches, 3);
    assert_eq!(group.appended, 4);
    let entries: Vec<usize> = group.handed.iter().map(|(entries, _)| *entries).collect();
    assert_eq!(entries, [2, 1, 1], "each batch's entries, for its wait");
    assert!(matches!(
        &group.writes[..],
        [Write::Append(first), Write::Truncate(_), Write::Append(last)]
            if first.len() == 3 && last.len() == 1
    ));
}

#[test]
fn a_batch_that_awaits_entries_takes_the_batches_that_bring_them() {
    let (send, incoming) = std_mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let mut group = Group::default();
    group.add((Instant::now(), Batch { writes: vec![appends(&[1])], awaited: 2 }));
    send.send((Instant::now(), Batch { writes: vec![appends(&[2])], awaited: 0 })).expect("open");
    send.send((Instant::now(), Batch { writes: vec![appends(&[3])], awaited: 0 })).expect("open");
    send.send((Instant::now(), Batch { writes: vec![appends(&[4])], awaited: 0 })).expect("open");
    assert!(group.wait_for_replies(&incoming, Duration::from_secs(60)));
    assert_eq!(group.batches, 3, "it stops once both awaited entries came");
    assert_eq!(group.awaited, 0);
    assert!(incoming.try_recv().is_ok(), "the fourth batch is left for the next group");
}

#[test]
fn the_wait_for_entries_ends_when_none_come() {
    let (_send, incoming) = std_mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let mut group = Group::default();
    group.add((Instant::now(), Batch { writes: vec![appends(&[1])], awaited: 1 }));
    let started = Instant::now();
    assert!(!group.wait_for_replies(&incoming, Duration::from_millis(5)));
    assert!(started.elapsed() >= Duration::from_millis(5));
    assert_eq!(group.batches, 1);
}

#[test]
fn the_wait_is_a_typical_sync_and_never_longer_than_the_cap() {
    let mut took = SyncTime::default();
    assert_eq!(took.typical(), Duration::ZERO, "nothing measured: no wait");
    for _ in 0..100 {
        took.record(Duration::from_micros(100));
    }
    assert_eq!(took.typical(), Duration::from_micros(100));
    for _ in 0..3 {
        took.record(Duration::from_millis(20));
    }
    assert_eq!(took.typical(), Duration::from_micros(100), "a few slow syncs do not stretch it");
    for _ in 0..100 {
        took.record(Duration::from_millis(20));
    }
    assert_eq!(took.typical(), MOST_HELD);
}

#[test]
fn appends_one_after_another_join_and_other_writes_stay_apart() {
    let mut writes = Vec::new();
    assert_eq!(push_joining(&mut writes, appends(&[1, 2])), 2);
    assert_eq!(push_joining(&mut writes, appends(&[3])), 1);
    assert_eq!(push_joining(&mut writes, Write::Truncate(Zxid::new(2))), 0);
    assert_eq!(push_joining(&mut writes, appends(&[3])), 1);
    let shape: Vec<usize> = writes
        .iter()
        .map(|write| if let Write::Append(entries) = write { entries.len() } else { 0 })
        .collect();
    assert_eq!(shape, [3, 0, 1]);
}

#[test]
fn waits_that_stop_paying_are_skipped_but_tried_again_now_and_then() {
    let mut payoff = Payoff::default();
    assert!(payoff.worth_waiting(), "waiting is tried first");
    for _ in 0..8 {
        payoff.record(false);
    }
    let tried = (0..=Payoff::RETRY_AFTER).filter(|_| payoff.worth_waiting()).count();
    assert_eq!(tried, 1, "one retry in {} chances", Payoff::RETRY_AFTER + 1);
    for _ in 0..8 {
        payoff.record(true);
    }
    assert!(payoff.worth_waiting() && payoff.worth_waiting(), "paying again");
}

#[test]
fn nothing_handed_over_after_a_failed_write_is_written() {
    let storage = Arc::new(MemoryStorage::default());
    let (writer, mut done) = StorageWriter::spawn(storage.clone(), 1000, |_| {}).expect("thread");
    let mut damaged = entry(Zxid::new(1), b"payload").value.to_vec();
    damaged[0] ^= 0x40;
    let failing = vec![Write::Append(vec![LogEntry { zxid: Zxid::new(1), value: damaged.into() }])];
    writer.write(Batch { writes: failing, awaited: 0 }).expect("thread running");
    assert!(done.blocking_recv().expect("an outcome").is_err());
    writer.write(Batch { writes: vec![appends(&[2])], awaited: 0 }).expect("still taken");
    drop(done);
    writer.close();
    assert_eq!(storage.last_logged_zxid(), Zxid::ZERO, "entry 2 would follow a gap");
}
