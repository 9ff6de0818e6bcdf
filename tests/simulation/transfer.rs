//! Snapshot transfers, as the shell (`zkrs::server::driver`) carries them out: a
//! leader's snapshot of its state goes out as chunk frames just ahead of the `Snap` that
//! offers it; a learner hands each chunk to the real transfer thread (`Inbound`), which
//! stores it in the member's durable store as a pending snapshot, and seals it at the
//! `Snap`. The simulator waits for that thread where the shell would wait beside other
//! work, so a run stays deterministic.

use std::sync::Arc;

use bytes::Bytes;
use zkrs::ensemble::frame::PeerFrame;
use zkrs::server::snapshotter::live_sessions;
use zkrs::server::transfer::{Inbound, Sealed, TransferError};
use zkrs::server::Shared;
use zkrs::storage::Storage;
use zkrs::tree::snapshot::write_snapshot;
use zkrs::txn::Zxid;
use zkrs::zab::ServerId;

/// The chunk frames of `shared`'s state, labelled `zxid`.
pub fn chunks_of(shared: &Shared, zxid: Zxid) -> Vec<PeerFrame> {
    let sessions = live_sessions(shared);
    let mut frames = Vec::new();
    let mut index = 0u32;
    let written =
        write_snapshot::<std::convert::Infallible>(shared.database.tree(), &sessions, |chunk| {
            frames.push(PeerFrame::SnapshotChunk { zxid, index, chunk: chunk.split().freeze() });
            index += 1;
            Ok(())
        });
    match written {
        Ok(_) => frames,
        Err(never) => match never {},
    }
}

/// A snapshot a learner is receiving from the member named.
pub struct Receiving {
    pub from: ServerId,
    inbound: Inbound,
}

/// A chunk from `from` arrived at a learner with `shared` state and `storage`: the
/// first starts a transfer (into `receiving`). `Err` if the link must be dropped.
pub fn chunk(
    receiving: &mut Option<Receiving>,
    shared: &Shared,
    storage: Arc<dyn Storage>,
    from: ServerId,
    (zxid, index, mut chunk): (Zxid, u32, Bytes),
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
    while let Some(back) = transfer.inbound.offer(zxid, index, chunk)? {
        std::thread::yield_now();
        chunk = back;
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
