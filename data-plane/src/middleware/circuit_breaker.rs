//! `circuitBreaker`: stops sending traffic to a service that is failing, as
//! Traefik's (oxy's `cbreaker`).
//!
//! - **Standby**: requests go through; their statuses and latencies feed the
//!   [`BreakerMetrics`]. At most every `checkPeriod`, after a response, the
//!   expression (parsed by the control plane: `NetworkErrorRatio()`,
//!   `ResponseCodeRatio(from, to, divFrom, divTo)` over half-open status
//!   ranges, `LatencyAtQuantileMS(q)`, comparisons, `&&`, `||`) is
//!   evaluated; when it holds the breaker trips and the metrics are reset.
//! - **Tripped**: every request gets `responseCode` (503 by default) with
//!   its status text, for `fallbackDuration`.
//! - **Recovering**: for `recoveryDuration`, a share of the requests rising
//!   linearly from 0 goes through (oxy's ratio controller); the expression
//!   is still checked, and trips the breaker again if it holds. After that,
//!   back to standby.
//!
//! The state lives in the shared middleware state, keyed by this middleware
//! and its options: a snapshot that keeps them keeps a tripped breaker
//! tripped. The standby check is one atomic load; the other states take a
//! short lock, never across an await. Latency is measured to the response
//! head.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use sluice_proto::v1::{self, breaker_expr, breaker_metric};
use tokio::time::Instant;

use super::breaker_metrics::BreakerMetrics;
use super::{BuildContext, MiddlewareBuildError, Next, RequestContext, fingerprint};
use crate::body::{ProxyBody, status_response};

/// A built `circuitBreaker` middleware.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    expression: Expr,
    text: String,
    response: StatusCode,
    check_period: Duration,
    fallback_duration: Duration,
    recovery_duration: Duration,
    state: Arc<Breaker>,
}

/// A compiled breaker expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Compare {
        metric: Metric,
        operator: Operator,
        value: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    NetworkErrorRatio,
    ResponseCodeRatio {
        from: u32,
        to: u32,
        div_from: u32,
        div_to: u32,
    },
    LatencyAtQuantileMs(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Expr {
    fn compile(expr: &v1::BreakerExpr) -> Result<Self, MiddlewareBuildError> {
        let required = MiddlewareBuildError::Required("circuitBreaker.expression");
        Ok(match expr.kind.as_ref().ok_or(required)? {
            breaker_expr::Kind::All(list) => Self::All(Self::compile_list(list)?),
            breaker_expr::Kind::Any(list) => Self::Any(Self::compile_list(list)?),
            breaker_expr::Kind::Comparison(comparison) => {
                let metric = comparison
                    .metric
                    .as_ref()
                    .and_then(|metric| metric.kind.as_ref())
                    .ok_or(MiddlewareBuildError::Required("circuitBreaker.expression"))?;
                let metric = match metric {
                    breaker_metric::Kind::NetworkErrorRatio(_) => Metric::NetworkErrorRatio,
                    breaker_metric::Kind::ResponseCodeRatio(r) => Metric::ResponseCodeRatio {
                        from: r.from,
                        to: r.to,
                        div_from: r.div_from,
                        div_to: r.div_to,
                    },
                    breaker_metric::Kind::LatencyAtQuantileMs(q) => Metric::LatencyAtQuantileMs(*q),
                };
                let operator = match comparison.operator.as_str() {
                    "<" => Operator::Lt,
                    "<=" => Operator::Le,
                    ">" => Operator::Gt,
                    ">=" => Operator::Ge,
                    "==" => Operator::Eq,
                    "!=" => Operator::Ne,
                    other => {
                        return Err(MiddlewareBuildError::Invalid {
                            option: "circuitBreaker.expression",
                            value: other.to_owned(),
                            reason: "unknown operator",
                        });
                    }
                };
                Self::Compare {
                    metric,
                    operator,
                    value: comparison.value,
                }
            }
        })
    }

    fn compile_list(list: &v1::BreakerExprList) -> Result<Vec<Self>, MiddlewareBuildError> {
        list.exprs.iter().map(Self::compile).collect()
    }

    /// True when the expression holds over `metrics`.
    fn holds(&self, metrics: &BreakerMetrics) -> bool {
        match self {
            Self::All(all) => all.iter().all(|e| e.holds(metrics)),
            Self::Any(any) => any.iter().any(|e| e.holds(metrics)),
            Self::Compare {
                metric,
                operator,
                value,
            } => {
                let actual = match *metric {
                    Metric::NetworkErrorRatio => metrics.network_error_ratio(),
                    Metric::ResponseCodeRatio {
                        from,
                        to,
                        div_from,
                        div_to,
                    } => metrics.response_code_ratio(from, to, div_from, div_to),
                    Metric::LatencyAtQuantileMs(q) => metrics.latency_at_quantile_ms(q),
                };
                match operator {
                    Operator::Lt => actual < *value,
                    Operator::Le => actual <= *value,
                    Operator::Gt => actual > *value,
                    Operator::Ge => actual >= *value,
                    Operator::Eq => actual == *value,
                    Operator::Ne => actual != *value,
                }
            }
        }
    }
}

const STANDBY: u8 = 0;
const TRIPPED: u8 = 1;
const RECOVERING: u8 = 2;

/// The long-lived state of one breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    metrics: BreakerMetrics,
    epoch: Instant,
    /// `STANDBY`, `TRIPPED` or `RECOVERING`, for the lock-free fast path.
    state: AtomicU8,
    /// When the expression may next be checked, in nanoseconds since `epoch`.
    next_check: AtomicU64,
    transitions: Mutex<Transitions>,
}

