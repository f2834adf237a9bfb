//! What flows through the proxy besides plain requests: WebSocket tunnels,
//! gRPC to h2c backends, and bodies far larger than the proxy's memory
//! budget, streamed both ways.

use futures::{SinkExt, StreamExt};
use integration_tests::{
    GrpcHealthBackend, StreamingBackend, WebSocketEchoBackend, download, upload,
};
use tokio_tungstenite::tungstenite::Message;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use super::{Routes, Stack, heavy_test};

#[tokio::test(flavor = "multi_thread")]
async fn websocket_messages_echo_through_the_proxy() {
    let backend = WebSocketEchoBackend::start().await;
    let routes = Routes::new()
        .router("ws", "PathPrefix(`/ws`)", "ws")
        .load_balancer("ws", &[backend.url()]);
    let stack = Stack::start(&routes).await;

    let url = format!("ws://127.0.0.1:{}/ws/chat?room=1", stack.port());
    let (mut socket, response) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_or_else(|error| panic!("WebSocket handshake through the proxy: {error}"));
    assert_eq!(response.status().as_u16(), 101);

    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let messages = [
        Message::text("hello through the proxy"),
        Message::binary(large),
        Message::text("and again"),
    ];
    for message in messages {
        socket.send(message.clone()).await.expect("sending");
        let echoed = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an echo within 10 s")
            .expect("the tunnel is open")
            .expect("a message");
        assert_eq!(echoed, message);
    }
    socket.close(None).await.expect("closing");

    let handshakes = backend.handshakes();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    let handshake = &handshakes[0];
    assert_eq!(handshake[":path"], "/ws/chat?room=1");
    assert_eq!(handshake["x-forwarded-proto"], "ws", "{handshake:?}");
    assert_eq!(handshake["upgrade"].to_ascii_lowercase(), "websocket");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_reach_an_h2c_backend_through_the_proxy() {
    let backend = GrpcHealthBackend::start().await;
    let routes = Routes::new()
        .router("grpc", "PathPrefix(`/grpc.health.v1.Health/`)", "grpc")
        .load_balancer("grpc", &[backend.h2c_url()]);
    let stack = Stack::start(&routes).await;

    let channel = tonic::transport::Endpoint::from_shared(stack.url(""))
        .expect("endpoint")
        .connect()
        .await
        .expect("an h2c connection to the proxy");
    let mut client = HealthClient::new(channel);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };

    let response = client.check(check("")).await.expect("Health/Check");
    assert_eq!(response.into_inner().status(), Status::Serving);

    // Statuses carried in trailers come back too.
    let error = client
        .check(check("no.such.Service"))
        .await
        .expect_err("an unknown service is an error");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");

    backend
        .set_status("sluice.Test", ServingStatus::NotServing)
        .await;
    let response = client
        .check(check("sluice.Test"))
        .await
        .expect("Health/Check");
    assert_eq!(response.into_inner().status(), Status::NotServing);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_upload_and_download_stream_with_bounded_proxy_memory() {
    const SIZE: u64 = 256 * 1024 * 1024;
    const BOUND_KIB: u64 = 64 * 1024;
    let _turn = heavy_test().await;
    let backend = StreamingBackend::start().await;
    let routes = Routes::new()
        .router("files", "PathPrefix(`/`)", "files")
        .load_balancer("files", &[backend.url()]);
    let stack = Stack::start(&routes).await;

    // Warm up (connections, buffers, allocator) before the baseline.
    let (status, body) = upload(&stack.url("/upload"), 1024 * 1024).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "1048576"));
    let (status, bytes) = download(&stack.url("/download?bytes=1048576"))
        .await
        .unwrap();
    assert_eq!((status, bytes), (200, 1024 * 1024));
    let baseline = stack.proxy.peak_memory_kib();

    let (status, body) = upload(&stack.url("/upload"), SIZE).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, SIZE.to_string(), "the backend received every byte");
    let (status, bytes) = download(&stack.url(&format!("/download?bytes={SIZE}")))
        .await
        .unwrap();
    assert_eq!((status, bytes), (200, SIZE), "every byte came back");

    let peak = stack.proxy.peak_memory_kib();
    eprintln!("proxy peak memory: {baseline} KiB before, {peak} KiB after 256 MiB each way");
    assert!(
        peak.saturating_sub(baseline) < BOUND_KIB,
        "proxy peak memory grew by {} KiB (from {baseline} to {peak} KiB) for 256 MiB each way; \
         bodies must stream, not buffer",
        peak.saturating_sub(baseline)
    );
}
