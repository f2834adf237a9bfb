//! Socket tests of TLS termination and HTTPS backends: a proxy applies a
//! snapshot with certificates from a test CA, and rustls clients connect
//! with chosen SNI, ALPN and client certificates.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sluice_proto::v1::{self, matcher::Kind};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::certs::DEFAULT_CERT_CN;
use super::test_pki::{Issued, TestCa};
use crate::proxy_tests::{Harness, catch_all, echo_backend, full, leaf, router, service};

/// Accepts any server certificate and remembers the last one.
#[derive(Debug, Default)]
struct Recording(Mutex<Option<CertificateDer<'static>>>);

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap() = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

struct Client {
    verifier: Arc<Recording>,
    config: Arc<ClientConfig>,
}

fn client(alpn: &[&str], identity: Option<&Issued>) -> Client {
    let verifier = Arc::new(Recording::default());
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Client {
        verifier,
        config: Arc::new(config),
    }
}

impl Client {
    async fn connect(
        &self,
        address: SocketAddr,
        sni: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(address).await?;
        TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
            .await
    }

    fn served(&self) -> CertificateDer<'static> {
        self.verifier.0.lock().unwrap().clone().unwrap()
    }
}

/// One HTTP/1.1 (or HTTP/2 when `h2`) GET over `stream`.
async fn get(
    stream: TlsStream<TcpStream>,
    host: &str,
) -> Result<(StatusCode, String), hyper::Error> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let request = Request::get(format!("https://{host}/"))
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let io = TokioIo::new(stream);
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    };
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn der(issued: &Issued) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()
}

fn certificate(name: &str, issued: &Issued, sans: &[&str]) -> v1::Certificate {
    v1::Certificate {
        name: name.into(),
        content_version: "1".into(),
        cert_pem: issued.cert_pem.clone(),
        key_pem: issued.key_pem.clone(),
        sans: sans.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn tls_router(name: &str, host: &str, options: &str) -> v1::Router {
    let mut router = router(name, leaf(Kind::Host(host.into())), "s@file");
    router.tls = Some(v1::RouterTls {
        options: options.into(),
        ..Default::default()
    });
    router
}

/// A proxy with routers for a.test and b.test (TLS) and plain.test (plain).
async fn proxy(ca: &TestCa, edit: impl FnOnce(&mut v1::Resources)) -> (Harness, Issued, Issued) {
    let backend = echo_backend().await;
    let a = ca.server(&["a.test"]);
    let b = ca.server(&["*.b.test"]);
    let mut update = full(
        "1",
        vec![
            tls_router("a@file", "a.test", ""),
            tls_router("b@file", "x.b.test", ""),
            router(
                "plain@file",
                leaf(Kind::Host("plain.test".into())),
                "s@file",
            ),
        ],
        vec![service("s@file", &format!("http://{backend}"), None)],
    );
    let resources = update.upserts.as_mut().unwrap();
    resources.certificates = vec![
        certificate("a", &a, &["a.test"]),
        certificate("b", &b, &["*.b.test"]),
    ];
    edit(resources);
    let mut harness = Harness::new();
    harness.applier.apply(update).await.unwrap();
    (harness, a, b)
}

#[tokio::test]
async fn sni_picks_the_certificate_and_unknown_names_get_the_default() {
    let ca = TestCa::new("test ca");
    let (harness, a, b) = proxy(&ca, |_| {}).await;
    let address = harness.address();
    let client = client(&["http/1.1"], None);

    let stream = client.connect(address, "a.test").await.unwrap();
    assert_eq!(client.served(), der(&a));
    let (status, body) = get(stream, "a.test").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("x-forwarded-proto: https"), "{body}");

    let stream = client.connect(address, "x.b.test").await.unwrap();
    assert_eq!(client.served(), der(&b));
    assert_eq!(get(stream, "x.b.test").await.unwrap().0, StatusCode::OK);

    let _stream = client.connect(address, "unknown.test").await.unwrap();
    let served = client.served();
    assert!(String::from_utf8_lossy(served.as_ref()).contains(DEFAULT_CERT_CN));

    // The plain router answers on plain connections only, the TLS ones on TLS only.
    let (status, _) = harness_get(&harness, "plain.test").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness_get(&harness, "a.test").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stream = client.connect(address, "plain.test").await.unwrap();
    assert_eq!(
        get(stream, "plain.test").await.unwrap().0,
        StatusCode::NOT_FOUND
    );
}

async fn harness_get(harness: &Harness, host: &str) -> (StatusCode, String) {
    let request = Request::get(format!("http://{}/", harness.address()))
        .header("host", host)
        .body(http_body_util::Full::default())
        .unwrap();
    let response = harness.client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn host_must_agree_with_sni() {
    let ca = TestCa::new("test ca");
    let (harness, _, _) = proxy(&ca, |_| {}).await;
    let client = client(&["http/1.1"], None);
    let stream = client.connect(harness.address(), "a.test").await.unwrap();
    let (status, _) = get(stream, "x.b.test").await.unwrap();
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn sni_strict_refuses_unknown_names() {
    let ca = TestCa::new("test ca");
    let (harness, _, _) = proxy(&ca, |resources| {
        resources.tls_options = vec![v1::TlsOptions {
            name: "default".into(),
            sni_strict: true,
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }];
    })
    .await;
    let client = client(&["http/1.1"], None);
    assert!(
        client
            .connect(harness.address(), "unknown.test")
            .await
            .is_err()
    );
    assert!(client.connect(harness.address(), "a.test").await.is_ok());
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let ca = TestCa::new("test ca");
    let (harness, _, _) = proxy(&ca, |_| {}).await;
    let h2 = client(&["h2", "http/1.1"], None);
    let stream = h2.connect(harness.address(), "a.test").await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = get(stream, "a.test").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with("GET / HTTP/1.1"),
        "the backend speaks HTTP/1.1: {body}"
    );
    let http1 = client(&["http/1.1"], None);
    let stream = http1.connect(harness.address(), "a.test").await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn client_certificates_required_per_router_options() {
    let ca = TestCa::new("test ca");
    let clients = TestCa::new("client ca");
    let (harness, _, _) = proxy(&ca, |resources| {
        resources.tls_options = vec![v1::TlsOptions {
            name: "mtls@file".into(),
            client_auth: Some(v1::TlsClientAuth {
                ca_pems: vec![clients.pem()],
                client_auth_type: "RequireAndVerifyClientCert".into(),
            }),
            alpn_protocols: vec!["http/1.1".into()],
            ..Default::default()
        }];
        resources.routers[0] = tls_router("a@file", "a.test", "mtls@file");
    })
    .await;
    let address = harness.address();
    // Without a certificate: refused (TLS 1.3 reports it on the first read).
    let anonymous = client(&["http/1.1"], None);
    let refused = match anonymous.connect(address, "a.test").await {
        Ok(stream) => get(stream, "a.test").await.is_err(),
        Err(_) => true,
    };
    assert!(refused);
    // A certificate from another CA: refused.
    let stranger = client(&["http/1.1"], Some(&ca.client("mallory")));
    let refused = match stranger.connect(address, "a.test").await {
        Ok(stream) => get(stream, "a.test").await.is_err(),
        Err(_) => true,
    };
    assert!(refused);
    // The right certificate: served.
    let known = client(&["http/1.1"], Some(&clients.client("alice")));
    let stream = known.connect(address, "a.test").await.unwrap();
    assert_eq!(get(stream, "a.test").await.unwrap().0, StatusCode::OK);
    // Other hosts keep the default options: no certificate needed.
    let stream = anonymous.connect(address, "x.b.test").await.unwrap();
    assert_eq!(get(stream, "x.b.test").await.unwrap().0, StatusCode::OK);
}

/// An HTTPS echo backend presenting `issued`.
async fn https_backend(issued: &Issued) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut config = config;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let text = format!("{} {:?} secure", req.uri().path(), req.version());
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from(text)),
                        ))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

