//! The HTTP client the proxy uses towards backends: hyper-util's pooled
//! client, one per protocol (HTTP/1.1 for `http://`, HTTP/2 with prior
//! knowledge for `h2c://`), with Traefik's forwarding timeouts.
//!
//! It lives in the proxy's shared state, so pooled connections survive
//! snapshot swaps.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::upstream::Protocol;
use crate::body::ProxyBody;

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
    /// Idle connections kept per backend.
    pub max_idle_per_host: usize,
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
        }
    }
}

/// Why a request to a backend failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The connection could not be established (refused, unreachable, DNS).
    #[error("cannot connect to the server")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// The server did not send a response head in time.
    #[error("no response headers within {0:?}")]
    ResponseHeaderTimeout(Duration),
    /// The exchange failed after the connection was made.
    #[error("request to the server failed")]
    Request(#[source] hyper_util::client::legacy::Error),
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
            Self::Connect(e) | Self::Request(e) => is_timeout(e),
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

/// Pooled clients to backends.
#[derive(Debug)]
pub(crate) struct UpstreamClient {
    http1: Client<HttpConnector, ProxyBody>,
    h2c: Client<HttpConnector, ProxyBody>,
    response_header_timeout: Option<Duration>,
}

impl UpstreamClient {
    /// Clients configured from `config`.
    pub(crate) fn new(config: &UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.dial_timeout));
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_host);
        let http1 = builder.build(connector.clone());
        let h2c = builder
            .http2_only(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .build(connector);
        Self {
            http1,
            h2c,
            response_header_timeout: config.response_header_timeout,
        }
    }

    /// Sends `req` (absolute URI, version set for the protocol) and waits for
    /// the response head.
    pub(crate) async fn send(
        &self,
        protocol: Protocol,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let client = match protocol {
            Protocol::H2c => &self.h2c,
            Protocol::Http1 | Protocol::Https => &self.http1,
        };
        let response = client.request(req);
        let result = match self.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, response)
                .await
                .map_err(|_| SendError::ResponseHeaderTimeout(limit))?,
            None => response.await,
        };
        result.map_err(|e| {
            if e.is_connect() {
                SendError::Connect(e)
            } else {
                SendError::Request(e)
            }
        })
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
