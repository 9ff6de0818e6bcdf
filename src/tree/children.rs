//! The table of one node's children: their records, found by name.
//!
//! Each node carries its own name, so the table holds only the node's record (a pointer
//! and a length) per child; at a million znodes that saves tens of megabytes over a map
//! from name to node.
//!
//! Up to [`SORTED_MAX`] children the table is a vector sorted by name: 16 bytes a child
//! (a vector grows by doubling, so at most twice that), found by binary search. Past it
//! the table becomes a hash table for good: one probe per lookup and no shifting on
//! insert, but 17 bytes a bucket and, at hashbrown's load of at most ⅞ in buckets that
//! come in powers of two, one to two buckets a child. A directory of 1,000 children
//! takes 16 KiB sorted where a hash table of it takes 2,048 buckets, 34 KiB.

use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;

use crate::tree::node::Node;

/// The hasher shared by every child table of a tree.
pub type Hasher = crate::fast_hash::FastState;

/// The most children a sorted table holds: an insert shifts up to 64 KiB of entries,
/// a lookup compares up to 13 names.
pub const SORTED_MAX: usize = 4096;

/// One node's children.
#[derive(Debug, Default)]
pub struct Children {
    table: Table,
    /// Counts the changes that may have moved children to other buckets of a hashed
    /// table: its making from the sorted one, and the inserts that found it full, which
    /// then grow or rehash it. Removals and other inserts move no child, so a walk by
    /// bucket over several holds of the table's lock can go on while this stays the
    /// same. A sorted table has never moved (0); a hashed one has (at least 1).
    moves: u32,
}

#[derive(Debug)]
enum Table {
    /// Sorted by name, byte by byte.
    Sorted(Vec<Node>),
    /// Past [`SORTED_MAX`] children.
    Hashed(HashTable<Node>),
}

impl Default for Table {
    fn default() -> Table {
        Table::Sorted(Vec::new())
    }
}

fn hash(hasher: &Hasher, name: &[u8]) -> u64 {
    hasher.hash_one(name)
}

/// Where `name` is, or would go, in a sorted table.
fn position(sorted: &[Node], name: &[u8]) -> Result<usize, usize> {
    sorted.binary_search_by(|node| node.name_bytes().cmp(name))
}

impl Children {
    /// The child called `name`.
    pub fn get(&self, hasher: &Hasher, name: &str) -> Option<&Node> {
        let name = name.as_bytes();
        match &self.table {
            Table::Sorted(sorted) => position(sorted, name).ok().and_then(|at| sorted.get(at)),
            Table::Hashed(table) => {
                table.find(hash(hasher, name), |node| node.name_bytes() == name)
            }
        }
    }

    /// The child called `name`, to change it.
    pub fn get_mut(&mut self, hasher: &Hasher, name: &str) -> Option<&mut Node> {
        let name = name.as_bytes();
        match &mut self.table {
            Table::Sorted(sorted) => {
                position(sorted, name).ok().and_then(move |at| sorted.get_mut(at))
            }
            Table::Hashed(table) => {
                table.find_mut(hash(hasher, name), |node| node.name_bytes() == name)
            }
        }
    }

    /// Whether a child called `name` exists.
    pub fn contains(&self, hasher: &Hasher, name: &str) -> bool {
        self.get(hasher, name).is_some()
    }

    /// Adds a child; returns false (dropping `node`) if the name is taken.
    pub fn insert(&mut self, hasher: &Hasher, node: Node) -> bool {
        match &mut self.table {
            Table::Sorted(sorted) => match position(sorted, node.name_bytes()) {
                Ok(_) => false,
                Err(at) if sorted.len() < SORTED_MAX => {
                    sorted.insert(at, node);
                    true
                }
                Err(_) => {
                    let mut table = HashTable::with_capacity(sorted.len() + 1);
                    for child in std::mem::take(sorted).into_iter().chain([node]) {
                        insert_new(&mut table, hasher, hash(hasher, child.name_bytes()), child);
                    }
                    self.table = Table::Hashed(table);
                    self.moves = 1;
                    true
                }
            },
            Table::Hashed(table) => {
                let node_hash = hash(hasher, node.name_bytes());
                let taken = |existing: &Node| existing.name_bytes() == node.name_bytes();
                if table.find(node_hash, taken).is_some() {
                    return false;
                }
                if table.len() == table.capacity() {
                    self.moves = self.moves.wrapping_add(1);
                }
                insert_new(table, hasher, node_hash, node);
                true
            }
        }
    }

