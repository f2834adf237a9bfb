//! The etcd provider (`providers.etcd`): Traefik's key layout under
//! `rootKey`, read from etcd's v3 API.
//!
//! The provider reads every key under `<rootKey>/` (`KV.Range`), then
//! watches the prefix from the revision after that read (`Watch`), so no
//! change is missed between the two. Bursts of events are coalesced before
//! the tree is decoded again. If etcd compacted the history the watch needs,
//! or cancels it, the provider reads everything again. With `username`, it
//! authenticates (`Auth.Authenticate`) and sends the token with each call.
//! With `tls` (or `https://` endpoints), gRPC runs over rustls, with a client
//! certificate when `tls.cert` and `tls.key` are set (etcd's
//! `--client-cert-auth`).
//!
//! When etcd cannot be reached or fails, the last configuration sent stays
//! in place; the provider retries with backoff (trying the next endpoint)
//! and reports its state at `/api/providers`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_proto::etcd::etcdserverpb::auth_client::AuthClient;
use sluice_proto::etcd::etcdserverpb::kv_client::KvClient;
use sluice_proto::etcd::etcdserverpb::watch_client::WatchClient;
use sluice_proto::etcd::etcdserverpb::watch_request::RequestUnion;
use sluice_proto::etcd::etcdserverpb::{
    AuthenticateRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use sluice_proto::etcd::mvccpb::event::EventType;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use super::backoff::Backoff;
use super::consul::with_causes;
use super::endpoint;
use super::kv;
use super::publish::Publisher;
use super::tls::{ProviderTlsError, client_config};
use super::{ProviderHealthRegistry, ProviderUpdate};
use crate::config::{EtcdConfig, Secret};

/// The provider name, qualifying resource names (`api@etcd`).
const PROVIDER: &str = "etcd";

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a unary call (read, authentication) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// After a watch event, wait this long for more before decoding...
const QUIET_PERIOD: Duration = Duration::from_millis(10);

/// ...but decode at the latest this long after the first.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// Why the etcd provider cannot be created, or lost etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// An endpoint is not `host:port`, `http://host:port` or `https://host:port`.
    #[error("invalid etcd endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No endpoint is configured.
    #[error("no etcd endpoint is configured")]
    NoEndpoint,
    /// The `tls` options cannot be used.
    #[error(transparent)]
    Tls(#[from] ProviderTlsError),
    /// The endpoint could not be reached.
    #[error("cannot connect to etcd at {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why, with its causes.
        reason: String,
    },
    /// A call failed.
    #[error("etcd {call} at {endpoint}: {message}")]
    Call {
        /// Which call (`Range`, `Watch`, `Authenticate`).
        call: &'static str,
        /// The endpoint.
        endpoint: String,
        /// etcd's status and message.
        message: String,
    },
    /// The watch stream ended or was cancelled by etcd.
    #[error("etcd ended the watch at {endpoint}: {reason}")]
    WatchEnded {
        /// The endpoint.
        endpoint: String,
        /// Why, as far as etcd said.
        reason: String,
    },
}

/// Why a watch session ended.
enum SessionEnd {
    /// `shutdown`, or the aggregator is gone.
    Stopped,
    /// The history the watch needed was compacted: read everything again.
    Compacted,
    /// etcd failed.
    Failed(EtcdError),
}

impl From<EtcdError> for SessionEnd {
    fn from(error: EtcdError) -> Self {
        Self::Failed(error)
    }
}

/// Reads Traefik dynamic configuration from etcd and watches it.
#[derive(Debug)]
pub struct EtcdProvider {
    root_key: String,
    /// `http://host:port` or `https://host:port`.
    endpoints: Vec<String>,
    /// TLS for `https` endpoints (ALPN `h2`).
    tls: Arc<rustls::ClientConfig>,
    /// The endpoint used next; moves on after a failure.
    current: usize,
    username: String,
    password: Secret,
}

