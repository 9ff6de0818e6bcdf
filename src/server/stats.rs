//! Counters the four-letter words report, server-wide and per connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use jute::OpCode;

use crate::server::histogram::{Histogram, WriteStages};
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

/// Min/avg/max of a measurement, as ZooKeeper's `ServerStats` keeps request latencies
/// (in milliseconds) and its metrics keep summaries (the connection token deficit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Smallest value seen (0 before any).
    pub min: u64,
    /// Largest value seen.
    pub max: u64,
    /// Sum of all values.
    pub total: u64,
    /// Number of values.
    pub count: u64,
}

impl Summary {
    /// Adds one measurement.
    pub fn record(&mut self, value: u64) {
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        self.max = self.max.max(value);
        self.total += value;
        self.count += 1;
    }

    /// The average rounded to 4 decimal places, half up, as ZooKeeper's
    /// `AvgMinMaxCounter.getAvg` gives it; 0 before any measurement.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.total as f64 / self.count as f64 * 10_000.0).round() / 10_000.0
        }
    }
}

/// Values a latency summary keeps for its percentiles (ZooKeeper's reservoir holds 1028).
const LATENCY_SAMPLES: usize = 1024;

/// A [`Summary`] with percentiles over the latest values, as ZooKeeper's
/// `AvgMinMaxPercentileCounter` keeps `readlatency` and `updatelatency`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySummary {
    /// Over every value.
    pub summary: Summary,
    /// The latest values, oldest first.
    recent: std::collections::VecDeque<u64>,
}

impl LatencySummary {
    /// Adds one measurement.
    pub fn record(&mut self, value: u64) {
        self.summary.record(value);
        if self.recent.len() == LATENCY_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
    }

