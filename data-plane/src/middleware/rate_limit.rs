//! `rateLimit`: a token bucket per source, as Traefik's (`x/time/rate`
//! reservations): `average` requests per `period` on average, `burst` at
//! once. A request that would wait at most `maxDelay` for its token waits
//! (traffic shaping); one that would wait longer gets `429 Too Many
//! Requests` with `Retry-After` (whole seconds, rounded up) and
//! `X-Retry-In` (the exact wait, Go's duration syntax), and takes no token.
//! `maxDelay` is Traefik's: half the interval between two requests at
//! the average rate, 500 ms below one request per second. `average: 0`
//! means no limit.
//!
//! Each bucket is one atomic: the theoretical arrival time of the next
//! request (GCRA, the token bucket's dual form), updated with a
//! compare-and-swap, so the hot path takes no lock. Buckets live in the
//! shared middleware state, so a snapshot that keeps this middleware's
//! options keeps them. A bucket that has refilled is the same as a new one,
//! so dropping it loses nothing: when the map reaches its capacity (65,536
//! sources, Traefik's), those go first, then the nearest to full, so a flood
//! of spoofed sources cannot grow it without bound.

use std::hash::RandomState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use http::{HeaderValue, Request, Response, StatusCode};
use sluice_proto::v1;
use tokio::time::Instant;

use super::source_criterion::SourceCriterion;
use super::{BuildContext, MiddlewareBuildError, Next, RequestContext, fingerprint};
use crate::body::{ProxyBody, status_response};

/// Sources tracked at most by one middleware (Traefik's `maxSources`).
const CAPACITY: usize = 65_536;

/// A built `rateLimit` middleware.
#[derive(Debug)]
pub(crate) struct RateLimit {
    criterion: SourceCriterion,
    /// `None` when `average` is 0.
    limiter: Option<Arc<Limiter>>,
}

impl RateLimit {
    /// From the snapshot; the buckets come from the shared state, keyed by
    /// this middleware and its options.
    pub(crate) fn new(
        config: &v1::RateLimit,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        let criterion = SourceCriterion::new(
            "rateLimit.sourceCriterion",
            config.source_criterion.as_ref(),
        )?;
        if config.average < 0 {
            return Err(MiddlewareBuildError::Invalid {
                option: "rateLimit.average",
                value: config.average.to_string(),
                reason: "must not be negative",
            });
        }
        if config.period_ms < 0 {
            return Err(MiddlewareBuildError::Invalid {
                option: "rateLimit.period",
                value: format!("{}ms", config.period_ms),
                reason: "must not be negative",
            });
        }
        let limiter = (config.average > 0).then(|| {
            let period = match config.period_ms {
                0 => Duration::from_secs(1),
                ms => Duration::from_millis(ms.unsigned_abs()),
            };
            let rate = Rate::new(config.average, period, config.burst);
            ctx.state("rateLimit", fingerprint(config), || {
                Limiter::new(rate, CAPACITY)
            })
        });
        Ok(Self { criterion, limiter })
    }

    /// Lets the request through to `next` when its source has a token (after
    /// a short wait, if needed), answers 429 otherwise.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let Some(limiter) = &self.limiter else {
            return next.run(req, ctx).await;
        };
        let key = self.criterion.key(&limiter.hasher, &req, ctx.conn.peer);
        match limiter.reserve(key) {
            Reservation::Now => {}
            Reservation::After(delay) => tokio::time::sleep(delay).await,
            Reservation::Refused(delay) => {
                tracing::debug!(router = ctx.router, peer = %ctx.conn.peer, ?delay, "rate limited");
                return too_many_requests(delay);
            }
        }
        next.run(req, ctx).await
    }
}

/// Traefik's refusal.
fn too_many_requests(delay: Duration) -> Response<ProxyBody> {
    let mut response = status_response(StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers_mut();
    let seconds = delay.as_nanos().div_ceil(1_000_000_000);
    headers.insert("retry-after", HeaderValue::from(seconds as u64));
    if let Ok(value) = HeaderValue::from_str(&go_duration(delay)) {
        headers.insert("x-retry-in", value);
    }
    response
}

/// The parameters of every bucket of one middleware, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    /// Time between two requests at the average rate.
    interval: u64,
    /// How far ahead of now a bucket's arrival time may run: `burst`
    /// intervals.
    tolerance: u64,
    /// The longest wait a request is held for rather than refused.
    max_delay: u64,
}

