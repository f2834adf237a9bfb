//! How long a message body is (RFC 9112 §6.3), read from its head, with the
//! checks that keep a proxy from being used for request smuggling: a
//! request carrying both `Transfer-Encoding` and `Content-Length`,
//! conflicting lengths, or a transfer coding other than a lone `chunked`
//! is refused, never guessed at.

use http::{Method, StatusCode, Version};

use crate::headers::{HeaderFields, known};

/// How a body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// Why a message's length cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    /// `Content-Length` is not a number, or two of them disagree.
    #[error("invalid Content-Length")]
    InvalidLength,
    /// Both `Transfer-Encoding` and `Content-Length`.
    #[error("both Transfer-Encoding and Content-Length")]
    Ambiguous,
    /// A transfer coding other than `chunked` alone.
    #[error("unsupported Transfer-Encoding")]
    UnsupportedCoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message.
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    CodingInHttp10,
}

impl FramingError {
    /// The status a client gets for a request refused for this.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The value of all `Content-Length` fields, which must agree.
pub(crate) fn content_length<H: HeaderFields + ?Sized>(
    headers: &H,
) -> Result<Option<u64>, FramingError> {
    let mut length = None;
    let mut valid = true;
    headers.find_known(&known::CONTENT_LENGTH, &mut |value| {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let parsed =
                (!part.is_empty() && part.len() <= 19 && part.iter().all(u8::is_ascii_digit))
                    .then(|| part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')));
            match (parsed, length) {
                (Some(parsed), None) => length = Some(parsed),
                (Some(parsed), Some(seen)) if parsed == seen => {}
                _ => {
                    valid = false;
                    return true;
                }
            }
        }
        false
    });
    if valid {
        Ok(length)
    } else {
        Err(FramingError::InvalidLength)
    }
}

/// What the transfer codings say.
#[derive(Debug, Default)]
struct Codings {
    count: usize,
    last_is_chunked: bool,
}

fn codings<H: HeaderFields + ?Sized>(headers: &H) -> Codings {
    let mut codings = Codings::default();
    headers.find_known(&known::TRANSFER_ENCODING, &mut |value| {
        let tokens = value
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|coding| !coding.is_empty());
        for coding in tokens {
            codings.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            codings.count += 1;
        }
        false
    });
    codings
}

/// Chunked framing when the transfer codings are `chunked` alone.
fn lone_chunked<H: HeaderFields + ?Sized>(headers: &H) -> Result<Framing, FramingError> {
    let codings = codings(headers);
    if codings.count == 1 && codings.last_is_chunked {
        Ok(Framing::Chunked)
    } else {
        Err(FramingError::UnsupportedCoding)
    }
}

/// Whether a message lets its connection carry another exchange after it
/// (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
/// with `Connection: keep-alive`.
pub(crate) fn keeps_alive<H: HeaderFields + ?Sized>(version: Version, headers: &H) -> bool {
    let has_token = |token: &[u8]| {
        headers.find_known(&known::CONNECTION, &mut |value| {
            value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
        })
    };
    match version {
        Version::HTTP_11 => !has_token(b"close"),
        _ => has_token(b"keep-alive"),
    }
}

/// The framing of a request body.
pub(crate) fn request<H: HeaderFields + ?Sized>(
    version: Version,
    headers: &H,
) -> Result<Framing, FramingError> {
    if headers.contains_known(&known::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(FramingError::CodingInHttp10);
        }
        if headers.contains_known(&known::CONTENT_LENGTH) {
            return Err(FramingError::Ambiguous);
        }
        return lone_chunked(headers);
    }
    Ok(match content_length(headers)? {
        None | Some(0) => Framing::Empty,
        Some(length) => Framing::Length(length),
    })
}

