//! A linearizability checker for histories of one register, in the manner of Wing and
//! Gong with Lowe's memoisation, as Porcupine and Knossos implement it.
//!
//! A history is a list of operations, each with the time it was invoked and the time it
//! completed (or none, when the client never learnt the outcome: such an operation may
//! have taken effect at any point after its invocation, or not at all). The checker looks
//! for an order of the operations that respects real time (an operation that completed
//! before another was invoked comes first) and in which every operation's outcome is what
//! the register would give. It searches depth first over the operations that may come
//! next, remembering the (set of operations done, register state) pairs already tried.
//! A set of operations is remembered by a 128-bit Zobrist hash (a random key per
//! operation, XORed in and out as it is placed and taken back), so that a history of
//! millions of operations needs memory in proportion to the configurations tried, not
//! to their size times the history's. A collision could only make the search skip a
//! configuration, and so report a violation that is not one, never miss one; at 128
//! bits it does not happen in practice.

use std::collections::HashSet;

use crate::support::rng::Rng;

/// A znode's data and version, as the register holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    /// The value last written.
    pub value: u64,
    /// The znode's data version.
    pub version: i32,
}

/// What a client asked of the register, and what it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// getData: the value and version read.
    Read { seen: State },
    /// setData with version -1: the version the reply carried, if one came.
    Write { value: u64, version: Option<i32> },
    /// setData with an expected version: whether it succeeded (`None` when unknown).
    Cas { expected: i32, value: u64, succeeded: Option<bool> },
}

impl Op {
    /// The register's state after `self` from `state`, if `self`'s outcome is possible
    /// from `state`.
    fn step(&self, state: State) -> Option<State> {
        match *self {
            Op::Read { seen } => (seen == state).then_some(state),
            Op::Write { value, version } => {
                let next = State { value, version: state.version + 1 };
                version.is_none_or(|version| version == next.version).then_some(next)
            }
            Op::Cas { expected, value, succeeded } => {
                let matches = state.version == expected;
                // An unknown outcome is whichever the state gives: placed last of all,
                // the operation that never happened changes nothing anyone saw.
                match (succeeded, matches) {
                    (Some(true) | None, true) => Some(State { value, version: expected + 1 }),
                    (Some(false) | None, false) => Some(state),
                    _ => None,
                }
            }
        }
    }

    /// Whether an operation whose outcome is unknown may be left out entirely: one
    /// that changes nothing observable when it did not happen.
    fn definite(&self) -> bool {
        !matches!(self, Op::Write { version: None, .. } | Op::Cas { succeeded: None, .. })
    }
}

/// One operation of a history.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// Which client ran it (for reports).
    pub client: usize,
    /// When it was invoked, in any monotonic unit.
    pub invoked: u64,
    /// When its outcome arrived; `None` when it never did.
    pub completed: Option<u64>,
    pub op: Op,
}

/// Why a history is not linearizable: the longest prefix that was, for the report.
#[derive(Debug)]
pub struct Violation {
    /// The most operations any order managed to place.
    pub placed: usize,
    /// An operation that could not be placed after that many.
    pub stuck_at: Operation,
}

/// Checks `history` against a register that starts at `initial`.
pub fn check(initial: State, history: &[Operation]) -> Result<(), Violation> {
    // An operation with an unknown outcome that changed nothing needs no place; those
    // that may have changed the register complete "at the end of time".
    let history: Vec<Operation> = history
        .iter()
        .filter(|operation| operation.completed.is_some() || !operation.op.definite())
        .copied()
        .collect();
    let events = Events::new(&history);
    events.search(initial, &history)
}

/// The history as a doubly linked list of invocations and completions in time order,
/// from which placed operations are lifted and put back as the search backtracks.
struct Events {
    /// (operation, whether this is its completion), in time order.
    kinds: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each operation, the index of its invocation and of its completion.
    invocation: Vec<usize>,
    completion: Vec<usize>,
}

/// The list's head sentinel; indices of events are shifted by one.
const HEAD: usize = 0;

impl Events {
    fn new(history: &[Operation]) -> Events {
        let mut times: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * history.len());
        for (index, operation) in history.iter().enumerate() {
            times.push((operation.invoked, false, index));
            times.push((operation.completed.unwrap_or(u64::MAX), true, index));
        }
        // At equal times, completions first: an operation that completed at the instant
        // another was invoked is taken to precede it.
        times.sort_by_key(|&(time, completes, index)| (time, !completes, index));
        let count = times.len();
        let mut events = Events {
            kinds: Vec::with_capacity(count + 1),
            next: (1..=count + 1).collect(),
            prev: (0..=count).map(|i| i.wrapping_sub(1)).collect(),
            invocation: vec![0; history.len()],
            completion: vec![0; history.len()],
        };
        events.kinds.push((usize::MAX, false));
        for (position, &(_, completes, index)) in times.iter().enumerate() {
            let node = position + 1;
            events.kinds.push((index, completes));
            if completes {
                events.completion[index] = node;
            } else {
                events.invocation[index] = node;
            }
        }
        events.next[count] = usize::MAX;
        events
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != usize::MAX {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != usize::MAX {
            self.prev[next] = node;
        }
    }

