//! The HTTP client the proxy uses towards backends, one per protocol: the
//! proxy's own HTTP/1.1 client (`crate::h1`) for `http://`, hyper-util's
//! pooled client for TLS (`https://`, HTTP/2 when the server picks `h2` by
//! ALPN) and for HTTP/2 with prior knowledge (`h2c://`); with Traefik's
//! forwarding timeouts.
//!
//! There is one client per servers transport (and one default), living in
//! the proxy's shared state keyed by the transport's content, so pooled
//! connections survive snapshot swaps that do not change the transport.
//! A client keeps one set of pools per serving thread (and one for the
//! other threads, see `crate::serving::pool_slot`): a request uses
//! connections driven by its own thread.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::ServerName;
use sluice_proto::v1;

use super::upstream::Protocol;
use crate::body::{BoxError, ProxyBody};
use crate::h1::{self, PoolLimits, ServerPools};
use crate::serving::pool_slot;
use crate::tls::{TlsError, client_config};

/// Timeouts and pooling of backend connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Time allowed to open a TCP connection (Traefik's `dialTimeout`, 30 s).
    pub dial_timeout: Duration,
    /// Time allowed between sending a request and receiving the response
    /// head; `None` waits forever (Traefik's `responseHeaderTimeout`, unset).
    pub response_header_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept (Traefik's
    /// `idleConnTimeout`, 90 s).
    pub idle_timeout: Duration,
    /// Idle connections kept per backend (per serving thread).
    pub max_idle_per_host: usize,
    /// Serving threads, each with its own connection pools.
    pub serving_threads: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: None,
            idle_timeout: Duration::from_secs(90),
            // Generous: under load every client connection may need its own
            // backend connection, and reconnecting costs more than an idle fd.
            max_idle_per_host: 1024,
            serving_threads: 1,
        }
    }
}

/// Why a request to a backend failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The connection could not be established (refused, unreachable, DNS).
    #[error("cannot connect to the server")]
    Connect(#[source] BoxError),
    /// The server did not send a response head in time.
    #[error("no response headers within {0:?}")]
    ResponseHeaderTimeout(Duration),
    /// The exchange failed after the connection was made.
    #[error("request to the server failed")]
    Request(#[source] BoxError),
}

impl From<hyper_util::client::legacy::Error> for SendError {
    fn from(error: hyper_util::client::legacy::Error) -> Self {
        if error.is_connect() {
            Self::Connect(error.into())
        } else {
            Self::Request(error.into())
        }
    }
}

impl From<h1::ExchangeError> for SendError {
    fn from(error: h1::ExchangeError) -> Self {
        match error {
            h1::ExchangeError::Connect(_) => Self::Connect(error.into()),
            other => Self::Request(other.into()),
        }
    }
}

impl SendError {
    /// True when no connection could be opened: nothing was sent.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }

    /// The status the client gets: 504 for timeouts, 502 otherwise.
    pub(crate) fn status(&self) -> StatusCode {
        let timed_out = match self {
            Self::ResponseHeaderTimeout(_) => true,
            Self::Connect(e) | Self::Request(e) => is_timeout(e.as_ref()),
        };
        if timed_out {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        }
    }
}

fn is_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = e.source();
    }
    false
}

impl UpstreamConfig {
    /// These settings with a servers transport's overrides.
    pub(crate) fn with_transport(&self, transport: &v1::ServersTransport) -> Self {
        let millis = |ms: i64| {
            u64::try_from(ms)
                .ok()
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis)
        };
        Self {
            dial_timeout: millis(transport.dial_timeout_ms).unwrap_or(self.dial_timeout),
            response_header_timeout: millis(transport.response_header_timeout_ms)
                .or(self.response_header_timeout),
            idle_timeout: millis(transport.idle_conn_timeout_ms).unwrap_or(self.idle_timeout),
            max_idle_per_host: match transport.max_idle_conns_per_host {
                0 => self.max_idle_per_host,
                n => usize::try_from(n).unwrap_or(self.max_idle_per_host),
            },
            serving_threads: self.serving_threads,
        }
    }
}

/// A request on its way straight to an `http://` server: this thread's
/// connections to it and the client's timeouts.
#[derive(Debug)]
pub(crate) struct DirectSend {
    back: h1::Return,
    dial_timeout: Duration,
    response_header_timeout: Option<Duration>,
}

impl DirectSend {
    /// The server's authority.
    pub(crate) fn authority(&self) -> &Authority {
        self.back.authority()
    }

    /// Sends a request head written by direct forwarding, with no body.
    pub(crate) async fn send(
        &self,
        head: Bytes,
        method: &Method,
        replayable: bool,
    ) -> Result<h1::Exchanged, SendError> {
        let back = self.back.clone();
        let exchange = h1::send_via(back, self.dial_timeout, head, None, method, replayable);
        match self.response_header_timeout {
            Some(limit) => Ok(tokio::time::timeout(limit, exchange)
                .await
                .map_err(|_| SendError::ResponseHeaderTimeout(limit))??),
            None => Ok(exchange.await?),
        }
    }
}

