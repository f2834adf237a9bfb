//! Request path rewriting shared by the path middlewares (`addPrefix`,
//! `stripPrefix`, `replacePath` and their regex forms).
//!
//! The path a middleware sees is the request's, as routing normalised it
//! (percent-encoded, like Go's `URL.RawPath`). A rewritten path keeps the
//! query, the scheme and the authority of the request; bytes that cannot
//! appear in a path are percent-encoded, as Go's `URL.EscapedPath` does.

use std::borrow::Cow;
use std::fmt::Write;

use http::uri::PathAndQuery;
use http::{HeaderName, Request, Response, StatusCode, Uri};

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

/// Sets the path of `req` to `path` (a leading `/` added when missing),
/// keeping its query.
pub(crate) fn set_path<B>(req: &mut Request<B>, path: &str) -> Result<(), InvalidPath> {
    let mut target = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        target.push('/');
    }
    target.push_str(&encode_path(path));
    if let Some(query) = req.uri().query() {
        target.push('?');
        target.push_str(query);
    }
    let rebuilt = PathAndQuery::try_from(target)
        .ok()
        .and_then(|path_and_query| {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(path_and_query);
            Uri::from_parts(parts).ok()
        });
    match rebuilt {
        Some(uri) => {
            *req.uri_mut() = uri;
            Ok(())
        }
        None => Err(InvalidPath),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_query_and_the_authority() {
        let mut req = Request::get("http://a.test:8080/old?x=1&y")
            .body(())
            .unwrap();
        set_path(&mut req, "/new").unwrap();
        assert_eq!(req.uri(), "http://a.test:8080/new?x=1&y");
        let mut req = Request::get("/old").body(()).unwrap();
        set_path(&mut req, "relative").unwrap();
        assert_eq!(req.uri(), "/relative");
    }

    #[test]
    fn encodes_what_a_path_cannot_hold() {
        assert_eq!(encode_path("/a%20b/c:d@e"), "/a%20b/c:d@e");
        assert_eq!(encode_path("/a b?#%zz/é"), "/a%20b%3F%23%25zz/%C3%A9");
        let mut req = Request::get("/").body(()).unwrap();
        set_path(&mut req, "/a b").unwrap();
        assert_eq!(req.uri(), "/a%20b");
    }
}
