use bytes::Bytes;

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkrs-segments-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An entry of `len` bytes that says which zxid it belongs to.
fn entry(zxid: i64, len: usize) -> LogEntry {
    let mut value = format!("entry {zxid} ").into_bytes();
    value.resize(len.max(value.len()), (zxid % 251) as u8);
    LogEntry { zxid: Zxid::new(zxid), value: Bytes::from(value) }
}

fn read_all(log: &SegmentLog, after: i64) -> Vec<LogEntry> {
    let mut seen = Vec::new();
    log.read(Zxid::new(after), &mut |entry| {
        seen.push(entry);
        true
    })
    .expect("readable");
    seen
}

fn zxids(log: &SegmentLog, after: i64) -> Vec<i64> {
    read_all(log, after).iter().map(|entry| entry.zxid.raw()).collect()
}

fn segment_files(dir: &Path) -> Vec<Zxid> {
    let mut firsts: Vec<Zxid> = std::fs::read_dir(dir)
        .expect("log dir")
        .filter_map(|item| item.ok()?.file_name().to_str().and_then(parse_segment_name))
        .collect();
    firsts.sort();
    firsts
}

const MIB: usize = 1 << 20;

/// How many purged segments wait in `dir` for reuse.
fn recycled_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("log dir")
        .filter(|item| {
            let name = item.as_ref().expect("entry").file_name();
            name.to_str().is_some_and(|name| name.starts_with(RECYCLED_PREFIX))
        })
        .count()
}

/// 40 entries of 1 MiB, four to an append: three segments and part of a fourth.
fn write_megabytes(dir: &Path) -> Vec<LogEntry> {
    let log = SegmentLog::open(dir, false).expect("open");
    let entries: Vec<LogEntry> = (1..=40).map(|zxid| entry(zxid, MIB)).collect();
    for batch in entries.chunks(4) {
        log.append(batch).expect("append");
    }
    entries
}

