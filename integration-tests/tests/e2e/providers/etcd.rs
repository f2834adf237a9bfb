//! The etcd provider against a real etcd, in plain text and over mutual
//! TLS.

use std::time::Duration;

use integration_tests::{EchoBackend, Etcd, TestPki, binary, free_port, run_to_completion};

use super::Stack;

fn route(etcd: &Etcd, name: &str, url: &str) {
    let router = format!("traefik/http/routers/{name}");
    etcd.put(
        &format!("{router}/rule"),
        &format!("Host(`{name}.example`)"),
    );
    etcd.put(&format!("{router}/service"), name);
    etcd.put(
        &format!("traefik/http/services/{name}/loadbalancer/servers/0/url"),
        url,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_keys_become_routes_and_survive_an_etcd_crash() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let mut etcd = Etcd::start().await;
    route(&etcd, "api", &first.url());
    let stack = Stack::start("etcd", &format!("endpoints: [\"{}\"]", etcd.endpoint())).await;
    stack.wait_backend("api.example", "first").await;
    stack.wait_provider_state("etcd", "ok").await;

    // Changes arrive through the watch.
    etcd.put(
        "traefik/http/services/api/loadbalancer/servers/0/url",
        &second.url(),
    );
    stack.wait_backend("api.example", "second").await;
    route(&etcd, "web", &first.url());
    stack.wait_backend("web.example", "first").await;
    etcd.delete_prefix("traefik/http/routers/web/");
    stack.wait_not_found("web.example").await;

    // etcd crashes: the routes stay.
    etcd.kill();
    let health = stack.wait_provider_state("etcd", "error").await;
    assert!(
        health["lastError"]
            .as_str()
            .is_some_and(|error| error.contains("etcd")),
        "{health}"
    );
    for _ in 0..5 {
        assert_eq!(stack.backend("api.example").await.unwrap(), "second");
    }

    // etcd returns with its data: the provider reads it again and follows
    // new changes.
    etcd.restart().await;
    route(&etcd, "late", &second.url());
    stack.wait_backend("late.example", "second").await;
    stack.wait_provider_state("etcd", "ok").await;
    assert_eq!(stack.backend("api.example").await.unwrap(), "second");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_is_read_over_mutual_tls() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let pki = TestPki::generate();
    let etcd = Etcd::start_tls(&pki).await;
    route(&etcd, "secure", &first.url());
    let stack = Stack::start(
        "etcd",
        &format!(
            "endpoints: [\"{}\"]\n{}",
            etcd.endpoint(),
            pki.provider_tls_yaml(0)
        ),
    )
    .await;
    stack.wait_backend("secure.example", "first").await;
    stack.wait_provider_state("etcd", "ok").await;

    // The watch runs over the same TLS connection.
    etcd.put(
        "traefik/http/services/secure/loadbalancer/servers/0/url",
        &second.url(),
    );
    stack.wait_backend("secure.example", "second").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_tls_file_stops_the_control_plane_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yml");
    let missing = dir.path().join("nowhere/ca.pem");
    std::fs::write(
        &config,
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{}\"\ncontrolPlane:\n  \
             grpcAddress: \"127.0.0.1:{}\"\n  apiAddress: \"127.0.0.1:{}\"\n\
             providers:\n  etcd:\n    tls:\n      ca: \"{}\"\n",
            free_port(),
            free_port(),
            free_port(),
            missing.display()
        ),
    )
    .unwrap();
    let output = run_to_completion(
        &binary("sluice-control-plane"),
        &["run", "--configFile", &config.display().to_string()],
        &[],
        Duration::from_secs(20),
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains(&format!(
            "providers.etcd: tls.ca `{}`: No such file",
            missing.display()
        )),
        "{printed}"
    );
}
