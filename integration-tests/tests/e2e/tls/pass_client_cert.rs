//! `passTLSClientCert` behind `clientAuth: VerifyClientCertIfGiven`: the
//! backend receives the client's certificate and its subject as Traefik
//! writes them, and nothing a client forged under those names.

use integration_tests::{ControlPlaneOptions, EchoBackend, Proxy, TestPki, eventually};

use super::DEADLINE;
use super::client::{ClientOptions, connect, local};

/// Go's `url.QueryEscape`, which Traefik applies to both headers.
fn query_escape(text: &str) -> String {
    let mut escaped = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    escaped
}

/// Traefik's PEM value: the PEM text without its armour and line breaks.
fn sanitized_pem(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .replace("-----BEGIN CERTIFICATE-----", "")
        .replace("-----END CERTIFICATE-----", "")
        .replace('\n', "")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_receives_the_client_certificate_and_its_subject() {
    let pki = TestPki::generate();
    let (cert, key) = pki.issue_server("server", "DNS:client.test");
    let (client_cert, client_key) = pki.issue_client("alice", "alice.example");
    let backend = EchoBackend::start("app").await;
    let dynamic = format!(
        "http:\n  routers:\n    app:\n      rule: Host(`client.test`)\n      entryPoints: [websecure]\n      \
         middlewares: [pass-cert]\n      service: app\n      tls:\n        options: optional\n  \
         middlewares:\n    pass-cert:\n      passTLSClientCert:\n        pem: true\n        info:\n          \
         subject:\n            commonName: true\n  services:\n    app:\n      loadBalancer:\n        \
         servers:\n          - url: \"{}\"\ntls:\n  certificates:\n    - certFile: \"{}\"\n      \
         keyFile: \"{}\"\n  options:\n    optional:\n      clientAuth:\n        caFiles: [\"{}\"]\n        \
         clientAuthType: VerifyClientCertIfGiven\n",
        backend.url(),
        cert.display(),
        key.display(),
        pki.ca().display(),
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("websecure")
        .dynamic_file("client-cert.yml", &dynamic)
        .start()
        .await;
    let port = control_plane.entry_point_port("websecure");
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "pass-cert",
        &[("websecure", port)],
    );
    proxy.wait_ready().await;
    let address = local(port);

    // With a certificate from the CA: both headers, as Traefik writes them.
    let with_cert = ClientOptions::default().with_identity((client_cert.clone(), client_key));
    let echoed = eventually(
        "client.test with a client certificate",
        DEADLINE,
        || async {
            let mut connection = connect(address, "client.test", &with_cert).await?;
            let response = connection
                .get(
                    "client.test",
                    "/",
                    &[("x-forwarded-tls-client-cert", "forged")],
                )
                .await?;
            if response.status == 200 {
                Ok(response.json())
            } else {
                Err(format!("answered {}: {}", response.status, response.body))
            }
        },
    )
    .await;
    let headers = &echoed["headers"];
    assert_eq!(
        headers["x-forwarded-tls-client-cert"],
        query_escape(&sanitized_pem(&client_cert)),
        "{echoed}"
    );
    assert_eq!(
        headers["x-forwarded-tls-client-cert-info"],
        query_escape("Subject=\"CN=alice.example\""),
        "{echoed}"
    );
    assert_eq!(
        headers["x-forwarded-tls-client-cert-info"],
        "Subject%3D%22CN%3Dalice.example%22"
    );

    // Without a certificate the request is served, and what the client
    // sent under those names does not reach the backend.
    let mut connection = connect(address, "client.test", &ClientOptions::default())
        .await
        .unwrap();
    let response = connection
        .get(
            "client.test",
            "/",
            &[
                ("x-forwarded-tls-client-cert", "forged"),
                (
                    "x-forwarded-tls-client-cert-info",
                    "Subject%3D%22CN%3Dadmin%22",
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let echoed = response.json();
    let headers = echoed["headers"].as_object().unwrap();
    assert!(
        !headers.contains_key("x-forwarded-tls-client-cert")
            && !headers.contains_key("x-forwarded-tls-client-cert-info"),
        "{echoed}"
    );
}
