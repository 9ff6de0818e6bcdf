//! Admission control's settings, read from the system properties ZooKeeper reads (in
//! zoo.cfg with or without the `zookeeper.` prefix), with its defaults and corrections:
//! connection throttling (`BlueThrottle`'s `zookeeper.connection_throttle_*`), request
//! throttling (`RequestThrottler`'s `zookeeper.request_throttle_*`), the global limit on
//! outstanding requests and the large-request budget.
//!
//! ZooKeeper's documentation also names some of them `connectionMaxTokens`,
//! `requestThrottleLimit` and so on, but ZooKeeper never reads those names from zoo.cfg;
//! neither does zkrs (the key table says so at start-up).

use super::properties::Reader;
use super::{ConfigError, Notice};

/// A token bucket of connection attempts, with BLUE's random drops when it runs dry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionThrottleSettings {
    /// Tokens in a full bucket; 0 turns throttling off (`connection_throttle_tokens`).
    pub max_tokens: i64,
    /// Milliseconds per refill (`connection_throttle_fill_time`), at least 1.
    pub fill_time_ms: i64,
    /// Tokens added per refill (`connection_throttle_fill_count`).
    pub fill_count: i64,
    /// Milliseconds between changes of the drop chance; -1 turns random drops off
    /// (`connection_throttle_freeze_time`).
    pub freeze_time_ms: i64,
    /// Added to the drop chance while the bucket is empty.
    pub drop_increase: f64,
    /// Taken from the drop chance while the bucket is fuller than `decrease_ratio`.
    pub drop_decrease: f64,
    /// The share of a full bucket below which the drop chance falls.
    pub decrease_ratio: f64,
    /// Tokens a connection costs: new global, new local and renewed sessions
    /// (`connection_throttle_*_weight` when `connection_throttle_weight_enabled`, else 1).
    pub weights: SessionWeights,
}

/// Tokens each kind of connection costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWeights {
    /// A new global session.
    pub global: i64,
    /// A new local session.
    pub local: i64,
    /// A session resumed.
    pub renew: i64,
}

/// The settings, as `BlueThrottle`'s static initialiser computes them.
///
/// # Errors
/// A drop setting that is not a number (`Double.parseDouble` fails ZooKeeper's start).
pub fn read_connection_throttle(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<ConnectionThrottleSettings, ConfigError> {
    let tokens: i64 = read.number("zookeeper.connection_throttle_tokens", 0)?;
    let fill_count: i64 = read.number("zookeeper.connection_throttle_fill_count", 1)?;
    let weighted = read.flag("zookeeper.connection_throttle_weight_enabled", false)?;
    let global: i64 = read.number("zookeeper.connection_throttle_global_session_weight", 3)?;
    let local: i64 = read.number("zookeeper.connection_throttle_local_session_weight", 1)?;
    let renew: i64 = read.number("zookeeper.connection_throttle_renew_session_weight", 2)?;
    let local = if local <= 0 {
        notices.push(Notice::warn(format!("Invalid local session weight {local}; using 1")));
        1
    } else {
        local
    };
    let global = if global <= 0 {
        notices.push(Notice::warn(format!("Invalid global session weight {global}; using 3")));
        3
    } else {
        global.max(local)
    };
    let renew = if renew <= 0 {
        notices.push(Notice::warn(format!("Invalid renew session weight {renew}; using 2")));
        2
    } else {
        renew.max(local)
    };
    let (weights, scale) = if weighted {
        (SessionWeights { global, local, renew }, global)
    } else {
        (SessionWeights { global: 1, local: 1, renew: 1 }, 1)
    };
    Ok(ConnectionThrottleSettings {
        max_tokens: tokens.saturating_mul(scale),
        fill_time_ms: read.number::<i64>("zookeeper.connection_throttle_fill_time", 1)?.max(1),
        fill_count: fill_count.saturating_mul(scale),
        freeze_time_ms: read.number("zookeeper.connection_throttle_freeze_time", -1)?,
        drop_increase: real(read, "zookeeper.connection_throttle_drop_increase", 0.02)?,
        drop_decrease: real(read, "zookeeper.connection_throttle_drop_decrease", 0.002)?,
        decrease_ratio: real(read, "zookeeper.connection_throttle_decrease_ratio", 0.0)?,
        weights,
    })
}

/// `Double.parseDouble`, or `default` when unset.
fn real(read: &Reader<'_>, key: &str, default: f64) -> Result<f64, ConfigError> {
    match read.text(key) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(key, value, "not a number".into())),
    }
}

/// How requests are admitted once their connection is in (ZooKeeper's
/// `RequestThrottler`, `globalOutstandingLimit` and large-request throttling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestThrottleSettings {
    /// Writes in process past which requests wait; 0 turns the throttle off
    /// (`zookeeper.request_throttle_max_requests`).
    pub max_requests: u64,
    /// Whether a waiting request older than its session's timeout is dropped with its
    /// connection (`zookeeper.request_stale_latency_check`).
    pub drop_late: bool,
    /// A request that waited longer than this many milliseconds is answered THROTTLEDOP
    /// instead of carried out; 0: never (`zookeeper.throttled_op_wait_time`).
    pub throttled_op_wait_ms: u64,
    /// Outstanding requests past which connections with requests of their own
    /// outstanding are not read from (`globalOutstandingLimit`).
    pub global_outstanding_limit: u64,
    /// Frames longer than this are large requests; `None`: no such limit
    /// (`zookeeper.largeRequestThreshold`, -1).
    pub large_request_threshold: Option<usize>,
    /// The most bytes of large requests received and not yet answered
    /// (`zookeeper.largeRequestMaxBytes`).
    pub large_request_max_bytes: usize,
}

/// The settings, corrected as ZooKeeper corrects them (with the same warnings).
///
/// # Errors
/// A value that is not a number.
pub fn read_request_throttle(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<RequestThrottleSettings, ConfigError> {
    const LARGE_MAX_DEFAULT: i64 = 100 * 1024 * 1024;
    let threshold: i64 = read.number("largeRequestThreshold", -1)?;
    let large_request_threshold = if threshold == 0 || threshold < -1 {
        notices.push(Notice::warn(format!(
            "Invalid large request threshold {threshold}. It should be -1 or positive. \
             Setting to -1"
        )));
        None
    } else {
        usize::try_from(threshold).ok()
    };
    let max_bytes: i64 = read.number("largeRequestMaxBytes", LARGE_MAX_DEFAULT)?;
    let large_request_max_bytes = if max_bytes <= 0 {
        notices.push(Notice::warn(format!(
            "Invalid max bytes for all large requests {max_bytes}. It should be a positive \
             number. The max bytes stay at {LARGE_MAX_DEFAULT}"
        )));
        LARGE_MAX_DEFAULT
    } else {
        max_bytes
    };
    let non_negative = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(RequestThrottleSettings {
        max_requests: non_negative(read.number("zookeeper.request_throttle_max_requests", 0)?),
        drop_late: read.flag("zookeeper.request_stale_latency_check", false)?,
        throttled_op_wait_ms: non_negative(read.number("zookeeper.throttled_op_wait_time", 0)?),
        global_outstanding_limit: non_negative(read.number("globalOutstandingLimit", 1000)?),
        large_request_threshold,
        large_request_max_bytes: usize::try_from(large_request_max_bytes).unwrap_or(usize::MAX),
    })
}
