//! One znode as stored, and the stat clients see of it.

use jute::records::{Stat, StatPersisted};

use crate::tree::acl::AclId;
use crate::tree::packed::{self, Packed};
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

/// A znode, packed into one allocation (see [`crate::tree::packed`]): its name, its data,
/// its stat and its ACL's id. It lives in its parent's child table and its children in a
/// table of their own. Reading a field unpacks the record; a change rewrites it, in place
/// when the new fields pack to the old lengths.
///
/// A million nodes of 100 bytes each take a 128-byte block apiece this way, where a node
/// with its fields at full width and its data in an allocation of its own took 224.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    record: Box<[u8]>,
}

impl Node {
    /// A node as created by a txn at `zxid` and `time`.
    pub fn new(
        name: &str,
        data: Option<&[u8]>,
        acl: AclId,
        ephemeral_owner: i64,
        zxid: Zxid,
        time: i64,
    ) -> Node {
        let stat = StatPersisted {
            czxid: zxid.raw(),
            mzxid: zxid.raw(),
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid.raw(),
        };
        Node::from_persisted(name, data, acl, &stat)
    }

    /// A node with the stat ZooKeeper's snapshots hold (an import, a snapshot a
    /// ZooKeeper leader sends, or zkrs's own snapshots).
    pub fn from_persisted(
        name: &str,
        data: Option<&[u8]>,
        acl: AclId,
        stat: &StatPersisted,
    ) -> Node {
        Node::pack(name.as_bytes(), data, acl, stat)
    }

    /// Packs a record in an allocation of exactly its length: the stat first goes to the
    /// stack, so that the allocator's size class is the smallest that holds the node.
    fn pack(name: &[u8], data: Option<&[u8]>, acl: AclId, stat: &StatPersisted) -> Node {
        let stat = PackedStat::new(stat, acl);
        let mut record =
            Vec::with_capacity(packed::name_and_data_len(name, data) + stat.bytes().len());
        packed::put_name_and_data(&mut record, name, data);
        record.extend_from_slice(stat.bytes());
        Node { record: record.into_boxed_slice() }
    }

