//! `sluice.v1.SnapshotService` over tonic, plus server reflection (v1 and
//! v1alpha) and `grpc.health.v1.Health`, so `grpcurl` works out of the box.
//!
//! The listener can require TLS (with client certificates when a client CA
//! is configured) and a bearer token on `SnapshotService` calls (checked in
//! constant time; reflection and health stay open): see [`LinkSecurity`].
//!
//! Each Watch stream has at most one update in flight: the next is computed
//! only after the proxy acknowledged (or rejected) the previous one, from the
//! latest snapshot at that moment, so bursts of changes coalesce.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use sluice_proto::v1::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use sluice_proto::v1::{
    GetSnapshotRequest, Hello, ListNodesRequest, ListNodesResponse, Snapshot, SnapshotUpdate,
    WatchRequest, watch_request,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

pub(crate) use crate::link_security::LinkSecurity;
use crate::nodes::{Connection, NodeRegistry};
use crate::store::SnapshotStore;

/// A proxy must say hello this soon after opening a stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the gRPC listener.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The reflection service could not read the protocol's descriptors.
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A file of `controlPlane.tls` cannot be read.
    #[error("{key} `{path}`: {source}")]
    TlsFile {
        /// The configuration key.
        key: &'static str,
        /// The path as configured.
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `controlPlane.tls` is incomplete.
    #[error("controlPlane.tls: {0}")]
    TlsConfig(&'static str),
    /// The TLS configuration is refused by the gRPC server.
    #[error("controlPlane.tls: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The listener failed.
    #[error("gRPC server on {address}: {source}")]
    Serve {
        address: SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The `SnapshotService` implementation.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotServer {
    store: Arc<SnapshotStore>,
    nodes: Arc<NodeRegistry>,
    /// Ends every Watch stream, so shutdown does not wait for proxies to leave.
    shutdown: CancellationToken,
}

impl SnapshotServer {
    pub(crate) fn new(
        store: Arc<SnapshotStore>,
        nodes: Arc<NodeRegistry>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            nodes,
            shutdown,
        }
    }

    /// Serves the snapshot service, reflection and health on `listener` until
    /// `shutdown`, with TLS and a token check as `security` says.
    pub(crate) async fn serve(
        self,
        listener: tokio::net::TcpListener,
        security: LinkSecurity,
    ) -> Result<(), GrpcError> {
        let shutdown = self.shutdown.clone();
        let address = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        // Every service served is described, so `grpcurl list` shows them all.
        let descriptors = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(sluice_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                )
        };
        let reflection_v1 = descriptors().build_v1()?;
        let reflection_v1alpha = descriptors().build_v1alpha()?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<SnapshotServiceServer<SnapshotServer>>()
            .await;
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = security.tls {
            builder = builder.tls_config(tls).map_err(GrpcError::Tls)?;
        }
        builder
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(SnapshotServiceServer::with_interceptor(
                self,
                security.token,
            ))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await
            .map_err(|source| GrpcError::Serve { address, source })
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<SnapshotUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl SnapshotService for SnapshotServer {
    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 10 s"))??;
        let hello = match first.and_then(|request| request.kind) {
            Some(watch_request::Kind::Hello(hello)) if !hello.node_id.is_empty() => hello,
            Some(watch_request::Kind::Hello(_)) => {
                return Err(Status::invalid_argument("Hello.node_id is empty"));
            }
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a Hello",
                ));
            }
        };
        tracing::info!(node = %hello.node_id, %peer, held = %hello.version, "proxy connected");
        let connection = self.nodes.connect(&hello, peer);
        let (outbound, receiver) = mpsc::channel(1);
        let session = WatchSession {
            store: Arc::clone(&self.store),
            nodes: Arc::clone(&self.nodes),
            connection,
            outbound,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(session.run(hello, inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_snapshot(
        &self,
        _request: Request<GetSnapshotRequest>,
    ) -> Result<Response<Snapshot>, Status> {
        self.store
            .current()
            .map(|published| Response::new(published.to_snapshot()))
            .ok_or_else(|| Status::unavailable("no snapshot has been compiled yet"))
    }

    async fn list_nodes(
        &self,
        _request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        Ok(Response::new(ListNodesResponse {
            nodes: self.nodes.list(),
        }))
    }
}

/// One proxy's Watch stream.
struct WatchSession {
    store: Arc<SnapshotStore>,
    nodes: Arc<NodeRegistry>,
    connection: Connection,
    outbound: mpsc::Sender<Result<SnapshotUpdate, Status>>,
    shutdown: CancellationToken,
}

impl WatchSession {
    async fn run(self, hello: Hello, mut inbound: Streaming<WatchRequest>) {
        let node = hello.node_id;
        let mut held = hello.version;
        let mut snapshots = self.store.subscribe();
        // The version sent and not yet answered.
        let mut in_flight: Option<String> = None;
        // The last version the proxy rejected: not sent again.
        let mut rejected: Option<String> = None;
        loop {
            if in_flight.is_none() {
                let latest = snapshots.borrow_and_update().clone();
                if let Some(target) = latest
                    && target.version() != held
                    && rejected.as_deref() != Some(target.version())
                {
                    let update = self.store.update_for(&held, &target);
                    tracing::debug!(
                        %node,
                        version = %update.version,
                        full = update.full_state,
                        "sending update"
                    );
                    if self.outbound.send(Ok(update)).await.is_err() {
                        break;
                    }
                    self.nodes.served(&self.connection, target.version());
                    in_flight = Some(target.version().to_owned());
                }
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(WatchRequest { kind: Some(watch_request::Kind::Ack(ack)) })) => {
                        if in_flight.as_deref() == Some(ack.version.as_str()) {
                            in_flight = None;
                            self.nodes.acked(&self.connection, &ack.version);
                            held = ack.version;
                        }
                    }
                    Ok(Some(WatchRequest { kind: Some(watch_request::Kind::Nack(nack)) })) => {
                        if in_flight.as_deref() == Some(nack.version.as_str()) {
                            tracing::warn!(%node, version = %nack.version, error = %nack.error, "proxy rejected snapshot");
                            in_flight = None;
                            rejected = Some(nack.version.clone());
                            self.nodes.nacked(&self.connection, nack);
                        }
                    }
                    Ok(Some(_)) => {
                        let _ = self
                            .outbound
                            .send(Err(Status::invalid_argument("expected an Ack or a Nack")))
                            .await;
                        break;
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%node, %status, "watch stream failed");
                        break;
                    }
                },
                () = self.shutdown.cancelled() => break,
                changed = snapshots.changed(), if in_flight.is_none() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!(%node, "proxy disconnected");
        self.nodes.disconnect(&self.connection);
    }
}
