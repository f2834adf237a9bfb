//! In-process tests of the whole request path: snapshot applied, listener
//! bound on 127.0.0.1, requests sent with hyper clients to a local echo
//! backend over real sockets.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sluice_proto::v1::{self, Resources, SnapshotUpdate, matcher::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use std::collections::VecDeque;

use sluice_proto::v1::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use sluice_proto::v1::{WatchRequest, watch_request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Endpoint;
use tonic::{Status, Streaming};

use crate::apply::Applier;
use crate::dispatch::Dispatcher;
use crate::listeners::Listeners;
use crate::runtime::Runtime;
use crate::service::UpstreamConfig;
use crate::shared::SharedState;
use crate::snapshot_client::Identity;

/// Requests to `/slow` the echo backend has started answering.
static SLOW_STARTED: AtomicUsize = AtomicUsize::new(0);

type EchoBody =
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Answers with the request line, headers and body it received, plus an
/// `x-echo-trailer` trailer; `/slow` waits 300 ms first; upgrade requests
/// get a 101 and an echoing tunnel.
async fn echo(mut req: Request<Incoming>) -> Result<Response<EchoBody>, Infallible> {
    if req.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(StreamBody::new(futures::stream::iter(Vec::new())))
            .unwrap();
        return Ok(response);
    }
    if req.uri().path() == "/slow" {
        SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut text = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
    for (name, value) in req.headers() {
        text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&body));
    let mut trailers = HeaderMap::new();
    trailers.insert("x-echo-trailer", "done".parse().unwrap());
    let frames = vec![
        Ok(Frame::data(Bytes::from(text))),
        Ok(Frame::trailers(trailers)),
    ];
    Ok(Response::builder()
        .header("trailer", "x-echo-trailer")
        .body(StreamBody::new(futures::stream::iter(frames)))
        .unwrap())
}

pub(crate) async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(echo))
                    .await;
            });
        }
    });
    address
}

pub(crate) fn leaf(kind: Kind) -> v1::Matcher {
    v1::Matcher { kind: Some(kind) }
}

