//! `grpcWeb`: serves gRPC-Web clients (browsers) from a gRPC backend, as
//! Traefik's middleware (improbable-eng's `grpcweb` wrapper) does.
//!
//! - A `POST` with `Content-Type: application/grpc-web...` goes to the
//!   backend as gRPC: the content type becomes `application/grpc...`,
//!   `Content-Length` is dropped, `TE: trailers` is set, and a
//!   `-text` body is base64-decoded on the way. The backend must be
//!   reachable over HTTP/2 (an `h2c://` server).
//! - Its response comes back as gRPC-Web: the content type turned back,
//!   `Access-Control-Expose-Headers` listing the response headers plus
//!   `grpc-status` and `grpc-message`, and the HTTP/2 trailers sent as the
//!   final gRPC-Web frame (flag `0x80`, then `name: value\r\n` lines);
//!   base64-encoded, frame by frame, for `-text`.
//! - A CORS preflight (`OPTIONS` asking for the `x-grpc-web` header) from
//!   an origin in `allowOrigins` (`*` allows any) is answered by the
//!   middleware: the origin echoed, the requested method and headers
//!   allowed, credentials allowed, a 10-minute max age.
//! - Anything else goes to `next` untouched.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, CONTENT_TYPE,
    ORIGIN, TE, TRAILER, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use sluice_proto::v1;

use super::{Next, RequestContext};
use crate::body::{BoxError, ProxyBody};
use crate::headers::canonical_name;

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";

/// A built `grpcWeb` middleware.
#[derive(Debug)]
pub(crate) struct GrpcWeb {
    allow_origins: Vec<String>,
}

impl GrpcWeb {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::GrpcWeb) -> Self {
        Self {
            allow_origins: config.allow_origins.clone(),
        }
    }

    /// Translates gRPC-Web requests, answers their preflights, passes the
    /// rest to `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if req.method() == Method::POST && content_type.starts_with(GRPC_WEB) {
            let text = content_type.starts_with(GRPC_WEB_TEXT);
            let prefix = if text { GRPC_WEB_TEXT } else { GRPC_WEB };
            let grpc_type = content_type.replacen(prefix, GRPC, 1);
            let headers = req.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&grpc_type) {
                headers.insert(CONTENT_TYPE, value);
            }
            headers.remove(CONTENT_LENGTH);
            headers.insert(TE, HeaderValue::from_static("trailers"));
            *req.version_mut() = Version::HTTP_2;
            if text {
                req = req.map(|body| ProxyBody::boxed(Base64Decode::new(body)));
            }
            let response = next.run(req, ctx).await;
            return web_response(response, text);
        }
        if req.method() == Method::OPTIONS && asks_for_grpc_web(req.headers()) {
            return self.preflight(req.headers());
        }
        next.run(req, ctx).await
    }

    fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }

    /// rs/cors's preflight answer, as the grpcweb wrapper configures it.
    fn preflight(&self, headers: &HeaderMap) -> Response<ProxyBody> {
        let mut response = Response::new(ProxyBody::empty());
        let out = response.headers_mut();
        for vary in [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            out.append(VARY, HeaderValue::from_static(vary));
        }
        let origin = headers
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let method = headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_uppercase();
        if origin.is_empty()
            || !self.allows(origin)
            || !matches!(method.as_str(), "GET" | "POST" | "HEAD")
        {
            return response;
        }
        let requested: Vec<String> = headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(canonical_name)
            .collect();
        let mut set = |name, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                out.insert(name, value);
            }
        };
        set(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        set(ACCESS_CONTROL_ALLOW_METHODS, &method);
        if !requested.is_empty() {
            set(ACCESS_CONTROL_ALLOW_HEADERS, &requested.join(", "));
        }
        set(ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        set(ACCESS_CONTROL_MAX_AGE, "600");
        *response.status_mut() = StatusCode::OK;
        response
    }
}

