//! The read barrier behind `zkrs.linearizableReads`: a read is answered only after a
//! confirmation round that began after the read arrived has passed, in the manner of
//! Raft's ReadIndex.
//!
//! A round is the core's `ReadIndex`, its quorum-confirmed `sync` without the wait for
//! proposals (a leader pings its voters and waits for a quorum's answers; a learner asks
//! its leader for a `sync` and then applies what the leader had committed), so once it
//! passes, this member has applied every write committed anywhere before it began. Rounds run
//! one at a time: every read that arrives while one is in flight waits for the next,
//! which starts as soon as the current one ends and covers them all, so the cost is one
//! round trip per batch of reads rather than per read.
//!
//! Connections take tickets here and wait on a watch channel; the pipeline starts and
//! ends rounds. Both sides only touch memory, so the pipeline stays free of IO.

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::txn::SessionId;

/// Which rounds have ended, as connections watch it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finished {
    /// The newest round that passed.
    passed: u64,
    /// The newest round that failed (the member lost its leader or stopped leading).
    failed: u64,
}

/// A connection's place in the barrier: the first round to begin after its reads
/// arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    round: u64,
}

/// Rounds asked for, started and in flight.
#[derive(Debug, Default)]
struct Rounds {
    /// The newest round started.
    started: u64,
    /// The newest round a ticket waits for; never behind `started`.
    requested: u64,
    /// Whether the round `started` is still in flight.
    in_flight: bool,
    /// The session of the newest ticket: a learner asks its leader for a round in a
    /// client's session, as ZooKeeper's learners forward a `sync`.
    session_id: SessionId,
}

/// The barrier a member's connections and its pipeline share.
#[derive(Debug)]
pub struct ReadBarrier {
    rounds: Mutex<Rounds>,
    finished: watch::Sender<Finished>,
    /// Wakes the pipeline's shell when a round is asked for and none is in flight (one
    /// in flight starts the next itself when it ends).
    asked: Notify,
}

impl Default for ReadBarrier {
    fn default() -> Self {
        ReadBarrier {
            rounds: Mutex::default(),
            finished: watch::Sender::new(Finished::default()),
            asked: Notify::new(),
        }
    }
}

/// How a connection's wait on the barrier ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// Everything committed before the reads arrived is applied here.
    Passed,
    /// The round failed: this member cannot confirm it is up to date.
    Failed,
}

impl ReadBarrier {
    /// What a connection watches to learn that its round ended.
    pub fn subscribe(&self) -> watch::Receiver<Finished> {
        self.finished.subscribe()
    }

    /// A ticket for reads of `session_id` that have arrived: the next round to start.
    pub fn ticket(&self, session_id: SessionId) -> Ticket {
        let mut rounds = self.rounds.lock();
        let round = rounds.started + 1;
        let must_ask = !rounds.in_flight && rounds.requested < round;
        rounds.requested = rounds.requested.max(round);
        rounds.session_id = session_id;
        drop(rounds);
        if must_ask {
            self.asked.notify_one();
        }
        Ticket { round }
    }

    /// Resolves when a connection has asked for a round while none was in flight.
    pub async fn asked(&self) {
        self.asked.notified().await;
    }

    /// Waits until `ticket`'s round (or a later one) has ended.
    pub async fn wait(finished: &mut watch::Receiver<Finished>, ticket: Ticket) -> Passage {
        let ended = finished
            .wait_for(|ended| ended.passed >= ticket.round || ended.failed >= ticket.round)
            .await;
        match ended {
            Ok(ended) if ended.passed >= ticket.round => Passage::Passed,
            _ => Passage::Failed,
        }
    }

    /// The pipeline starts the next round if one is asked for and none is in flight;
    /// returns its number and the session to ask it in.
    pub fn begin(&self) -> Option<(u64, SessionId)> {
        let mut rounds = self.rounds.lock();
        if rounds.in_flight || rounds.requested <= rounds.started {
            return None;
        }
        rounds.started += 1;
        rounds.in_flight = true;
        Some((rounds.started, rounds.session_id))
    }

