//! Snapshots between members, off the driver task and in bounded memory on both sides.
//!
//! A leader that must send a learner its whole state ([`Outbound`]) walks its tree on a
//! thread of its own while it goes on applying writes, so the snapshot is fuzzy exactly
//! as its own periodic ones are: labelled with the zxid applied when it began, holding
//! possibly some later changes, which the learner's replay of the entries after that
//! zxid makes harmless. Chunks go to the learner's link through a channel of a few
//! chunks: the thread waits for the connection, never the other way round.
//!
//! A learner ([`Inbound`]) loads each chunk into a new tree and writes it to a pending
//! snapshot as it arrives, on a thread of its own, so it never holds the raw snapshot in
//! memory. Its old state stays untouched until the core installs the new one: a transfer
//! that breaks off, or a chunk that does not decode, leaves it as it was. Once installed
//! in memory, the snapshot is stored when the storage thread reaches it ([`Store`]), in
//! order with the log writes around it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::ensemble::frame::{self, PeerFrame};
use crate::server::Shared;
use crate::storage::{SnapshotHeader, Storage, StorageError};
use crate::tree::snapshot::{load_chunk, write_snapshot, Loaded, SnapshotSummary};
use crate::tree::DataTree;
use crate::txn::{SessionId, Zxid};

/// Encoded chunk frames in flight between a leader's snapshot thread and the link.
const OUTBOUND_CHUNKS_IN_FLIGHT: usize = 4;
/// Chunks a learner has received but not yet loaded and stored.
const INBOUND_CHUNKS_IN_FLIGHT: usize = 4;
/// How often a snapshot thread waiting for room in the link's channel looks again.
const ROOM_POLL: Duration = Duration::from_millis(1);

/// A snapshot a leader is streaming to one learner.
#[derive(Debug)]
pub struct Outbound {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Outbound {
    /// Starts streaming the state, labelled `zxid` (the one applied now), with the live
    /// `sessions`, as encoded [`PeerFrame::SnapshotChunk`] frames into the channel it
    /// returns, which the link to `learner` writes out ahead of anything queued after it.
    ///
    /// # Errors
    /// If no thread can be started.
    pub fn start(
        shared: Arc<Shared>,
        learner: crate::zab::ServerId,
        zxid: Zxid,
        sessions: Vec<(SessionId, i32)>,
    ) -> std::io::Result<(Outbound, mpsc::Receiver<Bytes>)> {
        let (chunks, frames) = mpsc::channel(OUTBOUND_CHUNKS_IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread =
            std::thread::Builder::new().name("zkrs-snapshot-send".into()).spawn(move || {
                match stream(shared.database.tree(), zxid, &sessions, &chunks, &stopping) {
                    Ok(summary) => tracing::info!(
                        learner,
                        %zxid,
                        nodes = summary.nodes,
                        bytes = summary.bytes,
                        "sent a snapshot"
                    ),
                    Err(Ended::Closed) => {
                        tracing::info!(learner, "snapshot transfer ended: the connection is gone")
                    }
                    Err(Ended::Stopped) => tracing::debug!(learner, "snapshot transfer stopped"),
                }
            })?;
        Ok((Outbound { stop, thread }, frames))
    }

    /// Whether the transfer is over, sent in full or not.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the transfer and waits for its thread: the tree it reads is about to be
    /// replaced, or the store closed.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if self.thread.join().is_err() {
            tracing::error!("the snapshot transfer thread panicked");
        }
    }
}

/// Why a transfer ended early.
enum Ended {
    /// The link's connection broke, or the link is gone.
    Closed,
    /// [`Outbound::stop`].
    Stopped,
}

fn stream(
    tree: &DataTree,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    chunks: &mpsc::Sender<Bytes>,
    stop: &AtomicBool,
) -> Result<SnapshotSummary, Ended> {
    let mut index = 0u32;
    let mut encoded = BytesMut::new();
    write_snapshot(tree, sessions, |chunk| {
        let chunk = PeerFrame::SnapshotChunk { zxid, index, chunk: chunk.split().freeze() };
        frame::encode(&chunk, &mut encoded);
        index += 1;
        let mut frame = encoded.split().freeze();
        loop {
            if stop.load(Ordering::Acquire) {
                return Err(Ended::Stopped);
            }
            match chunks.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(back)) => {
                    frame = back;
                    std::thread::sleep(ROOM_POLL);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Ended::Closed),
            }
        }
    })
}

