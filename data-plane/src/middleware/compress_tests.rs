//! Tests of `compress`: negotiation as Traefik's table has it, and bodies
//! that decode to what the backend sent.

use std::io::Read;

use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use sluice_proto::v1::{self, middleware::Kind};

use super::super::test_util::{Backend, config, request, send};
use super::*;

fn compress(encodings: &[&str], default: &str, min: i64) -> v1::Compress {
    v1::Compress {
        encodings: encodings.iter().map(|e| (*e).to_owned()).collect(),
        default_encoding: default.into(),
        min_response_body_bytes: min,
        ..Default::default()
    }
}

fn accept(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(ACCEPT_ENCODING, value.parse().unwrap());
    }
    headers
}

#[test]
fn negotiation_follows_traefik() {
    let all = Compress::new(&compress(&["zstd", "br", "gzip"], "", 0)).unwrap();
    let name = |c: &Compress, values: &[&str]| c.negotiate(&accept(values)).map(Encoding::name);
    let table: &[(&[&str], Option<&str>)] = &[
        (&[], None),
        (&[""], None),
        (&["gzip"], Some("gzip")),
        (&["gzip, br"], Some("br")),
        (&["gzip, br, zstd"], Some("zstd")),
        (&["gzip", "br"], Some("br")),
        (&["gzip;q=1.0, br;q=0.8"], Some("gzip")),
        (&["br;q=0.5, gzip;q=0.4"], Some("br")),
        (&["zstd;q=0, gzip"], Some("gzip")),
        (&["*"], Some("zstd")),
        (&["*;q=0.1, gzip;q=0.5"], Some("gzip")),
        (&["gzip, *"], Some("zstd")),
        (&["identity"], None),
        (&["identity, gzip"], Some("gzip")),
        (&["identity;q=1, gzip;q=0.5"], None),
        (&["deflate, compress"], None),
        (&["GZIP"], None),
        (&["gzip ; q=0.5 , br ; q=0.7"], Some("br")),
    ];
    for (values, expected) in table {
        assert_eq!(name(&all, values), *expected, "{values:?}");
    }
    let gzip_first = Compress::new(&compress(&["gzip", "br"], "br", 0)).unwrap();
    assert_eq!(name(&gzip_first, &["br, gzip, zstd"]), Some("gzip"));
    assert_eq!(name(&gzip_first, &["zstd"]), None);
    // Without the header, the default encoding; `*` means it too.
    assert_eq!(name(&gzip_first, &[]), Some("br"));
    assert_eq!(name(&gzip_first, &["*"]), Some("br"));
}

#[test]
fn media_types_match_as_klauspost_does() {
    let parse = |text| MediaType::parse(text).unwrap();
    assert!(parse("text/html").matches(&parse("Text/HTML; charset=utf-8")));
    assert!(parse("text/html; charset=utf-8").matches(&parse("text/html;charset=\"utf-8\"")));
    assert!(!parse("text/html; charset=utf-8").matches(&parse("text/html")));
    assert!(!parse("text/html").matches(&parse("text/plain")));
    assert!(MediaType::parse("").is_none());
    assert!(MediaType::parse("text/html; broken").is_none());
}

const TEXT: &str = "All work and no play makes Jack a dull boy. ";

fn big_body() -> String {
    TEXT.repeat(100)
}

fn decode(encoding: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_string(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_string(&mut out)
                .unwrap();
        }
        "zstd" => {
            out = String::from_utf8(zstd::decode_all(bytes).unwrap()).unwrap();
        }
        other => panic!("unexpected encoding {other}"),
    }
    out
}

fn middleware(config_: v1::Compress) -> v1::Middleware {
    config("compress", Kind::Compress(config_))
}

