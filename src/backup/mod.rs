//! `zkrs backup`: keeps a backup directory ([`dir`]) current from a running member's
//! AdminServer: a snapshot (its `snapshot` command) now and then, and every committed txn
//! since, streamed as it commits (`/backup/txns`), each checked and synced before the
//! next is asked for. Killed at any point, it goes on from what it had synced; when the
//! member's log has moved past it (the member purged, or the backup was off for long),
//! it takes a new snapshot. `zkrs backup verify` checks a backup and says which zxids it
//! can restore; `zkrs restore` ([`restore`]) makes a data directory at one of them.
//! With `--upload`, a copy of the backup directory is kept in object storage
//! ([`remote`]), which both read as well.

pub mod dir;
mod http;
pub mod remote;
pub mod restore;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use crate::storage::recovery::follows;
use crate::txn::Zxid;
use crate::zk_format::snapshot::stream_snapshot;
use dir::{DirError, Record, Scan, SegmentWriter};
use http::Endpoint;

/// How long a stopping backup waits for the store to drop an aborted copy's parts.
pub const ABORT_WAIT: Duration = Duration::from_secs(10);
/// Pause before trying an unreachable member again (or a snapshot its rate limit
/// refused: ZooKeeper's lets one through every 300 ms by default).
const RETRY: Duration = Duration::from_millis(500);
/// How often the backup reports where it is.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What `zkrs backup` is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The member's AdminServer, `http://host:port`.
    pub server: String,
    /// The `Authorization` header: `digest user:password`, or `ip`.
    pub authorization: Option<String>,
    /// The backup directory.
    pub dir: PathBuf,
    /// Txns between snapshots.
    pub snapshot_every: u64,
    /// Snapshots kept, with the txns after the oldest of them (0: all).
    pub retain: usize,
    /// Object storage to keep a copy in (`s3://bucket/prefix`, `file:///path`).
    pub upload: Option<String>,
    /// How often the copy is brought up to date; the txns reach it within about this
    /// long (a segment is left for a new one once it is this old).
    pub upload_every: Duration,
}

/// How the segment being written is left for copying: when it is old enough, and where
/// the writer says which segments are whole.
struct Sealing {
    roll_after: Option<Duration>,
    sealed: tokio::sync::watch::Sender<Option<Zxid>>,
}

impl Sealing {
    /// After the writer took a piece of the stream (a heartbeat too).
    fn after_piece(&self, writer: &mut SegmentWriter) {
        if let Some(age) = self.roll_after {
            writer.roll_if_older(age);
        }
        self.sealed.send_if_modified(|sealed| {
            let changed = *sealed != writer.sealed();
            *sealed = writer.sealed();
            changed
        });
    }
}

/// Why the backup stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup directory failed.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The object storage named cannot be used.
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    /// The options are wrong.
    #[error("{0}")]
    Options(String),
}

/// Why following the member's txns ended.
enum Ended {
    /// The member's log no longer reaches back to the backup: a snapshot is due.
    Gone,
    /// The member could not be reached, or broke off: try again.
    Unreachable(String),
    /// The backup directory failed: stop.
    Local(DirError),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Gone => f.write_str("the member's log no longer reaches the backup"),
            Ended::Unreachable(why) => f.write_str(why),
            Ended::Local(err) => write!(f, "{err}"),
        }
    }
}

impl From<DirError> for Ended {
    fn from(err: DirError) -> Ended {
        Ended::Local(err)
    }
}

