//! Watch registrations and which of them a change triggers (ZooKeeper's `WatchManager`).
//!
//! A [`WatchManager`] holds one kind of watch: the database keeps one for data and exists
//! watches and one for child watches, as ZooKeeper does. A watcher is a connection; each
//! (watcher, path) pair has one mode, and registering again replaces the mode, exactly as
//! ZooKeeper 3.8's `WatcherModeManager`. One trigger notifies each watcher at most once.

use std::collections::{BTreeMap, BTreeSet};

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::fast_hash::{FastHashMap, FastState};
use crate::summary::{AtomicSummary, Summary};

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

/// A watcher's dense index in a table: each registration stores it, four bytes, rather
/// than the connection id.
type Slot = u32;
/// A watched path's dense index in a table.
type PathId = u32;

/// One watched path and the watchers on it.
#[derive(Debug)]
struct WatchedPath {
    path: Box<str>,
    watchers: HashTable<Slot>,
}

/// One watcher and the paths it watches.
#[derive(Debug)]
struct Watcher {
    id: WatcherId,
    /// Ids of the paths it watches, as a list rather than a set: a fired one-shot watch
    /// leaves its id behind (stale, and perhaps repeated after the watch is set again)
    /// until the list is compacted, which happens once it is twice as long as `live`.
    paths: Vec<PathId>,
    /// How many paths it watches.
    live: usize,
}

/// Registrations cost bytes each: four for the watcher's slot in the path's set and
/// four for the path's id in the watcher's list. A path's text is stored once, however
/// many watch it; ZooKeeper's `WatchManager` holds a hash entry on each side.
#[derive(Debug, Default)]
struct WatchTable {
    /// Path ids, found by the path's text in `paths`.
    index: HashTable<PathId>,
    paths: Vec<Option<WatchedPath>>,
    free_paths: Vec<PathId>,
    slots: FastHashMap<WatcherId, Slot>,
    watchers: Vec<Option<Watcher>>,
    free_slots: Vec<Slot>,
    /// Modes other than [`WatcherMode::Standard`].
    modes: FastHashMap<(Slot, PathId), WatcherMode>,
    recursive_count: usize,
    hasher: FastState,
}

impl WatchTable {
    fn path_id(&self, path: &str) -> Option<PathId> {
        let paths = &self.paths;
        self.index
            .find(self.hasher.hash_one(path), |&id| watched(paths, id).path.as_ref() == path)
            .copied()
    }

    fn path(&self, id: PathId) -> &WatchedPath {
        watched(&self.paths, id)
    }

    fn path_mut(&mut self, id: PathId) -> &mut WatchedPath {
        self.paths[id as usize].as_mut().expect("a live path id")
    }

    fn watcher_mut(&mut self, slot: Slot) -> &mut Watcher {
        self.watchers[slot as usize].as_mut().expect("a live watcher slot")
    }

    fn intern(&mut self, path: &str) -> PathId {
        if let Some(id) = self.path_id(path) {
            return id;
        }
        let entry = WatchedPath { path: path.into(), watchers: HashTable::new() };
        let id = match self.free_paths.pop() {
            Some(id) => {
                self.paths[id as usize] = Some(entry);
                id
            }
            None => {
                self.paths.push(Some(entry));
                PathId::try_from(self.paths.len() - 1).expect("fewer than 2^32 watched paths")
            }
        };
        let (paths, hasher) = (&self.paths, &self.hasher);
        self.index.insert_unique(hasher.hash_one(path), id, |&id| {
            hasher.hash_one(&*watched(paths, id).path)
        });
        id
    }

    /// Drops `id` once nobody watches it.
    fn release_path_if_unwatched(&mut self, id: PathId) {
        if !self.path(id).watchers.is_empty() {
            return;
        }
        let hash = self.hasher.hash_one(&*self.path(id).path);
        if let Ok(entry) = self.index.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        self.paths[id as usize] = None;
        self.free_paths.push(id);
    }

