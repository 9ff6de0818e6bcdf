//! The server's metrics under ZooKeeper's names, collected once for both ways ZooKeeper
//! shows them: the `mntr` four-letter word (`zk_<name>\t<value>` lines, a summary as its
//! `avg_`, `min_`, `max_`, `cnt_` and `sum_` lines, a metric of a set (per namespace,
//! per member) as `zk_<key>_<name>`) and the Prometheus text format that ZooKeeper's
//! `PrometheusMetricsProvider` serves (a summary as `<name>_count` and `<name>_sum`, a
//! metric of a set labelled `key="<key>"`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::server::histogram::{HistogramReading, WriteStage, BOUNDS_US};
use crate::server::stats::{AtomicLatency, LatencySummary};
use crate::server::Shared;
use crate::summary::{AtomicSummary, Summary};
use crate::tree::{quota, EventType};

/// One metric's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Text (`version`, `server_state`): `mntr` only.
    Text(String),
    /// A value that goes up and down; floats print as Java prints doubles.
    Gauge(f64),
    /// A count that only grows.
    Counter(u64),
    /// A distribution.
    Summary(Summary),
    /// A distribution with percentiles over its latest values.
    Latency(LatencySummary),
    /// zkrs's own latency histogram in microseconds, shown in seconds, with the label
    /// that tells its series apart (`stage="log"`): Prometheus only.
    Histogram(Option<(&'static str, &'static str)>, HistogramReading),
    /// A running total of a fractional quantity (CPU seconds): a counter, Prometheus only.
    Total(f64),
}

/// The percentiles `mntr` shows of a latency, as ZooKeeper names them.
const MNTR_PERCENTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)];

/// The quantiles ZooKeeper's Prometheus summaries carry.
const PROMETHEUS_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A metric by ZooKeeper's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The name, without `mntr`'s `zk_`.
    pub name: &'static str,
    /// Which one of a set this is: the namespace of a per-namespace metric, the member
    /// of a per-member one (ZooKeeper's gauge and summary sets).
    pub key: Option<String>,
    /// The value.
    pub reading: Reading,
}

fn metric(name: &'static str, reading: Reading) -> Metric {
    Metric { name, key: None, reading }
}

fn count(value: usize) -> Reading {
    Reading::Gauge(value as f64)
}

fn counter(value: &std::sync::atomic::AtomicU64) -> Reading {
    Reading::Counter(value.load(Ordering::Relaxed))
}

fn summary(value: &AtomicSummary) -> Reading {
    Reading::Summary(value.read())
}

fn latency(value: &AtomicLatency) -> Reading {
    Reading::Latency(value.read())
}

