//! TLS through the real binaries: certificates made with `openssl`, served by
//! SNI from the file provider, rotated by rewriting the file, HTTP redirected
//! to HTTPS, and the control link secured with mTLS and a token.
//!
//! - [`https_backends`]: `serversTransports` to HTTPS backends (private CA,
//!   `serverName`, default roots, `insecureSkipVerify`, mTLS).
//! - [`options`]: `minVersion` and `clientAuth` through the proxy; a
//!   `validate` error for TLS 1.0.
//! - [`pass_client_cert`]: `passTLSClientCert` headers at the backend.
//! - [`kubernetes_secret`]: an Ingress's TLS Secret served and rotated.
//! - [`rotation_under_load`]: a certificate file rewritten under load.

mod client;
mod https_backends;
mod kubernetes_secret;
mod options;
mod pass_client_cert;
mod rotation_under_load;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use integration_tests::{
    ControlPlaneOptions, EchoBackend, Proxy, TestPki, eventually, get, run_command,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long a change may take to reach a proxy, with ample margin.
const DEADLINE: Duration = Duration::from_secs(30);

/// Accepts any certificate and remembers the last one served.
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

/// Handshakes with `sni`; returns the certificate served and an HTTP/1.1 sender.
async fn connect(
    address: SocketAddr,
    sni: &str,
) -> Result<
    (
        CertificateDer<'static>,
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    ),
    String,
> {
    let verifier = Arc::new(Recording::default());
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let served = verifier.0.lock().unwrap().clone().unwrap();
    Ok((served, sender))
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
) -> Result<u16, String> {
    let request = http::Request::get("/")
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// A self-signed certificate for `name` made by `openssl`, in `dir`.
fn openssl_certificate(dir: &Path, name: &str) {
    let output = run_command(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-keyout",
            &dir.join(format!("{name}.key")).display().to_string(),
            "-out",
            &dir.join(format!("{name}.pem")).display().to_string(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[tokio::test]
async fn https_by_sni_with_rotation_and_redirect() {
    let certs = tempfile::tempdir().unwrap();
    openssl_certificate(certs.path(), "a.test");
    openssl_certificate(certs.path(), "b.test");
    let backend = EchoBackend::start("app").await;
    let cert = |name: &str| {
        format!(
            "    - certFile: \"{0}/{name}.pem\"\n      keyFile: \"{0}/{name}.key\"\n",
            certs.path().display()
        )
    };
    let dynamic = format!(
        "http:\n  routers:\n    a:\n      rule: Host(`a.test`) || Host(`b.test`)\n      \
         entryPoints: [websecure]\n      service: app\n      tls: {{}}\n  services:\n    app:\n      \
         loadBalancer:\n        servers:\n          - url: \"{}\"\ntls:\n  certificates:\n{}{}",
        backend.url(),
        cert("a.test"),
        cert("b.test"),
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point_with(
            "web",
            "http:\n  redirections:\n    entryPoint:\n      to: websecure\n      scheme: https",
        )
        .entry_point("websecure")
        .dynamic_file("app.yml", &dynamic)
        .start()
        .await;
    let web = control_plane.entry_point_port("web");
    let websecure = control_plane.entry_point_port("websecure");
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "tls-proxy",
        &[("web", web), ("websecure", websecure)],
    );
    proxy.wait_ready().await;
    let address = SocketAddr::from(([127, 0, 0, 1], websecure));

    // Each name gets its certificate.
    let (served, mut keep_alive) = eventually("HTTPS for a.test", Duration::from_secs(10), || {
        connect(address, "a.test")
    })
    .await;
    assert_eq!(served, der(&certs.path().join("a.test.pem")));
    assert_eq!(send(&mut keep_alive, "a.test").await.unwrap(), 200);
    let (served, mut sender) = connect(address, "b.test").await.unwrap();
    assert_eq!(served, der(&certs.path().join("b.test.pem")));
    assert_eq!(send(&mut sender, "b.test").await.unwrap(), 200);

    // The admin API shows names and expiry, never keys.
    let certificates = control_plane.api("/api/certificates").await;
    let text = certificates.to_string();
    assert!(
        text.contains("a.test") && text.contains("notAfter"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // Rotation: rewrite a.test's files; new handshakes get the new certificate.
    let old = der(&certs.path().join("a.test.pem"));
    openssl_certificate(certs.path(), "a.test");
    let new = der(&certs.path().join("a.test.pem"));
    assert_ne!(old, new);
    eventually(
        "the rotated certificate",
        Duration::from_secs(15),
        || async {
            let (served, _) = connect(address, "a.test").await?;
            if served == new {
                Ok(())
            } else {
                Err("still the old certificate".to_owned())
            }
        },
    )
    .await;
    // The connection opened before the rotation still completes requests.
    assert_eq!(send(&mut keep_alive, "a.test").await.unwrap(), 200);

    // HTTP is redirected to HTTPS.
    let response = get(&format!("http://127.0.0.1:{web}/path")).await.unwrap();
    assert!(
        matches!(response.status, 301 | 302 | 307 | 308),
        "{}",
        response.status
    );
    let location = response
        .headers
        .get("location")
        .cloned()
        .unwrap_or_default();
    assert_eq!(location, format!("https://127.0.0.1:{websecure}/path"));
}

#[tokio::test]
async fn the_control_link_requires_certificates_and_a_token() {
    let pki = TestPki::generate();
    let (server_cert, server_key) = pki.server();
    let (client_cert, client_key) = pki.client();
    let backend = EchoBackend::start("app").await;
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: app\n  services:\n    \
         app:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        backend.url()
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("web")
        .dynamic_file("app.yml", &dynamic)
        .control_plane_settings(&format!(
            "tls:\n  certFile: \"{}\"\n  keyFile: \"{}\"\n  clientCAFile: \"{}\"\ntoken: s3cret\n",
            server_cert.display(),
            server_key.display(),
            pki.ca().display()
        ))
        .start()
        .await;
    let url = control_plane.grpc_url().replace("http://", "https://");
    let port = control_plane.entry_point_port("web");
    let path = |p: &Path| p.display().to_string();
    let credentials = vec![
        "--control-plane-ca".to_owned(),
        path(&pki.ca()),
        "--control-plane-cert".to_owned(),
        path(&client_cert),
        "--control-plane-key".to_owned(),
        path(&client_key),
    ];
    let mut with_token = credentials.clone();
    with_token.extend(["--control-plane-token".to_owned(), "s3cret".to_owned()]);
    let good = Proxy::start_with_args(&url, "good", &[("web", port)], &with_token);
    good.wait_ready().await;
    let response = get(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    assert_eq!(response.status, 200);

    // Right certificate, no token; then no certificate: nothing is served.
    let no_token = Proxy::start_with_args(&url, "no-token", &[("web", 0)], &credentials);
    let no_cert = Proxy::start_with_args(
        &url,
        "no-cert",
        &[("web", 0)],
        &["--control-plane-ca".to_owned(), path(&pki.ca())],
    );
    // Both connect attempts are refused and logged by the control plane.
    eventually(
        "the good proxy in the fleet view",
        Duration::from_secs(10),
        || async {
            let nodes = control_plane.api("/api/nodes").await;
            if nodes.to_string().contains("good") {
                Ok(nodes)
            } else {
                Err(nodes.to_string())
            }
        },
    )
    .await;
    // Each refused proxy has tried and failed (it says so), and is alive but
    // not ready: it holds no snapshot.
    for refused in [&no_token, &no_cert] {
        eventually(
            &format!(
                "{} to report the control plane unavailable",
                refused.node_id
            ),
            DEADLINE,
            || async {
                let output = refused.process.output();
                if output.contains("control plane unavailable") {
                    Ok(())
                } else {
                    Err(format!("output so far:\n{output}"))
                }
            },
        )
        .await;
        let ready_url = format!("{}/ready", refused.admin_url);
        let ready = eventually(
            &format!("{}'s admin endpoint", refused.node_id),
            DEADLINE,
            || async { get(&ready_url).await },
        )
        .await;
        assert_eq!(ready.status, 503, "{}: {}", refused.node_id, ready.body);
    }
    // The control plane logged the call without a token...
    eventually(
        "the control plane to log the refused call",
        DEADLINE,
        || async {
            let output = control_plane.process.output();
            if output.contains("refused a SnapshotService call")
                && output.contains("no bearer token")
            {
                Ok(())
            } else {
                Err(format!("output so far:\n{output}"))
            }
        },
    )
    .await;
    // ...and neither refused proxy joined the fleet view.
    let nodes = control_plane.api("/api/nodes").await;
    for refused in [&no_token, &no_cert] {
        assert!(!nodes.to_string().contains(&refused.node_id), "{nodes}");
    }
    assert!(nodes.to_string().contains("good"), "{nodes}");

    // grpcurl with the CA and a client certificate lists the services.
    let address = url.trim_start_matches("https://");
    let output = run_command(
        "grpcurl",
        &[
            "-max-time",
            "10",
            "-cacert",
            &path(&pki.ca()),
            "-cert",
            &path(&client_cert),
            "-key",
            &path(&client_key),
            address,
            "list",
        ],
    );
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(
        listed.contains("sluice.v1.SnapshotService"),
        "{listed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
