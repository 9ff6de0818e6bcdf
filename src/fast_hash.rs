//! Hash maps with foldhash: several times faster than std's SipHash on the short keys
//! of the request path (paths, ids), and still randomly seeded per map, except on a
//! thread that the simulator has seeded, where every map's seed comes from its seed so
//! that a run replays exactly.

use std::cell::Cell;
use std::hash::BuildHasher;

use foldhash::fast::{FixedState, FoldHasher, RandomState};

thread_local! {
    /// The next seed for a map made on this thread, once [`seed_this_thread`] was called.
    static NEXT_SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// From now on, maps made on this thread take their seeds from `seed`, one after the
/// other, instead of at random: what a deterministic simulation needs.
pub fn seed_this_thread(seed: u64) {
    NEXT_SEED.with(|next| next.set(Some(seed)));
}

/// The hasher of every map below, and of the tree's child tables.
#[derive(Debug, Clone, Copy)]
pub enum FastState {
    /// Seeded at random (every server).
    Random(RandomState),
    /// Seeded from the simulator's seed.
    Fixed(FixedState),
}

impl Default for FastState {
    fn default() -> FastState {
        let seeded = NEXT_SEED.with(|next| {
            let seed = next.get()?;
            next.set(Some(splitmix64(seed)));
            Some(seed)
        });
        match seeded {
            Some(seed) => FastState::Fixed(FixedState::with_seed(seed)),
            None => FastState::Random(RandomState::default()),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        match self {
            FastState::Random(state) => state.build_hasher(),
            FastState::Fixed(state) => state.build_hasher(),
        }
    }
}

/// The next of a sequence of well-mixed seeds.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A `HashMap` with foldhash.
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// A `HashSet` with foldhash.
pub type FastHashSet<T> = std::collections::HashSet<T, FastState>;

/// A `DashMap` with foldhash.
pub type FastDashMap<K, V> = dashmap::DashMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_makes_the_same_maps_again() {
        let hashes = || {
            let (first, second) = (FastState::default(), FastState::default());
            (first.hash_one("/a"), second.hash_one("/a"))
        };
        seed_this_thread(7);
        let once = hashes();
        seed_this_thread(7);
        assert_eq!(hashes(), once);
        assert_ne!(once.0, once.1, "each map has a seed of its own");
    }
}