/// What a learner's transfer thread is told.
enum Command {
    /// The next chunk.
    Chunk(Bytes),
    /// Every chunk has come: hand over the new state if all loaded.
    Seal(oneshot::Sender<Result<(DataTree, Loaded), String>>),
    /// The core installed the snapshot: store it durably and drop the log it replaces.
    Store { epoch_ends: Vec<Zxid>, done: oneshot::Sender<Result<(), StorageError>> },
}

/// A learner's new state, every chunk loaded, ready to replace the old one; what it
/// describes is stored when the storage thread reaches [`Sealed::store`].
#[derive(Debug)]
pub struct Sealed {
    /// The tree the snapshot describes.
    pub tree: DataTree,
    /// Its sessions and node count.
    pub loaded: Loaded,
    /// Stores the snapshot.
    pub store: Store,
}

/// The pending snapshot of a sealed transfer, stored by [`Store::finish`]; dropped
/// unfinished, it is discarded.
#[derive(Debug)]
pub struct Store {
    zxid: Zxid,
    commands: mpsc::Sender<Command>,
}

impl Store {
    /// The snapshot's label.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// Stores the snapshot durably with the history's `epoch_ends` and drops the log
    /// entries it replaces. Blocks: call it from the storage thread.
    ///
    /// # Errors
    /// If the storage fails.
    pub fn finish(self, epoch_ends: Vec<Zxid>) -> Result<(), StorageError> {
        let gone = || StorageError::Backend("the snapshot transfer thread is gone".into());
        let (done, outcome) = oneshot::channel();
        self.commands.blocking_send(Command::Store { epoch_ends, done }).map_err(|_| gone())?;
        outcome.blocking_recv().map_err(|_| gone())?
    }
}

/// A snapshot a learner is receiving from its leader.
#[derive(Debug)]
pub struct Inbound {
    zxid: Zxid,
    next_index: u32,
    commands: mpsc::Sender<Command>,
}

/// What went wrong with the chunks a leader sent.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A chunk out of order, or of another snapshot.
    #[error(
        "chunk {index} of snapshot 0x{zxid:x} where chunk {expected} of 0x{receiving:x} was due"
    )]
    OutOfOrder {
        /// The chunk's snapshot.
        zxid: Zxid,
        /// Its index.
        index: u32,
        /// The snapshot being received.
        receiving: Zxid,
        /// The index due.
        expected: u32,
    },
    /// A chunk other than the first with no transfer under way from its sender.
    #[error("chunk {index} of snapshot 0x{zxid:x} without the chunks before it")]
    Unexpected {
        /// The chunk's snapshot.
        zxid: Zxid,
        /// Its index.
        index: u32,
    },
    /// A `Snap` whose chunks did not come.
    #[error("snapshot 0x{zxid:x} offered without its chunks")]
    Missing {
        /// The snapshot offered.
        zxid: Zxid,
    },
    /// A chunk does not decode.
    #[error("the leader's snapshot is malformed: {0}")]
    Malformed(String),
    /// The transfer thread is gone (it failed to start or to store).
    #[error("the snapshot transfer thread is gone")]
    Gone,
}

impl Inbound {
    /// Starts receiving the snapshot labelled `zxid`, into a tree like `like` (its hash
    /// seed and extended types) and a pending snapshot in `storage`.
    ///
    /// # Errors
    /// If no thread can be started.
    pub fn start(
        storage: Arc<dyn Storage>,
        like: &DataTree,
        zxid: Zxid,
        created_ms: i64,
    ) -> std::io::Result<Inbound> {
        let (commands, receiver) = mpsc::channel(INBOUND_CHUNKS_IN_FLIGHT);
        let tree = like.empty_like();
        std::thread::Builder::new().name("zkrs-snapshot-receive".into()).spawn(move || {
            if let Err(err) = receive(storage.as_ref(), tree, zxid, created_ms, receiver) {
                tracing::error!(cause = %err, "storing the leader's snapshot failed");
            }
        })?;
        Ok(Inbound { zxid, next_index: 0, commands })
    }

