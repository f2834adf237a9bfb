//! Request path rewriting shared by the path middlewares (`addPrefix`,
//! `stripPrefix`, `replacePath` and their regex forms).
//!
//! The path a middleware sees is the request's, as routing normalised it
//! (percent-encoded, like Go's `URL.RawPath`). A rewritten path keeps the
//! query, the scheme and the authority of the request; bytes that cannot
//! appear in a path are percent-encoded, as Go's `URL.EscapedPath` does.
//! [`query_escape`] is Go's `url.QueryEscape`, for the middlewares that put
//! a value in a query or a header (`errors`, `passTLSClientCert`).

use std::borrow::Cow;
use std::fmt::Write;

use http::uri::PathAndQuery;
use http::{HeaderName, Response, StatusCode, Uri};

use crate::body::{ProxyBody, status_response};

/// `X-Forwarded-Prefix`: what `stripPrefix` removed.
pub(crate) const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
/// `X-Replaced-Path`: the path before `replacePath` changed it.
pub(crate) const X_REPLACED_PATH: HeaderName = HeaderName::from_static("x-replaced-path");

/// A rewritten path that cannot make a request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the rewritten path is not a valid request target")]
pub(crate) struct InvalidPath;

impl InvalidPath {
    /// The answer: a 500, as Traefik answers a path it cannot rebuild.
    pub(crate) fn response(self) -> Response<ProxyBody> {
        status_response(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// `uri` with its path set to `path` (a leading `/` added when missing),
/// its query, scheme and authority kept. Takes the request's URI by
/// reference, so a new path borrowed from it needs no copy.
pub(crate) fn with_path(uri: &Uri, path: &str) -> Result<Uri, InvalidPath> {
    let mut target = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        target.push('/');
    }
    target.push_str(&encode_path(path));
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let path_and_query = PathAndQuery::try_from(target).map_err(|_| InvalidPath)?;
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|_| InvalidPath)
}

/// `path` with the bytes a path cannot hold percent-encoded; valid escapes
/// and RFC 3986 `pchar`s are kept. Borrowed when nothing changes.
fn encode_path(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let keep = |i: usize| match bytes[i] {
        b'%' => {
            bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit()
        }
        b => b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b),
    };
    if (0..bytes.len()).all(keep) {
        return Cow::Borrowed(path);
    }
    let mut encoded = String::with_capacity(path.len() + 8);
    for (i, &byte) in bytes.iter().enumerate() {
        if keep(i) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Cow::Owned(encoded)
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest
/// percent-encoded.
pub(crate) fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => {
                let _ = write!(escaped, "%{byte:02X}");
            }
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_query_and_the_authority() {
        let uri: Uri = "http://a.test:8080/old?x=1&y".parse().unwrap();
        assert_eq!(
            with_path(&uri, "/new").unwrap(),
            "http://a.test:8080/new?x=1&y"
        );
        let uri: Uri = "/old".parse().unwrap();
        assert_eq!(with_path(&uri, "relative").unwrap(), "/relative");
    }

    #[test]
    fn encodes_what_a_path_cannot_hold() {
        assert_eq!(encode_path("/a%20b/c:d@e"), "/a%20b/c:d@e");
        assert_eq!(encode_path("/a b?#%zz/é"), "/a%20b%3F%23%25zz/%C3%A9");
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(with_path(&uri, "/a b").unwrap(), "/a%20b");
    }
}
