//! Middlewares through the real request path: a snapshot with entry point
//! and router middlewares applied, a listener on 127.0.0.1, requests over a
//! socket to an echo backend.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sluice_proto::v1::{self, matcher::Kind, middleware::Kind as M};

use crate::proxy_tests::{Harness, echo_backend, full, leaf, middleware, router, service};

/// `htpasswd -nbm myusername secret`.
const MYUSERNAME: &str = "$apr1$zSyPEMHt$5JiuZjw.wlZhca7gaNbgn1";

async fn harness() -> Harness {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let mut api = router(
        "api@test",
        leaf(Kind::PathPrefix("/api3".into())),
        "echo@test",
    );
    api.middlewares = vec!["auth@test".into(), "rewrite@test".into(), "v1@test".into()];
    let mut strip = router(
        "strip@test",
        leaf(Kind::PathPrefix("/strip".into())),
        "echo@test",
    );
    strip.middlewares = vec!["strip@test".into()];
    let mut update = full(
        "1-a",
        vec![api, strip],
        vec![service("echo@test", &format!("http://{backend}"), None)],
    );
    let resources = update.upserts.as_mut().unwrap();
    resources.entry_points[0].middlewares = vec!["tag@test".into()];
    resources.middlewares = vec![
        middleware(
            "tag@test",
            M::Headers(v1::Headers {
                custom_request_headers: [("X-Entry".to_owned(), "web".to_owned())].into(),
                custom_response_headers: [("X-Served-By".to_owned(), "sluice".to_owned())].into(),
                ..Default::default()
            }),
        ),
        middleware(
            "auth@test",
            M::BasicAuth(v1::BasicAuth {
                users: vec![v1::HtpasswdUser {
                    user: "myusername".into(),
                    hash: MYUSERNAME.into(),
                }],
                realm: "traefik".into(),
                header_field: "X-Auth-User".into(),
                remove_header: true,
            }),
        ),
        middleware(
            "rewrite@test",
            M::ReplacePathRegex(v1::ReplacePathRegex {
                regex: "^/api3/(.*)".into(),
                replacement: "/api/$1".into(),
            }),
        ),
        middleware(
            "v1@test",
            M::AddPrefix(v1::AddPrefix {
                prefix: "/v1".into(),
            }),
        ),
        middleware(
            "strip@test",
            M::StripPrefix(v1::StripPrefix {
                prefixes: vec!["/strip".into()],
                force_slash: false,
            }),
        ),
    ];
    harness.applier.apply(update).await.unwrap();
    harness
}

async fn send(
    harness: &Harness,
    path: &str,
    credentials: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get(format!("http://{}{path}", harness.address()))
        .header("host", "app.test")
        .header("x-forwarded-prefix", "/forged");
    if let Some(credentials) = credentials {
        request = request.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(credentials)),
        );
    }
    let response = harness
        .client
        .request(request.body(Full::<Bytes>::default()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn entry_point_middlewares_run_first_then_the_routers_in_order() {
    let harness = harness().await;
    let (status, headers, body) =
        send(&harness, "/api3/users?id=1", Some("myusername:secret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The regex rewrite ran before the prefix was added.
    assert!(
        body.starts_with("GET /v1/api/users?id=1 HTTP/1.1\n"),
        "{body}"
    );
    assert!(body.contains("x-replaced-path: /api3/users\n"), "{body}");
    assert!(body.contains("x-auth-user: myusername\n"), "{body}");
    assert!(body.contains("x-entry: web\n"), "{body}");
    assert!(!body.contains("authorization"), "{body}");
    assert_eq!(headers["x-served-by"], "sluice");
}

#[tokio::test]
async fn a_refusal_stops_the_chain_inside_the_entry_point_middlewares() {
    let harness = harness().await;
    for credentials in [None, Some("myusername:wrong"), Some("nobody:secret")] {
        let (status, headers, body) = send(&harness, "/api3/users", credentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{credentials:?}");
        assert_eq!(headers["www-authenticate"], "Basic realm=\"traefik\"");
        assert_eq!(body, "401 Unauthorized\n");
        // The entry point's headers middleware wraps the router's.
        assert_eq!(headers["x-served-by"], "sluice");
    }
}

#[tokio::test]
async fn middleware_headers_survive_forwarded_header_stripping() {
    let harness = harness().await;
    let (status, _, body) = send(&harness, "/strip/x?y=1", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("GET /x?y=1 HTTP/1.1\n"), "{body}");
    // The client's own value is dropped (untrusted peer), the middleware's kept.
    assert!(body.contains("x-forwarded-prefix: /strip\n"), "{body}");
    assert!(!body.contains("/forged"), "{body}");
}
