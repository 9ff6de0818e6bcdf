//! The live client connections: by id (watch delivery), by session (a reconnect closes
//! the old connection), and by IP (`maxClientCnxns`).

use std::future::{poll_fn, Future};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use crate::fast_hash::FastDashMap;
use bytes::Bytes;
use jute::records::Id;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::proto::reply;
use crate::server::outbox::Outbox;
use crate::server::stats::{ConnectionStats, ServerStats};
use crate::session::auth::check_acl;
use crate::session::AuthIds;
use crate::tree::acl::perms;
use crate::tree::{WatchEvent, WatcherId};
use crate::txn::SessionId;

/// A connection's id; also the id of its watches.
pub type ConnId = WatcherId;

/// What the server shares about one client connection.
#[derive(Debug)]
pub struct Connection {
    /// Unique for the server's lifetime.
    pub id: ConnId,
    /// The client's address.
    pub peer: SocketAddr,
    /// Frames to write to the client.
    pub outbox: Outbox,
    /// When the connection was accepted, milliseconds since the epoch.
    pub established_ms: u64,
    /// Whether it came in on the TLS-only `secureClientPort`, which ZooKeeper's
    /// AdminServer lists apart.
    pub on_secure_port: bool,
    session_id: AtomicI64,
    session_timeout_ms: AtomicI64,
    writes_submitted: AtomicU64,
    writes_completed: AtomicU64,
    /// The server-wide sums this connection adds to.
    load: Arc<Load>,
    close_requested: AtomicBool,
    /// Counters for `cons`.
    pub stats: Mutex<ConnectionStats>,
    /// Who the client has authenticated as; notifications are filtered by it.
    auth: RwLock<Arc<AuthIds>>,
}

impl Connection {
    /// The identities the client has authenticated as.
    pub fn auth(&self) -> Arc<AuthIds> {
        self.auth.read().clone()
    }

    /// Adds the identities an `addauth`, a client certificate or a SASL exchange
    /// granted, in order.
    pub fn add_auth(&self, ids: impl IntoIterator<Item = Id>) {
        let mut auth = self.auth.write();
        let mut updated = (**auth).clone();
        ids.into_iter().for_each(|id| updated.add(id));
        *auth = Arc::new(updated);
    }

    /// The session bound to this connection, [`SessionId::NONE`] before the handshake.
    pub fn session_id(&self) -> SessionId {
        SessionId::new(self.session_id.load(Ordering::Acquire))
    }

    /// Negotiated session timeout, 0 before the handshake.
    pub fn session_timeout_ms(&self) -> i64 {
        self.session_timeout_ms.load(Ordering::Relaxed)
    }

    /// Queues a frame for the client and counts it; false if the connection had closed.
    pub fn send(&self, frame: Bytes) -> bool {
        let queued = self.outbox.push(frame);
        if queued {
            self.stats.lock().sent += 1;
        }
        queued
    }

    /// Called by the pipeline after it queued the reply to one of this connection's
    /// writes, so reads waiting behind it may run.
    pub fn complete_write(&self) {
        self.writes_completed.fetch_add(1, Ordering::AcqRel);
        self.load.in_process.fetch_sub(1, Ordering::AcqRel);
        self.load.give_back(1);
        self.outbox.wake_task();
    }

    /// Writes completed so far.
    pub fn writes_completed(&self) -> u64 {
        self.writes_completed.load(Ordering::Acquire)
    }

