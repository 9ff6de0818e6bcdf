//! The AdminServer's `snapshot`: the state as a ZooKeeper 3.9 snapshot file, so a backup
//! script written for ZooKeeper stores one that ZooKeeper's `restore` (and zkrs's
//! import) reads.
//!
//! Unlike ZooKeeper's, which writes its live tree while it changes, the state streamed
//! is exact: it is recovered from the store (the newest snapshot, then the log) up to a
//! zxid this server had applied, into a tree of its own, on a thread of its own. The
//! tree is written twice, once to count its bytes (the `snapshot_size` header comes
//! first) and once into the response, a piece at a time through a bounded channel, so
//! the response never holds more than a few pieces.

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::server::transfer::{write_state, Ended};
use crate::storage::recovery::{recover, Recovered, Replay};
use crate::storage::Storage;
use crate::txn::Zxid;
use crate::zk_format::snapshot::{write_file_header, Sealing};

/// Pieces of the file in flight to the HTTP connection.
const PIECES_IN_FLIGHT: usize = 4;

/// Attempts at a consistent state while new snapshots keep completing.
const ATTEMPTS: usize = 3;

/// A state recovered at one zxid, ready to stream.
pub struct Taken {
    recovered: Recovered,
    /// The zxid of the state: its file's `lastProcessedZxid` and the `last_zxid` header.
    pub zxid: Zxid,
    /// The file's size in bytes.
    pub size: u64,
}

/// Recovers the state at a zxid `applied` says this server has applied, and counts its
/// file's bytes. Blocks: call it off the runtime.
///
/// # Errors
/// If the store cannot be read or recovered.
pub fn take(
    storage: &dyn Storage,
    extended_types: bool,
    applied: impl Fn() -> Zxid,
) -> Result<Taken, String> {
    for _ in 0..ATTEMPTS {
        // A snapshot is fuzzy up to the zxid applied when it completed. One complete
        // before `applied` is read holds nothing past it, so replaying the log up to
        // it gives exactly the state at it.
        let newest = storage.snapshots().map_err(|err| err.to_string())?.first().copied();
        let through = applied();
        let recovered = recover(storage, extended_types, Replay::ApplyThrough(through))
            .map_err(|err| err.to_string())?;
        let loaded = recovered.snapshot.map(|header| header.zxid);
        if loaded > newest.map(|header| header.zxid) {
            continue;
        }
        let zxid = recovered.last_zxid;
        let mut size = 0u64;
        write_file(&recovered, |piece| {
            size += piece.len() as u64;
            Ok(())
        })
        .map_err(|ended| format!("{ended:?}"))?;
        return Ok(Taken { recovered, zxid, size });
    }
    Err("snapshots kept completing while the state was read; try again".into())
}

impl Taken {
    /// Streams the file from a thread of its own into the channel returned; the thread
    /// stops when the receiver goes.
    ///
    /// # Errors
    /// If no thread can be started.
    pub fn stream(self) -> std::io::Result<mpsc::Receiver<Bytes>> {
        let (pieces, receiver) = mpsc::channel(PIECES_IN_FLIGHT);
        std::thread::Builder::new().name("zkrs-admin-snapshot".into()).spawn(move || {
            let sent = write_file(&self.recovered, |piece| {
                pieces.blocking_send(piece).map_err(|_| Ended::Closed)
            });
            if let Err(ended) = sent {
                tracing::info!(?ended, "the snapshot's reader went away");
            }
        })?;
        Ok(receiver)
    }
}

/// Writes `recovered` as ZooKeeper 3.9 writes a snapshot file: the header, the state,
/// the seal, an empty digest and the last processed zxid, each sealed.
fn write_file(
    recovered: &Recovered,
    mut emit: impl FnMut(Bytes) -> Result<(), Ended>,
) -> Result<(), Ended> {
    let mut sealing = Sealing::default();
    let mut header = BytesMut::new();
    write_file_header(&mut header);
    let mut counted = |piece: Bytes| {
        sealing.passed(&piece);
        emit(piece)
    };
    let tree = recovered.database.tree();
    let (_, mut rest) =
        write_state(tree, recovered.last_zxid, &recovered.sessions, header, &mut counted)?;
    sealing.finish(recovered.last_zxid.raw(), &mut rest);
    emit(rest.freeze())
}
