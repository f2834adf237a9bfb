//! The traffic middlewares through the real request path: a snapshot
//! applied, a listener on 127.0.0.1, requests over sockets to local
//! backends (one of which may refuse connections).

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sluice_proto::v1::{self, matcher::Kind, middleware::Kind as M};
use tokio::net::TcpListener;

use crate::proxy_tests::{
    Harness, echo_backend, eventually, full, leaf, middleware, router, service,
};

/// A backend answering with `answer`.
async fn backend(
    answer: impl Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = answer(&req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// An address nothing listens on: connections are refused.
async fn refusing() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn balancer(name: &str, servers: &[SocketAddr]) -> v1::Service {
    let mut service = service(name, "http://unused", None);
    if let Some(v1::service::Kind::LoadBalancer(lb)) = &mut service.kind {
        lb.servers = servers
            .iter()
            .map(|address| v1::Server {
                url: format!("http://{address}"),
                weight: 1,
                preserve_path: false,
            })
            .collect();
    }
    service
}

/// A harness with one router on `/` to `services[0]`, through `chain`.
async fn serve(
    chain: &[&str],
    middlewares: Vec<v1::Middleware>,
    services: Vec<v1::Service>,
) -> Harness {
    let mut harness = Harness::new();
    let mut all = router(
        "all@test",
        leaf(Kind::PathPrefix("/".into())),
        &services[0].name,
    );
    all.middlewares = chain.iter().map(|name| (*name).to_owned()).collect();
    let mut update = full("1-a", vec![all], services);
    update.upserts.as_mut().unwrap().middlewares = middlewares;
    harness.applier.apply(update).await.unwrap();
    harness
}

async fn send(
    harness: &Harness,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", harness.address()))
        .header("host", "app.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = harness
        .client
        .request(request.body(Full::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn a_retry_hides_a_backend_that_refuses_connections() {
    let (good, dead) = (echo_backend().await, refusing().await);
    let harness = serve(
        &["retry@test"],
        vec![middleware(
            "retry@test",
            M::Retry(v1::Retry {
                attempts: 2,
                initial_interval_ms: 10,
            }),
        )],
        vec![balancer("pool@test", &[dead, good])],
    )
    .await;
    for _ in 0..6 {
        let (status, _, body) = send(&harness, "POST", "/x", &[], "payload").await;
        assert_eq!(status, StatusCode::OK);
        // The body was sent again to the good server.
        assert!(body.ends_with(b"\npayload"), "{body:?}");
    }
}

#[tokio::test]
async fn a_circuit_breaker_opens_on_errors_and_recovers() {
    let status = Arc::new(AtomicU16::new(500));
    let answer = status.clone();
    let flaky = backend(move |_| {
        let mut response = Response::new(Full::from("backend"));
        *response.status_mut() = StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
        response
    })
    .await;
    let breaker = v1::CircuitBreaker {
        expression_text: "ResponseCodeRatio(500, 600, 0, 600) > 0.25".into(),
        expression: Some(v1::BreakerExpr {
            kind: Some(v1::breaker_expr::Kind::Comparison(v1::BreakerComparison {
                metric: Some(v1::BreakerMetric {
                    kind: Some(v1::breaker_metric::Kind::ResponseCodeRatio(
                        v1::BreakerResponseCodeRatio {
                            from: 500,
                            to: 600,
                            div_from: 0,
                            div_to: 600,
                        },
                    )),
                }),
                operator: ">".into(),
                value: 0.25,
            })),
        }),
        check_period_ms: 10,
        fallback_duration_ms: 300,
        recovery_duration_ms: 300,
        response_code: 0,
    };
    let harness = serve(
        &["cb@test"],
        vec![middleware("cb@test", M::CircuitBreaker(breaker))],
        vec![balancer("flaky@test", &[flaky])],
    )
    .await;
    eventually(|| async {
        let (status, _, body) = send(&harness, "GET", "/", &[], "").await;
        status == StatusCode::SERVICE_UNAVAILABLE && body == "Service Unavailable"
    })
    .await;
    status.store(200, Ordering::SeqCst);
    eventually(|| async {
        let mut ok = 0;
        for _ in 0..5 {
            if send(&harness, "GET", "/", &[], "").await.0 == StatusCode::OK {
                ok += 1;
            }
        }
        ok == 5
    })
    .await;
}

#[tokio::test]
async fn compression_is_negotiated() {
    const TEXT: &str = "All work and no play makes Jack a dull boy. ";
    let backend = backend(|req| {
        let body = if req.uri().path() == "/small" {
            TEXT.to_owned()
        } else {
            TEXT.repeat(100)
        };
        let mut response = Response::new(Full::from(body));
        if req.uri().path() == "/encoded" {
            response
                .headers_mut()
                .insert("content-encoding", "identity".parse().unwrap());
        }
        response
    })
    .await;
    let harness = serve(
        &["gz@test"],
        vec![middleware("gz@test", M::Compress(v1::Compress::default()))],
        vec![balancer("text@test", &[backend])],
    )
    .await;
    let big = TEXT.repeat(100);
    let decode = |encoding: &str, body: &[u8]| -> String {
        let mut out = String::new();
        match encoding {
            "gzip" => {
                flate2::read::GzDecoder::new(body)
                    .read_to_string(&mut out)
                    .unwrap();
            }
            "br" => {
                brotli::Decompressor::new(body, 4096)
                    .read_to_string(&mut out)
                    .unwrap();
            }
            _ => out = String::from_utf8(zstd::decode_all(body).unwrap()).unwrap(),
        }
        out
    };
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("br;q=0.9, gzip;q=0.8", "br"),
        ("gzip, br, zstd", "zstd"),
    ] {
        let (status, headers, body) =
            send(&harness, "GET", "/", &[("accept-encoding", accept)], "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-encoding"], expected);
        assert_eq!(headers["vary"], "Accept-Encoding");
        assert_eq!(decode(expected, &body), big);
    }
    for path in ["/small", "/encoded"] {
        let (_, headers, body) =
            send(&harness, "GET", path, &[("accept-encoding", "gzip")], "").await;
        assert_ne!(
            headers.get("content-encoding").map(|v| v.as_bytes()),
            Some(&b"gzip"[..])
        );
        assert!(body.starts_with(TEXT.as_bytes()));
    }
    let (_, headers, body) = send(&harness, "GET", "/", &[], "").await;
    assert!(!headers.contains_key("content-encoding"));
    assert_eq!(body, big);
}

#[tokio::test]
async fn rate_limiting_refuses_then_recovers() {
    let echo = echo_backend().await;
    let harness = serve(
        &["rl@test"],
        vec![middleware(
            "rl@test",
            M::RateLimit(v1::RateLimit {
                average: 1,
                period_ms: 500,
                burst: 2,
                source_criterion: Some(v1::SourceCriterion {
                    ip_strategy: Some(v1::IpStrategy::default()),
                    ..Default::default()
                }),
            }),
        )],
        vec![balancer("echo@test", &[echo])],
    )
    .await;
    let mut refused = None;
    for _ in 0..4 {
        let (status, headers, body) = send(&harness, "GET", "/", &[], "").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((headers, body));
            break;
        }
    }
    let (headers, body) = refused.expect("a request was refused");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body, "Too Many Requests");
    eventually(|| async { send(&harness, "GET", "/", &[], "").await.0 == StatusCode::OK }).await;
}

#[tokio::test]
async fn forward_auth_allows_copies_headers_and_denies() {
    let auth = backend(|req| {
        let allowed = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer good");
        let mut response = Response::new(Full::from(if allowed { "" } else { "go away" }));
        if allowed {
            let headers = response.headers_mut();
            headers.insert("x-auth-user", "alice".parse().unwrap());
            headers.insert("set-cookie", "session=s1; Path=/".parse().unwrap());
            let uri = req.headers()["x-forwarded-uri"].clone();
            headers.insert("x-seen-uri", uri);
        } else {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert("www-authenticate", "Bearer".parse().unwrap());
        }
        response
    })
    .await;
    let echo = echo_backend().await;
    let harness = serve(
        &["auth@test"],
        vec![middleware(
            "auth@test",
            M::ForwardAuth(v1::ForwardAuth {
                address: format!("http://{auth}/verify"),
                auth_response_headers: vec!["X-Auth-User".into(), "X-Seen-Uri".into()],
                add_auth_cookies_to_response: vec!["session".into()],
                max_body_size: -1,
                ..Default::default()
            }),
        )],
        vec![balancer("echo@test", &[echo])],
    )
    .await;
    let (status, headers, body) = send(
        &harness,
        "GET",
        "/app?x=1",
        &[("authorization", "Bearer good"), ("x-auth-user", "forged")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("x-auth-user: alice\n"), "{body}");
    assert!(!body.contains("forged"), "{body}");
    assert!(body.contains("x-seen-uri: /app?x=1\n"), "{body}");
    assert_eq!(headers["set-cookie"], "session=s1; Path=/");

    let (status, headers, body) = send(
        &harness,
        "GET",
        "/app",
        &[("authorization", "Bearer bad")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(body, "go away");
}

#[tokio::test]
async fn errors_are_replaced_by_the_error_page() {
    let app = backend(|req| {
        let mut response = Response::new(Full::from("original"));
        if req.uri().path() == "/missing" {
            *response.status_mut() = StatusCode::NOT_FOUND;
        }
        response
    })
    .await;
    let pages = backend(|req| {
        let host = req.headers()["host"].to_str().unwrap().to_owned();
        Response::new(Full::from(format!("page {} for {host}", req.uri())))
    })
    .await;
    let harness = serve(
        &["err@test"],
        vec![middleware(
            "err@test",
            M::Errors(v1::Errors {
                status: vec![v1::StatusRange { from: 400, to: 499 }],
                service: "pages@test".into(),
                query: "/{status}.html?u={url}".into(),
            }),
        )],
        vec![
            balancer("app@test", &[app]),
            balancer("pages@test", &[pages]),
        ],
    )
    .await;
    let (status, _, body) = send(&harness, "GET", "/missing?a=1", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "page /404.html?u=%2Fmissing%3Fa%3D1 for app.test");
    let (status, _, body) = send(&harness, "GET", "/there", &[], "").await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"original"[..]));
}

#[tokio::test]
async fn buffering_refuses_large_requests_with_413() {
    let echo = echo_backend().await;
    let harness = serve(
        &["buf@test"],
        vec![middleware(
            "buf@test",
            M::Buffering(v1::Buffering {
                max_request_body_bytes: 10,
                mem_request_body_bytes: 1 << 20,
                ..Default::default()
            }),
        )],
        vec![balancer("echo@test", &[echo])],
    )
    .await;
    let (status, _, body) = send(&harness, "POST", "/", &[], "01234567890").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body, "Request Entity Too Large");
    let (status, _, body) = send(&harness, "POST", "/", &[], "0123456789").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with(b"\n0123456789"));
}
