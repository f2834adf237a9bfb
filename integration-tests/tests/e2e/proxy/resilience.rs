//! Staying up while things change or fail: backends dying or failing their
//! health checks, snapshots swapped under load, the proxy itself asked to
//! stop in the middle of a request.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use integration_tests::{ChildProcess, ControlPlaneOptions, EchoBackend, eventually, request};

use super::{DEADLINE, ROUTES_FILE, Routes, Stack, backend_of, heavy_test, update_counts};

/// One service over `backends` with an active health check on `/health`
/// every 500 ms (200 ms timeout), for every path.
fn checked(backends: &[&EchoBackend]) -> Routes {
    let urls: Vec<String> = backends.iter().map(|backend| backend.url()).collect();
    Routes::new()
        .router("app", "PathPrefix(`/`)", "app")
        .load_balancer_with(
            "app",
            &urls,
            "healthCheck:\n  path: /health\n  interval: 500ms\n  timeout: 200ms",
        )
}

/// Sends requests until `count` in a row are 200s from `expected`; every
/// other answer must have a status in `allowed`. Bounded: 3,000 requests or
/// 30 s. Returns how many requests failed on the way.
async fn until_only(url: &str, expected: &str, count: usize, allowed: &[u16]) -> usize {
    let started = Instant::now();
    let (mut in_a_row, mut failures, mut sent) = (0, 0, 0);
    while in_a_row < count {
        assert!(
            sent < 3_000 && started.elapsed() < DEADLINE,
            "{sent} requests in {:?} and still not {count} in a row from {expected} \
             ({failures} failed)",
            started.elapsed()
        );
        sent += 1;
        let response = request("GET", url, &[], Vec::new())
            .await
            .unwrap_or_else(|error| panic!("request {sent}: {error}"));
        let backend = response.headers.get("x-backend").map(String::as_str);
        if response.status == 200 && backend == Some(expected) {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            if response.status != 200 {
                failures += 1;
                assert!(
                    allowed.contains(&response.status),
                    "request {sent}: unexpected {} {}",
                    response.status,
                    response.body
                );
            }
        }
    }
    failures
}

/// Sends `count` requests; every one must be a 200 from `expected`.
async fn all_from(url: &str, expected: &str, count: usize) {
    for sent in 1..=count {
        let backend = backend_of(url, "app.example")
            .await
            .unwrap_or_else(|error| panic!("request {sent} of {count}: {error}"));
        assert_eq!(backend, expected, "request {sent} of {count}");
    }
}

