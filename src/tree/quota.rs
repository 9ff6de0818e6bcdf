//! ZooKeeper's quotas, kept in the tree itself: `/zookeeper/quota<path>/zookeeper_limits`
//! holds the limits an operator set on `<path>` (zkCli's `setquota`), and
//! `zookeeper_stats` beside it the usage of `<path>`'s subtree (nodes and data bytes,
//! `<path>` included), which the tree updates in place as txns apply. Both are text in
//! ZooKeeper's `StatsTrack` format, so zkCli's `listquota` and ZooKeeper's own tools read
//! them unchanged.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::{Add, AddAssign, Sub};

/// The node under which every quota lives (ZooKeeper's `Quotas.quotaZookeeper`).
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The name of the node holding a quota's limits.
pub const LIMITS_NODE: &str = "zookeeper_limits";
/// The name of the node holding a quota's usage.
pub const STATS_NODE: &str = "zookeeper_stats";

/// The path of the limits node of the quota on `quota_path`.
pub fn limits_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{LIMITS_NODE}")
}

/// The path of the usage node of the quota on `quota_path`.
pub fn stats_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{STATS_NODE}")
}

/// The quota'd path a node under `parent` belongs to when `parent` lies under
/// [`QUOTA_ROOT`]: `/zookeeper/quota/a/b` → `/a/b` (ZooKeeper's `trimQuotaPath`).
pub fn quota_path_of(parent: &str) -> Option<&str> {
    parent.strip_prefix(QUOTA_ROOT).filter(|rest| rest.starts_with('/'))
}

/// The first component of a path, which ZooKeeper's per-namespace metrics (quotas, read
/// and write bytes) are keyed by (`PathUtils.getTopNamespace`): `/app/locks` → `app`;
/// none for `/`.
pub fn namespace(path: &str) -> Option<&str> {
    path.split('/').nth(1).filter(|namespace| !namespace.is_empty())
}

/// Nodes and data bytes of a subtree, or a change to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of nodes.
    pub count: i64,
    /// Sum of the nodes' data lengths.
    pub bytes: i64,
}

impl Usage {
    /// What one node with `data_len` bytes of data counts.
    pub fn node(data_len: usize) -> Usage {
        Usage { count: 1, bytes: i64::try_from(data_len).unwrap_or(i64::MAX) }
    }
}

impl Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            count: self.count.saturating_add(other.count),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

impl Sub for Usage {
    type Output = Usage;

    fn sub(self, other: Usage) -> Usage {
        Usage {
            count: self.count.saturating_sub(other.count),
            bytes: self.bytes.saturating_sub(other.bytes),
        }
    }
}

