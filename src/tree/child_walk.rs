//! A walk over one child table that lets go of the table's lock between slices: how a
//! snapshot (a snapshot file, a transfer to a learner) reads a live tree, so that an
//! apply to a big table never waits for the whole table to be encoded.
//!
//! A sorted table is walked in name order, each slice starting after the last name met,
//! so inserts and removals between slices change nothing. A hashed table is walked by
//! bucket: a child stays in its bucket until an insert grows or rehashes the table
//! ([`Children::moves`]). Either way the walk meets every child that was there when it
//! began and is still there, once, without looking any up by name. Children created
//! after the snapshot's zxid are left out: the log replay after loading brings them, and
//! one deleted and created again behind the walk would otherwise be met twice. Should the
//! table's children move (a hashed table grows, a sorted one becomes hashed), the walk
//! goes on by name through the children it has not met yet.

use compact_str::CompactString;

use crate::fast_hash::FastHashSet;
use crate::tree::data_tree::DataTree;
use crate::tree::node::Node;
use crate::txn::Zxid;

/// Children of a sorted table, buckets of a hashed one, or (once the walk goes by name)
/// names per hold of the table's lock.
const PER_HOLD: usize = 128;

/// Where a walk over one table stands.
#[derive(Debug)]
pub struct ChildWalk {
    parent: String,
    /// The snapshot's zxid: children created after it are left out.
    through: Zxid,
    next: Next,
    /// The names of the children met by bucket, for going on by name if they move.
    met: Vec<CompactString>,
}

#[derive(Debug)]
enum Next {
    /// In a sorted table, the children after this name (`None`: from the first).
    After(Option<CompactString>),
    /// The next bucket, and the table's [`Children::moves`] when the walk began.
    Bucket {
        at: usize,
        moves: u32,
    },
    /// The names not met yet, and the next of them.
    Named {
        names: Vec<CompactString>,
        at: usize,
    },
    Done,
}

impl ChildWalk {
    /// A walk over the children of `parent` (`""` holds the root) created at or before
    /// `through`.
    pub fn new(tree: &DataTree, parent: &str, through: Zxid) -> ChildWalk {
        let next = match tree.child_table(parent) {
            Some(table) if table.is_sorted() => Next::After(None),
            Some(table) => Next::Bucket { at: 0, moves: table.moves() },
            None => Next::Done,
        };
        ChildWalk { parent: parent.to_owned(), through, next, met: Vec::new() }
    }