impl Rate {
    /// `average` (> 0) requests per `period`, `burst` (raised to 1) at once.
    fn new(average: i64, period: Duration, burst: i64) -> Self {
        let period_ns = period.as_nanos() as f64;
        let average = average as f64;
        let interval = (period_ns / average).max(1.0) as u64;
        // Requests per second, as Traefik computes `maxDelay` from it.
        let per_second = average * 1e9 / period_ns;
        let max_delay = if per_second < 1.0 {
            500_000_000
        } else {
            1_000_000_000 / (2 * per_second as u64)
        };
        let burst = burst.max(1).unsigned_abs();
        Self {
            interval,
            tolerance: interval.saturating_mul(burst),
            max_delay,
        }
    }
}

/// What a bucket decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reservation {
    /// Go ahead.
    Now,
    /// Go ahead after waiting this long (the token is taken).
    After(Duration),
    /// Too long a wait: refused, no token taken.
    Refused(Duration),
}

/// The buckets of one middleware, by source.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: Rate,
    epoch: Instant,
    hasher: RandomState,
    /// Theoretical arrival time of each source's next request, in
    /// nanoseconds since `epoch`.
    buckets: DashMap<u64, AtomicU64>,
    capacity: usize,
    /// Held by the one request that prunes a full map.
    pruning: AtomicBool,
}

impl Limiter {
    fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            buckets: DashMap::new(),
            capacity,
            pruning: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes a token from `source`'s bucket, or says how long until one.
    fn reserve(&self, source: u64) -> Reservation {
        let now = self.now();
        if let Some(bucket) = self.buckets.get(&source) {
            return self.take(&bucket, now);
        }
        if self.buckets.len() >= self.capacity {
            self.prune(now);
        }
        let bucket = self.buckets.entry(source).or_insert(AtomicU64::new(0));
        self.take(&bucket, now)
    }

    fn take(&self, bucket: &AtomicU64, now: u64) -> Reservation {
        let Rate {
            interval,
            tolerance,
            max_delay,
        } = self.rate;
        let mut arrival = bucket.load(Ordering::Acquire);
        loop {
            let next = arrival.max(now).saturating_add(interval);
            let delay = next.saturating_sub(tolerance).saturating_sub(now);
            if delay > max_delay {
                return Reservation::Refused(Duration::from_nanos(delay));
            }
            match bucket.compare_exchange_weak(arrival, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if delay == 0 => return Reservation::Now,
                Ok(_) => return Reservation::After(Duration::from_nanos(delay)),
                Err(current) => arrival = current,
            }
        }
    }

    /// Drops the buckets that have refilled, then, if the map is still
    /// full, the nearest to full until an eighth of it is free.
    fn prune(&self, now: u64) {
        if self.pruning.swap(true, Ordering::Acquire) {
            return;
        }
        self.buckets
            .retain(|_, arrival| arrival.load(Ordering::Relaxed) > now);
        let target = self.capacity - self.capacity / 8;
        if self.buckets.len() >= target {
            let mut arrivals: Vec<u64> = self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect();
            let excess = arrivals.len() - target;
            let (_, threshold, _) = arrivals.select_nth_unstable(excess);
            let threshold = *threshold;
            self.buckets
                .retain(|_, arrival| arrival.load(Ordering::Relaxed) > threshold);
        }
        self.pruning.store(false, Ordering::Release);
    }
}

