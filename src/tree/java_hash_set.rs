//! A set of strings that iterates in the order Java's `HashSet<String>` does, for the
//! orders ZooKeeper takes from one: a session's ephemeral nodes, which `getEphemerals`
//! lists, `dump` prints, and a closeSession deletes (so its watch events and audit lines
//! come) in that order.
//!
//! Java iterates a hash set by bucket, `spread(hashCode) & (capacity - 1)`, and within a
//! bucket in the order of insertion. The capacity starts at 16, doubles when the size
//! passes three quarters of it and never shrinks; doubling splits a bucket in two without
//! reordering either half. A copy (`clone`) is sized for its contents alone and fills in
//! the original's order. Here each member is keyed by its bucket and a number that grows
//! with each insertion, which orders a bucket as Java does and finds a member in the run
//! of its bucket. (A Java bucket of eight or more members becomes a tree, whose order this
//! does not follow; eight paths of one session in one bucket are rare.)

use std::collections::BTreeMap;

/// Java's `String.hashCode`, over UTF-16 code units.
pub fn java_string_hash(value: &str) -> i32 {
    value
        .encode_utf16()
        .fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// `HashMap.hash`: the high half folded into the low one.
fn spread(hash: i32) -> u32 {
    let hash = hash as u32;
    hash ^ (hash >> 16)
}

/// `HashMap`'s default capacity, taken at the first insertion.
const DEFAULT_CAPACITY: u32 = 16;

/// Strings in the order a Java `HashSet` of them iterates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JavaHashSet {
    /// The members with their spread hashes, by (bucket, insertion number): in
    /// iteration order.
    members: BTreeMap<(u32, u64), (u32, String)>,
    /// The table's capacity, 0 before the first insertion.
    capacity: u32,
    /// The next insertion's number.
    inserted: u64,
}

impl JavaHashSet {
    /// An empty set, as `new HashSet<>()`.
    pub fn new() -> JavaHashSet {
        JavaHashSet::default()
    }

    /// The key of `value`, whose spread hash is `spread`, if it is a member: its
    /// bucket's run holds it.
    fn find(&self, spread: u32, value: &str) -> Option<(u32, u64)> {
        if self.capacity == 0 {
            return None;
        }
        let bucket = spread & (self.capacity - 1);
        self.members
            .range((bucket, 0)..=(bucket, u64::MAX))
            .find(|(_, (_, member))| member == value)
            .map(|(key, _)| *key)
    }

    /// Adds `value` (`HashSet.add`): a new member goes last in its bucket; one already
    /// there stays where it is. Returns whether it was new.
    pub fn insert(&mut self, value: String) -> bool {
        let spread = spread(java_string_hash(&value));
        if self.find(spread, &value).is_some() {
            return false;
        }
        if self.capacity == 0 {
            self.capacity = DEFAULT_CAPACITY;
        }
        self.members.insert((spread & (self.capacity - 1), self.inserted), (spread, value));
        self.inserted += 1;
        if self.members.len() as u64 > u64::from(self.capacity) * 3 / 4 {
            // Doubling splits each bucket in two, each half in its order.
            self.capacity = self.capacity.saturating_mul(2);
            let mask = self.capacity - 1;
            self.members = std::mem::take(&mut self.members)
                .into_iter()
                .map(|((_, number), (spread, member))| ((spread & mask, number), (spread, member)))
                .collect();
        }
        true
    }

    /// Removes `value`; the others keep their order. Returns whether it was there.
    pub fn remove(&mut self, value: &str) -> bool {
        match self.find(spread(java_string_hash(value)), value) {
            Some(key) => self.members.remove(&key).is_some(),
            None => false,
        }
    }

    /// Whether `value` is a member.
    pub fn contains(&self, value: &str) -> bool {
        self.find(spread(java_string_hash(value)), value).is_some()
    }

