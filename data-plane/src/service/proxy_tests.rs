//! Sticky sessions and mirroring through the real request path: a snapshot
//! applied, a listener on 127.0.0.1, requests over sockets to named
//! backends that record what they received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sluice_proto::v1::{self, service::Kind};
use tokio::net::TcpListener;

use crate::proxy_tests::{
    Harness, catch_all, eventually, full, leaf, load_balancer, refused_address, router,
};

/// A request as a backend got it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A backend answering its name (body and `x-backend`), recording every
/// request but health probes; `/health` answers 503 while it is down.
struct Backend {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    down: Arc<AtomicBool>,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (recorded, health) = (seen.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (recorded, health) = (recorded.clone(), health.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (recorded, health) = (recorded.clone(), health.clone());
                    async move {
                        if req.uri().path() == "/health" {
                            let status = if health.load(Ordering::SeqCst) {
                                StatusCode::SERVICE_UNAVAILABLE
                            } else {
                                StatusCode::OK
                            };
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            return Ok::<_, Infallible>(response);
                        }
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        recorded.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        });
                        Ok(Response::builder()
                            .header("x-backend", name)
                            .body(Full::new(Bytes::from_static(name.as_bytes())))
                            .unwrap())
                    }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            address,
            seen,
            down,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A `loadBalancer` service over `backends`.
fn balancer(name: &str, backends: &[&Backend]) -> v1::Service {
    let urls: Vec<String> = backends.iter().map(|backend| backend.url()).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    load_balancer(name, &urls)
}

fn sticky_cookie(cookie: v1::StickyCookie) -> Option<v1::Sticky> {
    Some(v1::Sticky {
        cookie: Some(cookie),
    })
}

/// What a client got.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn backend(&self) -> &str {
        self.headers
            .get("x-backend")
            .map_or("", |b| b.to_str().unwrap())
    }

    /// The `name=value` part of each `Set-Cookie`.
    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect()
    }
}

async fn send(
    harness: &Harness,
    method: &str,
    cookie: Option<&str>,
    body: &'static [u8],
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}/app?q=1", harness.address()))
        .header("host", "app.test");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
    let response = harness.client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(harness: &Harness, cookie: Option<&str>) -> Answer {
    send(harness, "GET", cookie, b"").await
}

#[tokio::test]
async fn sticky_cookie_is_set_once_then_followed() {
    let backends = [
        Backend::start("one").await,
        Backend::start("two").await,
        Backend::start("three").await,
    ];
    let mut harness = Harness::new();
    let mut service = balancer("app@test", &backends.iter().collect::<Vec<_>>());
    if let Some(Kind::LoadBalancer(config)) = &mut service.kind {
        config.sticky = sticky_cookie(v1::StickyCookie {
            name: "session".into(),
            secure: true,
            http_only: true,
            same_site: "lax".into(),
            max_age: 600,
            path: "/app".into(),
            domain: "app.test".into(),
        });
    }
    harness
        .applier
        .apply(catch_all("1-a", "app@test", service))
        .await
        .unwrap();

    // Without a cookie: round robin, and every response sets one.
    let mut cookies = Vec::new();
    for expected in ["one", "two", "three"] {
        let answer = get(&harness, None).await;
        assert_eq!(
            (answer.status, answer.backend()),
            (StatusCode::OK, expected)
        );
        let set: Vec<_> = answer.headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(set.len(), 1, "{set:?}");
        let set = set[0].to_str().unwrap();
        let (pair, attributes) = set.split_once(';').unwrap();
        assert_eq!(
            attributes,
            " Path=/app; Domain=app.test; Max-Age=600; HttpOnly; Secure; SameSite=Lax"
        );
        let value = pair.strip_prefix("session=").unwrap();
        assert_eq!(value.len(), 16, "{set}");
        let port = backends[cookies.len()].address.port().to_string();
        assert!(!set.contains(&port) && !set.contains("127.0.0.1"), "{set}");
        cookies.push(pair.to_owned());
    }

    // With one: the same backend every time, and no new cookie.
    for (cookie, expected) in cookies.iter().zip(["one", "two", "three"]) {
        for _ in 0..20 {
            let answer = get(&harness, Some(&format!("theme=dark; {cookie}"))).await;
            assert_eq!(answer.backend(), expected);
            assert!(answer.cookies().is_empty(), "{:?}", answer.headers);
        }
    }
    assert_eq!(
        backends.iter().map(Backend::count).collect::<Vec<_>>(),
        [21, 21, 21]
    );
    // A value the service does not know is no cookie at all.
    let answer = get(&harness, Some("session=ffffffffffffffff")).await;
    assert_eq!(answer.cookies().len(), 1);
}