/// Pooled clients to backends.
#[derive(Debug)]
pub(crate) struct UpstreamClient {
    /// `http://` servers.
    http1: h1::Client,
    /// `https://` and `h2c://` servers, one set per pool slot.
    pools: Box<[Pools]>,
    response_header_timeout: Option<Duration>,
}

#[derive(Debug)]
struct Pools {
    https: Client<HttpsConnector<HttpConnector>, ProxyBody>,
    h2c: Client<HttpConnector, ProxyBody>,
}

impl UpstreamClient {
    /// Clients configured from `config` and, for TLS, `transport` (`None`:
    /// verify with the Mozilla roots, offer `h2` and `http/1.1`).
    pub(crate) fn new(
        config: &UpstreamConfig,
        transport: Option<&v1::ServersTransport>,
    ) -> Result<Self, TlsError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.dial_timeout));
        connector.set_keepalive(Some(Duration::from_secs(30)));
        // The TLS layer sees `https://` URIs; `http://` ones pass through.
        connector.enforce_http(false);
        let tls = client_config(transport)?;
        let disable_http2 = transport.is_some_and(|t| t.disable_http2);
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let https = https.https_or_http();
        let https = match transport.map(|t| t.server_name.as_str()) {
            Some(name) if !name.is_empty() => {
                let name =
                    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::Transport {
                        name: transport.map(|t| t.name.clone()).unwrap_or_default(),
                        reason: format!("serverName `{name}` is not a valid DNS name or IP"),
                    })?;
                https.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            _ => https,
        };
        let https = if disable_http2 {
            https.enable_http1().wrap_connector(connector.clone())
        } else {
            https
                .enable_http1()
                .enable_http2()
                .wrap_connector(connector.clone())
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_host);
        let mut h2c_builder = builder.clone();
        h2c_builder
            .http2_only(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        let slots = config.serving_threads.max(1) + 1;
        let pools = (0..slots)
            .map(|_| Pools {
                https: builder.build(https.clone()),
                h2c: h2c_builder.build(connector.clone()),
            })
            .collect();
        let limits = PoolLimits {
            idle_timeout: config.idle_timeout,
            max_idle_per_host: config.max_idle_per_host,
        };
        Ok(Self {
            http1: h1::Client::new(config.dial_timeout, limits, slots),
            pools,
            response_header_timeout: config.response_header_timeout,
        })
    }

    /// Sends `req` (absolute URI, version set for the protocol) and waits for
    /// the response head. `pools`: an `http://` server's idle connections,
    /// when the caller has them (else looked up by authority).
    pub(crate) async fn send(
        &self,
        protocol: Protocol,
        req: Request<ProxyBody>,
        pools: Option<&ServerPools>,
    ) -> Result<Response<ProxyBody>, SendError> {
        match self.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, self.send_now(protocol, req, pools))
                .await
                .map_err(|_| SendError::ResponseHeaderTimeout(limit))?,
            None => self.send_now(protocol, req, pools).await,
        }
    }

    /// An `http://` server's idle connections, for [`UpstreamClient::direct`].
    pub(crate) fn server_pools(&self, authority: &Authority) -> ServerPools {
        self.http1.server_pools(authority)
    }

    /// What a request forwarded directly (`h1::direct`) to the server whose
    /// connections are `pools` needs: owned by the request, and touching
    /// nothing another serving thread writes.
    pub(crate) fn direct(&self, pools: &ServerPools) -> DirectSend {
        DirectSend {
            back: pools.slot(pool_slot()).clone(),
            dial_timeout: self.http1.dial_timeout(),
            response_header_timeout: self.response_header_timeout,
        }
    }

    async fn send_now(
        &self,
        protocol: Protocol,
        req: Request<ProxyBody>,
        server_pools: Option<&ServerPools>,
    ) -> Result<Response<ProxyBody>, SendError> {
        let pools = || &self.pools[pool_slot() % self.pools.len()];
        let response = match protocol {
            Protocol::Http1 => return Ok(self.http1.send(req, server_pools).await?),
            Protocol::H2c => pools().h2c.request(req).await?,
            Protocol::Https => pools().https.request(req).await?,
        };
        Ok(response.map(ProxyBody::incoming))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_504() {
        assert_eq!(
            SendError::ResponseHeaderTimeout(Duration::from_secs(1)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let direct = io::Error::new(io::ErrorKind::TimedOut, "connect timeout");
        assert!(is_timeout(&direct));
        assert!(!is_timeout(&io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "refused"
        )));
    }
}