    /// The snapshot's label.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// Hands over the next chunk if the thread has room for it; gives it back if the
    /// thread is behind: offer it again once [`Inbound::room`] completes. Never waits.
    ///
    /// # Errors
    /// [`TransferError`] if it is not the chunk due or the thread is gone.
    pub fn offer(
        &mut self,
        zxid: Zxid,
        index: u32,
        chunk: Bytes,
    ) -> Result<Option<Bytes>, TransferError> {
        if zxid != self.zxid || index != self.next_index {
            return Err(TransferError::OutOfOrder {
                zxid,
                index,
                receiving: self.zxid,
                expected: self.next_index,
            });
        }
        match self.commands.try_send(Command::Chunk(chunk)) {
            Ok(()) => {
                self.next_index += 1;
                Ok(None)
            }
            Err(TrySendError::Full(Command::Chunk(chunk))) => Ok(Some(chunk)),
            Err(_) => Err(TransferError::Gone),
        }
    }

    /// Completes once the thread has room for another chunk (at once if it has). It
    /// borrows nothing, so the shell can wait for it beside everything else it waits for.
    pub fn room(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let commands = self.commands.clone();
        async move {
            // The permit is dropped unused: only the shell sends, so the room stays.
            let _ = commands.reserve_owned().await;
        }
    }

    /// Waits until every chunk handed over is loaded, then takes the new state. The
    /// future owns the transfer, so the shell can wait for it beside everything else.
    ///
    /// # Errors
    /// [`TransferError::Malformed`] if one did not load.
    pub async fn seal(self) -> Result<Sealed, TransferError> {
        let (done, outcome) = oneshot::channel();
        self.commands.send(Command::Seal(done)).await.map_err(|_| TransferError::Gone)?;
        let (tree, loaded) =
            outcome.await.map_err(|_| TransferError::Gone)?.map_err(TransferError::Malformed)?;
        Ok(Sealed { tree, loaded, store: Store { zxid: self.zxid, commands: self.commands } })
    }
}

/// The learner's transfer thread: loads and stores chunks until sealed, hands over the
/// tree, then stores the snapshot when told to. If the channel closes first (the
/// transfer was abandoned), the pending snapshot goes.
fn receive(
    storage: &dyn Storage,
    tree: DataTree,
    zxid: Zxid,
    created_ms: i64,
    mut commands: mpsc::Receiver<Command>,
) -> Result<(), StorageError> {
    let mut writer = storage.begin_snapshot(zxid)?;
    let mut loaded = Loaded::default();
    let mut failure: Option<String> = None;
    let (mut chunks, mut bytes) = (0usize, 0u64);
    let sealed = loop {
        match commands.blocking_recv() {
            Some(Command::Chunk(chunk)) => {
                if failure.is_some() {
                    continue;
                }
                if let Err(err) = load_chunk(&tree, chunks, &chunk, &mut loaded) {
                    failure = Some(err.to_string());
                    continue;
                }
                bytes += chunk.len() as u64;
                chunks += 1;
                let mut chunk =
                    chunk.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                writer.put(&mut chunk)?;
            }
            Some(Command::Seal(sealed)) => break sealed,
            Some(Command::Store { .. }) | None => return Ok(()),
        }
    };
    if let Some(failure) = failure {
        let _ = sealed.send(Err(failure));
        return Ok(());
    }
    let header = SnapshotHeader {
        zxid,
        chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
        nodes: loaded.nodes,
        sessions: u32::try_from(loaded.sessions.len()).unwrap_or(u32::MAX),
        bytes,
        created_ms,
    };
    if sealed.send(Ok((tree, loaded))).is_err() {
        return Ok(());
    }
    let Some(Command::Store { epoch_ends, done }) = commands.blocking_recv() else {
        return Ok(());
    };
    let stored = writer.finish(&header).and_then(|()| {
        storage.truncate_after(zxid)?;
        storage.purge_log_through(zxid)?;
        storage.set_epoch_ends(&epoch_ends)
    });
    let _ = done.send(stored);
    Ok(())
}

#[cfg(test)]
#[path = "transfer_test.rs"]
mod tests;
