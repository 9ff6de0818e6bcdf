//! Interned ACL lists: nodes share one copy of each distinct list, as ZooKeeper's
//! `ReferenceCountedACLCache` does, since millions of nodes usually carry a handful of ACLs.

use std::sync::Arc;

use jute::records::{Acl, Id};

use crate::fast_hash::FastHashMap;

/// Permission bits of an ACL entry.
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set the ACL.
    pub const ADMIN: i32 = 16;
    /// Everything.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// A permission mask as ZooKeeper writes it (`ZKUtil.getPermString`): the letters of
/// `cdrwa` whose bits are set, in that order.
pub fn perm_letters(perms: i32) -> String {
    use perms::{ADMIN, CREATE, DELETE, READ, WRITE};
    [(CREATE, 'c'), (DELETE, 'd'), (READ, 'r'), (WRITE, 'w'), (ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| perms & bit != 0)
        .map(|(_, letter)| *letter)
        .collect()
}

/// A handle to an interned ACL list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclId(u32);

impl AclId {
    /// `world:anyone:cdrwa`, always present.
    pub const OPEN: AclId = AclId(0);
    /// `world:anyone:r`, the ACL of `/zookeeper/config`.
    pub const READ_ONLY: AclId = AclId(1);

    /// The handle's number: ids are never reused while a node holds them, so a
    /// snapshot sent to a learner can name lists by it.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The handle with this number, for a node's record that stores it as a number.
    pub(super) fn from_number(number: u32) -> AclId {
        AclId(number)
    }
}

/// An ACL list shared by every node that uses it.
pub type AclList = Arc<[Acl]>;

/// `world:anyone` with the given permissions.
pub fn world_anyone(perms: i32) -> Acl {
    Acl { perms, id: Id { scheme: "world".into(), id: "anyone".into() } }
}

/// The interned lists with their reference counts.
#[derive(Debug)]
pub struct AclCache {
    by_id: FastHashMap<AclId, (AclList, u64)>,
    by_list: FastHashMap<AclList, AclId>,
    next_id: u32,
}

impl Default for AclCache {
    fn default() -> Self {
        let mut cache =
            AclCache { by_id: FastHashMap::default(), by_list: FastHashMap::default(), next_id: 0 };
        let open = cache.intern(&[world_anyone(perms::ALL)]);
        let read_only = cache.intern(&[world_anyone(perms::READ)]);
        assert_eq!(open, AclId::OPEN);
        assert_eq!(read_only, AclId::READ_ONLY);
        cache
    }
}

impl AclCache {
    /// Returns the id of `acl`, adding one reference.
    pub fn intern(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.by_list.get(acl) {
            if let Some((_, count)) = self.by_id.get_mut(&id) {
                *count += 1;
            }
            return id;
        }
        let id = AclId(self.next_id);
        self.next_id += 1;
        let list: AclList = acl.into();
        self.by_list.insert(list.clone(), id);
        self.by_id.insert(id, (list, 1));
        id
    }

    /// Adds `references` references to a list already interned.
    pub fn acquire(&mut self, id: AclId, references: u64) {
        if let Some((_, count)) = self.by_id.get_mut(&id) {
            *count += references;
        }
    }

    /// Drops one reference; the list is forgotten with its last one. The two built-in
    /// lists are never forgotten.
    pub fn release(&mut self, id: AclId) {
        if id == AclId::OPEN || id == AclId::READ_ONLY {
            return;
        }
        let Some((list, count)) = self.by_id.get_mut(&id) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            let list = list.clone();
            self.by_id.remove(&id);
            self.by_list.remove(&list);
        }
    }

    /// The list behind `id`; an unknown id reads as the open ACL.
    pub fn get(&self, id: AclId) -> AclList {
        match self.by_id.get(&id) {
            Some((list, _)) => list.clone(),
            None => self
                .by_id
                .get(&AclId::OPEN)
                .map(|(list, _)| list.clone())
                .unwrap_or_else(|| Arc::new([])),
        }
    }

    /// Every interned list with its id.
    pub fn lists(&self) -> Vec<(AclId, AclList)> {
        self.by_id.iter().map(|(id, (list, _))| (*id, list.clone())).collect()
    }

    /// Number of distinct lists.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether only the built-in lists exist.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(user: &str) -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id { scheme: "digest".into(), id: format!("{user}:x") } }]
    }

    #[test]
    fn equal_lists_share_an_id_until_the_last_release() {
        let mut cache = AclCache::default();
        let a = cache.intern(&digest("alice"));
        let b = cache.intern(&digest("alice"));
        assert_eq!(a, b);
        assert_eq!(cache.len(), 3);
        cache.release(a);
        assert_eq!(cache.get(b).as_ref(), digest("alice").as_slice());
        cache.release(b);
        assert_eq!(cache.len(), 2);
        assert_ne!(cache.intern(&digest("bob")), a, "ids are not reused");
    }

    #[test]
    fn builtins_survive_release() {
        let mut cache = AclCache::default();
        cache.release(AclId::OPEN);
        assert_eq!(cache.get(AclId::OPEN).as_ref(), [world_anyone(perms::ALL)].as_slice());
    }
}
