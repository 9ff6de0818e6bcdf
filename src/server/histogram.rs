//! Latency histograms for where a request's time goes, which ZooKeeper's metrics lack:
//! each stage of the write path and the reads, in fixed buckets an operator's Prometheus
//! can aggregate across members and over time. Recording is a few relaxed atomic adds,
//! so the request path takes no lock for them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, in microseconds (Prometheus' `le`); a last bucket holds
/// the rest.
pub const BOUNDS_US: [u64; 18] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A histogram of durations in microseconds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), the overflow last.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// What a [`Histogram`] holds at one moment, as Prometheus shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramReading {
    /// Cumulative counts at each bound of [`BOUNDS_US`]; `count` is the `+Inf` one.
    pub cumulative: Vec<u64>,
    /// Sum of every duration, in microseconds.
    pub sum_us: u64,
    /// Number of durations.
    pub count: u64,
}

impl Histogram {
    /// Adds one duration.
    pub fn record(&self, us: u64) {
        let bucket = BOUNDS_US.partition_point(|bound| *bound < us);
        if let Some(slot) = self.buckets.get(bucket) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The buckets now. Reads race with records, so the `+Inf` count is the sum of the
    /// buckets read, never less than a bucket below it.
    pub fn read(&self) -> HistogramReading {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(BOUNDS_US.len());
        for slot in &self.buckets[..BOUNDS_US.len()] {
            running += slot.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let overflow = self.buckets[BOUNDS_US.len()].load(Ordering::Relaxed);
        HistogramReading {
            cumulative,
            sum_us: self.sum_us.load(Ordering::Relaxed),
            count: running + overflow,
        }
    }
}

/// The stages a write passes through, each timed from the end of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStage {
    /// Received from the client until prepared as a txn (or forwarded to the leader):
    /// the connection's queue, the request throttle, the driver's queue.
    Queue,
    /// Prepared until durable in this member's log: waiting for the storage thread, the
    /// write and its sync.
    Log,
    /// Durable here until committed: a quorum's acknowledgements (nothing to wait for
    /// standalone).
    Quorum,
    /// On a follower or observer: forwarded until the leader's commit of it arrives.
    Leader,
    /// Committed until the reply is queued for the client: applying it, firing watches,
    /// waiting behind an earlier `sync` of the session.
    Apply,
    /// Received until the reply is queued: the whole write, as `updatelatency` in
    /// microseconds.
    Total,
}

impl WriteStage {
    /// Every stage, in the order a write passes them.
    pub const ALL: [WriteStage; 6] = [
        WriteStage::Queue,
        WriteStage::Log,
        WriteStage::Quorum,
        WriteStage::Leader,
        WriteStage::Apply,
        WriteStage::Total,
    ];

    /// The `stage` label.
    pub fn name(self) -> &'static str {
        match self {
            WriteStage::Queue => "queue",
            WriteStage::Log => "log",
            WriteStage::Quorum => "quorum",
            WriteStage::Leader => "leader",
            WriteStage::Apply => "apply",
            WriteStage::Total => "total",
        }
    }
}

/// A histogram per [`WriteStage`].
#[derive(Debug, Default)]
pub struct WriteStages {
    stages: [Histogram; WriteStage::ALL.len()],
}

impl WriteStages {
    /// The histogram of `stage`.
    pub fn stage(&self, stage: WriteStage) -> &Histogram {
        &self.stages[stage as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_first_bucket_whose_bound_holds_them() {
        let histogram = Histogram::default();
        for us in [0, 25, 26, 999, 1_000, 20_000_000] {
            histogram.record(us);
        }
        let reading = histogram.read();
        assert_eq!(reading.count, 6);
        assert_eq!(reading.sum_us, 25 + 26 + 999 + 1_000 + 20_000_000);
        // le=25µs: 0 and 25; le=50µs adds 26; le=1ms adds 999 and 1,000; the rest is +Inf.
        assert_eq!(reading.cumulative[0], 2);
        assert_eq!(reading.cumulative[1], 3);
        assert_eq!(reading.cumulative[5], 5);
        assert_eq!(*reading.cumulative.last().unwrap_or(&0), 5);
    }

    #[test]
    fn each_stage_has_its_own_histogram() {
        let stages = WriteStages::default();
        stages.stage(WriteStage::Log).record(300);
        assert_eq!(stages.stage(WriteStage::Log).read().count, 1);
        assert_eq!(stages.stage(WriteStage::Queue).read().count, 0);
        let names: Vec<_> = WriteStage::ALL.iter().map(|stage| stage.name()).collect();
        assert_eq!(names, ["queue", "log", "quorum", "leader", "apply", "total"]);
    }
}
