//! Watch registrations and which of them a change triggers (ZooKeeper's `WatchManager`).
//!
//! A [`WatchManager`] holds one kind of watch: the database keeps one for data and exists
//! watches and one for child watches, as ZooKeeper does. A watcher is a connection; each
//! (watcher, path) pair has one mode, and registering again replaces the mode, exactly as
//! ZooKeeper 3.8's `WatcherModeManager`. One trigger notifies each watcher at most once.

use std::collections::{BTreeMap, BTreeSet};

use crate::fast_hash::{FastHashMap, FastHashSet};

use parking_lot::Mutex;

/// Identifies a watcher: the id of the client connection that registered it.
pub type WatcherId = u64;

/// How a registration behaves when triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherMode {
    /// One-shot: removed when it fires.
    Standard,
    /// Fires for the path itself, never removed (`addWatch` mode 0).
    Persistent,
    /// Fires for the path and every descendant, except child-list changes (`addWatch` mode 1).
    PersistentRecursive,
}

impl WatcherMode {
    /// The mode of an `addWatch` request, if the number is valid.
    pub fn from_add_watch_mode(mode: i32) -> Option<WatcherMode> {
        match mode {
            0 => Some(WatcherMode::Persistent),
            1 => Some(WatcherMode::PersistentRecursive),
            _ => None,
        }
    }

    fn is_persistent(self) -> bool {
        self != WatcherMode::Standard
    }

    fn is_recursive(self) -> bool {
        self == WatcherMode::PersistentRecursive
    }
}

/// The event types of `WatcherEvent.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A node was created.
    NodeCreated = 1,
    /// A node was deleted.
    NodeDeleted = 2,
    /// A node's data changed.
    NodeDataChanged = 3,
    /// A node's child list changed.
    NodeChildrenChanged = 4,
}

/// Iterates `path`, then (when `recursive`) each ancestor up to `/`, as ZooKeeper's
/// `PathParentIterator`. The flag tells whether the item is an ancestor.
fn path_and_parents(path: &str, recursive: bool) -> impl Iterator<Item = (&str, bool)> {
    let mut next = (!path.is_empty()).then_some(path);
    let mut level = 0usize;
    std::iter::from_fn(move || {
        let current = next?;
        let at_parent = level > 0;
        level += 1;
        next = if !recursive || current == "/" {
            None
        } else {
            match current.rfind('/') {
                Some(0) => Some("/"),
                Some(slash) => current.get(..slash),
                None => None,
            }
        };
        Some((current, at_parent))
    })
}

#[derive(Debug, Default)]
struct WatchTable {
    by_path: FastHashMap<String, FastHashSet<WatcherId>>,
    by_watcher: FastHashMap<WatcherId, FastHashSet<String>>,
    /// Modes other than [`WatcherMode::Standard`].
    modes: FastHashMap<(WatcherId, String), WatcherMode>,
    recursive_count: usize,
}

impl WatchTable {
    fn mode(&self, watcher: WatcherId, path: &str) -> WatcherMode {
        // The key owns its path; avoid building it when no persistent watch exists.
        if self.modes.is_empty() {
            return WatcherMode::Standard;
        }
        self.modes.get(&(watcher, path.to_owned())).copied().unwrap_or(WatcherMode::Standard)
    }

    fn set_mode(&mut self, watcher: WatcherId, path: &str, mode: WatcherMode) {
        let old = if mode == WatcherMode::Standard {
            self.modes.remove(&(watcher, path.to_owned()))
        } else {
            self.modes.insert((watcher, path.to_owned()), mode)
        };
        let was_recursive = old.is_some_and(WatcherMode::is_recursive);
        if was_recursive && !mode.is_recursive() {
            self.recursive_count -= 1;
        } else if !was_recursive && mode.is_recursive() {
            self.recursive_count += 1;
        }
    }
}

/// Counts for the `wchs` four-letter word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSummary {
    /// Connections with at least one watch.
    pub connections: usize,
    /// Distinct watched paths.
    pub paths: usize,
    /// (connection, path) registrations.
    pub watches: usize,
}

