//! Which sessions are alive and when each expires (ZooKeeper's `SessionTrackerImpl` and
//! `ExpiryQueue`).
//!
//! Expiry times are rounded up to the next multiple of the tick, so sessions fall into
//! one bucket per tick and expiring them costs one bucket lookup per tick, however many
//! sessions exist. A touch moves a session to a later bucket.

use std::collections::{BTreeMap, BTreeSet};

use jute::Code;

use crate::fast_hash::FastHashMap;
use crate::txn::SessionId;

#[derive(Debug, Clone, Copy)]
struct Session {
    timeout_ms: u64,
    expires_at_ms: u64,
    closing: bool,
    /// Known only to this server (ZooKeeper's local sessions): no txn created it, and
    /// none closes it.
    local: bool,
    /// A local session whose createSession txn is on its way to the leader: it stays
    /// local until that txn is applied, since the txn may be lost with the leader.
    upgrading: bool,
    /// On a leader: the member whose client holds the session, once known.
    owner: Option<u64>,
}

/// A live session as reported by the `dump` and `cons` four-letter words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub session_id: SessionId,
    /// Negotiated timeout.
    pub timeout_ms: u64,
    /// When it expires unless touched, on the tracker's clock.
    pub expires_at_ms: u64,
    /// Whether it is a local session.
    pub local: bool,
}

/// The live sessions and their expiry buckets.
#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: u64,
    sessions: FastHashMap<SessionId, Session>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
    next_session_id: SessionId,
    /// Whether touches are recorded for the leader (on a follower or observer).
    reporting: bool,
    /// Sessions touched since the last [`SessionTracker::take_touched`].
    touched: Vec<SessionId>,
}

impl SessionTracker {
    /// A tracker handing out ids from `first_session_id` (see
    /// [`crate::session::password::initial_session_id`]).
    pub fn new(tick_ms: u64, first_session_id: SessionId) -> SessionTracker {
        SessionTracker {
            tick_ms: tick_ms.max(1),
            sessions: FastHashMap::default(),
            buckets: BTreeMap::new(),
            next_session_id: first_session_id,
            reporting: false,
            touched: Vec::new(),
        }
    }

    /// A fresh session id.
    pub fn next_session_id(&mut self) -> SessionId {
        let id = self.next_session_id;
        self.next_session_id = SessionId::new(id.raw().wrapping_add(1));
        id
    }

    fn round_up(&self, time_ms: u64) -> u64 {
        (time_ms / self.tick_ms + 1) * self.tick_ms
    }

