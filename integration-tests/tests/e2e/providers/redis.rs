//! The Redis provider against a real Redis.

use integration_tests::{EchoBackend, RedisServer};

use super::Stack;

fn route(redis: &RedisServer, name: &str, url: &str) {
    let router = format!("traefik/http/routers/{name}");
    redis.set(
        &format!("{router}/rule"),
        &format!("Host(`{name}.example`)"),
    );
    redis.set(&format!("{router}/service"), name);
    redis.set(
        &format!("traefik/http/services/{name}/loadbalancer/servers/0/url"),
        url,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_keys_become_routes_that_follow_notifications_and_survive_a_crash() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let mut redis = RedisServer::start().await;
    route(&redis, "api", &first.url());
    let stack = Stack::start("redis", &format!("endpoints: [\"{}\"]", redis.endpoint())).await;
    stack.wait_backend("api.example", "first").await;
    stack.wait_provider_state("redis", "ok").await;

    // Changes arrive through keyspace notifications.
    redis.set(
        "traefik/http/services/api/loadbalancer/servers/0/url",
        &second.url(),
    );
    stack.wait_backend("api.example", "second").await;
    route(&redis, "web", &first.url());
    stack.wait_backend("web.example", "first").await;
    redis.delete_prefix("traefik/http/routers/web/");
    stack.wait_not_found("web.example").await;

    // Redis crashes: the routes stay.
    redis.kill();
    let health = stack.wait_provider_state("redis", "error").await;
    assert!(
        health["lastError"]
            .as_str()
            .is_some_and(|error| error.contains("Redis")),
        "{health}"
    );
    for _ in 0..5 {
        assert_eq!(stack.backend("api.example").await.unwrap(), "second");
    }

    // Redis returns empty (no persistence); the keys are written again and
    // the provider follows them.
    redis.restart().await;
    route(&redis, "api", &second.url());
    route(&redis, "late", &first.url());
    stack.wait_backend("late.example", "first").await;
    stack.wait_backend("api.example", "second").await;
    stack.wait_provider_state("redis", "ok").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_keyspace_notifications_redis_is_read_periodically() {
    let first = EchoBackend::start("first").await;
    let second = EchoBackend::start("second").await;
    let redis = RedisServer::start_without_notifications().await;
    route(&redis, "api", &first.url());
    let stack = Stack::start("redis", &format!("endpoints: [\"{}\"]", redis.endpoint())).await;
    stack.wait_backend("api.example", "first").await;

    redis.set(
        "traefik/http/services/api/loadbalancer/servers/0/url",
        &second.url(),
    );
    stack.wait_backend("api.example", "second").await;
    let output = stack.control_plane.process.output();
    assert!(
        output.contains("Redis keyspace notifications are off"),
        "{output}"
    );
}
