//! A TLS client for the scenarios: chosen protocol versions, an optional
//! client certificate, and the certificate each handshake was served
//! (recorded, not verified, so the scenarios can compare it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, SupportedProtocolVersion};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Recording;

/// How long one handshake or one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a client offers.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientOptions {
    /// Protocol versions offered; rustls' safe defaults (1.2 and 1.3) when empty.
    pub(super) versions: Vec<&'static SupportedProtocolVersion>,
    /// A client certificate and its key (PEM files).
    pub(super) identity: Option<(PathBuf, PathBuf)>,
}

impl ClientOptions {
    /// Offers only `version`.
    pub(super) fn only(version: &'static SupportedProtocolVersion) -> Self {
        Self {
            versions: vec![version],
            identity: None,
        }
    }

    /// Presents the certificate `cert` with `key`.
    pub(super) fn with_identity(mut self, (cert, key): (PathBuf, PathBuf)) -> Self {
        self.identity = Some((cert, key));
        self
    }
}

/// One TLS connection speaking HTTP/1.1, kept alive between requests.
pub(super) struct TlsConnection {
    /// The leaf certificate the server presented.
    pub(super) served: CertificateDer<'static>,
    /// The negotiated protocol version.
    pub(super) version: Option<ProtocolVersion>,
    sender: SendRequest<Empty<Bytes>>,
}

/// A response read whole.
#[derive(Debug)]
pub(super) struct TlsResponse {
    pub(super) status: u16,
    pub(super) body: String,
}

impl TlsResponse {
    /// The body as JSON (what an echo backend answered).
    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }
}

/// Handshakes with `address` using `sni`.
pub(super) async fn connect(
    address: SocketAddr,
    sni: &str,
    options: &ClientOptions,
) -> Result<TlsConnection, String> {
    let verifier = Arc::new(Recording::default());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = if options.versions.is_empty() {
        builder.with_safe_default_protocol_versions()
    } else {
        builder.with_protocol_versions(&options.versions)
    }
    .map_err(|error| error.to_string())?
    .dangerous()
    .with_custom_certificate_verifier(verifier.clone());
    let mut config = match &options.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(chain(cert), private_key(key))
            .map_err(|error| error.to_string())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = ServerName::try_from(sni.to_owned()).map_err(|error| error.to_string())?;
    let handshake = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|error| format!("TLS handshake with {sni}: {error}"))
    };
    let stream = tokio::time::timeout(TIMEOUT, handshake)
        .await
        .map_err(|_| format!("TLS handshake with {sni}: timed out"))??;
    let version = stream.get_ref().1.protocol_version();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(connection);
    let served = verifier
        .0
        .lock()
        .unwrap()
        .clone()
        .ok_or("no certificate served")?;
    Ok(TlsConnection {
        served,
        version,
        sender,
    })
}

impl TlsConnection {
    /// `GET path` with `Host: host` and `headers` on this connection.
    pub(super) async fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<TlsResponse, String> {
        let mut request = http::Request::get(path).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|error| format!("connection to {host} closed: {error}"))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|error| format!("GET {host}{path}: {error}"))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| format!("GET {host}{path}: reading body: {error}"))?
                .to_bytes();
            Ok(TlsResponse {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {host}{path}: timed out"))?
    }
}

/// A fresh connection and one `GET path`: the connection's served
/// certificate and the response.
pub(super) async fn get_once(
    address: SocketAddr,
    host: &str,
    path: &str,
    options: &ClientOptions,
) -> Result<(CertificateDer<'static>, TlsResponse), String> {
    let mut connection = connect(address, host, options).await?;
    let response = connection.get(host, path, &[]).await?;
    Ok((connection.served, response))
}

/// The certificates of a PEM file.
pub(super) fn chain(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// The leaf certificate of a PEM file.
pub(super) fn leaf(path: &Path) -> CertificateDer<'static> {
    chain(path).remove(0)
}

fn private_key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// The loopback address of a port.
pub(super) fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
