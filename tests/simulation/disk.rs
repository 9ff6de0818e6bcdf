//! A member's store: the in-memory store (what is durable) and the batches its storage
//! thread has in hand (what is not yet): the group it is writing, and the group of those
//! handed over meanwhile, which it writes next as one. A crash makes a prefix of those
//! writes durable (down to a prefix of one append's entries), as a crash part-way through
//! the thread's writes would,
//! and loses the rest; a failing
//! disk stops the member, as a storage error stops the server. A disk may also return a
//! log entry damaged once, as the member reads its store to start.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use zkrs::server::storage_writer::{carry_out, Write};
use zkrs::storage::memory::MemoryStorage;
use zkrs::storage::{Storage, StorageError};
use zkrs::txn::Zxid;

use crate::rng::Rng;

/// One member's store, which outlives the member's crashes.
#[derive(Default)]
pub struct Disk {
    /// What survives a crash.
    pub durable: Arc<MemoryStorage>,
    /// The group being written and the one waiting for it, each with when it will be
    /// durable and its batches.
    writing: VecDeque<(u64, Vec<Vec<Write>>)>,
    /// The next batch fails to be written.
    pub failing: bool,
}

impl Disk {
    /// Whether a batch is being written.
    pub fn is_writing(&self) -> bool {
        !self.writing.is_empty()
    }

    /// Takes `batch`: written at once, taking `took`, if nothing is being written;
    /// otherwise with the group after the one being written, which takes `took` once
    /// that one is done.
    pub fn start(&mut self, batch: Vec<Write>, now: u64, took: u64) {
        if let Some((_, waiting)) = self.writing.get_mut(1) {
            waiting.push(batch);
            return;
        }
        let start = self.writing.front().map_or(now, |(done_at, _)| (*done_at).max(now));
        self.writing.push_back((start + took, vec![batch]));
    }

    /// Finishes the group being written if it is due by `now`: `Some(Ok(n))` once its n
    /// batches are durable, `Some(Err)` if the disk failed (the member must stop), `None`
    /// if none is due.
    pub fn finish_due(&mut self, now: u64) -> Option<Result<usize, StorageError>> {
        if self.writing.front().is_none_or(|(done_at, _)| *done_at > now) {
            return None;
        }
        let (_, batches) = self.writing.pop_front()?;
        if std::mem::take(&mut self.failing) {
            // As the storage thread, it writes nothing after a failure.
            self.writing.clear();
            return Some(Err(StorageError::Backend("simulated disk failure".into())));
        }
        let count = batches.len();
        let storage = self.durable.clone();
        let written =
            batches.into_iter().flatten().try_for_each(|write| carry_out(storage.as_ref(), write));
        Some(written.map(|()| count))
    }

    /// Makes the next read of one random log entry return it with a bit flipped, as a
    /// disk that returns bad data once would: what to hand [`Disk::repair`] after the
    /// read. `None` for an empty log.
    pub fn damage_one_entry(&self, rng: &mut Rng) -> Option<(Zxid, Bytes)> {
        let mut entries = Vec::new();
        let all = self.durable.read_log(Zxid::ZERO, &mut |entry| {
            entries.push(entry);
            true
        });
        all.ok()?;
        if entries.is_empty() {
            return None;
        }
        // The last entry half the time: recovery reads the tail most carefully.
        let at = if rng.chance(50) {
            entries.len() - 1
        } else {
            rng.below(entries.len() as u64) as usize
        };
        let entry = entries.swap_remove(at);
        let mut damaged = entry.value.to_vec();
        let bit = rng.below(damaged.len() as u64 * 8);
        damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
        self.durable.corrupt_log_entry(entry.zxid, damaged.into());
        Some((entry.zxid, entry.value))
    }

    /// The read is over: the entry damaged by [`Disk::damage_one_entry`] reads right
    /// again, if it is still stored.
    pub fn repair(&self, (zxid, value): (Zxid, Bytes)) {
        let mut stored = false;
        let read = self.durable.read_log(zxid - 1, &mut |entry| {
            stored = entry.zxid == zxid;
            false
        });
        if read.is_ok() && stored {
            self.durable.corrupt_log_entry(zxid, value);
        }
    }

    /// The member crashed: a random prefix of the writes in hand reached the disk, and of
    /// the append it was cut short in, a prefix of the entries (the log writes an append's
    /// records in order, in one write).
    pub fn crash(&mut self, rng: &mut Rng) {
        let writes: Vec<Write> =
            self.writing.drain(..).flat_map(|(_, batches)| batches).flatten().collect();
        let kept = rng.below(writes.len() as u64 + 1) as usize;
        let mut writes = writes.into_iter();
        let whole =
            writes.by_ref().take(kept).all(|write| carry_out(self.durable.as_ref(), write).is_ok());
        if let (true, Some(Write::Append(mut entries))) = (whole, writes.next()) {
            entries.truncate(rng.below(entries.len() as u64 + 1) as usize);
            let _ = carry_out(self.durable.as_ref(), Write::Append(entries));
        }
        self.failing = false;
    }
}
