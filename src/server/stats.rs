//! Counters the four-letter words report, server-wide and per connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use jute::OpCode;

use crate::server::histogram::{Histogram, WriteStages};
use crate::server::storage_writer::Synced;
use crate::summary::{AtomicSummary, Summary};
use crate::zab::ServerId;

/// The four-letter name ZooKeeper's `cons` shows for an operation (`lop=`).
pub fn short_op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::Reconfig => "RECO",
        OpCode::SetAcl => "SETA",
        OpCode::CloseSession => "CLOS",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::Auth | OpCode::Sasl | OpCode::Notification | OpCode::Error => "NA",
    }
}

/// Values a latency summary keeps for its percentiles (ZooKeeper's reservoir holds 1028).
const LATENCY_SAMPLES: usize = 1024;

/// An [`AtomicSummary`] with the latest values kept for percentiles, as ZooKeeper's
/// `AvgMinMaxPercentileCounter` keeps `readlatency` and `updatelatency`; recorded into
/// without a lock.
#[derive(Debug)]
pub struct AtomicLatency {
    summary: AtomicSummary,
    /// A ring of the latest values; `recorded` counts every value ever put in it.
    recent: Box<[AtomicU64]>,
    recorded: AtomicU64,
}

impl Default for AtomicLatency {
    fn default() -> AtomicLatency {
        AtomicLatency {
            summary: AtomicSummary::default(),
            recent: (0..LATENCY_SAMPLES).map(|_| AtomicU64::new(0)).collect(),
            recorded: AtomicU64::new(0),
        }
    }
}

impl AtomicLatency {
    /// Adds one measurement.
    pub fn record(&self, value: u64) {
        self.summary.record(value);
        let slot = self.recorded.fetch_add(1, Ordering::Relaxed) as usize % LATENCY_SAMPLES;
        self.recent[slot].store(value, Ordering::Relaxed);
    }

    /// Adds `times` measurements of one `value`, as `times` calls of [`Self::record`] would.
    pub fn record_many(&self, value: u64, times: u64) {
        if times == 0 {
            return;
        }
        self.summary.record_many(value, times);
        let first = self.recorded.fetch_add(times, Ordering::Relaxed);
        for index in first..first + times.min(LATENCY_SAMPLES as u64) {
            self.recent[index as usize % LATENCY_SAMPLES].store(value, Ordering::Relaxed);
        }
    }

    /// The summary and the latest values so far.
    pub fn read(&self) -> LatencySummary {
        let recorded = self.recorded.load(Ordering::Relaxed) as usize;
        let kept = recorded.min(LATENCY_SAMPLES);
        let recent = (recorded - kept..recorded)
            .map(|index| self.recent[index % LATENCY_SAMPLES].load(Ordering::Relaxed))
            .collect();
        LatencySummary { summary: self.summary.read(), recent }
    }

    fn reset(&self) {
        self.summary.reset();
        self.recorded.store(0, Ordering::Relaxed);
    }
}

/// What an [`AtomicLatency`] read: a [`Summary`] with percentiles over the latest values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySummary {
    /// Over every value.
    pub summary: Summary,
    /// The latest values, oldest first.
    recent: Vec<u64>,
}

