//! Connection throttling's settings, read from the system properties ZooKeeper's
//! `BlueThrottle` reads (`zookeeper.connection_throttle_*`, in zoo.cfg with or without
//! the prefix), with its defaults and its corrections of inconsistent weights.
//!
//! ZooKeeper's documentation also names them `connectionMaxTokens` and so on, but
//! ZooKeeper never reads those names from zoo.cfg; neither does zkrs (the key table says
//! so at start-up).

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