/// Every metric, in the order `mntr` shows them.
pub fn collect(shared: &Shared) -> Vec<Metric> {
    let stats = &shared.stats;
    let latency = stats.latency.read();
    let tree = shared.database.tree();
    let watch_count = shared.database.data_watches().summary().watches
        + shared.database.child_watches().summary().watches;
    let open_fds = open_files();
    let outstanding_tls = stats.outstanding_tls_handshakes.load(Ordering::Relaxed);
    let mut metrics = vec![metric("version", Reading::Text(super::four_letter::VERSION.into()))];
    let mode = *shared.mode.lock();
    metrics.push(metric("server_state", Reading::Text(mode.name().into())));
    if let Some(peer_state) = mode.peer_state() {
        metrics.push(metric("peer_state", Reading::Text(peer_state.into())));
    }
    if let Some(status) = shared.leader_status.lock().clone() {
        metrics.push(metric("learners", count(status.learners)));
        metrics.push(metric("synced_followers", count(status.synced_followers)));
        metrics.push(metric("synced_non_voting_followers", count(0)));
        metrics.push(metric("synced_observers", count(status.synced_observers)));
        metrics.push(metric("pending_syncs", count(status.pending_syncs)));
    }
    let sessions = shared.sessions.lock().sessions();
    let local = sessions.iter().filter(|session| session.local).count();
    let drop_chance = shared.connection_throttle.lock().drop_chance();
    let in_process = super::four_letter::outstanding(shared);
    let (last_size, min_size, max_size) = stats.response_sizes.read();
    metrics.extend([
        metric("ephemerals_count", count(tree.ephemeral_count())),
        metric("num_alive_connections", count(shared.registry.len())),
        metric("avg_latency", Reading::Gauge(latency.average())),
        metric("outstanding_requests", Reading::Gauge(in_process as f64)),
        metric("znode_count", count(super::four_letter::zookeeper_node_count(shared))),
        metric("global_sessions", count(sessions.len() - local)),
        metric("local_sessions", count(local)),
        metric("packets_sent", counter(&stats.packets_sent)),
        metric("packets_received", counter(&stats.packets_received)),
        metric("watch_count", count(watch_count)),
        metric("auth_failed_count", counter(&stats.auth_failed)),
        metric("unsuccessful_handshake", counter(&stats.unsuccessful_handshakes)),
        metric("outstanding_tls_handshake", Reading::Gauge(outstanding_tls as f64)),
        metric("tls_handshake_exceeded", counter(&stats.tls_handshakes_exceeded)),
        metric("sessionless_connections_expired", counter(&stats.sessionless_expired)),
        metric("min_latency", Reading::Gauge(latency.min as f64)),
        metric("max_latency", Reading::Gauge(latency.max as f64)),
        metric("approximate_data_size", Reading::Gauge(tree.approximate_data_size() as f64)),
        metric("open_file_descriptor_count", count(open_fds)),
        metric("max_file_descriptor_count", Reading::Gauge(max_open_files())),
        metric("uptime", Reading::Gauge(shared.clock.now_ms() as f64)),
        metric("connection_drop_probability", Reading::Gauge(drop_chance)),
        metric("connection_rejected", counter(&stats.connection_rejected)),
        metric("connection_request_count", counter(&stats.connection_requests)),
        metric("connection_token_deficit", Reading::Summary(stats.connection_token_deficit.read())),
        metric("throttled_ops", counter(&stats.throttled_ops)),
        metric("stale_requests_dropped", counter(&stats.stale_requests_dropped)),
        metric("request_throttle_wait_count", counter(&stats.request_throttle_wait_count)),
        metric("large_requests_rejected", counter(&stats.large_requests_rejected)),
        metric("last_client_response_size", Reading::Gauge(last_size as f64)),
        metric("max_client_response_size", Reading::Gauge(max_size as f64)),
        metric("min_client_response_size", Reading::Gauge(min_size as f64)),
        metric("fsynctime", Reading::Summary(stats.fsync_time.read())),
        metric("readlatency", Reading::Latency(stats.read_latency.read())),
        metric("updatelatency", Reading::Latency(stats.update_latency.read())),
        metric("snapshottime", Reading::Summary(stats.snapshot_time.read())),
        metric("dbinittime", Reading::Summary(stats.db_init_time.read())),
        metric("startup_snap_load_time", Reading::Summary(stats.startup_snap_load_time.read())),
        metric("startup_txns_loaded", Reading::Summary(stats.startup_txns_loaded.read())),
        metric("startup_txns_load_time", Reading::Summary(stats.startup_txns_load_time.read())),
        metric("sync_processor_batch_size", Reading::Summary(stats.sync_batch_size.read())),
        metric("bytes_received_count", counter(&stats.bytes_received)),
        metric("response_bytes", counter(&stats.response_bytes)),
        metric("watch_bytes", counter(&stats.watch_bytes)),
        metric("stale_sessions_expired", counter(&stats.sessions_expired)),
        metric("connection_drop_count", counter(&stats.connection_drops)),
    ]);
    watch_fan_out(shared, &mut metrics);
    quorum_metrics(shared, &mut metrics);
    processor_metrics(shared, &mut metrics);
    quota_metrics(shared, &mut metrics);
    namespace_traffic(shared, &mut metrics);
    for stage in WriteStage::ALL {
        let reading = stats.write_stages.stage(stage).read();
        let label = Some(("stage", stage.name()));
        metrics.push(metric("zkrs_write_stage_seconds", Reading::Histogram(label, reading)));
    }
    metrics.push(metric("zkrs_read_seconds", Reading::Histogram(None, stats.reads.read())));
    let log_syncs = Reading::Histogram(None, stats.log_syncs.read());
    metrics.push(metric("zkrs_log_sync_seconds", log_syncs));
    metrics
}