impl LatencySummary {
    /// The value at `quantile` of the latest values, as the Dropwizard snapshot
    /// ZooKeeper uses computes it (interpolating, then truncated), 0 before any.
    pub fn percentile(&self, quantile: f64) -> u64 {
        let mut values = self.recent.clone();
        values.sort_unstable();
        let position = quantile * (values.len() + 1) as f64;
        let index = position as usize;
        match values.as_slice() {
            [] => 0,
            [first, ..] if index < 1 => *first,
            [.., last] if index >= values.len() => *last,
            _ => {
                let (lower, upper) = (values[index - 1] as f64, values[index] as f64);
                (lower + position.fract() * (upper - lower)) as u64
            }
        }
    }
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Frames received from clients (four-letter words included).
    pub packets_received: AtomicU64,
    /// Frames sent to clients.
    pub packets_sent: AtomicU64,
    /// Request latencies, in milliseconds.
    pub latency: AtomicSummary,
    /// Latencies of the requests without a txn (reads, pings, `sync`s), in milliseconds
    /// (`readlatency`).
    pub read_latency: AtomicLatency,
    /// Latencies of writes, in milliseconds (`updatelatency`).
    pub update_latency: AtomicLatency,
    /// Failed authentications.
    pub auth_failed: AtomicU64,
    /// TLS handshakes with clients that failed (`unsuccessful_handshake`).
    pub unsuccessful_handshakes: AtomicU64,
    /// TLS handshakes in progress while `outstandingHandshake.limit` is set
    /// (`outstanding_tls_handshake`).
    pub outstanding_tls_handshakes: AtomicU64,
    /// Connections closed for arriving past that limit (`tls_handshake_exceeded`).
    pub tls_handshakes_exceeded: AtomicU64,
    /// Connections closed for sending no complete handshake in time, as ZooKeeper's
    /// default connection factory expires them (`sessionless_connections_expired`).
    pub sessionless_expired: AtomicU64,
    /// Handshakes the connection throttle refused (`connection_rejected`).
    pub connection_rejected: AtomicU64,
    /// Handshakes the connection throttle let through (`connection_request_count`).
    pub connection_requests: AtomicU64,
    /// The throttle's token deficit after each handshake let through
    /// (`connection_token_deficit`).
    pub connection_token_deficit: AtomicSummary,
    /// Requests answered THROTTLEDOP after waiting too long (`throttled_ops`).
    pub throttled_ops: AtomicU64,
    /// Requests dropped with their connection while they waited at the request throttle
    /// (`stale_requests_dropped`).
    pub stale_requests_dropped: AtomicU64,
    /// Times a request was held at the request throttle (`request_throttle_wait_count`).
    pub request_throttle_wait_count: AtomicU64,
    /// Connections closed for a large request past the budget (`large_requests_rejected`).
    pub large_requests_rejected: AtomicU64,
    /// Writes refused past a quota's hard limit, by the top-level path component
    /// written to (`quota_exceeded_error_per_namespace`).
    pub quota_exceeded: Mutex<BTreeMap<String, u64>>,
    /// Sizes of the responses sent to clients (`client_response_stats`).
    pub response_sizes: ResponseSizes,
    /// Milliseconds each batch of log writes took to write and sync (`fsynctime`).
    pub fsync_time: AtomicSummary,
    /// Log syncs slower than `fsync.warningthresholdms` (`fsync_threshold_exceed_count`).
    pub fsync_threshold_exceeded: AtomicU64,
    /// Where writes spend their time, stage by stage (zkrs's own, in microseconds).
    pub write_stages: WriteStages,
    /// Reads from receipt to reply (zkrs's own, in microseconds).
    pub reads: Histogram,
    /// Each batch of log writes, written and synced: the part of a write's `log` stage
    /// spent on the disk rather than waiting for it (zkrs's own, in microseconds).
    pub log_syncs: Histogram,
    /// Milliseconds each periodic snapshot took (`snapshottime`).
    pub snapshot_time: AtomicSummary,
    /// Milliseconds loading the state took at start (`dbinittime`).
    pub db_init_time: AtomicSummary,
    /// Milliseconds loading the snapshot took at start, none found included
    /// (`startup_snap_load_time`).
    pub startup_snap_load_time: AtomicSummary,
    /// Txns read from the log after the snapshot at start (`startup_txns_loaded`), and
    /// the milliseconds that took (`startup_txns_load_time`); nothing when there were none.
    pub startup_txns_loaded: AtomicSummary,
    /// See `startup_txns_loaded`.
    pub startup_txns_load_time: AtomicSummary,
    /// Txns in each group commit of the log (`sync_processor_batch_size`).
    pub sync_batch_size: AtomicSummary,
    /// Bytes of the frames received from clients, their length prefixes included
    /// (`bytes_received_count`).
    pub bytes_received: AtomicU64,
    /// Bytes of the replies sent to clients, without their length prefixes
    /// (`response_bytes`).
    pub response_bytes: AtomicU64,
    /// Bytes of the watch notifications sent to clients, without their length prefixes
    /// (`watch_bytes`).
    pub watch_bytes: AtomicU64,
    /// Sessions expired by their timeouts, local ones included (`stale_sessions_expired`).
    pub sessions_expired: AtomicU64,
    /// Connections the client closed while the server had not chosen to
    /// (`connection_drop_count`).
    pub connection_drops: AtomicU64,
    /// ZooKeeper's quorum metrics, which a standalone server leaves at zero.
    pub quorum: QuorumStats,
    /// ZooKeeper's metrics of its request processors.
    pub processors: ProcessorStats,
}

