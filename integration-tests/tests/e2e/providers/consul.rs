//! Consul KV and Consul Catalog against the harness's fake Consul agent.

use integration_tests::{EchoBackend, FakeConsul, TestPki, eventually, request};

use super::{DEADLINE, Stack};

/// The KV keys of router `name` for `Host(<name>.example)` and its service
/// with one server.
fn route(consul: &FakeConsul, name: &str, url: &str) {
    let router = format!("traefik/http/routers/{name}");
    consul.put(
        &format!("{router}/rule"),
        &format!("Host(`{name}.example`)"),
    );
    consul.put(&format!("{router}/service"), name);
    consul.put(&format!("{router}/entrypoints/0"), "web");
    consul.put(
        &format!("traefik/http/services/{name}/loadbalancer/servers/0/url"),
        url,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_keys_become_routes_that_follow_changes_and_deletions() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let consul = FakeConsul::start().await;
    consul.put("traefik/", "");
    route(&consul, "api", &first.url());
    let stack = Stack::start(
        "consul",
        &format!("endpoints: [\"{}\"]\nrootKey: traefik", consul.endpoint()),
    )
    .await;
    stack.wait_backend("api.example", "first").await;
    let health = stack.wait_provider_state("consul", "ok").await;
    assert!(health["lastUpdateMs"].as_u64().is_some(), "{health}");

    // A changed key is followed through the blocking query.
    let before = consul.index();
    consul.put(
        "traefik/http/services/api/loadbalancer/servers/0/url",
        &second.url(),
    );
    assert!(consul.index() > before);
    stack.wait_backend("api.example", "second").await;

    // A key written over Consul's HTTP API, as `consul kv put` does.
    let url = format!(
        "http://{}/v1/kv/traefik/http/routers/web/rule",
        consul.endpoint()
    );
    let written = request("PUT", &url, &[], b"Host(`web.example`)".to_vec())
        .await
        .unwrap();
    assert_eq!((written.status, written.body.as_str()), (200, "true"));
    consul.put("traefik/http/routers/web/service", "api");
    stack.wait_backend("web.example", "second").await;

    // A malformed key names itself; every other route still ships.
    consul.put(
        "traefik/http/routers/broken/rulee",
        "Host(`broken.example`)",
    );
    let errors = eventually("the malformed key to be reported", DEADLINE, || async {
        let errors = stack.control_plane.api("/api/errors").await;
        if errors
            .to_string()
            .contains("traefik/http/routers/broken/rulee")
        {
            Ok(errors)
        } else {
            Err(format!("/api/errors: {errors}"))
        }
    })
    .await;
    assert!(
        errors.to_string().contains("unknown field `rulee`"),
        "{errors}"
    );
    assert_eq!(stack.backend("api.example").await.unwrap(), "second");

    // A deleted router is removed.
    consul.delete_prefix("traefik/http/routers/api/");
    stack.wait_not_found("api.example").await;
    assert_eq!(stack.backend("web.example").await.unwrap(), "second");
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_survive_consul_going_away_and_follow_it_when_it_returns() {
    let backend = EchoBackend::start("backend").await;
    let mut consul = FakeConsul::start().await;
    route(&consul, "api", &backend.url());
    let stack = Stack::start("consul", &format!("endpoints: [\"{}\"]", consul.endpoint())).await;
    stack.wait_backend("api.example", "backend").await;

    consul.stop();
    let health = stack.wait_provider_state("consul", "error").await;
    assert!(
        health["lastError"]
            .as_str()
            .is_some_and(|error| error.contains("/v1/kv/traefik")),
        "{health}"
    );
    // Consul is down: its routes stay.
    for _ in 0..5 {
        assert_eq!(stack.backend("api.example").await.unwrap(), "backend");
    }
    let snapshot = stack.proxy.admin_json("/api/snapshot").await;
    assert!(snapshot.to_string().contains("api@consul"), "{snapshot}");

    // Consul returns unchanged: the provider notices without waiting for a
    // change, then follows the next one.
    consul.start_again().await;
    let health = stack.wait_provider_state("consul", "ok").await;
    assert!(health["lastError"].as_str().is_some(), "{health}");
    route(&consul, "late", &backend.url());
    stack.wait_backend("late.example", "backend").await;
    assert_eq!(stack.backend("api.example").await.unwrap(), "backend");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_routes_passing_instances_only() {
    let one = EchoBackend::start("web-1").await;
    let two = EchoBackend::start("web-2").await;
    let tagged = EchoBackend::start("api").await;
    let consul = FakeConsul::start().await;
    consul.register("web", "web-1", "127.0.0.1", one.address.port(), &[]);
    consul.register("web", "web-2", "127.0.0.1", two.address.port(), &["v2"]);
    let stack = Stack::start(
        "consulCatalog",
        &format!(
            "endpoint:\n  address: \"{}\"\ndefaultRule: \"Host(`{{{{ normalize .Name }}}}.example`)\"",
            consul.endpoint()
        ),
    )
    .await;

    // No tags: a router named after the service, with both instances.
    eventually("both instances of web to answer", DEADLINE, || async {
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.push(stack.backend("web.example").await?);
        }
        if seen.iter().any(|b| b == "web-1") && seen.iter().any(|b| b == "web-2") {
            Ok(())
        } else {
            Err(format!("answered by {seen:?}"))
        }
    })
    .await;

    // An instance failing its check leaves the rotation.
    consul.set_check("web-2", "critical");
    eventually("only web-1 to answer", DEADLINE, || async {
        for _ in 0..20 {
            let backend = stack.backend("web.example").await?;
            if backend != "web-1" {
                return Err(format!("answered by {backend}"));
            }
        }
        Ok(())
    })
    .await;
    consul.set_check("web-2", "passing");
    stack.wait_backend("web.example", "web-2").await;

    // Tags: a router and a port override.
    let port_tag = format!(
        "traefik.http.services.api.loadbalancer.server.port={}",
        tagged.address.port()
    );
    consul.register(
        "api",
        "api-1",
        "127.0.0.1",
        1,
        &[
            "traefik.http.routers.api.rule=Host(`api.example`) && PathPrefix(`/v1`)",
            &port_tag,
        ],
    );
    eventually("the tagged router", DEADLINE, || async {
        match stack.backend_at("api.example", "/v1/users").await {
            Ok(backend) if backend == "api" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let health = stack.wait_provider_state("consulcatalog", "ok").await;
    assert!(health["lastUpdateMs"].as_u64().is_some(), "{health}");

    // A deregistered service goes away.
    consul.deregister("api-1");
    eventually("the tagged router to go away", DEADLINE, || async {
        let url = stack.url("/v1/users");
        let response = request("GET", &url, &[("host", "api.example")], Vec::new()).await?;
        if response.status == 404 {
            Ok(())
        } else {
            Err(format!("answered {}", response.status))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_is_read_over_mutual_tls() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let pki = TestPki::generate();
    let consul = FakeConsul::start_tls(&pki).await;
    route(&consul, "secure", &first.url());
    let stack = Stack::start(
        "consul",
        &format!(
            "endpoints: [\"{}\"]\n{}",
            consul.endpoint(),
            pki.provider_tls_yaml(0)
        ),
    )
    .await;
    stack.wait_backend("secure.example", "first").await;
    let health = stack.wait_provider_state("consul", "ok").await;
    assert!(health["lastError"].is_null(), "{health}");

    // Blocking queries run over TLS too.
    consul.put(
        "traefik/http/services/secure/loadbalancer/servers/0/url",
        &second.url(),
    );
    stack.wait_backend("secure.example", "second").await;
}