/// How many watchers each trigger fired, by event type, over the data and the child
/// watches together, as ZooKeeper's two watch managers record into one summary each.
fn watch_fan_out(shared: &Shared, metrics: &mut Vec<Metric>) {
    let (data, child) = (shared.database.data_watches(), shared.database.child_watches());
    for (name, event) in [
        ("node_created_watch_count", EventType::NodeCreated),
        ("node_deleted_watch_count", EventType::NodeDeleted),
        ("node_changed_watch_count", EventType::NodeDataChanged),
        ("node_children_watch_count", EventType::NodeChildrenChanged),
    ] {
        let fired = data.fan_out().read(event).merged(child.fan_out().read(event));
        metrics.push(metric(name, Reading::Summary(fired)));
    }
}

/// The files this process has open, as ZooKeeper reports `open_file_descriptor_count`.
pub fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0)
}

/// The most files this process may have open (its soft `RLIMIT_NOFILE`, which start-up
/// raised to the hard one), as ZooKeeper reports `max_file_descriptor_count`; -1 for
/// no limit.
pub fn max_open_files() -> f64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.map_or(-1.0, |files| files as f64)
}

/// `srst` and the AdminServer's `stat_reset`: what ZooKeeper resets (see
/// [`crate::server::stats::ServerStats::reset`]), the watch fan-out among the metrics
/// that only its default metrics provider resets.
pub fn reset(shared: &Shared) {
    let metrics_too = shared.config.prometheus_address.is_none();
    shared.stats.reset(metrics_too);
    if metrics_too {
        shared.database.data_watches().fan_out().reset();
        shared.database.child_watches().fan_out().reset();
        shared.database.traffic().reset();
    }
}

/// ZooKeeper's metrics of its request processors, taken at zkrs's stages that do their
/// work (see [`crate::server::stats::ProcessorStats`]). The storage thread takes every
/// txn waiting as one group, so the sync processor's queue sizes are the group commits'
/// sizes, and the txns it took their sum.
fn processor_metrics(shared: &Shared, metrics: &mut Vec<Metric>) {
    let processors = &shared.stats.processors;
    let logged = shared.stats.sync_batch_size.read();
    metrics.extend([
        metric("prep_processor_request_queued", counter(&processors.prep_queued)),
        metric("prep_processor_queue_size", summary(&processors.prep_queue_size)),
        metric("prep_processor_queue_time_ms", latency(&processors.prep_queue_time)),
        metric("prep_process_time", summary(&processors.prep_time)),
        metric("close_session_prep_time", latency(&processors.close_session_prep_time)),
        metric("outstanding_changes_queued", counter(&processors.outstanding_changes_queued)),
        metric("outstanding_changes_removed", counter(&processors.outstanding_changes_removed)),
        metric("sync_processor_request_queued", Reading::Counter(logged.total)),
        metric("sync_processor_queue_size", Reading::Summary(logged)),
        metric("sync_processor_queue_time_ms", latency(&processors.sync_queue_time)),
        metric("sync_processor_queue_flush_time_ms", latency(&processors.sync_flush_time)),
        metric(
            "sync_processor_queue_and_flush_time_ms",
            latency(&processors.sync_queue_and_flush_time),
        ),
        metric("propagation_latency", latency(&processors.propagation_latency)),
        metric("write_final_proc_time_ms", latency(&processors.write_final_time)),
        metric("revalidate_count", counter(&processors.revalidations)),
        metric("connection_revalidate_count", counter(&processors.connection_revalidations)),
        metric("stale_replies", counter(&processors.stale_replies)),
        metric("digest_mismatches_count", counter(&processors.digest_mismatches)),
    ]);
}

