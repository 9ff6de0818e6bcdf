use bytes::Bytes;
use jute::records::{SetDataTxn, TxnHeader};
use jute::OpCode;

use super::*;
use crate::storage::record::encode_entry;
use crate::txn::TxnBody;

/// A directory of its own for a test, removed after it.
pub(crate) struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("zkrs-backup-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

pub(crate) fn record(zxid: i64) -> Record {
    let txn = Txn {
        header: TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid,
            time: zxid,
            op_type: OpCode::SetData.as_i32(),
        },
        body: TxnBody::SetData(SetDataTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"value")),
            version: 1,
        }),
    };
    let entry = encode_entry(&txn);
    Record { zxid: entry.zxid, entry: entry.value }
}

#[test]
fn records_come_off_a_buffer_only_whole() {
    let mut bytes = BytesMut::new();
    record(7).encode(&mut bytes);
    let whole = bytes.len();
    let mut partial = BytesMut::from(&bytes[..whole - 1]);
    assert!(take_record(&mut partial).expect("no error").is_none());
    let taken = take_record(&mut bytes).expect("no error").expect("whole");
    assert_eq!(taken.zxid, Zxid::new(7));
    assert!(taken.txn().is_ok());
    assert!(bytes.is_empty());
}

#[test]
fn a_crash_mid_record_is_cut_off_and_the_writer_goes_on() {
    let dir = scratch("torn");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1), record(2), record(3)]).expect("appended");
    let segment = dir.join("txns.1");
    let mut torn = BytesMut::new();
    record(4).encode(&mut torn);
    let mut file = OpenOptions::new().append(true).open(&segment).expect("open");
    file.write_all(&torn[..torn.len() - 3]).expect("torn write");
    drop(file);
    let scan = scan(&dir).expect("scan");
    assert_eq!(scan.reaches(), Some(Zxid::new(3)));
    assert!(scan.torn_tail > 0 && scan.damaged_tail.is_none());
    let mut writer = SegmentWriter::resume(&dir, &scan).expect("resumed");
    assert_eq!(writer.sealed(), Some(Zxid::new(1)), "a resumed writer leaves the old segment");
    writer.append(Zxid::new(3), &[record(4)]).expect("appended");
    writer.append(Zxid::new(4), &[record(5)]).expect("appended");
    // Txns that do not go on from the last one kept start a new segment.
    writer.append(Zxid::new(8), &[record(9)]).expect("appended");
    assert_eq!(writer.sealed(), Some(Zxid::new(4)));
    let scan = super::scan(&dir).expect("scan");
    assert_eq!((scan.torn_tail, scan.segments.len()), (0, 3));
    assert_eq!((scan.segments[0].last, scan.segments[1].last), (Zxid::new(3), Zxid::new(5)));
    assert_eq!((scan.segments[1].after, scan.segments[1].first), (Zxid::new(3), Zxid::new(4)));
    assert_eq!((scan.segments[2].after, scan.segments[2].first), (Zxid::new(8), Zxid::new(9)));
}

#[test]
fn a_segment_older_than_the_roll_age_is_left_for_the_next() {
    let dir = scratch("roll");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1)]).expect("appended");
    writer.roll_if_older(Duration::from_secs(3600));
    assert_eq!(writer.sealed(), None, "a young segment stays open");
    writer.roll_if_older(Duration::ZERO);
    assert_eq!(writer.sealed(), Some(Zxid::new(1)));
    writer.append(Zxid::new(1), &[record(2)]).expect("appended");
    let scan = scan(&dir).expect("scan");
    let firsts: Vec<_> = scan.segments.iter().map(|segment| segment.first).collect();
    assert_eq!(firsts, [Zxid::new(1), Zxid::new(2)]);
    assert_eq!(scan.segments[1].after, Zxid::new(1));
}

#[test]
fn names_say_what_a_file_is() {
    for file in [Named::Snapshot(Zxid::new(0x1_0000_002a)), Named::Segment(Zxid::new(7))] {
        assert_eq!(named(&file.name()), Some(file));
    }
    assert_eq!(named("snapshot.1f.partial"), None);
    assert_eq!(named("lock"), None);
    assert_eq!(named("txns.xyz"), None);
}

#[test]
fn a_damaged_record_is_reported_not_skipped() {
    let dir = scratch("damaged");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1), record(2)]).expect("appended");
    writer.append(Zxid::new(4), &[record(5)]).expect("appended");
    let first = dir.join("txns.1");
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[SEGMENT_HEAD as usize + RECORD_HEAD + 3] ^= 0xff;
    std::fs::write(&first, bytes).expect("write");
    assert!(matches!(scan(&dir), Err(DirError::Corrupt { .. })));
    let newest = dir.join("txns.5");
    std::fs::remove_file(&newest).expect("remove");
    let scan = scan(&dir).expect("the newest segment's damage is reported, not fatal");
    assert!(scan.damaged_tail.is_some());
}

#[test]
fn pruning_keeps_the_newest_snapshots_and_every_txn_after_the_oldest_kept() {
    let dir = scratch("prune");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    // Three segments (1-2, 5-6, 9-10) around snapshots at 2, 6 and 9.
    writer.append(Zxid::new(0), &[record(1), record(2)]).expect("appended");
    writer.append(Zxid::new(4), &[record(5), record(6)]).expect("appended");
    writer.append(Zxid::new(8), &[record(9), record(10)]).expect("appended");
    for zxid in [2, 6, 9] {
        std::fs::write(Scan::snapshot_path(&dir, Zxid::new(zxid)), b"s").expect("snapshot");
    }
    assert_eq!(prune(&dir, 0).expect("pruned"), Pruned::default());
    assert_eq!(prune(&dir, 3).expect("pruned"), Pruned::default());
    // Keeping two: the snapshot at 2 goes; the segment 1-2 goes (the next goes on from
    // 4, before 6); 5-6 stays, for the txns after 6 lie in the segment after it.
    assert_eq!(prune(&dir, 2).expect("pruned"), Pruned { snapshots: 1, segments: 1 });
    let scan = scan(&dir).expect("scan");
    assert_eq!(scan.snapshots, [Zxid::new(6), Zxid::new(9)]);
    let firsts: Vec<_> = scan.segments.iter().map(|segment| segment.first).collect();
    assert_eq!(firsts, [Zxid::new(5), Zxid::new(9)]);
    // Keeping one: the segment 5-6 goes too; the newest stays whatever it holds.
    assert_eq!(prune(&dir, 1).expect("pruned"), Pruned { snapshots: 1, segments: 1 });
    let scan = super::scan(&dir).expect("scan");
    assert_eq!(scan.snapshots, [Zxid::new(9)]);
    assert_eq!(scan.segments.len(), 1);
}