/// What the non-standby states need, behind the lock.
#[derive(Debug, Default)]
struct Transitions {
    /// End of the tripped or recovering state, in nanoseconds since `epoch`.
    until: u64,
    /// Start of recovery.
    recovery_start: u64,
    allowed: u64,
    denied: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            metrics: BreakerMetrics::default(),
            epoch: Instant::now(),
            state: AtomicU8::new(STANDBY),
            next_check: AtomicU64::new(0),
            transitions: Mutex::new(Transitions::default()),
        }
    }
}

impl Breaker {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl CircuitBreaker {
    /// From the snapshot; the state comes from the shared state.
    pub(crate) fn new(
        config: &v1::CircuitBreaker,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        let expression = Expr::compile(
            config
                .expression
                .as_ref()
                .ok_or(MiddlewareBuildError::Required("circuitBreaker.expression"))?,
        )?;
        let response = match config.response_code {
            0 => StatusCode::SERVICE_UNAVAILABLE,
            code => u16::try_from(code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or(MiddlewareBuildError::Status {
                    option: "circuitBreaker.responseCode",
                    value: code,
                })?,
        };
        let millis = |ms: i64| Duration::from_millis(ms.max(0).unsigned_abs());
        let state = ctx.state("circuitBreaker", fingerprint(config), Breaker::default);
        Ok(Self {
            expression,
            text: config.expression_text.clone(),
            response,
            check_period: millis(config.check_period_ms),
            fallback_duration: millis(config.fallback_duration_ms),
            recovery_duration: millis(config.recovery_duration_ms),
            state,
        })
    }

    /// Serves `req` with `next` unless the breaker is open.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        if self.fallback() {
            return status_response(self.response);
        }
        let start = Instant::now();
        let response = next.run(req, ctx).await;
        self.state
            .metrics
            .record(response.status().as_u16(), start.elapsed());
        self.check(ctx.router);
        response
    }

    /// True when this request gets the fallback response.
    fn fallback(&self) -> bool {
        let breaker = &*self.state;
        if breaker.state.load(Ordering::Acquire) == STANDBY {
            return false;
        }
        let now = breaker.now();
        let mut transitions = breaker
            .transitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match breaker.state.load(Ordering::Acquire) {
            TRIPPED if now < transitions.until => return true,
            TRIPPED => {
                *transitions = Transitions {
                    until: now.saturating_add(nanos(self.recovery_duration)),
                    recovery_start: now,
                    allowed: 0,
                    denied: 0,
                };
                breaker.state.store(RECOVERING, Ordering::Release);
                tracing::info!(breaker = %self.text, "circuit breaker recovering");
            }
            RECOVERING => {}
            _ => return false,
        }
        if now > transitions.until {
            breaker.state.store(STANDBY, Ordering::Release);
            tracing::info!(breaker = %self.text, "circuit breaker back to standby");
            return false;
        }
        // oxy's ratio controller: let a request through when doing so keeps
        // the share of allowed requests under a target rising from 0 to 0.5.
        let elapsed = (now - transitions.recovery_start) as f64;
        let target = 0.5 * elapsed / nanos(self.recovery_duration).max(1) as f64;
        let allowed = (transitions.allowed + 1) as f64;
        let share = allowed / (allowed + transitions.denied as f64);
        if share < target {
            transitions.allowed += 1;
            false
        } else {
            transitions.denied += 1;
            true
        }
    }