    fn search(mut self, initial: State, history: &[Operation]) -> Result<(), Violation> {
        let keys = zobrist_keys(history.len());
        let mut placed: u128 = 0;
        let mut seen: HashSet<(u128, State)> = HashSet::new();
        let mut stack: Vec<(usize, State)> = Vec::new();
        let mut state = initial;
        let mut best = (0, None);
        let mut node = self.next[HEAD];
        loop {
            if self.next[HEAD] == usize::MAX {
                return Ok(());
            }
            if node == usize::MAX {
                // Only reachable past the last completion, which the loop never passes.
                node = self.next[HEAD];
                continue;
            }
            let (index, completes) = self.kinds[node];
            if !completes {
                if let Some(after) = history[index].op.step(state) {
                    if seen.insert((placed ^ keys[index], after)) {
                        placed ^= keys[index];
                        stack.push((index, state));
                        state = after;
                        self.unlink(self.invocation[index]);
                        self.unlink(self.completion[index]);
                        if stack.len() > best.0 {
                            best = (stack.len(), None);
                        }
                        node = self.next[HEAD];
                        continue;
                    }
                }
                node = self.next[node];
                continue;
            }
            // An operation completed before any order could place it: undo the last
            // placement and try the next candidate after it.
            if stack.len() >= best.0 && best.1.is_none() {
                best.1 = Some(history[index]);
            }
            let Some((undone, before)) = stack.pop() else {
                let stuck_at = best.1.unwrap_or(history[index]);
                return Err(Violation { placed: best.0, stuck_at });
            };
            state = before;
            placed ^= keys[undone];
            self.relink(self.completion[undone]);
            self.relink(self.invocation[undone]);
            node = self.next[self.invocation[undone]];
        }
    }
}

/// A random 128-bit key per operation, the same for every run.
fn zobrist_keys(count: usize) -> Vec<u128> {
    let mut rng = Rng(0x5EED_0FC4_ECCE_2500);
    (0..count).map(|_| (u128::from(rng.next()) << 64) | u128::from(rng.next())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: State = State { value: 0, version: 0 };

    fn op(client: usize, invoked: u64, completed: Option<u64>, op: Op) -> Operation {
        Operation { client, invoked, completed, op }
    }

    fn read(value: u64, version: i32) -> Op {
        Op::Read { seen: State { value, version } }
    }

    fn write(value: u64, version: i32) -> Op {
        Op::Write { value, version: Some(version) }
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let history = [
            op(0, 0, Some(10), write(1, 1)),
            op(1, 1, Some(9), read(0, 0)),
            op(2, 2, Some(11), read(1, 1)),
            op(3, 12, Some(13), read(1, 1)),
        ];
        check(START, &history).expect("linearizable");
    }

    #[test]
    fn a_stale_read_is_caught() {
        let history = [
            op(0, 0, Some(10), write(1, 1)),
            // Invoked after the write was acknowledged, yet it saw the old value.
            op(1, 11, Some(12), read(0, 0)),
        ];
        let violation = check(START, &history).expect_err("a stale read");
        assert_eq!(violation.placed, 1);
    }

    #[test]
    fn a_lost_write_is_caught() {
        let history = [
            op(0, 0, Some(10), write(1, 1)),
            op(0, 11, Some(20), write(2, 2)),
            // The second acknowledged write is gone: the register went back.
            op(1, 21, Some(22), read(1, 1)),
        ];
        check(START, &history).expect_err("a lost write");
    }

    #[test]
    fn two_compare_and_sets_on_one_version_cannot_both_succeed() {
        let cas = |value| Op::Cas { expected: 0, value, succeeded: Some(true) };
        let history = [op(0, 0, Some(10), cas(1)), op(1, 1, Some(9), cas(2))];
        check(START, &history).expect_err("a double-acquired version");
        let failed = Op::Cas { expected: 0, value: 2, succeeded: Some(false) };
        let history = [op(0, 0, Some(10), cas(1)), op(1, 1, Some(9), failed)];
        check(START, &history).expect("one succeeds, the other sees the new version");
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let unknown = Op::Write { value: 7, version: None };
        let late = [
            op(0, 0, None, unknown),
            op(1, 5, Some(6), read(0, 0)),
            op(1, 100, Some(101), read(7, 1)),
        ];
        check(START, &late).expect("it took effect between the reads");
        let never = [op(0, 0, None, unknown), op(1, 100, Some(101), read(0, 0))];
        check(START, &never).expect("it never took effect");
        let stale_cas = Op::Cas { expected: 5, value: 9, succeeded: None };
        let history = [op(0, 0, None, stale_cas), op(1, 100, Some(101), read(0, 0))];
        check(START, &history).expect("a compare-and-set on another version does nothing");
        let twice = [
            op(0, 0, None, unknown),
            op(1, 5, Some(6), read(7, 1)),
            op(1, 10, Some(11), read(0, 0)),
        ];
        check(START, &twice).expect_err("it cannot be undone");
    }

    #[test]
    fn a_history_of_a_million_operations_fits_in_memory() {
        // Two clients alternating writes and reads, a million operations in all.
        let mut history = Vec::new();
        for n in 0..500_000u64 {
            let version = i32::try_from(n + 1).expect("fits");
            history.push(op(0, 4 * n, Some(4 * n + 2), write(n + 1, version)));
            history.push(op(1, 4 * n + 1, Some(4 * n + 3), read(n + 1, version)));
        }
        check(START, &history).expect("linearizable");
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // 8 clients, each writing its own values and reading, all overlapping.
        let mut history = Vec::new();
        let mut version = 0;
        for round in 0..200u64 {
            let base = round * 100;
            version += 1;
            history.push(op(0, base, Some(base + 50), write(round + 1, version)));
            for client in 1..8 {
                let seen =
                    if client % 2 == 0 { (round, version - 1) } else { (round + 1, version) };
                history.push(op(client, base + 1, Some(base + 60), read(seen.0, seen.1)));
            }
        }
        check(START, &history).expect("linearizable");
    }
}
