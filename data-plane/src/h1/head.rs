//! Message heads: a request or response head parsed out of a read buffer
//! into `http` types, and heads written for the wire.
//!
//! A head is parsed into a raw form first ([`RawRequest`], [`RawResponse`]):
//! the head's bytes, split off the read buffer and frozen, and where each
//! field lies in them. Direct forwarding works on that form; the general
//! path turns it into `http` types, whose header values are slices of the
//! same bytes (nothing is copied). Header names are lowercased by `http`,
//! as hyper does.

use std::fmt;
use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use smallvec::SmallVec;

use crate::headers::{FieldKind, HeaderFields, Known, RawField};

/// Bound on the headers of a request head.
pub(crate) const MAX_REQUEST_HEADERS: usize = 128;
/// Bound on the headers of a response head.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 256;

/// Why a message head was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// More bytes than allowed arrived without the head ending.
    #[error("message head over {0} bytes")]
    TooLarge(usize),
    /// More headers than allowed.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// Not HTTP/1.x syntax.
    #[error("malformed message head: {0}")]
    Malformed(httparse::Error),
    /// A header name or value `http` does not accept.
    #[error("invalid header field")]
    InvalidHeader,
    /// The request target is not a URI.
    #[error("invalid request target")]
    InvalidTarget,
    /// The method is not a token.
    #[error("invalid method")]
    InvalidMethod,
    /// The status code is out of range.
    #[error("invalid status code")]
    InvalidStatus,
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// Where a header field's name and value lie in the head's bytes, and what
/// the field is: 16 bytes, as a head is moved a few times per request.
#[derive(Debug, Clone, Copy)]
struct Field {
    name_start: u32,
    value_start: u32,
    value_end: u32,
    name_len: u16,
    kind: FieldKind,
}

impl Field {
    fn name(&self) -> (u32, u32) {
        (self.name_start, self.name_start + u32::from(self.name_len))
    }

    fn value(&self) -> (u32, u32) {
        (self.value_start, self.value_end)
    }
}

/// Fields kept inline: most heads carry fewer, a browser's request about
/// as many.
const INLINE_FIELDS: usize = 12;

/// Room in a head's `HeaderMap` for the fields the proxy adds to it
/// (`X-Forwarded-*`, `X-Real-Ip`), so that adding them does not regrow it.
const ADDED_FIELDS: usize = 8;

/// The header fields of a head, as they came off the wire: the head's
/// bytes and where each field lies in them, each classified once.
#[derive(Debug)]
pub(crate) struct RawHead {
    bytes: Bytes,
    fields: SmallVec<[Field; INLINE_FIELDS]>,
    /// The kinds present (`FieldKind::bit`).
    kinds: u32,
}

/// A request head as it came off the wire.
#[derive(Debug)]
pub(crate) struct RawRequest {
    pub(crate) method: Method,
    target: (u32, u32),
    pub(crate) version: Version,
    pub(crate) head: RawHead,
}

/// A response head as it came off the wire.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) head: RawHead,
}

/// The range `part` (a sub-slice of `base`) covers in `base`.
fn range_in(base: &[u8], part: &[u8]) -> (u32, u32) {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    // Heads are bounded far below 4 GiB.
    (start as u32, (start + part.len()) as u32)
}

