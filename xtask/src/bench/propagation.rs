//! Configuration propagation (issue 7, item 3), with 3,000 routes loaded:
//!
//! - [`run`], one real proxy: the time from writing a new route file to the
//!   proxy serving it; then the errors a constant-rate client sees while
//!   routes change;
//! - [`fan_out`], 1, 10 and 100 simulated proxies (`snapshot-watch
//!   --streams N`, one process, every update ACKed on arrival): the time
//!   from writing a new route file until the *last* stream has received the
//!   version carrying it, and the control plane's memory with them connected.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::contenders::{ControlPlane, SluiceStack, http_status, memory_kib, sluice_dynamic};
use super::watchers::{self, Watchers};

/// Routes loaded before measuring.
pub(crate) const ROUTES: usize = 3_000;
/// The control plane's debounce for this stack: (quietPeriod, maxDelay).
pub(crate) const DEBOUNCE: (&str, &str) = ("5ms", "50ms");
/// How long one change may take to show before it counts as not propagated.
const BOUND: Duration = Duration::from_secs(10);
/// The constant-rate client's interval (200 requests/s).
const CLIENT_INTERVAL: Duration = Duration::from_millis(5);
/// The pause between one sample's change being served and the next change:
/// longer than the quiet period, so each sample is a lone change, compiled
/// at once, and not the tail of a burst that the debounce waits out.
pub(crate) const PACE: Duration = Duration::from_millis(20);

/// What the propagation section measured.
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    /// Milliseconds from the file rename to the first 200 for each new route.
    pub(crate) samples_ms: Vec<f64>,
    /// New routes not served within [`BOUND`].
    pub(crate) timeouts: usize,
    pub(crate) churn_changes: usize,
    /// Changed routes not served within [`BOUND`].
    pub(crate) churn_unpropagated: usize,
    /// Requests the constant-rate client sent during churn.
    pub(crate) churn_requests: u64,
    /// Of them, answered with a status other than 2xx.
    pub(crate) churn_non_2xx: u64,
    /// Of them, failed at the connection level.
    pub(crate) churn_io_errors: u64,
    pub(crate) churn_seconds: f64,
}

fn route(i: usize) -> (String, String, Vec<String>) {
    (
        format!("r{i}"),
        format!("Host(`r{i}.bench`) && PathPrefix(`/r{i}`)"),
        Vec::new(),
    )
}

/// Writes `contents` to `dir/name` atomically (write aside, then rename).
fn write_atomically(dir: &Path, name: &str, contents: &str) -> anyhow::Result<()> {
    let aside = dir
        .parent()
        .context("dynamic dir has a parent")?
        .join(format!(".{name}"));
    std::fs::write(&aside, contents)?;
    std::fs::rename(&aside, dir.join(name))?;
    Ok(())
}

