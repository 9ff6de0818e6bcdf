//! ZooKeeper's Prometheus endpoint, as its `PrometheusMetricsProvider` serves it
//! (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.\
//! PrometheusMetricsProvider`): `GET /metrics` on `metricsProvider.httpHost:httpPort`
//! answers every metric in the Prometheus text format, under ZooKeeper's names.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::server::{metrics, Shared};

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
    let mut text = String::new();
    metrics::prometheus(&metrics::collect(&shared), &mut text);
    ([(CONTENT_TYPE, TEXT_FORMAT)], text)
}
