//! An HTTPS backend (HTTP/1.1 and h2 by ALPN over tokio-rustls) that
//! answers every request with a JSON description of it, including whether
//! the client presented a certificate; optionally it requires one signed by
//! a given CA (mutual TLS), as a backend behind a `serversTransport` with
//! `certificates` would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// A running HTTPS backend on 127.0.0.1; stops when dropped, closing its
/// connections.
#[derive(Debug)]
pub struct HttpsBackend {
    pub name: String,
    pub address: SocketAddr,
    /// Handshakes that failed (no or a wrong client certificate, an
    /// untrusted server certificate on the client's side...).
    failed_handshakes: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl HttpsBackend {
    /// Serves with the PEM certificate chain `cert` and key `key`; with
    /// `client_ca`, every client must present a certificate signed by it.
    pub async fn start(name: &str, cert: &Path, key: &Path, client_ca: Option<&Path>) -> Self {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect)
            .unwrap_or_else(|error| panic!("reading {}: {error}", cert.display()));
        let key = PrivateKeyDer::from_pem_file(key)
            .unwrap_or_else(|error| panic!("reading {}: {error}", key.display()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for certificate in CertificateDer::pem_file_iter(ca)
                    .unwrap_or_else(|error| panic!("reading {}: {error}", ca.display()))
                {
                    roots
                        .add(certificate.expect("CA certificate"))
                        .expect("adding the CA");
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .expect("certificate and key");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding HTTPS backend");
        let address = listener.local_addr().expect("backend address");
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let task = {
            let name = name.to_owned();
            let failed_handshakes = Arc::clone(&failed_handshakes);
            tokio::spawn(async move {
                // Owned by this task: aborting it (drop) closes every connection too.
                let mut connections = JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    while connections.try_join_next().is_some() {}
                    let acceptor = acceptor.clone();
                    let name = name.clone();
                    let failed_handshakes = Arc::clone(&failed_handshakes);
                    connections.spawn(async move {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            failed_handshakes.fetch_add(1, Ordering::Relaxed);
                            return;
                        };
                        let client_certificate = stream.get_ref().1.peer_certificates().is_some();
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let description = json!({
                                "backend": name,
                                "method": request.method().as_str(),
                                "path": request.uri().path(),
                                "version": format!("{:?}", request.version()),
                                "clientCertificate": client_certificate,
                            });
                            let name = name.clone();
                            async move {
                                Ok::<_, hyper::Error>(
                                    Response::builder()
                                        .header("content-type", "application/json")
                                        .header("x-backend", name)
                                        .body(Full::new(Bytes::from(description.to_string())))
                                        .expect("valid response"),
                                )
                            }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Self {
            name: name.to_owned(),
            address,
            failed_handshakes,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// How many TLS handshakes failed so far.
    pub fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::Relaxed)
    }
}

impl Drop for HttpsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