    /// The record unpacked. Records are written only by [`Node::pack`] and by changes
    /// of the same lengths, so they decode.
    pub(super) fn unpacked(&self) -> Packed<'_> {
        match packed::read(&self.record, 0, (0, 0)) {
            Ok((node, _)) => node,
            Err(err) => unreachable!("a node's own record does not decode: {err}"),
        }
    }

    /// The last component of the node's path (empty for the root).
    pub fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The name's bytes, which a child table hashes and compares without checking
    /// that they are UTF-8 (they are: names come in as `&str`).
    pub(super) fn name_bytes(&self) -> &[u8] {
        packed::read_name(&self.record, 0).map_or(&[][..], |(name, _)| name)
    }

    /// The data; `None` when created with null data, which clients see as null.
    pub fn data(&self) -> Option<&[u8]> {
        packed::read_name_and_data(&self.record, 0).map_or(None, |(_, data, _)| data)
    }

    /// Length of the data, 0 for null.
    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// The node's ACL, interned.
    pub fn acl(&self) -> AclId {
        acl_of(&self.unpacked())
    }

    /// zxid of the create.
    pub fn czxid(&self) -> Zxid {
        Zxid::new(packed::read_czxid(&self.record, 0, (0, 0)).unwrap_or_default())
    }

    /// zxid of the last data change.
    pub fn mzxid(&self) -> Zxid {
        Zxid::new(self.unpacked().stat.mzxid)
    }

    /// zxid of the last child create or delete.
    pub fn pzxid(&self) -> Zxid {
        Zxid::new(self.unpacked().stat.pzxid)
    }

    /// Number of child creations ever; the visible cversion is derived (see [`Node::stat`]).
    pub fn cversion(&self) -> i32 {
        self.unpacked().stat.cversion
    }

    /// Session, container marker or TTL (see [`NodeKind`]).
    pub fn ephemeral_owner(&self) -> i64 {
        self.unpacked().stat.ephemeral_owner
    }

    /// The stat as ZooKeeper's snapshots persist it (no data length or child count),
    /// with the stored cversion.
    pub fn persisted_stat(&self) -> StatPersisted {
        self.unpacked().stat
    }

    /// The stat, the data's length and the ACL, unpacked at once: what a write checked
    /// against this node asks of it.
    pub fn stat_data_len_and_acl(&self) -> (StatPersisted, usize, AclId) {
        let unpacked = self.unpacked();
        let acl = acl_of(&unpacked);
        (unpacked.stat, unpacked.data.map_or(0, <[u8]>::len), acl)
    }

    /// Changes the stat (and the ACL) with `change`, keeping the name and the data: in
    /// place when the new stat packs to the old one's length (as it mostly does when a
    /// parent's cversion and pzxid move on), else in a new record.
    pub fn change_stat(&mut self, change: impl FnOnce(&mut StatPersisted, &mut AclId)) {
        self.rewrite(None, change);
    }

    /// Replaces the data and changes the stat with `change`, keeping the name and the ACL;
    /// in place when the data and the stat keep their lengths (a set of a value of the
    /// same size), else in a new record.
    pub fn change_data(&mut self, data: Option<&[u8]>, change: impl FnOnce(&mut StatPersisted)) {
        self.rewrite(Some(data), |stat, _| change(stat));
    }

    /// Writes the record again with the stat and ACL `change` makes and, if given, new
    /// data; over the old bytes when the lengths stay, else in a new allocation.
    fn rewrite(
        &mut self,
        new_data: Option<Option<&[u8]>>,
        change: impl FnOnce(&mut StatPersisted, &mut AclId),
    ) {
        let unpacked = self.unpacked();
        let mut acl = acl_of(&unpacked);
        let Packed { name, data: old_data, mut stat, .. } = unpacked;
        change(&mut stat, &mut acl);
        let data = new_data.unwrap_or(old_data);
        let new_stat = PackedStat::new(&stat, acl);
        let stat_at = packed::name_and_data_len(name, data);
        let same_data_len = old_data.map(<[u8]>::len) == data.map(<[u8]>::len);
        if same_data_len && self.record.len() - stat_at == new_stat.bytes().len() {
            if let Some(Some(new_data)) = new_data {
                self.overwrite(stat_at - new_data.len(), new_data);
            }
            self.overwrite(stat_at, new_stat.bytes());
        } else {
            *self = Node::pack(name, data, acl, &stat);
        }
    }

    /// Copies `bytes` over the record's from `at`, which the caller has checked hold as
    /// many.
    fn overwrite(&mut self, at: usize, bytes: &[u8]) {
        if let Some(slot) = self.record.get_mut(at..at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    }

    /// The stat clients see, computed as ZooKeeper's `DataNode.copyStat`: the stored
    /// cversion counts creations, and every creation but those of the children still
    /// present was followed by a deletion, so the visible cversion is `2 * cversion -
    /// num_children`. Containers and TTL nodes show `ephemeralOwner` 0.
    pub fn stat(&self, num_children: usize, extended_types_enabled: bool) -> Stat {
        self.data_and_stat(num_children, extended_types_enabled).1
    }

    /// The data and the stat clients see (see [`Node::stat`]), unpacked at once: what a
    /// getData answers.
    pub fn data_and_stat(
        &self,
        num_children: usize,
        extended_types_enabled: bool,
    ) -> (Option<&[u8]>, Stat) {
        let Packed { data, stat, .. } = self.unpacked();
        let num_children = i32::try_from(num_children).unwrap_or(i32::MAX);
        let ephemeral_owner =
            match NodeKind::from_owner(stat.ephemeral_owner, extended_types_enabled) {
                NodeKind::Ephemeral(session) => session.raw(),
                NodeKind::Persistent | NodeKind::Container | NodeKind::Ttl(_) => 0,
            };
        let data_len = data.map_or(0, <[u8]>::len);
        let stat = Stat {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            ctime: stat.ctime,
            mtime: stat.mtime,
            version: stat.version,
            cversion: stat.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: stat.aversion,
            ephemeral_owner,
            data_length: i32::try_from(data_len).unwrap_or(i32::MAX),
            num_children,
            pzxid: stat.pzxid,
        };
        (data, stat)
    }
}