    /// Adds children read from a snapshot, which come in runs of a chunk's group: a
    /// sorted table merges a run in at once, where inserting each child shifts those
    /// after it (a snapshot in hash order, ZooKeeper's or an older zkrs's, would shift a
    /// directory of 1,000 children 4 MB). Returns false if a name was taken or came
    /// twice; the table keeps one child of each name either way.
    pub fn insert_all(&mut self, hasher: &Hasher, nodes: Vec<Node>) -> bool {
        match &mut self.table {
            Table::Sorted(sorted)
                if nodes.len() > 1 && sorted.len() + nodes.len() <= SORTED_MAX =>
            {
                let count = sorted.len() + nodes.len();
                sorted.extend(nodes);
                sorted.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
                sorted.dedup_by(|later, earlier| later.name_bytes() == earlier.name_bytes());
                sorted.len() == count
            }
            _ => {
                let mut all = true;
                for node in nodes {
                    all &= self.insert(hasher, node);
                }
                all
            }
        }
    }

    /// How many times children may have moved to other buckets since the table began.
    pub fn moves(&self) -> u32 {
        self.moves
    }

    /// The number of buckets: every child is in one of `0..buckets()`. A sorted table's
    /// buckets are its positions.
    pub fn buckets(&self) -> usize {
        match &self.table {
            Table::Sorted(sorted) => sorted.len(),
            Table::Hashed(table) => table.num_buckets(),
        }
    }

    /// The children in the buckets `range`, in bucket order.
    pub fn in_buckets(&self, range: Range<usize>) -> Box<dyn Iterator<Item = &Node> + '_> {
        match &self.table {
            Table::Sorted(sorted) => Box::new(sorted.get(range).unwrap_or_default().iter()),
            Table::Hashed(table) => Box::new(range.filter_map(|bucket| table.get_bucket(bucket))),
        }
    }

    /// Whether the table is sorted by name (it has never held more than [`SORTED_MAX`]).
    pub fn is_sorted(&self) -> bool {
        matches!(self.table, Table::Sorted(_))
    }

    /// Up to `count` children of a sorted table, in order, from the first whose name
    /// comes after `after` (from the first child for `None`); `None` for a hashed table.
    pub fn sorted_after(&self, after: Option<&str>, count: usize) -> Option<&[Node]> {
        let Table::Sorted(sorted) = &self.table else { return None };
        let from = match after {
            None => 0,
            Some(name) => match position(sorted, name.as_bytes()) {
                Ok(at) => at + 1,
                Err(at) => at,
            },
        };
        let to = sorted.len().min(from.saturating_add(count));
        Some(sorted.get(from..to).unwrap_or_default())
    }

    /// Removes and returns the child called `name`.
    pub fn remove(&mut self, hasher: &Hasher, name: &str) -> Option<Node> {
        let name = name.as_bytes();
        match &mut self.table {
            Table::Sorted(sorted) => {
                let node = sorted.remove(position(sorted, name).ok()?);
                if sorted.len() * 4 < sorted.capacity() {
                    sorted.shrink_to(sorted.len() * 2);
                }
                Some(node)
            }
            Table::Hashed(table) => {
                match table.find_entry(hash(hasher, name), |node| node.name_bytes() == name) {
                    Ok(entry) => Some(entry.remove().0),
                    Err(_) => None,
                }
            }
        }
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        match &self.table {
            Table::Sorted(sorted) => sorted.len(),
            Table::Hashed(table) => table.len(),
        }
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The children: in name order while the table is sorted, in no particular order
    /// once it is hashed.
    pub fn iter(&self) -> Iter<'_> {
        match &self.table {
            Table::Sorted(sorted) => Iter::Sorted(sorted.iter()),
            Table::Hashed(table) => Iter::Hashed(table.iter()),
        }
    }

    /// The children's names, in the order of [`Children::iter`].
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.iter().map(Node::name)
    }
}