/// `d` as Go's `time.Duration.String` writes it (`1.5s`, `250ms`, `1m0.5s`).
fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let fraction = |value: u128, digits: u32| {
        let unit = 10u128.pow(digits);
        let (whole, rest) = (value / unit, value % unit);
        if rest == 0 {
            whole.to_string()
        } else {
            let rest = format!("{rest:0width$}", width = digits as usize);
            format!("{whole}.{}", rest.trim_end_matches('0'))
        }
    };
    match nanos {
        0 => "0s".to_owned(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", fraction(n, 3)),
        n if n < 1_000_000_000 => format!("{}ms", fraction(n, 6)),
        n => {
            let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
            let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
            let seconds = format!("{}s", fraction(rest, 9));
            match (hours, minutes) {
                (0, 0) => seconds,
                (0, m) => format!("{m}m{seconds}"),
                (h, m) => format!("{h}h{m}m{seconds}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        Backend, config, headers, request, send_with, shared_state, text,
    };
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn limiter(average: i64, period_ms: u64, burst: i64) -> Limiter {
        Limiter::new(
            Rate::new(average, Duration::from_millis(period_ms), burst),
            CAPACITY,
        )
    }

    #[test]
    fn rates_follow_traefik() {
        let rate = Rate::new(10, Duration::from_secs(1), 0);
        assert_eq!(rate.interval, 100_000_000);
        assert_eq!(rate.tolerance, 100_000_000);
        assert_eq!(rate.max_delay, 50_000_000);
        // Below one request per second, the wait is capped at 500 ms.
        let slow = Rate::new(1, Duration::from_secs(60), 5);
        assert_eq!(slow.interval, 60_000_000_000);
        assert_eq!(slow.tolerance, 300_000_000_000);
        assert_eq!(slow.max_delay, 500_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refuses_then_refills() {
        let limiter = limiter(10, 1000, 3);
        for _ in 0..3 {
            assert_eq!(limiter.reserve(1), Reservation::Now);
        }
        assert_eq!(
            limiter.reserve(1),
            Reservation::Refused(Duration::from_millis(100))
        );
        // Another source has its own bucket.
        assert_eq!(limiter.reserve(2), Reservation::Now);
        tokio::time::advance(Duration::from_millis(60)).await;
        // 40 ms to go: under maxDelay (50 ms), so the request waits.
        assert_eq!(
            limiter.reserve(1),
            Reservation::After(Duration::from_millis(40))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..3 {
            assert_eq!(limiter.reserve(1), Reservation::Now);
        }
        assert!(matches!(limiter.reserve(1), Reservation::Refused(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_average_holds_over_time() {
        let limiter = limiter(100, 1000, 1);
        let mut allowed = 0;
        for _ in 0..1000 {
            if !matches!(limiter.reserve(7), Reservation::Refused(_)) {
                allowed += 1;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        // One second at 100/s (the reservations that wait count too).
        assert!((95..=105).contains(&allowed), "{allowed}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_map_stays_bounded() {
        let limiter = Limiter::new(Rate::new(1, Duration::from_secs(60), 1), 64);
        for source in 0..1000 {
            assert_eq!(limiter.reserve(source), Reservation::Now);
            assert!(limiter.buckets.len() <= 64);
        }
        // Refilled buckets go first: after a minute all are dropped at once.
        tokio::time::advance(Duration::from_secs(61)).await;
        limiter.reserve(5000);
        limiter.prune(limiter.now());
        assert_eq!(limiter.buckets.len(), 1);
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(12)), "12ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(ms(250)), "250ms");
        assert_eq!(go_duration(Duration::from_nanos(99_999_999)), "99.999999ms");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(60_500)), "1m0.5s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
    }

    fn rate_limit(average: i64, period_ms: i64, burst: i64, header: &str) -> v1::Middleware {
        config(
            "rl",
            Kind::RateLimit(v1::RateLimit {
                average,
                period_ms,
                burst,
                source_criterion: Some(v1::SourceCriterion {
                    request_header_name: header.into(),
                    ip_strategy: header.is_empty().then(v1::IpStrategy::default),
                    ..Default::default()
                }),
            }),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_429_with_retry_after_and_state_survives_rebuilds() {
        let shared = shared_state();
        let backend = Backend::new();
        let middleware = rate_limit(1, 2000, 2, "");
        let send = |peer| {
            send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                peer,
                request(Request::get("/").body(()).unwrap()),
            )
        };
        // Each `send` builds the chain again, as a runtime swap does.
        assert_eq!(send("10.0.0.1:1").await.status(), StatusCode::OK);
        assert_eq!(send("10.0.0.1:2").await.status(), StatusCode::OK);
        let refused = send("10.0.0.1:3").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let refused_headers = headers(&refused);
        assert_eq!(refused_headers["retry-after"], "2");
        assert_eq!(refused_headers["x-retry-in"], "2s");
        assert_eq!(text(refused).await, "Too Many Requests");
        assert_eq!(send("10.0.0.2:1").await.status(), StatusCode::OK);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(send("10.0.0.1:4").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn zero_average_means_no_limit() {
        let shared = shared_state();
        let backend = Backend::new();
        let middleware = rate_limit(0, 1000, 1, "x-key");
        for _ in 0..20 {
            let response = send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                request(Request::get("/").body(()).unwrap()),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}
