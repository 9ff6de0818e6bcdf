//! Snapshots between members, off the driver task and in bounded memory on both sides,
//! in the format ZooKeeper's leaders stream after SNAP (so a ZooKeeper learner takes a
//! zkrs leader's, and a zkrs learner a ZooKeeper leader's).
//!
//! A leader that must send a learner its whole state ([`Outbound`]) walks its tree on a
//! thread of its own while it goes on applying writes, so the snapshot is fuzzy exactly
//! as its own periodic ones are: labelled with the zxid applied when it began, holding
//! possibly some later changes, which the learner's replay of the entries after that
//! zxid makes harmless. The bytes go to the learner's link through a channel of a few
//! pieces: the thread waits for the connection, never the other way round.
//!
//! A learner ([`Inbound`]) gets the stream as pieces (the sessions, then each node, as
//! the link reads them) and loads them into a new tree on a thread of its own, so it
//! never holds the raw snapshot in memory. Its old state stays untouched until the core
//! installs the new one: a transfer that breaks off, or a node without its parent,
//! leaves it as it was. Once loaded, the tree is written as a pending snapshot of
//! zkrs's own, stored when the storage thread reaches it ([`Store`]), in order with the
//! log writes around it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use jute::records::Acl;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::ensemble::link::Streamed;
use crate::import::load_node;
use crate::server::Shared;
use crate::storage::{SnapshotHeader, Storage, StorageError};
use crate::tree::acl::AclId;
use crate::tree::child_walk::ChildWalk;
use crate::tree::data_tree::child_path;
use crate::tree::snapshot::{write_snapshot, Loaded, CHUNK_BYTES};
use crate::tree::DataTree;
use crate::txn::{SessionId, Zxid};
use crate::zk_format::snapshot::{
    write_nodes_end, write_transfer_head, write_transfer_node, write_transfer_signature,
    TransferPiece, OPEN_ACL_REFERENCE,
};

/// Pieces of the stream in flight between a leader's snapshot thread and the link.
const OUTBOUND_CHUNKS_IN_FLIGHT: usize = 4;
/// Batches of pieces a learner has received but not yet loaded.
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
    /// `sessions`, in ZooKeeper's transfer format into the channel it returns, which the
    /// link to `learner` writes out after the SNAP that announces it.
    ///
    /// # Errors
    /// If no thread can be started.
    pub fn start(
        shared: Arc<Shared>,
        learner: crate::zab::ServerId,
        zxid: Zxid,
        sessions: Vec<(SessionId, i32)>,
    ) -> std::io::Result<(Outbound, mpsc::Receiver<Streamed>)> {
        let (chunks, stream) = mpsc::channel(OUTBOUND_CHUNKS_IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread =
            std::thread::Builder::new().name("zkrs-snapshot-send".into()).spawn(move || {
                let sent = write_transferred(shared.database.tree(), zxid, &sessions, |bytes| {
                    send(&chunks, Streamed::Bytes(bytes), &stopping)
                })
                .and_then(|summary| send(&chunks, Streamed::End, &stopping).map(|()| summary));
                match sent {
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
                    Err(Ended::AclChanged) => tracing::warn!(
                        learner,
                        "an ACL list appeared while the snapshot was written; the learner \
                         syncs again"
                    ),
                }
            })?;
        Ok((Outbound { stop, thread }, stream))
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

/// Hands `item` to the link, waiting for room without holding up the link's task.
fn send(chunks: &mpsc::Sender<Streamed>, item: Streamed, stop: &AtomicBool) -> Result<(), Ended> {
    let mut item = item;
    loop {
        if stop.load(Ordering::Acquire) {
            return Err(Ended::Stopped);
        }
        match chunks.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(back)) => {
                item = back;
                std::thread::sleep(ROOM_POLL);
            }
            Err(TrySendError::Closed(_)) => return Err(Ended::Closed),
        }
    }
}

/// Why a snapshot for a learner was not written whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The link's connection broke, or the link is gone.
    Closed,
    /// [`Outbound::stop`].
    Stopped,
    /// A node uses an ACL list interned after the stream's ACL cache was written: the
    /// stream cannot name it, so the learner must sync again (ZooKeeper's leaders
    /// have the same race and send such a node with a reference the learner lacks).
    AclChanged,
}

/// What [`write_transferred`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferSummary {
    /// Znodes written.
    pub nodes: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes `tree` with `sessions` as a ZooKeeper leader streams its state after SNAP,
/// handing `emit` a piece at a time (about [`CHUNK_BYTES`] each). The walk is fuzzy, as
/// every snapshot is (see [`write_state`]); the learner replays the txns after the
/// snapshot's zxid.
///
/// # Errors
/// What `emit` returns, or [`Ended::AclChanged`].
pub fn write_transferred(
    tree: &DataTree,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    mut emit: impl FnMut(Bytes) -> Result<(), Ended>,
) -> Result<TransferSummary, Ended> {
    let (mut summary, mut out) = write_state(tree, zxid, sessions, BytesMut::new(), &mut emit)?;
    write_transfer_signature(&mut out);
    summary.bytes += out.len() as u64;
    emit(out.freeze())?;
    Ok(summary)
}

