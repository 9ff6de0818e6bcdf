//! Accepts client connections and gives each its own task, telling it whether the port
//! speaks TLS.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::server::{client, Shared};
use crate::tls::ServerTls;

/// The first byte of a TLS record carrying a handshake: what a TLS client sends first.
/// A ZooKeeper client's first byte is the top of a frame length (0 for any frame under
/// 16 MiB) or a four-letter word's first letter, never this.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a new connection opens with: the one test by which every port that may speak
/// TLS (client ports, unified or not, and the members' ports) tells TLS from plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A TLS handshake.
    Tls,
    /// Anything else.
    Plain,
    /// The other end hung up before sending anything.
    Nothing,
    /// Nothing came in time.
    Silent,
}

/// Peeks at `stream`'s first byte, waiting up to `wait` for it.
///
/// # Errors
/// When the connection fails.
pub async fn opening(stream: &TcpStream, wait: Duration) -> std::io::Result<Opening> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(wait, stream.peek(&mut first)).await {
        Ok(Ok(0)) => Ok(Opening::Nothing),
        Ok(Ok(_)) if first[0] == TLS_HANDSHAKE_RECORD => Ok(Opening::Tls),
        Ok(Ok(_)) => Ok(Opening::Plain),
        Ok(Err(err)) => Err(err),
        Err(_) => Ok(Opening::Silent),
    }
}

/// What a client port speaks.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain ZooKeeper protocol (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Arc<ServerTls>),
    /// Plain or TLS, told apart by the first byte (`client.portUnification`).
    Unified(Arc<ServerTls>),
}

impl Security {
    /// The TLS context for a new connection on this port, or `None` for plain. A unified
    /// port waits up to `ssl.handshakeDetectionTimeoutMillis` for the first byte and
    /// takes a client that sends none as plain, as ZooKeeper's `UnifiedServerSocket`.
    pub async fn tls_for(&self, stream: &TcpStream) -> Option<Arc<ServerTls>> {
        match self {
            Security::Plain => None,
            Security::Tls(tls) => Some(tls.clone()),
            Security::Unified(tls) => {
                let wait = Duration::from_millis(tls.settings().handshake_detection_timeout_ms);
                let opens_tls = matches!(opening(stream, wait).await, Ok(Opening::Tls));
                opens_tls.then(|| tls.clone())
            }
        }
    }
}

/// Accepts connections until the task is dropped. Accept errors (such as running out of
/// file descriptors) are logged and retried after a pause rather than ending the server.
pub async fn run(shared: Arc<Shared>, listener: TcpListener, security: Security) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Some(connection) = client::register(&shared, peer, &security) {
                    client::spawn_serving(shared.clone(), connection, stream, security.clone());
                }
            }
            Err(err) => {
                tracing::warn!(cause = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
