//! Replacing a standalone server's whole state with a snapshot's (the AdminServer's
//! `restore`). The HTTP handler loads the uploaded snapshot into a tree of its own and
//! leaves it in the [`RestoreSlot`]; the driver takes it, stops taking client requests,
//! waits until every write in flight is applied, and has the pipeline install it
//! labelled with the last applied zxid, so the log goes on from there. The installed
//! state is then written as a snapshot on the storage thread, ahead of any later write,
//! and the snapshots and log entries of the old state go: the restore is answered once
//! the new state is durable.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use crate::server::snapshotter::take_snapshot_of;
use crate::server::Shared;
use crate::storage::{Storage, StorageError};
use crate::tree::DataTree;
use crate::txn::{SessionId, Zxid};

/// A loaded snapshot waiting to replace the state.
#[derive(Debug)]
pub struct Restore {
    /// The state, built with [`DataTree::empty_like`] on the server's tree.
    pub tree: DataTree,
    /// Its sessions and their timeouts.
    pub sessions: Vec<(SessionId, i32)>,
    /// Hears the zxid the state was installed at once it is durable, or why not.
    pub done: oneshot::Sender<Result<Zxid, String>>,
}

/// Where one restore waits for the driver.
#[derive(Debug, Default)]
pub struct RestoreSlot {
    waiting: Mutex<Option<Restore>>,
    asked: Notify,
}

impl RestoreSlot {
    /// Leaves `restore` for the driver; false (and `restore` dropped) if another one
    /// waits.
    pub fn offer(&self, restore: Restore) -> bool {
        let mut waiting = self.waiting.lock();
        if waiting.is_some() {
            return false;
        }
        *waiting = Some(restore);
        self.asked.notify_one();
        true
    }

    /// Completes once a restore was offered since the last call.
    pub async fn asked(&self) {
        self.asked.notified().await;
    }

    /// The restore waiting, if any.
    pub fn take(&self) -> Option<Restore> {
        self.waiting.lock().take()
    }
}

/// An installed state for the storage thread to make durable.
#[derive(Debug)]
pub struct Installed {
    /// The server, whose tree now holds the state; no txn applies to it before this is
    /// stored, as later writes are logged (and only then applied) after it.
    pub shared: Arc<Shared>,
    /// The zxid it is labelled with.
    pub zxid: Zxid,
    /// Its sessions.
    pub sessions: Vec<(SessionId, i32)>,
    /// Told when it is durable.
    pub done: oneshot::Sender<Result<Zxid, String>>,
}

impl Installed {
    /// Writes the state as the snapshot labelled with its zxid (in place of one of the
    /// old state with that label), then deletes every other snapshot and the log the
    /// old state needed. A crash before the snapshot is complete leaves the old state.
    ///
    /// # Errors
    /// If the store fails.
    pub fn store(self, storage: &dyn Storage) -> Result<(), StorageError> {
        let Installed { shared, zxid, sessions, done } = self;
        if storage.snapshots()?.iter().any(|header| header.zxid == zxid) {
            storage.delete_snapshot(zxid)?;
        }
        let created_ms = i64::try_from(shared.clock.wall_ms()).unwrap_or(i64::MAX);
        let never = AtomicBool::new(false);
        take_snapshot_of(shared.database.tree(), storage, zxid, &sessions, created_ms, &never)?;
        for header in storage.snapshots()? {
            if header.zxid != zxid {
                storage.delete_snapshot(header.zxid)?;
            }
        }
        storage.purge_log_through(zxid)?;
        tracing::info!(%zxid, "the restored state is durable");
        let _ = done.send(Ok(zxid));
        Ok(())
    }
}