/// True for a preflight that asks to send the `x-grpc-web` header.
fn asks_for_grpc_web(headers: &HeaderMap) -> bool {
    headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("x-grpc-web"))
}

/// The gRPC response as gRPC-Web.
fn web_response(response: Response<ProxyBody>, text: bool) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    let headers = &mut parts.headers;
    headers.remove(TRAILER);
    headers.remove(CONTENT_LENGTH);
    if let Some(grpc_type) = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.starts_with(GRPC))
    {
        let web = if text { GRPC_WEB_TEXT } else { GRPC_WEB };
        if let Ok(value) = HeaderValue::from_str(&grpc_type.replacen(GRPC, web, 1)) {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    let mut exposed: Vec<String> = headers
        .keys()
        .map(|name| canonical_name(name.as_str()))
        .collect();
    exposed.dedup();
    exposed.extend(["grpc-status".to_owned(), "grpc-message".to_owned()]);
    if let Ok(value) = HeaderValue::from_str(&exposed.join(", ")) {
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
    let body = WebBody {
        inner: body,
        text,
        done: false,
    };
    Response::from_parts(parts, ProxyBody::boxed(body))
}

/// A gRPC response body as gRPC-Web: data as is, trailers as the last
/// frame (an empty one if the backend sent none).
struct WebBody {
    inner: ProxyBody,
    text: bool,
    done: bool,
}

impl WebBody {
    fn encode(&self, bytes: Bytes) -> Bytes {
        if self.text {
            Bytes::from(STANDARD.encode(&bytes))
        } else {
            bytes
        }
    }
}

/// The gRPC-Web frame carrying `trailers`.
fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut lines = Vec::new();
    for (name, value) in trailers {
        lines.extend_from_slice(name.as_str().as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value.as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + lines.len());
    frame.put_u8(0x80);
    frame.put_u32(u32::try_from(lines.len()).unwrap_or(u32::MAX));
    frame.extend_from_slice(&lines);
    frame.freeze()
}

impl Body for WebBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let trailers = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(this.encode(data))))),
                Err(frame) => frame.into_trailers().unwrap_or_default(),
            },
            Poll::Ready(None) => HeaderMap::new(),
        };
        this.done = true;
        let frame = this.encode(trailer_frame(&trailers));
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A base64 (`-text`) request body, decoded as it streams.
struct Base64Decode {
    inner: ProxyBody,
    /// Characters of an incomplete quantum.
    pending: Vec<u8>,
}

impl Base64Decode {
    fn new(inner: ProxyBody) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }
}

