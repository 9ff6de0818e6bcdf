//! One znode as stored, and the stat clients see of it.

use compact_str::CompactString;
use jute::records::{Stat, StatPersisted};

use crate::tree::acl::AclId;
use crate::txn::{SessionId, Zxid};

/// `ephemeralOwner` of a container node.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// High byte that marks an extended `ephemeralOwner` (TTL nodes).
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Bits between the marker byte and the value, naming the extended type (0 = TTL).
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
/// The value part of an extended `ephemeralOwner`: the TTL in milliseconds.
pub const TTL_MS_MAX: i64 = !(EXTENDED_MASK | RESERVED_BITS_MASK);

/// What a node's `ephemeralOwner` field encodes (ZooKeeper's `EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A persistent node (`ephemeralOwner` 0).
    Persistent,
    /// An ephemeral node owned by a session.
    Ephemeral(SessionId),
    /// A container node.
    Container,
    /// A persistent node with a time to live in milliseconds.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes an `ephemeralOwner`. TTL owners exist only with `extendedTypesEnabled`;
    /// without it the same bits read as a session id, as in ZooKeeper.
    pub fn from_owner(owner: i64, extended_types_enabled: bool) -> NodeKind {
        if extended_types_enabled && owner & EXTENDED_MASK == EXTENDED_MASK {
            if owner & RESERVED_BITS_MASK == 0 {
                return NodeKind::Ttl(owner & TTL_MS_MAX);
            }
            return NodeKind::Ephemeral(SessionId::new(owner));
        }
        match owner {
            0 => NodeKind::Persistent,
            CONTAINER_EPHEMERAL_OWNER => NodeKind::Container,
            session => NodeKind::Ephemeral(SessionId::new(session)),
        }
    }

    /// The `ephemeralOwner` of a TTL node, or `None` if the TTL is not in `1..=TTL_MS_MAX`.
    pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
        (1..=TTL_MS_MAX).contains(&ttl_ms).then_some(EXTENDED_MASK | ttl_ms)
    }
}

/// A znode. It lives in its parent's child table and its children in a table of their
/// own, so a node holds only its name, its stat and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The last component of the node's path (empty for the root).
    pub name: CompactString,
    /// The data; `None` when created with null data, which clients see as null.
    pub data: Option<Box<[u8]>>,
    /// zxid of the create.
    pub czxid: Zxid,
    /// zxid of the last data change.
    pub mzxid: Zxid,
    /// zxid of the last child create or delete.
    pub pzxid: Zxid,
    /// Time of the create, milliseconds since the epoch, from the txn header.
    pub ctime: i64,
    /// Time of the last data change.
    pub mtime: i64,
    /// Session, container marker or TTL (see [`NodeKind`]).
    pub ephemeral_owner: i64,
    /// Data version.
    pub version: i32,
    /// Number of child creations ever; the visible cversion is derived (see [`Node::stat`]).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// The node's ACL, interned.
    pub acl: AclId,
}

impl Node {
    /// A node as created by a txn at `zxid` and `time`.
    pub fn new(
        name: CompactString,
        data: Option<Box<[u8]>>,
        acl: AclId,
        ephemeral_owner: i64,
        zxid: Zxid,
        time: i64,
    ) -> Node {
        Node {
            name,
            data,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            ephemeral_owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl,
        }
    }

    /// A node as ZooKeeper's snapshots hold it (an import, or a snapshot a ZooKeeper
    /// leader sends), named `name`, with its ACL interned as `acl`.
    pub fn from_persisted(
        name: CompactString,
        data: Option<Box<[u8]>>,
        acl: AclId,
        stat: &StatPersisted,
    ) -> Node {
        Node {
            name,
            data,
            czxid: Zxid::new(stat.czxid),
            mzxid: Zxid::new(stat.mzxid),
            pzxid: Zxid::new(stat.pzxid),
            ctime: stat.ctime,
            mtime: stat.mtime,
            ephemeral_owner: stat.ephemeral_owner,
            version: stat.version,
            cversion: stat.cversion,
            aversion: stat.aversion,
            acl,
        }
    }

    /// The stat as ZooKeeper's snapshots persist it (no data length or child count),
    /// for an export or a snapshot sent to a learner.
    pub fn persisted_stat(&self) -> StatPersisted {
        StatPersisted {
            czxid: self.czxid.raw(),
            mzxid: self.mzxid.raw(),
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            pzxid: self.pzxid.raw(),
        }
    }

    /// Length of the data, 0 for null.
    pub fn data_len(&self) -> usize {
        self.data.as_deref().map_or(0, <[u8]>::len)
    }

    /// The stat clients see, computed as ZooKeeper's `DataNode.copyStat`: the stored
    /// cversion counts creations, and every creation but those of the children still
    /// present was followed by a deletion, so the visible cversion is `2 * cversion -
    /// num_children`. Containers and TTL nodes show `ephemeralOwner` 0.
    pub fn stat(&self, num_children: usize, extended_types_enabled: bool) -> Stat {
        let num_children = i32::try_from(num_children).unwrap_or(i32::MAX);
        let ephemeral_owner =
            match NodeKind::from_owner(self.ephemeral_owner, extended_types_enabled) {
                NodeKind::Ephemeral(session) => session.raw(),
                NodeKind::Persistent | NodeKind::Container | NodeKind::Ttl(_) => 0,
            };
        Stat {
            czxid: self.czxid.raw(),
            mzxid: self.mzxid.raw(),
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner,
            data_length: i32::try_from(self.data_len()).unwrap_or(i32::MAX),
            num_children,
            pzxid: self.pzxid.raw(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_cversion_counts_creations_and_deletions() {
        let mut node = Node::new("n".into(), None, AclId::OPEN, 0, Zxid::new(1), 0);
        node.cversion = 1;
        assert_eq!(node.stat(1, false).cversion, 1, "one child created");
        assert_eq!(node.stat(0, false).cversion, 2, "and deleted again");
        node.cversion = 0;
        assert_eq!(node.stat(1, false).cversion, -1, "the root with /zookeeper added directly");
    }

    #[test]
    fn ttl_and_container_owners_are_hidden_from_clients() {
        let ttl_owner = NodeKind::ttl_owner(5000).expect("valid ttl");
        assert_eq!(NodeKind::from_owner(ttl_owner, true), NodeKind::Ttl(5000));
        assert_eq!(
            NodeKind::from_owner(ttl_owner, false),
            NodeKind::Ephemeral(SessionId::new(ttl_owner))
        );
        let node = Node::new("n".into(), None, AclId::OPEN, ttl_owner, Zxid::new(1), 0);
        assert_eq!(node.stat(0, true).ephemeral_owner, 0);
        let container =
            Node::new("n".into(), None, AclId::OPEN, CONTAINER_EPHEMERAL_OWNER, Zxid::new(1), 0);
        assert_eq!(container.stat(0, true).ephemeral_owner, 0);
        let ephemeral = Node::new("n".into(), None, AclId::OPEN, 0x1234, Zxid::new(1), 0);
        assert_eq!(ephemeral.stat(0, true).ephemeral_owner, 0x1234);
    }

    #[test]
    fn ttl_range_is_checked() {
        assert_eq!(NodeKind::ttl_owner(0), None);
        assert_eq!(NodeKind::ttl_owner(-5), None);
        assert_eq!(NodeKind::ttl_owner(TTL_MS_MAX + 1), None);
        assert!(NodeKind::ttl_owner(TTL_MS_MAX).is_some());
    }
}