/// Sends requests (at most 200) until both backends have answered.
async fn both_answer(url: &str, a: &str, b: &str) {
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(backend_of(url, "app.example").await.unwrap());
        if seen.contains(a) && seen.contains(b) {
            return;
        }
    }
    panic!("200 requests reached only {seen:?}, expected {a} and {b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backend_leaves_rotation_and_the_502s_stop() {
    let alive = EchoBackend::start("alive").await;
    let doomed = EchoBackend::start("doomed").await;
    let stack = Stack::start(&checked(&[&alive, &doomed])).await;
    let url = stack.url("/");
    both_answer(&url, "alive", "doomed").await;

    // The backend dies (listener and connections closed) under requests:
    // 502s at most until the health check takes it out...
    drop(doomed);
    let failures = until_only(&url, "alive", 20, &[502]).await;
    eprintln!("{failures} requests failed (502) before the dead backend left the rotation");
    // ... and none after.
    all_from(&url, "alive", 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_failing_its_health_check_leaves_rotation_and_comes_back() {
    let steady = EchoBackend::start("steady").await;
    let flaky = EchoBackend::start("flaky").await;
    let stack = Stack::start(&checked(&[&steady, &flaky])).await;
    let url = stack.url("/");
    both_answer(&url, "steady", "flaky").await;

    // 500 on /health (and everywhere): out of the rotation. Until the check
    // notices, its 500s reach clients as they are.
    flaky.set_status(500);
    until_only(&url, "steady", 20, &[500]).await;
    all_from(&url, "steady", 100).await;

    // Healthy again: back in the rotation.
    flaky.set_status(200);
    eventually(
        "the recovered backend to answer again",
        DEADLINE,
        || async {
            let backend = backend_of(&url, "app.example").await?;
            if backend == "flaky" {
                Ok(())
            } else {
                Err(format!("answered by {backend}"))
            }
        },
    )
    .await;
    both_answer(&url, "steady", "flaky").await;
}

/// Routes for swap `i`: the loaded router's header rule changes, and an
/// unrelated router is replaced.
fn swap(backend: &EchoBackend, i: usize) -> Routes {
    Routes::new()
        .router(
            "app",
            &format!("PathPrefix(`/`) && !Header(`X-Swap`, `{i}`)"),
            "app",
        )
        .router(
            &format!("unrelated-{i}"),
            &format!("Host(`unrelated-{i}.example`)"),
            "app",
        )
        .load_balancer("app", &[backend.url()])
}

/// A counter from wrk's summary line `label: N`, or 0 when wrk left it out
/// (it prints error lines only when there are errors).
fn wrk_count(output: &str, label: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map_or(0, |rest| {
            rest.trim_start_matches(':')
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("cannot read `{label}` in:\n{output}"))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_snapshot_swaps_under_wrk_load_lose_no_request() {
    const SWAPS: usize = 200;
    const LOAD: Duration = Duration::from_secs(10);
    let _turn = heavy_test().await;
    let wrk = which("wrk").unwrap_or_else(|| {
        panic!("`wrk` is not installed: `cargo xtask ci` installs it (apt-get install wrk)")
    });
    let backend = EchoBackend::start("app").await;
    let stack = Stack::start_with(
        ControlPlaneOptions::new()
            .entry_point("web")
            .dynamic_file(ROUTES_FILE, &swap(&backend, 0).yaml())
            .debounce("5ms", "100ms"),
    )
    .await;
    let (full_before, delta_before, _) = update_counts(&stack.proxy).await;

    // wrk runs until interrupted (at most 120 s); SIGINT makes it print its
    // summary and exit.
    let started = Instant::now();
    let mut load = ChildProcess::spawn(
        "wrk",
        &wrk,
        &[
            "-t2".to_owned(),
            "-c16".to_owned(),
            "-d120s".to_owned(),
            "--timeout".to_owned(),
            "10s".to_owned(),
            "--latency".to_owned(),
            stack.url("/"),
        ],
    );
    eventually("wrk's requests to reach the backend", DEADLINE, || async {
        if backend.received().is_empty() {
            Err("no request yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;

    // 200 swaps, each applied by the proxy before the next edit.
    for i in 1..=SWAPS {
        let old = stack.proxy.version().await;
        stack
            .control_plane
            .write_dynamic(ROUTES_FILE, &swap(&backend, i).yaml());
        eventually(&format!("swap {i} to be applied"), DEADLINE, || async {
            let version = stack.proxy.version().await;
            if version == old {
                Err(format!("still {version}"))
            } else {
                Ok(())
            }
        })
        .await;
    }
    let swapped_in = started.elapsed();
    // The load lasts at least LOAD in all.
    tokio::time::sleep_until((started + LOAD).into()).await;
    load.signal("INT");
    let status = tokio::task::block_in_place(|| load.wait_exit(Duration::from_secs(30)))
        .expect("wrk exits after SIGINT");
    let output = eventually("wrk's summary", Duration::from_secs(10), || async {
        let output = load.output();
        if output.contains("Transfer/sec") {
            Ok(output)
        } else {
            Err(format!("output so far:\n{output}"))
        }
    })
    .await;
    eprintln!("{SWAPS} swaps in {swapped_in:?}; wrk:\n{output}");
    assert!(status.success(), "wrk failed ({status}):\n{output}");

    let requests: u64 = output
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{output}"));
    assert!(requests > 0, "{output}");
    assert_eq!(
        wrk_count(&output, "Non-2xx or 3xx responses"),
        0,
        "{output}"
    );
    assert!(
        !output.contains("Socket errors"),
        "wrk saw socket errors:\n{output}"
    );

    let (full, delta, rejected) = update_counts(&stack.proxy).await;
    assert_eq!(full, full_before, "no full state during the swaps");
    assert!(
        delta - delta_before >= SWAPS as u64,
        "{} deltas applied for {SWAPS} edits",
        delta - delta_before
    );
    assert_eq!(rejected, 0);
}

/// The path of `program` on PATH.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_in_flight_request_finish_refuses_new_connections_and_exits_0() {
    let backend = EchoBackend::start("slow").await;
    let routes = Routes::new()
        .router("app", "PathPrefix(`/`)", "app")
        .load_balancer("app", &[backend.url()]);
    let mut stack = Stack::start(&routes).await;
    let port = stack.port();
    backend.set_delay(Duration::from_secs(2));

    let url = stack.url("/slow");
    let in_flight = tokio::spawn(async move { request("GET", &url, &[], Vec::new()).await });
    eventually(
        "the slow request to reach the backend",
        DEADLINE,
        || async {
            if backend
                .received()
                .iter()
                .any(|r| r.path_and_query == "/slow")
            {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        },
    )
    .await;

    stack.proxy.process.signal("TERM");
    eventually("new connections to be refused", DEADLINE, || async {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
            Err(error) => Err(format!("connect failed otherwise: {error}")),
            Ok(_) => Err("a new connection was accepted".to_owned()),
        }
    })
    .await;

    let response = in_flight
        .await
        .expect("the request task")
        .expect("the in-flight request completes");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.headers["x-backend"], "slow");
    assert_eq!(response.json()["path"], "/slow");

    let status =
        tokio::task::block_in_place(|| stack.proxy.process.wait_exit(Duration::from_secs(15)))
            .expect("the proxy exits within its grace period");
    assert_eq!(status.code(), Some(0), "exit status {status}");
}
