//! `redirectRegex`: matches the request URL (`scheme://host[:port]/path?query`)
//! and, when the replacement changes it, redirects there. Also the redirect
//! response both redirect middlewares send.
//!
//! As Traefik: the URL is built from the request target when it is in
//! absolute form, else from the `Host` header (port included) and the path;
//! every match is replaced (`$1`, `${name}` as in Go); a URL the replacement
//! leaves unchanged goes on to the next handler. The status is 302 (301 when
//! `permanent`) for `GET`, 307 (308) for every other method, `HEAD`
//! included; the body is the status text.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use regex::Regex;
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, status_response};
use crate::dispatch::request_authority;

/// A built `redirectRegex` middleware.
#[derive(Debug)]
pub(crate) struct RedirectRegex {
    regex: Regex,
    replacement: String,
    permanent: bool,
}

impl RedirectRegex {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::RedirectRegex) -> Result<Self, MiddlewareBuildError> {
        Ok(Self {
            regex: MiddlewareBuildError::regex("redirectRegex.regex", &config.regex)?,
            replacement: config.replacement.clone(),
            permanent: config.permanent,
        })
    }

    /// Redirects a matching request, else calls `next`.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let url = request_url(&req, RequestScheme::Target);
        if !self.regex.is_match(&url) {
            return next.run(req, ctx).await;
        }
        let location = self.regex.replace_all(&url, self.replacement.as_str());
        if location == url {
            return next.run(req, ctx).await;
        }
        redirect(&location, self.permanent, req.method())
    }
}

/// Where the scheme of [`request_url`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestScheme {
    /// The request target (`http` unless it is absolute).
    Target,
    /// Also `X-Forwarded-Proto`, as `redirectScheme` reads it (`ws` and
    /// `wss` count as `http` and `https`); default ports are left out.
    Forwarded,
}

/// The URL the client asked for, as Traefik's redirect middlewares see it.
pub(super) fn request_url<B>(req: &Request<B>, scheme_from: RequestScheme) -> String {
    let uri = req.uri();
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let (mut scheme, authority) = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme @ ("http" | "https")), Some(authority)) => (scheme, authority.as_str()),
        _ => ("http", request_authority(req)),
    };
    if scheme_from == RequestScheme::Forwarded
        && let Some(proto) = req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    {
        scheme = if proto.eq_ignore_ascii_case("ws") {
            "http"
        } else if proto.eq_ignore_ascii_case("wss") {
            "https"
        } else {
            proto
        };
    }
    let mut authority = authority;
    if scheme_from == RequestScheme::Forwarded {
        let default_port = match scheme {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        if let Some(port) = default_port
            && let Some(host) = authority.strip_suffix(port)
            && !host.is_empty()
        {
            authority = host;
        }
    }
    format!("{scheme}://{authority}{target}")
}

/// A redirect to `location` answering a `method` request.
pub(super) fn redirect(location: &str, permanent: bool, method: &Method) -> Response<ProxyBody> {
    let Ok(location) = HeaderValue::from_str(location) else {
        tracing::debug!("redirect location is not a valid header value");
        return status_response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let get = method == Method::GET;
    let status = match (permanent, get) {
        (true, true) => StatusCode::MOVED_PERMANENTLY,
        (true, false) => StatusCode::PERMANENT_REDIRECT,
        (false, true) => StatusCode::FOUND,
        (false, false) => StatusCode::TEMPORARY_REDIRECT,
    };
    let mut response = status_response(status);
    response.headers_mut().insert(header::LOCATION, location);
    response
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, headers, request, send, text};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn redirect_regex(regex: &str, replacement: &str, permanent: bool) -> v1::Middleware {
        config(
            "redirect",
            Kind::RedirectRegex(v1::RedirectRegex {
                regex: regex.into(),
                replacement: replacement.into(),
                permanent,
            }),
        )
    }

    #[tokio::test]
    async fn redirects_matching_urls() {
        let middleware = redirect_regex("^http://localhost/(.*)", "http://mydomain/${1}", false);
        let backend = Backend::new();
        let req = request(
            Request::get("/a/b?c=d")
                .header("host", "localhost")
                .body(())
                .unwrap(),
        );
        let response = send(std::slice::from_ref(&middleware), &backend, req).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(headers(&response)["location"], "http://mydomain/a/b?c=d");
        assert_eq!(text(response).await, "Found");
        assert!(backend.seen().is_none());

        // The port is part of the URL.
        let req = request(
            Request::get("/a")
                .header("host", "localhost:8080")
                .body(())
                .unwrap(),
        );
        let response = send(&[middleware], &backend, req).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn statuses_follow_the_method_and_permanence() {
        for (method, permanent, status) in [
            (Method::GET, false, StatusCode::FOUND),
            (Method::GET, true, StatusCode::MOVED_PERMANENTLY),
            (Method::POST, false, StatusCode::TEMPORARY_REDIRECT),
            (Method::HEAD, true, StatusCode::PERMANENT_REDIRECT),
        ] {
            let req = request(
                Request::builder()
                    .method(method.clone())
                    .uri("http://a.test/x")
                    .body(())
                    .unwrap(),
            );
            let middleware = redirect_regex("^http://a.test/(.*)", "https://b.test/$1", permanent);
            let response = send(&[middleware], &Backend::new(), req).await;
            assert_eq!(response.status(), status, "{method} permanent={permanent}");
            assert_eq!(headers(&response)["location"], "https://b.test/x");
        }
    }

    #[tokio::test]
    async fn unchanged_urls_go_through() {
        let backend = Backend::new();
        let req = request(Request::get("/x").header("host", "a").body(()).unwrap());
        let middleware = redirect_regex("^http://a/(.*)", "http://a/$1", true);
        let response = send(&[middleware], &backend, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(backend.seen().is_some());
    }
}
