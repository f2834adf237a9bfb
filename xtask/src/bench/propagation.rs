//! Configuration propagation (issue 7, item 3) with one watching proxy:
//! with 3,000 routes loaded, the time from writing a new route file to the
//! proxy serving it; then the errors a constant-rate client sees while
//! routes change.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::contenders::{SluiceStack, http_status, sluice_dynamic};

/// Routes loaded before measuring.
pub(crate) const ROUTES: usize = 3_000;
/// The control plane's debounce for this stack: (quietPeriod, maxDelay).
pub(crate) const DEBOUNCE: (&str, &str) = ("5ms", "50ms");
/// How long one change may take to show before it counts as not propagated.
const BOUND: Duration = Duration::from_secs(10);
/// The constant-rate client's interval (200 requests/s).
const CLIENT_INTERVAL: Duration = Duration::from_millis(5);

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
