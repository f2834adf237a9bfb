//! The etcd provider against a real etcd.

use integration_tests::{EchoBackend, Etcd};

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