/// A connection to one endpoint, authenticated if needed.
struct Session {
    endpoint: String,
    channel: Channel,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl EtcdProvider {
    /// A provider for `providers.etcd`.
    pub fn new(config: &EtcdConfig) -> Result<Self, EtcdError> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoint);
        }
        let endpoints = config
            .endpoints
            .iter()
            .map(|endpoint| parse_endpoint(endpoint, config.tls.is_some()))
            .collect::<Result<_, _>>()?;
        let tls = client_config("tls", config.tls.as_ref())?;
        Ok(Self {
            root_key: config.root_key.trim_matches('/').to_owned(),
            endpoints,
            tls: Arc::new(tls),
            current: 0,
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    /// The provider's name, `etcd`.
    pub fn name(&self) -> &str {
        PROVIDER
    }

    /// Reads the tree once.
    pub async fn load(&mut self) -> Result<ProviderUpdate, EtcdError> {
        let session = self.connect().await?;
        let (keys, _) = self.read_all(&session).await?;
        Ok(self.update(&keys))
    }

    /// Sends the tree, then a fresh update after every change, until
    /// `shutdown`.
    pub async fn run(
        mut self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        let mut publisher = Publisher::new(PROVIDER, updates, health);
        let mut backoff = Backoff::default();
        loop {
            let end = tokio::select! {
                () = shutdown.cancelled() => return,
                end = self.session(&mut publisher, &mut backoff, &shutdown) => end,
            };
            match end {
                SessionEnd::Stopped => return,
                SessionEnd::Compacted => {}
                SessionEnd::Failed(error) => {
                    publisher.failed(&error);
                    self.current = (self.current + 1) % self.endpoints.len();
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Reads everything, publishes it, then follows the watch until it
    /// fails.
    async fn session(
        &self,
        publisher: &mut Publisher,
        backoff: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let session = match self.connect().await {
            Ok(session) => session,
            Err(error) => return error.into(),
        };
        let (mut keys, revision) = match self.read_all(&session).await {
            Ok(read) => read,
            Err(error) => return error.into(),
        };
        backoff.reset();
        publisher.healthy();
        if !publisher.publish(self.update(&keys), shutdown).await {
            return SessionEnd::Stopped;
        }

        let (requests, request_stream) = mpsc::channel(1);
        let (start, end) = self.range();
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: start,
                range_end: end,
                start_revision: revision + 1,
            })),
        };
        // The sender stays open for the whole session: closing it would end the watch.
        if requests.send(create).await.is_err() {
            return SessionEnd::Stopped;
        }
        let mut client = WatchClient::new(session.channel.clone());
        let request = session.request(ReceiverStream::new(request_stream));
        let mut stream = match client.watch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return session.failed("Watch", &status).into(),
        };
        loop {
            let batch = match next_batch(&mut stream, &session).await {
                Ok(batch) => batch,
                Err(end) => return end,
            };
            for event in batch.iter().flat_map(|response| &response.events) {
                let Some(kv) = &event.kv else { continue };
                let key = String::from_utf8_lossy(&kv.key).into_owned();
                if event.r#type == EventType::Delete as i32 {
                    keys.remove(&key);
                } else {
                    keys.insert(key, kv.value.clone());
                }
            }
            if !publisher.publish(self.update(&keys), shutdown).await {
                return SessionEnd::Stopped;
            }
        }
    }

    async fn connect(&self) -> Result<Session, EtcdError> {
        let endpoint = self.endpoints[self.current].clone();
        let connect_error = |error: tonic::transport::Error| EtcdError::Connect {
            endpoint: endpoint.clone(),
            reason: with_causes(&error),
        };
        let channel = match endpoint.strip_prefix("https://") {
            Some(authority) => {
                // tonic sees a plain endpoint; the connector adds rustls.
                let connector = TlsConnector(
                    HttpsConnectorBuilder::new()
                        .with_tls_config(rustls::ClientConfig::clone(&self.tls))
                        .https_only()
                        .enable_http2()
                        .build(),
                );
                Endpoint::from_shared(format!("http://{authority}"))
                    .map_err(connect_error)?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect_with_connector(connector)
                    .await
            }
            None => {
                Endpoint::from_shared(endpoint.clone())
                    .map_err(connect_error)?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect()
                    .await
            }
        }
        .map_err(connect_error)?;
        let mut session = Session {
            endpoint,
            channel,
            token: None,
        };
        if !self.username.is_empty() {
            let mut request = tonic::Request::new(AuthenticateRequest {
                name: self.username.clone(),
                password: self.password.expose().to_owned(),
            });
            request.set_timeout(CALL_TIMEOUT);
            let response = AuthClient::new(session.channel.clone())
                .authenticate(request)
                .await
                .map_err(|status| session.failed("Authenticate", &status))?;
            let token = response.into_inner().token;
            session.token = Some(token.parse().map_err(|_| EtcdError::Call {
                call: "Authenticate",
                endpoint: session.endpoint.clone(),
                message: "the token etcd returned is not valid metadata".to_owned(),
            })?);
        }
        Ok(session)
    }

    /// Every key under the root and its value, and the revision read.
    async fn read_all(
        &self,
        session: &Session,
    ) -> Result<(BTreeMap<String, Vec<u8>>, i64), EtcdError> {
        let (key, range_end) = self.range();
        let mut request = session.request(RangeRequest { key, range_end });
        request.set_timeout(CALL_TIMEOUT);
        let response = KvClient::new(session.channel.clone())
            .range(request)
            .await
            .map_err(|status| session.failed("Range", &status))?
            .into_inner();
        let revision = response.header.map_or(0, |header| header.revision);
        let keys = response
            .kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .collect();
        Ok((keys, revision))
    }

    /// `[<rootKey>/, <rootKey>0)`: every key under the root.
    fn range(&self) -> (Vec<u8>, Vec<u8>) {
        let start = format!("{}/", self.root_key).into_bytes();
        let mut end = start.clone();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        (start, end)
    }

    fn update(&self, keys: &BTreeMap<String, Vec<u8>>) -> ProviderUpdate {
        kv::update_from_raw_keys(PROVIDER, &self.root_key, keys)
    }
}

