//! `compress`: gzip, brotli or zstd response compression, chosen from
//! `Accept-Encoding` as Traefik v3 does.
//!
//! Negotiation ([`Compress::negotiate`]): no `Accept-Encoding` means
//! `defaultEncoding` if set, else no compression; an empty one means none.
//! Codings not in `encodings` (nor `identity`, nor `*`) are ignored, as are
//! those with `q=0`; the highest `q` (1 when absent) wins, ties going to `*`
//! first, then the order of `encodings`, then `identity`; `*` means
//! `defaultEncoding`, else the first of `encodings`.
//!
//! A response is compressed when the request is not `HEAD`, its own
//! `Content-Type` is not excluded (`application/grpc` always is, the others
//! from `excludedContentTypes`), the response has a body, no
//! `Content-Encoding`, a content type that `includedContentTypes` lists or
//! `excludedContentTypes` does not, and at least `minResponseBodyBytes`
//! bytes: its `Content-Length` says so, or, without one, that many bytes
//! arrive before the body ends. A body that pauses first (a stream being
//! flushed) is compressed from there, as Traefik does on a flush. Once
//! compressing, data is compressed as it arrives and flushed whenever the
//! backend pauses: a stream is never held back. `Vary: Accept-Encoding` is
//! added whenever an encoding was chosen; `Content-Length` goes.

use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{BoxError, Buffered, ProxyBody};

/// A coding this middleware produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "zstd" => Some(Self::Zstd),
            "br" => Some(Self::Brotli),
            "gzip" => Some(Self::Gzip),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }
}

/// A media type as Go's `mime.ParseMediaType` gives it: the lowercase
/// essence and parameters (lowercase names).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MediaType {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        for part in parts.map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            params.push((name.trim().to_ascii_lowercase(), value.to_owned()));
        }
        Some(Self { essence, params })
    }

    /// klauspost's rule: same essence, and if this one has parameters, the
    /// same parameters.
    fn matches(&self, other: &Self) -> bool {
        self.essence == other.essence
            && (self.params.is_empty()
                || (self.params.len() == other.params.len()
                    && self.params.iter().all(|p| other.params.contains(p))))
    }
}

/// A built `compress` middleware.
#[derive(Debug)]
pub(crate) struct Compress {
    /// `application/grpc`, then `excludedContentTypes`.
    excluded: Vec<MediaType>,
    included: Vec<MediaType>,
    min_size: u64,
    encodings: Vec<Encoding>,
    default_encoding: Option<Encoding>,
}

