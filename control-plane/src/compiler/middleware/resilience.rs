//! `retry`, `circuitBreaker` and `buffering`: what happens when a backend
//! fails or sends too much.

use sluice_proto::v1 as pb;

use super::{MiddlewareError, breaker_expr, status_code};
use crate::dynamic::{BufferingConfig, CircuitBreakerConfig, Duration, RetryConfig};

/// First backoff interval of `retry` when none is set.
const DEFAULT_RETRY_INTERVAL_MS: i64 = 100;

pub(super) fn retry(config: &RetryConfig) -> Result<pb::Retry, MiddlewareError> {
    let attempts = u32::try_from(config.attempts)
        .ok()
        .filter(|attempts| *attempts >= 1)
        .ok_or_else(|| {
            MiddlewareError::value("retry.attempts", config.attempts, "must be at least 1")
        })?;
    Ok(pb::Retry {
        attempts,
        initial_interval_ms: config
            .initial_interval
            .map_or(DEFAULT_RETRY_INTERVAL_MS, |interval| interval.as_millis()),
    })
}

pub(super) fn circuit_breaker(
    config: &CircuitBreakerConfig,
) -> Result<pb::CircuitBreaker, MiddlewareError> {
    if config.expression.trim().is_empty() {
        return Err(MiddlewareError::option(
            "circuitBreaker.expression",
            "required",
        ));
    }
    let expression =
        breaker_expr::parse(&config.expression).map_err(|error| MiddlewareError::Expression {
            option: "circuitBreaker.expression".to_owned(),
            expression: config.expression.clone(),
            column: error.column,
            reason: error.reason,
        })?;
    let millis = |duration: Option<Duration>, default: i64| {
        duration.map_or(default, |duration| duration.as_millis())
    };
    Ok(pb::CircuitBreaker {
        expression_text: config.expression.clone(),
        expression: Some(expression),
        check_period_ms: millis(config.check_period, 100),
        fallback_duration_ms: millis(config.fallback_duration, 10_000),
        recovery_duration_ms: millis(config.recovery_duration, 10_000),
        response_code: status_code("circuitBreaker.responseCode", config.response_code, 503)?,
    })
}

pub(super) fn buffering(config: &BufferingConfig) -> Result<pb::Buffering, MiddlewareError> {
    const MIB: i64 = 1 << 20;
    let size = |option: &str, bytes: i64| {
        if bytes < 0 {
            Err(MiddlewareError::value(
                format!("buffering.{option}"),
                bytes,
                "must not be negative",
            ))
        } else {
            Ok(bytes)
        }
    };
    Ok(pb::Buffering {
        max_request_body_bytes: size("maxRequestBodyBytes", config.max_request_body_bytes)?,
        mem_request_body_bytes: size(
            "memRequestBodyBytes",
            config.mem_request_body_bytes.unwrap_or(MIB),
        )?,
        max_response_body_bytes: size("maxResponseBodyBytes", config.max_response_body_bytes)?,
        mem_response_body_bytes: size(
            "memResponseBodyBytes",
            config.mem_response_body_bytes.unwrap_or(MIB),
        )?,
        retry_expression: config.retry_expression.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_yaml, error_yaml};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    #[test]
    fn retry_needs_an_attempt_and_defaults_its_interval() {
        assert_eq!(
            compile_yaml("retry: {attempts: 4}").unwrap(),
            Kind::Retry(pb::Retry {
                attempts: 4,
                initial_interval_ms: 100,
            })
        );
        assert_eq!(
            compile_yaml("retry: {attempts: 1, initialInterval: 1s}").unwrap(),
            Kind::Retry(pb::Retry {
                attempts: 1,
                initial_interval_ms: 1000,
            })
        );
        assert_eq!(
            error_yaml("retry: {}"),
            "retry.attempts `0`: must be at least 1"
        );
        assert_eq!(
            error_yaml("retry: {attempts: -2}"),
            "retry.attempts `-2`: must be at least 1"
        );
    }

    #[test]
    fn circuit_breaker_parses_its_expression_and_fills_defaults() {
        let Kind::CircuitBreaker(breaker) =
            compile_yaml("circuitBreaker: {expression: 'NetworkErrorRatio() > 0.30'}").unwrap()
        else {
            panic!("not a circuit breaker");
        };
        assert_eq!(breaker.expression_text, "NetworkErrorRatio() > 0.30");
        assert_eq!(
            breaker.expression.unwrap().kind,
            Some(pb::breaker_expr::Kind::Comparison(pb::BreakerComparison {
                metric: Some(pb::BreakerMetric {
                    kind: Some(pb::breaker_metric::Kind::NetworkErrorRatio(
                        pb::BreakerNetworkErrorRatio {}
                    )),
                }),
                operator: ">".to_owned(),
                value: 0.3,
            }))
        );
        assert_eq!(
            (
                breaker.check_period_ms,
                breaker.fallback_duration_ms,
                breaker.recovery_duration_ms,
                breaker.response_code
            ),
            (100, 10_000, 10_000, 503)
        );

        let Kind::CircuitBreaker(breaker) = compile_yaml(
            "circuitBreaker: {expression: 'LatencyAtQuantileMS(50.0) > 100', checkPeriod: 1s, \
             fallbackDuration: 30s, recoveryDuration: 1m, responseCode: 502}",
        )
        .unwrap() else {
            panic!("not a circuit breaker");
        };
        assert_eq!(
            (
                breaker.check_period_ms,
                breaker.fallback_duration_ms,
                breaker.recovery_duration_ms,
                breaker.response_code
            ),
            (1000, 30_000, 60_000, 502)
        );

        assert_eq!(
            error_yaml("circuitBreaker: {expression: 'NetworkErrorRatio() >'}"),
            "circuitBreaker.expression `NetworkErrorRatio() >`: column 22: \
             expected a number, found end of expression"
        );
        assert_eq!(
            error_yaml("circuitBreaker: {}"),
            "circuitBreaker.expression: required"
        );
        assert_eq!(
            error_yaml(
                "circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', responseCode: 99}"
            ),
            "circuitBreaker.responseCode `99`: not an HTTP status code (100 to 599)"
        );
    }

    #[test]
    fn buffering_sizes_are_non_negative_with_memory_defaults() {
        assert_eq!(
            compile_yaml(
                "buffering: {maxRequestBodyBytes: 2000000, maxResponseBodyBytes: 0, \
                 memResponseBodyBytes: 4096, retryExpression: 'IsNetworkError() && Attempts() < 2'}"
            )
            .unwrap(),
            Kind::Buffering(pb::Buffering {
                max_request_body_bytes: 2_000_000,
                mem_request_body_bytes: 1 << 20,
                max_response_body_bytes: 0,
                mem_response_body_bytes: 4096,
                retry_expression: "IsNetworkError() && Attempts() < 2".to_owned(),
            })
        );
        assert_eq!(
            error_yaml("buffering: {memRequestBodyBytes: -5}"),
            "buffering.memRequestBodyBytes `-5`: must not be negative"
        );
        assert_eq!(
            error_yaml("buffering: {maxResponseBodyBytes: -1}"),
            "buffering.maxResponseBodyBytes `-1`: must not be negative"
        );
    }
}
