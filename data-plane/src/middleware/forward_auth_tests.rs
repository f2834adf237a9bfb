//! Tests of `forwardAuth`'s header handling; the exchange with a real auth
//! server is in `traffic_tests`.

use super::*;
use crate::middleware::test_util::build_error;
use sluice_proto::v1::middleware::Kind;

fn options() -> v1::ForwardAuth {
    v1::ForwardAuth {
        address: "http://auth.test:4181/verify?x=1".into(),
        max_body_size: -1,
        ..Default::default()
    }
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn peer() -> HeaderValue {
    HeaderValue::from_static("10.0.0.9")
}

#[test]
fn auth_requests_carry_the_original_request() {
    let auth = ForwardAuth::new(&options()).unwrap();
    let original = parts(
        "POST",
        "/api/items?id=3",
        &[
            ("host", "app.test"),
            ("authorization", "Bearer t"),
            ("content-length", "12"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-host", "forged.test"),
        ],
    );
    let req = auth.auth_request(&original, peer(), ProxyBody::empty());
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri(), "http://auth.test:4181/verify?x=1");
    let headers = req.headers();
    assert_eq!(headers["authorization"], "Bearer t");
    assert!(!headers.contains_key("host"));
    assert!(!headers.contains_key("content-length"));
    assert!(!headers.contains_key("x-hop"));
    assert_eq!(headers["x-forwarded-for"], "10.0.0.9");
    assert_eq!(headers["x-forwarded-method"], "POST");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "app.test");
    assert_eq!(headers["x-forwarded-uri"], "/api/items?id=3");
    assert!(!headers.contains_key("x-forwarded-port"));

    // Trusted: the client's values are kept, its X-Forwarded-For extended.
    let mut trusting = options();
    trusting.trust_forward_header = true;
    trusting.preserve_request_method = true;
    let auth = ForwardAuth::new(&trusting).unwrap();
    let req = auth.auth_request(&original, peer(), ProxyBody::empty());
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.headers()["x-forwarded-for"], "1.1.1.1, 10.0.0.9");
    assert_eq!(req.headers()["x-forwarded-host"], "forged.test");
}

#[test]
fn auth_request_headers_filter_what_is_sent() {
    let mut filtered = options();
    filtered.auth_request_headers = vec!["Authorization".into(), "X-Missing".into()];
    let auth = ForwardAuth::new(&filtered).unwrap();
    let original = parts(
        "GET",
        "/",
        &[
            ("host", "app.test"),
            ("authorization", "Basic x"),
            ("cookie", "a=1"),
        ],
    );
    let req = auth.auth_request(&original, peer(), ProxyBody::empty());
    let mut names: Vec<&str> = req.headers().keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authorization",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-method",
            "x-forwarded-proto",
            "x-forwarded-uri"
        ]
    );
}

#[test]
fn auth_response_headers_replace_the_clients() {
    let mut copying = options();
    copying.auth_response_headers = vec!["X-Auth-User".into(), "X-Auth-Absent".into()];
    copying.auth_response_headers_regex = "^X-Group-".into();
    let auth = ForwardAuth::new(&copying).unwrap();
    let mut from_auth = HeaderMap::new();
    from_auth.insert("x-auth-user", "alice".parse().unwrap());
    from_auth.append("x-group-a", "1".parse().unwrap());
    from_auth.append("x-group-a", "2".parse().unwrap());
    from_auth.insert("x-other", "no".parse().unwrap());
    let mut request = HeaderMap::new();
    request.insert("x-auth-user", "forged".parse().unwrap());
    request.insert("x-auth-absent", "forged".parse().unwrap());
    request.insert("x-group-b", "forged".parse().unwrap());
    request.insert("x-kept", "yes".parse().unwrap());
    auth.copy_auth_headers(&from_auth, &mut request);
    assert_eq!(request["x-auth-user"], "alice");
    assert!(!request.contains_key("x-auth-absent"));
    assert!(!request.contains_key("x-group-b"));
    let groups: Vec<_> = request.get_all("x-group-a").iter().collect();
    assert_eq!(groups, ["1", "2"]);
    assert!(!request.contains_key("x-other"));
    assert_eq!(request["x-kept"], "yes");
}

#[test]
fn helpers() {
    assert_eq!(canonical_name("x-auth-USER"), "X-Auth-User");
    assert_eq!(
        cookie_name(&HeaderValue::from_static("sid=abc; Path=/")),
        "sid"
    );
    assert_eq!(cookie_name(&HeaderValue::from_static(" flag ")), "flag");
    let base: Uri = "http://auth.test:4181/oauth/verify".parse().unwrap();
    assert_eq!(resolve(&base, "https://idp/login"), "https://idp/login");
    assert_eq!(
        resolve(&base, "/login?x=1"),
        "http://auth.test:4181/login?x=1"
    );
    assert_eq!(resolve(&base, "login"), "http://auth.test:4181/oauth/login");
    assert_eq!(resolve(&base, "//idp/login"), "http://idp/login");
}

#[test]
fn addresses_are_http_or_https_and_tls_options_fail_the_build() {
    let config =
        |auth: v1::ForwardAuth| crate::middleware::test_util::config("fa", Kind::ForwardAuth(auth));
    let mut https = options();
    https.address = "https://auth.test/verify".into();
    let auth = ForwardAuth::new(&https).unwrap();
    assert_eq!(auth.protocol, Protocol::Https);
    let req = auth.auth_request(&parts("GET", "/", &[]), peer(), ProxyBody::empty());
    assert_eq!(req.uri(), "https://auth.test/verify");
    let mut ftp = options();
    ftp.address = "ftp://auth.test/verify".into();
    assert_eq!(
        build_error(config(ftp)),
        "middleware `fa@test` (forwardAuth): forwardAuth.address `ftp://auth.test/verify`: expected an http:// or https:// URL"
    );
    let mut tls = options();
    tls.tls = Some(v1::ClientTls::default());
    assert_eq!(
        build_error(config(tls)),
        "middleware `fa@test` (forwardAuth): forwardAuth.tls: not supported by this proxy version"
    );
}
