//! `GET /backup/txns?after=<zxid>` (zkrs only): every committed txn after a zxid, then
//! each one as it commits, for `zkrs backup` to keep a backup current.
//!
//! The body is a stream of records, each the txn's zxid (8 bytes, big-endian), the
//! length of its log entry (4 bytes) and the entry as the log stores it (the jute txn
//! and its CRC-32C), so the backup checks what it receives as the log checks what it
//! reads. A record of length 0 is a heartbeat carrying the zxid this server has applied,
//! every [`HEARTBEAT`] while nothing commits: the backup knows it is current, and the
//! connection never idles out.
//!
//! Only txns this member has applied are sent, so an ensemble member's uncommitted log
//! tail never is. The log is one unbroken run of txns (purges take its oldest ones), so
//! it holds every txn after `after` exactly when its oldest is at or before `after`, or
//! right after it. Zxids alone could not tell: the next txn after the last of an epoch
//! is the first of a later one, whatever came between. Otherwise the answer is 410
//! Gone, and the backup starts again from a snapshot; a stream whose log is purged past
//! it meanwhile ends, for the same answer next time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::server::Shared;
use crate::storage::recovery::follows;
use crate::storage::{LogEntry, Storage, StorageError};
use crate::txn::Zxid;

/// How often a stream with nothing to send says where the server is.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How often a caught-up stream looks for new txns.
const POLL: Duration = Duration::from_millis(20);
/// Most bytes of entries read and sent at a time.
const BATCH_BYTES: usize = 1 << 20;
/// Pieces of the stream in flight to the connection.
const PIECES_IN_FLIGHT: usize = 4;

/// Why the stream cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The log no longer holds the txn after the zxid asked for.
    #[error("the log no longer holds the txns after 0x{0:x}; start from a snapshot")]
    Gone(Zxid),
    /// The zxid asked for is ahead of this server's.
    #[error("0x{asked:x} is ahead of this server, which has applied 0x{applied:x}")]
    Ahead {
        /// The zxid asked for.
        asked: Zxid,
        /// This server's.
        applied: Zxid,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The zxid up to which txns may be sent: applied here and logged.
fn sendable(shared: &Shared, storage: &dyn Storage) -> Zxid {
    shared.database.last_applied_zxid().min(storage.last_logged_zxid())
}

/// Checks that the stream can start after `after`, then streams it from a task of its
/// own into the channel returned, until the receiver goes.
///
/// # Errors
/// [`Refused`].
pub async fn start(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    after: Zxid,
) -> Result<mpsc::Receiver<Bytes>, Refused> {
    let applied = shared.database.last_applied_zxid();
    if after > applied {
        return Err(Refused::Ahead { asked: after, applied });
    }
    let reading = storage.clone();
    let oldest = tokio::task::spawn_blocking(move || oldest_logged(reading.as_ref()))
        .await
        .map_err(|err| StorageError::Backend(err.to_string()))??;
    let reaches = match oldest {
        Some(oldest) => holds_after(oldest, after),
        None => after == sendable(&shared, storage.as_ref()),
    };
    if !reaches {
        return Err(Refused::Gone(after));
    }
    let (pieces, receiver) = mpsc::channel(PIECES_IN_FLIGHT);
    tokio::spawn(stream(shared, storage, after, pieces));
    Ok(receiver)
}

/// The zxid of the oldest txn the log holds.
fn oldest_logged(storage: &dyn Storage) -> Result<Option<Zxid>, StorageError> {
    let mut oldest = None;
    storage.read_log(Zxid::ZERO, &mut |entry| {
        oldest = Some(entry.zxid);
        false
    })?;
    Ok(oldest)
}

/// Whether a log whose oldest txn is `oldest` holds every txn after `after`.
fn holds_after(oldest: Zxid, after: Zxid) -> bool {
    oldest <= after || oldest.raw() == after.raw() + 1
}

/// Sends the txns after `cursor` as they become sendable, and heartbeats between.
async fn stream(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    mut cursor: Zxid,
    pieces: mpsc::Sender<Bytes>,
) {
    let mut quiet_since = Instant::now();
    loop {
        let through = sendable(&shared, storage.as_ref());
        if through <= cursor {
            if quiet_since.elapsed() >= HEARTBEAT {
                if pieces.send(heartbeat(shared.database.last_applied_zxid())).await.is_err() {
                    return;
                }
                quiet_since = Instant::now();
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        let reading = storage.clone();
        let read = tokio::task::spawn_blocking(move || batch(reading.as_ref(), cursor, through));
        let (piece, last) = match read.await {
            Ok(Ok(Some(read))) => read,
            Ok(Ok(None)) => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Ok(Err(err)) => {
                // The backup reconnects, and hears 410 if the log moved past it.
                tracing::warn!(cause = %err, "a backup's txn stream stopped");
                return;
            }
            Err(err) => {
                tracing::warn!(cause = %err, "a backup's txn stream stopped");
                return;
            }
        };
        if pieces.send(piece).await.is_err() {
            return;
        }
        cursor = last;
        quiet_since = Instant::now();
    }
}

/// The records of the entries in (`after`, `through`], up to [`BATCH_BYTES`], and the
/// zxid of the last; `None` if there are none.
///
/// # Errors
/// [`StorageError::Corrupt`] when the log was purged past `after`.
fn batch(
    storage: &dyn Storage,
    after: Zxid,
    through: Zxid,
) -> Result<Option<(Bytes, Zxid)>, StorageError> {
    if oldest_logged(storage)?.is_some_and(|oldest| !holds_after(oldest, after)) {
        return Err(StorageError::Corrupt(format!("the log was purged past 0x{after:x}")));
    }
    let mut out = BytesMut::new();
    let mut last = after;
    let mut broken = None;
    storage.read_log(after, &mut |entry: LogEntry| {
        if entry.zxid > through {
            return false;
        }
        if !follows(last, entry.zxid) {
            broken = Some(entry.zxid);
            return false;
        }
        put_record(&mut out, entry.zxid, &entry.value);
        last = entry.zxid;
        out.len() < BATCH_BYTES
    })?;
    if let Some(zxid) = broken {
        return Err(StorageError::Corrupt(format!(
            "the log jumps from 0x{last:x} to 0x{zxid:x} (purged meanwhile)"
        )));
    }
    Ok((!out.is_empty()).then(|| (out.freeze(), last)))
}

/// One record: zxid, length, entry.
pub fn put_record(out: &mut BytesMut, zxid: Zxid, entry: &[u8]) {
    out.put_i64(zxid.raw());
    out.put_u32(u32::try_from(entry.len()).unwrap_or(u32::MAX));
    out.put_slice(entry);
}

/// A heartbeat: the zxid applied, and no entry.
fn heartbeat(applied: Zxid) -> Bytes {
    let mut out = BytesMut::with_capacity(12);
    put_record(&mut out, applied, &[]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_holds_what_follows_its_oldest_txn_and_no_more() {
        let oldest = Zxid::new(0x2_0000_0005);
        assert!(holds_after(oldest, Zxid::new(0x2_0000_0005)));
        assert!(holds_after(oldest, Zxid::new(0x2_0000_0009)));
        assert!(holds_after(oldest, Zxid::new(0x2_0000_0004)));
        // The end of epoch 1, or the start of epoch 2, may have been purged.
        assert!(!holds_after(oldest, Zxid::new(0x1_0000_0007)));
        assert!(!holds_after(oldest, Zxid::new(0x2_0000_0003)));
    }
}
