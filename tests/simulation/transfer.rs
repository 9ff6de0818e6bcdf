//! Snapshot transfers, as the shell (`zkrs::server::driver`) and its links carry them
//! out: a leader's snapshot of its state, in ZooKeeper's transfer format, is read back
//! as the learner's link reads it, in batches of pieces that go just ahead of the `Snap`
//! that offers it; a learner hands each batch to the real transfer thread (`Inbound`),
//! which loads it and, at the `Snap`, seals it and writes it to the member's durable
//! store as a pending snapshot. The simulator waits for that thread where the shell would wait beside other
//! work, so a run stays deterministic.

use std::sync::Arc;

use zkrs::ensemble::frame::PeerFrame;
use zkrs::server::snapshotter::live_sessions;
use zkrs::server::transfer::{write_transferred, Inbound, Sealed, TransferError};
use zkrs::server::Shared;
use zkrs::storage::Storage;
use zkrs::txn::Zxid;
use zkrs::zab::ServerId;
use zkrs::zk_format::snapshot::{TransferPiece, TransferReader};

/// Bytes of the stream a learner's link reads at once, in this model.
const READ_BYTES: usize = 16 << 10;

/// The frames of `shared`'s state, labelled `zxid`, as a learner's link reads them.
pub fn chunks_of(shared: &Shared, zxid: Zxid) -> Vec<PeerFrame> {
    let sessions = live_sessions(shared);
    let mut stream = Vec::new();
    let written = write_transferred(shared.database.tree(), zxid, &sessions, |bytes| {
        stream.extend_from_slice(&bytes);
        Ok(())
    });
    if written.is_err() {
        // No ACL list appears while nothing else runs: the stream is always whole.
        return Vec::new();
    }
    let mut reader = TransferReader::new();
    let mut frames = Vec::new();
    for (index, part) in (0u32..).zip(stream.chunks(READ_BYTES)) {
        let mut pieces = Vec::new();
        if reader.feed(part, &mut pieces).is_err() {
            return Vec::new();
        }
        frames.push(PeerFrame::SnapshotPieces { zxid, index, pieces });
    }
    frames
}

/// A snapshot a learner is receiving from the member named.
pub struct Receiving {
    pub from: ServerId,
    inbound: Inbound,
}

/// Pieces from `from` arrived at a learner with `shared` state and `storage`: the
/// first batch starts a transfer (into `receiving`). `Err` if the link must be dropped.
pub fn pieces(
    receiving: &mut Option<Receiving>,
    shared: &Shared,
    storage: Arc<dyn Storage>,
    from: ServerId,
    (zxid, index, mut pieces): (Zxid, u32, Vec<TransferPiece>),
) -> Result<(), TransferError> {
    if index == 0 {
        let created_ms = shared.clock.wall_ms() as i64;
        let inbound = Inbound::start(storage, shared.database.tree(), zxid, created_ms)
            .map_err(|_| TransferError::Gone)?;
        *receiving = Some(Receiving { from, inbound });
    }
    let Some(transfer) = receiving.as_mut().filter(|transfer| transfer.from == from) else {
        return Err(TransferError::Unexpected { zxid, index });
    };
    // The transfer thread drains its few chunks quickly; the shell would wait beside
    // other work, the simulator waits here.
    while let Some(back) = transfer.inbound.offer(zxid, index, pieces)? {
        std::thread::yield_now();
        pieces = back;
    }
    Ok(())
}

/// The `Snap` from `from` offers snapshot `zxid`: the sealed state, if every chunk came
/// and loaded.
pub fn seal(
    receiving: &mut Option<Receiving>,
    runtime: &tokio::runtime::Runtime,
    from: ServerId,
    zxid: Zxid,
) -> Result<Sealed, TransferError> {
    match receiving.take() {
        Some(transfer) if transfer.from == from && transfer.inbound.zxid() == zxid => {
            runtime.block_on(transfer.inbound.seal())
        }
        _ => Err(TransferError::Missing { zxid }),
    }
}