/// One kind of watches (data or child).
#[derive(Debug, Default)]
pub struct WatchManager {
    table: Mutex<WatchTable>,
}

impl WatchManager {
    /// Registers `watcher` on `path`; returns whether the pair is new.
    pub fn add(&self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        let mut table = self.table.lock();
        table.by_path.entry(path.to_owned()).or_default().insert(watcher);
        table.set_mode(watcher, path, mode);
        table.by_watcher.entry(watcher).or_default().insert(path.to_owned())
    }

    /// Removes every registration of `watcher` (its connection closed).
    pub fn remove_watcher(&self, watcher: WatcherId) {
        let mut table = self.table.lock();
        let Some(paths) = table.by_watcher.remove(&watcher) else {
            return;
        };
        for path in paths {
            if let Some(watchers) = table.by_path.get_mut(&path) {
                watchers.remove(&watcher);
                if watchers.is_empty() {
                    table.by_path.remove(&path);
                }
            }
            table.set_mode(watcher, &path, WatcherMode::Standard);
        }
    }

    /// Removes the registration of `watcher` on `path`; false if there was none.
    pub fn remove(&self, path: &str, watcher: WatcherId) -> bool {
        let mut table = self.table.lock();
        let Some(paths) = table.by_watcher.get_mut(&watcher) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        if paths.is_empty() {
            table.by_watcher.remove(&watcher);
        }
        let Some(watchers) = table.by_path.get_mut(path) else {
            return false;
        };
        if !watchers.remove(&watcher) {
            return false;
        }
        if watchers.is_empty() {
            table.by_path.remove(path);
        }
        table.set_mode(watcher, path, WatcherMode::Standard);
        true
    }

    /// ZooKeeper 3.8's `containsWatcher`: true if anyone watches exactly `path`, or if
    /// `watcher` holds a recursive watch registered on `path`.
    pub fn contains(&self, path: &str, watcher: WatcherId) -> bool {
        let table = self.table.lock();
        table.by_path.contains_key(path) || table.mode(watcher, path).is_recursive()
    }

    /// Fires the watches that an `event` on `path` triggers and returns their watchers,
    /// removing the one-shot ones. Recursive watches on `path` or an ancestor fire for
    /// every event but `NodeChildrenChanged`; the others fire only on `path` itself.
    pub fn trigger(&self, path: &str, event: EventType) -> BTreeSet<WatcherId> {
        let mut fired = BTreeSet::new();
        let mut guard = self.table.lock();
        let table = &mut *guard;
        let recursive = table.recursive_count > 0;
        for (local_path, at_parent) in path_and_parents(path, recursive) {
            let Some(watchers) = table.by_path.get(local_path) else {
                continue;
            };
            let mut one_shot = Vec::new();
            for &watcher in watchers {
                let mode = table.mode(watcher, local_path);
                if mode.is_recursive() {
                    if event != EventType::NodeChildrenChanged {
                        fired.insert(watcher);
                    }
                } else if !at_parent {
                    fired.insert(watcher);
                    if !mode.is_persistent() {
                        one_shot.push(watcher);
                    }
                }
            }
            if one_shot.is_empty() {
                continue;
            }
            let local_path = local_path.to_owned();
            if let Some(watchers) = table.by_path.get_mut(&local_path) {
                for watcher in &one_shot {
                    watchers.remove(watcher);
                }
                if watchers.is_empty() {
                    table.by_path.remove(&local_path);
                }
            }
            for watcher in one_shot {
                if let Some(paths) = table.by_watcher.get_mut(&watcher) {
                    paths.remove(&local_path);
                    if paths.is_empty() {
                        table.by_watcher.remove(&watcher);
                    }
                }
            }
        }
        fired
    }

    /// Counts for `wchs`.
    pub fn summary(&self) -> WatchSummary {
        let table = self.table.lock();
        WatchSummary {
            connections: table.by_watcher.len(),
            paths: table.by_path.len(),
            watches: table.by_watcher.values().map(FastHashSet::len).sum(),
        }
    }

