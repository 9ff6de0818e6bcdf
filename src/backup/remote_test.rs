use super::*;
use crate::backup::dir::tests::{record, scratch};
use crate::backup::dir::{Scan, SegmentWriter};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    runtime.expect("runtime").block_on(future)
}

fn snapshot(dir: &Path, zxid: i64) {
    std::fs::write(Scan::snapshot_path(dir, Zxid::new(zxid)), format!("state {zxid}"))
        .expect("snapshot");
}

fn stored(remote: &Remote) -> Vec<String> {
    let listed = block_on(remote.list()).expect("listed");
    listed.keys().map(|file| file.name()).collect()
}

#[test]
fn a_pass_copies_what_will_not_change_and_retention_prunes_the_copy() {
    let dir = scratch("upload");
    let copy = scratch("upload-copy");
    let remote = Remote::open(&format!("file://{}", copy.display())).expect("opened");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1), record(2)]).expect("appended");
    snapshot(&dir, 2);
    writer.roll_if_older(Duration::ZERO);
    writer.append(Zxid::new(2), &[record(3), record(4)]).expect("appended");
    let mut uploader = Uploader::new(remote.clone(), &dir, 0, CancellationToken::new());
    let pass = block_on(uploader.pass(writer.sealed())).expect("pass");
    // The segment being written stays behind.
    assert_eq!((pass.uploaded, pass.deleted), (2, 0));
    assert_eq!(stored(&remote), ["snapshot.2", "txns.1"]);
    let copied = std::fs::read(copy.join("txns.1")).expect("copied");
    assert_eq!(copied, std::fs::read(dir.join("txns.1")).expect("local"));
    assert_eq!(block_on(uploader.pass(writer.sealed())).expect("pass"), Pass::default());

    snapshot(&dir, 4);
    writer.roll_if_older(Duration::ZERO);
    writer.append(Zxid::new(4), &[record(5)]).expect("appended");
    writer.roll_if_older(Duration::ZERO);
    // A new uploader (a restarted backup) finds what the store holds.
    let mut uploader = Uploader::new(remote.clone(), &dir, 1, CancellationToken::new());
    let pass = block_on(uploader.pass(writer.sealed())).expect("pass");
    // Copied: snapshot 4, txns.3 and txns.5; then keeping one snapshot (4), the older
    // one goes, and each segment whose txns all lie at or before 4.
    assert_eq!((pass.uploaded, pass.deleted), (3, 3));
    assert_eq!(stored(&remote), ["snapshot.4", "txns.5"]);
    assert_eq!(block_on(remote.segment_after(Zxid::new(5))).expect("head"), Some(Zxid::new(4)));

    let downloaded = block_on(download_all(&remote, &std::env::temp_dir())).expect("downloaded");
    let scan = dir::scan(&downloaded.dir).expect("scan");
    assert_eq!(scan.snapshots, [Zxid::new(4)]);
    assert_eq!(crate::backup::restore::reachable(&scan), [(Zxid::new(4), Zxid::new(5))]);
    let kept = downloaded.dir.clone();
    drop(downloaded);
    assert!(!kept.exists(), "what was brought down goes with it");
}

#[test]
fn a_restore_brings_down_the_newest_snapshot_that_reaches_the_target() {
    let dir = scratch("download");
    let copy = scratch("download-copy");
    let remote = Remote::open(&format!("file://{}", copy.display())).expect("opened");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1), record(2), record(3)]).expect("appended");
    writer.roll_if_older(Duration::ZERO);
    // A gap: the txns after 5 and before 8 are missing, so snapshot 6 reaches only 6.
    writer.append(Zxid::new(3), &[record(4), record(5)]).expect("appended");
    writer.append(Zxid::new(7), &[record(8)]).expect("appended");
    writer.roll_if_older(Duration::ZERO);
    for zxid in [1, 3, 6] {
        snapshot(&dir, zxid);
    }
    block_on(
        Uploader::new(remote.clone(), &dir, 0, CancellationToken::new()).pass(writer.sealed()),
    )
    .expect("pass");
    let target = crate::backup::restore::Target::Zxid(Zxid::new(5));
    let (downloaded, zxid) =
        block_on(download_for(&remote, target, &std::env::temp_dir())).expect("downloaded");
    assert_eq!(zxid, Zxid::new(5));
    assert_eq!(dir::scan(&downloaded.dir).expect("scan").snapshots, [Zxid::new(3)]);
    drop(downloaded);
    let target = crate::backup::restore::Target::Zxid(Zxid::new(7));
    let refused =
        block_on(download_for(&remote, target, &std::env::temp_dir())).expect_err("no state at 7");
    assert!(refused.contains("reaches no state at 0x7"), "{refused}");
    assert!(Remote::open("gs://bucket/x").is_err() && Remote::open("not a url").is_err());
}

#[test]
fn a_stopped_copy_is_aborted_and_leaves_nothing_in_the_store() {
    let dir = scratch("stopped");
    let copy = scratch("stopped-copy");
    let remote = Remote::open(&format!("file://{}", copy.display())).expect("opened");
    snapshot(&dir, 2);
    let stop = CancellationToken::new();
    stop.cancel();
    let path = Scan::snapshot_path(&dir, Zxid::new(2));
    let copied = block_on(remote.upload(&path, Named::Snapshot(Zxid::new(2)), &stop));
    assert!(matches!(copied, Err(RemoteError::Stopped { .. })), "{copied:?}");
    assert!(stored(&remote).is_empty());
    let left: Vec<_> = walk(&copy);
    assert!(left.is_empty(), "no object and no staged part is left: {left:?}");
}

/// Every file under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_file_pruned_between_the_listing_and_its_fetch_is_left_out_not_an_error() {
    let dir = scratch("pruned");
    let copy = scratch("pruned-copy");
    let remote = Remote::open(&format!("file://{}", copy.display())).expect("opened");
    let mut writer = SegmentWriter::resume(&dir, &Scan::default()).expect("writer");
    writer.append(Zxid::new(0), &[record(1), record(2)]).expect("appended");
    snapshot(&dir, 1);
    snapshot(&dir, 2);
    writer.roll_if_older(Duration::ZERO);
    block_on(
        Uploader::new(remote.clone(), &dir, 0, CancellationToken::new()).pass(writer.sealed()),
    )
    .expect("pass");
    let listed = block_on(remote.list()).expect("listed");
    assert_eq!(listed.len(), 3);
    // What a running backup's retention does to the copy while a verify fetches it.
    block_on(remote.delete(Named::Snapshot(Zxid::new(1)))).expect("pruned");

    let downloaded = block_on(download_listed(&remote, listed.into_keys(), &std::env::temp_dir()))
        .expect("the files still there are brought down");
    let scan = dir::scan(&downloaded.dir).expect("scan");
    assert_eq!(scan.snapshots, [Zxid::new(2)]);
    assert_eq!(crate::backup::restore::reachable(&scan), [(Zxid::new(2), Zxid::new(2))]);
    assert!(!downloaded.dir.join(Named::Snapshot(Zxid::new(1)).name()).exists());
}
