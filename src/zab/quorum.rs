//! Majorities of the voting members.

use std::collections::BTreeSet;

use crate::zab::ServerId;

/// The voting members; any strict majority of them is a quorum.
#[derive(Debug, Clone)]
pub struct Quorum {
    voters: BTreeSet<ServerId>,
}

impl Quorum {
    /// A quorum system over `voters`.
    pub fn new(voters: BTreeSet<ServerId>) -> Quorum {
        Quorum { voters }
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// The voters.
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    /// Whether the voters among `ids` form a majority.
    pub fn contains_majority(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let agreeing: BTreeSet<ServerId> =
            ids.into_iter().filter(|id| self.is_voter(*id)).collect();
        agreeing.len() * 2 > self.voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities_count_voters_only_once() {
        let quorum = Quorum::new([1, 2, 3].into());
        assert!(!quorum.contains_majority([1]));
        assert!(!quorum.contains_majority([1, 1, 4, 5]));
        assert!(quorum.contains_majority([1, 3]));
        let five = Quorum::new([1, 2, 3, 4, 5].into());
        assert!(!five.contains_majority([1, 2]));
        assert!(five.contains_majority([1, 2, 5]));
    }
}
