//! A control plane and its proxies: edits reach every proxy, a crashed
//! control plane leaves them serving, a restarted one re-sends nothing they
//! already hold, a snapshot a proxy cannot serve is NACKed while the old
//! routes keep serving; the proxy's own commands and probes.

use integration_tests::{
    ControlPlane, ControlPlaneOptions, EchoBackend, Proxy, binary, eventually, free_port, get,
    run_command,
};

use super::{DEADLINE, ROUTES_FILE, Routes, Stack, backend_of, update_counts, wait_serving};

/// One router for everything, to one backend.
fn everything_to(backend: &EchoBackend) -> Routes {
    Routes::new()
        .router("app", "PathPrefix(`/`)", "app")
        .load_balancer("app", &[backend.url()])
}

/// Waits until `/api/nodes` shows `node_id` connected, having acknowledged
/// `version`, and up to date.
async fn wait_acked(control_plane: &ControlPlane, node_id: &str, version: &str) {
    eventually(
        &format!("{node_id} to acknowledge {version} in /api/nodes"),
        DEADLINE,
        || async {
            let node = control_plane.node(node_id).await?;
            if node["connected"] == true
                && node["versionAcked"] == version
                && node["upToDate"] == true
            {
                Ok(())
            } else {
                Err(format!("node is {node}"))
            }
        },
    )
    .await;
}