/// What ZooKeeper's `ServerMetrics` measures in its request processors (preparing a
/// txn, logging it, applying it), under its names, taken where zkrs's pipeline does the
/// same work. Times are in milliseconds.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Requests a leader or standalone server took in to prepare: its clients' writes,
    /// `sync`s and handshakes, and those its learners forwarded; reads do not pass
    /// through it (`prep_processor_request_queued`).
    pub prep_queued: AtomicU64,
    /// On a leader or standalone server, client inputs waiting for the pipeline each
    /// time it takes them (`prep_processor_queue_size`).
    pub prep_queue_size: AtomicSummary,
    /// On a leader or standalone server, from a client write's arrival until it was
    /// prepared (`prep_processor_queue_time_ms`).
    pub prep_queue_time: AtomicLatency,
    /// Preparing a client's write as a txn (`prep_process_time`), and a closeSession
    /// among them (`close_session_prep_time`).
    pub prep_time: AtomicSummary,
    /// See `prep_time`.
    pub close_session_prep_time: AtomicLatency,
    /// Change records preparing made (`outstanding_changes_queued`) and dropped once
    /// their txn applied (`outstanding_changes_removed`); see
    /// [`crate::prepare::ChangeCounts`].
    pub outstanding_changes_queued: AtomicU64,
    /// See `outstanding_changes_queued`.
    pub outstanding_changes_removed: AtomicU64,
    /// Each txn, from its hand-over until the storage thread began writing it
    /// (`sync_processor_queue_time_ms`).
    pub sync_queue_time: AtomicLatency,
    /// Each group of writes, written and synced (`sync_processor_queue_flush_time_ms`).
    pub sync_flush_time: AtomicLatency,
    /// Each txn, from its hand-over to the storage thread until durable in the log
    /// (`sync_processor_queue_and_flush_time_ms`).
    pub sync_queue_and_flush_time: AtomicLatency,
    /// Each txn, from its time (the leader's wall clock) until applied here; skipped if
    /// that is ahead (`propagation_latency`).
    pub propagation_latency: AtomicLatency,
    /// On an ensemble member, each txn from committed until applied and its client, if
    /// here, answered (`write_final_proc_time_ms`).
    pub write_final_time: AtomicLatency,
    /// On a leader, sessions its learners' clients resumed there (`revalidate_count`).
    pub revalidations: AtomicU64,
    /// Clients that resumed a session on this member (`connection_revalidate_count`).
    pub connection_revalidations: AtomicU64,
    /// Answers left for a client whose connection had closed (`stale_replies`).
    pub stale_replies: AtomicU64,
    /// Txns after which this learner's tree digest was not the one its leader's
    /// proposal carried (`digest_mismatches_count`).
    pub digest_mismatches: AtomicU64,
}

