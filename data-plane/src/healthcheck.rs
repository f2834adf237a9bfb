//! `sluice-proxy healthcheck`: asks the admin endpoint's `/ping` (for
//! container and Kubernetes probes, like `traefik healthcheck`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::listeners::resolve_address;

/// Time the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the proxy is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The admin address does not resolve.
    #[error("invalid admin address `{address}`")]
    Address {
        /// The address as given.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Nothing answers at the address.
    #[error("cannot connect to the admin endpoint at {0}")]
    Connect(String, #[source] io::Error),
    /// The HTTP exchange failed.
    #[error("GET /ping failed")]
    Http(#[source] hyper::Error),
    /// `/ping` answered something else than 200.
    #[error("GET /ping answered {0}")]
    Status(StatusCode),
    /// No answer in time.
    #[error("GET /ping did not answer within {0:?}")]
    Timeout(Duration),
}

/// Succeeds when `GET /ping` on the admin endpoint answers 200 within 3 s.
pub async fn healthcheck(admin_address: &str) -> Result<(), HealthcheckError> {
    tokio::time::timeout(TIMEOUT, ping(admin_address))
        .await
        .map_err(|_| HealthcheckError::Timeout(TIMEOUT))?
}

async fn ping(admin_address: &str) -> Result<(), HealthcheckError> {
    let mut address =
        resolve_address(admin_address)
            .await
            .map_err(|source| HealthcheckError::Address {
                address: admin_address.to_owned(),
                source,
            })?;
    // A wildcard bind is reached through loopback.
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| HealthcheckError::Connect(address.to_string(), e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HealthcheckError::Http)?;
    tokio::spawn(connection);
    let mut request = Request::new(Empty::<bytes::Bytes>::new());
    *request.uri_mut() = Uri::from_static("/ping");
    if let Ok(host) = HeaderValue::from_str(&address.to_string()) {
        request.headers_mut().insert(header::HOST, host);
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(HealthcheckError::Http)?;
    match response.status() {
        StatusCode::OK => Ok(()),
        status => Err(HealthcheckError::Status(status)),
    }
}
