//! `contentType`: turns on content type detection for responses that have
//! none, as Traefik v3's middleware re-enables Go's auto-detection (Traefik
//! itself, like this proxy, never adds a `Content-Type` the backend did not
//! send). The deprecated `autoDetect: false` turns the middleware into a
//! pass-through, as in Traefik.
//!
//! Detection follows Go's `net/http`: only a response with a body, no
//! `Content-Type` and no `Content-Encoding` gets one, detected from its
//! first chunk ([`sniff`](super::sniff)); that chunk is then sent on, not
//! copied. A body that ends before any data gets no `Content-Type`.

use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use sluice_proto::v1;

use super::sniff::detect;
use super::{Next, RequestContext};
use crate::body::ProxyBody;

/// A built `contentType` middleware.
#[derive(Debug)]
pub(crate) struct ContentType {
    auto_detect: bool,
}

impl ContentType {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::ContentType) -> Self {
        Self {
            auto_detect: config.auto_detect,
        }
    }

    /// Calls `next` and gives its response a detected content type.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let head = req.method() == Method::HEAD;
        let response = next.run(req, ctx).await;
        if !self.auto_detect || head || !needs_detection(&response) {
            return response;
        }
        let (mut parts, mut body) = response.into_parts();
        // Data frames until the first one with bytes; a trailers frame first
        // means an empty body.
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    let sniffed = frame
                        .data_ref()
                        .filter(|data| !data.is_empty())
                        .map(|data| detect(data));
                    if let Some(content_type) = sniffed {
                        parts
                            .headers
                            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                    }
                    if sniffed.is_some() || frame.is_trailers() {
                        return Response::from_parts(parts, ProxyBody::prepend(frame, body));
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(router = ctx.router, %error, "response body failed before its first byte");
                    return Response::from_parts(parts, ProxyBody::empty());
                }
                None => return Response::from_parts(parts, ProxyBody::empty()),
            }
        }
    }
}

/// True for a response that may have a body and has no type or encoding.
fn needs_detection(response: &Response<ProxyBody>) -> bool {
    let status = response.status();
    let body_allowed = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    body_allowed
        && !response.headers().contains_key(CONTENT_TYPE)
        && !response.headers().contains_key(CONTENT_ENCODING)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, headers, request, send, text};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn content_type(auto_detect: bool) -> v1::Middleware {
        config("ct", Kind::ContentType(v1::ContentType { auto_detect }))
    }

    fn backend(body: &'static str, pairs: &'static [(&'static str, &'static str)]) -> Backend {
        Backend::answering(move |_| {
            let mut response = Response::builder();
            for (name, value) in pairs {
                response = response.header(*name, *value);
            }
            response.body(ProxyBody::full(body)).unwrap()
        })
    }

    async fn get(middleware: v1::Middleware, backend: &Backend) -> (Option<String>, String) {
        let response = send(
            &[middleware],
            backend,
            request(Request::get("/").body(()).unwrap()),
        )
        .await;
        let content_type = headers(&response).remove("content-type");
        (content_type, text(response).await)
    }

    #[tokio::test]
    async fn detects_a_missing_type_and_keeps_the_body() {
        assert_eq!(
            get(
                content_type(true),
                &backend("<html><body>hi</body></html>", &[])
            )
            .await,
            (
                Some("text/html; charset=utf-8".into()),
                "<html><body>hi</body></html>".into()
            )
        );
        assert_eq!(
            get(content_type(true), &backend("plain words", &[]))
                .await
                .0
                .as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn leaves_typed_encoded_and_empty_responses() {
        assert_eq!(
            get(
                content_type(true),
                &backend("<html>", &[("content-type", "application/json")])
            )
            .await
            .0
            .as_deref(),
            Some("application/json")
        );
        assert_eq!(
            get(
                content_type(true),
                &backend("<html>", &[("content-encoding", "gzip")])
            )
            .await
            .0,
            None
        );
        assert_eq!(
            get(content_type(true), &backend("", &[])).await,
            (None, String::new())
        );
    }

    #[tokio::test]
    async fn auto_detect_false_is_a_pass_through() {
        assert_eq!(
            get(content_type(false), &backend("<html>", &[])).await,
            (None, "<html>".into())
        );
    }
}
