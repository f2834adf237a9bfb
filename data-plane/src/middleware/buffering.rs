//! `buffering`: reads the whole request before forwarding it, and the whole
//! response before sending it, as Traefik's (oxy's `buffer`).
//!
//! - A request body over `maxRequestBodyBytes` (when set) is answered with
//!   `413 Request Entity Too Large` before anything reaches the backend.
//! - A response body over `maxResponseBodyBytes` (when set) is replaced by
//!   `500 Internal Server Error`.
//! - Bodies are held in memory. Traefik spills what exceeds
//!   `memRequestBodyBytes` / `memResponseBodyBytes` to a temporary file;
//!   this proxy keeps bodies up to the `max` in memory instead, and when no
//!   `max` is set it buffers up to the `mem` size and streams the rest, so
//!   one large body cannot take the proxy's memory.
//! - `retryExpression` is not supported: the build fails with a clear
//!   error (the `retry` middleware covers connection failures).

use http::{Request, Response, StatusCode};
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, Read, read_limited, status_response, text_response};

/// A built `buffering` middleware.
#[derive(Debug)]
pub(crate) struct Buffering {
    request: Limits,
    response: Limits,
}

/// How much of one direction is buffered.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Larger bodies are refused.
    max: Option<u64>,
    /// Without `max`, larger bodies are streamed past this much.
    memory: u64,
}

impl Limits {
    fn new(max: i64, memory: i64) -> Self {
        Self {
            max: u64::try_from(max).ok().filter(|max| *max > 0),
            memory: u64::try_from(memory).unwrap_or(0),
        }
    }

    fn read_limit(self) -> u64 {
        self.max.unwrap_or(self.memory)
    }
}

impl Buffering {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::Buffering) -> Result<Self, MiddlewareBuildError> {
        if !config.retry_expression.is_empty() {
            return Err(MiddlewareBuildError::UnsupportedOption(
                "buffering.retryExpression",
            ));
        }
        Ok(Self {
            request: Limits::new(config.max_request_body_bytes, config.mem_request_body_bytes),
            response: Limits::new(
                config.max_response_body_bytes,
                config.mem_response_body_bytes,
            ),
        })
    }

    /// Buffers the request, calls `next`, buffers its response.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let (parts, body) = req.into_parts();
        let body = match read_limited(body, self.request.read_limit()).await {
            Read::Whole(buffered) => buffered.body(),
            Read::TooLarge(_) if self.request.max.is_some() => {
                tracing::debug!(router = ctx.router, "request body over maxRequestBodyBytes");
                return text_response(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
            }
            Read::TooLarge(body) => body,
            Read::Failed(error) => {
                tracing::debug!(router = ctx.router, %error, "request body failed");
                return status_response(StatusCode::BAD_REQUEST);
            }
        };
        let response = next.run(Request::from_parts(parts, body), ctx).await;
        let (parts, body) = response.into_parts();
        let body = match read_limited(body, self.response.read_limit()).await {
            Read::Whole(buffered) => buffered.body(),
            Read::TooLarge(_) if self.response.max.is_some() => {
                tracing::debug!(
                    router = ctx.router,
                    "response body over maxResponseBodyBytes"
                );
                return status_response(StatusCode::INTERNAL_SERVER_ERROR);
            }
            Read::TooLarge(body) => body,
            Read::Failed(error) => {
                tracing::debug!(router = ctx.router, %error, "response body failed");
                return status_response(StatusCode::BAD_GATEWAY);
            }
        };
        Response::from_parts(parts, body)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, build_error, config, send, text};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn buffering(max_request: i64, max_response: i64) -> v1::Middleware {
        config(
            "buf",
            Kind::Buffering(v1::Buffering {
                max_request_body_bytes: max_request,
                mem_request_body_bytes: 1 << 20,
                max_response_body_bytes: max_response,
                mem_response_body_bytes: 1 << 20,
                retry_expression: String::new(),
            }),
        )
    }

    fn post(body: &'static str) -> Request<ProxyBody> {
        Request::post("/").body(ProxyBody::full(body)).unwrap()
    }

    #[tokio::test]
    async fn request_bodies_over_the_max_get_413() {
        let backend = Backend::new();
        let response = send(&[buffering(5, 0)], &backend, post("123456")).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(text(response).await, "Request Entity Too Large");
        assert!(backend.seen().is_none());

        let response = send(&[buffering(6, 0)], &backend, post("123456")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(backend.seen().is_some());
    }

    #[tokio::test]
    async fn response_bodies_over_the_max_get_500() {
        let backend = Backend::answering(|_| Response::new(ProxyBody::full("0123456789")));
        let response = send(&[buffering(0, 9)], &backend, post("")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(text(response).await, "Internal Server Error");
        let response = send(&[buffering(0, 10)], &backend, post("")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "0123456789");
    }

    #[tokio::test]
    async fn without_a_max_large_bodies_stream_through() {
        let backend = Backend::answering(|_| Response::new(ProxyBody::full("0123456789")));
        let mut options = buffering(0, 0);
        if let Some(Kind::Buffering(b)) = &mut options.kind {
            b.mem_request_body_bytes = 2;
            b.mem_response_body_bytes = 2;
        }
        let response = send(&[options], &backend, post("123456")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "0123456789");
    }

    #[test]
    fn retry_expressions_are_refused_by_name() {
        let mut options = buffering(0, 0);
        if let Some(Kind::Buffering(b)) = &mut options.kind {
            b.retry_expression = "IsNetworkError() && Attempts() < 2".into();
        }
        assert_eq!(
            build_error(options),
            "middleware `buf@test` (buffering): buffering.retryExpression: not supported by this proxy version"
        );
    }
}