    /// Watched paths per watcher, for `wchc`.
    pub fn by_watcher(&self) -> BTreeMap<WatcherId, BTreeSet<String>> {
        let table = self.table.lock();
        table.by_watcher.iter().map(|(w, paths)| (*w, paths.iter().cloned().collect())).collect()
    }

    /// Watchers per path, for `wchp`.
    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<WatcherId>> {
        let table = self.table.lock();
        table
            .by_path
            .iter()
            .map(|(path, ws)| (path.clone(), ws.iter().copied().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_up_to_root() {
        let all: Vec<_> = path_and_parents("/a/b/c", true).map(|(p, _)| p).collect();
        assert_eq!(all, ["/a/b/c", "/a/b", "/a", "/"]);
        let only: Vec<_> = path_and_parents("/a/b", false).collect();
        assert_eq!(only, [("/a/b", false)]);
        assert_eq!(path_and_parents("/", true).count(), 1);
        assert_eq!(path_and_parents("", true).count(), 0);
    }

    #[test]
    fn standard_watch_fires_once() {
        let watches = WatchManager::default();
        assert!(watches.add("/a", 1, WatcherMode::Standard));
        assert_eq!(watches.trigger("/a", EventType::NodeDataChanged), BTreeSet::from([1]));
        assert!(watches.trigger("/a", EventType::NodeDataChanged).is_empty());
        assert_eq!(watches.summary(), WatchSummary { connections: 0, paths: 0, watches: 0 });
    }

    #[test]
    fn persistent_watch_stays_and_ignores_descendants() {
        let watches = WatchManager::default();
        watches.add("/a", 1, WatcherMode::Persistent);
        for _ in 0..2 {
            assert_eq!(watches.trigger("/a", EventType::NodeDataChanged), BTreeSet::from([1]));
        }
        assert!(watches.trigger("/a/b", EventType::NodeCreated).is_empty());
    }

    #[test]
    fn recursive_watch_sees_descendants_but_not_child_list_changes() {
        let watches = WatchManager::default();
        watches.add("/a", 7, WatcherMode::PersistentRecursive);
        assert_eq!(watches.trigger("/a/b/c", EventType::NodeCreated), BTreeSet::from([7]));
        assert_eq!(watches.trigger("/a", EventType::NodeDataChanged), BTreeSet::from([7]));
        assert!(watches.trigger("/a", EventType::NodeChildrenChanged).is_empty());
        assert!(watches.trigger("/b", EventType::NodeCreated).is_empty());
    }

    #[test]
    fn one_event_per_watcher_per_trigger() {
        let watches = WatchManager::default();
        watches.add("/a", 1, WatcherMode::PersistentRecursive);
        watches.add("/a/b", 1, WatcherMode::Standard);
        watches.add("/a/b", 2, WatcherMode::Standard);
        assert_eq!(watches.trigger("/a/b", EventType::NodeDeleted), BTreeSet::from([1, 2]));
    }

    #[test]
    fn re_registering_replaces_the_mode() {
        let watches = WatchManager::default();
        watches.add("/a", 1, WatcherMode::Persistent);
        watches.add("/a", 1, WatcherMode::Standard);
        assert_eq!(watches.trigger("/a", EventType::NodeDataChanged), BTreeSet::from([1]));
        assert!(watches.trigger("/a", EventType::NodeDataChanged).is_empty(), "now one-shot");
    }

    #[test]
    fn remove_and_contains() {
        let watches = WatchManager::default();
        watches.add("/a", 1, WatcherMode::Standard);
        assert!(watches.contains("/a", 2), "3.8 answers for any watcher of the exact path");
        assert!(!watches.remove("/a", 2));
        assert!(watches.remove("/a", 1));
        assert!(!watches.contains("/a", 1));
        watches.add("/r", 3, WatcherMode::PersistentRecursive);
        watches.remove_watcher(3);
        assert!(watches.trigger("/r/x", EventType::NodeCreated).is_empty());
    }
}
