//! The one body type of the proxy, for requests sent upstream and responses
//! sent downstream: either a hyper [`Incoming`] streamed through untouched, or
//! a small body the proxy produced itself (error pages, health-check probes).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A streamed or proxy-generated HTTP body.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Frames (data and trailers) of a peer's body, forwarded as they arrive.
    Incoming(Incoming),
    /// A complete body; `None` once sent.
    Full(Option<Bytes>),
}

impl ProxyBody {
    /// Streams a peer's body through.
    pub(crate) fn incoming(body: Incoming) -> Self {
        Self {
            kind: Kind::Incoming(body),
        }
    }

    /// A body of the given bytes (empty bytes make an empty body).
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Incoming(body) => Pin::new(body).poll_frame(cx),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Incoming(body) => body.size_hint(),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// A plain-text response the proxy answers by itself, with Traefik's bodies
/// (`404 page not found\n`, `Bad Gateway`, ...).
pub(crate) fn text_response(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `404 page not found`, as Go's `http.NotFound` (and so Traefik) writes it.
pub(crate) fn not_found() -> Response<ProxyBody> {
    text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// A response whose body is the status's canonical reason (`Bad Gateway`).
pub(crate) fn status_response(status: StatusCode) -> Response<ProxyBody> {
    text_response(status, status.canonical_reason().unwrap_or(""))
}
