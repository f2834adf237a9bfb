//! Unit tests of the `headers` middleware.

use std::collections::BTreeMap;

use http::{Method, Request, Response, StatusCode};
use sluice_proto::v1::{self, middleware::Kind};

use super::super::test_util::{Backend, build_error, config, headers, request, send, text};
use crate::body::ProxyBody;

fn middleware(headers: v1::Headers) -> v1::Middleware {
    config("headers", Kind::Headers(headers))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn get(path: &str, pairs: &[(&str, &str)]) -> Request<ProxyBody> {
    let mut req = Request::get(path);
    for (name, value) in pairs {
        req = req.header(*name, *value);
    }
    request(req.body(()).unwrap())
}

/// A backend answering with these headers.
fn backend_with(pairs: &'static [(&'static str, &'static str)]) -> Backend {
    Backend::answering(move |_| {
        let mut response = Response::builder();
        for (name, value) in pairs {
            response = response.header(*name, *value);
        }
        response.body(ProxyBody::full("backend")).unwrap()
    })
}

#[tokio::test]
async fn custom_request_and_response_headers() {
    let config = middleware(v1::Headers {
        custom_request_headers: map(&[
            ("X-Script-Name", "test"),
            ("X-Remove", ""),
            ("Host", "rewritten.test"),
        ]),
        custom_response_headers: map(&[("X-Custom-Response", "value"), ("Server", "")]),
        ..Default::default()
    });
    let backend = backend_with(&[("server", "nginx"), ("x-other", "kept")]);
    let req = get("/", &[("x-remove", "gone"), ("host", "a.test")]);
    let response = send(&[config], &backend, req).await;
    let seen = backend.seen().unwrap();
    assert_eq!(seen.headers["x-script-name"], "test");
    assert!(!seen.headers.contains_key("x-remove"));
    assert_eq!(seen.headers["host"], "rewritten.test");
    let got = headers(&response);
    assert_eq!(got["x-custom-response"], "value");
    assert_eq!(got["x-other"], "kept");
    assert!(!got.contains_key("server"));
}

#[tokio::test]
async fn an_empty_x_forwarded_for_is_not_sent() {
    let config = middleware(v1::Headers {
        custom_request_headers: map(&[("X-Forwarded-For", "")]),
        ..Default::default()
    });
    let backend = Backend::new();
    send(
        &[config],
        &backend,
        get("/", &[("x-forwarded-for", "1.1.1.1")]),
    )
    .await;
    assert!(
        !backend
            .seen()
            .unwrap()
            .headers
            .contains_key("x-forwarded-for")
    );
    assert_eq!(backend.forward_for(), Some(false));
}

#[tokio::test]
async fn security_headers() {
    let config = middleware(v1::Headers {
        frame_deny: true,
        content_type_nosniff: true,
        browser_xss_filter: true,
        content_security_policy: "default-src 'self'".into(),
        content_security_policy_report_only: "script-src 'none'".into(),
        referrer_policy: "no-referrer".into(),
        permissions_policy: "camera=()".into(),
        sts_seconds: 31_536_000,
        sts_include_subdomains: true,
        sts_preload: true,
        public_key: "pin-sha256=\"x\"; max-age=5".into(),
        ..Default::default()
    });
    let backend = backend_with(&[("x-frame-options", "SAMEORIGIN")]);
    let response = send(std::slice::from_ref(&config), &backend, get("/", &[])).await;
    let got = headers(&response);
    assert_eq!(got["x-frame-options"], "DENY");
    assert_eq!(got["x-content-type-options"], "nosniff");
    assert_eq!(got["x-xss-protection"], "1; mode=block");
    assert_eq!(got["content-security-policy"], "default-src 'self'");
    assert_eq!(
        got["content-security-policy-report-only"],
        "script-src 'none'"
    );
    assert_eq!(got["referrer-policy"], "no-referrer");
    assert_eq!(got["permissions-policy"], "camera=()");
    // Plain HTTP: no STS, no key pins.
    assert!(!got.contains_key("strict-transport-security"));
    assert!(!got.contains_key("public-key-pins"));

    // HTTPS as an SSL proxy header tells.
    let Some(Kind::Headers(mut https)) = config.kind else {
        unreachable!()
    };
    https.ssl_proxy_headers = map(&[("X-Forwarded-Proto", "https")]);
    https.custom_frame_options_value = "SAMEORIGIN".into();
    https.custom_browser_xss_value = "0".into();
    let response = send(
        &[middleware(https.clone())],
        &Backend::new(),
        get("/", &[("x-forwarded-proto", "https")]),
    )
    .await;
    let got = headers(&response);
    assert_eq!(
        got["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    assert_eq!(got["public-key-pins"], "pin-sha256=\"x\"; max-age=5");
    assert_eq!(got["x-frame-options"], "SAMEORIGIN");
    assert_eq!(got["x-xss-protection"], "0");

    // forceSTSHeader sends STS over plain HTTP; isDevelopment never does.
    https.force_sts_header = true;
    https.sts_include_subdomains = false;
    https.sts_preload = false;
    let response = send(&[middleware(https.clone())], &Backend::new(), get("/", &[])).await;
    assert_eq!(
        headers(&response)["strict-transport-security"],
        "max-age=31536000"
    );
    https.is_development = true;
    let response = send(&[middleware(https)], &Backend::new(), get("/", &[])).await;
    assert!(!headers(&response).contains_key("strict-transport-security"));
}

#[tokio::test]
async fn allowed_hosts() {
    let config = |development| {
        middleware(v1::Headers {
            allowed_hosts: vec!["app.test".into(), "Other.test:8080".into()],
            hosts_proxy_headers: vec!["X-Forwarded-Host".into()],
            is_development: development,
            ..Default::default()
        })
    };
    let status = |config, pairs: &'static [(&'static str, &'static str)]| async move {
        send(&[config], &Backend::new(), get("/", pairs)).await
    };
    assert_eq!(
        status(config(false), &[("host", "APP.test")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        status(config(false), &[("host", "other.test:8080")])
            .await
            .status(),
        StatusCode::OK
    );
    let response = status(config(false), &[("host", "app.test:80")]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(text(response).await, "Bad Host\n");
    assert_eq!(
        status(
            config(false),
            &[("host", "evil.test"), ("x-forwarded-host", "app.test")]
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        status(config(true), &[("host", "evil.test")])
            .await
            .status(),
        StatusCode::OK
    );
}

fn cors() -> v1::Headers {
    v1::Headers {
        access_control_allow_methods: vec!["GET".into(), "OPTIONS".into(), "PUT".into()],
        access_control_allow_headers: vec!["X-Custom".into(), "Content-Type".into()],
        access_control_allow_origin_list: vec!["https://foo.bar.org".into()],
        access_control_allow_origin_list_regex: vec![r"^https://([a-z]+)\.example\.org$".into()],
        access_control_expose_headers: vec!["X-Total".into()],
        access_control_max_age: 100,
        access_control_allow_credentials: true,
        add_vary_header: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn cors_preflight_is_answered_here() {
    let backend = Backend::new();
    let req = request(
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api")
            .header("origin", "https://foo.bar.org")
            .header("access-control-request-method", "PUT")
            .body(())
            .unwrap(),
    );
    let response = send(&[middleware(cors())], &backend, req).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(backend.seen().is_none());
    let got = headers(&response);
    assert_eq!(got["access-control-allow-origin"], "https://foo.bar.org");
    assert_eq!(got["access-control-allow-methods"], "GET,OPTIONS,PUT");
    assert_eq!(got["access-control-allow-headers"], "X-Custom,Content-Type");
    assert_eq!(got["access-control-allow-credentials"], "true");
    assert_eq!(got["access-control-max-age"], "100");
    assert!(!got.contains_key("access-control-expose-headers"));
    assert_eq!(text(response).await, "");

    // An OPTIONS without Access-Control-Request-Method is a normal request.
    let req = request(
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api")
            .header("origin", "https://foo.bar.org")
            .body(())
            .unwrap(),
    );
    send(&[middleware(cors())], &backend, req).await;
    assert!(backend.seen().is_some());
}

#[tokio::test]
async fn cors_headers_on_responses() {
    let response = send(
        &[middleware(cors())],
        &backend_with(&[("vary", "Accept-Encoding")]),
        get("/", &[("origin", "https://abc.example.org")]),
    )
    .await;
    let got = headers(&response);
    assert_eq!(
        got["access-control-allow-origin"],
        "https://abc.example.org"
    );
    assert_eq!(got["access-control-allow-credentials"], "true");
    assert_eq!(got["access-control-expose-headers"], "X-Total");
    assert_eq!(got["vary"], "Accept-Encoding,Origin");

    let response = send(
        &[middleware(cors())],
        &Backend::new(),
        get("/", &[("origin", "https://evil.org")]),
    )
    .await;
    let got = headers(&response);
    assert!(!got.contains_key("access-control-allow-origin"));
    assert_eq!(got["vary"], "Origin");

    // `*` answers `*`, even without an Origin.
    let mut any = cors();
    any.access_control_allow_origin_list = vec!["*".into()];
    any.add_vary_header = false;
    let response = send(&[middleware(any)], &Backend::new(), get("/", &[])).await;
    let got = headers(&response);
    assert_eq!(got["access-control-allow-origin"], "*");
    assert!(!got.contains_key("vary"));
}

#[test]
fn invalid_options_fail_the_build() {
    let error = build_error(middleware(v1::Headers {
        custom_request_headers: map(&[("Bad Name", "x")]),
        ..Default::default()
    }));
    assert_eq!(
        error,
        "middleware `headers@test` (headers): headers.customRequestHeaders `Bad Name`: invalid header name"
    );
    let error = build_error(middleware(v1::Headers {
        access_control_allow_origin_list_regex: vec!["(".into()],
        ..Default::default()
    }));
    assert!(
        error.starts_with(
            "middleware `headers@test` (headers): headers.accessControlAllowOriginListRegex[0] `(`"
        ),
        "{error}"
    );
}
