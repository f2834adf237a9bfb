//! What a circuit breaker watches, over rolling windows as in oxy's
//! `RTMetrics` (which Traefik uses): response counts by status code and
//! network errors (502 and 504, the statuses the forwarder gives to a
//! server it could not talk to) over the last 10 seconds, in one-second
//! buckets; latencies over the last minute, in six ten-second histograms.
//!
//! Recording is lock-free: buckets are atomics, stamped with the second (or
//! ten seconds) they count; the first request of a new period claims the
//! oldest bucket with a compare-and-swap and clears it. Counts that race
//! with that clearing may be lost, which a ratio over thousands of requests
//! does not notice. Latencies go into log-linear buckets (32 per power of
//! two, about 3 % apart), microseconds up to an hour, like the HDR
//! histogram oxy uses with two significant figures.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One-second buckets of counts.
const COUNTER_BUCKETS: u64 = 10;
/// Ten-second latency histograms.
const LATENCY_BUCKETS: u64 = 6;
/// Seconds per latency histogram.
const LATENCY_PERIOD: u64 = 10;
/// Status codes counted one by one: 100 to 599.
const CODES: usize = 500;
/// Sub-buckets per power of two of a latency histogram.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Largest latency recorded: an hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;
/// Histogram buckets up to `MAX_MICROS`.
const HISTOGRAM_LEN: usize = bucket_of(MAX_MICROS) + 1;

/// Rolling counts and latencies of one circuit breaker.
#[derive(Debug)]
pub(crate) struct BreakerMetrics {
    epoch: Instant,
    counters: Vec<Counters>,
    latencies: Vec<Histogram>,
}

/// The counts of one second.
#[derive(Debug)]
struct Counters {
    /// Seconds since the epoch plus one; 0 when cleared.
    stamp: AtomicU64,
    total: AtomicU64,
    network_errors: AtomicU64,
    codes: Vec<AtomicU32>,
}

/// The latencies of ten seconds.
#[derive(Debug)]
struct Histogram {
    /// Periods since the epoch plus one; 0 when cleared.
    stamp: AtomicU64,
    counts: Vec<AtomicU32>,
}

impl Default for BreakerMetrics {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            counters: (0..COUNTER_BUCKETS)
                .map(|_| Counters {
                    stamp: AtomicU64::new(0),
                    total: AtomicU64::new(0),
                    network_errors: AtomicU64::new(0),
                    codes: (0..CODES).map(|_| AtomicU32::new(0)).collect(),
                })
                .collect(),
            latencies: (0..LATENCY_BUCKETS)
                .map(|_| Histogram {
                    stamp: AtomicU64::new(0),
                    counts: (0..HISTOGRAM_LEN).map(|_| AtomicU32::new(0)).collect(),
                })
                .collect(),
        }
    }
}

impl BreakerMetrics {
    /// Seconds since the epoch plus one (0 means "cleared").
    fn second(&self) -> u64 {
        self.epoch.elapsed().as_secs() + 1
    }