/// ZooKeeper's metrics of elections, syncs and the broadcast, which it shows on every
/// server (zero on a standalone one).
fn quorum_metrics(shared: &Shared, metrics: &mut Vec<Metric>) {
    let quorum = &shared.stats.quorum;
    metrics.extend([
        metric("looking_count", counter(&quorum.looking)),
        metric("election_time", summary(&quorum.election_time)),
        metric("follower_sync_time", summary(&quorum.follower_sync_time)),
        metric("observer_sync_time", summary(&quorum.observer_sync_time)),
        metric("unavailable_time", summary(&quorum.unavailable_time)),
        metric("leader_unavailable_time", summary(&quorum.leader_unavailable_time)),
        metric("snap_count", counter(&quorum.snaps)),
        metric("diff_count", counter(&quorum.diffs)),
        metric("inflight_snap_count", summary(&quorum.inflight_snaps)),
        metric("inflight_diff_count", summary(&quorum.inflight_diffs)),
        metric("proposal_count", counter(&quorum.proposals)),
        metric("commit_count", counter(&quorum.commits)),
        metric("quorum_ack_latency", latency(&quorum.quorum_ack_latency)),
        metric("learner_proposal_received_count", counter(&quorum.learner_proposals)),
        metric("learner_commit_received_count", counter(&quorum.learner_commits)),
        metric("proposal_latency", latency(&quorum.proposal_latency)),
        metric("commit_propagation_latency", latency(&quorum.commit_propagation_latency)),
        metric("proposal_ack_creation_latency", latency(&quorum.proposal_ack_creation_latency)),
    ]);
    for (voter, latency) in quorum.ack_latency.lock().iter() {
        let reading = Reading::Latency(latency.read());
        metrics.push(Metric { name: "ack_latency", key: Some(voter.to_string()), reading });
    }
}

/// ZooKeeper's per-namespace quota metrics: for each top-level path component under
/// which quotas are set, the sum of their limits (the hard limit where one is set, else
/// the soft one, -1 for none, as ZooKeeper adds them) and of their usage, and how many
/// writes there the hard limits refused.
fn quota_metrics(shared: &Shared, metrics: &mut Vec<Metric>) {
    let mut sums: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
    for (quota_path, limits, usage) in shared.database.tree().quotas() {
        let Some(namespace) = quota::namespace(&quota_path) else {
            continue;
        };
        let mut add = |name: &'static str, value: i64| {
            *sums.entry((name, namespace.to_owned())).or_default() += value;
        };
        if let Some(limits) = limits {
            add("quota_count_limit_per_namespace", limits.count_limit().map_or(-1, |l| l.value));
            add("quota_bytes_limit_per_namespace", limits.byte_limit().map_or(-1, |l| l.value));
        }
        if let Some(usage) = usage {
            add("quota_count_usage_per_namespace", usage.usage().count);
            add("quota_bytes_usage_per_namespace", usage.usage().bytes);
        }
    }
    for ((name, namespace), value) in sums {
        let reading = Reading::Gauge(value as f64);
        metrics.push(Metric { name, key: Some(namespace), reading });
    }
    for (namespace, refused) in shared.stats.quota_exceeded.lock().iter() {
        let reading = Reading::Counter(*refused);
        let name = "quota_exceeded_error_per_namespace";
        metrics.push(Metric { name, key: Some(namespace.clone()), reading });
    }
}

