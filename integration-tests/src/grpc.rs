//! Talking gRPC to a control plane: `grpcurl` as a user would, and a
//! scripted `Watch` client that plays the proxy's side of the protocol one
//! message at a time.

use std::process::Output;
use std::time::Duration;

use sluice_proto::v1::snapshot_service_client::SnapshotServiceClient;
use sluice_proto::v1::{Ack, Hello, Nack, SnapshotUpdate, WatchRequest, watch_request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::run_command;

/// How long [`WatchClient::next_update`] waits before failing the test.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `grpcurl -plaintext -max-time 10 <flags...> <address> <args...>`,
/// e.g. `grpcurl(&[], "127.0.0.1:7050", &["list"])` or
/// `grpcurl(&["-d", "{}"], address, &["grpc.health.v1.Health/Check"])`
/// (grpcurl reads flags only before the address).
pub fn grpcurl(flags: &[&str], address: &str, args: &[&str]) -> Output {
    let mut all = vec!["-plaintext", "-max-time", "10"];
    all.extend_from_slice(flags);
    all.push(address);
    all.extend_from_slice(args);
    run_command("grpcurl", &all)
}

/// One `SnapshotService/Watch` stream, driven by the test: it sends the
/// Hello on connect, then only what the test asks (ACKs, NACKs).
#[derive(Debug)]
pub struct WatchClient {
    requests: mpsc::Sender<WatchRequest>,
    updates: Streaming<SnapshotUpdate>,
}

impl WatchClient {
    /// Opens a stream to `grpc_url` (`http://127.0.0.1:PORT`) as `node_id`,
    /// saying it holds `version` (empty: nothing).
    pub async fn connect(grpc_url: &str, node_id: &str, version: &str) -> Self {
        Self::connect_with(
            grpc_url,
            Hello {
                node_id: node_id.to_owned(),
                version: version.to_owned(),
                build_version: "integration-tests".to_owned(),
                ..Hello::default()
            },
        )
        .await
    }

    /// Opens a stream and sends `hello` first.
    pub async fn connect_with(grpc_url: &str, hello: Hello) -> Self {
        let mut client = SnapshotServiceClient::connect(grpc_url.to_owned())
            .await
            .unwrap_or_else(|error| panic!("connecting to {grpc_url}: {error}"));
        let (requests, receiver) = mpsc::channel(16);
        // Queued before the call: the server answers only once it has the Hello.
        requests
            .send(WatchRequest {
                kind: Some(watch_request::Kind::Hello(hello)),
            })
            .await
            .expect("queueing the Hello");
        let updates = client
            .watch(ReceiverStream::new(receiver))
            .await
            .unwrap_or_else(|status| panic!("Watch on {grpc_url}: {status}"))
            .into_inner();
        Self { requests, updates }
    }

    /// The next update; fails the test if none comes within 15 s or the
    /// stream ends.
    pub async fn next_update(&mut self) -> SnapshotUpdate {
        match self.next_update_within(UPDATE_TIMEOUT).await {
            Some(update) => update,
            None => panic!("no snapshot update within {UPDATE_TIMEOUT:?}"),
        }
    }

    /// The next update if one arrives within `window`, `None` otherwise.
    /// Fails the test if the stream ends or errors. Use it for bounded
    /// "nothing arrives" checks after the condition that would have caused
    /// an update was observed.
    pub async fn next_update_within(&mut self, window: Duration) -> Option<SnapshotUpdate> {
        // `Streaming::message` keeps its state in the stream: cancelling it
        // on timeout loses nothing.
        match tokio::time::timeout(window, self.updates.message()).await {
            Err(_elapsed) => None,
            Ok(Ok(Some(update))) => Some(update),
            Ok(Ok(None)) => panic!("the Watch stream ended"),
            Ok(Err(status)) => panic!("the Watch stream failed: {status}"),
        }
    }

    /// Acknowledges `version`.
    pub async fn ack(&self, version: &str) {
        self.send(watch_request::Kind::Ack(Ack {
            version: version.to_owned(),
        }))
        .await;
    }

    /// Rejects `version` with `error`.
    pub async fn nack(&self, version: &str, error: &str) {
        self.send(watch_request::Kind::Nack(Nack {
            version: version.to_owned(),
            error: error.to_owned(),
        }))
        .await;
    }

    async fn send(&self, kind: watch_request::Kind) {
        self.requests
            .send(WatchRequest { kind: Some(kind) })
            .await
            .expect("the Watch request stream is open");
    }
}
