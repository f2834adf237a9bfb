//! `errors`: when the response status is in one of the `status` ranges, the
//! client gets a page from `service` instead, with the original status, as
//! Traefik's custom error pages.
//!
//! The page is a `GET` of `query` (a leading `/` added; `{status}` and
//! `{originalStatus}` replaced by the status, `{url}` by the request URI,
//! query-escaped as Go's `url.QueryEscape` does), with the original
//! request's headers and `Host`. The page's headers and body are sent with
//! the original status; the original body is dropped. The service is
//! resolved when the runtime is built, so a missing one fails the build.

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use sluice_proto::v1;

use super::uri::query_escape;
use super::{BuildContext, MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, status_response};
use crate::forward::{Origin, serve};
use crate::service::Service;

/// A built `errors` middleware.
#[derive(Debug)]
pub(crate) struct ErrorsPage {
    /// Inclusive status ranges.
    ranges: Vec<(u16, u16)>,
    service: Arc<Service>,
    query: String,
}

impl ErrorsPage {
    /// From the snapshot; the service comes from the runtime's services.
    pub(crate) fn new(
        config: &v1::Errors,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        if config.service.is_empty() {
            return Err(MiddlewareBuildError::Required("errors.service"));
        }
        let ranges = config
            .status
            .iter()
            .map(|range| {
                let code = |value: u32| {
                    u16::try_from(value)
                        .ok()
                        .filter(|code| (100..=599).contains(code))
                        .ok_or(MiddlewareBuildError::Status {
                            option: "errors.status",
                            value,
                        })
                };
                Ok((code(range.from)?, code(range.to)?))
            })
            .collect::<Result<_, MiddlewareBuildError>>()?;
        let service = ctx.service("errors.service", &config.service)?;
        Ok(Self {
            ranges,
            service,
            query: config.query.clone(),
        })
    }

    /// Calls `next`, and answers with the error page when its status is
    /// caught.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let headers = req.headers().clone();
        let uri = req.uri().clone();
        let response = next.run(req, ctx).await;
        let status = response.status();
        if !self.catches(status) {
            return response;
        }
        drop(response);
        tracing::debug!(
            router = ctx.router,
            status = status.as_u16(),
            "serving an error page"
        );
        let Some(page_request) = self.page_request(status, &uri, headers) else {
            return status_response(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut page = serve(&self.service, page_request, &Origin::of(ctx)).await;
        *page.status_mut() = status;
        page
    }

    fn catches(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.ranges
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&code))
    }

    /// The request for the page of `status`, for a request to `uri` with
    /// `headers`.
    fn page_request(
        &self,
        status: StatusCode,
        uri: &Uri,
        mut headers: HeaderMap,
    ) -> Option<Request<ProxyBody>> {
        let code = status.as_u16().to_string();
        let original = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let path = format!("/{}", self.query.trim_start_matches('/'))
            .replace("{status}", &code)
            .replace("{originalStatus}", &code)
            .replace("{url}", &query_escape(original));
        let path: PathAndQuery = path.parse().ok()?;
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(path);
        let mut req = Request::new(ProxyBody::empty());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = Uri::from_parts(parts).ok()?;
        headers.remove(CONTENT_LENGTH);
        headers.remove(TRANSFER_ENCODING);
        *req.headers_mut() = headers;
        Some(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Services;
    use crate::middleware::test_util::shared_state;
    use crate::service::ServiceBuilder;
    use sluice_proto::v1::middleware::Kind;

    fn errors(query: &str, service: &str) -> v1::Middleware {
        v1::Middleware {
            name: "err@test".into(),
            kind: Some(Kind::Errors(v1::Errors {
                status: vec![
                    v1::StatusRange { from: 500, to: 599 },
                    v1::StatusRange { from: 404, to: 404 },
                ],
                service: service.into(),
                query: query.into(),
            })),
            ..Default::default()
        }
    }

    fn page_service() -> v1::Service {
        crate::proxy_tests::service("pages@test", "http://127.0.0.1:1", None)
    }

    fn build(config: &v1::Middleware, services: &mut dyn Services) -> ErrorsPage {
        let shared = shared_state();
        let mut used = Vec::new();
        let mut ctx = BuildContext {
            name: "err@test",
            states: &shared.middlewares,
            used: &mut used,
            services,
        };
        let Some(Kind::Errors(options)) = &config.kind else {
            unreachable!()
        };
        ErrorsPage::new(options, &mut ctx).unwrap()
    }

    #[test]
    fn pages_are_requested_with_the_placeholders_replaced() {
        let shared = shared_state();
        let services = [page_service()];
        let mut builder = ServiceBuilder::new(&services, &shared);
        let page = build(
            &errors(
                "{status}.html?from={url}&was={originalStatus}",
                "pages@test",
            ),
            &mut builder,
        );
        assert!(page.catches(StatusCode::BAD_GATEWAY));
        assert!(page.catches(StatusCode::NOT_FOUND));
        assert!(!page.catches(StatusCode::FORBIDDEN));
        let mut headers = HeaderMap::new();
        headers.insert("host", "app.test".parse().unwrap());
        headers.insert("content-length", "3".parse().unwrap());
        let uri: Uri = "/a b/c?x=1&y=2".replace(' ', "%20").parse().unwrap();
        let req = page
            .page_request(StatusCode::BAD_GATEWAY, &uri, headers)
            .unwrap();
        assert_eq!(req.method(), Method::GET);
        assert_eq!(
            req.uri().to_string(),
            "/502.html?from=%2Fa%2520b%2Fc%3Fx%3D1%26y%3D2&was=502"
        );
        assert_eq!(req.headers()["host"], "app.test");
        assert!(!req.headers().contains_key("content-length"));
        let plain = build(&errors("", "pages@test"), &mut builder);
        let req = plain
            .page_request(StatusCode::NOT_FOUND, &uri, HeaderMap::new())
            .unwrap();
        assert_eq!(req.uri().to_string(), "/");
    }

    #[test]
    fn a_missing_service_fails_the_build() {
        assert_eq!(
            crate::middleware::test_util::build_error(errors("/", "nope@test")),
            "middleware `err@test` (errors): errors.service `nope@test`: service `nope@test` does not exist"
        );
    }

    #[test]
    fn query_escape_is_gos() {
        assert_eq!(query_escape("/a b?c=d&e"), "%2Fa+b%3Fc%3Dd%26e");
        assert_eq!(query_escape("AZaz09-_.~"), "AZaz09-_.~");
    }
}