    /// Counts a write handed to the driver (the handshake's session creation included),
    /// which holds its request-throttle permit until it completes.
    pub fn submit_write(&self, permit: WritePermit<'_>) {
        if let Some(permit) = permit.0 {
            permit.forget();
        }
        self.writes_submitted.fetch_add(1, Ordering::AcqRel);
        self.load.in_process.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a request read from the client, to be handed on or answered later (the
    /// connection's [`crate::server::request_queue::RequestQueue`] keeps the count).
    pub fn queue_request(&self) {
        self.load.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a queued request handed on, answered or dropped.
    pub fn dequeue_request(&self) {
        self.load.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Writes handed to the driver so far.
    pub fn writes_submitted(&self) -> u64 {
        self.writes_submitted.load(Ordering::Acquire)
    }

    /// Writes handed to the driver and not yet answered: ZooKeeper's "outstanding".
    pub fn writes_in_flight(&self) -> u64 {
        let completed = self.writes_completed();
        self.writes_submitted.load(Ordering::Acquire).saturating_sub(completed)
    }

    /// Waits until more than `seen` writes have completed. `seen` is read before the
    /// caller looks at what is in flight, so a write that completes in between is not
    /// missed.
    pub fn writes_completed_beyond(&self, seen: u64) -> impl Future<Output = ()> + '_ {
        self.wait_until(move |connection| connection.writes_completed() > seen)
    }

    /// Asks the connection to stop reading and close once its queued frames are out.
    pub fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        // Closing the outbox wakes the connection's task, which then sees the flag.
        self.outbox.close();
    }

    /// Whether a close was requested.
    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    /// Waits until a close is requested.
    pub fn closing(&self) -> impl Future<Output = ()> + '_ {
        self.wait_until(Connection::close_requested)
    }

    /// Waits until `done` holds, looked at again each time the connection's task is
    /// woken; the waker is registered before the look, so a wake in between is not lost.
    fn wait_until<'a>(
        &'a self,
        done: impl Fn(&Connection) -> bool + 'a,
    ) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            self.outbox.register_task(cx.waker());
            if done(self) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooManyConnections {
    /// Its IP address has `maxClientCnxns` connections.
    FromAddress,
    /// The server has `maxCnxns` connections.
    InAll,
}

/// How many client connections the server takes (0 = no limit).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From one IP address (`maxClientCnxns`).
    pub per_ip_max: u32,
    /// In all (`maxCnxns`).
    pub total_max: u32,
}

impl Drop for Connection {
    /// Takes the writes whose replies will never come (their member lost its role) out
    /// of the server-wide sums. Requests never handed on went with the connection's queue.
    fn drop(&mut self) {
        let in_flight = self.writes_in_flight();
        self.load.in_process.fetch_sub(in_flight, Ordering::AcqRel);
        self.load.give_back(in_flight);
    }
}

/// What all connections ask of the server at this moment, for admission control.
#[derive(Debug, Default)]
pub struct Load {
    /// Writes handed to the pipeline and not yet answered (ZooKeeper's "in process").
    in_process: AtomicU64,
    /// Requests read and waiting in their connection to be handed on or answered.
    queued: AtomicU64,
    /// The request throttle, if on: one permit per write that may be in process
    /// (`request_throttle_max_requests`), handed out first come, first served.
    permits: Option<Semaphore>,
}

/// A write's place among the writes in process, which [`Connection::submit_write`]
/// keeps until the write completes. Empty when the request throttle is off.
#[derive(Debug)]
pub struct WritePermit<'a>(Option<SemaphorePermit<'a>>);

impl Load {
    /// A load whose writes in process are limited to `max_requests` (0: no limit).
    pub fn new(max_requests: u64) -> Load {
        let permits = usize::try_from(max_requests)
            .ok()
            .filter(|max| *max > 0)
            .map(|max| Semaphore::new(max.min(Semaphore::MAX_PERMITS)));
        Load { permits, ..Load::default() }
    }

    /// A permit taken at once, if the throttle has one free (or is off).
    pub fn try_permit(&self) -> Option<WritePermit<'_>> {
        match &self.permits {
            None => Some(WritePermit(None)),
            Some(permits) => permits.try_acquire().ok().map(|permit| WritePermit(Some(permit))),
        }
    }

    /// Waits for a permit, behind every request that began waiting earlier.
    pub async fn permit(&self) -> WritePermit<'_> {
        match &self.permits {
            None => WritePermit(None),
            Some(permits) => match permits.acquire().await {
                Ok(permit) => WritePermit(Some(permit)),
                // The semaphore is never closed.
                Err(_) => WritePermit(None),
            },
        }
    }

    fn give_back(&self, count: u64) {
        if let Some(permits) = &self.permits {
            permits.add_permits(usize::try_from(count).unwrap_or(0));
        }
    }

    /// Writes handed to the pipeline and not yet answered.
    pub fn in_process(&self) -> u64 {
        self.in_process.load(Ordering::Acquire)
    }

    /// Requests read and waiting in their connection.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

/// What the connections from one address share.
#[derive(Debug)]
struct FromAddress {
    /// Connections open, for `maxClientCnxns`.
    open: u32,
    /// The identity every connection from the address starts with (`ip:<address>`):
    /// one copy, not one a connection (an `addauth` gives its connection a copy of its own).
    auth: Arc<AuthIds>,
}

/// All live connections.
#[derive(Debug, Default)]
pub struct Registry {
    connections: FastDashMap<ConnId, Arc<Connection>>,
    by_session: FastDashMap<SessionId, ConnId>,
    per_ip: FastDashMap<IpAddr, FromAddress>,
    open: AtomicU32,
    next_id: AtomicU64,
    load: Arc<Load>,
    /// Whether every ACL lets its connections through (`skipACL=yes`).
    acl_skipped: bool,
}

