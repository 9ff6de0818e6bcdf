//! ZooKeeper's Prometheus endpoint, as its `PrometheusMetricsProvider` serves it
//! (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.\
//! PrometheusMetricsProvider`): `GET /metrics` on `metricsProvider.httpHost:httpPort`
//! answers every metric in the Prometheus text format, under ZooKeeper's names, and,
//! with `metricsProvider.exportJvmInfo` (true by default), the standard process metrics
//! its Java client library adds (`process_*`, from `StandardExports`), on which
//! dashboards and alerts watch a server's CPU, memory and file descriptors. The JVM's
//! own (`jvm_*`) have no counterpart in zkrs.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::server::metrics::{self, Metric, Reading};
use crate::server::Shared;

/// The text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let app = Router::new().route("/metrics", get(scrape)).with_state(shared);
    if let Err(err) = axum::serve(listener, app).await {
        tracing::error!(cause = %err, "the Prometheus endpoint stopped");
    }
}

async fn scrape(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut all = metrics::collect(&shared);
    if shared.config.prometheus_process_metrics {
        all.extend(process_metrics(&shared));
    }
    let mut text = String::new();
    metrics::prometheus(&all, &mut text);
    ([(CONTENT_TYPE, TEXT_FORMAT)], text)
}

/// The standard process metrics, under the names and in the units (seconds, bytes) of
/// Prometheus' client libraries. The start time is the server clock's: when the server
/// began, within milliseconds of the process.
fn process_metrics(shared: &Shared) -> Vec<Metric> {
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let cpu_seconds = cpu.tv_sec as f64 + cpu.tv_nsec as f64 / 1e9;
    let started_ms = shared.clock.wall_ms().saturating_sub(shared.clock.now_ms());
    let mut readings = vec![
        ("process_cpu_seconds_total", Reading::Total(cpu_seconds)),
        ("process_start_time_seconds", Reading::Gauge(started_ms as f64 / 1000.0)),
        ("process_open_fds", Reading::Gauge(metrics::open_files() as f64)),
        ("process_max_fds", Reading::Gauge(metrics::max_open_files())),
    ];
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for (name, line) in
        [("process_virtual_memory_bytes", "VmSize:"), ("process_resident_memory_bytes", "VmRSS:")]
    {
        if let Some(kib) = kibibytes(&status, line) {
            readings.push((name, Reading::Gauge(kib * 1024.0)));
        }
    }
    readings.into_iter().map(|(name, reading)| Metric { name, key: None, reading }).collect()
}

/// The kibibytes on the line of `/proc/self/status` that begins with `label`.
fn kibibytes(status: &str, label: &str) -> Option<f64> {
    let line = status.lines().find(|line| line.starts_with(label))?;
    line[label.len()..].trim().trim_end_matches("kB").trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::kibibytes;

    #[test]
    fn status_lines_give_their_kibibytes() {
        let status = "Name:\tzkrs\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(kibibytes(status, "VmSize:"), Some(123_456.0));
        assert_eq!(kibibytes(status, "VmRSS:"), Some(2_048.0));
        assert_eq!(kibibytes(status, "VmSwap:"), None);
    }
}
