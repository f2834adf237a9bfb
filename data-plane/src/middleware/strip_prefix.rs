//! `stripPrefix`: removes the first listed prefix the path starts with (in
//! the order written, as Traefik does) and records it in
//! `X-Forwarded-Prefix`. Prefixes match characters, not segments (`/foo`
//! strips `/foobar` to `/bar`), and the remaining path gets a leading `/`.
//!
//! The deprecated `forceSlash` changes nothing here: it only differs from the
//! default for an empty remaining path, which Traefik's Go client sends as
//! `/` too.

use http::{HeaderValue, Request, Response};
use sluice_proto::v1;

use super::uri::{X_FORWARDED_PREFIX, with_path};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `stripPrefix` middleware.
#[derive(Debug)]
pub(crate) struct StripPrefix {
    /// Each prefix with its `X-Forwarded-Prefix` value (trimmed).
    prefixes: Vec<(String, HeaderValue)>,
}

impl StripPrefix {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::StripPrefix) -> Result<Self, MiddlewareBuildError> {
        let prefixes = config
            .prefixes
            .iter()
            .enumerate()
            .map(|(index, prefix)| {
                let header = MiddlewareBuildError::header_value(
                    format!("stripPrefix.prefixes[{index}]"),
                    prefix.trim(),
                )?;
                Ok((prefix.clone(), header))
            })
            .collect::<Result<_, MiddlewareBuildError>>()?;
        Ok(Self { prefixes })
    }

    /// Strips the first matching prefix and calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let path = req.uri().path();
        let Some((prefix, header)) = self
            .prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        else {
            return next.run(req, ctx).await;
        };
        match with_path(req.uri(), &path[prefix.len()..]) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(invalid) => return invalid.response(),
        }
        req.headers_mut().append(X_FORWARDED_PREFIX, header.clone());
        next.run(req, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, request, send};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    async fn strip(prefixes: &[&str], force_slash: bool, path: &str) -> (String, Option<String>) {
        let backend = Backend::new();
        let middleware = config(
            "strip",
            Kind::StripPrefix(v1::StripPrefix {
                prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
                force_slash,
            }),
        );
        let req = request(Request::get(path).body(()).unwrap());
        send(&[middleware], &backend, req).await;
        let seen = backend.seen().unwrap();
        let prefix = seen
            .headers
            .get("x-forwarded-prefix")
            .map(|v| v.to_str().unwrap().to_owned());
        (seen.uri.to_string(), prefix)
    }

    #[tokio::test]
    async fn strips_the_first_matching_prefix_in_order() {
        assert_eq!(
            strip(&["/foo", "/foo/bar"], false, "/foo/bar/baz?q=1").await,
            ("/bar/baz?q=1".into(), Some("/foo".into()))
        );
        assert_eq!(
            strip(&["/foo/bar", "/foo"], false, "/foo/bar/baz").await,
            ("/baz".into(), Some("/foo/bar".into()))
        );
        assert_eq!(
            strip(&["/api"], false, "/other").await,
            ("/other".into(), None)
        );
    }

    #[tokio::test]
    async fn the_rest_starts_with_a_slash() {
        assert_eq!(
            strip(&["/foo/"], false, "/foo/bar").await,
            ("/bar".into(), Some("/foo/".into()))
        );
        assert_eq!(strip(&["/foo"], false, "/foo").await.0, "/");
        // Traefik matches on characters, not segments.
        assert_eq!(strip(&["/foo"], false, "/foobar").await.0, "/bar");
    }

    #[tokio::test]
    async fn force_slash_gives_the_same_paths() {
        for force_slash in [false, true] {
            assert_eq!(strip(&["/foo"], force_slash, "/foo").await.0, "/");
            assert_eq!(strip(&["/foo"], force_slash, "/foo/").await.0, "/");
            assert_eq!(strip(&["/foo"], force_slash, "/foo/bar").await.0, "/bar");
        }
    }
}
