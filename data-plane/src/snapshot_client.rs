//! The proxy's side of `SnapshotService.Watch`: connect, say hello with the
//! version held, apply each update and ACK or NACK it; reconnect forever with
//! jittered exponential backoff (0.5 s to 30 s, reset once a stream is open).
//! The proxy never exits because the control plane is away: it keeps serving
//! the last runtime it built.
//!
//! When a delta does not apply to the version held, the update is NACKed and
//! the stream dropped; the next hello carries no version, so the control
//! plane answers with the full state.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_proto::v1::snapshot_service_client::SnapshotServiceClient;
use sluice_proto::v1::{Ack, Hello, Nack, WatchRequest, watch_request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Endpoint;

use crate::apply::Applier;
use crate::backoff::Backoff;
use crate::report;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Time allowed for a NACK to reach the control plane before a resync.
const NACK_FLUSH: Duration = Duration::from_secs(1);

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Default)]
pub(crate) struct BearerToken(pub(crate) Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BearerToken(<redacted>)"
        } else {
            "BearerToken(None)"
        })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How this proxy introduces itself.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// Node id.
    pub(crate) node_id: String,
    /// Labels for the fleet view.
    pub(crate) labels: BTreeMap<String, String>,
    /// Build version.
    pub(crate) build_version: String,
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    /// The control plane cannot be reached.
    #[error("cannot connect to the control plane")]
    Connect(#[source] tonic::transport::Error),
    /// The stream failed.
    #[error("snapshot stream failed")]
    Status(#[source] tonic::Status),
}

/// How a stream ended without error.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// The control plane closed it.
    Closed,
    /// A delta did not apply: reconnect asking for the full state.
    NeedFullState,
}

/// Watches snapshots until `stop` fires.
pub(crate) async fn run(
    endpoint: Endpoint,
    token: BearerToken,
    identity: Identity,
    applier: &mut Applier,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
    let mut full_state = false;
    loop {
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = watch(&endpoint, &token, &identity, applier, full_state, &mut backoff) => result,
        };
        full_state = false;
        match result {
            Ok(StreamEnd::NeedFullState) => {
                tracing::info!("reconnecting to the control plane for the full state");
                full_state = true;
                continue;
            }
            Ok(StreamEnd::Closed) => {
                tracing::warn!(
                    "the control plane closed the snapshot stream; serving the last snapshot"
                );
            }
            Err(error) => {
                tracing::warn!(
                    error = %report::chain(&error),
                    version = %applier.version(),
                    "control plane unavailable; serving the last snapshot"
                );
            }
        }
        let delay = backoff.next_delay();
        tracing::debug!(?delay, "reconnecting to the control plane");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn watch(
    endpoint: &Endpoint,
    token: &BearerToken,
    identity: &Identity,
    applier: &mut Applier,
    full_state: bool,
    backoff: &mut Backoff,
) -> Result<StreamEnd, StreamError> {
    let channel = endpoint.connect().await.map_err(StreamError::Connect)?;
    let mut client = SnapshotServiceClient::with_interceptor(channel, token.clone());
    let (requests, outbound) = mpsc::channel(4);
    let version = if full_state { "" } else { applier.version() };
    let hello = Hello {
        node_id: identity.node_id.clone(),
        labels: identity.labels.clone(),
        version: version.to_owned(),
        build_version: identity.build_version.clone(),
    };
    send(&requests, watch_request::Kind::Hello(hello)).await;
    let mut updates = client
        .watch(ReceiverStream::new(outbound))
        .await
        .map_err(StreamError::Status)?
        .into_inner();
    backoff.reset();
    tracing::info!(endpoint = %endpoint.uri(), version, "connected to the control plane");
    while let Some(update) = updates.message().await.map_err(StreamError::Status)? {
        let version = update.version.clone();
        match applier.apply(update).await {
            Ok(()) => {
                tracing::info!(%version, "snapshot applied");
                send(&requests, watch_request::Kind::Ack(Ack { version })).await;
            }
            Err(error) => {
                let reason = report::chain(&error);
                tracing::warn!(%version, error = %reason, "snapshot rejected; serving the previous one");
                send(
                    &requests,
                    watch_request::Kind::Nack(Nack {
                        version,
                        error: reason,
                    }),
                )
                .await;
                if error.needs_full_state() {
                    // Close our half so the NACK is flushed, and give the
                    // control plane a moment to record it and hang up.
                    drop(requests);
                    let drain = async { while let Ok(Some(_)) = updates.message().await {} };
                    let _ = tokio::time::timeout(NACK_FLUSH, drain).await;
                    return Ok(StreamEnd::NeedFullState);
                }
            }
        }
    }
    Ok(StreamEnd::Closed)
}

async fn send(requests: &mpsc::Sender<WatchRequest>, kind: watch_request::Kind) {
    // A closed channel means the stream is gone; reading it reports why.
    let _ = requests.send(WatchRequest { kind: Some(kind) }).await;
}