impl Body for Base64Decode {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.pending
                            .extend(data.iter().filter(|b| !b.is_ascii_whitespace()));
                        let whole = this.pending.len() / 4 * 4;
                        if whole == 0 {
                            continue;
                        }
                        let rest = this.pending.split_off(whole);
                        let quanta = std::mem::replace(&mut this.pending, rest);
                        return Poll::Ready(Some(
                            STANDARD
                                .decode(quanta)
                                .map(|bytes| Frame::data(Bytes::from(bytes)))
                                .map_err(BoxError::from),
                        ));
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) if this.pending.is_empty() => return Poll::Ready(None),
                Poll::Ready(None) => {
                    return Poll::Ready(Some(Err("truncated base64 request body".into())));
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, headers, request, send};
    use super::*;
    use http_body_util::BodyExt;
    use sluice_proto::v1::middleware::Kind;

    fn grpc_web(origins: &[&str]) -> v1::Middleware {
        config(
            "gw",
            Kind::GrpcWeb(v1::GrpcWeb {
                allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            }),
        )
    }

    /// A gRPC backend: answers a message and `grpc-status: 0` as trailers.
    fn grpc_backend() -> Backend {
        Backend::answering(|parts| {
            assert_eq!(parts.headers["content-type"], "application/grpc+proto");
            assert_eq!(parts.headers["te"], "trailers");
            assert!(!parts.headers.contains_key("content-length"));
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            trailers.insert("grpc-message", "ok".parse().unwrap());
            let frames = vec![
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(
                    b"\0\0\0\0\x02hi",
                ))),
                Ok(Frame::trailers(trailers)),
            ];
            let mut response = Response::new(ProxyBody::boxed(http_body_util::StreamBody::new(
                futures::stream::iter(frames),
            )));
            response
                .headers_mut()
                .insert("content-type", "application/grpc+proto".parse().unwrap());
            response
        })
    }

    const TRAILER_FRAME: &[u8] = b"\x80\0\0\0\x22grpc-status: 0\r\ngrpc-message: ok\r\n";

    #[tokio::test]
    async fn binary_requests_become_grpc_and_trailers_a_frame() {
        let req = Request::post("/pkg.Svc/Method")
            .header("content-type", "application/grpc-web+proto")
            .header("content-length", "7")
            .body(ProxyBody::full(&b"\0\0\0\0\x02yo"[..]))
            .unwrap();
        let response = send(&[grpc_web(&["*"])], &grpc_backend(), req).await;
        let response_headers = headers(&response);
        assert_eq!(
            response_headers["content-type"],
            "application/grpc-web+proto"
        );
        assert_eq!(
            response_headers["access-control-expose-headers"],
            "Content-Type, grpc-status, grpc-message"
        );
        let body = response.into_body().collect().await.unwrap();
        assert!(body.trailers().is_none());
        let mut expected = b"\0\0\0\0\x02hi".to_vec();
        expected.extend_from_slice(TRAILER_FRAME);
        assert_eq!(body.to_bytes(), expected);
    }

    #[tokio::test]
    async fn text_requests_are_base64_both_ways() {
        let encoded = STANDARD.encode(b"\0\0\0\0\x02yo");
        let (first, second) = encoded.split_at(5);
        let frames = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(first.to_owned()))),
            Ok(Frame::data(Bytes::from(second.to_owned()))),
        ];
        let req = Request::post("/pkg.Svc/Method")
            .header("content-type", "application/grpc-web-text+proto")
            .body(ProxyBody::boxed(http_body_util::StreamBody::new(
                futures::stream::iter(frames),
            )))
            .unwrap();
        let response = send(&[grpc_web(&["*"])], &grpc_backend(), req).await;
        assert_eq!(
            response.headers()["content-type"],
            "application/grpc-web-text+proto"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let expected = format!(
            "{}{}",
            STANDARD.encode(b"\0\0\0\0\x02hi"),
            STANDARD.encode(TRAILER_FRAME)
        );
        assert_eq!(body, expected);

        let mut decoder = Base64Decode::new(ProxyBody::full("aGk"));
        let error = decoder.frame().await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "truncated base64 request body");
    }

    #[tokio::test]
    async fn preflights_are_answered_for_allowed_origins() {
        let preflight = |origin: &str| {
            request(
                Request::options("/pkg.Svc/Method")
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "x-grpc-web, content-type")
                    .body(())
                    .unwrap(),
            )
        };
        let middleware = grpc_web(&["https://app.test"]);
        let backend = Backend::new();
        let response = send(
            std::slice::from_ref(&middleware),
            &backend,
            preflight("https://app.test"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let allowed = headers(&response);
        assert_eq!(allowed["access-control-allow-origin"], "https://app.test");
        assert_eq!(allowed["access-control-allow-methods"], "POST");
        assert_eq!(
            allowed["access-control-allow-headers"],
            "X-Grpc-Web, Content-Type"
        );
        assert_eq!(allowed["access-control-allow-credentials"], "true");
        assert_eq!(allowed["access-control-max-age"], "600");
        assert!(backend.seen().is_none());

        let response = send(
            std::slice::from_ref(&middleware),
            &backend,
            preflight("https://evil.test"),
        )
        .await;
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin")
        );

        // Other requests pass through.
        let plain = request(Request::get("/").body(()).unwrap());
        let response = send(&[middleware], &backend, plain).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(backend.seen().is_some());
    }
}
