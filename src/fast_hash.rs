//! Hash maps with foldhash: several times faster than std's SipHash on the short keys
//! of the request path (paths, ids), and still randomly seeded per map.

/// The hasher of every map below.
pub type FastState = foldhash::fast::RandomState;

/// A `HashMap` with foldhash.
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// A `HashSet` with foldhash.
pub type FastHashSet<T> = std::collections::HashSet<T, FastState>;

/// A `DashMap` with foldhash.
pub type FastDashMap<K, V> = dashmap::DashMap<K, V, FastState>;