impl ProcessorStats {
    fn reset(&self) {
        for counter in [
            &self.prep_queued,
            &self.outstanding_changes_queued,
            &self.outstanding_changes_removed,
            &self.revalidations,
            &self.connection_revalidations,
            &self.stale_replies,
            &self.digest_mismatches,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for summary in [&self.prep_queue_size, &self.prep_time] {
            summary.reset();
        }
        for latency in [
            &self.prep_queue_time,
            &self.close_session_prep_time,
            &self.sync_queue_time,
            &self.sync_flush_time,
            &self.sync_queue_and_flush_time,
            &self.propagation_latency,
            &self.write_final_time,
        ] {
            latency.reset();
        }
    }
}

/// What ZooKeeper's `ServerMetrics` counts about elections, syncs and the broadcast,
/// under its names. Times are in milliseconds.
#[derive(Debug, Default)]
pub struct QuorumStats {
    /// Elections begun (`looking_count`).
    pub looking: AtomicU64,
    /// From looking until the election settled (`election_time`).
    pub election_time: AtomicSummary,
    /// From the election settling until in sync with the leader, as a follower
    /// (`follower_sync_time`) and an observer (`observer_sync_time`).
    pub follower_sync_time: AtomicSummary,
    /// See `follower_sync_time`.
    pub observer_sync_time: AtomicSummary,
    /// From looking until serving again (`unavailable_time`), and the same when the
    /// member then leads (`leader_unavailable_time`).
    pub unavailable_time: AtomicSummary,
    /// See `unavailable_time`.
    pub leader_unavailable_time: AtomicSummary,
    /// Learners a leader synced by a snapshot (`snap_count`) and by a diff (`diff_count`).
    pub snaps: AtomicU64,
    /// See `snaps`.
    pub diffs: AtomicU64,
    /// A leader's learners syncing by a snapshot (`inflight_snap_count`) and by a diff
    /// (`inflight_diff_count`), sampled as ZooKeeper's learner handlers sample them:
    /// when a sync begins (counting itself) and when one ends with the learner's
    /// acknowledgement of NEWLEADER.
    pub inflight_snaps: AtomicSummary,
    /// See `inflight_snaps`.
    pub inflight_diffs: AtomicSummary,
    /// Txns a leader proposed (`proposal_count`) and committed (`commit_count`).
    pub proposals: AtomicU64,
    /// See `proposals`.
    pub commits: AtomicU64,
    /// On a leader, from a write's arrival until a quorum acknowledged it
    /// (`quorum_ack_latency`).
    pub quorum_ack_latency: AtomicLatency,
    /// Proposals (`learner_proposal_received_count`) and txns committed by the leader's
    /// commits (`learner_commit_received_count`) a learner received.
    pub learner_proposals: AtomicU64,
    /// See `learner_proposals`.
    pub learner_commits: AtomicU64,
    /// On a learner, from the leader's txn time until the proposal arrived
    /// (`proposal_latency`), and from its arrival until it was committed here
    /// (`commit_propagation_latency`).
    pub proposal_latency: AtomicLatency,
    /// See `proposal_latency`.
    pub commit_propagation_latency: AtomicLatency,
    /// On a leader, from a sampled proposal's txn time until each voter (this one too)
    /// acknowledged it before its commit, by the voter's id (`ack_latency`). ZooKeeper
    /// samples the zxids that are multiples of `zookeeper.leader.ackLoggingFrequency`
    /// ([`ACK_SAMPLING`]).
    pub ack_latency: Mutex<BTreeMap<ServerId, AtomicLatency>>,
    /// On a voter, from a proposal's txn time until this member's log held it and its
    /// acknowledgement was made (`proposal_ack_creation_latency`).
    pub proposal_ack_creation_latency: AtomicLatency,
}

impl QuorumStats {
    fn reset(&self) {
        for counter in [
            &self.looking,
            &self.snaps,
            &self.diffs,
            &self.proposals,
            &self.commits,
            &self.learner_proposals,
            &self.learner_commits,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for summary in [
            &self.election_time,
            &self.follower_sync_time,
            &self.observer_sync_time,
            &self.unavailable_time,
            &self.leader_unavailable_time,
            &self.inflight_snaps,
            &self.inflight_diffs,
        ] {
            summary.reset();
        }
        for latency in [
            &self.quorum_ack_latency,
            &self.proposal_latency,
            &self.commit_propagation_latency,
            &self.proposal_ack_creation_latency,
        ] {
            latency.reset();
        }
        self.ack_latency.lock().values().for_each(AtomicLatency::reset);
    }
}

/// ZooKeeper's default `zookeeper.leader.ackLoggingFrequency`: `ack_latency` samples the
/// zxids divisible by it.
pub const ACK_SAMPLING: i64 = 1000;

/// A frame's size without its 4-byte length prefix: the size ZooKeeper counts for a
/// reply or a notification.
fn body_len(frame_len: usize) -> u64 {
    frame_len.saturating_sub(4) as u64
}

/// The last, smallest and largest response (without its length prefix), -1 before any:
/// ZooKeeper's `BufferStats`.
#[derive(Debug)]
pub struct ResponseSizes {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for ResponseSizes {
    fn default() -> ResponseSizes {
        ResponseSizes { last: AtomicI64::new(-1), min: AtomicI64::new(-1), max: AtomicI64::new(-1) }
    }
}

impl ResponseSizes {
    /// Records a response of `frame_len` bytes, its 4-byte length prefix included.
    pub fn record(&self, frame_len: usize) {
        let size = i64::try_from(body_len(frame_len)).unwrap_or(i64::MAX);
        self.last.store(size, Ordering::Relaxed);
        let _ = self.min.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |min| {
            (min == -1 || size < min).then_some(size)
        });
        self.max.fetch_max(size, Ordering::Relaxed);
    }