/// ZooKeeper's `read_per_namespace` and `write_per_namespace`: the bytes of each read
/// answered and each write applied, by top-level path component.
fn namespace_traffic(shared: &Shared, metrics: &mut Vec<Metric>) {
    let traffic = shared.database.traffic();
    for (name, tallies) in
        [("read_per_namespace", traffic.reads()), ("write_per_namespace", traffic.writes())]
    {
        for (namespace, summary) in tallies {
            let reading = Reading::Summary(summary);
            metrics.push(Metric { name, key: Some(namespace), reading });
        }
    }
}

/// One value of ZooKeeper's monitor output (`mntr` lines, the AdminServer's `monitor`).
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A double, printed as Java prints one.
    Double(f64),
}

impl std::fmt::Display for MonitorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorValue::Text(text) => f.write_str(text),
            MonitorValue::Integer(value) => write!(f, "{value}"),
            MonitorValue::Double(value) => write!(f, "{value:?}"),
        }
    }
}

impl From<MonitorValue> for serde_json::Value {
    fn from(value: MonitorValue) -> serde_json::Value {
        match value {
            MonitorValue::Text(text) => serde_json::Value::String(text),
            MonitorValue::Integer(value) => value.into(),
            MonitorValue::Double(value) => value.into(),
        }
    }
}