/// Adds a child known not to be in `table`, whose name hashes to `node_hash`.
fn insert_new(table: &mut HashTable<Node>, hasher: &Hasher, node_hash: u64, node: Node) {
    table.insert_unique(node_hash, node, |existing| hash(hasher, existing.name_bytes()));
}

/// The children of either kind of table, without boxing the iterator: getChildren
/// lists them on the read path.
#[derive(Debug)]
pub enum Iter<'a> {
    /// A sorted table's, in name order.
    Sorted(std::slice::Iter<'a, Node>),
    /// A hashed table's, in bucket order.
    Hashed(hashbrown::hash_table::Iter<'a, Node>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Node;

    fn next(&mut self) -> Option<&'a Node> {
        match self {
            Iter::Sorted(sorted) => sorted.next(),
            Iter::Hashed(hashed) => hashed.next(),
        }
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

    #[test]
    fn a_sorted_table_keeps_name_order_until_it_is_hashed() {
        let hasher = Hasher::default();
        let mut children = Children::default();
        // Inserted out of order, with a removal between.
        for i in (0..SORTED_MAX).rev() {
            assert!(children.insert(&hasher, node(&format!("n{i:05}"))));
        }
        assert!(children.remove(&hasher, "n00002").is_some());
        assert!(children.remove(&hasher, "n00002").is_none());
        let names: Vec<&str> = children.names().collect();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "in name order");
        assert_eq!(children.moves(), 0);
        let after: Vec<&str> = children
            .sorted_after(Some("n00001"), 2)
            .map(|slice| slice.iter().map(Node::name).collect())
            .unwrap_or_default();
        assert_eq!(after, ["n00003", "n00004"], "after a name that is gone too");

        assert!(children.insert(&hasher, node("n00002")));
        assert!(children.insert(&hasher, node("x")), "one past the most sorted");
        assert!(!children.is_sorted() && children.sorted_after(None, 1).is_none(), "hashed");
        assert_eq!(children.moves(), 1, "every child moved");
        assert!(!children.insert(&hasher, node("n00002")), "names stay unique");
        assert_eq!(children.len(), SORTED_MAX + 1);
        assert!((0..SORTED_MAX).all(|i| children.contains(&hasher, &format!("n{i:05}"))));
        let in_buckets = children.in_buckets(0..children.buckets()).count();
        assert_eq!(in_buckets, SORTED_MAX + 1, "each child in one bucket");
        assert!(children.remove(&hasher, "x").is_some());
        assert!(!children.contains(&hasher, "x"));
    }

    #[test]
    fn runs_merge_into_a_sorted_table_and_names_stay_unique() {
        let hasher = Hasher::default();
        let mut children = Children::default();
        let run = |names: &[&str]| names.iter().map(|name| node(name)).collect::<Vec<_>>();
        assert!(children.insert_all(&hasher, run(&["m", "c", "x"])));
        assert!(children.insert_all(&hasher, run(&["a", "z", "d"])));
        assert!(!children.insert_all(&hasher, run(&["b", "c"])), "c is there");
        assert!(!children.insert_all(&hasher, run(&["e", "e"])), "e came twice");
        assert_eq!(children.names().collect::<Vec<_>>(), ["a", "b", "c", "d", "e", "m", "x", "z"]);
        assert!(children.contains(&hasher, "e"));

        let many: Vec<Node> = (0..SORTED_MAX).map(|i| node(&format!("n{i:05}"))).rev().collect();
        assert!(children.insert_all(&hasher, many), "past the most sorted, one by one");
        assert!(!children.is_sorted() && children.sorted_after(None, 1).is_none(), "hashed");
        assert_eq!(children.len(), SORTED_MAX + 8);
        assert!(!children.insert_all(&hasher, run(&["q", "a"])), "a is there");
        assert!(children.contains(&hasher, "q"));
        assert!(children.contains(&hasher, "n00042"));
    }
}
