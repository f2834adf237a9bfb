//! The HTTP/1.x server on the wire: a proxy with one catch-all router to the
//! echo backend, spoken to with raw bytes over a real socket, so framing,
//! keep-alive, `100 Continue` and refusals are seen exactly as a client
//! sees them.

use http::{Method, StatusCode};

use super::test_client::RawClient;
use crate::proxy_tests::{Harness, catch_all, echo_backend, service};

async fn proxy() -> Harness {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "all@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    harness
}

#[tokio::test]
async fn a_connection_carries_requests_one_after_the_other() {
    let harness = proxy().await;
    let mut client = RawClient::connect(&harness).await;
    // Two requests in one write (pipelined), then a third.
    client
        .send(b"GET /one HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let one = client.response(&Method::GET).await;
    let two = client.response(&Method::GET).await;
    assert_eq!(one.head.status, StatusCode::OK);
    assert!(one.body.starts_with("GET /one HTTP/1.1\n"), "{}", one.body);
    assert!(two.body.starts_with("GET /two HTTP/1.1\n"), "{}", two.body);
    assert!(one.head.headers.contains_key("date"));
    // The echo backend streams its body: re-framed chunked, with the
    // trailer it announces to a client that accepts trailers.
    assert_eq!(one.head.headers["transfer-encoding"], "chunked");
    assert!(one.body.contains("te: trailers\n"), "{}", one.body);
    assert_eq!(
        one.trailers.as_ref().expect(&one.body)["x-echo-trailer"],
        "done"
    );
    assert!(two.trailers.is_none());
    client
        .send(b"HEAD /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    let three = client.response(&Method::HEAD).await;
    assert_eq!(three.head.status, StatusCode::OK);
    assert_eq!(three.body, "");
    assert_eq!(three.head.headers["connection"], "close");
    assert!(client.closed().await);
}

#[tokio::test]
async fn http_1_0_clients_get_keep_alive_when_asking_and_a_length_is_known() {
    let harness = proxy().await;
    let mut client = RawClient::connect(&harness).await;
    client
        .send(b"HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let kept = client.response(&Method::HEAD).await;
    assert_eq!(kept.head.status, StatusCode::OK);
    assert_eq!(kept.head.headers["connection"], "keep-alive");
    // A streamed body has no length an HTTP/1.0 client can read but the
    // close.
    client
        .send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let last = client.response(&Method::GET).await;
    assert!(last.body.contains("GET /b"), "{}", last.body);
    assert_eq!(last.head.headers["connection"], "close");
    assert!(!last.head.headers.contains_key("transfer-encoding"));
    assert!(client.closed().await);
}

#[tokio::test]
async fn request_bodies_are_forwarded_and_the_connection_reused() {
    let harness = proxy().await;
    let mut client = RawClient::connect(&harness).await;
    client
        .send(b"POST /sized HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let sized = client.response(&Method::POST).await;
    assert!(sized.body.contains("content-length: 5\n"), "{}", sized.body);
    assert!(sized.body.ends_with("\nhello"), "{}", sized.body);
    client
        .send(b"PUT /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        .await;
    client.send(b"2\r\nde\r\n0\r\n\r\n").await;
    let chunked = client.response(&Method::PUT).await;
    assert!(chunked.body.ends_with("\nabcde"), "{}", chunked.body);
    assert!(
        chunked.body.contains("transfer-encoding: chunked\n"),
        "{}",
        chunked.body
    );
    assert!(!chunked.head.headers.contains_key("connection"));
    client.send(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let after = client.response(&Method::GET).await;
    assert!(after.body.starts_with("GET /after"), "{}", after.body);
}

#[tokio::test]
async fn continue_is_sent_when_the_body_is_read() {
    let harness = proxy().await;
    let mut client = RawClient::connect(&harness).await;
    client
        .send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = client.response(&Method::POST).await;
    assert_eq!(interim.head.status, StatusCode::CONTINUE);
    client.send(b"data").await;
    let done = client.response(&Method::POST).await;
    assert_eq!(done.head.status, StatusCode::OK);
    assert!(done.body.ends_with("\ndata"), "{}", done.body);
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_unless_it_is_all_here() {
    let harness = proxy().await;
    // A path the proxy refuses before reading the body; the body arrived
    // with the head, so the connection goes on.
    let mut client = RawClient::connect(&harness).await;
    client
        .send(b"POST /x/%2F HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    let refused = client.response(&Method::POST).await;
    assert_eq!(refused.head.status, StatusCode::BAD_REQUEST);
    assert!(!refused.head.headers.contains_key("connection"));
    client.send(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let next = client.response(&Method::GET).await;
    assert!(next.body.starts_with("GET /next"), "{}", next.body);
    // Waiting for a `100 Continue` that a refusal never sends: the refusal
    // says the connection closes.
    let mut waiting = RawClient::connect(&harness).await;
    waiting
        .send(b"POST /x/%2F HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let answer = waiting.response(&Method::POST).await;
    assert_eq!(answer.head.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.head.headers["connection"], "close");
    assert!(waiting.closed().await);
}

#[tokio::test]
async fn bad_heads_and_ambiguous_framing_are_refused() {
    let harness = proxy().await;
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..], StatusCode::BAD_REQUEST),
        (b"GET /\x01 HTTP/1.1\r\n\r\n", StatusCode::BAD_REQUEST),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            StatusCode::NOT_IMPLEMENTED,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", StatusCode::BAD_REQUEST),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let mut client = RawClient::connect(&harness).await;
        client.send(request).await;
        let answer = client.response(&Method::GET).await;
        assert_eq!(
            answer.head.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(answer.head.headers["connection"], "close");
        assert!(client.closed().await);
    }
    let mut client = RawClient::connect(&harness).await;
    let tokens = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: {}\r\n\r\n",
        vec!["x-a"; 65].join(", ")
    );
    client.send(tokens.as_bytes()).await;
    let answer = client.response(&Method::GET).await;
    assert_eq!(answer.head.status, StatusCode::BAD_REQUEST);
    let mut client = RawClient::connect(&harness).await;
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    client.send(huge.as_bytes()).await;
    let answer = client.response(&Method::GET).await;
    assert_eq!(
        answer.head.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(answer.body, "431 Request Header Fields Too Large");
}