fn whole(value: u64) -> MonitorValue {
    MonitorValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The metrics as ZooKeeper's monitor output names them, in order: a summary as its
/// `avg_`, `min_`, `max_`, `cnt_` and `sum_` entries (a latency with its `p50_`..`p999_`
/// too), a metric of a set as `<key>_<name>`. Gauges are whole numbers but
/// for the averages and probabilities ZooKeeper reports as doubles.
pub fn monitor_entries(metrics: &[Metric]) -> Vec<(String, MonitorValue)> {
    let mut entries = Vec::with_capacity(metrics.len() + 16);
    for metric in metrics {
        let name = match &metric.key {
            Some(key) => format!("{key}_{}", metric.name),
            None => metric.name.to_owned(),
        };
        match &metric.reading {
            Reading::Text(text) => entries.push((name, MonitorValue::Text(text.clone()))),
            Reading::Gauge(value) => {
                let double = matches!(metric.name, "avg_latency" | "connection_drop_probability");
                let value = if !double && value.fract() == 0.0 && value.abs() < 1e15 {
                    MonitorValue::Integer(*value as i64)
                } else {
                    MonitorValue::Double(*value)
                };
                entries.push((name, value));
            }
            Reading::Counter(value) => entries.push((name, whole(*value))),
            Reading::Summary(summary) => summary_entries(&name, summary, &mut entries),
            Reading::Latency(latency) => {
                summary_entries(&name, &latency.summary, &mut entries);
                for (label, quantile) in MNTR_PERCENTILES {
                    let value = whole(latency.percentile(quantile));
                    entries.push((format!("{label}_{name}"), value));
                }
            }
            Reading::Histogram(..) | Reading::Total(_) => {}
        }
    }
    entries
}

fn summary_entries(name: &str, summary: &Summary, entries: &mut Vec<(String, MonitorValue)>) {
    entries.push((format!("avg_{name}"), MonitorValue::Double(summary.average())));
    entries.push((format!("min_{name}"), whole(summary.min)));
    entries.push((format!("max_{name}"), whole(summary.max)));
    entries.push((format!("cnt_{name}"), whole(summary.count)));
    entries.push((format!("sum_{name}"), whole(summary.total)));
}

/// The metrics as `mntr` lines.
pub fn mntr(metrics: &[Metric], out: &mut String) {
    for (name, value) in monitor_entries(metrics) {
        let _ = writeln!(out, "zk_{name}\t{value}");
    }
}

/// The metrics in the Prometheus text format (version 0.0.4), one `# TYPE` line per
/// name.
pub fn prometheus(metrics: &[Metric], out: &mut String) {
    let mut typed = std::collections::BTreeSet::new();
    for metric in metrics {
        let name = metric.name;
        let kind = match metric.reading {
            Reading::Text(_) => continue,
            Reading::Gauge(_) => "gauge",
            Reading::Counter(_) | Reading::Total(_) => "counter",
            Reading::Summary(_) | Reading::Latency(_) => "summary",
            Reading::Histogram(..) => "histogram",
        };
        if typed.insert(name) {
            let _ = writeln!(out, "# TYPE {name} {kind}");
        }
        let key = metric.key.as_ref().map(|key| format!("key=\"{}\"", escape_label(key)));
        let labels = key.as_ref().map(|key| format!("{{{key}}}")).unwrap_or_default();
        let _ = match &metric.reading {
            Reading::Text(_) => Ok(()),
            Reading::Gauge(value) | Reading::Total(value) => {
                writeln!(out, "{name}{labels} {value:?}")
            }
            Reading::Counter(value) => writeln!(out, "{name}{labels} {value}"),
            Reading::Summary(summary) => writeln!(
                out,
                "{name}_count{labels} {}\n{name}_sum{labels} {}",
                summary.count, summary.total
            ),
            Reading::Latency(latency) => {
                let key = key.map(|key| format!("{key},")).unwrap_or_default();
                for quantile in PROMETHEUS_QUANTILES {
                    let value = latency.percentile(quantile);
                    let _ = writeln!(out, "{name}{{{key}quantile=\"{quantile}\"}} {value}");
                }
                let summary = &latency.summary;
                writeln!(
                    out,
                    "{name}_count{labels} {}\n{name}_sum{labels} {}",
                    summary.count, summary.total
                )
            }
            Reading::Histogram(label, histogram) => write_histogram(name, *label, histogram, out),
        };
    }
}

/// A histogram's `_bucket` lines (`le` in seconds), then its `_sum` and `_count`.
fn write_histogram(
    name: &str,
    label: Option<(&str, &str)>,
    histogram: &HistogramReading,
    out: &mut String,
) -> std::fmt::Result {
    let own = label.map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)));
    let with_le = |le: &str| match &own {
        Some(own) => format!("{{{own},le=\"{le}\"}}"),
        None => format!("{{le=\"{le}\"}}"),
    };
    for (bound_us, count) in BOUNDS_US.iter().zip(&histogram.cumulative) {
        writeln!(out, "{name}_bucket{} {count}", with_le(&seconds(*bound_us)))?;
    }
    writeln!(out, "{name}_bucket{} {}", with_le("+Inf"), histogram.count)?;
    let labels = own.map(|own| format!("{{{own}}}")).unwrap_or_default();
    let sum_seconds = histogram.sum_us as f64 / 1e6;
    writeln!(out, "{name}_sum{labels} {sum_seconds:?}\n{name}_count{labels} {}", histogram.count)
}

