//! A member's history as the core sees it: the last zxid, where each epoch ends, and a
//! window of recent entries to bring learners up to date with.
//!
//! Two histories agree on every entry up to a common point, and the leader's epoch ends
//! find it from the learner's last zxid (all ZooKeeper's ACKEPOCH tells): entries of one
//! epoch all come from that epoch's single leader, in counter order, so two members that
//! both hold entries of epoch `e` agree on them up to the smaller of their last zxids in
//! `e` (and on everything before `e`).

use std::collections::VecDeque;

use crate::txn::Zxid;
use crate::zab::Entry;

/// The log's shape and its recent entries.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The last zxid of each epoch that has entries, ascending, over the whole history
    /// (including what snapshots cover).
    epoch_ends: Vec<Zxid>,
    /// Recent entries, ascending; every entry after `window_base` is here.
    window: VecDeque<Entry>,
    /// The zxid just before the window's first entry.
    window_base: Zxid,
    /// The last entry's zxid (or the snapshot's, with no entries after it).
    last: Zxid,
}

impl History {
    /// A history that starts from state at `base` (a snapshot, or 0), whose epochs up to
    /// `base` ended at `epoch_ends`, followed by `entries`.
    pub fn new(base: Zxid, epoch_ends: Vec<Zxid>, entries: Vec<Entry>) -> History {
        let mut history = History {
            epoch_ends: epoch_ends.into_iter().filter(|end| *end <= base).collect(),
            window: VecDeque::new(),
            window_base: base,
            last: base,
        };
        history.note_end(base);
        for entry in entries {
            history.append(entry);
        }
        history
    }

    /// The last zxid.
    pub fn last(&self) -> Zxid {
        self.last
    }

    /// Where each epoch ends.
    pub fn epoch_ends(&self) -> &[Zxid] {
        &self.epoch_ends
    }

    /// Adds the next entry.
    ///
    /// # Panics
    /// If its zxid does not follow the last one: a broken invariant of the caller.
    pub fn append(&mut self, entry: Entry) {
        assert!(entry.zxid > self.last, "zxid 0x{:x} after 0x{:x}", entry.zxid, self.last);
        self.last = entry.zxid;
        self.note_end(entry.zxid);
        self.window.push_back(entry);
    }

    fn note_end(&mut self, zxid: Zxid) {
        if zxid.counter() == 0 {
            return;
        }
        match self.epoch_ends.last_mut() {
            Some(end) if end.epoch() == zxid.epoch() => *end = zxid,
            _ => self.epoch_ends.push(zxid),
        }
    }

    /// Drops every entry after `zxid`.
    pub fn truncate_after(&mut self, zxid: Zxid) {
        if zxid >= self.last {
            return;
        }
        self.window.retain(|entry| entry.zxid <= zxid);
        self.epoch_ends.retain(|end| *end <= zxid);
        self.note_end(zxid);
        self.window_base = self.window_base.min(zxid);
        self.last = zxid;
    }

    /// Starts over from a snapshot at `zxid`. Of the epochs before it, it knows only
    /// that `zxid` ends its own, as a ZooKeeper learner knows after a SNAP; a learner
    /// whose log ends in an earlier epoch gets a snapshot from it in turn.
    pub fn install_snapshot(&mut self, zxid: Zxid) {
        let ends = if zxid.counter() == 0 { Vec::new() } else { vec![zxid] };
        *self = History::new(zxid, ends, Vec::new());
    }

    /// The last zxid of `epoch` in this history, if it has entries of that epoch.
    fn end_of(&self, epoch: u32) -> Option<Zxid> {
        self.epoch_ends.iter().copied().find(|end| end.epoch() == epoch)
    }

    /// The last zxid up to which a learner whose log ends at `learner_last` agrees with
    /// this history, if this history can tell.
    ///
    /// Both logs hold every zxid of an epoch from its first up to where they end, and a
    /// zxid names the same txn in every log that has it (one leader per epoch), with the
    /// same history before it. So when this history has entries of the learner's last
    /// epoch, the two agree up to the smaller of their ends in it. When it has none, the
    /// learner's last epoch never committed, and where its log left this history is not
    /// known from its last zxid alone (ZooKeeper truncates to the leader's last zxid
    /// before it, which drops txns the learner may lack): `None`, and the learner gets a
    /// snapshot.
    pub fn common_point(&self, learner_last: Zxid) -> Option<Zxid> {
        if learner_last == Zxid::ZERO {
            return Some(Zxid::ZERO);
        }
        self.end_of(learner_last.epoch()).map(|end| end.min(learner_last))
    }

    /// The entries after `zxid`, if the window still has all of them.
    pub fn entries_after(&self, zxid: Zxid) -> Option<Vec<Entry>> {
        if zxid < self.window_base {
            return None;
        }
        Some(self.window.range(self.position_after(zxid)..).cloned().collect())
    }

    /// The entries in `(after, through]`. The window is in zxid order, so both ends are
    /// found by binary search: a leader applies every commit from a window of thousands.
    ///
    /// # Panics
    /// If the window no longer has them: the core keeps every entry it has not applied.
    pub fn entries_between(&self, after: Zxid, through: Zxid) -> Vec<Entry> {
        assert!(after >= self.window_base, "entries after 0x{after:x} are gone");
        let (start, end) = (self.position_after(after), self.position_after(through));
        if start >= end {
            return Vec::new();
        }
        self.window.range(start..end).cloned().collect()
    }