#[tokio::test]
async fn a_cookie_for_an_unhealthy_or_removed_server_is_replaced() {
    let one = Backend::start("one").await;
    let two = Backend::start("two").await;
    let mut harness = Harness::new();
    let sticky = |mut service: v1::Service| {
        if let Some(Kind::LoadBalancer(config)) = &mut service.kind {
            // Default name: derived from the service name.
            config.sticky = sticky_cookie(v1::StickyCookie::default());
            config.health_check = Some(v1::HealthCheck {
                path: "/health".into(),
                interval_ms: 50,
                timeout_ms: 500,
                ..Default::default()
            });
        }
        service
    };
    harness
        .applier
        .apply(catch_all(
            "1-a",
            "app@test",
            sticky(balancer("app@test", &[&one, &two])),
        ))
        .await
        .unwrap();
    let first = get(&harness, None).await;
    assert_eq!(first.backend(), "one");
    let cookie = first.cookies().remove(0);
    let name = cookie.split('=').next().unwrap().to_owned();
    assert!(name.starts_with('_') && name.len() == 6, "{cookie}");

    // `one` fails its health check: the cookie's requests go to `two`,
    // whose cookie replaces it.
    one.down.store(true, Ordering::SeqCst);
    let harness_ref = &harness;
    let cookie_ref = &cookie;
    eventually(|| async move { get(harness_ref, Some(cookie_ref)).await.backend() == "two" }).await;
    let moved = get(&harness, Some(&cookie)).await;
    assert_eq!(moved.backend(), "two");
    let replaced = moved.cookies();
    assert_eq!(replaced.len(), 1);
    assert!(replaced[0].starts_with(&format!("{name}=")));
    assert_ne!(replaced[0], cookie);
    for _ in 0..10 {
        let answer = get(&harness, Some(&replaced[0])).await;
        assert_eq!(answer.backend(), "two");
        assert!(answer.cookies().is_empty());
    }
    // `one` comes back: clients stuck to `two` stay there, `one`'s cookie
    // leads to `one` again.
    one.down.store(false, Ordering::SeqCst);
    eventually(|| async move { get(harness_ref, Some(cookie_ref)).await.backend() == "one" }).await;
    assert_eq!(get(&harness, Some(&replaced[0])).await.backend(), "two");

    // `two` is removed from the service: its cookie leads to `one`, with a
    // new cookie.
    harness
        .applier
        .apply(catch_all(
            "2-b",
            "app@test",
            sticky(balancer("app@test", &[&one])),
        ))
        .await
        .unwrap();
    let answer = get(&harness, Some(&replaced[0])).await;
    assert_eq!(answer.backend(), "one");
    assert_eq!(answer.cookies(), [cookie]);
}

