//! ZooKeeper's tree digest (3.6+, digest version 2): a sum over the znodes of a CRC-32 of
//! each one's path, data and persisted stat, kept up to date as txns apply, so that two
//! members holding the same tree at the same zxid show the same number. ZooKeeper keeps
//! the digest of every 128th zxid (the `hash` four-letter word and AdminServer command
//! list them) and compares a learner's digest with the one its leader's proposals carry.
//!
//! Everything under `/zookeeper/` is left out (its quota and configuration nodes are
//! written locally by each member), `/` is digested under its alias `""`, and a node's
//! digest covers the stat as ZooKeeper persists it (the stored cversion, the raw
//! ephemeral owner of containers and TTL nodes). This module computes; the tree adds
//! and removes node digests where it changes nodes.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::tree::node::Node;
use crate::txn::Zxid;

/// The digest version ZooKeeper 3.6 to 3.9 compute (`DigestCalculator.DIGEST_VERSION`).
pub const DIGEST_VERSION: i32 = 2;

/// Every how many zxids a digest is kept (`DataTree.DIGEST_LOG_INTERVAL`).
pub const LOG_INTERVAL: i64 = 128;

/// How many digests are kept (`DataTree.DIGEST_LOG_LIMIT`).
pub const LOG_LIMIT: usize = 1024;

/// The digest of `parent`'s child `node` (the root: `parent` `""`); 0 under
/// `/zookeeper/`.
pub fn node_digest(parent: &str, node: &Node) -> u64 {
    if parent == "/zookeeper" || parent.starts_with("/zookeeper/") {
        return 0;
    }
    let mut crc = crc32fast::Hasher::new();
    match parent {
        "" => {}
        "/" => {
            crc.update(b"/");
            crc.update(node.name().as_bytes());
        }
        _ => {
            crc.update(parent.as_bytes());
            crc.update(b"/");
            crc.update(node.name().as_bytes());
        }
    }
    if let Some(data) = node.data() {
        crc.update(data);
    }
    let stat = node.persisted_stat();
    let mut fixed = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (at, value) in longs.into_iter().enumerate() {
        fixed[at * 8..at * 8 + 8].copy_from_slice(&value.to_be_bytes());
    }
    for (at, value) in [stat.version, stat.cversion, stat.aversion].into_iter().enumerate() {
        fixed[40 + at * 4..44 + at * 4].copy_from_slice(&value.to_be_bytes());
    }
    fixed[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    crc.update(&fixed);
    u64::from(crc.finalize())
}

/// Whether ZooKeeper keeps the tree's digest after `zxid`: every 128th zxid.
pub fn kept_at(zxid: Zxid) -> bool {
    zxid.raw() % LOG_INTERVAL == 0
}

/// The digests of the latest zxids divisible by [`LOG_INTERVAL`], oldest first, at most
/// [`LOG_LIMIT`] (`DataTree.digestLog`).
#[derive(Debug, Default)]
pub struct DigestLog {
    kept: Mutex<VecDeque<(Zxid, u64)>>,
}

impl DigestLog {
    /// Keeps `digest`, the tree's after `zxid` applied, if `zxid` is one to keep.
    pub fn applied(&self, zxid: Zxid, digest: u64) {
        if !kept_at(zxid) {
            return;
        }
        let mut kept = self.kept.lock();
        kept.push_back((zxid, digest));
        if kept.len() > LOG_LIMIT {
            kept.pop_front();
        }
    }

    /// The digests kept, oldest first.
    pub fn entries(&self) -> Vec<(Zxid, u64)> {
        self.kept.lock().iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_digest_is_zookeepers_crc_of_path_data_and_stat() {
        let node = Node::new(
            "a",
            Some(b"hello"),
            crate::tree::acl::AclId::OPEN,
            0,
            crate::txn::Zxid::new(0x1_0000_0002),
            1_700_000_000_000,
        );
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"/a");
        crc.update(b"hello");
        let mut stat = Vec::new();
        for long in
            [0x1_0000_0002_i64, 0x1_0000_0002, 0x1_0000_0002, 1_700_000_000_000, 1_700_000_000_000]
        {
            stat.extend_from_slice(&long.to_be_bytes());
        }
        for int in [0_i32, 0, 0] {
            stat.extend_from_slice(&int.to_be_bytes());
        }
        stat.extend_from_slice(&0_i64.to_be_bytes());
        crc.update(&stat);
        assert_eq!(node_digest("/", &node), u64::from(crc.finalize()));
    }

    #[test]
    fn nodes_under_zookeeper_have_no_digest_but_zookeeper_itself_has() {
        let node =
            Node::new("quota", None, crate::tree::acl::AclId::OPEN, 0, crate::txn::Zxid::ZERO, 0);
        assert_eq!(node_digest("/zookeeper", &node), 0);
        assert_eq!(node_digest("/zookeeper/quota", &node), 0);
        let zookeeper = Node::new(
            "zookeeper",
            None,
            crate::tree::acl::AclId::OPEN,
            0,
            crate::txn::Zxid::ZERO,
            0,
        );
        assert_ne!(node_digest("/", &zookeeper), 0);
    }

    #[test]
    fn the_log_keeps_every_128th_zxid_and_at_most_1024() {
        let log = DigestLog::default();
        for zxid in 1..=(LOG_INTERVAL * (LOG_LIMIT as i64 + 5)) {
            log.applied(Zxid::new(zxid), zxid as u64);
        }
        let entries = log.entries();
        assert_eq!(entries.len(), LOG_LIMIT);
        assert_eq!(entries[0].0, Zxid::new(LOG_INTERVAL * 6));
        assert!(entries.iter().all(|(zxid, digest)| zxid.raw() as u64 == *digest));
    }
}