    /// Round `round` ended; the waiting connections learn how.
    pub fn end(&self, round: u64, passage: Passage) {
        let mut rounds = self.rounds.lock();
        if rounds.started == round {
            rounds.in_flight = false;
        }
        drop(rounds);
        self.finished.send_modify(|finished| match passage {
            Passage::Passed => finished.passed = finished.passed.max(round),
            Passage::Failed => finished.failed = finished.failed.max(round),
        });
    }

    /// Every round asked for or in flight fails: the member stopped serving, and the
    /// next round will begin from a clean slate.
    pub fn fail_all(&self) {
        let mut rounds = self.rounds.lock();
        let through = rounds.requested;
        rounds.started = through;
        rounds.in_flight = false;
        drop(rounds);
        self.finished.send_modify(|finished| finished.failed = finished.failed.max(through));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: SessionId = SessionId::new(0x42);

    fn ticket(barrier: &ReadBarrier) -> Ticket {
        barrier.ticket(SESSION)
    }

    fn asked(barrier: &ReadBarrier) -> bool {
        futures_util::FutureExt::now_or_never(barrier.asked()).is_some()
    }

    fn begin(barrier: &ReadBarrier) -> Option<u64> {
        barrier.begin().map(|(round, session_id)| {
            assert_eq!(session_id, SESSION);
            round
        })
    }

    fn now(barrier: &ReadBarrier, ticket: Ticket) -> Option<Passage> {
        let mut finished = barrier.subscribe();
        let wait = ReadBarrier::wait(&mut finished, ticket);
        futures_util::FutureExt::now_or_never(wait)
    }

    #[test]
    fn reads_arriving_during_a_round_wait_for_the_next_one() {
        let barrier = ReadBarrier::default();
        let first = ticket(&barrier);
        assert!(asked(&barrier));
        assert_eq!(ticket(&barrier), first);
        assert!(!asked(&barrier), "the round is asked for once");
        assert_eq!(begin(&barrier), Some(1));
        let during = ticket(&barrier);
        assert!(!asked(&barrier), "the round in flight starts the next one");
        assert_eq!(begin(&barrier), None, "one round at a time");
        barrier.end(1, Passage::Passed);
        assert_eq!(now(&barrier, first), Some(Passage::Passed));
        assert_eq!(now(&barrier, during), None, "began before these reads arrived");
        assert_eq!(begin(&barrier), Some(2));
        barrier.end(2, Passage::Passed);
        assert_eq!(now(&barrier, during), Some(Passage::Passed));
        assert_eq!(begin(&barrier), None, "nothing more was asked for");
    }

    #[test]
    fn a_failed_round_fails_its_readers_and_a_later_pass_serves_them() {
        let barrier = ReadBarrier::default();
        let first = ticket(&barrier);
        assert_eq!(begin(&barrier), Some(1));
        barrier.end(1, Passage::Failed);
        assert_eq!(now(&barrier, first), Some(Passage::Failed));
        let next = ticket(&barrier);
        assert!(asked(&barrier));
        assert_eq!(begin(&barrier), Some(2));
        barrier.end(2, Passage::Passed);
        assert_eq!(now(&barrier, next), Some(Passage::Passed));
    }

    #[test]
    fn failing_all_ends_every_waiting_ticket_and_lets_new_rounds_start() {
        let barrier = ReadBarrier::default();
        let in_flight = ticket(&barrier);
        assert_eq!(begin(&barrier), Some(1));
        let queued = ticket(&barrier);
        barrier.fail_all();
        assert_eq!(now(&barrier, in_flight), Some(Passage::Failed));
        assert_eq!(now(&barrier, queued), Some(Passage::Failed));
        let fresh = ticket(&barrier);
        assert!(asked(&barrier));
        assert_eq!(begin(&barrier), Some(3));
        barrier.end(3, Passage::Passed);
        assert_eq!(now(&barrier, fresh), Some(Passage::Passed));
    }
}