    fn schedule(&mut self, session_id: SessionId, expires_at_ms: u64) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let old = std::mem::replace(&mut session.expires_at_ms, expires_at_ms);
        if old == expires_at_ms {
            return;
        }
        if let Some(bucket) = self.buckets.get_mut(&old) {
            bucket.remove(&session_id);
            if bucket.is_empty() {
                self.buckets.remove(&old);
            }
        }
        self.buckets.entry(expires_at_ms).or_default().insert(session_id);
    }

    /// Starts tracking a session (or refreshes its timeout if it is known).
    pub fn add(&mut self, session_id: SessionId, timeout_ms: u64, now_ms: u64) {
        self.insert(session_id, timeout_ms, now_ms, false);
    }

    /// Starts tracking a local session: one only this server knows.
    pub fn add_local(&mut self, session_id: SessionId, timeout_ms: u64, now_ms: u64) {
        self.insert(session_id, timeout_ms, now_ms, true);
    }

    fn insert(&mut self, session_id: SessionId, timeout_ms: u64, now_ms: u64, local: bool) {
        let fresh = Session {
            timeout_ms,
            expires_at_ms: 0,
            closing: false,
            local,
            upgrading: false,
            owner: None,
        };
        let session = self.sessions.entry(session_id).or_insert(fresh);
        session.timeout_ms = timeout_ms;
        // A local session that a txn makes global stays global.
        session.local &= local;
        session.upgrading &= session.local;
        let expires_at_ms = self.round_up(now_ms + timeout_ms);
        self.schedule(session_id, expires_at_ms);
    }

    /// Records which member's client holds the session (a leader's view).
    pub fn set_owner(&mut self, session_id: SessionId, owner: u64) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.owner = Some(owner);
        }
    }

    /// The member whose client holds the session, if known.
    pub fn owner(&self, session_id: SessionId) -> Option<u64> {
        self.sessions.get(&session_id).and_then(|session| session.owner)
    }

    /// Whether the session is a known global one.
    pub fn is_global(&self, session_id: SessionId) -> bool {
        self.sessions.get(&session_id).is_some_and(|session| !session.local)
    }

    /// Whether the session is a local one.
    pub fn is_local(&self, session_id: SessionId) -> bool {
        self.sessions.get(&session_id).is_some_and(|session| session.local)
    }

    /// Notes that a local session's createSession txn is on its way; false if it
    /// already was (or the session is not local). The session becomes global when that
    /// txn is applied ([`SessionTracker::add`]), not before: until then no other member
    /// knows it, and if the txn is lost with the leader it must die with this member's
    /// local sessions rather than live on here as a global session no log records.
    pub fn upgrade(&mut self, session_id: SessionId) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(session) if session.local && !session.upgrading => {
                session.upgrading = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets every local session: the server stopped serving, and they die with it.
    pub fn remove_local(&mut self) {
        let local: Vec<SessionId> =
            self.sessions.iter().filter(|(_, s)| s.local).map(|(id, _)| *id).collect();
        for session_id in local {
            self.remove(session_id);
        }
    }

    /// Pushes a session's expiry back by its timeout; false if the session is unknown or
    /// closing, in which case the client must be told its session expired.
    pub fn touch(&mut self, session_id: SessionId, now_ms: u64) -> bool {
        let Some(session) = self.sessions.get(&session_id) else {
            return false;
        };
        if session.closing {
            return false;
        }
        let (timeout_ms, local) = (session.timeout_ms, session.local);
        let expires_at_ms = self.round_up(now_ms + timeout_ms);
        self.schedule(session_id, expires_at_ms);
        if self.reporting && !local {
            self.touched.push(session_id);
        }
        true
    }

    /// Gives every session its whole timeout from now, a closing one included: a new
    /// leader does not know when the other members last heard from their clients, nor
    /// whether the closeSession a closing one waits for will ever be committed (it may
    /// have been lost with the old leader). Left closing, such a session would never
    /// expire, and its ephemeral nodes would stay for good.
    pub fn touch_all(&mut self, now_ms: u64) {
        let all: Vec<(SessionId, u64)> = self
            .sessions
            .iter_mut()
            .map(|(id, session)| {
                session.closing = false;
                (*id, session.timeout_ms)
            })
            .collect();
        for (session_id, timeout_ms) in all {
            let expires_at_ms = self.round_up(now_ms + timeout_ms);
            self.schedule(session_id, expires_at_ms);
        }
    }

    /// Starts or stops recording touches: a follower reports them to the leader, which
    /// owns expiry.
    pub fn set_reporting(&mut self, reporting: bool) {
        self.reporting = reporting;
        self.touched.clear();
    }

    /// The sessions touched since the last call, each once, with their timeouts (a
    /// learner's PING answer carries both); those since closed are left out.
    pub fn take_touched(&mut self) -> Vec<(SessionId, i32)> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        touched
            .into_iter()
            .filter_map(|session_id| {
                let timeout_ms = self.timeout_ms(session_id)?;
                Some((session_id, i32::try_from(timeout_ms).unwrap_or(i32::MAX)))
            })
            .collect()
    }

    /// Forgets every session: the state they belonged to was replaced.
    pub fn clear(&mut self) {
        self.sessions.clear();
        self.buckets.clear();
        self.touched.clear();
    }

    /// Marks a session as closing: its closeSession is on its way, so no new request
    /// of it may be accepted.
    pub fn set_closing(&mut self, session_id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.closing = true;
        }
    }

    /// Forgets a session whose closeSession was applied.
    pub fn remove(&mut self, session_id: SessionId) {
        if let Some(session) = self.sessions.remove(&session_id) {
            if let Some(bucket) = self.buckets.get_mut(&session.expires_at_ms) {
                bucket.remove(&session_id);
                if bucket.is_empty() {
                    self.buckets.remove(&session.expires_at_ms);
                }
            }
        }
    }

    /// `Ok` for a live session, `SessionExpired` for an unknown or closing one.
    ///
    /// # Errors
    /// [`Code::SessionExpired`] as described.
    pub fn check(&self, session_id: SessionId) -> Result<(), Code> {
        match self.sessions.get(&session_id) {
            Some(session) if !session.closing => Ok(()),
            _ => Err(Code::SessionExpired),
        }
    }

    /// Whether the session is known (closing or not).
    pub fn contains(&self, session_id: SessionId) -> bool {
        self.sessions.contains_key(&session_id)
    }

    /// The negotiated timeout of a session.
    pub fn timeout_ms(&self, session_id: SessionId) -> Option<u64> {
        self.sessions.get(&session_id).map(|session| session.timeout_ms)
    }

    /// Takes the sessions whose expiry time has passed and marks them closing.
    pub fn expire(&mut self, now_ms: u64) -> Vec<SessionId> {
        self.expire_owned(now_ms, true)
    }

    /// Like [`SessionTracker::expire`], but global sessions are expired only when
    /// `global` (on the leader, which owns them); otherwise they merely leave the
    /// expiry buckets until their next touch, and only local sessions expire.
    pub fn expire_owned(&mut self, now_ms: u64, global: bool) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            for session_id in entry.remove() {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    if global || session.local {
                        session.closing = true;
                        expired.push(session_id);
                    }
                }
            }
        }
        expired
    }

    /// When the next bucket is due, if any.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every live session, sorted by expiry then id, for the `dump` four-letter word.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .sessions
            .iter()
            .map(|(session_id, session)| SessionInfo {
                session_id: *session_id,
                timeout_ms: session.timeout_ms,
                expires_at_ms: session.expires_at_ms,
                local: session.local,
            })
            .collect();
        all.sort_by_key(|info| (info.expires_at_ms, info.session_id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(raw: i64) -> SessionId {
        SessionId::new(raw)
    }

    #[test]
    fn touches_are_reported_once_each_while_reporting() {
        let mut tracker = SessionTracker::new(100, sid(1));
        tracker.add(sid(7), 1000, 0);
        tracker.add(sid(8), 1000, 0);
        assert!(tracker.touch(sid(7), 10));
        assert!(tracker.take_touched().is_empty());
        tracker.set_reporting(true);
        assert!(tracker.touch(sid(8), 20));
        assert!(tracker.touch(sid(7), 30));
        assert!(tracker.touch(sid(8), 40));
        assert!(!tracker.touch(sid(9), 40));
        assert_eq!(tracker.take_touched(), [(sid(7), 1000), (sid(8), 1000)]);
        assert!(tracker.take_touched().is_empty());
    }

    #[test]
    fn an_upgrading_session_stays_local_until_its_txn_is_applied() {
        let mut tracker = SessionTracker::new(100, sid(1));
        tracker.add_local(sid(8), 1000, 0);
        assert!(tracker.upgrade(sid(8)));
        assert!(!tracker.upgrade(sid(8)), "its createSession is already on its way");
        assert!(tracker.is_local(sid(8)));
        tracker.add(sid(8), 1000, 10);
        assert!(tracker.is_global(sid(8)), "the applied createSession makes it global");
        assert!(!tracker.upgrade(sid(8)));
        assert!(!tracker.is_global(sid(10)), "an unknown session is neither");

        // The leader was lost with the createSession: it dies with the local sessions.
        tracker.add_local(sid(9), 1000, 0);
        assert!(tracker.upgrade(sid(9)));
        tracker.remove_local();
        assert!(!tracker.contains(sid(9)));
        assert!(tracker.contains(sid(8)));
    }

    #[test]
    fn local_sessions_expire_everywhere_global_ones_only_where_owned() {
        let mut tracker = SessionTracker::new(100, sid(1));
        tracker.add(sid(7), 1000, 0);
        tracker.add_local(sid(8), 1000, 0);
        tracker.set_reporting(true);
        assert!(tracker.touch(sid(8), 10), "a local session is live");
        assert!(tracker.take_touched().is_empty(), "the leader does not hear of local ones");
        assert_eq!(tracker.expire_owned(5000, false), [sid(8)]);
        tracker.remove(sid(8));
        assert!(tracker.contains(sid(7)), "a follower does not expire global sessions");
        tracker.touch_all(5000);
        assert_eq!(tracker.expire_owned(7000, true), [sid(7)]);
    }

    #[test]
    fn touch_all_gives_every_session_its_whole_timeout() {
        let mut tracker = SessionTracker::new(100, sid(1));
        tracker.add(sid(7), 1000, 0);
        tracker.add(sid(8), 3000, 0);
        tracker.touch_all(5000);
        assert!(tracker.expire(5900).is_empty());
        assert_eq!(tracker.expire(6100), [sid(7)]);
        assert_eq!(tracker.expire(8100), [sid(8)]);
    }

    #[test]
    fn a_session_whose_close_was_lost_expires_under_a_new_leader() {
        let mut tracker = SessionTracker::new(100, sid(1));
        tracker.add(sid(7), 1000, 0);
        tracker.set_closing(sid(7));
        assert_eq!(tracker.expire_owned(2000, false), Vec::<SessionId>::new());
        tracker.touch_all(3000);
        assert!(tracker.check(sid(7)).is_ok(), "live again until it expires");
        assert_eq!(tracker.expire(4100), [sid(7)]);
    }

    #[test]
    fn expiry_is_rounded_to_the_next_tick() {
        let mut tracker = SessionTracker::new(2000, sid(100));
        tracker.add(sid(1), 4000, 500);
        assert_eq!(tracker.next_expiry_ms(), Some(6000));
        assert!(tracker.expire(5999).is_empty());
        assert_eq!(tracker.expire(6000), [sid(1)]);
        assert_eq!(
            tracker.check(sid(1)),
            Err(Code::SessionExpired),
            "an expired session is closing"
        );
        assert!(!tracker.touch(sid(1), 6000));
        tracker.remove(sid(1));
        assert!(!tracker.contains(sid(1)));
    }

    #[test]
    fn touch_postpones_expiry() {
        let mut tracker = SessionTracker::new(1000, sid(100));
        tracker.add(sid(1), 3000, 0);
        tracker.add(sid(2), 3000, 0);
        assert!(tracker.touch(sid(1), 2500));
        assert_eq!(tracker.expire(4000), [sid(2)]);
        assert_eq!(tracker.expire(6000), [sid(1)]);
        assert_eq!(tracker.next_expiry_ms(), None);
    }

    #[test]
    fn ids_increase() {
        let mut tracker = SessionTracker::new(1000, sid(0x100));
        assert_eq!(tracker.next_session_id(), sid(0x100));
        assert_eq!(tracker.next_session_id(), sid(0x101));
    }

    #[test]
    fn closing_sessions_fail_checks_but_are_listed() {
        let mut tracker = SessionTracker::new(1000, sid(0));
        tracker.add(sid(9), 2000, 0);
        assert_eq!(tracker.check(sid(9)), Ok(()));
        tracker.set_closing(sid(9));
        assert_eq!(tracker.check(sid(9)), Err(Code::SessionExpired));
        assert_eq!(tracker.sessions().len(), 1);
        assert_eq!(tracker.timeout_ms(sid(9)), Some(2000));
    }
}