impl Compress {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::Compress) -> Result<Self, MiddlewareBuildError> {
        let media = |option: &'static str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    MediaType::parse(value).ok_or_else(|| MiddlewareBuildError::Invalid {
                        option,
                        value: value.clone(),
                        reason: "invalid media type",
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let mut excluded = vec![MediaType {
            essence: "application/grpc".into(),
            params: Vec::new(),
        }];
        excluded.extend(media(
            "compress.excludedContentTypes",
            &config.excluded_content_types,
        )?);
        let included = media(
            "compress.includedContentTypes",
            &config.included_content_types,
        )?;
        let encoding = |name: &String| {
            Encoding::parse(name).ok_or_else(|| MiddlewareBuildError::Invalid {
                option: "compress.encodings",
                value: name.clone(),
                reason: "unsupported encoding",
            })
        };
        let encodings = if config.encodings.is_empty() {
            vec![Encoding::Zstd, Encoding::Brotli, Encoding::Gzip]
        } else {
            config
                .encodings
                .iter()
                .map(encoding)
                .collect::<Result<_, _>>()?
        };
        let default_encoding = match config.default_encoding.as_str() {
            "" => None,
            _ => Some(encoding(&config.default_encoding)?),
        };
        Ok(Self {
            excluded,
            included,
            min_size: match config.min_response_body_bytes {
                n if n > 0 => n.unsigned_abs(),
                _ => 1024,
            },
            encodings,
            default_encoding,
        })
    }

    /// The coding to answer a request with these headers in, if any.
    pub(crate) fn negotiate(&self, headers: &HeaderMap) -> Option<Encoding> {
        let mut lines = headers.get_all(ACCEPT_ENCODING).iter().peekable();
        if lines.peek().is_none() {
            return self.default_encoding;
        }
        let lines: Vec<&[u8]> = lines.map(HeaderValue::as_bytes).collect();
        if lines.len() == 1 && lines[0].is_empty() {
            return None;
        }
        // Rank: `*` first, then the configured order, then `identity`.
        let rank = |name: &str| match name {
            "*" => Some((-1, None)),
            "identity" => Some((self.encodings.len() as isize, None)),
            name => Encoding::parse(name).and_then(|encoding| {
                let index = self.encodings.iter().position(|e| *e == encoding)?;
                Some((index as isize, Some(encoding)))
            }),
        };
        let mut best: Option<(f64, isize, Option<Encoding>, bool)> = None;
        for line in lines {
            let line: String = String::from_utf8_lossy(line).replace(' ', "");
            for item in line.split(',') {
                let (name, params) = item.split_once(';').unwrap_or((item, ""));
                let Some((priority, encoding)) = rank(name) else {
                    continue;
                };
                let weight = match params.strip_prefix("q=") {
                    Some(q) => q.parse::<f64>().unwrap_or(0.0),
                    None => 1.0,
                };
                if weight == 0.0 {
                    continue;
                }
                let better =
                    best.is_none_or(|(w, p, _, _)| weight > w || (weight == w && priority < p));
                if better {
                    best = Some((weight, priority, encoding, name == "*"));
                }
            }
        }
        match best? {
            (_, _, _, true) => self.default_encoding.or(self.encodings.first().copied()),
            (_, _, encoding, false) => encoding,
        }
    }

    /// Calls `next` and compresses its response when it should.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        if req.method() == Method::HEAD || self.excluded_request(req.headers()) {
            return next.run(req, ctx).await;
        }
        let Some(encoding) = self.negotiate(req.headers()) else {
            return next.run(req, ctx).await;
        };
        let mut response = next.run(req, ctx).await;
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        if !self.compressible(&response) {
            return response;
        }
        let encoder = match Encoder::new(encoding) {
            Ok(encoder) => encoder,
            Err(error) => {
                tracing::warn!(%error, encoding = encoding.name(), "cannot start a compressor");
                return response;
            }
        };
        let (mut parts, mut body) = response.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let body = match declared {
            Some(length) if length < self.min_size => return Response::from_parts(parts, body),
            Some(_) => body,
            None => match self.first_bytes(&mut body).await {
                Start::Compress(first) => ProxyBody::prepend(Frame::data(first), body),
                Start::Plain(plain) => return Response::from_parts(parts, plain),
            },
        };
        parts.headers.remove(CONTENT_LENGTH);
        parts
            .headers
            .insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
        Response::from_parts(parts, ProxyBody::boxed(Compressing::new(encoder, body)))
    }

    /// True when the request's own content type is excluded (Traefik's
    /// check, for `text/event-stream` and gRPC requests).
    fn excluded_request(&self, headers: &HeaderMap) -> bool {
        let Some(media) = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(MediaType::parse)
        else {
            return false;
        };
        self.excluded
            .iter()
            .any(|excluded| excluded.essence == media.essence)
    }

    /// True for a response with a body that is not encoded and whose type
    /// may be compressed.
    fn compressible(&self, response: &Response<ProxyBody>) -> bool {
        let status = response.status();
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || response.headers().contains_key(CONTENT_ENCODING)
            || response.body().is_end_stream()
        {
            return false;
        }
        let Some(content_type) = response.headers().get(CONTENT_TYPE) else {
            return true;
        };
        let Some(media) = content_type.to_str().ok().and_then(MediaType::parse) else {
            return false;
        };
        if self.included.is_empty() {
            !self
                .excluded
                .iter()
                .any(|excluded| excluded.matches(&media))
        } else {
            self.included
                .iter()
                .any(|included| included.matches(&media))
        }
    }

    /// Reads a body of unknown length until it is known to be worth
    /// compressing (`min_size` bytes, or a pause after some data) or ends.
    async fn first_bytes(&self, body: &mut ProxyBody) -> Start {
        let mut first = BytesMut::new();
        let outcome = poll_fn(|cx| {
            loop {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            first.extend_from_slice(&data);
                            if first.len() as u64 >= self.min_size {
                                return Poll::Ready(Ok(true));
                            }
                        }
                        Err(frame) => return Poll::Ready(Err(frame.into_trailers().ok())),
                    },
                    Poll::Ready(Some(Err(error))) => {
                        tracing::debug!(%error, "response body failed before compression");
                        return Poll::Ready(Err(None));
                    }
                    Poll::Ready(None) => return Poll::Ready(Err(None)),
                    Poll::Pending if !first.is_empty() => return Poll::Ready(Ok(true)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        match outcome {
            Ok(_) => Start::Compress(first.freeze()),
            Err(trailers) => Start::Plain(
                Buffered {
                    data: first.freeze(),
                    trailers,
                }
                .body(),
            ),
        }
    }
}

/// How a body of unknown length starts.
enum Start {
    /// Compress it: these bytes, then the rest.
    Compress(Bytes),
    /// It ended small: send it as it was.
    Plain(ProxyBody),
}

/// A streaming compressor writing into a buffer that is drained after each
/// frame.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    fn new(encoding: Encoding) -> std::io::Result<Self> {
        Ok(match encoding {
            Encoding::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            // Quality 6 is the default of the Go library Traefik uses.
            Encoding::Brotli => Self::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                6,
                22,
            ))),
            Encoding::Zstd => Self::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3)?),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Self::Gzip(e) => e,
            Self::Brotli(e) => e.as_mut(),
            Self::Zstd(e) => e,
        }
    }

    /// The compressed bytes produced so far.
    fn take(&mut self) -> Bytes {
        let buffer = match self {
            Self::Gzip(e) => e.get_mut(),
            Self::Brotli(e) => e.get_mut(),
            Self::Zstd(e) => e.get_mut(),
        };
        Bytes::from(std::mem::take(buffer))
    }

    /// Ends the stream; the last compressed bytes.
    fn finish(self) -> std::io::Result<Bytes> {
        let rest = match self {
            Self::Gzip(e) => e.finish()?,
            Self::Brotli(e) => e.into_inner(),
            Self::Zstd(e) => e.finish()?,
        };
        Ok(Bytes::from(rest))
    }
}

