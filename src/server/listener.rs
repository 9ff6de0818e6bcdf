//! Accepts client connections and gives each its own task.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::server::{client, Shared};

/// Accepts connections until the task is dropped. Accept errors (such as running out of
/// file descriptors) are logged and retried after a pause rather than ending the server.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(client::serve(shared.clone(), stream, peer));
            }
            Err(err) => {
                tracing::warn!(cause = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