fn version(minor: Option<u8>) -> Version {
    match minor {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

fn malformed(error: httparse::Error, max_headers: usize) -> HeadError {
    match error {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders(max_headers),
        other => HeadError::Malformed(other),
    }
}

impl RawHead {
    fn slice(&self, range: (u32, u32)) -> &[u8] {
        &self.bytes[range.0 as usize..range.1 as usize]
    }

    /// The fields, in order (names as written).
    pub(crate) fn fields(&self) -> impl Iterator<Item = RawField<'_>> + Clone + fmt::Debug {
        self.fields.iter().map(|field| RawField {
            name: self.slice(field.name()),
            value: self.slice(field.value()),
            line: self.slice((field.name_start, field.value_end.max(field.name().1 + 1))),
            kind: field.kind,
        })
    }

    /// Whether a field of `kind` is present.
    pub(crate) fn has(&self, kind: FieldKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// The values of `kind`'s fields.
    pub(crate) fn values(&self, kind: FieldKind) -> impl Iterator<Item = &[u8]> {
        let present = self.has(kind);
        self.fields
            .iter()
            .filter(move |field| present && field.kind == kind)
            .map(|field| self.slice(field.value()))
    }

    /// The first value of `kind`'s fields.
    pub(crate) fn first(&self, kind: FieldKind) -> Option<&[u8]> {
        self.values(kind).next()
    }

    /// Leaves out every field of `kind` from now on.
    pub(crate) fn drop_kind(&mut self, kind: FieldKind) {
        if !self.has(kind) {
            return;
        }
        for field in &mut self.fields {
            if field.kind == kind {
                field.kind = FieldKind::Dropped;
            }
        }
        self.kinds &= !kind.bit();
    }

    /// The fields as a header map (values share the head's bytes).
    pub(crate) fn header_map(&self) -> Result<HeaderMap, HeadError> {
        let mut headers = HeaderMap::with_capacity(self.fields.len() + ADDED_FIELDS);
        for field in self.fields.iter().filter(|f| f.kind != FieldKind::Dropped) {
            let name = HeaderName::from_bytes(self.slice(field.name()))
                .map_err(|_| HeadError::InvalidHeader)?;
            let value = HeaderValue::from_maybe_shared(
                self.bytes
                    .slice(field.value_start as usize..field.value_end as usize),
            )
            .map_err(|_| HeadError::InvalidHeader)?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

impl HeaderFields for RawHead {
    fn find_known(&self, known: &Known, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.values(known.kind).any(test)
    }

    fn find_value(&self, name: &HeaderName, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        match FieldKind::of_name(name) {
            kind if kind.is_one_name() => self.values(kind).any(test),
            kind => self.fields().any(|field| {
                field.kind == kind
                    && field.name.eq_ignore_ascii_case(name.as_str().as_bytes())
                    && test(field.value)
            }),
        }
    }
}

impl RawRequest {
    /// The request target's bytes (shared, not copied).
    pub(crate) fn target_bytes(&self) -> Bytes {
        self.head
            .bytes
            .slice(self.target.0 as usize..self.target.1 as usize)
    }

    /// The head in `http` types.
    pub(crate) fn into_request_head(self) -> Result<RequestHead, HeadError> {
        let uri =
            Uri::from_maybe_shared(self.target_bytes()).map_err(|_| HeadError::InvalidTarget)?;
        Ok(RequestHead {
            method: self.method,
            uri,
            version: self.version,
            headers: self.head.header_map()?,
        })
    }
}

impl RawResponse {
    /// The head in `http` types.
    pub(crate) fn into_response_head(self) -> Result<ResponseHead, HeadError> {
        Ok(ResponseHead {
            status: self.status,
            version: self.version,
            headers: self.head.header_map()?,
        })
    }
}

/// The fields of a head parsed from `buf`, classified, with the kinds seen.
fn field_ranges<'h>(
    buf: &[u8],
    parsed: impl Iterator<Item = &'h httparse::Header<'h>>,
) -> Result<(SmallVec<[Field; INLINE_FIELDS]>, u32), HeadError> {
    let mut kinds = 0;
    let mut fields = SmallVec::new();
    for field in parsed {
        let kind = FieldKind::of(field.name.as_bytes());
        kinds |= kind.bit();
        let (name_start, _) = range_in(buf, field.name.as_bytes());
        let (value_start, value_end) = range_in(buf, field.value);
        fields.push(Field {
            name_start,
            value_start,
            value_end,
            name_len: u16::try_from(field.name.len()).map_err(|_| HeadError::InvalidHeader)?,
            kind,
        });
    }
    Ok((fields, kinds))
}

/// Parses the request head at the start of `buf`, splitting it off;
/// `Ok(None)` when the head is not complete yet (and `buf` holds at most
/// `max_bytes`).
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<RawRequest>, HeadError> {
    let mut parsed = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_REQUEST_HEADERS];
    let (length, method, target, minor, fields, kinds) = {
        let mut request = httparse::Request::new(&mut []);
        let status = request
            .parse_with_uninit_headers(buf, &mut parsed)
            .map_err(|e| malformed(e, MAX_REQUEST_HEADERS))?;
        let httparse::Status::Complete(length) = status else {
            return if buf.len() >= max_bytes {
                Err(HeadError::TooLarge(max_bytes))
            } else {
                Ok(None)
            };
        };
        if length > max_bytes {
            return Err(HeadError::TooLarge(max_bytes));
        }
        let method = Method::from_bytes(request.method.unwrap_or("").as_bytes())
            .map_err(|_| HeadError::InvalidMethod)?;
        let target = range_in(buf, request.path.unwrap_or("").as_bytes());
        let (fields, kinds) = field_ranges(buf, request.headers.iter())?;
        (length, method, target, request.version, fields, kinds)
    };
    Ok(Some(RawRequest {
        method,
        target,
        version: version(minor),
        head: RawHead {
            bytes: buf.split_to(length).freeze(),
            fields,
            kinds,
        },
    }))
}

/// Parses the response head at the start of `buf`, splitting it off;
/// `Ok(None)` when the head is not complete yet (and `buf` holds at most
/// `max_bytes`).
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<RawResponse>, HeadError> {
    let mut parsed =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let (length, code, minor, fields, kinds) = {
        let mut response = httparse::Response::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut response, buf, &mut parsed)
            .map_err(|e| malformed(e, MAX_RESPONSE_HEADERS))?;
        let httparse::Status::Complete(length) = status else {
            return if buf.len() >= max_bytes {
                Err(HeadError::TooLarge(max_bytes))
            } else {
                Ok(None)
            };
        };
        if length > max_bytes {
            return Err(HeadError::TooLarge(max_bytes));
        }
        let (fields, kinds) = field_ranges(buf, response.headers.iter())?;
        (
            length,
            response.code.unwrap_or(0),
            response.version,
            fields,
            kinds,
        )
    };
    Ok(Some(RawResponse {
        status: StatusCode::from_u16(code).map_err(|_| HeadError::InvalidStatus)?,
        version: version(minor),
        head: RawHead {
            bytes: buf.split_to(length).freeze(),
            fields,
            kinds,
        },
    }))
}

fn put_field(out: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

fn put_headers(headers: &HeaderMap, out: &mut BytesMut) {
    for (name, value) in headers {
        put_field(out, name, value);
    }
}

/// Writes `name: <decimal>\r\n`.
pub(crate) fn put_number_line(out: &mut BytesMut, name: &[u8], mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(&digits[start..]);
    out.put_slice(b"\r\n");
}

/// Writes a request line (origin form) and `headers`; the caller adds
/// framing lines and the empty line that ends the head.
pub(crate) fn encode_request(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    out: &mut BytesMut,
) {
    out.reserve(64 + target.len() + headers.len() * 32);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    put_headers(headers, out);
}

/// Writes an HTTP/1.1 status line (with the canonical reason); the caller
/// adds the fields, then framing, `Date` and `Connection` lines and the
/// empty line that ends the head.
pub(crate) fn encode_status_line(status: StatusCode, out: &mut BytesMut) {
    out.reserve(512);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
}

/// Writes `headers` as fields, without `Content-Length` when `drop_length`.
pub(crate) fn encode_fields(headers: &HeaderMap, drop_length: bool, out: &mut BytesMut) {
    if drop_length {
        for (name, value) in headers {
            if name != CONTENT_LENGTH {
                put_field(out, name, value);
            }
        }
    } else {
        put_headers(headers, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_split_off_and_its_values_share_the_bytes() {
        let mut buf = BytesMut::from(
            &b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Custom: one\r\nx-custom: two\r\n\r\nBODY"[..],
        );
        let raw = parse_request(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(&raw.target_bytes()[..], b"/a/b?c=d");
        assert_eq!(raw.head.first(FieldKind::Host), Some(&b"example.com"[..]));
        assert!(
            raw.head
                .find_value(&HeaderName::from_static("x-custom"), &mut |v| v == b"two")
        );
        let head = raw.into_request_head().unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/a/b?c=d");
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers["host"], "example.com");
        let custom: Vec<_> = head.headers.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", "two"]);
        assert_eq!(&buf[..], b"BODY");
    }

    #[test]
    fn a_field_found_by_name_is_not_another_of_its_kind() {
        let mut buf = BytesMut::from(
            &b"GET / HTTP/1.1\r\nHost: a\r\nX-Idempotency-Key: k\r\nX-Forwarded-Uri: /u\r\n\r\n"[..],
        );
        let raw = parse_request(&mut buf, 1024).unwrap().unwrap();
        let found = |name: &'static str| {
            raw.head
                .find_value(&HeaderName::from_static(name), &mut |_| true)
        };
        assert!(found("x-idempotency-key"));
        assert!(!found("idempotency-key"));
        assert!(found("x-forwarded-uri"));
        assert!(!found("x-forwarded-prefix"));
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_refused() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
        assert!(parse_request(&mut buf, 1024).unwrap().is_none());
        assert_eq!(buf.len(), 25, "nothing consumed");
        assert!(matches!(
            parse_request(&mut buf, 20),
            Err(HeadError::TooLarge(20))
        ));
        let mut complete = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        assert!(matches!(
            parse_request(&mut complete, 20),
            Err(HeadError::TooLarge(20))
        ));
    }

    #[test]
    fn malformed_heads_and_fields_are_errors() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nBad\x01Name: a\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(
                parse_request(&mut buf, 1024).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many: String = (0..=MAX_REQUEST_HEADERS)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(matches!(
            parse_request(&mut buf, 1 << 20),
            Err(HeadError::TooManyHeaders(_))
        ));
    }

    #[test]
    fn absolute_targets_and_http_1_0_are_read() {
        let mut buf = BytesMut::from(&b"OPTIONS http://a.example:8080/x HTTP/1.0\r\n\r\n"[..]);
        let head = parse_request(&mut buf, 1024)
            .unwrap()
            .unwrap()
            .into_request_head()
            .unwrap();
        assert_eq!(head.version, Version::HTTP_10);
        assert_eq!(head.uri.authority().unwrap(), "a.example:8080");
        assert_eq!(head.uri.path(), "/x");
    }

    #[test]
    fn a_response_head_is_parsed() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 404 Whatever\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\n\r\nok"[..],
        );
        let head = parse_response(&mut buf, 1024)
            .unwrap()
            .unwrap()
            .into_response_head()
            .unwrap();
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.headers["content-length"], "2");
        assert_eq!(&buf[..], b"ok");
        let mut bad = BytesMut::from(&b"HTTP/1.1 99 Low\r\n\r\n"[..]);
        assert!(parse_response(&mut bad, 1024).is_err());
    }

    #[test]
    fn heads_and_number_lines_are_written() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("b"));
        let mut out = BytesMut::new();
        encode_request(&Method::POST, "/p?q", &headers, &mut out);
        assert_eq!(&out[..], b"POST /p?q HTTP/1.1\r\nhost: b\r\n");
        out.clear();
        headers.insert("content-length", HeaderValue::from_static("7"));
        encode_status_line(StatusCode::IM_A_TEAPOT, &mut out);
        encode_fields(&headers, true, &mut out);
        put_number_line(&mut out, b"content-length", 0);
        put_number_line(&mut out, b"x-n", 18_446_744_073_709_551_615);
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 418 I'm a teapot\r\nhost: b\r\ncontent-length: 0\r\nx-n: 18446744073709551615\r\n"[..]
        );
    }
}