/// A body compressed as it streams.
struct Compressing {
    inner: ProxyBody,
    encoder: Option<Encoder>,
    /// Data written since the last flush.
    dirty: bool,
    trailers: Option<HeaderMap>,
}

impl Compressing {
    fn new(encoder: Encoder, inner: ProxyBody) -> Self {
        Self {
            inner,
            encoder: Some(encoder),
            dirty: false,
            trailers: None,
        }
    }

    /// Ends compression: the last bytes, if any.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        let encoder = self.encoder.take()?;
        match encoder.finish() {
            Ok(rest) if rest.is_empty() => None,
            Ok(rest) => Some(Ok(Frame::data(rest))),
            Err(error) => Some(Err(error.into())),
        }
    }
}

impl Body for Compressing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if let Err(error) = encoder.writer().write_all(&data) {
                            this.encoder = None;
                            return Poll::Ready(Some(Err(error.into())));
                        }
                        this.dirty = true;
                        let out = encoder.take();
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        if let Some(last) = this.finish() {
                            return Poll::Ready(Some(last));
                        }
                    }
                },
                Poll::Ready(Some(Err(error))) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    if let Some(last) = this.finish() {
                        return Poll::Ready(Some(last));
                    }
                }
                Poll::Pending if this.dirty => {
                    this.dirty = false;
                    if let Err(error) = encoder.writer().flush() {
                        this.encoder = None;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    let out = encoder.take();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    return Poll::Pending;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