    /// A copy as `HashSet.clone` makes it: a table sized for the members alone
    /// (`tableSizeFor(size / 0.75 + 1)`), filled in this set's order.
    pub fn java_clone(&self) -> JavaHashSet {
        let mut copy = JavaHashSet::new();
        if self.members.is_empty() {
            return copy;
        }
        // Java computes `(int) (size / 0.75f + 1.0f)` in floats.
        let wanted = (self.members.len() as f32 / 0.75 + 1.0) as u32;
        copy.capacity = wanted.max(1).next_power_of_two();
        for value in self.iter() {
            copy.insert(value.clone());
        }
        copy
    }

    /// The members in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.members.values().map(|(_, value)| value)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> JavaHashSet {
        let mut set = JavaHashSet::new();
        for value in values {
            set.insert((*value).to_owned());
        }
        set
    }

    fn order(set: &JavaHashSet) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn hashes_are_javas() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("/a/eph"), 1_436_652_448);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    // The orders below are what OpenJDK 17 printed for the same insertions (and
    // removals) into a `new HashSet<String>()`, and for its `clone()`.

    #[test]
    fn iteration_follows_javas_hash_set() {
        // The three ephemerals a ZooKeeper 3.8 session left, in the order it deleted them.
        let ephemerals = set(&["/a/eph", "/a/eseq-0000000002", "/m2"]);
        assert_eq!(order(&ephemerals), ["/a/eph", "/m2", "/a/eseq-0000000002"]);
        assert_eq!(order(&ephemerals.java_clone()), ["/a/eph", "/m2", "/a/eseq-0000000002"]);
        // Thirty, which double the table twice.
        let names: Vec<String> = (0..30).map(|i| format!("/e/n{i}")).collect();
        let many = set(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let java: Vec<String> = [
            16, 17, 14, 15, 18, 19, 12, 13, 10, 11, 1, 2, 3, 4, 0, 9, 27, 28, 25, 26, 5, 6, 7, 29,
            8, 20, 23, 24, 21, 22,
        ]
        .iter()
        .map(|i| format!("/e/n{i}"))
        .collect();
        assert_eq!(order(&many), java);
        assert_eq!(order(&many.java_clone()), java);
    }

    #[test]
    fn removal_keeps_the_order_and_a_clone_is_sized_for_what_is_left() {
        let mut grown = set(&["/x", "/y"]);
        assert!(!grown.insert("/x".into()));
        for i in 0..13 {
            grown.insert(format!("/p{i}"));
        }
        let grown_order = order(&grown);
        assert_eq!(
            grown_order,
            [
                "/x", "/y", "/p0", "/p1", "/p2", "/p3", "/p4", "/p5", "/p6", "/p12", "/p7", "/p11",
                "/p8", "/p10", "/p9"
            ]
        );
        for i in (0..13).step_by(2) {
            assert!(grown.remove(&format!("/p{i}")));
        }
        assert!(!grown.remove("/p0"));
        assert_eq!(order(&grown), ["/x", "/y", "/p1", "/p3", "/p5", "/p7", "/p11", "/p9"]);
        let clone = grown.java_clone();
        assert_eq!(order(&clone), ["/p1", "/p3", "/p5", "/p7", "/p11", "/p9", "/x", "/y"]);
    }

    #[test]
    fn a_large_set_stays_ordered_by_bucket_through_its_doublings() {
        let mut large = JavaHashSet::new();
        for i in 0..20_000 {
            assert!(large.insert(format!("/svc/instance-{i}")));
        }
        assert_eq!(large.capacity, 32_768);
        let mask = large.capacity - 1;
        let buckets: Vec<u32> =
            large.iter().map(|path| spread(java_string_hash(path)) & mask).collect();
        assert!(buckets.windows(2).all(|pair| pair[0] <= pair[1]));
        for i in (0..20_000).step_by(2) {
            assert!(large.remove(&format!("/svc/instance-{i}")));
        }
        assert_eq!(large.len(), 10_000);
        assert!(large.contains("/svc/instance-1") && !large.contains("/svc/instance-0"));
        assert_eq!(large.java_clone().capacity, 16_384);
    }
}
