//! `replacePathRegex`: when the expression matches the path, every match is
//! replaced (Go's `ReplaceAllString`), the previous path goes to
//! `X-Replaced-Path`, and the query is kept.
//!
//! Replacements use Go's syntax, which is the regex crate's: `$1`, `${1}`,
//! `${name}`; `$1a` names a group `1a` in both. An empty replacement turns
//! the middleware off, as in Traefik.

use http::{HeaderValue, Request, Response};
use regex::Regex;
use sluice_proto::v1;

use super::uri::{X_REPLACED_PATH, with_path};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `replacePathRegex` middleware.
#[derive(Debug)]
pub(crate) struct ReplacePathRegex {
    regex: Regex,
    replacement: String,
}

impl ReplacePathRegex {
    /// From the snapshot; the expression is trimmed, as Traefik does.
    pub(crate) fn new(config: &v1::ReplacePathRegex) -> Result<Self, MiddlewareBuildError> {
        Ok(Self {
            regex: MiddlewareBuildError::regex("replacePathRegex.regex", config.regex.trim())?,
            replacement: config.replacement.clone(),
        })
    }

    /// Rewrites a matching path and calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let path = req.uri().path();
        if self.replacement.is_empty() || !self.regex.is_match(path) {
            return next.run(req, ctx).await;
        }
        let previous = HeaderValue::from_str(path).ok();
        let replaced = self.regex.replace_all(path, self.replacement.as_str());
        match with_path(req.uri(), &replaced) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(invalid) => return invalid.response(),
        }
        if let Some(previous) = previous {
            req.headers_mut().append(X_REPLACED_PATH, previous);
        }
        next.run(req, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, request, send};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    async fn rewrite(regex: &str, replacement: &str, path: &str) -> (String, Option<String>) {
        let backend = Backend::new();
        let middleware = config(
            "rewrite",
            Kind::ReplacePathRegex(v1::ReplacePathRegex {
                regex: regex.into(),
                replacement: replacement.into(),
            }),
        );
        let req = request(Request::get(path).body(()).unwrap());
        send(&[middleware], &backend, req).await;
        let seen = backend.seen().unwrap();
        let replaced = seen
            .headers
            .get("x-replaced-path")
            .map(|v| v.to_str().unwrap().to_owned());
        (seen.uri.to_string(), replaced)
    }

    #[tokio::test]
    async fn the_api3_case_from_the_issue() {
        assert_eq!(
            rewrite("^/api3/(.*)", "/api/$1", "/api3/users?id=1").await,
            ("/api/users?id=1".into(), Some("/api3/users".into()))
        );
    }

    #[tokio::test]
    async fn go_replacement_syntax() {
        assert_eq!(
            rewrite("^/foo/(?P<rest>.*)", "/bar/${rest}", "/foo/x")
                .await
                .0,
            "/bar/x"
        );
        assert_eq!(rewrite("^/(a)(b)", "/${1}x$2", "/ab").await.0, "/axb");
        // `$1a` is the (missing) group `1a`, in Go as here.
        assert_eq!(rewrite("^/(a)", "/$1a", "/a").await.0, "/");
        // Every match is replaced.
        assert_eq!(rewrite("o", "0", "/foo/bo").await.0, "/f00/b0");
    }

    #[tokio::test]
    async fn no_match_or_no_replacement_leaves_the_path() {
        assert_eq!(
            rewrite("^/api3/(.*)", "/api/$1", "/other?x").await,
            ("/other?x".into(), None)
        );
        assert_eq!(
            rewrite("^/api3/(.*)", "", "/api3/x").await,
            ("/api3/x".into(), None)
        );
    }
}
