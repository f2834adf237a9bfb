//! Jittered exponential backoff for reconnecting to the control plane.
//!
//! The ceiling doubles from the minimum (0.5 s) to the maximum (30 s); each
//! delay is drawn uniformly from the upper half of the ceiling ("equal
//! jitter") so that a fleet of proxies does not reconnect in lockstep, and
//! never goes below the minimum.

use std::time::Duration;

use rand::Rng;

/// Reconnection delays.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays between `min` and `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32.checked_shl(self.attempt).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.5..=1.0));
        jittered.clamp(self.min, self.max)
    }

    /// Starts over from the minimum (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_reset() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        for _ in 0..100 {
            let mut backoff = Backoff::new(min, max);
            let mut ceiling = min;
            for _ in 0..40 {
                let delay = backoff.next_delay();
                assert!(delay >= min && delay <= max, "{delay:?}");
                assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
                assert!(
                    delay >= (ceiling / 2).max(min),
                    "{delay:?} < half of {ceiling:?}"
                );
                ceiling = (ceiling * 2).min(max);
            }
            backoff.reset();
            assert_eq!(backoff.next_delay(), min);
        }
    }

    #[test]
    fn delays_are_jittered() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        for _ in 0..10 {
            backoff.next_delay();
        }
        let delays: Vec<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.iter().any(|d| *d != delays[0]));
    }
}
