//! `replacePath`: replaces the request path (the query is kept) and records
//! the previous one in `X-Replaced-Path`.

use http::{HeaderValue, Request, Response};
use sluice_proto::v1;

use super::uri::{X_REPLACED_PATH, with_path};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `replacePath` middleware.
#[derive(Debug)]
pub(crate) struct ReplacePath {
    path: String,
}

impl ReplacePath {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::ReplacePath) -> Result<Self, MiddlewareBuildError> {
        Ok(Self {
            path: config.path.clone(),
        })
    }

    /// Replaces the path and calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let previous = HeaderValue::from_str(req.uri().path()).ok();
        match with_path(req.uri(), &self.path) {
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

    #[tokio::test]
    async fn replaces_the_path_and_keeps_the_query() {
        let backend = Backend::new();
        let middleware = config(
            "replace",
            Kind::ReplacePath(v1::ReplacePath {
                path: "/foo".into(),
            }),
        );
        let req = request(Request::get("/bar/baz?x=1").body(()).unwrap());
        send(&[middleware], &backend, req).await;
        let seen = backend.seen().unwrap();
        assert_eq!(seen.uri, "/foo?x=1");
        assert_eq!(seen.headers["x-replaced-path"], "/bar/baz");
    }
}