    /// The value at `quantile` of the latest values, as the Dropwizard snapshot
    /// ZooKeeper uses computes it (interpolating, then truncated), 0 before any.
    pub fn percentile(&self, quantile: f64) -> u64 {
        let mut values: Vec<u64> = self.recent.iter().copied().collect();
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
    pub latency: Mutex<Summary>,
    /// Latencies of reads, in milliseconds (`readlatency`).
    pub read_latency: Mutex<LatencySummary>,
    /// Latencies of writes, in milliseconds (`updatelatency`).
    pub update_latency: Mutex<LatencySummary>,
    /// Failed authentications.
    pub auth_failed: AtomicU64,
    /// Handshakes the connection throttle refused (`connection_rejected`).
    pub connection_rejected: AtomicU64,
    /// Handshakes the connection throttle let through (`connection_request_count`).
    pub connection_requests: AtomicU64,
    /// The throttle's token deficit after each handshake let through
    /// (`connection_token_deficit`).
    pub connection_token_deficit: Mutex<Summary>,
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
    pub fsync_time: Mutex<Summary>,
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
    pub snapshot_time: Mutex<Summary>,
    /// Milliseconds loading the state took at start (`dbinittime`).
    pub db_init_time: Mutex<Summary>,
    /// ZooKeeper's quorum metrics, which a standalone server leaves at zero.
    pub quorum: QuorumStats,
}

/// What ZooKeeper's `ServerMetrics` counts about elections, syncs and the broadcast,
/// under its names. Times are in milliseconds.
#[derive(Debug, Default)]
pub struct QuorumStats {
    /// Elections begun (`looking_count`).
    pub looking: AtomicU64,
    /// From looking until the election settled (`election_time`).
    pub election_time: Mutex<Summary>,
    /// From the election settling until in sync with the leader, as a follower
    /// (`follower_sync_time`) and an observer (`observer_sync_time`).
    pub follower_sync_time: Mutex<Summary>,
    /// See `follower_sync_time`.
    pub observer_sync_time: Mutex<Summary>,
    /// From looking until serving again (`unavailable_time`), and the same when the
    /// member then leads (`leader_unavailable_time`).
    pub unavailable_time: Mutex<Summary>,
    /// See `unavailable_time`.
    pub leader_unavailable_time: Mutex<Summary>,
    /// Learners a leader synced by a snapshot (`snap_count`) and by a diff (`diff_count`).
    pub snaps: AtomicU64,
    /// See `snaps`.
    pub diffs: AtomicU64,
    /// Txns a leader proposed (`proposal_count`) and committed (`commit_count`).
    pub proposals: AtomicU64,
    /// See `proposals`.
    pub commits: AtomicU64,
    /// On a leader, from a write's arrival until a quorum acknowledged it
    /// (`quorum_ack_latency`).
    pub quorum_ack_latency: Mutex<LatencySummary>,
    /// Proposals (`learner_proposal_received_count`) and commits
    /// (`learner_commit_received_count`) a learner received.
    pub learner_proposals: AtomicU64,
    /// See `learner_proposals`.
    pub learner_commits: AtomicU64,
    /// On a learner, from the leader's txn time until the proposal arrived
    /// (`proposal_latency`), and from its arrival until it was committed here
    /// (`commit_propagation_latency`).
    pub proposal_latency: Mutex<LatencySummary>,
    /// See `proposal_latency`.
    pub commit_propagation_latency: Mutex<LatencySummary>,
    /// On a leader, from a sampled proposal's txn time until each voter (this one too)
    /// acknowledged it before its commit, by the voter's id (`ack_latency`). ZooKeeper
    /// samples the zxids that are multiples of `zookeeper.leader.ackLoggingFrequency`
    /// ([`ACK_SAMPLING`]).
    pub ack_latency: Mutex<BTreeMap<ServerId, LatencySummary>>,
    /// On a voter, from a proposal's txn time until this member's log held it and its
    /// acknowledgement was made (`proposal_ack_creation_latency`).
    pub proposal_ack_creation_latency: Mutex<LatencySummary>,
}

/// ZooKeeper's default `zookeeper.leader.ackLoggingFrequency`: `ack_latency` samples the
/// zxids divisible by it.
pub const ACK_SAMPLING: i64 = 1000;

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
        let size = i64::try_from(frame_len.saturating_sub(4)).unwrap_or(i64::MAX);
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
    /// `srst`: resets the latencies, packet counters and response sizes.
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        *self.latency.lock() = Summary::default();
        *self.read_latency.lock() = LatencySummary::default();
        *self.update_latency.lock() = LatencySummary::default();
        self.response_sizes.reset();
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

    #[test]
    fn latency_min_avg_max() {
        let mut latency = Summary::default();
        assert_eq!(latency.average(), 0.0);
        latency.record(4);
        latency.record(2);
        latency.record(9);
        assert_eq!((latency.min, latency.max, latency.count), (2, 9, 3));
        assert_eq!(latency.average(), 5.0);
        latency.record(0);
        latency.record(0);
        assert_eq!(latency.average(), 3.0);
        latency.record(0);
        // 15 / 6 = 2.5; 11 / 3 = 3.6666... prints as ZooKeeper's 3.6667.
        let mut thirds = Summary::default();
        [1, 4, 6].into_iter().for_each(|value| thirds.record(value));
        assert_eq!(format!("{:?}", thirds.average()), "3.6667");
    }

    #[test]
    fn percentiles_interpolate_over_the_latest_values_as_dropwizard_does() {
        let mut latency = LatencySummary::default();
        assert_eq!(latency.percentile(0.5), 0);
        [1, 4, 6].into_iter().for_each(|value| latency.record(value));
        // ZooKeeper 3.8 printed p50 4, p95 6, p99 6, p999 6 for these three updates.
        let printed: Vec<u64> =
            [0.5, 0.95, 0.99, 0.999].map(|quantile| latency.percentile(quantile)).to_vec();
        assert_eq!(printed, [4, 6, 6, 6]);
        for value in 0..5000 {
            latency.record(value);
        }
        assert_eq!(latency.summary.count, 5003);
        assert!(latency.percentile(0.0) >= 5000 - 1024, "only the latest values count");
    }
}
