//! `retry`: sends a request again, up to `attempts` times in all, when the
//! server could not be reached, as Traefik's middleware does.
//!
//! - Only connection failures are retried (refused, unreachable, dial
//!   timeout): the forwarder marks them with [`ConnectFailed`]. A response
//!   from a backend (a 502 included), a failure after the request was sent,
//!   and a 503 because no server is available are final. Nothing has
//!   reached the client before the last attempt's response, so a retry is
//!   never visible to it.
//! - Each attempt runs the rest of the chain, so the load balancer picks a
//!   server again: a retry goes around one dead backend.
//! - Waits between attempts follow Traefik's exponential backoff: the first
//!   around `initialInterval`, each next one multiplied by
//!   `2^(1/(attempts-1))` (so the last is about twice the first), each
//!   randomized by ±50 %; none when `initialInterval` is 0.
//! - The request body is buffered to be sent again, up to 1 MiB; a larger
//!   body is streamed to a single attempt.

use std::time::Duration;

use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{Buffered, ProxyBody, Read, read_limited, status_response};
use crate::forward::ConnectFailed;

/// Largest request body kept to be sent again.
const REPLAY_LIMIT: u64 = 1 << 20;

/// A built `retry` middleware.
#[derive(Debug)]
pub(crate) struct Retry {
    attempts: u32,
    initial_interval: Duration,
}

impl Retry {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::Retry) -> Result<Self, MiddlewareBuildError> {
        if config.attempts < 1 {
            return Err(MiddlewareBuildError::Invalid {
                option: "retry.attempts",
                value: config.attempts.to_string(),
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            attempts: config.attempts,
            initial_interval: Duration::from_millis(
                config.initial_interval_ms.max(0).unsigned_abs(),
            ),
        })
    }

