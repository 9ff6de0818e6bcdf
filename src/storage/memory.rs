//! A [`Storage`] in memory: what the simulator and unit tests run on.
//!
//! Appends are "synced" the moment they return, like a durable store; a simulated crash
//! is dropping the server while keeping this storage, which loses nothing appended.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::storage::record::{decode_header, encode_header, HEADER_INDEX};
use crate::storage::{Epochs, LogEntry, SnapshotHeader, SnapshotWriter, Storage, StorageError};
use crate::txn::Zxid;

#[derive(Debug, Default)]
struct State {
    log: BTreeMap<Zxid, Bytes>,
    snapshots: BTreeMap<(Zxid, u32), Bytes>,
    epochs: Epochs,
    epoch_ends: Vec<Zxid>,
}

/// Log, snapshots and epochs in maps behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    state: Mutex<State>,
}

impl MemoryStorage {
    /// Replaces a stored log value, to test how recovery meets damaged data.
    pub fn corrupt_log_entry(&self, zxid: Zxid, value: Bytes) {
        self.state.lock().log.insert(zxid, value);
    }
}

/// Gathers the chunks and stores them with the header in one step, as RocksDB's file
/// ingestion does: a crash while writing leaves nothing of the snapshot.
struct MemorySnapshotWriter<'a> {
    storage: &'a MemoryStorage,
    chunks: Vec<Bytes>,
}

impl SnapshotWriter for MemorySnapshotWriter<'_> {
    fn put(&mut self, chunk: &mut BytesMut) -> Result<(), StorageError> {
        crate::storage::record::seal_in_place(chunk);
        self.chunks.push(chunk.split().freeze());
        Ok(())
    }

    fn finish(self: Box<Self>, header: &SnapshotHeader) -> Result<(), StorageError> {
        let mut state = self.storage.state.lock();
        for (index, chunk) in (0u32..).zip(self.chunks) {
            state.snapshots.insert((header.zxid, index), chunk);
        }
        state.snapshots.insert((header.zxid, HEADER_INDEX), encode_header(header));
        Ok(())
    }
}

impl MemoryStorage {
    /// Replaces a stored snapshot chunk, to test how recovery meets damaged data.
    pub fn corrupt_snapshot_chunk(&self, zxid: Zxid, index: u32, value: Bytes) {
        self.state.lock().snapshots.insert((zxid, index), value);
    }
}

impl Storage for MemoryStorage {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        let mut last = state.log.keys().next_back().copied().unwrap_or(Zxid::ZERO);
        for entry in entries {
            if entry.zxid <= last {
                return Err(StorageError::OutOfOrder { zxid: entry.zxid, last });
            }
            last = entry.zxid;
        }
        for entry in entries {
            state.log.insert(entry.zxid, entry.value.clone());
        }
        Ok(())
    }

    fn last_logged_zxid(&self) -> Zxid {
        self.state.lock().log.keys().next_back().copied().unwrap_or(Zxid::ZERO)
    }

    fn read_log(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError> {
        let entries: Vec<LogEntry> = self
            .state
            .lock()
            .log
            .range(after.next()..)
            .map(|(zxid, value)| LogEntry { zxid: *zxid, value: value.clone() })
            .collect();
        for entry in entries {
            if !visit(entry) {
                break;
            }
        }
        Ok(())
    }

    fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.state.lock().log.split_off(&zxid.next());
        Ok(())
    }

    fn purge_log_through(&self, zxid: Zxid) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        let kept = state.log.split_off(&zxid.next());
        state.log = kept;
        Ok(())
    }

    fn begin_snapshot(&self, _zxid: Zxid) -> Result<Box<dyn SnapshotWriter + '_>, StorageError> {
        Ok(Box::new(MemorySnapshotWriter { storage: self, chunks: Vec::new() }))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StorageError> {
        let state = self.state.lock();
        let mut headers: Vec<SnapshotHeader> = state
            .snapshots
            .iter()
            .filter(|((_, index), _)| *index == HEADER_INDEX)
            .filter_map(|(_, value)| decode_header(value).ok())
            .collect();
        headers.sort_by_key(|header| std::cmp::Reverse(header.zxid));
        Ok(headers)
    }

    fn read_snapshot(
        &self,
        header: &SnapshotHeader,
        visit: &mut dyn FnMut(usize, Bytes) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for index in 0..header.chunks {
            let sealed = self.state.lock().snapshots.get(&(header.zxid, index)).cloned();
            let chunk =
                sealed.as_ref().and_then(crate::storage::record::unseal).ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "snapshot 0x{:x} chunk {index} is missing or damaged",
                        header.zxid
                    ))
                })?;
            visit(index as usize, chunk)?;
        }
        Ok(())
    }

    fn delete_snapshot(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.state.lock().snapshots.retain(|(snapshot, _), _| *snapshot != zxid);
        Ok(())
    }

    fn epochs(&self) -> Result<Epochs, StorageError> {
        Ok(self.state.lock().epochs)
    }

    fn set_epochs(&self, epochs: Epochs) -> Result<(), StorageError> {
        self.state.lock().epochs = epochs;
        Ok(())
    }

    fn epoch_ends(&self) -> Result<Vec<Zxid>, StorageError> {
        Ok(self.state.lock().epoch_ends.clone())
    }

    fn set_epoch_ends(&self, ends: &[Zxid]) -> Result<(), StorageError> {
        self.state.lock().epoch_ends = ends.to_vec();
        Ok(())
    }
}