    /// Calls `f` with the next slice of children, under one hold of the table's lock.
    /// Returns false, without calling `f`, once the walk is over.
    pub fn step(&mut self, tree: &DataTree, f: impl FnOnce(&[&Node])) -> bool {
        let Some(table) = tree.child_table(&self.parent) else {
            // Every child is gone, and the table with them.
            self.next = Next::Done;
            return false;
        };
        let through = self.through;
        let wanted = |node: &&Node| node.czxid() <= through;
        match &mut self.next {
            Next::Done => false,
            Next::After(after) => {
                let Some(slice) = table.sorted_after(after.as_deref(), PER_HOLD) else {
                    // Hashed since the last slice: the names after the last met go on.
                    let unmet = |name: &&str| after.as_deref().is_none_or(|last| *name > last);
                    let names = table.names().filter(unmet).map(Into::into).collect();
                    self.next = Next::Named { names, at: 0 };
                    drop(table);
                    return self.step(tree, f);
                };
                let Some(last) = slice.last() else {
                    self.next = Next::Done;
                    return false;
                };
                // Children created after this slice are after `through` too: a short slice
                // ends the walk.
                let more = slice.len() == PER_HOLD;
                *after = Some(last.name().into());
                let nodes: Vec<&Node> = slice.iter().filter(wanted).collect();
                f(&nodes);
                if !more {
                    self.next = Next::Done;
                }
                true
            }
            Next::Bucket { moves, .. } if *moves != table.moves() => {
                let met: FastHashSet<&str> = self.met.iter().map(CompactString::as_str).collect();
                let names: Vec<CompactString> =
                    table.names().filter(|name| !met.contains(name)).map(Into::into).collect();
                self.met = Vec::new();
                self.next = Next::Named { names, at: 0 };
                drop(table);
                self.step(tree, f)
            }
            Next::Bucket { at, .. } => {
                let buckets = table.buckets();
                let end = (*at + PER_HOLD).min(buckets);
                let nodes: Vec<&Node> = table.in_buckets(*at..end).filter(wanted).collect();
                self.met.extend(nodes.iter().map(|node| CompactString::from(node.name())));
                f(&nodes);
                *at = end;
                if end >= buckets {
                    self.next = Next::Done;
                }
                true
            }
            Next::Named { names, at } => {
                let end = (*at + PER_HOLD).min(names.len());
                let nodes: Vec<&Node> = names[*at..end]
                    .iter()
                    .filter_map(|name| table.get(tree.hasher(), name))
                    .filter(wanted)
                    .collect();
                f(&nodes);
                *at = end;
                if end >= names.len() {
                    self.next = Next::Done;
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::{perms, world_anyone};
    use crate::tree::children::SORTED_MAX;

    fn create(tree: &DataTree, path: &str, zxid: i64) {
        let acl = [world_anyone(perms::ALL)];
        tree.create_node(path, Some(b"v"), &acl, 0, -1, Zxid::new(zxid), zxid).expect("created");
    }

    /// Walks `/t` through `through`, calling `between` after each step (the lock let go).
    fn walk(tree: &DataTree, through: i64, mut between: impl FnMut(usize)) -> Vec<String> {
        let mut walk = ChildWalk::new(tree, "/t", Zxid::new(through));
        let mut met = Vec::new();
        let mut steps = 0;
        while walk.step(tree, |nodes| met.extend(nodes.iter().map(|node| node.name().to_owned()))) {
            steps += 1;
            between(steps);
        }
        met
    }

    /// `/t` with `count` children `nNNNNN`, and the zxid of the last create.
    fn tree_of(count: i64) -> (DataTree, i64) {
        let tree = DataTree::new(false);
        create(&tree, "/t", 1);
        for n in 0..count {
            create(&tree, &format!("/t/n{n:05}"), 2 + n);
        }
        (tree, 1 + count)
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    #[test]
    fn meets_each_child_there_at_the_start_and_still_there_once() {
        // Sorted and hashed tables alike.
        for count in [2_000, 2 * SORTED_MAX as i64] {
            let (tree, through) = tree_of(count);
            let moves = tree.child_table("/t").map(|table| table.moves());
            let mut next_zxid = through + 1;
            let mut deleted = Vec::new();
            let met = walk(&tree, through, |step| {
                // Between slices: a child deleted for good, one deleted and created
                // again, and a new one; none of them moves the others (a hashed table
                // has room).
                let gone = format!("/t/n{:05}", step * 7);
                let again = format!("/t/n{:05}", step * 7 + 1);
                for path in [&gone, &again] {
                    tree.delete_node(path, Zxid::new(next_zxid)).expect("deleted");
                    next_zxid += 1;
                }
                create(&tree, &again, next_zxid);
                create(&tree, &format!("/t/new{step}"), next_zxid + 1);
                next_zxid += 2;
                deleted.extend([gone, again]);
            });
            assert_eq!(moves, tree.child_table("/t").map(|table| table.moves()), "none moved");
            assert!(deleted.len() > 20, "the walk took {} steps", deleted.len() / 2);
            let mut expected: Vec<String> = (0..count).map(|n| format!("n{n:05}")).collect();
            let unmet: Vec<String> =
                deleted.iter().map(|path| path["/t/".len()..].to_owned()).collect();
            let met = sorted(met);
            assert!(met.windows(2).all(|pair| pair[0] != pair[1]), "no child is met twice");
            assert!(met.iter().all(|name| !name.starts_with("new")), "none created after");
            // Each child deleted (or created again) was met if the walk had passed it,
            // so what was met is every child that stayed, plus some of those.
            expected.retain(|name| !unmet.contains(name));
            let stayed: Vec<&String> = met.iter().filter(|name| !unmet.contains(name)).collect();
            assert_eq!(stayed, expected.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn goes_on_by_name_when_the_children_move_under_it() {
        // A hashed table that grows, and a sorted one that becomes hashed.
        for count in [2 * SORTED_MAX as i64, 1_000] {
            let (tree, through) = tree_of(count);
            let mut next_zxid = through + 1;
            let before = tree.child_table("/t").map(|table| table.moves());
            let met = walk(&tree, through, |step| {
                if step == 2 {
                    // Enough new children to grow the table: every child moves.
                    for n in 0..3 * count.max(SORTED_MAX as i64) {
                        create(&tree, &format!("/t/late{n:05}"), next_zxid);
                        next_zxid += 1;
                    }
                }
            });
            let after = tree.child_table("/t").map(|table| table.moves());
            assert_ne!(before, after, "the children of {count} moved");
            let expected: Vec<String> = (0..count).map(|n| format!("n{n:05}")).collect();
            assert_eq!(sorted(met), expected, "each child there at the start, once");
        }
    }

    #[test]
    fn a_table_that_empties_ends_the_walk() {
        let tree = DataTree::new(false);
        create(&tree, "/t", 1);
        for n in 0..300 {
            create(&tree, &format!("/t/n{n}"), 2 + n);
        }
        let mut zxid = 400;
        let met = walk(&tree, 301, |step| {
            if step == 1 {
                for n in 0..300 {
                    let _ = tree.delete_node(&format!("/t/n{n}"), Zxid::new(zxid));
                    zxid += 1;
                }
            }
        });
        assert!(!met.is_empty() && met.len() < 300, "{} met", met.len());
        assert!(!ChildWalk::new(&tree, "/nothing", Zxid::new(1)).step(&tree, |_| {}));
    }
}