/// Microseconds as a decimal number of seconds, without trailing zeros (`0.0025`, `1`).
fn seconds(us: u64) -> String {
    let text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A label value with the Prometheus text format's escapes.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Metric> {
        let mut deficit = Summary::default();
        deficit.record(2);
        deficit.record(4);
        vec![
            metric("version", Reading::Text("3.8.4-zkrs".into())),
            metric("znode_count", Reading::Gauge(5.0)),
            metric("avg_latency", Reading::Gauge(0.0)),
            metric("packets_sent", Reading::Counter(7)),
            metric("connection_token_deficit", Reading::Summary(deficit)),
            Metric {
                name: "quota_count_limit_per_namespace",
                key: Some("app".into()),
                reading: Reading::Gauge(3.0),
            },
        ]
    }

    #[test]
    fn mntr_prints_zookeepers_lines() {
        let mut out = String::new();
        mntr(&sample(), &mut out);
        assert_eq!(
            out,
            "zk_version\t3.8.4-zkrs\nzk_znode_count\t5\nzk_avg_latency\t0.0\nzk_packets_sent\t7\n\
             zk_avg_connection_token_deficit\t3.0\nzk_min_connection_token_deficit\t2\n\
             zk_max_connection_token_deficit\t4\nzk_cnt_connection_token_deficit\t2\n\
             zk_sum_connection_token_deficit\t6\nzk_app_quota_count_limit_per_namespace\t3\n"
        );
    }

    #[test]
    fn prometheus_types_each_name_once_and_labels_namespaces() {
        let mut out = String::new();
        prometheus(&sample(), &mut out);
        assert_eq!(
            out,
            "# TYPE znode_count gauge\nznode_count 5.0\n# TYPE avg_latency gauge\n\
             avg_latency 0.0\n# TYPE packets_sent counter\npackets_sent 7\n\
             # TYPE connection_token_deficit summary\nconnection_token_deficit_count 2\n\
             connection_token_deficit_sum 6\n# TYPE quota_count_limit_per_namespace gauge\n\
             quota_count_limit_per_namespace{key=\"app\"} 3.0\n"
        );
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }

    #[test]
    fn a_latency_of_a_set_carries_its_key_as_zookeeper_shows_it() {
        let latency = AtomicLatency::default();
        latency.record(3);
        let latency = latency.read();
        let metrics = vec![Metric {
            name: "ack_latency",
            key: Some("2".into()),
            reading: Reading::Latency(latency),
        }];
        let mut monitor = String::new();
        mntr(&metrics, &mut monitor);
        assert!(monitor.starts_with("zk_avg_2_ack_latency\t3.0\nzk_min_2_ack_latency\t3\n"));
        assert!(monitor.ends_with("zk_p99_2_ack_latency\t3\nzk_p999_2_ack_latency\t3\n"));
        let mut out = String::new();
        prometheus(&metrics, &mut out);
        assert_eq!(
            out,
            "# TYPE ack_latency summary\nack_latency{key=\"2\",quantile=\"0.5\"} 3\n\
             ack_latency{key=\"2\",quantile=\"0.9\"} 3\nack_latency{key=\"2\",quantile=\"0.99\"} 3\n\
             ack_latency_count{key=\"2\"} 1\nack_latency_sum{key=\"2\"} 3\n"
        );
    }

    #[test]
    fn histograms_print_cumulative_buckets_in_seconds() {
        let histogram = crate::server::histogram::Histogram::default();
        histogram.record(30);
        histogram.record(2_000);
        let label = Some(("stage", "log"));
        let metrics =
            vec![metric("zkrs_write_stage_seconds", Reading::Histogram(label, histogram.read()))];
        let mut out = String::new();
        prometheus(&metrics, &mut out);
        assert!(out.starts_with("# TYPE zkrs_write_stage_seconds histogram\n"));
        assert!(out.contains("zkrs_write_stage_seconds_bucket{stage=\"log\",le=\"0.000025\"} 0\n"));
        assert!(out.contains("zkrs_write_stage_seconds_bucket{stage=\"log\",le=\"0.00005\"} 1\n"));
        assert!(out.contains("zkrs_write_stage_seconds_bucket{stage=\"log\",le=\"0.0025\"} 2\n"));
        assert!(out.contains("zkrs_write_stage_seconds_bucket{stage=\"log\",le=\"10\"} 2\n"));
        assert!(out.ends_with(
            "zkrs_write_stage_seconds_bucket{stage=\"log\",le=\"+Inf\"} 2\n\
             zkrs_write_stage_seconds_sum{stage=\"log\"} 0.00203\n\
             zkrs_write_stage_seconds_count{stage=\"log\"} 2\n"
        ));
        let mut monitor = String::new();
        mntr(&metrics, &mut monitor);
        assert_eq!(monitor, "", "zkrs's own histograms stay out of ZooKeeper's mntr");
    }
}