#[tokio::test]
async fn https_backends_with_root_cas_and_server_name() {
    let ca = TestCa::new("backend ca");
    let backend = https_backend(&ca.server(&["backend.internal"])).await;
    let mut harness = Harness::new();
    let mut lb_service = service("s@file", &format!("https://{backend}"), None);
    if let Some(v1::service::Kind::LoadBalancer(balancer)) = &mut lb_service.kind {
        balancer.servers_transport = "t@file".into();
    }
    let mut update = full(
        "1",
        vec![router(
            "r@file",
            leaf(Kind::PathPrefix("/".into())),
            "s@file",
        )],
        vec![lb_service],
    );
    let transport = v1::ServersTransport {
        name: "t@file".into(),
        content_version: "1".into(),
        server_name: "backend.internal".into(),
        root_ca_pems: vec![ca.pem()],
        ..Default::default()
    };
    update.upserts.as_mut().unwrap().servers_transports = vec![transport.clone()];
    harness.applier.apply(update).await.unwrap();
    let (status, body) = harness_get(&harness, "any").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "/ HTTP/2.0 secure");

    // HTTP/1.1 only when HTTP/2 is disabled.
    let mut update = full(
        "2",
        vec![router(
            "r@file",
            leaf(Kind::PathPrefix("/".into())),
            "s@file",
        )],
        vec![{
            let mut s = service("s@file", &format!("https://{backend}"), None);
            if let Some(v1::service::Kind::LoadBalancer(balancer)) = &mut s.kind {
                balancer.servers_transport = "t@file".into();
            }
            s
        }],
    );
    update.upserts.as_mut().unwrap().servers_transports = vec![v1::ServersTransport {
        content_version: "2".into(),
        disable_http2: true,
        ..transport.clone()
    }];
    harness.applier.apply(update).await.unwrap();
    let (status, body) = harness_get(&harness, "any").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "/ HTTP/1.1 secure")
    );

    // The default transport does not trust the test CA: 502.
    let update = catch_all(
        "3",
        "r@file",
        service("s@file", &format!("https://{backend}"), None),
    );
    harness.applier.apply(update).await.unwrap();
    assert_eq!(
        harness_get(&harness, "any").await.0,
        StatusCode::BAD_GATEWAY
    );
}
