//! Which sets of voting members are quorums: any strict majority of them, or, when the
//! membership has `group.N` lines, ZooKeeper's hierarchical quorums
//! (`QuorumHierarchical`): a majority of the groups, each by a strict majority of its
//! weight.

use std::collections::{BTreeMap, BTreeSet};

use crate::txn::Zxid;
use crate::zab::ServerId;

/// The `group.N` and `weight.N` lines of a membership, as the core needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Each voter's group; every voter is in exactly one.
    pub group_of: BTreeMap<ServerId, u64>,
    /// Each voter's weight: 1 unless a `weight.N` line gives another. A member of weight
    /// 0 votes for nothing and is never elected.
    pub weight_of: BTreeMap<ServerId, u64>,
}

/// Groups with the sums [`Quorum::contains_quorum`] compares against.
#[derive(Debug, Clone)]
struct Weighed {
    groups: Groups,
    /// The total weight of each group.
    group_weight: BTreeMap<u64, u64>,
    /// The groups whose weight is not 0: a quorum needs a majority of them.
    counted: usize,
}

/// The voting members and what makes a quorum of them.
#[derive(Debug, Clone)]
pub struct Quorum {
    voters: BTreeSet<ServerId>,
    groups: Option<Weighed>,
}

impl Quorum {
    /// A quorum system over `voters`: majorities, or hierarchical with `groups`.
    pub fn new(voters: BTreeSet<ServerId>, groups: Option<Groups>) -> Quorum {
        let groups = groups.map(|groups| {
            let mut group_weight = BTreeMap::new();
            for (id, group) in &groups.group_of {
                *group_weight.entry(*group).or_insert(0) +=
                    groups.weight_of.get(id).copied().unwrap_or(1);
            }
            let counted = group_weight.values().filter(|weight| **weight > 0).count();
            Weighed { groups, group_weight, counted }
        });
        Quorum { voters, groups }
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// The voters.
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    /// Whether `id` may be elected: not a member of weight 0 (ZooKeeper's
    /// `totalOrderPredicate` never prefers a vote for one).
    pub fn may_lead(&self, id: ServerId) -> bool {
        self.groups
            .as_ref()
            .is_none_or(|weighed| weighed.groups.weight_of.get(&id).copied().unwrap_or(1) > 0)
    }

    /// Whether the voters among `ids` form a quorum.
    pub fn contains_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let agreeing: BTreeSet<ServerId> =
            ids.into_iter().filter(|id| self.is_voter(*id)).collect();
        let Some(weighed) = &self.groups else {
            return agreeing.len() * 2 > self.voters.len();
        };
        let mut gathered: BTreeMap<u64, u64> = BTreeMap::new();
        for id in &agreeing {
            if let Some(group) = weighed.groups.group_of.get(id) {
                let weight = weighed.groups.weight_of.get(id).copied().unwrap_or(1);
                *gathered.entry(*group).or_insert(0) += weight;
            }
        }
        let carried = gathered
            .iter()
            .filter(|(group, weight)| {
                **weight > weighed.group_weight.get(group).copied().unwrap_or(0) / 2
            })
            .count();
        carried * 2 > weighed.counted
    }