    /// The last, smallest and largest size.
    pub fn read(&self) -> (i64, i64, i64) {
        (
            self.last.load(Ordering::Relaxed),
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        )
    }

    fn reset(&self) {
        for value in [&self.last, &self.min, &self.max] {
            value.store(-1, Ordering::Relaxed);
        }
    }
}

impl ServerStats {
    /// A reply of `op` to request `xid`, carrying `zxid`, left for its client at `now_us`
    /// (the server's clock) for a request that arrived at `received_us`: counts it here
    /// and in the connection's `connection` stats, and returns its latency in
    /// milliseconds, as ZooKeeper counts it (the caller adds it to `readlatency` or
    /// `updatelatency`).
    pub fn answered(
        &self,
        connection: &Mutex<ConnectionStats>,
        op: OpCode,
        xid: i32,
        zxid: i64,
        received_us: u64,
        now_us: u64,
    ) -> u64 {
        let now_ms = now_us / 1000;
        let latency_ms = now_ms.saturating_sub(received_us / 1000);
        self.packets_sent.fetch_add(1, Ordering::Relaxed);
        self.latency.record(latency_ms);
        let mut stats = connection.lock();
        stats.last_op = short_op_name(op);
        stats.last_cxid = i64::from(xid);
        stats.last_zxid = zxid;
        stats.last_response_ms = now_ms;
        stats.last_latency_ms = latency_ms;
        stats.latency.record(latency_ms);
        latency_ms
    }

    /// A reply of `frame_len` bytes, its length prefix included, left for a client.
    pub fn responded(&self, frame_len: usize) {
        self.response_sizes.record(frame_len);
        self.response_bytes.fetch_add(body_len(frame_len), Ordering::Relaxed);
    }

    /// The storage thread wrote and synced a group of batches.
    pub fn synced(&self, synced: &Synced<'_>) {
        let Synced { took, slow, appended, waited } = *synced;
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        self.fsync_time.record(took_ms);
        self.log_syncs.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        if slow {
            self.fsync_threshold_exceeded.fetch_add(1, Ordering::Relaxed);
        }
        if appended == 0 {
            return;
        }
        let processors = &self.processors;
        self.sync_batch_size.record(appended as u64);
        processors.sync_flush_time.record(took_ms);
        for &(entries, waited) in waited {
            let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            let entries = entries as u64;
            processors.sync_queue_time.record_many(waited_ms, entries);
            let durable_ms = waited_ms.saturating_add(took_ms);
            processors.sync_queue_and_flush_time.record_many(durable_ms, entries);
        }
    }

    /// A watch notification of `frame_len` bytes, its length prefix included, left for a
    /// client.
    pub fn notified(&self, frame_len: usize) {
        self.watch_bytes.fetch_add(body_len(frame_len), Ordering::Relaxed);
    }

