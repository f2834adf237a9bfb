//! One backend server of a load balancer: its parsed URL, how to speak to it,
//! its weight and its health.

use std::sync::Arc;

use http::HeaderValue;
use http::uri::{Authority, Uri};

use super::health_check::ServerHealth;
use crate::h1::ServerPools;

/// Why a server URL is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ServerUrlError {
    /// The URL does not parse.
    #[error("server URL `{0}` is not a valid URL")]
    Invalid(String),
    /// The scheme is not one the proxy speaks.
    #[error("server URL `{0}` has an unsupported scheme (expected http://, h2c:// or https://)")]
    Scheme(String),
    /// The URL has no host.
    #[error("server URL `{0}` has no host")]
    NoHost(String),
}

/// How the proxy talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `http://`: HTTP/1.1 over TCP.
    Http1,
    /// `h2c://`: HTTP/2 over TCP with prior knowledge (gRPC backends).
    H2c,
    /// `https://`: TLS, then HTTP/2 or HTTP/1.1 as ALPN decides.
    Https,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    /// How to talk to the server.
    pub(crate) protocol: Protocol,
    /// `host[:port]` as written.
    pub(crate) authority: Authority,
    /// Host name or IP (IPv6 in brackets), without port.
    pub(crate) host: String,
    /// Port, explicit or the scheme's default.
    pub(crate) port: u16,
    /// Path of the URL, without a trailing slash (`""` for none or `/`).
    pub(crate) path: String,
}

impl ServerUrl {
    /// Parses an `http://`, `h2c://` or `https://` URL.
    pub(crate) fn parse(url: &str) -> Result<Self, ServerUrlError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ServerUrlError::Invalid(url.to_owned()))?;
        let (protocol, default_port) = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => (Protocol::Http1, 80),
            Some(s) if s.eq_ignore_ascii_case("h2c") => (Protocol::H2c, 80),
            Some(s) if s.eq_ignore_ascii_case("https") => (Protocol::Https, 443),
            _ => return Err(ServerUrlError::Scheme(url.to_owned())),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .cloned()
            .ok_or_else(|| ServerUrlError::NoHost(url.to_owned()))?;
        let path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            protocol,
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(default_port),
            authority,
            path,
        })
    }
}

/// A server in a load balancer's rotation.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// The URL as the snapshot wrote it (for logs).
    pub(crate) url: String,
    /// Where and how to connect.
    pub(crate) target: ServerUrl,
    /// Host header sent when the balancer does not pass the client's.
    pub(crate) host_header: HeaderValue,
    /// Prefix the URL's path to the request path (Traefik's `preservePath`).
    pub(crate) preserve_path: bool,
    /// Smooth weighted round robin weight.
    pub(crate) weight: u32,
    /// Shared with the health checker; survives snapshot swaps.
    pub(crate) health: Arc<ServerHealth>,
    /// Its idle connections, for an `http://` server.
    pub(crate) pools: Option<ServerPools>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let url = ServerUrl::parse("http://10.0.0.1:8080/base/").unwrap();
        assert_eq!(url.protocol, Protocol::Http1);
        assert_eq!(url.authority.as_str(), "10.0.0.1:8080");
        assert_eq!(url.port, 8080);
        assert_eq!(url.path, "/base");
        let url = ServerUrl::parse("h2c://grpc.local").unwrap();
        assert_eq!(url.protocol, Protocol::H2c);
        assert_eq!(url.port, 80);
        assert_eq!(url.path, "");
        assert_eq!(ServerUrl::parse("https://x").unwrap().port, 443);
        assert!(matches!(
            ServerUrl::parse("ftp://x"),
            Err(ServerUrlError::Scheme(_))
        ));
        assert!(ServerUrl::parse("not a url").is_err());
    }
}
