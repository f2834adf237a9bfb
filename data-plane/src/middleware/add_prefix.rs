//! `addPrefix`: prepends a prefix to the request path (Traefik's
//! `prefix + path`, so `/api` + `/users` is `/api/users`).

use http::{Request, Response};
use sluice_proto::v1;

use super::uri::with_path;
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `addPrefix` middleware.
#[derive(Debug)]
pub(crate) struct AddPrefix {
    prefix: String,
}

impl AddPrefix {
    /// From the snapshot; the prefix is required.
    pub(crate) fn new(config: &v1::AddPrefix) -> Result<Self, MiddlewareBuildError> {
        if config.prefix.is_empty() {
            return Err(MiddlewareBuildError::Required("addPrefix.prefix"));
        }
        Ok(Self {
            prefix: config.prefix.clone(),
        })
    }

    /// Prefixes the path and calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let path = format!("{}{}", self.prefix, req.uri().path());
        match with_path(req.uri(), &path) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(invalid) => return invalid.response(),
        }
        next.run(req, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, build_error, config, request, send};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn add_prefix(prefix: &str) -> v1::Middleware {
        config(
            "add",
            Kind::AddPrefix(v1::AddPrefix {
                prefix: prefix.into(),
            }),
        )
    }

    #[tokio::test]
    async fn prepends_the_prefix_and_keeps_the_query() {
        let backend = Backend::new();
        let req = request(Request::get("/users?id=1").body(()).unwrap());
        send(&[add_prefix("/api")], &backend, req).await;
        assert_eq!(backend.seen().unwrap().uri, "/api/users?id=1");

        let backend = Backend::new();
        let req = request(Request::get("/").body(()).unwrap());
        send(&[add_prefix("/api")], &backend, req).await;
        assert_eq!(backend.seen().unwrap().uri, "/api/");
    }

    #[test]
    fn the_prefix_is_required() {
        assert_eq!(
            build_error(add_prefix("")),
            "middleware `add@test` (addPrefix): addPrefix.prefix: required"
        );
    }
}