    /// Records one response.
    pub(crate) fn record(&self, status: u16, latency: Duration) {
        let second = self.second();
        let counters = &self.counters[(second % COUNTER_BUCKETS) as usize];
        if claim(&counters.stamp, second) {
            counters.total.store(0, Ordering::Relaxed);
            counters.network_errors.store(0, Ordering::Relaxed);
            counters
                .codes
                .iter()
                .for_each(|count| count.store(0, Ordering::Relaxed));
        }
        counters.total.fetch_add(1, Ordering::Relaxed);
        if status == 502 || status == 504 {
            counters.network_errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(count) = usize::from(status)
            .checked_sub(100)
            .and_then(|index| counters.codes.get(index))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }

        let period = (second - 1) / LATENCY_PERIOD + 1;
        let histogram = &self.latencies[(period % LATENCY_BUCKETS) as usize];
        if claim(&histogram.stamp, period) {
            histogram
                .counts
                .iter()
                .for_each(|count| count.store(0, Ordering::Relaxed));
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        histogram.counts[bucket_of(micros.clamp(1, MAX_MICROS))].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets everything (when the breaker trips, as oxy does).
    pub(crate) fn reset(&self) {
        for counters in &self.counters {
            counters.stamp.store(0, Ordering::Relaxed);
        }
        for histogram in &self.latencies {
            histogram.stamp.store(0, Ordering::Relaxed);
        }
    }

    /// The one-second buckets of the last ten seconds.
    fn recent_counters(&self) -> impl Iterator<Item = &Counters> {
        let second = self.second();
        self.counters.iter().filter(move |counters| {
            let stamp = counters.stamp.load(Ordering::Relaxed);
            stamp != 0 && stamp + COUNTER_BUCKETS > second
        })
    }

    /// Network errors over all responses (0 without responses).
    pub(crate) fn network_error_ratio(&self) -> f64 {
        let (errors, total) = self.recent_counters().fold((0, 0), |(errors, total), c| {
            (
                errors + c.network_errors.load(Ordering::Relaxed),
                total + c.total.load(Ordering::Relaxed),
            )
        });
        ratio(errors, total)
    }

    /// Responses with a status in `[from, to)` over those in
    /// `[div_from, div_to)` (0 when there are none of the latter).
    pub(crate) fn response_code_ratio(
        &self,
        from: u32,
        to: u32,
        div_from: u32,
        div_to: u32,
    ) -> f64 {
        let count = |from: u32, to: u32| -> u64 {
            let from = (from.max(100) - 100) as usize;
            let to = (to.clamp(100, 600) - 100) as usize;
            if from >= to {
                return 0;
            }
            self.recent_counters()
                .map(|c| {
                    c.codes[from..to]
                        .iter()
                        .map(|n| u64::from(n.load(Ordering::Relaxed)))
                        .sum::<u64>()
                })
                .sum()
        };
        ratio(count(from, to), count(div_from, div_to))
    }

    /// The latency at `quantile` percent, in whole milliseconds (0 without
    /// responses).
    pub(crate) fn latency_at_quantile_ms(&self, quantile: f64) -> f64 {
        let period = (self.second() - 1) / LATENCY_PERIOD + 1;
        let mut merged = vec![0u64; HISTOGRAM_LEN];
        for histogram in &self.latencies {
            let stamp = histogram.stamp.load(Ordering::Relaxed);
            if stamp == 0 || stamp + LATENCY_BUCKETS <= period {
                continue;
            }
            for (sum, count) in merged.iter_mut().zip(&histogram.counts) {
                *sum += u64::from(count.load(Ordering::Relaxed));
            }
        }
        let total: u64 = merged.iter().sum();
        if total == 0 {
            return 0.0;
        }
        // HDR's rounding of the rank, at least one value.
        let rank = ((quantile.clamp(0.0, 100.0) / 100.0 * total as f64 + 0.5) as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in merged.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (highest_in(bucket) / 1000) as f64;
            }
        }
        (MAX_MICROS / 1000) as f64
    }
}

/// Moves `stamp` to `now` if it is behind; true for the caller that did,
/// which must clear the bucket.
fn claim(stamp: &AtomicU64, now: u64) -> bool {
    let seen = stamp.load(Ordering::Acquire);
    seen != now
        && stamp
            .compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The histogram bucket of `micros`: exact below 32, then 32 per power of
/// two.
const fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let mantissa = micros >> (exponent - SUB_BITS);
    ((exponent - SUB_BITS) as u64 * SUB + mantissa) as usize
}

/// The largest value that falls in `bucket`.
fn highest_in(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let exponent = bucket / SUB - 1 + u64::from(SUB_BITS);
    let mantissa = bucket % SUB + SUB;
    ((mantissa + 1) << (exponent - u64::from(SUB_BITS))) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn buckets_are_contiguous_and_close() {
        assert_eq!(bucket_of(31), 31);
        assert_eq!(bucket_of(32), 32);
        assert_eq!(bucket_of(63), 63);
        assert_eq!(bucket_of(64), 64);
        assert_eq!(bucket_of(65), 64);
        for value in [1u64, 31, 32, 100, 1_000, 123_456, 3_600_000_000] {
            let bucket = bucket_of(value);
            assert!(highest_in(bucket) >= value);
            assert_eq!(bucket_of(highest_in(bucket)), bucket);
            // Within about 3 %.
            assert!(highest_in(bucket) as f64 <= value as f64 * 1.032 + 1.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ratios_over_the_last_ten_seconds() {
        let metrics = BreakerMetrics::default();
        assert_eq!(metrics.network_error_ratio(), 0.0);
        for status in [200, 200, 502, 504, 500, 404] {
            metrics.record(status, MS);
        }
        assert_eq!(metrics.network_error_ratio(), 2.0 / 6.0);
        assert_eq!(metrics.response_code_ratio(500, 600, 0, 600), 3.0 / 6.0);
        assert_eq!(metrics.response_code_ratio(400, 500, 200, 300), 1.0 / 2.0);
        assert_eq!(metrics.response_code_ratio(500, 600, 300, 400), 0.0);

        tokio::time::advance(Duration::from_secs(5)).await;
        metrics.record(200, MS);
        assert_eq!(metrics.network_error_ratio(), 2.0 / 7.0);
        // The first second has left the window, the later one has not.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(metrics.network_error_ratio(), 0.0);
        assert_eq!(metrics.response_code_ratio(200, 300, 0, 600), 1.0);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(metrics.response_code_ratio(200, 300, 0, 600), 0.0);

        metrics.record(502, MS);
        metrics.reset();
        assert_eq!(metrics.network_error_ratio(), 0.0);
        metrics.record(200, MS);
        assert_eq!(metrics.network_error_ratio(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_quantiles_over_the_last_minute() {
        let metrics = BreakerMetrics::default();
        assert_eq!(metrics.latency_at_quantile_ms(50.0), 0.0);
        for ms in 1..=100 {
            metrics.record(200, MS * ms);
        }
        let median = metrics.latency_at_quantile_ms(50.0);
        assert!((50.0..=52.0).contains(&median), "{median}");
        let p99 = metrics.latency_at_quantile_ms(99.0);
        assert!((99.0..=102.0).contains(&p99), "{p99}");
        tokio::time::advance(Duration::from_secs(30)).await;
        metrics.record(200, MS * 1000);
        assert!(metrics.latency_at_quantile_ms(100.0) >= 1000.0);
        tokio::time::advance(Duration::from_secs(40)).await;
        // The first hundred have rolled out; the slow one has not.
        assert!(metrics.latency_at_quantile_ms(50.0) >= 1000.0);
    }
}