/// Polls until `host` + `path` answers 200; the elapsed time, or `None` after [`BOUND`].
fn wait_served(address: SocketAddr, host: &str, path: &str, since: Instant) -> Option<Duration> {
    loop {
        if matches!(
            http_status(address, host, path, &[], Duration::from_secs(1)),
            Ok(200)
        ) {
            return Some(since.elapsed());
        }
        if since.elapsed() > BOUND {
            return None;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

pub(crate) fn run(
    dir: &Path,
    backend: SocketAddr,
    samples: usize,
    changes: usize,
) -> anyhow::Result<Propagation> {
    let yaml = sluice_dynamic(backend, (0..ROUTES).map(route), "");
    let mut stack = SluiceStack::start(dir, "propagation", &yaml, Some(DEBOUNCE))?;
    let last = ROUTES - 1;
    stack.target(
        "propagation",
        &format!("r{last}.bench"),
        &format!("/r{last}"),
        &[],
    )?;
    let address = stack.proxy_address;
    let mut result = Propagation::default();

    for k in 0..samples {
        let name = format!("added{k}");
        let file = format!(
            "http:\n  routers:\n    {name}:\n      rule: \"Host(`{name}.bench`)\"\n      entryPoints: [web]\n      service: backend\n"
        );
        let start = Instant::now();
        write_atomically(&stack.dynamic_dir, &format!("{name}.yml"), &file)?;
        match wait_served(address, &format!("{name}.bench"), "/", start) {
            Some(elapsed) => result.samples_ms.push(elapsed.as_secs_f64() * 1000.0),
            None => result.timeouts += 1,
        }
        std::thread::sleep(PACE);
    }

    // Churn: a client at a constant rate on a stable route while one router changes.
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let client = {
        let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                counters[0].fetch_add(1, Ordering::Relaxed);
                match http_status(address, "r0.bench", "/r0", &[], Duration::from_secs(2)) {
                    Ok(status) if (200..300).contains(&status) => {}
                    Ok(_) => {
                        counters[1].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters[2].fetch_add(1, Ordering::Relaxed);
                    }
                }
                next += CLIENT_INTERVAL;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    let churn_start = Instant::now();
    for k in 0..changes {
        let file = format!(
            "http:\n  routers:\n    churn:\n      rule: \"Host(`churn.bench`) && PathPrefix(`/c{k}`)\"\n      entryPoints: [web]\n      service: backend\n"
        );
        let start = Instant::now();
        write_atomically(&stack.dynamic_dir, "churn.yml", &file)?;
        if wait_served(address, "churn.bench", &format!("/c{k}"), start).is_none() {
            result.churn_unpropagated += 1;
        }
    }
    result.churn_seconds = churn_start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = client.join();
    result.churn_changes = changes;
    result.churn_requests = counters[0].load(Ordering::Relaxed);
    result.churn_non_2xx = counters[1].load(Ordering::Relaxed);
    result.churn_io_errors = counters[2].load(Ordering::Relaxed);
    drop(stack);
    Ok(result)
}

/// What one fan-out run measured.
#[derive(Debug, Default)]
pub(crate) struct FanOut {
    /// Simulated watchers (streams) connected.
    pub(crate) watchers: usize,
    /// Milliseconds from the file write to the last stream receiving the
    /// version with the new route, per change.
    pub(crate) samples_ms: Vec<f64>,
    /// Changes not received by every stream within [`BOUND`].
    pub(crate) timeouts: usize,
    /// The control plane's (VmRSS, VmHWM) in KiB with the watchers connected,
    /// after the changes.
    pub(crate) control_plane_kib: (u64, u64),
}

/// Microseconds since the Unix epoch: the clock `snapshot-watch` stamps
/// receptions with (same machine).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Fan-out to simulated watchers: for each count in `watchers`, one
/// `snapshot-watch --streams N` against a control plane (no proxy) holding
/// [`ROUTES`] routes, then `samples` new routes, each waited for on every
/// stream. The watcher processes run one after the other.
pub(crate) fn fan_out(
    dir: &Path,
    backend: SocketAddr,
    watchers: &[usize],
    samples: usize,
) -> anyhow::Result<Vec<FanOut>> {
    let yaml = sluice_dynamic(backend, (0..ROUTES).map(route), "");
    let mut control_plane = ControlPlane::start(dir, "fan-out", &yaml, Some(DEBOUNCE))?;
    control_plane.wait_listening(Duration::from_secs(30))?;
    // One watcher first, to know the routes are compiled before counting.
    {
        let mut first = Watchers::start(dir, &control_plane.grpc_url, "fan-out-check", None)?;
        first.wait_for(Duration::from_secs(60), "update with every route", |line| {
            watchers::count(line, "totals", "routers").is_some_and(|n| n >= ROUTES as u64)
        })?;
    }
    let mut results = Vec::new();
    for &count in watchers {
        eprintln!("xtask bench: propagation to {count} simulated watcher(s)");
        let mut streams = Watchers::start(
            dir,
            &control_plane.grpc_url,
            &format!("fan-out-{count}"),
            Some(count),
        )?;
        watchers::wait_ready(&mut streams, Duration::from_secs(60))?;
        let mut result = FanOut {
            watchers: count,
            ..FanOut::default()
        };
        for k in 0..samples {
            let name = format!("fan{count}x{k}");
            let file = format!(
                "http:\n  routers:\n    {name}:\n      rule: \"Host(`{name}.bench`)\"\n      entryPoints: [web]\n      service: backend\n"
            );
            let written_us = now_us();
            write_atomically(&control_plane.dynamic_dir, &format!("{name}.yml"), &file)?;
            match last_reception(&mut streams, count, &name)? {
                Some(last_us) => result
                    .samples_ms
                    .push(last_us.saturating_sub(written_us) as f64 / 1000.0),
                None => result.timeouts += 1,
            }
            std::thread::sleep(PACE);
        }
        result.control_plane_kib = memory_kib(control_plane.process.pid());
        results.push(result);
    }
    Ok(results)
}

/// Reads `recv` lines until every one of `count` streams has received the
/// version carrying router `name`; the latest reception time (µs since the
/// epoch), or `None` after [`BOUND`].
fn last_reception(streams: &mut Watchers, count: usize, name: &str) -> anyhow::Result<Option<u64>> {
    let deadline = Instant::now() + BOUND;
    let mut received = vec![false; count];
    let (mut left, mut last) = (count, 0);
    while left > 0 {
        let Some(line) = streams.next_line(deadline)? else {
            streams.drain();
            return Ok(None);
        };
        if !line.starts_with("recv ") || !watchers::carries_router(&line, name) {
            continue;
        }
        let (Some(stream), Some(at)) = (
            watchers::number(&line, "stream"),
            watchers::number(&line, "at_us"),
        ) else {
            bail!("unreadable snapshot-watch line: {line}");
        };
        let Some(seen) = usize::try_from(stream)
            .ok()
            .and_then(|i| received.get_mut(i))
        else {
            bail!("snapshot-watch names stream {stream} of {count}");
        };
        if !*seen {
            *seen = true;
            left -= 1;
            last = last.max(at);
        }
    }
    Ok(Some(last))
}
