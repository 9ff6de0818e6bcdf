//! Min/avg/max summaries of measurements, as ZooKeeper's metrics keep them: the server's
//! statistics (`server::stats`) and the tree's watch fan-out (`tree::watch`) record into
//! them, and `mntr` and `/metrics` show them.

use std::sync::atomic::{AtomicU64, Ordering};

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

    /// This summary and `other` as one, as if every value of both was recorded here.
    pub fn merged(self, other: Summary) -> Summary {
        let min = match (self.count, other.count) {
            (0, _) => other.min,
            (_, 0) => self.min,
            _ => self.min.min(other.min),
        };
        Summary {
            min,
            max: self.max.max(other.max),
            total: self.total + other.total,
            count: self.count + other.count,
        }
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

/// A [`Summary`] that threads record into without a lock (the request path records
/// every request's latency); [`AtomicSummary::read`] gives its value. A reading taken
/// while others record may be a value or two behind in one field.
#[derive(Debug)]
pub struct AtomicSummary {
    /// `u64::MAX` before any value.
    min: AtomicU64,
    max: AtomicU64,
    total: AtomicU64,
    count: AtomicU64,
}

impl Default for AtomicSummary {
    fn default() -> AtomicSummary {
        AtomicSummary {
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            total: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl AtomicSummary {
    /// Adds one measurement.
    pub fn record(&self, value: u64) {
        // A compare-and-swap only when the value is a new extreme: most are not.
        if value < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(value, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
        self.total.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `times` measurements of one `value`.
    pub fn record_many(&self, value: u64, times: u64) {
        if times == 0 {
            return;
        }
        self.record(value);
        self.total.fetch_add(value.saturating_mul(times - 1), Ordering::Relaxed);
        self.count.fetch_add(times - 1, Ordering::Relaxed);
    }

    /// The summary so far.
    pub fn read(&self) -> Summary {
        let count = self.count.load(Ordering::Relaxed);
        let min = self.min.load(Ordering::Relaxed);
        Summary {
            min: if count == 0 || min == u64::MAX { 0 } else { min },
            max: self.max.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            count,
        }
    }

    /// Forgets every value, as `srst` does.
    pub fn reset(&self) {
        self.min.store(u64::MAX, Ordering::Relaxed);
        for value in [&self.max, &self.total, &self.count] {
            value.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_avg_max_as_zookeeper_prints_them() {
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
    fn merged_summaries_are_one_over_every_value() {
        let (mut one, mut other) = (Summary::default(), Summary::default());
        [3, 7].into_iter().for_each(|value| one.record(value));
        assert_eq!(one.merged(other), one);
        assert_eq!(other.merged(one), one);
        [1, 2].into_iter().for_each(|value| other.record(value));
        let merged = one.merged(other);
        assert_eq!((merged.min, merged.max, merged.total, merged.count), (1, 7, 13, 4));
    }

    #[test]
    fn a_reset_summary_reads_as_one_never_recorded() {
        let summary = AtomicSummary::default();
        summary.record(5);
        assert_eq!(summary.read().count, 1);
        summary.reset();
        assert_eq!(summary.read(), Summary::default());
    }
}