impl Session {
    /// A request carrying the authentication token, if any.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("token", token.clone());
        }
        request
    }

    fn failed(&self, call: &'static str, status: &tonic::Status) -> EtcdError {
        EtcdError::Call {
            call,
            endpoint: self.endpoint.clone(),
            message: format!("{:?}: {}", status.code(), status.message()),
        }
    }
}

/// Connects over TLS (rustls, ALPN `h2`) whatever the scheme tonic asks
/// for, so that tonic's own TLS, when compiled in, stays out of the way.
#[derive(Debug, Clone)]
struct TlsConnector(HttpsConnector<HttpConnector>);

impl tonic::codegen::Service<http::Uri> for TlsConnector {
    type Response = <HttpsConnector<HttpConnector> as tonic::codegen::Service<http::Uri>>::Response;
    type Error = <HttpsConnector<HttpConnector> as tonic::codegen::Service<http::Uri>>::Error;
    type Future = <HttpsConnector<HttpConnector> as tonic::codegen::Service<http::Uri>>::Future;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut parts = uri.into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTPS);
        match http::Uri::from_parts(parts) {
            Ok(uri) => self.0.call(uri),
            Err(error) => Box::pin(async move { Err(error.into()) }),
        }
    }
}

/// The next watch responses: one, and those that follow it within
/// [`QUIET_PERIOD`] of each other (at most [`MAX_DELAY`] in all).
async fn next_batch(
    stream: &mut tonic::Streaming<WatchResponse>,
    session: &Session,
) -> Result<Vec<WatchResponse>, SessionEnd> {
    let mut batch = Vec::new();
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let message = if batch.is_empty() {
            stream.message().await
        } else {
            let wait = (tokio::time::Instant::now() + QUIET_PERIOD).min(deadline);
            match tokio::time::timeout_at(wait, stream.message()).await {
                Ok(message) => message,
                Err(_) => return Ok(batch),
            }
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) if batch.is_empty() => {
                return Err(SessionEnd::Failed(EtcdError::WatchEnded {
                    endpoint: session.endpoint.clone(),
                    reason: "the stream closed".to_owned(),
                }));
            }
            // Apply what arrived; the next call reports the end.
            Ok(None) => return Ok(batch),
            Err(status) => return Err(session.failed("Watch", &status).into()),
        };
        if response.compact_revision != 0 {
            tracing::info!(
                compact_revision = response.compact_revision,
                "etcd compacted the watched history; reading every key again"
            );
            return Err(SessionEnd::Compacted);
        }
        if response.canceled {
            return Err(SessionEnd::Failed(EtcdError::WatchEnded {
                endpoint: session.endpoint.clone(),
                reason: response.cancel_reason,
            }));
        }
        if !response.events.is_empty() {
            batch.push(response);
        }
    }
}

/// `endpoint` as `scheme://host:port` (see [`endpoint::normalize`]).
fn parse_endpoint(endpoint: &str, tls: bool) -> Result<String, EtcdError> {
    endpoint::normalize(endpoint, tls).map_err(|reason| EtcdError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(root_key: &str) -> EtcdProvider {
        EtcdProvider::new(&EtcdConfig {
            root_key: root_key.to_owned(),
            ..EtcdConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn reads_every_key_under_the_root_and_nothing_beside_it() {
        let (start, end) = provider("/traefik/").range();
        assert_eq!(start, b"traefik/");
        assert_eq!(end, b"traefik0");
    }

    #[test]
    fn endpoints_and_tls_are_checked_at_startup() {
        assert_eq!(provider("traefik").endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(
            parse_endpoint("http://etcd:2379", true).unwrap(),
            "http://etcd:2379"
        );
        assert_eq!(
            parse_endpoint("https://etcd:2379", false).unwrap(),
            "https://etcd:2379"
        );
        let tls = EtcdConfig {
            tls: Some(Default::default()),
            ..EtcdConfig::default()
        };
        assert_eq!(
            EtcdProvider::new(&tls).unwrap().endpoints,
            ["https://127.0.0.1:2379"]
        );
        let missing = EtcdConfig {
            tls: Some(crate::config::ProviderTlsConfig {
                cert: "/x/client.pem".to_owned(),
                key: "/x/client-key.pem".to_owned(),
                ..Default::default()
            }),
            ..EtcdConfig::default()
        };
        let error = EtcdProvider::new(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with("tls.cert `/x/client.pem`: No such file"),
            "{error}"
        );
    }

    #[test]
    fn non_utf8_values_are_errors_naming_the_key() {
        let mut keys = BTreeMap::new();
        keys.insert(
            "traefik/http/routers/a/rule".to_owned(),
            b"Path(`/`)".to_vec(),
        );
        keys.insert("traefik/http/routers/b/rule".to_owned(), vec![0xff, 0xfe]);
        let update = provider("traefik").update(&keys);
        assert_eq!(update.provider, "etcd");
        let routers = &update.config.http.as_ref().unwrap().routers;
        assert_eq!(routers.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(update.errors.len(), 1);
        assert_eq!(update.errors[0].location, "traefik/http/routers/b/rule");
    }
}