    fn slot(&mut self, watcher: WatcherId) -> Slot {
        if let Some(&slot) = self.slots.get(&watcher) {
            return slot;
        }
        let entry = Watcher { id: watcher, paths: Vec::new(), live: 0 };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.watchers[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.watchers.push(Some(entry));
                Slot::try_from(self.watchers.len() - 1).expect("fewer than 2^32 watchers")
            }
        };
        self.slots.insert(watcher, slot);
        slot
    }

    /// Whether `id` (perhaps a stale id from a watcher's list) is a live path that `slot`
    /// watches.
    fn holds(&self, slot: Slot, id: PathId) -> bool {
        self.paths[id as usize].is_some() && self.watches(slot, id)
    }

    /// Whether `slot` is among the watchers of `id`.
    fn watches(&self, slot: Slot, id: PathId) -> bool {
        self.path(id).watchers.find(self.hasher.hash_one(slot), |&s| s == slot).is_some()
    }

    /// Adds `slot` to the watchers of `id`; false if it was there.
    fn add_pair(&mut self, slot: Slot, id: PathId) -> bool {
        if self.watches(slot, id) {
            return false;
        }
        let hasher = self.hasher;
        let hash = hasher.hash_one(slot);
        self.path_mut(id).watchers.insert_unique(hash, slot, |&s| hasher.hash_one(s));
        let watcher = self.watcher_mut(slot);
        watcher.paths.push(id);
        watcher.live += 1;
        true
    }

    /// Removes `slot` from the watchers of `id` and forgets its mode; false if it was
    /// not there. The path goes once unwatched, the watcher once it watches nothing.
    fn remove_pair(&mut self, slot: Slot, id: PathId) -> bool {
        let hash = self.hasher.hash_one(slot);
        let Some(path) = self.paths.get_mut(id as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Ok(entry) = path.watchers.find_entry(hash, |&s| s == slot) else {
            return false;
        };
        entry.remove();
        self.set_mode(slot, id, WatcherMode::Standard);
        self.release_path_if_unwatched(id);
        let watcher = self.watcher_mut(slot);
        watcher.live -= 1;
        if watcher.live == 0 {
            let id = watcher.id;
            self.release_slot(id, slot);
        } else if watcher.paths.len() > 2 * watcher.live + 16 {
            self.compact(slot);
        }
        true
    }

    /// Drops the stale and repeated ids from a watcher's list.
    fn compact(&mut self, slot: Slot) {
        let mut paths = std::mem::take(&mut self.watcher_mut(slot).paths);
        paths.sort_unstable();
        paths.dedup();
        paths.retain(|&id| self.holds(slot, id));
        self.watcher_mut(slot).paths = paths;
    }

    fn release_slot(&mut self, watcher: WatcherId, slot: Slot) {
        self.slots.remove(&watcher);
        self.watchers[slot as usize] = None;
        self.free_slots.push(slot);
    }

    /// The paths `slot` watches now.
    fn live_paths(&self, slot: Slot) -> impl Iterator<Item = PathId> + '_ {
        let watcher = self.watchers[slot as usize].as_ref();
        watcher
            .into_iter()
            .flat_map(|watcher| watcher.paths.iter().copied())
            .filter(move |&id| self.holds(slot, id))
    }

    fn mode(&self, slot: Slot, id: PathId) -> WatcherMode {
        self.modes.get(&(slot, id)).copied().unwrap_or(WatcherMode::Standard)
    }

    fn set_mode(&mut self, slot: Slot, id: PathId, mode: WatcherMode) {
        let old = if mode == WatcherMode::Standard {
            if self.modes.is_empty() {
                return;
            }
            self.modes.remove(&(slot, id))
        } else {
            self.modes.insert((slot, id), mode)
        };
        let was_recursive = old.is_some_and(WatcherMode::is_recursive);
        if was_recursive && !mode.is_recursive() {
            self.recursive_count -= 1;
        } else if !was_recursive && mode.is_recursive() {
            self.recursive_count += 1;
        }
    }
}

/// The live path `id` of `paths`.
fn watched(paths: &[Option<WatchedPath>], id: PathId) -> &WatchedPath {
    paths[id as usize].as_ref().expect("a live path id")
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
    fan_out: FanOut,
}

/// How many watchers each trigger fired, by event type, a trigger that fired none left
/// out: ZooKeeper's `node_created_watch_count`, `node_deleted_watch_count`,
/// `node_changed_watch_count` and `node_children_watch_count`, which its `WatchManager`
/// records the same way, each manager on its own.
#[derive(Debug, Default)]
pub struct FanOut([AtomicSummary; 4]);

impl FanOut {
    fn record(&self, event: EventType, watchers: usize) {
        self.0[event as usize - 1].record(watchers as u64);
    }

    /// The watchers fired by each trigger of `event` so far.
    pub fn read(&self, event: EventType) -> Summary {
        self.0[event as usize - 1].read()
    }

    /// Forgets every trigger, as `srst` does.
    pub fn reset(&self) {
        self.0.iter().for_each(AtomicSummary::reset);
    }
}