/// Sends `count` requests through the proxy on `port`; all must be 200s from
/// `expected`.
async fn assert_served_by(port: u16, expected: &str, count: usize) {
    let url = format!("http://127.0.0.1:{port}/");
    for _ in 0..count {
        let backend = backend_of(&url, "app.example")
            .await
            .unwrap_or_else(|error| panic!("proxy on {port}: {error}"));
        assert_eq!(backend, expected, "proxy on {port}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_proxies_follow_edits_survive_a_control_plane_crash_and_resume_without_a_full_resend() {
    let v1 = EchoBackend::start("v1").await;
    let v2 = EchoBackend::start("v2").await;
    let mut control_plane =
        ControlPlane::start(&["web"], &[(ROUTES_FILE, &everything_to(&v1).yaml())]).await;
    let (port_a, port_b) = (free_port(), free_port());
    let proxy_a = Proxy::start(&control_plane.grpc_url(), "proxy-a", &[("web", port_a)]);
    let proxy_b = Proxy::start(&control_plane.grpc_url(), "proxy-b", &[("web", port_b)]);
    proxy_a.wait_ready().await;
    proxy_b.wait_ready().await;
    let proxies = [&proxy_a, &proxy_b];
    let first = control_plane.current_version().await;
    wait_serving(&proxies, &first).await;
    assert_served_by(port_a, "v1", 3).await;
    assert_served_by(port_b, "v1", 3).await;

    // An editor-style write (temporary file renamed over the original)
    // reaches both proxies.
    control_plane.write_dynamic(ROUTES_FILE, &everything_to(&v2).yaml());
    let second = control_plane.next_version(&first).await;
    wait_serving(&proxies, &second).await;
    assert_served_by(port_a, "v2", 3).await;
    assert_served_by(port_b, "v2", 3).await;
    for proxy in proxies {
        wait_acked(&control_plane, &proxy.node_id, &second).await;
    }
    let counts_before = [update_counts(&proxy_a).await, update_counts(&proxy_b).await];
    for (full, delta, rejected) in counts_before {
        assert_eq!(full, 1, "one full state at the first connection");
        assert!(delta >= 1, "the edit arrived as a delta");
        assert_eq!(rejected, 0);
    }

    // kill -9: both proxies keep serving the last snapshot.
    control_plane.kill_hard();
    assert!(
        get(&format!("{}/api/version", control_plane.api_url))
            .await
            .is_err(),
        "the control plane is gone"
    );
    assert_served_by(port_a, "v2", 20).await;
    assert_served_by(port_b, "v2", 20).await;
    for proxy in proxies {
        assert_eq!(proxy.version().await, second);
    }

    // Restarted on the same ports with the same files: same content, new
    // generation. The proxies reconnect saying what they hold, get only the
    // new name, and acknowledge the current version.
    control_plane.restart().await;
    let third = control_plane.current_version().await;
    let content = |version: &str| version.split_once('-').map(|(_, hash)| hash.to_owned());
    assert_eq!(
        content(&third),
        content(&second),
        "same content after the restart"
    );
    for proxy in proxies {
        wait_acked(&control_plane, &proxy.node_id, &third).await;
    }
    wait_serving(&proxies, &third).await;
    for (proxy, (full_before, delta_before, _)) in proxies.iter().zip(counts_before) {
        let (full, delta, rejected) = update_counts(proxy).await;
        assert_eq!(
            full, full_before,
            "{}: no full state re-sent after the restart",
            proxy.node_id
        );
        assert!(
            delta > delta_before,
            "{}: the new version arrived as a delta",
            proxy.node_id
        );
        assert_eq!(rejected, 0, "{}", proxy.node_id);
    }
    assert_served_by(port_a, "v2", 3).await;
    assert_served_by(port_b, "v2", 3).await;

    // And edits flow again.
    control_plane.write_dynamic(ROUTES_FILE, &everything_to(&v1).yaml());
    let fourth = control_plane.next_version(&third).await;
    wait_serving(&proxies, &fourth).await;
    assert_served_by(port_a, "v1", 3).await;
    assert_served_by(port_b, "v1", 3).await;
    for proxy in proxies {
        wait_acked(&control_plane, &proxy.node_id, &fourth).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_whose_listener_cannot_bind_is_nacked_then_a_later_one_applies() {
    let backend = EchoBackend::start("app").await;
    let routes = Routes::new()
        .router_with("app", "PathPrefix(`/`)", "app", "entryPoints: [web]")
        .load_balancer("app", &[backend.url()]);
    let control_plane =
        ControlPlane::start(&["web", "admin2"], &[(ROUTES_FILE, &routes.yaml())]).await;
    let first = control_plane.current_version().await;
    // The test holds the port this proxy's `admin2` entry point must listen on.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port to hold");
    let held_address = held.local_addr().expect("held address").to_string();
    let held_port = held.local_addr().expect("held address").port();
    let web_port = free_port();
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "proxy-nack",
        &[("web", web_port), ("admin2", held_port)],
    );

    let nack = eventually("a NACK in /api/nodes", DEADLINE, || async {
        let node = control_plane.node("proxy-nack").await?;
        match node.get("lastNack") {
            Some(nack) => Ok(nack.clone()),
            None => Err(format!("no lastNack yet: {node}")),
        }
    })
    .await;
    assert_eq!(nack["version"], first.as_str(), "{nack}");
    let error = nack["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&held_address) && error.contains("admin2"),
        "the NACK names the entry point and the address: {error}"
    );
    let node_view = control_plane.node("proxy-nack").await.unwrap();
    assert_eq!(node_view["upToDate"], false, "{node_view}");
    assert_eq!(node_view["versionAcked"], "", "{node_view}");
    // Nothing applied: the proxy is not ready and serves nothing.
    let ready = get(&format!("{}/ready", proxy.admin_url)).await.unwrap();
    assert_eq!(ready.status, 503);
    assert_eq!(update_counts(&proxy).await, (0, 0, 1));
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", web_port))
            .await
            .is_err(),
        "the rejected snapshot's other listeners were not kept either"
    );

    // Once the port is free, the next change applies.
    drop(held);
    let routes = routes.router_with("extra", "Path(`/extra`)", "app", "entryPoints: [web]");
    control_plane.write_dynamic(ROUTES_FILE, &routes.yaml());
    let second = control_plane.next_version(&first).await;
    proxy.wait_ready().await;
    wait_serving(&[&proxy], &second).await;
    wait_acked(&control_plane, "proxy-nack", &second).await;
    let url = format!("http://127.0.0.1:{web_port}/extra");
    assert_eq!(backend_of(&url, "app.example").await.unwrap(), "app");
    // The formerly held port is the proxy's now.
    let bound = proxy.admin_json("/api/snapshot").await;
    let admin2 = bound["entryPoints"]
        .as_array()
        .and_then(|eps| eps.iter().find(|ep| ep["name"] == "admin2"))
        .cloned()
        .unwrap_or_else(|| panic!("no admin2 in {bound}"));
    assert_eq!(admin2["bound"], held_address.as_str(), "{bound}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_the_proxy_cannot_build_is_nacked_and_the_old_routes_keep_serving() {
    let app = EchoBackend::start("app").await;
    let other = EchoBackend::start("other").await;
    let good = Routes::new()
        .router("app", "PathPrefix(`/`)", "app")
        .load_balancer("app", &[app.url()])
        .load_balancer("other", &[other.url()]);
    let stack = Stack::start(&good).await;
    let first = stack.proxy.version().await;
    assert_eq!(
        backend_of(&stack.url("/mirrored"), "x").await.unwrap(),
        "app"
    );

    // A gRPC health check: valid Traefik, compiled by the control plane, but
    // this proxy version cannot run it, so it rejects the whole snapshot.
    let mirrored = good
        .clone()
        .router("mirrored", "PathPrefix(`/mirrored`)", "grpc-checked")
        .load_balancer_with(
            "grpc-checked",
            &[other.url()],
            "healthCheck:\n  mode: grpc\n  interval: 1s",
        );
    stack
        .control_plane
        .write_dynamic(ROUTES_FILE, &mirrored.yaml());
    let second = stack.control_plane.next_version(&first).await;
    let nack = eventually("a NACK in /api/nodes", DEADLINE, || async {
        let node = stack.control_plane.node("proxy-1").await?;
        match node.get("lastNack") {
            Some(nack) if nack["version"] == second.as_str() => Ok(node.clone()),
            _ => Err(format!("no NACK of {second} yet: {node}")),
        }
    })
    .await;
    let error = nack["lastNack"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("mirrored") && error.contains("grpc-checked") && error.contains("gRPC"),
        "the NACK says which router, which service and why: {error}"
    );
    assert_eq!(nack["versionAcked"], first.as_str(), "{nack}");
    assert_eq!(nack["upToDate"], false, "{nack}");
    assert_eq!(update_counts(&stack.proxy).await.2, 1);

    // The old routes keep serving, the new router is not there.
    assert_eq!(stack.proxy.version().await, first);
    for _ in 0..20 {
        assert_eq!(
            backend_of(&stack.url("/mirrored"), "x").await.unwrap(),
            "app"
        );
    }
    let ready = get(&format!("{}/ready", stack.proxy.admin_url))
        .await
        .unwrap();
    assert_eq!(ready.status, 200, "still ready on the old snapshot");

    // A fixed configuration applies.
    let fixed = good.router("mirrored", "PathPrefix(`/mirrored`)", "other");
    stack.update(&fixed).await;
    assert_eq!(
        backend_of(&stack.url("/mirrored"), "x").await.unwrap(),
        "other"
    );
    assert_eq!(backend_of(&stack.url("/"), "x").await.unwrap(), "app");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_version_and_readiness_before_and_after_a_control_plane() {
    let proxy_binary = binary("sluice-proxy");
    let proxy_binary = proxy_binary.to_str().expect("UTF-8 path");

    let version = run_command(proxy_binary, &["version"]);
    assert!(version.status.success(), "{version:?}");
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert!(
        stdout.starts_with(&format!("sluice-proxy {} ", env!("CARGO_PKG_VERSION"))),
        "version prints the name and version: {stdout}"
    );

    // Nothing listens on this admin address.
    let closed = format!("127.0.0.1:{}", free_port());
    let unhealthy = run_command(proxy_binary, &["healthcheck", "--admin-address", &closed]);
    assert_eq!(unhealthy.status.code(), Some(1), "{unhealthy:?}");
    let stderr = String::from_utf8_lossy(&unhealthy.stderr);
    assert!(
        stderr.contains(&closed),
        "the error names the address: {stderr}"
    );

    // A proxy whose control plane does not exist yet: alive, not ready.
    let grpc_port = free_port();
    let proxy = Proxy::start(&format!("http://127.0.0.1:{grpc_port}"), "proxy-early", &[]);
    let ping_url = format!("{}/ping", proxy.admin_url);
    let ping = eventually("/ping to answer", DEADLINE, || async {
        get(&ping_url).await
    })
    .await;
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK"));
    let ready = get(&format!("{}/ready", proxy.admin_url)).await.unwrap();
    assert_eq!(ready.status, 503, "not ready without a snapshot");
    let healthy = run_command(
        proxy_binary,
        &["healthcheck", "--admin-address", proxy.admin_address()],
    );
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");

    // The control plane appears where the proxy looks for it: ready.
    let backend = EchoBackend::start("app").await;
    let control_plane = ControlPlaneOptions::new()
        .entry_point("web")
        .grpc_port(grpc_port)
        .dynamic_file(ROUTES_FILE, &everything_to(&backend).yaml())
        .start()
        .await;
    proxy.wait_ready().await;
    let url = format!(
        "http://127.0.0.1:{}/",
        control_plane.entry_point_port("web")
    );
    assert_eq!(backend_of(&url, "app.example").await.unwrap(), "app");
    let healthy = run_command(
        proxy_binary,
        &["healthcheck", "--admin-address", proxy.admin_address()],
    );
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");
}