    /// Serves `req` with `next`, again while the server cannot be reached.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        if self.attempts == 1 {
            return next.run(req, ctx).await;
        }
        let (parts, body) = req.into_parts();
        let body = if body.is_end_stream() {
            Buffered::default()
        } else {
            match read_limited(body, REPLAY_LIMIT).await {
                Read::Whole(body) => body,
                Read::TooLarge(body) => {
                    return next.run(Request::from_parts(parts, body), ctx).await;
                }
                Read::Failed(error) => {
                    tracing::debug!(router = ctx.router, %error, "request body failed");
                    return status_response(StatusCode::BAD_REQUEST);
                }
            }
        };
        let mut backoff = Backoff::new(self.initial_interval, self.attempts);
        let mut attempt = 1;
        loop {
            let response = next.run(copy(&parts, body.body()), ctx).await;
            if attempt == self.attempts || response.extensions().get::<ConnectFailed>().is_none() {
                return response;
            }
            attempt += 1;
            let wait = backoff.next_wait(rand::random());
            tracing::debug!(
                router = ctx.router,
                attempt,
                ?wait,
                "server unreachable, retrying"
            );
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A request with the head of `parts` (extensions included) and `body`.
fn copy(parts: &Parts, body: ProxyBody) -> Request<ProxyBody> {
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    *req.extensions_mut() = parts.extensions.clone();
    req
}

/// Traefik's backoff (`cenkalti/backoff`'s `ExponentialBackOff` with its
/// defaults but the multiplier): intervals grow from `initial` by
/// `2^(1/(attempts-1))` each, capped at a minute, randomized by ±50 %.
#[derive(Debug, Clone)]
struct Backoff {
    current: Duration,
    multiplier: f64,
}

impl Backoff {
    /// Randomization factor of the library's defaults.
    const RANDOMIZATION: f64 = 0.5;
    /// Longest interval of the library's defaults.
    const MAX_INTERVAL: Duration = Duration::from_secs(60);

    fn new(initial: Duration, attempts: u32) -> Self {
        let multiplier = if attempts < 2 {
            1.0
        } else {
            2f64.powf(1.0 / f64::from(attempts - 1))
        };
        Self {
            current: initial,
            multiplier,
        }
    }

    /// The next wait, with `random` in `[0, 1)` picking it in the ±50 %
    /// range around the current interval.
    fn next_wait(&mut self, random: f64) -> Duration {
        let current = self.current.as_secs_f64();
        let delta = Self::RANDOMIZATION * current;
        let low = current - delta;
        let wait = Duration::from_secs_f64(low + random * 2.0 * delta);
        self.current = Duration::from_secs_f64(current * self.multiplier).min(Self::MAX_INTERVAL);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, request, send, text};
    use super::*;
    use sluice_proto::v1::middleware::Kind;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn retry(attempts: u32, initial_interval_ms: i64) -> v1::Middleware {
        config(
            "retry",
            Kind::Retry(v1::Retry {
                attempts,
                initial_interval_ms,
            }),
        )
    }

    /// A backend whose first `failures` answers are connection failures.
    fn flaky(failures: usize, calls: Arc<AtomicUsize>, status: StatusCode) -> Backend {
        Backend::answering(move |_| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let mut response = status_response(status);
            if call < failures {
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response.extensions_mut().insert(ConnectFailed);
            }
            response
        })
    }

    #[test]
    fn backoff_grows_to_twice_the_first_interval() {
        let mut backoff = Backoff::new(Duration::from_millis(100), 5);
        // The middle of the random range is the interval itself.
        let waits: Vec<f64> = (0..5)
            .map(|_| (backoff.next_wait(0.5).as_secs_f64() * 1000.0).round())
            .collect();
        assert_eq!(waits, [100.0, 119.0, 141.0, 168.0, 200.0]);
        let mut backoff = Backoff::new(Duration::from_millis(100), 3);
        assert_eq!(backoff.next_wait(0.0), Duration::from_millis(50));
        assert_eq!(backoff.next_wait(0.999_999).as_millis(), 212);
        let mut capped = Backoff::new(Duration::from_secs(50), 2);
        capped.next_wait(0.5);
        assert_eq!(capped.current, Backoff::MAX_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn connection_failures_are_retried_up_to_the_attempts() {
        let calls = Arc::new(AtomicUsize::new(0));
        let backend = flaky(2, calls.clone(), StatusCode::OK);
        let req = request(Request::get("/").body(()).unwrap());
        let response = send(&[retry(3, 100)], &backend, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = Arc::new(AtomicUsize::new(0));
        let backend = flaky(10, calls.clone(), StatusCode::OK);
        let req = request(Request::get("/").body(()).unwrap());
        let response = send(&[retry(4, 0)], &backend, req).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn backend_answers_are_final() {
        for status in [StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE] {
            let calls = Arc::new(AtomicUsize::new(0));
            let backend = flaky(0, calls.clone(), status);
            let req = request(Request::get("/").body(()).unwrap());
            let response = send(&[retry(3, 0)], &backend, req).await;
            assert_eq!(response.status(), status);
            assert_eq!(text(response).await, status.canonical_reason().unwrap());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn bodies_are_replayed_up_to_the_limit() {
        let calls = Arc::new(AtomicUsize::new(0));
        let backend = flaky(1, calls.clone(), StatusCode::OK);
        let req = Request::post("/").body(ProxyBody::full("payload")).unwrap();
        let response = send(&[retry(2, 0)], &backend, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = Arc::new(AtomicUsize::new(0));
        let backend = flaky(1, calls.clone(), StatusCode::OK);
        let big = vec![b'x'; REPLAY_LIMIT as usize + 1];
        let req = Request::post("/").body(ProxyBody::full(big)).unwrap();
        let response = send(&[retry(2, 0)], &backend, req).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn replayed_bodies_keep_their_bytes_and_trailers() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-t", "1".parse().unwrap());
        let body = ProxyBody::prepend(
            http_body::Frame::data(bytes::Bytes::from_static(b"abc")),
            ProxyBody::boxed(http_body_util::StreamBody::new(futures::stream::iter([
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                    bytes::Bytes::from_static(b"def"),
                )),
                Ok(http_body::Frame::trailers(trailers)),
            ]))),
        );
        let Read::Whole(buffered) = read_limited(body, 10).await else {
            panic!("not read whole");
        };
        assert_eq!(buffered.data, "abcdef");
        assert_eq!(buffered.trailers.as_ref().unwrap()["x-t"], "1");
        for _ in 0..2 {
            let collected = http_body_util::BodyExt::collect(buffered.body())
                .await
                .unwrap();
            assert_eq!(collected.trailers().unwrap()["x-t"], "1");
            assert_eq!(collected.to_bytes(), "abcdef");
        }
    }
}