impl WatchManager {
    /// Registers `watcher` on `path`; returns whether the pair is new.
    pub fn add(&self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        let mut table = self.table.lock();
        let slot = table.slot(watcher);
        let id = table.intern(path);
        let new = table.add_pair(slot, id);
        table.set_mode(slot, id, mode);
        new
    }

    /// Removes every registration of `watcher` (its connection closed).
    pub fn remove_watcher(&self, watcher: WatcherId) {
        let mut table = self.table.lock();
        let Some(&slot) = table.slots.get(&watcher) else {
            return;
        };
        let mut paths: Vec<PathId> = table.live_paths(slot).collect();
        paths.sort_unstable();
        paths.dedup();
        for id in paths {
            table.remove_pair(slot, id);
        }
    }

    /// Removes the registration of `watcher` on `path`; false if there was none.
    pub fn remove(&self, path: &str, watcher: WatcherId) -> bool {
        let mut table = self.table.lock();
        let (Some(&slot), Some(id)) = (table.slots.get(&watcher), table.path_id(path)) else {
            return false;
        };
        table.remove_pair(slot, id)
    }

    /// ZooKeeper 3.8's `containsWatcher`: true if anyone watches exactly `path`, whichever
    /// connection asks (a recursive watch of the asker's on `path` is such a watch).
    pub fn is_watched(&self, path: &str) -> bool {
        self.table.lock().path_id(path).is_some()
    }

    /// Fires the watches that an `event` on `path` triggers and returns their watchers,
    /// removing the one-shot ones. Recursive watches on `path` or an ancestor fire for
    /// every event but `NodeChildrenChanged`; the others fire only on `path` itself.
    pub fn trigger(&self, path: &str, event: EventType) -> BTreeSet<WatcherId> {
        let mut fired = BTreeSet::new();
        let mut table = self.table.lock();
        let recursive = table.recursive_count > 0;
        for (local_path, at_parent) in path_and_parents(path, recursive) {
            let Some(id) = table.path_id(local_path) else {
                continue;
            };
            let mut one_shot = Vec::new();
            for &slot in table.path(id).watchers.iter() {
                let mode = table.mode(slot, id);
                let watcher = table.watchers[slot as usize].as_ref().expect("a live slot").id;
                if mode.is_recursive() {
                    if event != EventType::NodeChildrenChanged {
                        fired.insert(watcher);
                    }
                } else if !at_parent {
                    fired.insert(watcher);
                    if !mode.is_persistent() {
                        one_shot.push(slot);
                    }
                }
            }
            for slot in one_shot {
                table.remove_pair(slot, id);
            }
        }
        drop(table);
        if !fired.is_empty() {
            self.fan_out.record(event, fired.len());
        }
        fired
    }

    /// How many watchers this manager's triggers fired.
    pub fn fan_out(&self) -> &FanOut {
        &self.fan_out
    }

    /// Counts for `wchs`.
    pub fn summary(&self) -> WatchSummary {
        let table = self.table.lock();
        WatchSummary {
            connections: table.slots.len(),
            paths: table.index.len(),
            watches: table.watchers.iter().flatten().map(|watcher| watcher.live).sum(),
        }
    }

    /// Watched paths per watcher, for `wchc`.
    pub fn by_watcher(&self) -> BTreeMap<WatcherId, BTreeSet<String>> {
        let table = self.table.lock();
        table
            .slots
            .iter()
            .map(|(&watcher, &slot)| {
                let paths = table.live_paths(slot).map(|id| table.path(id).path.to_string());
                (watcher, paths.collect())
            })
            .collect()
    }