    /// The highest zxid that a quorum of voters hold, given what each holds: sorts
    /// `held` by zxid, highest first.
    pub fn durable_point(&self, held: &mut [(ServerId, Zxid)]) -> Zxid {
        held.sort_unstable_by_key(|(_, zxid)| std::cmp::Reverse(*zxid));
        if self.groups.is_none() {
            return held.get(held.len() / 2).map_or(Zxid::ZERO, |(_, zxid)| *zxid);
        }
        (1..=held.len())
            .find(|taken| self.contains_quorum(held[..*taken].iter().map(|(id, _)| *id)))
            .map_or(Zxid::ZERO, |taken| held[taken - 1].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(lines: &[(u64, &[u64])], weights: &[(u64, u64)]) -> Groups {
        let mut groups = Groups::default();
        for (group, members) in lines {
            for member in *members {
                groups.group_of.insert(*member, *group);
                groups.weight_of.insert(*member, 1);
            }
        }
        groups.weight_of.extend(weights.iter().copied());
        groups
    }

    fn hierarchical(lines: &[(u64, &[u64])], weights: &[(u64, u64)]) -> Quorum {
        let grouped = groups(lines, weights);
        Quorum::new(grouped.group_of.keys().copied().collect(), Some(grouped))
    }

    #[test]
    fn majorities_count_voters_only_once() {
        let quorum = Quorum::new([1, 2, 3].into(), None);
        assert!(!quorum.contains_quorum([1]));
        assert!(!quorum.contains_quorum([1, 1, 4, 5]));
        assert!(quorum.contains_quorum([1, 3]));
        let five = Quorum::new([1, 2, 3, 4, 5].into(), None);
        assert!(!five.contains_quorum([1, 2]));
        assert!(five.contains_quorum([1, 2, 5]));
    }

    #[test]
    fn a_hierarchical_quorum_is_a_majority_of_groups_each_by_a_majority_of_weight() {
        // Three sites of three: any two sites, each by two of its three members.
        let quorum = hierarchical(&[(1, &[1, 2, 3]), (2, &[4, 5, 6]), (3, &[7, 8, 9])], &[]);
        assert!(quorum.contains_quorum([1, 2, 4, 5]));
        assert!(!quorum.contains_quorum([1, 2, 3, 4, 7]), "one site by a majority only");
        assert!(!quorum.contains_quorum([1, 2, 3, 4, 5, 6].map(|id| id + 10)));
        assert!(!quorum.contains_quorum([]));
        // Two groups: both are needed, so the member alone in its group is in every quorum
        // though three of four members are a majority.
        let two = hierarchical(&[(1, &[1, 2, 3]), (2, &[4])], &[]);
        assert!(!two.contains_quorum([1, 2, 3]));
        assert!(two.contains_quorum([1, 2, 4]));
    }

    #[test]
    fn weights_decide_within_a_group_and_groups_of_weight_zero_do_not_count() {
        let quorum = hierarchical(&[(1, &[1, 2, 3]), (2, &[4, 5])], &[(1, 3), (5, 0)]);
        // Group 1 weighs 5: member 1 (3) alone is more than half; 2 and 3 (2) are not.
        // Group 2 weighs 1: member 4 carries it.
        assert!(quorum.contains_quorum([1, 4]));
        assert!(!quorum.contains_quorum([2, 3, 4, 5]));
        assert!(!quorum.may_lead(5));
        assert!(quorum.may_lead(4));
        let zero_group = hierarchical(&[(1, &[1, 2, 3]), (2, &[4])], &[(4, 0)]);
        assert!(zero_group.contains_quorum([1, 2]), "only group 1 counts");
        assert!(Quorum::new([1, 2, 3].into(), None).may_lead(3));
    }

    #[test]
    fn the_durable_point_is_the_highest_zxid_a_quorum_holds() {
        let zxid = |n: u32| Zxid::epoch_start(1) + n;
        let majority = Quorum::new([1, 2, 3].into(), None);
        assert_eq!(
            majority.durable_point(&mut [(1, zxid(9)), (2, zxid(4)), (3, zxid(7))]),
            zxid(7)
        );
        let two = hierarchical(&[(1, &[1, 2, 3]), (2, &[4])], &[]);
        let mut held = [(1, zxid(9)), (2, zxid(8)), (3, zxid(7)), (4, zxid(2))];
        assert_eq!(two.durable_point(&mut held), zxid(2), "member 4 is in every quorum");
        let mut held = [(1, zxid(9)), (2, zxid(5)), (3, zxid(1)), (4, zxid(6))];
        assert_eq!(two.durable_point(&mut held), zxid(5));
        let mut none = [(1, zxid(3))];
        assert_eq!(two.durable_point(&mut none), Zxid::ZERO);
    }
}