    /// Evaluates the expression if a check period has passed, and trips the
    /// breaker when it holds.
    fn check(&self, router: &str) {
        let breaker = &*self.state;
        let now = breaker.now();
        let due = breaker.next_check.load(Ordering::Acquire);
        if now < due
            || breaker
                .next_check
                .compare_exchange(
                    due,
                    now.saturating_add(nanos(self.check_period)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return;
        }
        if breaker.state.load(Ordering::Acquire) == TRIPPED
            || !self.expression.holds(&breaker.metrics)
        {
            return;
        }
        let mut transitions = breaker
            .transitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        transitions.until = now.saturating_add(nanos(self.fallback_duration));
        breaker.state.store(TRIPPED, Ordering::Release);
        breaker.metrics.reset();
        tracing::warn!(router, breaker = %self.text, "circuit breaker tripped");
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, request, send_with, shared_state, text};
    use super::*;
    use sluice_proto::v1::middleware::Kind;
    use std::sync::atomic::AtomicU16;

    fn comparison(metric: breaker_metric::Kind, operator: &str, value: f64) -> v1::BreakerExpr {
        v1::BreakerExpr {
            kind: Some(breaker_expr::Kind::Comparison(v1::BreakerComparison {
                metric: Some(v1::BreakerMetric { kind: Some(metric) }),
                operator: operator.into(),
                value,
            })),
        }
    }

    fn network_errors_over(value: f64) -> v1::BreakerExpr {
        comparison(
            breaker_metric::Kind::NetworkErrorRatio(v1::BreakerNetworkErrorRatio {}),
            ">",
            value,
        )
    }

    fn server_errors_over(value: f64) -> v1::BreakerExpr {
        comparison(
            breaker_metric::Kind::ResponseCodeRatio(v1::BreakerResponseCodeRatio {
                from: 500,
                to: 600,
                div_from: 0,
                div_to: 600,
            }),
            ">",
            value,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn expressions_evaluate_over_the_metrics() {
        let metrics = BreakerMetrics::default();
        for status in [200, 200, 200, 502, 500] {
            metrics.record(status, Duration::from_millis(80));
        }
        let compile = |expr: v1::BreakerExpr| Expr::compile(&expr).unwrap();
        assert!(compile(network_errors_over(0.1)).holds(&metrics));
        assert!(!compile(network_errors_over(0.2)).holds(&metrics));
        assert!(compile(server_errors_over(0.39)).holds(&metrics));
        let latency = |op: &str, value| {
            compile(comparison(
                breaker_metric::Kind::LatencyAtQuantileMs(50.0),
                op,
                value,
            ))
        };
        assert!(latency(">", 79.0).holds(&metrics));
        assert!(latency("<", 100.0).holds(&metrics));
        assert!(!latency(">=", 100.0).holds(&metrics));
        let both = v1::BreakerExpr {
            kind: Some(breaker_expr::Kind::All(v1::BreakerExprList {
                exprs: vec![network_errors_over(0.1), server_errors_over(0.5)],
            })),
        };
        assert!(!compile(both.clone()).holds(&metrics));
        let either = v1::BreakerExpr {
            kind: Some(breaker_expr::Kind::Any(v1::BreakerExprList {
                exprs: match both.kind {
                    Some(breaker_expr::Kind::All(list)) => list.exprs,
                    _ => unreachable!(),
                },
            })),
        };
        assert!(compile(either).holds(&metrics));
        let bad = comparison(
            breaker_metric::Kind::NetworkErrorRatio(v1::BreakerNetworkErrorRatio {}),
            "=~",
            1.0,
        );
        assert_eq!(
            Expr::compile(&bad).unwrap_err().to_string(),
            "circuitBreaker.expression `=~`: unknown operator"
        );
    }

    fn breaker() -> v1::Middleware {
        config(
            "cb",
            Kind::CircuitBreaker(v1::CircuitBreaker {
                expression_text: "ResponseCodeRatio(500, 600, 0, 600) > 0.5".into(),
                expression: Some(server_errors_over(0.5)),
                check_period_ms: 100,
                fallback_duration_ms: 10_000,
                recovery_duration_ms: 10_000,
                response_code: 0,
            }),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn trips_falls_back_recovers_and_returns_to_standby() {
        let shared = shared_state();
        let status = Arc::new(AtomicU16::new(500));
        let answer = status.clone();
        let backend = Backend::answering(move |_| {
            status_response(StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap())
        });
        let middleware = breaker();
        let send = || {
            send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                request(Request::get("/").body(()).unwrap()),
            )
        };
        // The first response is checked at once: all errors, the breaker trips.
        assert_eq!(send().await.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let fallback = send().await;
        assert_eq!(fallback.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(text(fallback).await, "Service Unavailable");

        // The backend heals; the breaker stays open for fallbackDuration,
        // across rebuilds (each `send` builds the chain again).
        status.store(200, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(send().await.status(), StatusCode::SERVICE_UNAVAILABLE);

        // Recovery lets a growing share through.
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut through = 0;
        for _ in 0..100 {
            if send().await.status() == StatusCode::OK {
                through += 1;
            }
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        // Halfway through recovery, the share let through has risen to 0.25.
        assert!((20..=30).contains(&through), "{through}");
        tokio::time::advance(Duration::from_secs(6)).await;
        for _ in 0..10 {
            assert_eq!(send().await.status(), StatusCode::OK);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_during_recovery_trip_it_again() {
        let shared = shared_state();
        let backend = Backend::answering(|_| status_response(StatusCode::BAD_GATEWAY));
        let middleware = breaker();
        let send = || {
            send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                request(Request::get("/").body(()).unwrap()),
            )
        };
        assert_eq!(send().await.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(send().await.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::advance(Duration::from_secs(15)).await;
        // As recovery goes on, a request reaches the failing backend...
        let mut reached = false;
        for _ in 0..20 {
            if send().await.status() == StatusCode::BAD_GATEWAY {
                reached = true;
                break;
            }
            tokio::time::advance(Duration::from_millis(500)).await;
        }
        assert!(reached);
        // ...and the next check trips the breaker again, for a full fallback.
        tokio::time::advance(Duration::from_millis(200)).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(send().await.status());
        }
        assert!(
            statuses
                .iter()
                .skip(1)
                .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
            "{statuses:?}"
        );
    }
}