    /// Watchers per path, for `wchp`.
    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<WatcherId>> {
        let table = self.table.lock();
        let id_of = |&slot: &Slot| table.watchers[slot as usize].as_ref().map(|w| w.id);
        table
            .paths
            .iter()
            .flatten()
            .map(|path| (path.path.to_string(), path.watchers.iter().filter_map(id_of).collect()))
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
    fn each_trigger_that_fires_records_how_many_watchers_it_fired() {
        let watches = WatchManager::default();
        for watcher in [1, 2, 3] {
            watches.add("/a", watcher, WatcherMode::Standard);
        }
        watches.add("/b", 4, WatcherMode::Persistent);
        watches.trigger("/a", EventType::NodeDataChanged);
        watches.trigger("/a", EventType::NodeDataChanged);
        watches.trigger("/b", EventType::NodeDataChanged);
        watches.trigger("/b", EventType::NodeDeleted);
        let changed = watches.fan_out().read(EventType::NodeDataChanged);
        // The second trigger of /a fired nobody and is left out, as in ZooKeeper.
        assert_eq!((changed.count, changed.min, changed.max, changed.total), (2, 1, 3, 4));
        assert_eq!(watches.fan_out().read(EventType::NodeDeleted).count, 1);
        assert_eq!(watches.fan_out().read(EventType::NodeCreated).count, 0);
        watches.fan_out().reset();
        assert_eq!(watches.fan_out().read(EventType::NodeDataChanged).count, 0);
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
        assert!(watches.is_watched("/a"), "3.8 answers for any watcher of the exact path");
        assert!(!watches.remove("/a", 2));
        assert!(watches.remove("/a", 1));
        assert!(!watches.is_watched("/a"));
        watches.add("/r", 3, WatcherMode::PersistentRecursive);
        watches.remove_watcher(3);
        assert!(watches.trigger("/r/x", EventType::NodeCreated).is_empty());
    }
    #[test]
    fn a_watch_set_again_and_again_keeps_its_watcher_list_short() {
        let watches = WatchManager::default();
        watches.add("/held", 1, WatcherMode::Standard);
        for round in 0..1000 {
            watches.add("/a", 1, WatcherMode::Standard);
            watches.add(&format!("/other{}", round % 3), 2, WatcherMode::Standard);
            assert_eq!(watches.trigger("/a", EventType::NodeDataChanged), BTreeSet::from([1]));
            watches.trigger(&format!("/other{}", round % 3), EventType::NodeDeleted);
        }
        let listed = {
            let table = watches.table.lock();
            table.watchers.iter().flatten().map(|watcher| watcher.paths.len()).max()
        };
        assert!(listed.is_some_and(|len| len <= 2 + 16), "{listed:?}");
        let held = BTreeMap::from([(1, BTreeSet::from(["/held".to_string()]))]);
        assert_eq!(watches.by_watcher(), held);
        watches.remove_watcher(1);
        assert_eq!(watches.summary(), WatchSummary { connections: 0, paths: 0, watches: 0 });
    }

    /// The table against a model of sets, through random registrations, removals,
    /// triggers and closes over few paths and watchers (so ids and slots are reused).
    #[test]
    fn agrees_with_a_model_of_sets() {
        use proptest::prelude::*;
        let op = (0u8..5, 0usize..6, 1u64..5, 0u8..3);
        proptest!(|(ops in proptest::collection::vec(op, 1..300))| {
            let paths = ["/", "/a", "/a/b", "/a/b/c", "/d", "/d/e"];
            let watches = WatchManager::default();
            let mut model: BTreeMap<(String, WatcherId), WatcherMode> = BTreeMap::new();
            for (kind, path, watcher, mode) in ops {
                let path = paths[path];
                let mode = [WatcherMode::Standard, WatcherMode::Persistent,
                    WatcherMode::PersistentRecursive][usize::from(mode)];
                match kind {
                    0 | 1 => {
                        let new = model.insert((path.into(), watcher), mode).is_none();
                        prop_assert_eq!(watches.add(path, watcher, mode), new);
                    }
                    2 => {
                        let had = model.remove(&(path.to_string(), watcher)).is_some();
                        prop_assert_eq!(watches.remove(path, watcher), had);
                    }
                    3 => {
                        model.retain(|(_, w), _| *w != watcher);
                        watches.remove_watcher(watcher);
                    }
                    _ => {
                        let event = EventType::NodeDataChanged;
                        let mut fired = BTreeSet::new();
                        model.retain(|(watched, w), mode| {
                            let exact = watched == path;
                            let below = path.starts_with(watched.as_str())
                                && (watched == "/" || path[watched.len()..].starts_with('/'));
                            if exact || (below && mode.is_recursive()) {
                                fired.insert(*w);
                            }
                            !(exact && *mode == WatcherMode::Standard)
                        });
                        prop_assert_eq!(watches.trigger(path, event), fired);
                    }
                }
                let mut by_path: BTreeMap<String, BTreeSet<WatcherId>> = BTreeMap::new();
                let mut by_watcher: BTreeMap<WatcherId, BTreeSet<String>> = BTreeMap::new();
                for (path, watcher) in model.keys() {
                    by_path.entry(path.clone()).or_default().insert(*watcher);
                    by_watcher.entry(*watcher).or_default().insert(path.clone());
                }
                prop_assert_eq!(watches.by_path(), by_path);
                prop_assert_eq!(watches.by_watcher(), by_watcher);
                prop_assert_eq!(watches.summary().watches, model.len());
            }
        });
    }
}
