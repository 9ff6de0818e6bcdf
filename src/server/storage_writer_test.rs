use super::*;
use crate::storage::memory::MemoryStorage;
use crate::storage::record::seal;
use bytes::Bytes;

fn entry(zxid: Zxid, payload: &'static [u8]) -> LogEntry {
    LogEntry { zxid, value: seal(payload) }
}

/// Writes `batch` on the storage thread and waits for its outcome.
fn write_one(storage: Arc<MemoryStorage>, batch: Vec<Write>) -> Written {
    let (writer, mut done) = StorageWriter::spawn(storage, 1000, |_, _| {}).expect("thread");
    writer.write(batch).expect("thread running");
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
