//! `tls.options` through the real proxy: `minVersion` refuses older
//! handshakes, `clientAuth` requires a certificate from the configured CA,
//! and a version rustls cannot speak is a `validate` error naming it.

use integration_tests::{ControlPlaneOptions, EchoBackend, Proxy, TestPki, eventually};
use rustls::ProtocolVersion;
use rustls::version::{TLS12, TLS13};

use super::DEADLINE;
use super::client::{ClientOptions, get_once, local};

#[tokio::test(flavor = "multi_thread")]
async fn min_version_and_client_auth_are_enforced_per_router() {
    let pki = TestPki::generate();
    let stranger = TestPki::generate();
    let (cert, key) = pki.issue_server("server", "DNS:modern.test,DNS:mtls.test");
    let backend = EchoBackend::start("app").await;
    let router = |name: &str| {
        format!(
            "    {name}:\n      rule: Host(`{name}.test`)\n      entryPoints: [websecure]\n      \
             service: app\n      tls:\n        options: {name}\n"
        )
    };
    let dynamic = format!(
        "http:\n  routers:\n{}{}  services:\n    app:\n      loadBalancer:\n        servers:\n          \
         - url: \"{}\"\ntls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n  \
         options:\n    modern:\n      minVersion: VersionTLS13\n    mtls:\n      clientAuth:\n        \
         caFiles: [\"{}\"]\n        clientAuthType: RequireAndVerifyClientCert\n",
        router("modern"),
        router("mtls"),
        backend.url(),
        cert.display(),
        key.display(),
        pki.ca().display(),
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("websecure")
        .dynamic_file("options.yml", &dynamic)
        .start()
        .await;
    let port = control_plane.entry_point_port("websecure");
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "tls-options",
        &[("websecure", port)],
    );
    proxy.wait_ready().await;
    let address = local(port);
    let client = pki.client();

    // TLS 1.3 gets through to the backend.
    let tls13 = ClientOptions::only(&TLS13);
    eventually("modern.test over TLS 1.3", DEADLINE, || async {
        let (served, response) = get_once(address, "modern.test", "/", &tls13).await?;
        if response.status != 200 {
            return Err(format!("answered {}: {}", response.status, response.body));
        }
        if served != super::client::leaf(&cert) {
            return Err("served another certificate".to_owned());
        }
        Ok(())
    })
    .await;
    let mut connection = super::client::connect(address, "modern.test", &tls13)
        .await
        .unwrap();
    assert_eq!(connection.version, Some(ProtocolVersion::TLSv1_3));
    let response = connection.get("modern.test", "/", &[]).await.unwrap();
    assert_eq!(response.json()["backend"], "app");

    // A client that speaks TLS 1.2 only is refused for that name...
    let tls12 = ClientOptions::only(&TLS12);
    let refused = get_once(address, "modern.test", "/", &tls12).await;
    assert!(refused.is_err(), "TLS 1.2 was accepted: {refused:?}");
    // ...while another router's options still allow it.
    let (_, response) = get_once(
        address,
        "mtls.test",
        "/",
        &tls12.clone().with_identity(client.clone()),
    )
    .await
    .expect("TLS 1.2 with a client certificate on mtls.test");
    assert_eq!(response.status, 200, "{}", response.body);

    // RequireAndVerifyClientCert: no certificate, or one from another CA,
    // fails whatever the version; one from the configured CA succeeds.
    for version in [&TLS12, &TLS13] {
        let options = ClientOptions::only(version);
        let refused = get_once(address, "mtls.test", "/", &options).await;
        assert!(
            refused.is_err(),
            "{version:?} without a client certificate: {refused:?}"
        );
        let refused = get_once(
            address,
            "mtls.test",
            "/",
            &options.clone().with_identity(stranger.client()),
        )
        .await;
        assert!(
            refused.is_err(),
            "{version:?} with a certificate of another CA: {refused:?}"
        );
        let (_, response) = get_once(
            address,
            "mtls.test",
            "/",
            &options.with_identity(client.clone()),
        )
        .await
        .unwrap_or_else(|error| panic!("{version:?} with a client certificate: {error}"));
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json()["backend"], "app");
    }
}

#[tokio::test]
async fn min_version_tls10_is_a_validate_error_naming_the_option() {
    let backend = EchoBackend::start("app").await;
    let dynamic = format!(
        "http:\n  routers:\n    legacy:\n      rule: Host(`legacy.test`)\n      service: app\n      \
         tls:\n        options: legacy\n  services:\n    app:\n      loadBalancer:\n        \
         servers:\n          - url: \"{}\"\ntls:\n  options:\n    legacy:\n      \
         minVersion: VersionTLS10\n",
        backend.url()
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("websecure")
        .dynamic_file("legacy.yml", &dynamic)
        .start()
        .await;
    let validated = control_plane.validate();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    assert_eq!(validated.status.code(), Some(1), "{printed}");
    let line = printed
        .lines()
        .find(|line| line.contains("VersionTLS10"))
        .unwrap_or_else(|| panic!("no line names VersionTLS10:\n{printed}"));
    for expected in ["tlsOptions `legacy@file`", "minVersion", "legacy.yml"] {
        assert!(line.contains(expected), "`{expected}` not in `{line}`");
    }
}
