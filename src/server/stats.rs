//! Counters the four-letter words report, server-wide and per connection.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use jute::OpCode;

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

/// Min/avg/max of request latencies in milliseconds, as ZooKeeper's `ServerStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Smallest latency seen (0 before any).
    pub min_ms: u64,
    /// Largest latency seen.
    pub max_ms: u64,
    /// Sum of all latencies.
    pub total_ms: u64,
    /// Number of requests measured.
    pub count: u64,
}

impl Latency {
    /// Adds one measurement.
    pub fn record(&mut self, latency_ms: u64) {
        if self.count == 0 || latency_ms < self.min_ms {
            self.min_ms = latency_ms;
        }
        self.max_ms = self.max_ms.max(latency_ms);
        self.total_ms += latency_ms;
        self.count += 1;
    }

    /// Average latency, 0 before any request.
    pub fn average_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
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
    /// Request latencies.
    pub latency: Mutex<Latency>,
    /// Failed authentications.
    pub auth_failed: AtomicU64,
}

impl ServerStats {
    /// `srst`: resets latency and packet counters.
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        *self.latency.lock() = Latency::default();
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
    /// Latency of the last request.
    pub last_latency_ms: u64,
    /// Latencies of this connection's requests.
    pub latency: Latency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_min_avg_max() {
        let mut latency = Latency::default();
        assert_eq!(latency.average_ms(), 0.0);
        latency.record(4);
        latency.record(2);
        latency.record(9);
        assert_eq!((latency.min_ms, latency.max_ms, latency.count), (2, 9, 3));
        assert_eq!(latency.average_ms(), 5.0);
    }
}