/// A limit a write is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The most the subtree may hold.
    pub value: i64,
    /// Hard limits (`setquota -N`/`-B`) refuse writes past them when `enforceQuota` is
    /// on; soft ones (`-n`/`-b`) are only logged.
    pub hard: bool,
}

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// The contents of a limits or usage node (ZooKeeper's `StatsTrack`): `key=value` pairs
/// separated by `,` or `;`, where a missing key reads as -1 ("not set").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Reads a node's data. Pairs that do not parse are left out (ZooKeeper would fail
    /// the request that reads them); the node's owner wrote them, not a client of zkrs.
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|pair| !pair.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), value) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = match value {
                None | Some("") => -1,
                Some(value) => match value.parse() {
                    Ok(value) => value,
                    Err(_) => continue,
                },
            };
            values.insert(key.to_owned(), value);
        }
        StatsTrack { values }
    }

    /// The usage node's contents for `usage`: `count=N,bytes=M`.
    pub fn of_usage(usage: Usage) -> StatsTrack {
        let mut track = StatsTrack::default();
        track.values.insert(COUNT.to_owned(), usage.count);
        track.values.insert(BYTES.to_owned(), usage.bytes);
        track
    }

    /// The value of `key`, -1 when not set.
    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// Sets `key` (-1 records it as not set, and keeps it in the text, as ZooKeeper's
    /// `StatsTrack` setters do).
    pub fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_owned(), value);
    }

    /// The usage this track records.
    pub fn usage(&self) -> Usage {
        Usage { count: self.get(COUNT), bytes: self.get(BYTES) }
    }

    /// The node-count limit, the hard one first (`checkQuota`'s precedence).
    pub fn count_limit(&self) -> Option<Limit> {
        limit(self.get(COUNT_HARD_LIMIT), self.get(COUNT))
    }

    /// The data-bytes limit, the hard one first.
    pub fn byte_limit(&self) -> Option<Limit> {
        limit(self.get(BYTE_HARD_LIMIT), self.get(BYTES))
    }

    /// Adds `diff` to the recorded usage (`DataTree.updateQuotaStat`).
    pub fn add_usage(&mut self, diff: Usage) {
        let usage = self.usage() + diff;
        self.values.insert(COUNT.to_owned(), usage.count);
        self.values.insert(BYTES.to_owned(), usage.bytes);
    }

    /// The node data, byte for byte as ZooKeeper writes it: `count` and `bytes` first,
    /// then, if there are other keys, an extra `=` (which old parsers skip) and the rest
    /// sorted, each after a `;`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = format!("{COUNT}={},{BYTES}={}", self.get(COUNT), self.get(BYTES));
        let mut rest = self.values.iter().filter(|(key, _)| *key != COUNT && *key != BYTES);
        if let Some(first) = rest.next() {
            text.push('=');
            for (key, value) in std::iter::once(first).chain(rest) {
                let _ = write!(text, ";{key}={value}");
            }
        }
        text.into_bytes()
    }
}

/// ZooKeeper's `QuotaMetricsUtils.getQuotaLimit`: the hard limit if set, else the soft.
fn limit(hard: i64, soft: i64) -> Option<Limit> {
    if hard > -1 {
        Some(Limit { value: hard, hard: true })
    } else if soft > -1 {
        Some(Limit { value: soft, hard: false })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_written_by_zkcli_read_back_and_print_as_zookeeper_prints_them() {
        // What ZooKeeper 3.8 stores after `setquota -N 3 /p` then `setquota -B 20 /p`.
        let text = b"count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=3";
        let track = StatsTrack::parse(text);
        assert_eq!(track.count_limit(), Some(Limit { value: 3, hard: true }));
        assert_eq!(track.byte_limit(), Some(Limit { value: 20, hard: true }));
        assert_eq!(track.to_bytes(), text);
        // `setquota -n 1 /q`
        let soft = StatsTrack::parse(b"count=1,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
        assert_eq!(soft.count_limit(), Some(Limit { value: 1, hard: false }));
        assert_eq!(soft.byte_limit(), None);
    }

    #[test]
    fn usage_is_counted_and_printed_without_extra_keys() {
        let mut track = StatsTrack::parse(b"count=2,bytes=3");
        track.add_usage(Usage { count: 1, bytes: 4 });
        assert_eq!(track.to_bytes(), b"count=3,bytes=7");
        assert_eq!(StatsTrack::of_usage(Usage::node(5)).to_bytes(), b"count=1,bytes=5");
        assert_eq!(StatsTrack::parse(b"").usage(), Usage { count: -1, bytes: -1 });
    }

    #[test]
    fn malformed_pairs_are_left_out() {
        let track = StatsTrack::parse(b"count=x,bytes=9,,junk;countHardLimit=");
        assert_eq!(track.usage(), Usage { count: -1, bytes: 9 });
        assert_eq!(track.count_limit(), None);
    }

    #[test]
    fn quota_paths_and_namespaces() {
        assert_eq!(quota_path_of("/zookeeper/quota/a/b"), Some("/a/b"));
        assert_eq!(quota_path_of("/zookeeper/quota"), None);
        assert_eq!(quota_path_of("/zookeeper/quotas/a"), None);
        assert_eq!(limits_path("/a"), "/zookeeper/quota/a/zookeeper_limits");
        assert_eq!(stats_path("/a"), "/zookeeper/quota/a/zookeeper_stats");
        assert_eq!(namespace("/app/locks"), Some("app"));
        assert_eq!(namespace("/"), None);
    }
}