/// The framing of the response to a `method` request. Stricter than RFC
/// 9112 allows a client to be, as hyper is: a transfer coding other than a
/// lone `chunked` (which the proxy would have to pass on undecoded), or one
/// in an HTTP/1.0 response, is refused rather than read until the close.
pub(crate) fn response<H: HeaderFields + ?Sized>(
    method: &Method,
    version: Version,
    status: StatusCode,
    headers: &H,
) -> Result<Framing, FramingError> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (*method == Method::CONNECT && status.is_success())
    {
        return Ok(Framing::Empty);
    }
    if headers.contains_known(&known::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(FramingError::CodingInHttp10);
        }
        // A length beside a transfer coding is ignored (§6.3 rule 3), and
        // must not be passed on (the caller drops it).
        return lone_chunked(headers);
    }
    Ok(match content_length(headers)? {
        Some(0) => Framing::Empty,
        Some(length) => Framing::Length(length),
        None => Framing::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn request_bodies_are_framed_or_refused() {
        let v11 = Version::HTTP_11;
        assert_eq!(request(v11, &headers(&[])), Ok(Framing::Empty));
        assert_eq!(
            request(v11, &headers(&[("content-length", "12")])),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            request(v11, &headers(&[("content-length", "5, 5")])),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            request(v11, &headers(&[("transfer-encoding", "Chunked")])),
            Ok(Framing::Chunked)
        );
        for (pairs, error) in [
            (
                &[("content-length", "5"), ("content-length", "6")][..],
                FramingError::InvalidLength,
            ),
            (&[("content-length", "-1")], FramingError::InvalidLength),
            (&[("content-length", "+5")], FramingError::InvalidLength),
            (
                &[("content-length", "99999999999999999999")],
                FramingError::InvalidLength,
            ),
            (
                &[("transfer-encoding", "chunked"), ("content-length", "3")],
                FramingError::Ambiguous,
            ),
            (
                &[("transfer-encoding", "gzip, chunked")],
                FramingError::UnsupportedCoding,
            ),
            (
                &[("transfer-encoding", "chunked, chunked")],
                FramingError::UnsupportedCoding,
            ),
            (
                &[("transfer-encoding", "identity")],
                FramingError::UnsupportedCoding,
            ),
        ] {
            assert_eq!(request(v11, &headers(pairs)), Err(error), "{pairs:?}");
        }
        assert_eq!(
            request(
                Version::HTTP_10,
                &headers(&[("transfer-encoding", "chunked")])
            ),
            Err(FramingError::CodingInHttp10)
        );
        assert_eq!(
            FramingError::UnsupportedCoding.status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn response_bodies_follow_method_status_and_headers() {
        let get = Method::GET;
        let v11 = Version::HTTP_11;
        let length = headers(&[("content-length", "10")]);
        let framing = |method: &Method, status, pairs: &[(&'static str, &'static str)]| {
            response(method, v11, status, &headers(pairs))
        };
        assert_eq!(
            response(&Method::HEAD, v11, StatusCode::OK, &length),
            Ok(Framing::Empty)
        );
        assert_eq!(
            response(&get, v11, StatusCode::NO_CONTENT, &length),
            Ok(Framing::Empty)
        );
        assert_eq!(
            response(&get, v11, StatusCode::NOT_MODIFIED, &length),
            Ok(Framing::Empty)
        );
        assert_eq!(
            response(&get, v11, StatusCode::OK, &length),
            Ok(Framing::Length(10))
        );
        assert_eq!(framing(&get, StatusCode::OK, &[]), Ok(Framing::UntilClose));
        assert_eq!(
            framing(
                &get,
                StatusCode::OK,
                &[("transfer-encoding", "chunked"), ("content-length", "3")]
            ),
            Ok(Framing::Chunked)
        );
        for codings in ["gzip, chunked", "gzip", "chunked, chunked"] {
            assert_eq!(
                framing(&get, StatusCode::OK, &[("transfer-encoding", codings)]),
                Err(FramingError::UnsupportedCoding),
                "{codings}"
            );
        }
        assert_eq!(
            response(
                &get,
                Version::HTTP_10,
                StatusCode::OK,
                &headers(&[("transfer-encoding", "chunked")])
            ),
            Err(FramingError::CodingInHttp10)
        );
        assert_eq!(
            framing(&get, StatusCode::OK, &[("content-length", "1, 2")]),
            Err(FramingError::InvalidLength)
        );
    }
}
