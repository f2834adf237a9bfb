//! Which router a request goes to (Traefik v3 priorities, normalised
//! paths) and what the backend is told about it (forwarding headers,
//! hop-by-hop headers removed).

use integration_tests::{ControlPlaneOptions, EchoBackend, raw_get};

use super::{ROUTES_FILE, Routes, Stack, backend_of};

#[tokio::test(flavor = "multi_thread")]
async fn longer_rules_win_unless_a_priority_says_otherwise() {
    let names = [
        "api",
        "api-v2",
        "short-explicit",
        "long-implicit",
        "host-regexp",
        "host",
        "host-pinned",
    ];
    let mut backends = Vec::new();
    for name in names {
        backends.push(EchoBackend::start(name).await);
    }
    let mut routes = Routes::new()
        .router("api", "PathPrefix(`/api`)", "api")
        .router("api-v2", "PathPrefix(`/api/v2`)", "api-v2")
        // Longer rule, but an explicit priority above its length wins.
        .router_with(
            "short-explicit",
            "PathPrefix(`/p`)",
            "short-explicit",
            "priority: 1000",
        )
        .router(
            "long-implicit",
            "PathPrefix(`/p/a/very/long/path`)",
            "long-implicit",
        )
        // Traefik's documented pitfall: the regexp rule is longer, so it
        // outranks the exact host...
        .router(
            "host-regexp",
            r"HostRegexp(`[a-z]+\.traefik\.com`)",
            "host-regexp",
        )
        .router("host", "Host(`foobar.traefik.com`)", "host")
        // ... unless the exact host gets a priority, as Traefik advises.
        .router_with(
            "host-pinned",
            "Host(`pinned.traefik.com`)",
            "host-pinned",
            "priority: 100",
        );
    for backend in &backends {
        routes = routes.load_balancer(&backend.name, &[backend.url()]);
    }
    let stack = Stack::start(&routes).await;

    let cases = [
        ("/api", "app.example", "api"),
        ("/api/v1/users", "app.example", "api"),
        ("/api/v2", "app.example", "api-v2"),
        ("/api/v2/users", "app.example", "api-v2"),
        ("/p/a/very/long/path/x", "app.example", "short-explicit"),
        ("/", "foobar.traefik.com", "host-regexp"),
        ("/", "other.traefik.com", "host-regexp"),
        ("/", "pinned.traefik.com", "host-pinned"),
        // Host matching ignores case and the port.
        ("/", "PINNED.Traefik.com:8080", "host-pinned"),
    ];
    for (path, host, expected) in cases {
        let backend = backend_of(&stack.url(path), host)
            .await
            .unwrap_or_else(|error| panic!("{path} (Host {host}): {error}"));
        assert_eq!(backend, expected, "GET {path} with Host {host}");
    }
    // The exact-host router still exists: it is simply outranked.
    let routers = stack.proxy.admin_json("/api/snapshot").await;
    assert!(
        routers["routers"]
            .as_array()
            .is_some_and(|routers| routers.iter().any(|r| r["name"] == "host@file")),
        "{routers}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_are_normalised_before_routing_and_encoded_slashes_refused() {
    let admin = EchoBackend::start("admin").await;
    let public = EchoBackend::start("public").await;
    let routes = Routes::new()
        .router("admin", "Path(`/admin`)", "admin")
        .router("public", "PathPrefix(`/public`)", "public")
        .load_balancer("admin", &[admin.url()])
        .load_balancer("public", &[public.url()]);
    let stack = Stack::start(&routes).await;
    let port = stack.port();

    let to_admin = [
        "/admin",
        "/public/../admin",
        "/%2e%2e/admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "//admin",
        "/public/./../admin",
        "/public/x/../../admin",
        "/%61dmin",
    ];
    for target in to_admin {
        let response = raw_get(port, target, "app.example", &[]).await.unwrap();
        assert_eq!(response.status, 200, "{target}: {response:?}");
        assert_eq!(response.headers["x-backend"], "admin", "{target}");
        // The backend receives the normalised path, not the raw one.
        assert_eq!(response.json()["path"], "/admin", "{target}");
    }
    let response = raw_get(port, "/public/./x", "app.example", &[])
        .await
        .unwrap();
    assert_eq!(response.headers["x-backend"], "public");
    assert_eq!(response.json()["path"], "/public/x");

    for target in ["/public%2F..%2Fadmin", "/admin%2f", "/public/%2Fadmin"] {
        let response = raw_get(port, target, "app.example", &[]).await.unwrap();
        assert_eq!(response.status, 400, "{target}: {response:?}");
    }
    assert!(
        admin
            .received()
            .iter()
            .all(|r| r.path_and_query == "/admin"),
        "{:?}",
        admin.received()
    );

    let response = raw_get(port, "/nothing/here", "app.example", &[])
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.body.as_str()),
        (404, "404 page not found\n")
    );
}

