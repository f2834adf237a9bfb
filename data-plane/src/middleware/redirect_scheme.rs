//! `redirectScheme`: redirects to another scheme (and port), unless the
//! request already uses it.
//!
//! Traefik builds it on its regex redirect: the request URL, with the scheme
//! taken from `X-Forwarded-Proto` when present (kept only from trusted
//! peers) and default ports left out, is rewritten to
//! `scheme://host[:port]/path?query`; the port is left out when it is the
//! scheme's default. An unchanged URL goes through; statuses are those of
//! [`redirect`].

use http::{Request, Response};
use sluice_proto::v1;

use super::redirect_regex::{RequestScheme, redirect, request_url};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// A built `redirectScheme` middleware.
#[derive(Debug)]
pub(crate) struct RedirectScheme {
    scheme: String,
    /// `:port`, or empty for the scheme's default.
    port: String,
    permanent: bool,
}

impl RedirectScheme {
    /// From the snapshot; the scheme is required.
    pub(crate) fn new(config: &v1::RedirectScheme) -> Result<Self, MiddlewareBuildError> {
        if config.scheme.is_empty() {
            return Err(MiddlewareBuildError::Required("redirectScheme.scheme"));
        }
        let default = matches!(
            (config.scheme.as_str(), config.port.as_str()),
            ("http", "80") | ("https", "443")
        );
        let port = if config.port.is_empty() || default {
            String::new()
        } else {
            format!(":{}", config.port)
        };
        Ok(Self {
            scheme: config.scheme.clone(),
            port,
            permanent: config.permanent,
        })
    }

    /// Redirects a request on another scheme or port, else calls `next`.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let url = request_url(&req, RequestScheme::Forwarded);
        let location = format!(
            "{}://{}{}{}",
            self.scheme,
            host(&url),
            self.port,
            target(&url)
        );
        if location == url {
            return next.run(req, ctx).await;
        }
        redirect(&location, self.permanent, req.method())
    }
}

/// The host of `scheme://authority/target`: the authority without its port
/// (Traefik's `(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?`).
fn host(url: &str) -> &str {
    let authority = authority(url);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or(rest, |end| &rest[..end])
}

/// The path and query of `scheme://authority/target`.
fn target(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("", |start| &rest[start..])
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, build_error, config, headers, request, send};
    use super::*;
    use http::{Method, StatusCode};
    use sluice_proto::v1::middleware::Kind;

    fn redirect_scheme(scheme: &str, port: &str, permanent: bool) -> v1::Middleware {
        config(
            "https",
            Kind::RedirectScheme(v1::RedirectScheme {
                scheme: scheme.into(),
                port: port.into(),
                permanent,
            }),
        )
    }

    async fn location(
        middleware: v1::Middleware,
        req: Request<()>,
    ) -> (StatusCode, Option<String>) {
        let backend = Backend::new();
        let response = send(&[middleware], &backend, request(req)).await;
        (response.status(), headers(&response).remove("location"))
    }

    #[tokio::test]
    async fn redirects_to_the_scheme_and_port() {
        let req = || Request::get("/a?b=c").header("host", "app.test:8080");
        assert_eq!(
            location(redirect_scheme("https", "", true), req().body(()).unwrap()).await,
            (
                StatusCode::MOVED_PERMANENTLY,
                Some("https://app.test/a?b=c".into())
            )
        );
        assert_eq!(
            location(
                redirect_scheme("https", "8443", false),
                req().body(()).unwrap()
            )
            .await,
            (
                StatusCode::FOUND,
                Some("https://app.test:8443/a?b=c".into())
            )
        );
        assert_eq!(
            location(
                redirect_scheme("https", "443", false),
                req().body(()).unwrap()
            )
            .await,
            (StatusCode::FOUND, Some("https://app.test/a?b=c".into()))
        );
        let post = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", "[::1]:80")
            .body(())
            .unwrap();
        assert_eq!(
            location(redirect_scheme("https", "", true), post).await,
            (
                StatusCode::PERMANENT_REDIRECT,
                Some("https://[::1]/".into())
            )
        );
    }

    #[tokio::test]
    async fn requests_already_on_the_scheme_go_through() {
        let req = Request::get("/a")
            .header("host", "app.test")
            .header("x-forwarded-proto", "https")
            .body(())
            .unwrap();
        assert_eq!(
            location(redirect_scheme("https", "", true), req).await,
            (StatusCode::OK, None)
        );
        let req = Request::get("/a")
            .header("host", "app.test:80")
            .body(())
            .unwrap();
        assert_eq!(
            location(redirect_scheme("http", "", true), req).await,
            (StatusCode::OK, None)
        );
        // A WebSocket upgrade forwarded as `wss` is on https already.
        let req = Request::get("/ws")
            .header("host", "app.test")
            .header("x-forwarded-proto", "wss")
            .body(())
            .unwrap();
        assert_eq!(
            location(redirect_scheme("https", "", false), req).await,
            (StatusCode::OK, None)
        );
    }

    #[test]
    fn the_scheme_is_required() {
        assert_eq!(
            build_error(redirect_scheme("", "443", false)),
            "middleware `https@test` (redirectScheme): redirectScheme.scheme: required"
        );
    }
}
