//! A `kubernetes.io/tls` Secret named by an Ingress's `spec.tls` is served
//! by SNI, and its rotation (a MODIFIED Secret, nothing else changed)
//! reaches new handshakes while a connection opened before keeps working.

use integration_tests::{ControlPlaneOptions, EchoBackend, FakeKubernetes, Proxy, eventually};
use serde_json::json;

use super::DEADLINE;
use super::client::{ClientOptions, connect, get_once, leaf, local};
use super::openssl_certificate;

const HOST: &str = "secure.example.com";

/// The Ingress, its Service and the EndpointSlice pointing at `port`.
fn manifest(port: u16) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
  namespace: default
spec:
  tls:
  - hosts: [{HOST}]
    secretName: s
  rules:
  - host: {HOST}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: app
            port:
              name: http
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: default
spec:
  ports:
  - name: http
    port: 80
    targetPort: web
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-x1
  namespace: default
  labels:
    kubernetes.io/service-name: app
addressType: IPv4
ports:
- name: http
  port: {port}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
"#
    )
}

/// The TLS Secret `default/s` with the certificate and key in `dir`.
fn secret(dir: &std::path::Path) -> serde_json::Value {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "stringData": {
            "tls.crt": read(&format!("{HOST}.pem")),
            "tls.key": read(&format!("{HOST}.key")),
        },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_tls_secret_reaches_new_handshakes_only() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    openssl_certificate(first.path(), HOST);
    openssl_certificate(second.path(), HOST);
    let old = leaf(&first.path().join(format!("{HOST}.pem")));
    let new = leaf(&second.path().join(format!("{HOST}.pem")));
    assert_ne!(old, new);

    let backend = EchoBackend::start("app").await;
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&manifest(backend.address.port()));
    kubernetes.apply(secret(first.path()));
    let control_plane = ControlPlaneOptions::new()
        .entry_point("websecure")
        .provider(
            "kubernetesIngress",
            &format!("endpoint: \"{}\"", kubernetes.url()),
        )
        .start()
        .await;
    let port = control_plane.entry_point_port("websecure");
    let proxy = Proxy::start(&control_plane.grpc_url(), "k8s-tls", &[("websecure", port)]);
    proxy.wait_ready().await;
    let address = local(port);
    let options = ClientOptions::default();

    // The Secret's certificate is presented for its host.
    let mut keep_alive = eventually("the Secret's certificate", DEADLINE, || async {
        let mut connection = connect(address, HOST, &options).await?;
        if connection.served != old {
            return Err("another certificate is presented".to_owned());
        }
        let response = connection.get(HOST, "/", &[]).await?;
        match response.status {
            200 => Ok(connection),
            status => Err(format!("answered {status}: {}", response.body)),
        }
    })
    .await;
    let version = control_plane.snapshot_version().await;

    // Rotation: the Secret alone is modified.
    kubernetes.apply(secret(second.path()));
    eventually("the rotated certificate", DEADLINE, || async {
        let (served, response) = get_once(address, HOST, "/", &options).await?;
        if served != new {
            return Err("still the old certificate".to_owned());
        }
        match response.status {
            200 => Ok(()),
            status => Err(format!("answered {status}: {}", response.body)),
        }
    })
    .await;
    assert_ne!(control_plane.snapshot_version().await, version);
    let (served, _) = get_once(address, HOST, "/", &options).await.unwrap();
    assert_eq!(served, new, "a later handshake got the old certificate");

    // The connection opened before the rotation still completes requests.
    assert_eq!(keep_alive.served, old);
    let response = keep_alive.get(HOST, "/again", &[]).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["path"], "/again");
}