#[tokio::test]
async fn weighted_sticky_keeps_the_client_on_its_child() {
    let blue = Backend::start("blue").await;
    let green = Backend::start("green").await;
    let mut harness = Harness::new();
    let weighted = v1::Service {
        name: "canary@test".into(),
        kind: Some(Kind::Weighted(v1::WeightedService {
            services: vec![
                v1::WeightedTarget {
                    name: "blue@test".into(),
                    weight: 3,
                },
                v1::WeightedTarget {
                    name: "green@test".into(),
                    weight: 1,
                },
            ],
            sticky: sticky_cookie(v1::StickyCookie {
                name: "track".into(),
                ..Default::default()
            }),
            health_check: None,
        })),
        ..Default::default()
    };
    let update = full(
        "1-a",
        vec![router(
            "app@test",
            leaf(v1::matcher::Kind::PathPrefix("/".into())),
            "canary@test",
        )],
        vec![
            weighted,
            balancer("blue@test", &[&blue]),
            balancer("green@test", &[&green]),
        ],
    );
    harness.applier.apply(update).await.unwrap();

    let mut stuck = Vec::new();
    for _ in 0..4 {
        let answer = get(&harness, None).await;
        assert_eq!(answer.cookies().len(), 1);
        stuck.push((answer.cookies().remove(0), answer.backend().to_owned()));
    }
    let backends: Vec<&str> = stuck.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(backends, ["blue", "blue", "green", "blue"]);
    let (green_cookie, _) = stuck.iter().find(|(_, b)| b == "green").unwrap();
    for _ in 0..12 {
        let answer = get(&harness, Some(green_cookie)).await;
        assert_eq!(answer.backend(), "green");
        assert!(answer.cookies().is_empty());
    }
    assert_eq!(green.count(), 13);
}

/// A harness serving every path with `mirrored@test`: `main@test` with
/// copies to `mirrors` (`(service, percent)`), over `services`.
async fn mirrored(
    mirror_body: bool,
    max_body_size: i64,
    mirrors: &[(&str, u32)],
    services: Vec<v1::Service>,
) -> Harness {
    let config = v1::MirroringService {
        service: "main@test".into(),
        mirror_body,
        max_body_size,
        mirrors: mirrors
            .iter()
            .map(|(name, percent)| v1::MirrorTarget {
                name: (*name).into(),
                percent: *percent,
            })
            .collect(),
    };
    let mut all = services;
    all.push(v1::Service {
        name: "mirrored@test".into(),
        kind: Some(Kind::Mirroring(config)),
        ..Default::default()
    });
    let update = full(
        "1-a",
        vec![router(
            "app@test",
            leaf(v1::matcher::Kind::PathPrefix("/".into())),
            "mirrored@test",
        )],
        all,
    );
    let mut harness = Harness::new();
    harness.applier.apply(update).await.unwrap();
    harness
}

#[tokio::test]
async fn mirrors_get_their_percentage_of_requests_with_the_body() {
    let main = Backend::start("main").await;
    let half = Backend::start("half").await;
    let all = Backend::start("all").await;
    let harness = mirrored(
        true,
        -1,
        &[("half@test", 50), ("all@test", 100)],
        vec![
            balancer("main@test", &[&main]),
            balancer("half@test", &[&half]),
            balancer("all@test", &[&all]),
        ],
    )
    .await;

    for _ in 0..20 {
        let answer = send(&harness, "POST", None, b"payload").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "main")
        );
        assert!(answer.cookies().is_empty());
    }
    let (half_ref, all_ref) = (&half, &all);
    eventually(|| async move { half_ref.count() == 10 && all_ref.count() == 20 }).await;
    assert_eq!(main.count(), 20);
    for copy in half.seen().iter().chain(&all.seen()) {
        assert_eq!(copy.method, "POST");
        assert_eq!(copy.path, "/app?q=1");
        assert_eq!(copy.body, "payload");
        assert_eq!(copy.headers["host"], "app.test");
        assert_eq!(copy.headers["x-forwarded-for"], "127.0.0.1");
    }
    assert!(main.seen().iter().all(|seen| seen.body == "payload"));
    // Counted, not drawn: of two more, the odd one is copied to `half`.
    send(&harness, "POST", None, b"payload").await;
    send(&harness, "POST", None, b"payload").await;
    eventually(|| async move { all_ref.count() == 22 }).await;
    assert_eq!(half.count(), 11);
}

#[tokio::test]
async fn mirror_body_false_sends_copies_without_it() {
    let main = Backend::start("main").await;
    let copy = Backend::start("copy").await;
    let harness = mirrored(
        false,
        -1,
        &[("copy@test", 100)],
        vec![
            balancer("main@test", &[&main]),
            balancer("copy@test", &[&copy]),
        ],
    )
    .await;
    let answer = send(&harness, "PUT", None, b"the body").await;
    assert_eq!(answer.body, "main");
    let copy_ref = &copy;
    eventually(|| async move { copy_ref.count() == 1 }).await;
    let seen = copy.seen().remove(0);
    assert_eq!((seen.method.as_str(), seen.body.len()), ("PUT", 0));
    assert!(
        seen.headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|length| length == "0"),
        "{:?}",
        seen.headers
    );
    assert_eq!(main.seen()[0].body, "the body");
}