/// Keeps `options.dir` current until `stop` is cancelled; then aborts a copy to object
/// storage under way (waiting up to [`ABORT_WAIT`] for the store) and returns.
///
/// # Errors
/// If the backup directory fails, or the options are wrong.
pub async fn keep_current(options: Options, stop: CancellationToken) -> Result<(), BackupError> {
    let endpoint = Endpoint::parse(&options.server, options.authorization.clone())
        .map_err(BackupError::Options)?;
    std::fs::create_dir_all(&options.dir)
        .map_err(|source| DirError::Io { path: options.dir.display().to_string(), source })?;
    let _lock = lock(&options.dir)?;
    remove_partial_snapshots(&options.dir)?;
    let scan = dir::scan(&options.dir)?;
    if let Some(damage) = &scan.damaged_tail {
        tracing::warn!(%damage, "cutting off the newest segment's damaged end");
    } else if scan.torn_tail > 0 {
        tracing::info!(bytes = scan.torn_tail, "cutting off an incomplete record a crash left");
    }
    // Go on after the last txn kept, so the txns before a later snapshot stay restorable
    // too; only a backup without txns starts at its newest snapshot.
    let cursor = scan.segments.last().map(|segment| segment.last).or(scan.reaches());
    let mut writer = SegmentWriter::resume(&options.dir, &scan)?;
    let (sealed, sealed_now) = tokio::sync::watch::channel(writer.sealed());
    let roll_after = options.upload.as_ref().map(|_| options.upload_every);
    let mut uploading = None;
    if let Some(url) = &options.upload {
        let remote = remote::Remote::open(url)?;
        let uploader = remote::Uploader::new(remote, &options.dir, options.retain, stop.clone());
        let every = options.upload_every;
        uploading = Some(tokio::spawn(remote::keep_uploaded(uploader, sealed_now, every)));
    }
    let sealing = Sealing { roll_after, sealed };
    let following = follow_member(&options, &endpoint, &mut writer, &sealing, cursor);
    let outcome = tokio::select! {
        followed = following => followed,
        () = stop.cancelled() => Ok(()),
    };
    stop.cancel();
    if let Some(uploading) = uploading {
        if tokio::time::timeout(ABORT_WAIT, uploading).await.is_err() {
            tracing::warn!("the store did not answer the abort of the copy under way");
        }
    }
    outcome
}

/// Takes snapshots and follows the member's txns into the backup directory, from after
/// `cursor` (or from a new snapshot), for as long as it is polled.
async fn follow_member(
    options: &Options,
    endpoint: &Endpoint,
    writer: &mut SegmentWriter,
    sealing: &Sealing,
    mut cursor: Option<Zxid>,
) -> Result<(), BackupError> {
    let mut from_snapshot = cursor.is_none();
    let mut since_snapshot = 0u64;
    loop {
        if from_snapshot || since_snapshot >= options.snapshot_every {
            match take_snapshot(endpoint, &options.dir).await {
                Ok(zxid) => {
                    since_snapshot = 0;
                    let pruned = dir::prune(&options.dir, options.retain)?;
                    if pruned != dir::Pruned::default() {
                        let (snapshots, segments) = (pruned.snapshots, pruned.segments);
                        tracing::info!(snapshots, segments, "removed what --retain leaves out");
                    }
                    if from_snapshot {
                        cursor = Some(zxid);
                        from_snapshot = false;
                    }
                }
                Err(Ended::Local(err)) => return Err(err.into()),
                Err(failed) if from_snapshot => {
                    tracing::warn!(cause = %failed, "cannot take a snapshot; trying again");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
                Err(failed) => {
                    // The txns go on meanwhile; the next snapshot is tried a budget later.
                    let going_on = "cannot take a snapshot; going on with the txns";
                    tracing::warn!(cause = %failed, "{going_on}");
                    since_snapshot = 0;
                }
            }
        }
        let Some(after) = cursor else {
            from_snapshot = true;
            continue;
        };
        let budget = options.snapshot_every.saturating_sub(since_snapshot);
        let (reached, appended, ended) = follow(endpoint, writer, sealing, after, budget).await;
        cursor = Some(reached);
        since_snapshot += appended;
        match ended {
            None => {}
            Some(Ended::Gone) => {
                tracing::warn!(%after, "the member's log no longer reaches the backup");
                from_snapshot = true;
            }
            Some(Ended::Unreachable(why)) => {
                tracing::warn!(cause = %why, "lost the member; trying again");
                tokio::time::sleep(RETRY).await;
            }
            Some(Ended::Local(err)) => return Err(err.into()),
        }
    }
}

/// Takes the member's state as a snapshot file; returns its zxid.
async fn take_snapshot(endpoint: &Endpoint, dir: &Path) -> Result<Zxid, Ended> {
    let response = endpoint.get("/commands/snapshot").await.map_err(Ended::Unreachable)?;
    if !response.status().is_success() {
        return Err(Ended::Unreachable(http::refusal(response).await));
    }
    let header = |name: &str| {
        response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    };
    let zxid = header("last_zxid")
        .and_then(|text| Zxid::parse(&text).ok())
        .ok_or_else(|| Ended::Unreachable("a snapshot without last_zxid".into()))?;
    let size: Option<u64> = header("snapshot_size").and_then(|text| text.parse().ok());
    let path = Scan::snapshot_path(dir, zxid);
    let partial = path.with_extension(format!("{:x}.partial", zxid.raw()));
    let io = |source| DirError::Io { path: partial.display().to_string(), source };
    let mut file = std::fs::File::create(&partial).map_err(io)?;
    let mut body = response.into_body();
    let mut written = 0u64;
    while let Some(piece) = http::next_piece(&mut body).await.map_err(Ended::Unreachable)? {
        std::io::Write::write_all(&mut file, &piece).map_err(io)?;
        written += piece.len() as u64;
    }
    file.sync_all().map_err(io)?;
    drop(file);
    if size.is_some_and(|size| size != written) {
        let _ = std::fs::remove_file(&partial);
        return Err(Ended::Unreachable(format!("a snapshot cut short at {written} bytes")));
    }
    // Every seal checked before it counts; its name gives the zxid it is read at.
    let checked = path.with_extension(format!("{:x}.check", zxid.raw()));
    std::fs::rename(&partial, &checked).map_err(io)?;
    let read = stream_snapshot(&checked, &mut |_| Ok(()));
    if let Err(err) = read {
        let _ = std::fs::remove_file(&checked);
        return Err(Ended::Unreachable(format!("a snapshot that does not read: {err}")));
    }
    std::fs::rename(&checked, &path).map_err(io)?;
    dir::sync_dir(dir)?;
    tracing::info!(%zxid, bytes = written, "snapshot stored");
    Ok(zxid)
}

/// Holds the directory's lock file for as long as the returned file is open: one backup
/// writes a directory at a time.
fn lock(dir: &Path) -> Result<std::fs::File, BackupError> {
    let path = dir.join("lock");
    let io = |source| DirError::Io { path: path.display().to_string(), source };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(BackupError::Options(format!("another zkrs backup is writing {}", dir.display())))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(io(source).into()),
    }
}

