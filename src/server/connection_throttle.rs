//! ZooKeeper's connection throttle (`BlueThrottle`): each handshake takes tokens from a
//! bucket that refills with time, and is refused when too few are left; with a freeze
//! time set, a refusal chance grows while the bucket stays empty and shrinks once it
//! refills (the BLUE queue algorithm). Pure: time and the random draw come in as
//! arguments.

use crate::config::throttle::ConnectionThrottleSettings;

/// The bucket and the drop chance.
#[derive(Debug)]
pub struct ConnectionThrottle {
    settings: ConnectionThrottleSettings,
    tokens: i64,
    last_fill_ms: u64,
    last_freeze_ms: u64,
    drop_chance: f64,
}

impl ConnectionThrottle {
    /// A full bucket at `now_ms`.
    pub fn new(settings: ConnectionThrottleSettings, now_ms: u64) -> ConnectionThrottle {
        let tokens = settings.max_tokens;
        ConnectionThrottle {
            settings,
            tokens,
            last_fill_ms: now_ms,
            last_freeze_ms: now_ms,
            drop_chance: 0.0,
        }
    }

    /// The settings, for the weights of each kind of connection.
    pub fn settings(&self) -> &ConnectionThrottleSettings {
        &self.settings
    }

    /// Whether a connection that costs `need` tokens may proceed at `now_ms`; `draw` is
    /// a uniform random number in [0, 1) for BLUE's random drop.
    pub fn admit(&mut self, need: i64, now_ms: u64, draw: f64) -> bool {
        if self.settings.max_tokens == 0 {
            return true;
        }
        let elapsed = now_ms.saturating_sub(self.last_fill_ms) as i64;
        if elapsed > self.settings.fill_time_ms {
            let refill =
                elapsed.saturating_mul(self.settings.fill_count) / self.settings.fill_time_ms;
            self.tokens = self.tokens.saturating_add(refill).min(self.settings.max_tokens);
            self.last_fill_ms = now_ms;
        }
        if self.settings.freeze_time_ms != -1 && !self.blue(now_ms, draw) {
            return false;
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    /// Tokens missing from a full bucket.
    pub fn deficit(&self) -> i64 {
        self.settings.max_tokens - self.tokens
    }

    /// The current chance of a random refusal.
    pub fn drop_chance(&self) -> f64 {
        self.drop_chance
    }

    /// BLUE: adjusts the drop chance at most once per freeze time, then draws.
    fn blue(&mut self, now_ms: u64, draw: f64) -> bool {
        let max = self.settings.max_tokens;
        let used = max - self.tokens;
        let threshold = (max as f64 * self.settings.decrease_ratio).round() as i64;
        if now_ms.saturating_sub(self.last_freeze_ms) as i64 > self.settings.freeze_time_ms {
            if used == max && self.drop_chance < 1.0 {
                self.drop_chance = (self.drop_chance + self.settings.drop_increase).min(1.0);
            } else if used <= threshold && self.drop_chance > 0.0 {
                self.drop_chance = (self.drop_chance - self.settings.drop_decrease).max(0.0);
            }
            self.last_freeze_ms = now_ms;
        }
        draw >= self.drop_chance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::throttle::SessionWeights;

    fn settings(max_tokens: i64, freeze_time_ms: i64) -> ConnectionThrottleSettings {
        ConnectionThrottleSettings {
            max_tokens,
            fill_time_ms: 100,
            fill_count: 1,
            freeze_time_ms,
            drop_increase: 0.5,
            drop_decrease: 0.25,
            decrease_ratio: 0.0,
            weights: SessionWeights { global: 1, local: 1, renew: 1 },
        }
    }

    #[test]
    fn off_by_default_admits_everything() {
        let mut throttle = ConnectionThrottle::new(settings(0, -1), 0);
        assert!((0..1000).all(|_| throttle.admit(3, 0, 0.0)));
    }

    #[test]
    fn the_bucket_empties_then_refills_with_time() {
        let mut throttle = ConnectionThrottle::new(settings(2, -1), 1_000);
        assert!(throttle.admit(1, 1_000, 0.5));
        assert!(throttle.admit(1, 1_000, 0.5));
        assert!(!throttle.admit(1, 1_050, 0.5), "empty");
        assert_eq!(throttle.deficit(), 2);
        assert!(throttle.admit(1, 1_101, 0.5), "one token after one fill time");
        assert!(!throttle.admit(1, 1_101, 0.5));
        assert!(throttle.admit(2, 5_000, 0.5), "never more than a full bucket");
        assert!(!throttle.admit(1, 5_000, 0.5));
    }

    #[test]
    fn blue_raises_the_drop_chance_while_empty_and_lowers_it_when_full() {
        let mut throttle = ConnectionThrottle::new(settings(1, 10), 0);
        assert!(throttle.admit(1, 0, 0.99));
        assert!(!throttle.admit(1, 11, 0.99), "empty: refused, chance now 0.5");
        assert_eq!(throttle.drop_chance(), 0.5);
        assert!(!throttle.admit(1, 200, 0.1), "refilled, but the draw falls under the chance");
        assert_eq!(throttle.drop_chance(), 0.25, "the chance fell as the bucket was full");
        assert!(throttle.admit(1, 300, 0.1), "and fell again to nothing");
        assert_eq!(throttle.drop_chance(), 0.0);
    }
}