    /// What `srst` resets, as ZooKeeper's `ServerStats.reset`: the packet counters, the
    /// request latency and the response sizes; with `metrics_too`, also every counter
    /// and summary of ZooKeeper's `ServerMetrics`, which its default metrics provider
    /// resets and its Prometheus provider leaves alone (a Prometheus counter only
    /// grows). `auth_failed_count`, `fsync_threshold_exceed_count` and zkrs's own
    /// histograms stay, as they do in ZooKeeper.
    pub fn reset(&self, metrics_too: bool) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency.reset();
        self.response_sizes.reset();
        if !metrics_too {
            return;
        }
        for counter in [
            &self.connection_rejected,
            &self.connection_requests,
            &self.throttled_ops,
            &self.stale_requests_dropped,
            &self.request_throttle_wait_count,
            &self.large_requests_rejected,
            &self.bytes_received,
            &self.response_bytes,
            &self.watch_bytes,
            &self.sessions_expired,
            &self.connection_drops,
            &self.unsuccessful_handshakes,
            &self.tls_handshakes_exceeded,
            &self.sessionless_expired,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for summary in [
            &self.connection_token_deficit,
            &self.fsync_time,
            &self.snapshot_time,
            &self.db_init_time,
            &self.startup_snap_load_time,
            &self.startup_txns_loaded,
            &self.startup_txns_load_time,
            &self.sync_batch_size,
        ] {
            summary.reset();
        }
        self.read_latency.reset();
        self.update_latency.reset();
        self.quota_exceeded.lock().values_mut().for_each(|refused| *refused = 0);
        self.quorum.reset();
        self.processors.reset();
    }
}

/// Per-connection counters for `cons`.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats {
    /// Frames received.
    pub received: u64,
    /// Frames sent.
    pub sent: u64,
    /// Short name of the last operation (`GETD`, `PING`, ...).
    pub last_op: &'static str,
    /// xid of the last request answered.
    pub last_cxid: i64,
    /// zxid in the last reply.
    pub last_zxid: i64,
    /// When the last reply was sent, on the server's monotonic clock.
    pub last_response_ms: u64,
    /// Summary of the last request.
    pub last_latency_ms: u64,
    /// Latencies of this connection's requests.
    pub latency: Summary,
}

impl ConnectionStats {
    /// The mean latency in whole milliseconds, as ZooKeeper's `cons` shows it.
    pub fn average_latency_ms(&self) -> u64 {
        self.latency.total.checked_div(self.latency.count).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recorded() -> ServerStats {
        let stats = ServerStats::default();
        stats.packets_received.store(3, Ordering::Relaxed);
        stats.latency.record(2);
        stats.responded(20);
        stats.notified(30);
        stats.bytes_received.store(40, Ordering::Relaxed);
        stats.auth_failed.store(1, Ordering::Relaxed);
        stats.fsync_time.record(1);
        stats.update_latency.record(4);
        stats.quorum.commits.store(5, Ordering::Relaxed);
        stats.quorum.ack_latency.lock().entry(2).or_default().record(6);
        stats.quota_exceeded.lock().insert("app".into(), 7);
        stats.processors.propagation_latency.record(8);
        stats
    }

    #[test]
    fn a_synced_group_times_each_of_its_txns_as_zookeepers_sync_processor_does() {
        let stats = ServerStats::default();
        let ms = Duration::from_millis;
        let waited = [(2, ms(3)), (1, ms(0))];
        stats.synced(&Synced { took: ms(2), slow: false, appended: 3, waited: &waited });
        stats.synced(&Synced { took: ms(4), slow: true, appended: 0, waited: &[(0, ms(1))] });
        let processors = &stats.processors;
        assert_eq!(stats.sync_batch_size.read().total, 3, "sync_processor_request_queued");
        let queued = processors.sync_queue_time.read().summary;
        assert_eq!((queued.count, queued.total), (3, 6));
        let durable = processors.sync_queue_and_flush_time.read().summary;
        assert_eq!((durable.count, durable.total, durable.max), (3, 12, 5));
        let sizes = stats.sync_batch_size.read();
        assert_eq!((sizes.count, sizes.total), (1, 3));
        assert_eq!(processors.sync_flush_time.read().summary.count, 1, "groups that logged");
        assert_eq!(stats.fsync_time.read().count, 2, "every group");
        assert_eq!(stats.fsync_threshold_exceeded.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn srst_resets_zookeepers_server_stats_and_with_its_default_provider_its_metrics() {
        let stats = recorded();
        // The Prometheus provider resets none of ZooKeeper's ServerMetrics.
        stats.reset(false);
        assert_eq!(stats.packets_received.load(Ordering::Relaxed), 0);
        assert_eq!(stats.latency.read().count, 0);
        assert_eq!(stats.response_sizes.read(), (-1, -1, -1));
        assert_eq!(stats.response_bytes.load(Ordering::Relaxed), 16);
        assert_eq!(stats.watch_bytes.load(Ordering::Relaxed), 26);
        assert_eq!(stats.fsync_time.read().count, 1);
        assert_eq!(stats.update_latency.read().summary.count, 1);
        // The default provider resets them all, keeping the keys of a set.
        let stats = recorded();
        stats.reset(true);
        for counter in [&stats.response_bytes, &stats.watch_bytes, &stats.bytes_received] {
            assert_eq!(counter.load(Ordering::Relaxed), 0);
        }
        assert_eq!(stats.fsync_time.read().count, 0);
        assert_eq!(stats.update_latency.read().summary.count, 0);
        assert_eq!(stats.quorum.commits.load(Ordering::Relaxed), 0);
        assert_eq!(stats.quorum.ack_latency.lock()[&2].read().summary.count, 0);
        assert_eq!(stats.quota_exceeded.lock()["app"], 0);
        assert_eq!(stats.processors.propagation_latency.read().summary.count, 0);
        // ZooKeeper's auth failures are neither.
        assert_eq!(stats.auth_failed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_value_recorded_many_times_reads_as_recorded_one_at_a_time() {
        let (many, one_by_one) = (AtomicLatency::default(), AtomicLatency::default());
        for (value, times) in [(3, 2), (9, 0), (1, 1500), (7, 4)] {
            many.record_many(value, times);
            (0..times).for_each(|_| one_by_one.record(value));
        }
        assert_eq!(many.read(), one_by_one.read());
        assert_eq!(many.read().summary.count, 1506);
    }

    #[test]
    fn percentiles_interpolate_over_the_latest_values_as_dropwizard_does() {
        let latency = AtomicLatency::default();
        assert_eq!(latency.read().percentile(0.5), 0);
        [1, 4, 6].into_iter().for_each(|value| latency.record(value));
        // ZooKeeper 3.8 printed p50 4, p95 6, p99 6, p999 6 for these three updates.
        let read = latency.read();
        let printed: Vec<u64> =
            [0.5, 0.95, 0.99, 0.999].map(|quantile| read.percentile(quantile)).to_vec();
        assert_eq!(printed, [4, 6, 6, 6]);
        for value in 0..5000 {
            latency.record(value);
        }
        let read = latency.read();
        assert_eq!((read.summary.count, read.summary.min, read.summary.max), (5003, 0, 4999));
        assert_eq!(read.recent.len(), 1024);
        assert_eq!(read.recent.first(), Some(&(5000 - 1024)), "only the latest values count");
        assert_eq!(read.percentile(0.0), 5000 - 1024);
        latency.reset();
        assert_eq!(latency.read(), LatencySummary::default());
    }

    #[test]
    fn summaries_recorded_from_many_threads_lose_nothing() {
        let summary = AtomicSummary::default();
        assert_eq!(summary.read(), Summary::default());
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let summary = &summary;
                scope.spawn(move || (1..=1000).for_each(|value| summary.record(value + thread)));
            }
        });
        let read = summary.read();
        assert_eq!((read.count, read.min, read.max), (4000, 1, 1003));
        assert_eq!(read.total, 4 * 500_500 + 1000 * (1 + 2 + 3));
    }
}
