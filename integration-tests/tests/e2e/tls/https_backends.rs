//! HTTPS to backends through `serversTransports`: a private CA with
//! `rootCAs` and `serverName`, the default roots, `insecureSkipVerify`,
//! and a client certificate for a backend that requires one.

use integration_tests::{
    ControlPlaneOptions, HttpsBackend, Proxy, TestPki, eventually, get, request,
};

use super::DEADLINE;

/// A router `Host(<name>.test)` -> service `<name>` on `backend`, with
/// `transport` when not empty.
fn route(name: &str, backend: &HttpsBackend, transport: &str) -> (String, String) {
    let router = format!("    {name}:\n      rule: Host(`{name}.test`)\n      service: {name}\n");
    let mut service = format!(
        "    {name}:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        backend.url()
    );
    if !transport.is_empty() {
        service.push_str(&format!("        serversTransport: {transport}\n"));
    }
    (router, service)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_backends_are_verified_as_their_servers_transport_says() {
    let pki = TestPki::generate();
    let (cert, key) = pki.issue_server("backend", "DNS:backend.internal,IP:127.0.0.1");
    let (client_cert, client_key) = pki.client();
    let open = HttpsBackend::start("open", &cert, &key, None).await;
    let mutual = HttpsBackend::start("mutual", &cert, &key, Some(&pki.ca())).await;

    let routes = [
        route("verified", &open, "private-ca"),
        route("default-roots", &open, ""),
        route("wrong-name", &open, "wrong-name"),
        route("insecure", &open, "insecure"),
        route("mtls", &mutual, "with-cert"),
        route("mtls-without-cert", &mutual, "private-ca"),
    ];
    let ca = pki.ca().display().to_string();
    let dynamic = format!(
        "http:\n  routers:\n{}  services:\n{}  serversTransports:\n    private-ca:\n      \
         rootCAs: [\"{ca}\"]\n      serverName: backend.internal\n    wrong-name:\n      \
         rootCAs: [\"{ca}\"]\n      serverName: other.internal\n    insecure:\n      \
         insecureSkipVerify: true\n    with-cert:\n      rootCAs: [\"{ca}\"]\n      \
         serverName: backend.internal\n      certificates:\n        - certFile: \"{}\"\n          \
         keyFile: \"{}\"\n",
        routes
            .iter()
            .map(|(router, _)| router.as_str())
            .collect::<String>(),
        routes
            .iter()
            .map(|(_, service)| service.as_str())
            .collect::<String>(),
        client_cert.display(),
        client_key.display(),
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("web")
        .dynamic_file("backends.yml", &dynamic)
        .start()
        .await;
    let port = control_plane.entry_point_port("web");
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "https-backends",
        &[("web", port)],
    );
    proxy.wait_ready().await;
    let errors = control_plane.api("/api/errors").await;
    assert_eq!(errors, serde_json::json!([]), "{errors}");

    let url = format!("http://127.0.0.1:{port}/hello");
    let call = |host: &'static str| {
        let url = url.clone();
        async move {
            let response = request("GET", &url, &[("host", host)], Vec::new()).await?;
            Ok::<_, String>((response.status, response.body))
        }
    };

    // The private CA and the name in `serverName` verify the backend.
    let body = eventually("the verified HTTPS backend", DEADLINE, || async {
        match call("verified.test").await? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("answered {status}: {body}")),
        }
    })
    .await;
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["backend"], "open", "{echoed}");
    assert_eq!(echoed["path"], "/hello", "{echoed}");

    // The default roots do not know the private CA; a `serverName` the
    // certificate does not hold is refused too.
    for host in ["default-roots.test", "wrong-name.test"] {
        let (status, body) = call(host).await.unwrap();
        assert_eq!(status, 502, "{host}: {body}");
    }

    // `insecureSkipVerify` accepts the certificate unverified.
    let (status, body) = call("insecure.test").await.unwrap();
    assert_eq!(status, 200, "{body}");

    // The backend requiring a client certificate gets the transport's.
    let (status, body) = call("mtls.test").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["backend"], "mutual", "{echoed}");
    assert_eq!(echoed["clientCertificate"], true, "{echoed}");
    let refused_before = mutual.failed_handshakes();
    let (status, body) = call("mtls-without-cert.test").await.unwrap();
    assert_eq!(status, 502, "{body}");
    eventually(
        "the backend to refuse the handshake without a client certificate",
        DEADLINE,
        || async {
            if mutual.failed_handshakes() > refused_before {
                Ok(())
            } else {
                Err("no refused handshake".to_owned())
            }
        },
    )
    .await;

    // The proxy is still healthy after the refusals.
    let ready = get(&format!("{}/ready", proxy.admin_url)).await.unwrap();
    assert_eq!(ready.status, 200);
}
