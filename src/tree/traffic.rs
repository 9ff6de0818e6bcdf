//! How many bytes reads and writes move, by namespace: ZooKeeper's `read_per_namespace`
//! and `write_per_namespace` summaries, which `DataTree.updateReadStat` and
//! `updateWriteStat` record, so that an operator sees which application (its top-level
//! znode) reads and writes the most.
//!
//! A namespace is a path's first component (`/app/config` is in `app`; `/` is in none).
//! A write counts its path's length and the data it writes (a delete, the path alone); a
//! read counts the path, the data or child names it returns and ZooKeeper's fixed 68
//! bytes for the stat. Lengths are Java's, in UTF-16 units, as ZooKeeper counts them.
//! This module owns the tallies only; the tree records writes as it applies them, and
//! the server's reads record what they answer.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use crate::summary::{AtomicSummary, Summary};
use crate::tree::quota::namespace;

/// What ZooKeeper adds to a read for the stat it returns (`DataTree.STAT_OVERHEAD_BYTES`:
/// six longs and five ints).
pub const STAT_OVERHEAD_BYTES: u64 = 6 * 8 + 5 * 4;

/// The most namespaces tallied: a client creating top-level znodes without end would
/// otherwise grow the tallies without end (ZooKeeper's do). Namespaces past it are not
/// tallied.
pub const MAX_NAMESPACES: usize = 1024;

/// One summary per namespace.
#[derive(Debug, Default)]
struct SummarySet {
    by_namespace: RwLock<BTreeMap<Box<str>, AtomicSummary>>,
}

impl SummarySet {
    fn record(&self, path: &str, bytes: u64) {
        let Some(namespace) = namespace(path) else {
            return;
        };
        if let Some(summary) = self.by_namespace.read().get(namespace) {
            summary.record(bytes);
            return;
        }
        let mut by_namespace = self.by_namespace.write();
        if by_namespace.len() >= MAX_NAMESPACES && !by_namespace.contains_key(namespace) {
            return;
        }
        by_namespace.entry(namespace.into()).or_default().record(bytes);
    }

    fn read(&self) -> Vec<(String, Summary)> {
        let by_namespace = self.by_namespace.read();
        by_namespace
            .iter()
            .map(|(namespace, summary)| (namespace.to_string(), summary.read()))
            .collect()
    }

    fn reset(&self) {
        self.by_namespace.read().values().for_each(AtomicSummary::reset);
    }
}

/// The bytes read and written, by namespace.
#[derive(Debug, Default)]
pub struct NamespaceTraffic {
    reads: SummarySet,
    writes: SummarySet,
}

impl NamespaceTraffic {
    /// A read of `path` that returned `returned` bytes (data, or child names' lengths).
    pub fn read(&self, path: &str, returned: u64) {
        self.reads.record(path, java_length(path) + returned + STAT_OVERHEAD_BYTES);
    }

    /// A write to `path` of `data` bytes (0 for a delete).
    pub fn written(&self, path: &str, data: u64) {
        self.writes.record(path, java_length(path) + data);
    }

    /// Each namespace's reads (`read_per_namespace`), in name order.
    pub fn reads(&self) -> Vec<(String, Summary)> {
        self.reads.read()
    }

    /// Each namespace's writes (`write_per_namespace`), in name order.
    pub fn writes(&self) -> Vec<(String, Summary)> {
        self.writes.read()
    }

    /// Zeroes every tally and keeps the namespaces, as `srst` resets ZooKeeper's.
    pub fn reset(&self) {
        self.reads.reset();
        self.writes.reset();
    }
}

/// A text's length as Java's `String.length()` gives it: UTF-16 code units.
pub fn java_length(text: &str) -> u64 {
    let units = if text.is_ascii() { text.len() } else { text.encode_utf16().count() };
    units as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_first_component() {
        assert_eq!(namespace("/app"), Some("app"));
        assert_eq!(namespace("/app/a/b"), Some("app"));
        assert_eq!(namespace("/zookeeper/config"), Some("zookeeper"));
        assert_eq!(namespace("/"), None);
    }

    #[test]
    fn lengths_are_java_lengths() {
        assert_eq!(java_length("/app"), 4);
        // 'é' is one UTF-16 unit in two UTF-8 bytes; '𝄞' two units in four bytes.
        assert_eq!(java_length("/é"), 2);
        assert_eq!(java_length("/𝄞"), 3);
    }

    #[test]
    fn reads_and_writes_are_tallied_by_namespace() {
        let traffic = NamespaceTraffic::default();
        traffic.written("/app/a", 10);
        traffic.written("/app/b", 0);
        traffic.read("/app/a", 10);
        traffic.read("/", 3);
        let writes = traffic.writes();
        assert_eq!(writes.len(), 1);
        let (namespace, summary) = &writes[0];
        assert_eq!(namespace, "app");
        assert_eq!((summary.count, summary.total, summary.min, summary.max), (2, 22, 6, 16));
        let reads = traffic.reads();
        assert_eq!(reads.len(), 1, "/ is in no namespace");
        assert_eq!(reads[0].1.total, 6 + 10 + STAT_OVERHEAD_BYTES);
    }

    #[test]
    fn a_reset_zeroes_the_tallies_and_keeps_the_namespaces() {
        let traffic = NamespaceTraffic::default();
        traffic.written("/app", 5);
        traffic.reset();
        let writes = traffic.writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].1, Summary::default());
    }

    #[test]
    fn namespaces_past_the_limit_are_not_tallied() {
        let traffic = NamespaceTraffic::default();
        for n in 0..MAX_NAMESPACES + 10 {
            traffic.written(&format!("/n{n}"), 1);
        }
        traffic.written("/n0", 1);
        let writes = traffic.writes();
        assert_eq!(writes.len(), MAX_NAMESPACES);
        let first = writes.iter().find(|(namespace, _)| namespace == "n0").expect("tallied");
        assert_eq!(first.1.count, 2, "a namespace already tallied still counts");
    }
}
