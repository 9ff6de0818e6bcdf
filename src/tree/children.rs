//! The table of one node's children: their records, found by name.
//!
//! Each node carries its own name, so the table holds only the node's record (a pointer
//! and a length) per child; at a million znodes that saves tens of megabytes over a map
//! from name to node.

use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;

use crate::tree::node::Node;

/// The hasher shared by every child table of a tree.
pub type Hasher = crate::fast_hash::FastState;

/// One node's children.
#[derive(Debug, Default)]
pub struct Children {
    table: HashTable<Node>,
    /// Counts the inserts that may have moved children to other buckets: those that
    /// found the table full, which then grows or rehashes it. Removals and other inserts
    /// move no child, so a walk by bucket over several holds of the table's lock can go
    /// on while this stays the same.
    moves: u32,
}

fn hash(hasher: &Hasher, name: &[u8]) -> u64 {
    hasher.hash_one(name)
}

impl Children {
    /// The child called `name`.
    pub fn get(&self, hasher: &Hasher, name: &str) -> Option<&Node> {
        let name = name.as_bytes();
        self.table.find(hash(hasher, name), |node| node.name_bytes() == name)
    }

    /// The child called `name`, to change it.
    pub fn get_mut(&mut self, hasher: &Hasher, name: &str) -> Option<&mut Node> {
        let name = name.as_bytes();
        self.table.find_mut(hash(hasher, name), |node| node.name_bytes() == name)
    }

    /// Whether a child called `name` exists.
    pub fn contains(&self, hasher: &Hasher, name: &str) -> bool {
        self.get(hasher, name).is_some()
    }

    /// Adds a child; returns false (dropping `node`) if the name is taken.
    pub fn insert(&mut self, hasher: &Hasher, node: Node) -> bool {
        let node_hash = hash(hasher, node.name_bytes());
        let taken = |existing: &Node| existing.name_bytes() == node.name_bytes();
        if self.table.find(node_hash, taken).is_some() {
            return false;
        }
        if self.table.len() == self.table.capacity() {
            self.moves = self.moves.wrapping_add(1);
        }
        self.table.insert_unique(node_hash, node, |existing| hash(hasher, existing.name_bytes()));
        true
    }

    /// How many times children may have moved to other buckets since the table began.
    pub fn moves(&self) -> u32 {
        self.moves
    }

    /// The number of buckets: every child is in one of `0..buckets()`.
    pub fn buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The children in the buckets `range`, in bucket order.
    pub fn in_buckets(&self, range: Range<usize>) -> impl Iterator<Item = &Node> {
        range.filter_map(|bucket| self.table.get_bucket(bucket))
    }

    /// Removes and returns the child called `name`.
    pub fn remove(&mut self, hasher: &Hasher, name: &str) -> Option<Node> {
        let name = name.as_bytes();
        match self.table.find_entry(hash(hasher, name), |node| node.name_bytes() == name) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The children, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.table.iter()
    }

    /// The children's names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(Node::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::AclId;
    use crate::txn::Zxid;

    fn node(name: &str) -> Node {
        Node::new(name, None, AclId::OPEN, 0, Zxid::new(1), 0)
    }

    #[test]
    fn insert_find_remove() {
        let hasher = Hasher::default();
        let mut children = Children::default();
        assert!(children.insert(&hasher, node("a")));
        assert!(!children.insert(&hasher, node("a")), "names are unique");
        for i in 0..100 {
            assert!(children.insert(&hasher, node(&format!("n{i}"))));
        }
        assert_eq!(children.len(), 101);
        children.get_mut(&hasher, "n7").expect("present").change_stat(|stat, _| stat.version = 3);
        assert_eq!(children.get(&hasher, "n7").map(|n| n.persisted_stat().version), Some(3));
        assert_eq!(children.remove(&hasher, "a").map(|n| n.name().to_owned()), Some("a".into()));
        assert!(!children.contains(&hasher, "a"));
        assert_eq!(children.names().count(), 100);
    }
}