/// Sends the same request with client-set forwarding and hop-by-hop
/// headers to `port`; returns the headers the backend saw.
async fn headers_seen(port: u16, backend: &EchoBackend) -> serde_json::Value {
    let response = raw_get(
        port,
        "/whoami",
        "app.example.com:8443",
        &[
            "X-Forwarded-For: 1.2.3.4",
            "X-Forwarded-Host: spoofed.example",
            "X-Real-Ip: 6.6.6.6",
            "Connection: close, x-secret",
            "X-Secret: v",
            "Keep-Alive: timeout=5",
            "X-Kept: yes",
        ],
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.headers["x-backend"], backend.name);
    response.json()["headers"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_are_set_untrusted_ones_dropped_and_hop_by_hop_removed() {
    let backend = EchoBackend::start("app").await;
    let routes = Routes::new()
        .router("app", "PathPrefix(`/`)", "app")
        .load_balancer("app", &[backend.url()]);
    let stack = Stack::start_with(
        ControlPlaneOptions::new()
            .entry_point("web")
            .entry_point_with("trusted", "forwardedHeaders:\n  insecure: true")
            .dynamic_file(ROUTES_FILE, &routes.yaml()),
    )
    .await;
    let trusted_port = stack.control_plane.entry_point_port("trusted");

    // Untrusted peer (the default): the client's X-Forwarded-* are dropped.
    let seen = headers_seen(stack.port(), &backend).await;
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert_eq!(seen["x-real-ip"], "127.0.0.1", "{seen}");
    assert_eq!(seen["x-forwarded-host"], "app.example.com:8443", "{seen}");
    assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
    assert_eq!(seen["x-forwarded-port"], "8443", "{seen}");
    assert_eq!(seen["x-forwarded-server"], "proxy-1", "{seen}");
    assert_eq!(
        seen["host"], "app.example.com:8443",
        "passHostHeader: {seen}"
    );
    assert_eq!(seen["x-kept"], "yes", "{seen}");
    for hop_by_hop in ["connection", "x-secret", "keep-alive"] {
        assert!(
            seen.get(hop_by_hop).is_none(),
            "{hop_by_hop} forwarded: {seen}"
        );
    }

    // `forwardedHeaders.insecure`: the client's are kept, the peer appended.
    let seen = headers_seen(trusted_port, &backend).await;
    assert_eq!(seen["x-forwarded-for"], "1.2.3.4, 127.0.0.1", "{seen}");
    assert_eq!(seen["x-forwarded-host"], "spoofed.example", "{seen}");
    assert_eq!(seen["x-real-ip"], "6.6.6.6", "{seen}");
    assert_eq!(seen["x-forwarded-server"], "proxy-1", "{seen}");
    for hop_by_hop in ["connection", "x-secret", "keep-alive"] {
        assert!(
            seen.get(hop_by_hop).is_none(),
            "{hop_by_hop} forwarded: {seen}"
        );
    }
}