/// Writes `tree` at `zxid` with `sessions` after the bytes already in `out` (a file's
/// header, say) in the form a snapshot file and a transferred snapshot share, handing
/// `emit` a piece at a time (about [`CHUNK_BYTES`] each), and returns what is left to
/// write: the nodes' lone `/`, which the caller ends its way. The walk goes one child
/// table at a time, parents before children (a table's key sorts after its parent's), a
/// slice of a table per hold of its lock ([`ChildWalk`]), so applies go on meanwhile: on
/// a live tree the snapshot is fuzzy.
///
/// # Errors
/// What `emit` returns, or [`Ended::AclChanged`].
pub fn write_state(
    tree: &DataTree,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    mut out: BytesMut,
    emit: &mut impl FnMut(Bytes) -> Result<(), Ended>,
) -> Result<(TransferSummary, BytesMut), Ended> {
    let lists = tree.acl_lists();
    let known: HashSet<AclId> = lists.iter().map(|(id, _)| *id).collect();
    let listed: Vec<(i64, &[Acl])> = lists
        .iter()
        .filter(|(id, _)| *id != AclId::OPEN)
        .map(|(id, list)| (reference(*id), &list[..]))
        .collect();
    let sessions: Vec<(i64, i32)> = sessions.iter().map(|(id, to)| (id.raw(), *to)).collect();
    out.reserve(CHUNK_BYTES + CHUNK_BYTES / 16);
    write_transfer_head(&sessions, &listed, &mut out);
    let mut summary = TransferSummary::default();
    let mut parents = tree.parents();
    parents.sort();
    for parent in parents {
        let mut walk = ChildWalk::new(tree, &parent, zxid);
        let mut unknown_acl = false;
        while walk.step(tree, |nodes| {
            for node in nodes {
                if !known.contains(&node.acl()) {
                    unknown_acl = true;
                    return;
                }
                // The root, alone in the table keyed "", is written as `/`.
                let path = if parent.is_empty() {
                    "/".to_owned()
                } else {
                    child_path(&parent, node.name())
                };
                let stat = node.persisted_stat();
                write_transfer_node(&mut out, &path, node.data(), reference(node.acl()), &stat);
                summary.nodes += 1;
            }
        }) {
            if unknown_acl {
                return Err(Ended::AclChanged);
            }
            if out.len() >= CHUNK_BYTES {
                summary.bytes += out.len() as u64;
                emit(out.split().freeze())?;
            }
        }
    }
    write_nodes_end(&mut out);
    Ok((summary, out))
}

/// The reference a snapshot's ACL cache gives a list.
fn reference(id: AclId) -> i64 {
    if id == AclId::OPEN {
        OPEN_ACL_REFERENCE
    } else {
        i64::from(id.number())
    }
}

/// What a learner's transfer thread is told.
enum Command {
    /// The next pieces.
    Pieces(Vec<TransferPiece>),
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

    /// Hands over the next batch of pieces if the thread has room for it; gives it back
    /// if the thread is behind: offer it again once [`Inbound::room`] completes. Never
    /// waits.
    ///
    /// # Errors
    /// [`TransferError`] if it is not the batch due or the thread is gone.
    pub fn offer(
        &mut self,
        zxid: Zxid,
        index: u32,
        pieces: Vec<TransferPiece>,
    ) -> Result<Option<Vec<TransferPiece>>, TransferError> {
        if zxid != self.zxid || index != self.next_index {
            return Err(TransferError::OutOfOrder {
                zxid,
                index,
                receiving: self.zxid,
                expected: self.next_index,
            });
        }
        match self.commands.try_send(Command::Pieces(pieces)) {
            Ok(()) => {
                self.next_index += 1;
                Ok(None)
            }
            Err(TrySendError::Full(Command::Pieces(pieces))) => Ok(Some(pieces)),
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

/// The learner's transfer thread: loads the pieces into a new tree until sealed, writes
/// the tree as a pending snapshot and hands it over, then stores that snapshot when told
/// to. If the channel closes first (the transfer was abandoned), the pending snapshot
/// goes.
fn receive(
    storage: &dyn Storage,
    tree: DataTree,
    zxid: Zxid,
    created_ms: i64,
    mut commands: mpsc::Receiver<Command>,
) -> Result<(), StorageError> {
    let mut loaded = Loaded::default();
    let mut failure: Option<String> = None;
    let sealed = loop {
        match commands.blocking_recv() {
            Some(Command::Pieces(pieces)) => {
                if failure.is_some() {
                    continue;
                }
                for piece in pieces {
                    match piece {
                        TransferPiece::Sessions(sessions) => {
                            loaded.sessions = sessions
                                .into_iter()
                                .map(|(id, timeout_ms)| (SessionId::new(id), timeout_ms))
                                .collect();
                        }
                        TransferPiece::Node(node) => match load_node(&tree, &node) {
                            Ok(()) => loaded.nodes += 1,
                            Err(err) => {
                                failure = Some(err);
                                break;
                            }
                        },
                    }
                }
            }
            Some(Command::Seal(sealed)) => break sealed,
            Some(Command::Store { .. }) | None => return Ok(()),
        }
    };
    if let Some(failure) = failure {
        let _ = sealed.send(Err(failure));
        return Ok(());
    }
    let mut writer = storage.begin_snapshot(zxid)?;
    // The stream may hold nodes created after `zxid` (ZooKeeper's leaders, for one, send
    // such); the snapshot leaves them to the log replay, as every snapshot does.
    let summary = write_snapshot(&tree, zxid, &loaded.sessions, |chunk| writer.put(chunk))?;
    let header = SnapshotHeader {
        zxid,
        chunks: u32::try_from(summary.chunks).unwrap_or(u32::MAX),
        nodes: summary.nodes,
        sessions: u32::try_from(loaded.sessions.len()).unwrap_or(u32::MAX),
        bytes: summary.bytes,
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