/// A `loadBalancer` service over `urls`, each of weight 1.
pub(crate) fn load_balancer(name: &str, urls: &[&str]) -> v1::Service {
    v1::Service {
        name: name.into(),
        kind: Some(v1::service::Kind::LoadBalancer(v1::LoadBalancer {
            servers: urls
                .iter()
                .map(|url| v1::Server {
                    url: (*url).into(),
                    weight: 1,
                    preserve_path: false,
                })
                .collect(),
            pass_host_header: true,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A `loadBalancer` service over one server, with `health_check`.
pub(crate) fn service(name: &str, url: &str, health_check: Option<v1::HealthCheck>) -> v1::Service {
    let mut service = load_balancer(name, &[url]);
    if let Some(v1::service::Kind::LoadBalancer(balancer)) = &mut service.kind {
        balancer.health_check = health_check;
    }
    service
}

/// An address on 127.0.0.1 where nothing listens (connections are refused).
pub(crate) async fn refused_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

pub(crate) fn router(name: &str, matcher: v1::Matcher, service: &str) -> v1::Router {
    v1::Router {
        name: name.into(),
        matcher: Some(matcher),
        priority: 10,
        service: service.into(),
        ..Default::default()
    }
}

pub(crate) fn full(
    version: &str,
    routers: Vec<v1::Router>,
    services: Vec<v1::Service>,
) -> SnapshotUpdate {
    SnapshotUpdate {
        version: version.into(),
        full_state: true,
        upserts: Some(Resources {
            entry_points: vec![v1::EntryPoint {
                name: "web".into(),
                address: ":80".into(),
                ..Default::default()
            }],
            routers,
            services,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A full snapshot whose router `router` sends every path to `service`.
pub(crate) fn catch_all(version: &str, router_name: &str, service: v1::Service) -> SnapshotUpdate {
    let all = router(
        router_name,
        leaf(Kind::PathPrefix("/".into())),
        &service.name,
    );
    full(version, vec![all], vec![service])
}

/// A middleware config.
pub(crate) fn middleware(name: &str, kind: v1::middleware::Kind) -> v1::Middleware {
    v1::Middleware {
        name: name.into(),
        kind: Some(kind),
        ..Default::default()
    }
}

pub(crate) struct Harness {
    pub(crate) applier: Applier,
    runtime: Arc<ArcSwap<Runtime>>,
    pub(crate) client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        let (applier, runtime) = test_applier();
        Self {
            applier,
            runtime,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The runtime being served.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.runtime
            .load()
            .entry_point("web")
            .unwrap()
            .bound
            .unwrap()
    }

    async fn get(&self, path: &str, host: &str) -> (StatusCode, String) {
        let request = Request::get(format!("http://{}{path}", self.address()))
            .header("host", host)
            .header("x-forwarded-for", "6.6.6.6")
            .body(Full::default())
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// An applier whose entry point `web` listens on 127.0.0.1, port 0.
fn test_applier() -> (Applier, Arc<ArcSwap<Runtime>>) {
    serving_applier(Vec::new())
}

/// [`test_applier`] serving connections on the `serving` runtimes.
fn serving_applier(serving: Vec<tokio::runtime::Handle>) -> (Applier, Arc<ArcSwap<Runtime>>) {
    let hard_stop = CancellationToken::new();
    let runtime = Arc::new(ArcSwap::from_pointee(Runtime::default()));
    let upstream = UpstreamConfig {
        serving_threads: serving.len().max(1),
        ..UpstreamConfig::default()
    };
    let shared = Arc::new(SharedState::new(
        "test-node".into(),
        &upstream,
        hard_stop.clone(),
    ));
    let dispatcher = Arc::new(Dispatcher::new(runtime.clone(), shared.clone()));
    let listeners = Listeners::new(dispatcher, Duration::from_secs(5), hard_stop, serving);
    let overrides = HashMap::from([("web".to_owned(), "127.0.0.1:0".to_owned())]);
    (
        Applier::new(runtime.clone(), listeners, shared, overrides),
        runtime,
    )
}

pub(crate) async fn eventually<F: Future<Output = bool>>(mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn routes_normalises_and_forwards() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = full(
        "1-a",
        vec![router(
            "api@test",
            leaf(Kind::PathPrefix("/api".into())),
            "echo@test",
        )],
        vec![service("echo@test", &format!("http://{backend}"), None)],
    );
    harness.applier.apply(update).await.unwrap();
    assert_eq!(harness.runtime.load().version(), "1-a");

    let (status, body) = harness
        .get("/public/../api/%7Eu?x=1", "App.Test:8080")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("GET /api/~u?x=1 HTTP/1.1\n"), "{body}");
    assert!(body.contains("host: App.Test:8080\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 127.0.0.1\n"),
        "untrusted XFF dropped: {body}"
    );
    assert!(body.contains("x-real-ip: 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(body.contains("x-forwarded-host: App.Test:8080\n"), "{body}");
    assert!(body.contains("x-forwarded-port: 8080\n"), "{body}");
    assert!(body.contains("x-forwarded-server: test-node\n"), "{body}");

    let (status, body) = harness.get("/other", "app.test").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found\n")
    );
    let (status, _) = harness.get("/api%2Fx", "app.test").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn serving_threads_each_accept_on_the_entry_point_port() {
    let backend = echo_backend().await;
    let serving = crate::ServingThreads::start(2).unwrap();
    let (mut applier, runtime) = serving_applier(serving.handles().to_vec());
    let update = catch_all(
        "1-a",
        "all@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    applier.apply(update).await.unwrap();
    let address = runtime.load().entry_point("web").unwrap().bound.unwrap();
    // The kernel spreads connections over both sockets: were one of them
    // not accepting, about half of these would never be answered.
    for _ in 0..24 {
        let exchange = async {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream
                .write_all(b"GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        let response = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .expect("every connection is answered");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("GET /x HTTP/1.1"), "{response}");
    }
    applier.shutdown().await;
    serving.stop();
}

#[tokio::test]
async fn streams_bodies_and_trailers_over_h2c() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "all@test",
        service("echo@test", &format!("h2c://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::post(format!("http://{}/grpc.Echo/Say", harness.address()))
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-echo-trailer"], "done");
    let body = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    assert!(body.starts_with("POST http://"), "{body}");
    assert!(body.contains("HTTP/2.0"), "{body}");
    assert!(body.ends_with("\nhello"), "{body}");
}

#[tokio::test]
async fn http1_trailers_pass_through() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "all@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    let request = Request::get(format!("http://{}/t", harness.address()))
        .header("te", "trailers")
        .body(Full::default())
        .unwrap();
    let response = harness.client.request(request).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-echo-trailer"], "done");
}

#[tokio::test]
async fn websocket_upgrades_are_tunnelled() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "ws@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    let mut stream = TcpStream::connect(harness.address()).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
}

#[tokio::test]
async fn failed_builds_keep_the_old_runtime() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let services = vec![service("echo@test", &format!("http://{backend}"), None)];
    let ok = catch_all("1-a", "a@test", services[0].clone());
    harness.applier.apply(ok).await.unwrap();
    let address = harness.address();
    let mut broken = router("a@test", leaf(Kind::PathPrefix("/".into())), "echo@test");
    broken.middlewares = vec!["auth@test".into()];
    let error = harness
        .applier
        .apply(full("2-b", vec![broken], services))
        .await
        .unwrap_err();
    let error = crate::report::chain(&error);
    assert_eq!(
        error,
        "router `a@test`: middleware `auth@test` does not exist"
    );
    assert_eq!(harness.applier.version(), "1-a");
    assert_eq!(harness.runtime.load().version(), "1-a");
    assert_eq!(harness.address(), address);
    assert_eq!(harness.get("/x", "a").await.0, StatusCode::OK);

    // A delta removing the router: the listener stays, routing answers 404.
    let delta = SnapshotUpdate {
        version: "3-c".into(),
        base_version: "1-a".into(),
        removals: vec![v1::ResourceRef {
            kind: v1::ResourceKind::Router.into(),
            name: "a@test".into(),
        }],
        ..Default::default()
    };
    harness.applier.apply(delta).await.unwrap();
    assert_eq!(harness.address(), address);
    assert_eq!(harness.get("/x", "a").await.0, StatusCode::NOT_FOUND);

    // One full update and one delta applied, one update rejected.
    let updates = harness.applier.updates();
    assert_eq!(
        (updates.full(), updates.delta(), updates.rejected_count()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn dead_backends_give_502_then_503_once_unhealthy() {
    let dead = refused_address().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "a@test",
        service("dead@test", &format!("http://{dead}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    assert_eq!(
        harness.get("/", "a").await,
        (StatusCode::BAD_GATEWAY, "Bad Gateway".into())
    );

    let check = v1::HealthCheck {
        path: "/health".into(),
        interval_ms: 50,
        timeout_ms: 500,
        ..Default::default()
    };
    let update = catch_all(
        "2-b",
        "a@test",
        service("dead@test", &format!("http://{dead}"), Some(check)),
    );
    harness.applier.apply(update).await.unwrap();
    let harness = &harness;
    eventually(|| async move { harness.get("/", "a").await.0 == StatusCode::SERVICE_UNAVAILABLE })
        .await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let backend = echo_backend().await;
    let mut harness = Harness::new();
    let update = catch_all(
        "1-a",
        "a@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    let address = harness.address();
    let client = harness.client.clone();
    let slow = tokio::spawn(async move {
        let request = Request::get(format!("http://{address}/slow"))
            .body(Full::default())
            .unwrap();
        client.request(request).await.map(|r| r.status())
    });
    // Wait until the request reaches the backend, then shut down.
    eventually(|| async { SLOW_STARTED.load(Ordering::SeqCst) > 0 }).await;
    harness.applier.shutdown().await;
    assert_eq!(slow.await.unwrap().unwrap(), StatusCode::OK);
    assert!(TcpStream::connect(address).await.is_err());
}

/// A control plane that plays one script of updates per Watch stream and
/// reports what the proxy sent.
struct FakeControlPlane {
    scripts: Mutex<VecDeque<Vec<SnapshotUpdate>>>,
    received: mpsc::UnboundedSender<watch_request::Kind>,
}

#[tonic::async_trait]
impl SnapshotService for FakeControlPlane {
    type WatchStream = ReceiverStream<Result<SnapshotUpdate, Status>>;

    async fn watch(
        &self,
        request: tonic::Request<Streaming<WatchRequest>>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let mut inbound = request.into_inner();
        let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
        let received = self.received.clone();
        let (updates, outbound) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut script = script.into_iter();
            while let Ok(Some(message)) = inbound.message().await {
                let _ = received.send(message.kind.unwrap());
                // One un-acknowledged update at a time: the next goes after each reply.
                if let Some(update) = script.next()
                    && updates.send(Ok(update)).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(ReceiverStream::new(outbound)))
    }

    async fn get_snapshot(
        &self,
        _: tonic::Request<v1::GetSnapshotRequest>,
    ) -> Result<tonic::Response<v1::Snapshot>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn list_nodes(
        &self,
        _: tonic::Request<v1::ListNodesRequest>,
    ) -> Result<tonic::Response<v1::ListNodesResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

#[tokio::test]
async fn snapshot_client_acks_nacks_and_resyncs() {
    let backend = echo_backend().await;
    let first = catch_all(
        "1-a",
        "a@test",
        service("echo@test", &format!("http://{backend}"), None),
    );
    let stale_delta = SnapshotUpdate {
        version: "3-c".into(),
        base_version: "2-b".into(),
        ..Default::default()
    };
    let (received, mut from_proxy) = mpsc::unbounded_channel();
    let fake = FakeControlPlane {
        scripts: Mutex::new(VecDeque::from([vec![first, stale_delta], vec![]])),
        received,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_plane = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SnapshotServiceServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let (mut applier, runtime) = test_applier();
    let stop = CancellationToken::new();
    let endpoint = Endpoint::from_shared(format!("http://{control_plane}")).unwrap();
    let identity = Identity {
        node_id: "node-1".into(),
        labels: [("zone".to_owned(), "a".to_owned())].into(),
        build_version: "test".into(),
    };
    let client = tokio::spawn({
        let stop = stop.clone();
        async move {
            crate::snapshot_client::run(endpoint, Default::default(), identity, &mut applier, stop)
                .await
        }
    });

    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), from_proxy.recv())
            .await
            .expect("the proxy answers")
            .expect("the fake is alive")
    };
    let watch_request::Kind::Hello(hello) = next().await else {
        panic!("hello first")
    };
    assert_eq!(
        (hello.node_id.as_str(), hello.version.as_str()),
        ("node-1", "")
    );
    assert_eq!(hello.labels["zone"], "a");
    assert!(matches!(next().await, watch_request::Kind::Ack(ack) if ack.version == "1-a"));
    assert_eq!(runtime.load().version(), "1-a");
    let watch_request::Kind::Nack(nack) = next().await else {
        panic!("stale delta NACKed")
    };
    assert_eq!(nack.version, "3-c");
    assert!(
        nack.error.contains("delta applies to version `2-b`"),
        "{}",
        nack.error
    );
    // The proxy drops the stream and asks for the full state.
    let watch_request::Kind::Hello(hello) = next().await else {
        panic!("hello again")
    };
    assert_eq!(hello.version, "");
    assert_eq!(runtime.load().version(), "1-a");
    stop.cancel();
    client.await.unwrap();
}