impl Registry {
    /// A registry whose connections' writes in process are limited to `max_requests`
    /// (`request_throttle_max_requests`; 0: no limit), and whose connections no ACL
    /// stops when `skip_acl`.
    pub fn new(max_requests: u64, skip_acl: bool) -> Registry {
        let load = Arc::new(Load::new(max_requests));
        Registry { load, acl_skipped: skip_acl, ..Registry::default() }
    }

    /// Registers a new connection, unless the server or `peer`'s IP is at its limit;
    /// `on_secure_port` says whether it came in on `secureClientPort`.
    ///
    /// # Errors
    /// [`TooManyConnections`] when over either limit.
    pub fn open(
        &self,
        peer: SocketAddr,
        on_secure_port: bool,
        limits: ConnectionLimits,
        now_ms: u64,
    ) -> Result<Arc<Connection>, TooManyConnections> {
        let reserved = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (limits.total_max == 0 || open < limits.total_max).then_some(open + 1)
        });
        if reserved.is_err() {
            return Err(TooManyConnections::InAll);
        }
        let auth = {
            let ip = peer.ip();
            let mut from = self.per_ip.entry(ip).or_insert_with(|| FromAddress {
                open: 0,
                auth: Arc::new(AuthIds::for_client(ip).skipping_acl(self.acl_skipped)),
            });
            if limits.per_ip_max != 0 && from.open >= limits.per_ip_max {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(TooManyConnections::FromAddress);
            }
            from.open += 1;
            from.auth.clone()
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = Arc::new(Connection {
            id,
            peer,
            outbox: Outbox::default(),
            established_ms: now_ms,
            on_secure_port,
            session_id: AtomicI64::new(0),
            session_timeout_ms: AtomicI64::new(0),
            writes_submitted: AtomicU64::new(0),
            writes_completed: AtomicU64::new(0),
            load: self.load.clone(),
            close_requested: AtomicBool::new(false),
            stats: Mutex::new(ConnectionStats::default()),
            auth: RwLock::new(auth),
        });
        self.connections.insert(id, connection.clone());
        Ok(connection)
    }

    /// Binds a session to a connection; a previous connection of the session is closed,
    /// as ZooKeeper closes it when the client reconnects elsewhere.
    pub fn bind_session(&self, connection: &Connection, session_id: SessionId, timeout_ms: i64) {
        connection.session_timeout_ms.store(timeout_ms, Ordering::Relaxed);
        connection.session_id.store(session_id.raw(), Ordering::Release);
        if let Some(previous) = self.by_session.insert(session_id, connection.id) {
            if previous != connection.id {
                if let Some(old) = self.get(previous) {
                    tracing::info!(
                        peer = %old.peer,
                        session_id = %session_id,
                        "closing the session's previous connection"
                    );
                    old.request_close();
                }
            }
        }
    }

    /// What all connections ask of the server at this moment.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// Forgets a closed connection.
    pub fn close(&self, connection: &Connection) {
        connection.outbox.close();
        if self.connections.remove(&connection.id).is_none() {
            return;
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        let session_id = connection.session_id();
        self.by_session.remove_if(&session_id, |_, id| *id == connection.id);
        let ip = connection.peer.ip();
        if let Some(mut from) = self.per_ip.get_mut(&ip) {
            from.open = from.open.saturating_sub(1);
        }
        self.per_ip.remove_if(&ip, |_, from| from.open == 0);
    }

    /// A connection by id.
    pub fn get(&self, id: ConnId) -> Option<Arc<Connection>> {
        self.connections.get(&id).map(|entry| entry.clone())
    }

    /// The connection currently serving a session.
    pub fn for_session(&self, session_id: SessionId) -> Option<Arc<Connection>> {
        let id = *self.by_session.get(&session_id)?;
        self.get(id)
    }

    /// Sends a watch notification to the connection that registered the watch, if it
    /// may read the node (ZooKeeper's fix for CVE-2024-23944); the watch is spent either way.
    pub fn deliver(&self, watcher: WatcherId, notification: &WatchEvent, stats: &ServerStats) {
        if let Some(connection) = self.get(watcher) {
            if check_acl(&notification.acl, perms::READ, &connection.auth()).is_ok() {
                let frame = reply::notification(notification);
                stats.notified(frame.len());
                connection.send(frame);
            }
        }
    }

    /// Every live connection, ordered by id.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<_> = self.connections.iter().map(|entry| entry.value().clone()).collect();
        all.sort_by_key(|connection| connection.id);
        all
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether no connection is live.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const UNLIMITED: ConnectionLimits = ConnectionLimits { per_ip_max: 0, total_max: 0 };

    #[test]
    fn per_ip_limit() {
        let registry = Registry::default();
        let limits = ConnectionLimits { per_ip_max: 2, total_max: 0 };
        let first = registry.open(peer(1), false, limits, 0).expect("first");
        registry.open(peer(2), false, limits, 0).expect("second");
        assert_eq!(
            registry.open(peer(3), false, limits, 0).err(),
            Some(TooManyConnections::FromAddress)
        );
        registry.close(&first);
        registry.open(peer(4), false, limits, 0).expect("room again");
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn connections_from_one_address_share_its_identity_until_one_adds_its_own() {
        let registry = Registry::default();
        let first = registry.open(peer(1), false, UNLIMITED, 0).expect("first");
        let second = registry.open(peer(2), false, UNLIMITED, 0).expect("second");
        let elsewhere = registry.open(SocketAddr::from(([127, 0, 0, 2], 1)), false, UNLIMITED, 0);
        let elsewhere = elsewhere.expect("another address");
        assert!(Arc::ptr_eq(&first.auth(), &second.auth()), "one copy for the address");
        assert_eq!(elsewhere.auth().ids()[0].id, "127.0.0.2");
        first.add_auth([Id { scheme: "digest".into(), id: "alice:hash".into() }]);
        assert_eq!(first.auth().ids().len(), 2);
        assert_eq!(second.auth().ids().len(), 1, "the other connection keeps only ip");
        assert_eq!(second.auth().ids()[0].id, "127.0.0.1");
    }

    #[test]
    fn issue_13_max_cnxns_limits_connections_in_all() {
        let registry = Registry::default();
        let limits = ConnectionLimits { per_ip_max: 0, total_max: 2 };
        let first = registry.open(peer(1), false, limits, 0).expect("first");
        let other_address = SocketAddr::from(([127, 0, 0, 2], 1));
        registry.open(other_address, false, limits, 0).expect("second");
        assert_eq!(registry.open(peer(3), false, limits, 0).err(), Some(TooManyConnections::InAll));
        let per_ip = ConnectionLimits { per_ip_max: 1, total_max: 3 };
        assert_eq!(
            registry.open(peer(4), false, per_ip, 0).err(),
            Some(TooManyConnections::FromAddress)
        );
        registry.close(&first);
        registry
            .open(peer(5), false, limits, 0)
            .expect("room again: the refusals released their places");
    }

    #[test]
    fn rebinding_a_session_closes_the_old_connection() {
        let registry = Registry::default();
        let old = registry.open(peer(1), false, UNLIMITED, 0).expect("open");
        let new = registry.open(peer(2), false, UNLIMITED, 0).expect("open");
        registry.bind_session(&old, SessionId::new(7), 4000);
        registry.bind_session(&new, SessionId::new(7), 4000);
        assert!(old.close_requested());
        assert_eq!(registry.for_session(SessionId::new(7)).map(|c| c.id), Some(new.id));
        registry.close(&old);
        assert_eq!(
            registry.for_session(SessionId::new(7)).map(|c| c.id),
            Some(new.id),
            "closing the old one keeps the binding"
        );
    }

    /// Spawns `waiting`, checks that it waits, runs `wake` and checks that it ends.
    async fn woken_by(
        waiting: impl Future<Output = ()> + Send + 'static,
        wake: impl FnOnce(),
        what: &str,
    ) {
        let waiter = tokio::spawn(waiting);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "done before {what}");
        wake();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await;
        ended.unwrap_or_else(|_| panic!("not woken by {what}")).expect("waiter");
    }

    #[tokio::test]
    async fn a_waiting_connection_task_is_woken_by_a_close_and_by_a_completed_write() {
        let registry = Registry::default();
        let connection = registry.open(peer(1), false, UNLIMITED, 0).expect("open");
        connection.submit_write(WritePermit(None));
        let waiting = connection.clone();
        let written = async move { waiting.writes_completed_beyond(0).await };
        woken_by(written, || connection.complete_write(), "a completed write").await;
        let waiting = connection.clone();
        let closing = async move { waiting.closing().await };
        woken_by(closing, || connection.request_close(), "a close").await;
        assert!(connection.outbox.is_closed());
    }
}