/// Removes what a crash left of a snapshot being written.
fn remove_partial_snapshots(dir: &Path) -> Result<(), DirError> {
    let io = |source| DirError::Io { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if name.starts_with("snapshot.") && (name.ends_with(".partial") || name.ends_with(".check"))
        {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}

/// Appends the member's txns after `after` as they come, until `budget` are appended or
/// the stream ends; returns the zxid reached, the txns appended, and why it ended (none
/// for the budget spent).
async fn follow(
    endpoint: &Endpoint,
    writer: &mut SegmentWriter,
    sealing: &Sealing,
    after: Zxid,
    budget: u64,
) -> (Zxid, u64, Option<Ended>) {
    let mut reached = after;
    let mut appended = 0u64;
    let path = format!("/backup/txns?after=0x{:x}", after.raw());
    let response = match endpoint.get(&path).await {
        Ok(response) => response,
        Err(why) => return (reached, 0, Some(Ended::Unreachable(why))),
    };
    if response.status().as_u16() == 410 {
        return (reached, 0, Some(Ended::Gone));
    }
    if !response.status().is_success() {
        return (reached, 0, Some(Ended::Unreachable(http::refusal(response).await)));
    }
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    let mut reported = Instant::now();
    loop {
        let piece = match http::next_piece(&mut body).await {
            Ok(Some(piece)) => piece,
            Ok(None) => {
                return (reached, appended, Some(Ended::Unreachable("stream ended".into())))
            }
            Err(why) => return (reached, appended, Some(Ended::Unreachable(why))),
        };
        buffer.extend_from_slice(&piece);
        let mut records: Vec<Record> = Vec::new();
        loop {
            match dir::take_record(&mut buffer) {
                Ok(Some(record)) if record.entry.is_empty() => {}
                Ok(Some(record)) => {
                    let previous = records.last().map_or(reached, |last| last.zxid);
                    if !follows(previous, record.zxid) || record.txn().is_err() {
                        let why = format!("a bad record at 0x{:x} from the member", record.zxid);
                        return (reached, appended, Some(Ended::Unreachable(why)));
                    }
                    records.push(record);
                }
                Ok(None) => break,
                Err(why) => return (reached, appended, Some(Ended::Unreachable(why))),
            }
        }
        if let Err(err) = writer.append(reached, &records) {
            return (reached, appended, Some(Ended::Local(err)));
        }
        sealing.after_piece(writer);
        if let Some(last) = records.last() {
            reached = last.zxid;
        }
        appended += records.len() as u64;
        if reported.elapsed() >= REPORT_EVERY {
            tracing::info!(through = %reached, "txns stored");
            reported = Instant::now();
        }
        if appended >= budget {
            return (reached, appended, None);
        }
    }
}

/// What `zkrs backup verify` found.
#[derive(Debug)]
pub struct Verified {
    /// Snapshots, each read whole with every seal checked.
    pub snapshots: usize,
    /// Txns, each checksum checked.
    pub txns: u64,
    /// The zxids a restore can reach: from each snapshot on through the txns that
    /// follow it without a gap, as (first, last) ranges.
    pub ranges: Vec<(Zxid, Zxid)>,
}

/// Reads every snapshot and txn of the backup in `dir`, checking every seal and checksum
/// and that the txns follow each other, and reports what it can restore.
///
/// # Errors
/// A damaged file (the message names it).
pub fn verify(dir: &Path, report: &mut dyn std::io::Write) -> Result<Verified, String> {
    let scan = dir::scan(dir).map_err(|err| err.to_string())?;
    if let Some(damage) = &scan.damaged_tail {
        return Err(damage.clone());
    }
    if scan.snapshots.is_empty() && scan.segments.is_empty() {
        return Err(format!("{} holds no backup", dir.display()));
    }
    for zxid in &scan.snapshots {
        let path = Scan::snapshot_path(dir, *zxid);
        let mut nodes = 0u64;
        stream_snapshot(&path, &mut |_| {
            nodes += 1;
            Ok(())
        })
        .map_err(|err| err.to_string())?;
        let _ =
            writeln!(report, "snapshot 0x{:x}: {} nodes, every seal checked", zxid.raw(), nodes);
    }
    let mut txns = 0u64;
    for segment in &scan.segments {
        txns += segment.records;
        let _ = writeln!(
            report,
            "{}: {} txns 0x{:x}..0x{:x}, every checksum checked",
            segment.path.display(),
            segment.records,
            segment.first.raw(),
            segment.last.raw()
        );
    }
    if scan.torn_tail > 0 {
        let _ = writeln!(
            report,
            "the newest segment ends in {} bytes of an incomplete record (a write cut short), \
             left out",
            scan.torn_tail
        );
    }
    let ranges = restore::reachable(&scan);
    for (first, last) in &ranges {
        let _ = writeln!(report, "restorable: 0x{:x} through 0x{:x}", first.raw(), last.raw());
    }
    Ok(Verified { snapshots: scan.snapshots.len(), txns, ranges })
}

/// Where a backup is: a directory, or a copy in object storage (`s3://...`, `file://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A backup directory.
    Dir(PathBuf),
    /// The URL of a copy in object storage.
    Remote(String),
}

impl Location {
    /// A URL (anything with `://`) names object storage; anything else a directory.
    pub fn parse(text: &str) -> Location {
        if text.contains("://") {
            Location::Remote(text.to_owned())
        } else {
            Location::Dir(PathBuf::from(text))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let built = tokio::runtime::Builder::new_current_thread().enable_all().build();
    built.map_err(|err| err.to_string())
}

/// [`verify`] of the backup at `location`, brought down first if it is in object storage.
///
/// # Errors
/// A damaged file, or object storage that cannot be read.
pub fn verify_at(location: &Location, report: &mut dyn std::io::Write) -> Result<Verified, String> {
    match location {
        Location::Dir(dir) => verify(dir, report),
        Location::Remote(url) => {
            let remote = remote::Remote::open(url).map_err(|err| err.to_string())?;
            let downloads = std::env::temp_dir();
            let downloaded = runtime()?.block_on(remote::download_all(&remote, &downloads));
            let downloaded = downloaded.map_err(|err| err.to_string())?;
            // Named as the copy's objects, not as the files brought down.
            let local = downloaded.dir.display().to_string();
            let url = url.trim_end_matches('/');
            let mut said = Vec::new();
            let verified = verify(&downloaded.dir, &mut said);
            let _ =
                report.write_all(String::from_utf8_lossy(&said).replace(&local, url).as_bytes());
            verified.map_err(|err| err.replace(&local, url))
        }
    }
}

/// [`restore::restore`] from the backup at `location`; from object storage, only what
/// the target needs is brought down, into a directory beside `to` that goes afterwards.
///
/// # Errors
/// As [`restore::restore`], or object storage that cannot be read.
pub fn restore_from(
    location: &Location,
    target: restore::Target,
    to: &Path,
    to_log_dir: Option<&Path>,
    report: &mut dyn std::io::Write,
) -> Result<restore::Restored, String> {
    match location {
        Location::Dir(dir) => restore::restore(dir, target, to, to_log_dir, report),
        Location::Remote(url) => {
            let remote = remote::Remote::open(url).map_err(|err| err.to_string())?;
            // Beside the new data directory: on its file system, which has room for it.
            let parent = to.parent().filter(|parent| !parent.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)
                .map_err(|err| format!("{}: {err}", parent.display()))?;
            let (downloaded, zxid) =
                runtime()?.block_on(remote::download_for(&remote, target, parent))?;
            let target = restore::Target::Zxid(zxid);
            restore::restore(&downloaded.dir, target, to, to_log_dir, report)
        }
    }
}
