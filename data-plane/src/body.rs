//! The one body type of the proxy, for requests on their way upstream
//! (through the middlewares, then to the backend) and responses on their way
//! downstream: a peer's body streamed through untouched (hyper's
//! [`Incoming`] for HTTP/2 and TLS backends, or the proxy's own HTTP/1.1
//! `h1::RequestBody` and `h1::ResponseBody`), a small body
//! the proxy produced itself (error pages, health-check probes), or a body a
//! middleware wrapped (content sniffing, compression, in-flight guards).
//! [`read_limited`] reads a body whole up to a bound, for the middlewares
//! that must see or replay it (buffering, retry, forward auth).
//!
//! Wrapping a peer's body costs nothing: the peer variants are a move, so
//! a request that no middleware touches is streamed exactly as it came.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use crate::h1::{RequestBody, ResponseBody};

/// The error of a [`ProxyBody`]: a peer's I/O error or a wrapper's.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed or proxy-generated HTTP body.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Frames (data and trailers) of a peer's body, forwarded as they arrive.
    Incoming(Incoming),
    /// A server's response body, read by the proxy's HTTP/1.1 client.
    Upstream(ResponseBody),
    /// A client's request body, read by the proxy's HTTP/1.1 server.
    Client(RequestBody),
    /// A complete body; `None` once sent.
    Full(Option<Bytes>),
    /// A body a middleware built around another one.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl ProxyBody {
    /// Streams a peer's body through.
    pub(crate) fn incoming(body: Incoming) -> Self {
        Self {
            kind: Kind::Incoming(body),
        }
    }

    /// Streams a client's HTTP/1.1 request body through.
    pub(crate) fn client(body: RequestBody) -> Self {
        Self {
            kind: Kind::Client(body),
        }
    }

    /// Streams a server's HTTP/1.1 response body through.
    pub(crate) fn upstream(body: ResponseBody) -> Self {
        Self {
            kind: Kind::Upstream(body),
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

    /// A body built by a middleware (one allocation).
    pub(crate) fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
        }
    }

    /// `first`, then the frames of `rest`: gives back a frame that was read
    /// to look at it (content sniffing) without copying either.
    pub(crate) fn prepend(first: Frame<Bytes>, rest: Self) -> Self {
        Self::boxed(Prepended {
            first: Some(first),
            rest,
        })
    }
}

/// See [`ProxyBody::prepend`].
#[derive(Debug)]
struct Prepended {
    first: Option<Frame<Bytes>>,
    rest: ProxyBody,
}

impl Body for Prepended {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|error| Box::new(error) as BoxError),
            Kind::Upstream(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|error| Box::new(error) as BoxError),
            Kind::Client(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|error| Box::new(error) as BoxError),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Upstream(body) => body.is_end_stream(),
            Kind::Client(body) => body.is_end_stream(),
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Incoming(body) => body.size_hint(),
            Kind::Upstream(body) => body.size_hint(),
            Kind::Client(body) => body.size_hint(),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

/// A body read whole (buffering, retries, forward auth): its data and
/// trailers, which make a new [`ProxyBody`] as often as needed (the bytes
/// are shared, not copied).
#[derive(Debug, Clone, Default)]
pub(crate) struct Buffered {
    /// The data frames, concatenated.
    pub(crate) data: Bytes,
    /// The trailers, if the body had some.
    pub(crate) trailers: Option<HeaderMap>,
}

impl Buffered {
    /// A body sending the data, then the trailers.
    pub(crate) fn body(&self) -> ProxyBody {
        match &self.trailers {
            None => ProxyBody::full(self.data.clone()),
            Some(trailers) => ProxyBody::boxed(Replay {
                data: (!self.data.is_empty()).then(|| self.data.clone()),
                trailers: Some(trailers.clone()),
            }),
        }
    }
}

/// What [`read_limited`] got.
#[derive(Debug)]
pub(crate) enum Read {
    /// The whole body, within the limit.
    Whole(Buffered),
    /// A body over the limit, as it was: what was read is put back in front.
    TooLarge(ProxyBody),
    /// The peer's body failed.
    Failed(BoxError),
}

/// Reads `body` whole when it has at most `limit` bytes of data; stops
/// reading as soon as it has more (a declared length over the limit stops
/// it before the first read).
pub(crate) async fn read_limited(mut body: ProxyBody, limit: u64) -> Read {
    if body.size_hint().lower() > limit {
        return Read::TooLarge(body);
    }
    let mut data = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => return Read::Failed(error),
        };
        match frame.into_data() {
            Ok(chunk) => {
                data.extend_from_slice(&chunk);
                if data.len() as u64 > limit {
                    return Read::TooLarge(ProxyBody::prepend(Frame::data(data.freeze()), body));
                }
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(map);
                }
            }
        }
    }
    Read::Whole(Buffered {
        data: data.freeze(),
        trailers,
    })
}

/// See [`Buffered::body`].
#[derive(Debug)]
struct Replay {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match this.data.take() {
            Some(data) => Frame::data(data),
            None => match this.trailers.take() {
                Some(trailers) => Frame::trailers(trailers),
                None => return Poll::Ready(None),
            },
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
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