/// A stat and ACL packed on the stack, to size a record or to overwrite one's in place.
struct PackedStat {
    bytes: [u8; packed::STAT_LEN_MAX],
    len: usize,
}

impl PackedStat {
    fn new(stat: &StatPersisted, acl: AclId) -> PackedStat {
        let mut bytes = [0u8; packed::STAT_LEN_MAX];
        let mut free = &mut bytes[..];
        packed::put_stat(&mut free, stat, i64::from(acl.number()), (0, 0));
        let len = packed::STAT_LEN_MAX - free.len();
        PackedStat { bytes, len }
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// The ACL of a node's unpacked record, which holds an [`AclId`]'s number.
pub(super) fn acl_of(node: &Packed<'_>) -> AclId {
    AclId::from_number(u32::try_from(node.acl).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_cversion_counts_creations_and_deletions() {
        let mut node = Node::new("n", None, AclId::OPEN, 0, Zxid::new(1), 0);
        node.change_stat(|stat, _| stat.cversion = 1);
        assert_eq!(node.stat(1, false).cversion, 1, "one child created");
        assert_eq!(node.stat(0, false).cversion, 2, "and deleted again");
        node.change_stat(|stat, _| stat.cversion = 0);
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
        let node = Node::new("n", None, AclId::OPEN, ttl_owner, Zxid::new(1), 0);
        assert_eq!(node.stat(0, true).ephemeral_owner, 0);
        let container =
            Node::new("n", None, AclId::OPEN, CONTAINER_EPHEMERAL_OWNER, Zxid::new(1), 0);
        assert_eq!(container.stat(0, true).ephemeral_owner, 0);
        let ephemeral = Node::new("n", None, AclId::OPEN, 0x1234, Zxid::new(1), 0);
        assert_eq!(ephemeral.stat(0, true).ephemeral_owner, 0x1234);
    }

    #[test]
    fn changes_rewrite_the_record_and_keep_what_they_do_not_touch() {
        let data = [b'x'; 100];
        let mut node = Node::new("n000000123", Some(&data), AclId::READ_ONLY, 0, Zxid::new(9), 5);
        assert_eq!(node.record.len(), 112 + 4, "name, data; flags, czxid, ctime, ACL");
        node.change_data(None, |stat| {
            stat.version = 1;
            stat.mzxid = 10;
        });
        assert_eq!((node.name(), node.data(), node.acl()), ("n000000123", None, AclId::READ_ONLY));
        assert_eq!(
            (node.mzxid(), node.czxid(), node.stat(0, false).version),
            (Zxid::new(10), Zxid::new(9), 1)
        );
        node.change_stat(|stat, acl| {
            stat.pzxid = 11;
            *acl = AclId::OPEN;
        });
        assert_eq!((node.name(), node.data(), node.acl()), ("n000000123", None, AclId::OPEN));
        assert_eq!((node.pzxid(), node.mzxid()), (Zxid::new(11), Zxid::new(10)));
        node.change_data(Some(b"v"), |_| {});
        assert_eq!((node.data(), node.data_len()), (Some(&b"v"[..]), 1));
        node.change_stat(|stat, _| stat.cversion = 1);
        let record_at = node.record.as_ptr();
        node.change_data(Some(b"w"), |stat| stat.version = 2);
        node.change_stat(|stat, _| stat.cversion = 2);
        assert_eq!(node.record.as_ptr(), record_at, "changed in place: same lengths");
        assert_eq!((node.data(), node.stat(0, false).version), (Some(&b"w"[..]), 2));
        assert_eq!((node.cversion(), node.name(), node.acl()), (2, "n000000123", AclId::OPEN));
        node.change_data(None, |_| {});
        assert_eq!((node.data(), node.pzxid(), node.cversion()), (None, Zxid::new(11), 2));
    }

    #[test]
    fn ttl_range_is_checked() {
        assert_eq!(NodeKind::ttl_owner(0), None);
        assert_eq!(NodeKind::ttl_owner(-5), None);
        assert_eq!(NodeKind::ttl_owner(TTL_MS_MAX + 1), None);
        assert!(NodeKind::ttl_owner(TTL_MS_MAX).is_some());
    }
}