    /// The index of the first window entry after `zxid`.
    fn position_after(&self, zxid: Zxid) -> usize {
        self.window.partition_point(|entry| entry.zxid <= zxid)
    }

    /// Forgets the oldest entries beyond `max_entries`, never those after `keep_after`.
    pub fn trim(&mut self, keep_after: Zxid, max_entries: usize) {
        while self.window.len() > max_entries {
            match self.window.front() {
                Some(front) if front.zxid <= keep_after => {
                    self.window_base = front.zxid;
                    self.window.pop_front();
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: u32, counter: u32) -> Entry {
        Entry { zxid: Zxid::epoch_start(epoch) + counter, payload: bytes::Bytes::new() }
    }

    fn history(entries: &[(u32, u32)]) -> History {
        History::new(Zxid::ZERO, Vec::new(), entries.iter().map(|(e, c)| entry(*e, *c)).collect())
    }

    #[test]
    fn entries_are_found_by_zxid_range() {
        let h = history(&[(1, 1), (1, 2), (1, 3), (2, 1)]);
        let zxids = |entries: Vec<Entry>| entries.iter().map(|e| e.zxid).collect::<Vec<_>>();
        let between = h.entries_between(Zxid::epoch_start(1) + 1, Zxid::epoch_start(2) + 1);
        assert_eq!(
            zxids(between),
            [Zxid::epoch_start(1) + 2, Zxid::epoch_start(1) + 3, Zxid::epoch_start(2) + 1]
        );
        assert!(h.entries_between(Zxid::epoch_start(1) + 3, Zxid::epoch_start(1) + 2).is_empty());
        assert_eq!(
            zxids(h.entries_after(Zxid::epoch_start(1) + 3).expect("in window")),
            [Zxid::epoch_start(2) + 1]
        );
        assert_eq!(h.entries_after(Zxid::epoch_start(3)).expect("in window"), Vec::new());
    }

    #[test]
    fn epoch_ends_track_appends_and_truncation() {
        let mut h = history(&[(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]);
        assert_eq!(h.epoch_ends(), &[Zxid::epoch_start(1) + 2, Zxid::epoch_start(2) + 3]);
        h.truncate_after(Zxid::epoch_start(2) + 1);
        assert_eq!(h.epoch_ends(), &[Zxid::epoch_start(1) + 2, Zxid::epoch_start(2) + 1]);
        h.truncate_after(Zxid::epoch_start(1) + 2);
        assert_eq!(h.epoch_ends(), &[Zxid::epoch_start(1) + 2]);
        assert_eq!(h.last(), Zxid::epoch_start(1) + 2);
    }

    #[test]
    fn common_point_comes_from_the_learners_last_zxid_alone() {
        let leader = history(&[(1, 1), (1, 2), (1, 3), (3, 1)]);
        // Behind in an epoch the leader has: agrees up to its last entry.
        assert_eq!(leader.common_point(Zxid::epoch_start(1) + 2), Some(Zxid::epoch_start(1) + 2));
        // Past the leader's end of that epoch (an uncommitted tail): up to the leader's end.
        assert_eq!(leader.common_point(Zxid::epoch_start(1) + 5), Some(Zxid::epoch_start(1) + 3));
        assert_eq!(leader.common_point(Zxid::epoch_start(3) + 2), Some(Zxid::epoch_start(3) + 1));
        // An empty learner agrees on nothing, which every history starts from.
        assert_eq!(leader.common_point(Zxid::ZERO), Some(Zxid::ZERO));
        // A learner whose last epoch the leader lacks (its 2.x never committed) cannot be
        // placed from its last zxid: it may lack 1.3, or not. It needs a snapshot.
        assert_eq!(leader.common_point(Zxid::epoch_start(2) + 2), None);
    }

    #[test]
    fn the_window_serves_diffs_until_trimmed() {
        let mut h = history(&[(1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(h.entries_after(Zxid::epoch_start(1) + 2).map(|e| e.len()), Some(2));
        h.trim(Zxid::epoch_start(1) + 3, 1);
        assert_eq!(h.entries_after(Zxid::epoch_start(1) + 2), None);
        assert_eq!(h.entries_after(Zxid::epoch_start(1) + 3).map(|e| e.len()), Some(1));
        // Entries after the applied point stay whatever the limit.
        h.trim(Zxid::epoch_start(1) + 3, 0);
        assert_eq!(h.entries_between(Zxid::epoch_start(1) + 3, h.last()).len(), 1);
    }

    #[test]
    fn snapshot_restarts_the_history_at_its_zxid() {
        let mut h = history(&[(1, 1), (2, 1)]);
        h.install_snapshot(Zxid::epoch_start(3) + 7);
        assert_eq!(h.last(), Zxid::epoch_start(3) + 7);
        assert_eq!(h.epoch_ends(), &[Zxid::epoch_start(3) + 7]);
        assert_eq!(h.entries_after(Zxid::epoch_start(3) + 7), Some(Vec::new()));
        assert_eq!(h.entries_after(Zxid::epoch_start(3) + 6), None);
        assert_eq!(h.common_point(Zxid::epoch_start(2) + 1), None);
        h.install_snapshot(Zxid::epoch_start(4));
        assert_eq!(h.epoch_ends(), &[] as &[Zxid]);
    }
}
