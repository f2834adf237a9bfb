//! `stripPrefixRegex`: removes the first match of the first expression that
//! matches at the start of the path, records it in `X-Forwarded-Prefix`, and
//! keeps the rest with a leading `/` (Traefik: `FindStringSubmatchIndex`, a
//! match that does not start at 0 does not count).

use http::{HeaderValue, Request, Response};
use regex::Regex;
use sluice_proto::v1;

use super::uri::{X_FORWARDED_PREFIX, with_path};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `stripPrefixRegex` middleware.
#[derive(Debug)]
pub(crate) struct StripPrefixRegex {
    expressions: Vec<Regex>,
}

impl StripPrefixRegex {
    /// From the snapshot; expressions are trimmed, as Traefik does.
    pub(crate) fn new(config: &v1::StripPrefixRegex) -> Result<Self, MiddlewareBuildError> {
        let expressions = config
            .regex
            .iter()
            .enumerate()
            .map(|(index, regex)| {
                MiddlewareBuildError::regex(
                    format!("stripPrefixRegex.regex[{index}]"),
                    regex.trim(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { expressions })
    }

    /// Strips the matched prefix and calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let path = req.uri().path();
        let Some(end) = self
            .expressions
            .iter()
            .find_map(|regex| regex.find(path).filter(|m| m.start() == 0).map(|m| m.end()))
        else {
            return next.run(req, ctx).await;
        };
        let (prefix, rest) = path.split_at(end);
        let header = HeaderValue::from_str(prefix).ok();
        match with_path(req.uri(), rest) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(invalid) => return invalid.response(),
        }
        if let Some(header) = header {
            req.headers_mut().append(X_FORWARDED_PREFIX, header);
        }
        next.run(req, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, build_error, config, request, send};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn strip(regex: &[&str]) -> v1::Middleware {
        config(
            "strip",
            Kind::StripPrefixRegex(v1::StripPrefixRegex {
                regex: regex.iter().map(|r| (*r).to_owned()).collect(),
            }),
        )
    }

    async fn seen(regex: &[&str], path: &str) -> (String, Option<String>) {
        let backend = Backend::new();
        let req = request(Request::get(path).body(()).unwrap());
        send(&[strip(regex)], &backend, req).await;
        let seen = backend.seen().unwrap();
        let prefix = seen
            .headers
            .get("x-forwarded-prefix")
            .map(|v| v.to_str().unwrap().to_owned());
        (seen.uri.to_string(), prefix)
    }

    #[tokio::test]
    async fn strips_a_match_at_the_start() {
        assert_eq!(
            seen(&["/foo/[a-z0-9]+/[0-9]+/"], "/foo/abc/12/bar?x=1").await,
            ("/bar?x=1".into(), Some("/foo/abc/12/".into()))
        );
        assert_eq!(
            seen(&[" /a/[0-9]+ "], "/a/1").await,
            ("/".into(), Some("/a/1".into()))
        );
    }

    #[tokio::test]
    async fn only_matches_at_the_start_count() {
        assert_eq!(seen(&["/b"], "/a/b/c").await, ("/a/b/c".into(), None));
        assert_eq!(
            seen(&["/b", "/a"], "/a/b/c").await,
            ("/b/c".into(), Some("/a".into()))
        );
    }

    #[test]
    fn bad_expressions_fail_the_build() {
        let error = build_error(strip(&["/ok", "(["]));
        assert!(
            error.starts_with(
                "middleware `strip@test` (stripPrefixRegex): stripPrefixRegex.regex[1] `([`: regex parse error"
            ),
            "{error}"
        );
    }
}