#[test]
fn records_survive_reopening_across_segments_and_obey_truncate_and_purge() {
    let dir = scratch("segments");
    let written = write_megabytes(&dir);
    assert!(segment_files(&dir).len() >= 3, "{:?}", segment_files(&dir));
    let log = SegmentLog::open(&dir, false).expect("reopen");
    assert_eq!(log.last_logged_zxid(), Zxid::new(40));
    assert_eq!(read_all(&log, 0), written);
    assert_eq!(zxids(&log, 25), (26..=40).collect::<Vec<_>>());
    assert!(matches!(log.append(&[entry(40, 10)]), Err(StorageError::OutOfOrder { .. })));

    log.truncate_after(Zxid::new(30)).expect("truncate");
    assert_eq!(log.last_logged_zxid(), Zxid::new(30));
    assert_eq!(zxids(&log, 0), (1..=30).collect::<Vec<_>>());
    assert!(segment_files(&dir).iter().all(|&first| first <= Zxid::new(30)));
    log.append(&[entry(31, 100), entry(32, 100)]).expect("append after truncate");
    drop(log);

    let log = SegmentLog::open(&dir, false).expect("reopen");
    assert_eq!(zxids(&log, 28), [29, 30, 31, 32]);
    let before = segment_files(&dir);
    log.purge_through(Zxid::new(20)).expect("purge");
    let after = segment_files(&dir);
    assert!(after.len() < before.len(), "{before:?} then {after:?}");
    let kept = zxids(&log, 0);
    assert!(kept[0] <= 21, "records up to 20 only are purged: {kept:?}");
    assert_eq!(kept, (kept[0]..=32).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reader_from_the_middle_of_a_segment_sees_exactly_the_later_records() {
    let dir = scratch("index");
    let log = SegmentLog::open(&dir, false).expect("open");
    let entries: Vec<LogEntry> = (1..=10_000).map(|zxid| entry(zxid, 100)).collect();
    for batch in entries.chunks(100) {
        log.append(batch).expect("append");
    }
    for after in [0, 1, 4_999, 9_000, 9_999, 10_000] {
        assert_eq!(zxids(&log, after), (after + 1..=10_000).collect::<Vec<_>>(), "after {after}");
    }
    drop(log);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    assert_eq!(zxids(&log, 7_777), (7_778..=10_000).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The newest segment's file and where the record of `zxid` starts in it.
fn locate(dir: &Path, zxid: i64) -> (PathBuf, usize) {
    let newest = *segment_files(dir).last().expect("a segment");
    let path = dir.join(segment_name(newest));
    let bytes = std::fs::read(&path).expect("segment");
    let needle = format!("entry {zxid} ").into_bytes();
    let at = bytes.windows(needle.len()).position(|window| window == needle).expect("record");
    (path, at - RECORD_HEAD)
}

#[test]
fn a_torn_tail_is_cut_off_and_appends_go_on_over_it() {
    let dir = scratch("torn");
    {
        let log = SegmentLog::open(&dir, true).expect("open");
        log.append(&[entry(1, 50), entry(2, 50)]).expect("append");
        log.append(&[entry(3, 50)]).expect("append");
    }
    let (path, at) = locate(&dir, 3);
    let file = OpenOptions::new().write(true).open(&path).expect("segment");
    file.write_all_at(&[0xff; 5], (at + RECORD_HEAD + 45) as u64).expect("tear");
    drop(file);

    let log = SegmentLog::open(&dir, true).expect("reopens after a torn tail");
    assert_eq!(zxids(&log, 0), [1, 2]);
    assert_eq!(log.last_logged_zxid(), Zxid::new(2));
    let bytes = std::fs::read(&path).expect("segment");
    assert_eq!(bytes[at..at + RECORD_HEAD], END, "the torn record's header is zeroed");
    log.append(&[entry(3, 10)]).expect("append over the cut");
    drop(log);
    let log = SegmentLog::open(&dir, true).expect("reopen");
    assert_eq!(read_all(&log, 0), [entry(1, 50), entry(2, 50), entry(3, 10)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_whole_record_of_an_older_zxid_after_the_last_is_no_part_of_the_log() {
    let dir = scratch("stale");
    {
        let log = SegmentLog::open(&dir, false).expect("open");
        log.append(&[entry(10, 50), entry(11, 50)]).expect("append");
    }
    let (path, at) = locate(&dir, 11);
    let mut stale = Vec::new();
    put_record(&mut stale, &entry(4, 50));
    let file = OpenOptions::new().write(true).open(&path).expect("segment");
    file.write_all_at(&stale, (at + RECORD_HEAD + 50) as u64).expect("plant");
    drop(file);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    assert_eq!(zxids(&log, 0), [10, 11]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damage_in_a_segment_before_the_newest_is_an_error() {
    let dir = scratch("damage");
    write_megabytes(&dir);
    let oldest = segment_files(&dir)[0];
    let path = dir.join(segment_name(oldest));
    let file = OpenOptions::new().write(true).open(&path).expect("segment");
    file.write_all_at(b"rot", (MIB + 100) as u64).expect("damage");
    drop(file);
    let log = SegmentLog::open(&dir, false).expect("the newest segment is whole");
    let failure = log.read(Zxid::ZERO, &mut |_| true).expect_err("damage");
    assert!(matches!(failure, StorageError::Corrupt(_)), "{failure}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn synced_appends_write_over_blocks_the_segment_already_has() {
    let dir = scratch("prefilled");
    let log = SegmentLog::open(&dir, true).expect("open");
    for zxid in 1..=100 {
        log.append(&[entry(zxid, 200)]).expect("append");
        let newest = *segment_files(&dir).last().expect("a segment");
        let len = std::fs::metadata(dir.join(segment_name(newest))).expect("metadata").len();
        assert_eq!(len, SEGMENT_BYTES, "the segment did not grow");
    }
    assert_eq!(zxids(&log, 0), (1..=100).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_segment_a_crash_left_without_records_is_removed_at_open() {
    let dir = scratch("empty");
    {
        let log = SegmentLog::open(&dir, false).expect("open");
        log.append(&[entry(1, 50)]).expect("append");
    }
    let empty = dir.join(segment_name(Zxid::new(2)));
    std::fs::write(&empty, vec![0u8; 4096]).expect("an empty segment");
    std::fs::write(dir.join(SPARE_NAME), b"half a spare").expect("a spare");
    let log = SegmentLog::open(&dir, false).expect("open");
    assert!(!empty.exists());
    assert!(!dir.join(SPARE_NAME).exists());
    assert_eq!(log.last_logged_zxid(), Zxid::new(1));
    log.append(&[entry(2, 50)]).expect("append");
    assert_eq!(zxids(&log, 0), [1, 2]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncating_below_every_record_empties_the_log() {
    let dir = scratch("below");
    let log = SegmentLog::open(&dir, false).expect("open");
    log.append(&[entry(5, 50), entry(6, 50)]).expect("append");
    log.truncate_after(Zxid::new(4)).expect("truncate");
    assert_eq!(log.last_logged_zxid(), Zxid::ZERO);
    assert!(log.is_empty());
    log.append(&[entry(5, 20)]).expect("append");
    assert_eq!(read_all(&log, 0), [entry(5, 20)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn purging_through_the_last_record_removes_the_whole_log() {
    let dir = scratch("replaced");
    let log = SegmentLog::open(&dir, false).expect("open");
    log.append(&[entry(1, 50), entry(2, 50), entry(3, 50)]).expect("append");
    log.purge_through(Zxid::new(2)).expect("purge");
    assert_eq!(zxids(&log, 0), [1, 2, 3], "the newest segment stays while it holds more");
    log.purge_through(Zxid::new(3)).expect("purge");
    assert_eq!(zxids(&log, 0), Vec::<i64>::new());
    assert!(segment_files(&dir).is_empty());
    log.append(&[entry(9, 50)]).expect("append after a purge");
    assert_eq!(zxids(&log, 0), [9]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn purged_segments_are_recycled_and_their_old_records_never_read() {
    let dir = scratch("recycled");
    let written = write_megabytes(&dir);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    log.purge_through(Zxid::new(36)).expect("purge");
    assert_eq!(recycled_files(&dir), RECYCLED_KEPT, "three purged, the rest deleted");
    // Small entries: the old 1 MiB records stay behind them in the recycled files.
    let more: Vec<LogEntry> = (41..=60).map(|zxid| entry(zxid, 100)).collect();
    log.append(&more[..10]).expect("append");
    drop(log);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    // Big enough to need the next segment, which is a recycled one.
    log.append(&[entry(51, 15 * MIB)]).expect("append");
    log.append(&more[11..]).expect("append");
    assert_eq!(recycled_files(&dir), RECYCLED_KEPT - 1);
    drop(log);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    let mut expected: Vec<LogEntry> = written[36..].to_vec();
    expected.extend_from_slice(&more[..10]);
    expected.push(entry(51, 15 * MIB));
    expected.extend_from_slice(&more[11..]);
    assert_eq!(read_all(&log, 36), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_purge_keeps_for_reuse_as_many_segments_as_the_log_started_since_the_last() {
    let dir = scratch("recycled-rate");
    let log = SegmentLog::open(&dir, false).expect("open");
    let entries: Vec<LogEntry> = (1..=80).map(|zxid| entry(zxid, MIB)).collect();
    for batch in entries.chunks(4) {
        log.append(batch).expect("append");
    }
    let started = segment_files(&dir).len();
    assert!(started > RECYCLED_KEPT + 1, "{started} segments");
    log.purge_through(Zxid::new(79)).expect("purge");
    // Every segment but the newest was purged, and each kept: the log started that many
    // since it opened, so it will likely need as many before the next purge.
    assert_eq!(recycled_files(&dir), started - 1);
    // The segments the appends after start are recycled ones, not written with zeros.
    let more: Vec<LogEntry> = (81..=120).map(|zxid| entry(zxid, MIB)).collect();
    for batch in more.chunks(4) {
        log.append(batch).expect("append");
    }
    let new_segments = segment_files(&dir).len() - 1;
    assert!(new_segments >= RECYCLED_KEPT, "{new_segments} new segments");
    assert_eq!(recycled_files(&dir), started - 1 - new_segments, "each a recycled one");
    assert_eq!(read_all(&log, 80), more);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spare_counts_among_the_segments_a_quiet_log_keeps_ready() {
    let dir = scratch("recycled-spare");
    let log = SegmentLog::open(&dir, false).expect("open");
    // Three segments; the third is past half full, so a spare is being prepared.
    let entries: Vec<LogEntry> = (1..=32).map(|zxid| entry(zxid, MIB)).collect();
    for batch in entries.chunks(4) {
        log.append(batch).expect("append");
    }
    let firsts = segment_files(&dir);
    assert_eq!(firsts.len(), 3, "{firsts:?}");
    log.purge_through(Zxid::new(firsts[1].raw() - 1)).expect("purge the first");
    assert_eq!(recycled_files(&dir), 1, "the log started three since it opened");
    // No segment started since: the spare and that recycled one are ready, so the
    // second purged segment is deleted rather than kept as a third.
    log.purge_through(Zxid::new(firsts[2].raw() - 1)).expect("purge the second");
    assert_eq!(recycled_files(&dir), 1);
    drop(log);
    assert!(dir.join(SPARE_NAME).exists(), "the spare was prepared");
    let log = SegmentLog::open(&dir, false).expect("reopen");
    assert_eq!(read_all(&log, 24), entries[24..]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_segment_purged_while_a_reader_reads_it_is_not_recycled_under_it() {
    let dir = scratch("reading");
    let written = write_megabytes(&dir);
    let log = SegmentLog::open(&dir, false).expect("reopen");
    let mut seen = Vec::new();
    log.read(Zxid::ZERO, &mut |found| {
        if found.zxid == Zxid::new(1) {
            // Every segment but the newest is purged, and the appends after roll into
            // new segments, recycled ones if there were any.
            log.purge_through(Zxid::new(36)).expect("purge");
            let more: Vec<LogEntry> = (41..=80).map(|zxid| entry(zxid, MIB)).collect();
            for batch in more.chunks(4) {
                log.append(batch).expect("append");
            }
        }
        seen.push(found);
        true
    })
    .expect("read");
    assert_eq!(seen, written, "the reader sees the log as it was when it began");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_read_only_log_of_a_missing_directory_is_empty() {
    let log = SegmentLog::open_read_only(&scratch("missing")).expect("open");
    assert_eq!(log.last_logged_zxid(), Zxid::ZERO);
    assert!(log.append(&[entry(1, 1)]).is_err());
}