#[tokio::test]
async fn a_body_over_max_body_size_is_served_but_not_mirrored() {
    let main = Backend::start("main").await;
    let copy = Backend::start("copy").await;
    let harness = mirrored(
        true,
        8,
        &[("copy@test", 100)],
        vec![
            balancer("main@test", &[&main]),
            balancer("copy@test", &[&copy]),
        ],
    )
    .await;

    let answer = send(&harness, "POST", None, b"nine bytes, more than eight").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "main")
    );
    assert_eq!(main.seen()[0].body, "nine bytes, more than eight");
    // The next one, small enough, is copied; it is the only copy.
    let answer = send(&harness, "POST", None, b"small").await;
    assert_eq!(answer.body, "main");
    let copy_ref = &copy;
    eventually(|| async move { copy_ref.count() == 1 }).await;
    assert_eq!(copy.seen()[0].body, "small");
    assert_eq!(main.count(), 2);
}

#[tokio::test]
async fn a_dead_mirror_changes_nothing_for_the_client() {
    let main = Backend::start("main").await;
    let dead = refused_address().await;
    let dead_service = load_balancer("dead@test", &[&format!("http://{dead}")]);
    let harness = mirrored(
        true,
        -1,
        &[("dead@test", 100)],
        vec![balancer("main@test", &[&main]), dead_service],
    )
    .await;
    for _ in 0..5 {
        let answer = send(&harness, "POST", None, b"x").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "main")
        );
        assert_eq!(answer.backend(), "main");
    }
    assert_eq!(main.count(), 5);
}

#[tokio::test]
async fn a_mirror_can_be_any_service_and_mirroring_can_be_sticky() {
    // Copies go to a weighted service; the main service is sticky.
    let one = Backend::start("one").await;
    let two = Backend::start("two").await;
    let copy_a = Backend::start("copy-a").await;
    let copy_b = Backend::start("copy-b").await;
    let mut main = balancer("main@test", &[&one, &two]);
    if let Some(Kind::LoadBalancer(config)) = &mut main.kind {
        config.sticky = sticky_cookie(v1::StickyCookie {
            name: "s".into(),
            ..Default::default()
        });
    }
    let copies = v1::Service {
        name: "copies@test".into(),
        kind: Some(Kind::Weighted(v1::WeightedService {
            services: vec![
                v1::WeightedTarget {
                    name: "copy-a@test".into(),
                    weight: 1,
                },
                v1::WeightedTarget {
                    name: "copy-b@test".into(),
                    weight: 1,
                },
            ],
            ..Default::default()
        })),
        ..Default::default()
    };
    let harness = mirrored(
        true,
        -1,
        &[("copies@test", 100)],
        vec![
            main,
            copies,
            balancer("copy-a@test", &[&copy_a]),
            balancer("copy-b@test", &[&copy_b]),
        ],
    )
    .await;
    let first = get(&harness, None).await;
    let cookie = first.cookies().remove(0);
    for _ in 0..5 {
        let answer = get(&harness, Some(&cookie)).await;
        assert_eq!(answer.backend(), first.backend());
        assert!(answer.cookies().is_empty());
    }
    let (a, b) = (&copy_a, &copy_b);
    eventually(|| async move { a.count() == 3 && b.count() == 3 }).await;
    // The copies carry the client's cookie as they got it.
    let cookies: Vec<_> = a
        .seen()
        .iter()
        .chain(&b.seen())
        .filter_map(|seen| seen.headers.get(header::COOKIE).cloned())
        .collect();
    assert_eq!(cookies.len(), 5, "{cookies:?}");
    assert!(cookies.iter().all(|c| *c == cookie.as_str()));
    assert_eq!(one.count() + two.count(), 6);
}