async fn fetch(
    middleware: &v1::Middleware,
    backend: &Backend,
    method: &str,
    accept_encoding: &str,
) -> (StatusCode, HeaderMap, bytes::Bytes) {
    let req = Request::builder()
        .method(method)
        .uri("/")
        .header("accept-encoding", accept_encoding)
        .body(())
        .unwrap();
    let response = send(std::slice::from_ref(middleware), backend, request(req)).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

fn answering(body: String, headers: &'static [(&'static str, &'static str)]) -> Backend {
    Backend::answering(move |_| {
        let mut response = Response::new(ProxyBody::full(body.clone()));
        for (name, value) in headers {
            response.headers_mut().insert(*name, value.parse().unwrap());
        }
        response
    })
}

#[tokio::test]
async fn each_encoding_decodes_to_the_original() {
    let middleware = middleware(compress(&["zstd", "br", "gzip"], "", 0));
    let backend = answering(big_body(), &[("content-type", "text/plain")]);
    for encoding in ["gzip", "br", "zstd"] {
        let (status, headers, body) = fetch(&middleware, &backend, "GET", encoding).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-encoding"], encoding);
        assert_eq!(headers["vary"], "Accept-Encoding");
        assert!(!headers.contains_key("content-length"));
        assert!(
            body.len() < big_body().len() / 4,
            "{encoding}: {}",
            body.len()
        );
        assert_eq!(decode(encoding, &body), big_body());
    }
}

#[tokio::test]
async fn small_encoded_head_and_excluded_responses_are_left_alone() {
    let middleware = middleware(compress(&["zstd", "br", "gzip"], "", 0));
    let small = answering(TEXT.to_owned(), &[]);
    let (_, headers, body) = fetch(&middleware, &small, "GET", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));
    assert_eq!(headers["vary"], "Accept-Encoding");
    assert_eq!(body, TEXT);

    let declared_small = answering(big_body(), &[("content-length", "10")]);
    let (_, headers, _) = fetch(&middleware, &declared_small, "GET", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));

    let encoded = answering(big_body(), &[("content-encoding", "identity")]);
    let (_, headers, body) = fetch(&middleware, &encoded, "GET", "gzip").await;
    assert_eq!(headers["content-encoding"], "identity");
    assert_eq!(body, big_body());

    let big = answering(big_body(), &[]);
    let (_, headers, _) = fetch(&middleware, &big, "HEAD", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));
    assert!(!headers.contains_key("vary"));

    let grpc = answering(big_body(), &[("content-type", "application/grpc")]);
    let (_, headers, _) = fetch(&middleware, &grpc, "GET", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));

    let no_content = Backend::answering(|_| {
        let mut response = Response::new(ProxyBody::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    });
    let (status, headers, _) = fetch(&middleware, &no_content, "GET", "gzip").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!headers.contains_key("content-encoding"));
}

#[tokio::test]
async fn content_type_lists_and_thresholds() {
    let mut options = compress(&["gzip"], "", 20);
    options.included_content_types = vec!["text/html".into()];
    let included = middleware(options);
    let html = answering(
        TEXT.to_owned(),
        &[("content-type", "text/html; charset=utf-8")],
    );
    let (_, headers, body) = fetch(&included, &html, "GET", "gzip").await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(decode("gzip", &body), TEXT);
    let plain = answering(TEXT.to_owned(), &[("content-type", "text/plain")]);
    let (_, headers, _) = fetch(&included, &plain, "GET", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));

    let mut options = compress(&["gzip"], "", 20);
    options.excluded_content_types = vec!["text/plain".into()];
    let excluded = middleware(options);
    let (_, headers, _) = fetch(&excluded, &plain, "GET", "gzip").await;
    assert!(!headers.contains_key("content-encoding"));
    let (_, headers, _) = fetch(&excluded, &html, "GET", "gzip").await;
    assert_eq!(headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn streams_are_compressed_as_they_come_with_their_trailers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let middleware = middleware(compress(&["gzip"], "", 1_000_000));
    let second_sent = Arc::new(AtomicBool::new(false));
    let flag = second_sent.clone();
    let backend = Backend::answering(move |_| {
        let (mut sender, body) = http_body_util::channel::Channel::<bytes::Bytes, BoxError>::new(4);
        let flag = flag.clone();
        tokio::spawn(async move {
            sender
                .send_data(bytes::Bytes::from_static(b"first "))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
            sender
                .send_data(bytes::Bytes::from_static(b"second"))
                .await
                .unwrap();
            let mut trailers = HeaderMap::new();
            trailers.insert("x-done", "1".parse().unwrap());
            sender.send_trailers(trailers).await.unwrap();
        });
        Response::new(ProxyBody::boxed(body))
    });
    let req = Request::get("/")
        .header("accept-encoding", "gzip")
        .body(())
        .unwrap();
    let response = send(std::slice::from_ref(&middleware), &backend, request(req)).await;
    // The backend paused after its first chunk: compression started then,
    // although the threshold was not reached.
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut body = response.into_body();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let mut trailers = None;
    let mut saw_first_alone = false;
    while let Some(frame) = body.frame().await {
        match frame.unwrap().into_data() {
            Ok(data) => {
                std::io::Write::write_all(&mut decoder, &data).unwrap();
                std::io::Write::flush(&mut decoder).unwrap();
                if decoder.get_ref().as_slice() == b"first " {
                    // The first chunk was flushed before the second was sent.
                    assert!(!second_sent.load(Ordering::SeqCst));
                    saw_first_alone = true;
                }
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    assert!(saw_first_alone);
    assert_eq!(trailers.unwrap()["x-done"], "1");
    assert_eq!(decoder.finish().unwrap(), b"first second");
}
