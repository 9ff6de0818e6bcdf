//! What a member has asked its storage thread to write and not yet heard back about, and
//! the messages that wait for those writes ([`crate::zab::Action::SendAfterPersist`]).
//!
//! Pure bookkeeping, no IO: the shell pushes writes and messages in the order the core
//! emits them, hands batches to the storage thread, and reports each batch's completion;
//! this says which messages may go now and which log position the core may be told is
//! durable.

use std::collections::VecDeque;

use crate::server::storage_writer::{append_joining, Write, BATCHES_IN_FLIGHT};
use crate::storage::LogEntry;
use crate::txn::Zxid;
use crate::zab::ServerId;

/// The writes and the messages waiting on them. `T` is a message as the shell sends it.
#[derive(Debug)]
pub struct PersistQueue<T> {
    /// Writes not yet handed to the storage thread, in order.
    waiting: Vec<Write>,
    /// The batches handed to the storage thread and not yet durable, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Writes asked for so far.
    asked: u64,
    /// Writes known durable so far.
    durable: u64,
    /// Truncations and snapshot installs asked for so far: an append's completion that
    /// one overtook no longer says anything about the log.
    rewrites: u64,
    /// Truncations and snapshot installs known durable so far.
    rewrites_durable: u64,
    /// The log's last zxid once every write asked for so far is done.
    log_end: Zxid,
    /// Messages waiting, in the order they were sent, each with the count of writes
    /// that must be durable first.
    held: VecDeque<(u64, ServerId, T)>,
}

#[derive(Debug)]
struct InFlight {
    /// The writes asked for when the batch was handed over, it included.
    through: u64,
    /// `rewrites` when it was handed over.
    rewrites: u64,
    /// The log's last zxid once it is written.
    log_end: Zxid,
}

/// What a finished batch allows.
#[derive(Debug)]
pub struct Done<T> {
    /// The log position now durable, to report to the core; `None` when a truncation or
    /// snapshot asked for after the batch makes the batch's appends meaningless.
    pub persisted: Option<Zxid>,
    /// Messages that may go now, in order.
    pub released: Vec<(ServerId, T)>,
}

impl<T> PersistQueue<T> {
    /// An empty queue over a log whose last zxid is `log_end`.
    pub fn new(log_end: Zxid) -> PersistQueue<T> {
        PersistQueue {
            waiting: Vec::new(),
            in_flight: VecDeque::new(),
            asked: 0,
            durable: 0,
            rewrites: 0,
            rewrites_durable: 0,
            log_end,
            held: VecDeque::new(),
        }
    }

    /// Asks for `write`, after every write asked for before it.
    pub fn push(&mut self, write: Write) {
        match write {
            Write::Append(entries) => return self.append(entries),
            Write::Truncate(zxid) => {
                self.log_end = self.log_end.min(zxid);
                self.rewrites += 1;
            }
            Write::Snapshot(ref store, _) => {
                self.log_end = store.zxid();
                self.rewrites += 1;
            }
            Write::Restore(ref installed) => {
                self.log_end = installed.zxid;
                self.rewrites += 1;
            }
            Write::Epochs(_) | Write::EpochEnds(_) => {}
        }
        self.asked += 1;
        self.waiting.push(write);
    }

    /// Asks for `entries` to be appended, after every write asked for before. Appends
    /// that follow each other are written together.
    pub fn append(&mut self, entries: impl IntoIterator<Item = LogEntry>) {
        self.asked += 1;
        append_joining(&mut self.waiting, entries);
        if let Some(Write::Append(waiting)) = self.waiting.last() {
            if let Some(last) = waiting.last() {
                self.log_end = last.zxid;
            }
        }
    }

    /// The writes to hand the storage thread now, if any are waiting and it has fewer
    /// than [`BATCHES_IN_FLIGHT`] batches in hand.
    pub fn take_batch(&mut self) -> Option<Vec<Write>> {
        if self.in_flight.len() >= BATCHES_IN_FLIGHT || self.waiting.is_empty() {
            return None;
        }
        let through = self.asked;
        self.in_flight.push_back(InFlight {
            through,
            rewrites: self.rewrites,
            log_end: self.log_end,
        });
        Some(std::mem::take(&mut self.waiting))
    }

    /// Whether a batch is being written.
    pub fn is_writing(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Whether every write asked for is durable.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.waiting.is_empty()
    }

    /// Whether a truncation or snapshot install asked for is not yet durable: until it
    /// is, the store does not hold the state in memory, and must not be snapshotted.
    pub fn rewriting(&self) -> bool {
        self.rewrites_durable < self.rewrites
    }

    /// The oldest `batches` batches handed over are durable.
    pub fn written(&mut self, batches: usize) -> Done<T> {
        let done = batches.min(self.in_flight.len());
        let Some(batch) = self.in_flight.drain(..done).next_back() else {
            return Done { persisted: None, released: Vec::new() };
        };
        self.durable = batch.through;
        self.rewrites_durable = batch.rewrites;
        let persisted = (batch.rewrites == self.rewrites).then_some(batch.log_end);
        let mut released = Vec::new();
        while self.held.front().is_some_and(|(through, ..)| *through <= self.durable) {
            if let Some((_, to, message)) = self.held.pop_front() {
                released.push((to, message));
            }
        }
        Done { persisted, released }
    }

    /// A message that may go at once, unless an earlier one to the same member waits:
    /// then it waits behind it. Returns it if it may go now.
    pub fn send(&mut self, to: ServerId, message: T) -> Option<T> {
        if self.held.iter().any(|(_, held_to, _)| *held_to == to) {
            self.held.push_back((self.asked, to, message));
            return None;
        }
        Some(message)
    }

    /// A message that goes once every write asked for so far is durable. Returns it if
    /// they already are and nothing to the same member waits.
    pub fn send_after_persist(&mut self, to: ServerId, message: T) -> Option<T> {
        if self.durable == self.asked && !self.held.iter().any(|(_, held_to, _)| *held_to == to) {
            return Some(message);
        }
        self.held.push_back((self.asked, to, message));
        None
    }

    /// The connection to `to` broke: what waits for it is dropped, as it would have been
    /// lost in the connection.
    pub fn forget(&mut self, to: ServerId) {
        self.held.retain(|(_, held_to, _)| *held_to != to);
    }
}

#[cfg(test)]
#[path = "persist_queue_test.rs"]
mod tests;
