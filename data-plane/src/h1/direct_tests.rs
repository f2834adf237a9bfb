//! Direct forwarding against the general path: the same requests, sent to
//! a router that forwards directly and to one whose (passive) middleware
//! sends them the general way, must reach the echo backend as the same
//! request and come back as the same response.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::Method;
use sluice_proto::v1::{self, matcher::Kind, middleware::Kind as M};

use super::direct;
use super::head;
use super::test_client::{RawClient, Received};
use crate::dispatch::ConnInfo;
use crate::proxy_tests::{Harness, echo_backend, full, leaf, middleware, router, service};

/// A proxy with `direct.test` forwarded directly and `general.test` through
/// a passive `inFlightReq`, both to one echo backend; `insecure`: the entry
/// point trusts every peer's `X-Forwarded-*`.
async fn proxy(insecure: bool) -> Harness {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let direct = router(
        "direct@test",
        leaf(Kind::Host("direct.test".into())),
        "echo@test",
    );
    let mut general = router(
        "general@test",
        leaf(Kind::Host("general.test".into())),
        "echo@test",
    );
    general.middlewares = vec!["count@test".into()];
    let mut update = full(
        "1-a",
        vec![direct, general],
        vec![service("echo@test", &format!("http://{backend}"), None)],
    );
    let resources = update.upserts.as_mut().unwrap();
    resources.middlewares = vec![middleware(
        "count@test",
        M::InFlightReq(v1::InFlightReq {
            amount: 1_000_000,
            source_criterion: None,
        }),
    )];
    resources.entry_points[0].forwarded_headers = Some(v1::ForwardedHeaders {
        trusted_ips: Vec::new(),
        insecure,
    });
    harness.applier.apply(update).await.unwrap();
    harness
}

/// Requests (`{host}` stands for the router's host), covering the header
/// rules: hop-by-hop fields and those `Connection` names, `TE: trailers`,
/// client `X-Forwarded-*`, normalised paths and queries, repeated fields,
/// HTTP/1.0, `HEAD`, a closing client.
const REQUESTS: &[&str] = &[
    "GET /plain HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
    "GET /a/../b/%7Ec//d?x=1&y HTTP/1.1\r\nHost: {host}:8080\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
     Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: x\r\n\
     TE: gzip, trailers\r\nTrailer: x-t\r\nUpgrade-Insecure-Requests: 1\r\n\r\n",
    "GET /xf HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 7.7.7.7\r\n\
     X-Forwarded-Proto: https\r\nX-Forwarded-Host: elsewhere\r\nX-Forwarded-Port: 1\r\n\
     X-Real-Ip: 8.8.8.8\r\nX-Forwarded-Server: them\r\nX-Forwarded-Prefix: /p\r\n\r\n",
    "GET /named HTTP/1.1\r\nHost: {host}\r\nConnection: X-Forwarded-Host, x-real-ip\r\n\
     X-Forwarded-Host: a\r\nX-Real-Ip: 9.9.9.9\r\n\r\n",
    "GET /proto HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: wss\r\n\r\n",
    "HEAD /head HTTP/1.1\r\nHost: {host}\r\nX-Custom: 1\r\nx-custom: 2\r\n\r\n",
    "DELETE /d?k=%20v HTTP/1.1\r\nHost: {host}\r\nIdempotency-Key: k\r\n\r\n",
    "GET /ten HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n",
    "POST /empty HTTP/1.1\r\nHost: {host}\r\n\r\n",
    "PATCH /zero HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n",
    "GET /te HTTP/1.1\r\nHost: {host}\r\nConnection: TE, Host\r\nTE: trailers\r\n\r\n",
    "OPTIONS /closing HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
];

/// What a client and the backend saw of one exchange, with the router's
/// host written as `{host}` and lines in a stable order.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    response_fields: Vec<String>,
    /// The request line the backend received, then its fields, sorted.
    backend_request: Vec<String>,
}

fn seen(received: &Received, host: &str) -> Seen {
    let mut response_fields: Vec<String> = received
        .head
        .headers
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
        .collect();
    response_fields.sort();
    let echoed = received.body.replace(host, "{host}");
    let mut lines = echoed.lines();
    let mut backend_request: Vec<String> = lines
        .by_ref()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    backend_request.sort();
    if let Some(request_line) = echoed.lines().next() {
        backend_request.insert(0, request_line.to_owned());
    }
    Seen {
        status: received.head.status.as_u16(),
        response_fields,
        backend_request,
    }
}

async fn exchange(address: SocketAddr, template: &str, host: &str) -> Seen {
    let request = template.replace("{host}", host);
    let method = Method::from_bytes(request.split(' ').next().unwrap().as_bytes()).unwrap();
    let mut client = RawClient::connect_to(address).await;
    client.send(request.as_bytes()).await;
    seen(&client.response(&method).await, host)
}

/// Whether `request` is planned for direct forwarding, and the head the
/// plan writes.
fn plan(harness: &Harness, request: &str) -> (bool, String) {
    let runtime = harness.runtime();
    let conn = ConnInfo::new(Arc::from("web"), "127.0.0.1:40000".parse().unwrap());
    let mut buf = BytesMut::from(request.as_bytes());
    let raw = head::parse_request(&mut buf, 1 << 16).unwrap().unwrap();
    let mut out = BytesMut::new();
    let planned = direct::plan(&runtime, &conn, b"node", &raw, &mut out).is_some();
    (planned, String::from_utf8(out.to_vec()).unwrap())
}

#[tokio::test]
async fn direct_forwarding_is_the_general_path_for_every_header_rule() {
    for insecure in [false, true] {
        let harness = proxy(insecure).await;
        for template in REQUESTS {
            let request = template.replace("{host}", "direct.test");
            assert!(plan(&harness, &request).0, "not direct:\n{request}");
            let direct = exchange(harness.address(), template, "direct.test").await;
            let general = exchange(harness.address(), template, "general.test").await;
            assert_eq!(
                direct, general,
                "trusted peer: {insecure}, request:\n{template}"
            );
            assert_eq!(direct.status, 200, "{direct:?}");
        }
    }
}

#[tokio::test]
async fn only_bodiless_origin_form_requests_to_plain_routes_go_directly() {
    let harness = proxy(false).await;
    let plan = |request: &str| plan(&harness, request);
    let (planned, head) = plan("GET /x/./y?q HTTP/1.1\r\nHost: direct.test\r\n\r\n");
    assert!(planned);
    assert!(head.starts_with("GET /x/y?q HTTP/1.1\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    // A middleware, another entry point's host, no route, a bad path, an
    // absolute-form target: the general path.
    for request in [
        "GET / HTTP/1.1\r\nHost: general.test\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n",
        "GET /a%2Fb HTTP/1.1\r\nHost: direct.test\r\n\r\n",
        "GET http://direct.test/ HTTP/1.1\r\nHost: direct.test\r\n\r\n",
    ] {
        assert!(!plan(request).0, "{request}");
    }
}
