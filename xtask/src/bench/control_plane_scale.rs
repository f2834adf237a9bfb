//! Control-plane scale (issue 7, item 5), at 10,000 routers (router *i*:
//! ``Host(`ri.bench`) && PathPrefix(`/ri`)``, one service), control plane
//! only, no proxy:
//!
//! - compile time: wall time of `sluice-control-plane validate
//!   --configFile` (start, read and parse the file, compile, exit), against
//!   the same at 10 routers;
//! - load: from starting `sluice-control-plane run` to a simulated proxy
//!   (`snapshot-watch`) holding every router; the full state's size;
//! - memory: the running control plane's VmRSS / VmHWM (`/proc/<pid>/status`)
//!   with that one watcher, then with 100 more connected;
//! - delta: one router's rule changed; the encoded size of the update the
//!   watcher receives, what it carried, and how long it took.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::contenders::{ControlPlane, memory_kib, release_bin, sluice_dynamic, write_config};
use super::propagation::DEBOUNCE;
use super::watchers::{self, Watchers};
use super::{scale_route, wait_bounded};

/// Routers loaded.
pub(crate) const ROUTERS: usize = 10_000;
/// The small configuration `validate` is compared with.
pub(crate) const SMALL: usize = 10;
/// Simulated watchers connected for the memory figure.
pub(crate) const WATCHERS: usize = 100;
/// `validate` runs per size.
const VALIDATE_RUNS: usize = 3;
/// Bound on loading, connecting the watchers and each `validate`.
const BOUND: Duration = Duration::from_secs(120);

/// What the section measured.
#[derive(Debug, Default)]
pub(crate) struct ControlPlaneScale {
    /// Milliseconds per `validate` run, at [`SMALL`] and at [`ROUTERS`] routers.
    pub(crate) validate_small_ms: Vec<f64>,
    pub(crate) validate_ms: Vec<f64>,
    /// From `run` to a watcher holding every router, ms.
    pub(crate) load_ms: f64,
    /// Encoded size of that first (full) update, bytes.
    pub(crate) full_state_bytes: u64,
    /// (VmRSS, VmHWM), KiB, with one watcher.
    pub(crate) one_watcher_kib: (u64, u64),
    /// Encoded size of the update for a one-router change, bytes.
    pub(crate) delta_bytes: u64,
    /// What that update carried (`routers:1`) and removed.
    pub(crate) delta_upserts: String,
    pub(crate) delta_removals: u64,
    /// From the file write to the watcher receiving the delta, ms.
    pub(crate) delta_ms: f64,
    /// (VmRSS, VmHWM), KiB, with [`WATCHERS`] more watchers connected.
    pub(crate) many_watchers_kib: (u64, u64),
}

pub(crate) fn run(dir: &Path, backend: std::net::SocketAddr) -> anyhow::Result<ControlPlaneScale> {
    let yaml = |routers: usize| sluice_dynamic(backend, (0..routers).map(scale_route), "");
    let mut result = ControlPlaneScale::default();

    let started = Instant::now();
    let mut control_plane = ControlPlane::start(dir, "cp-scale", &yaml(ROUTERS), Some(DEBOUNCE))?;
    control_plane.wait_listening(BOUND)?;
    let mut watcher = Watchers::start(dir, &control_plane.grpc_url, "cp-scale-watch", None)?;
    let loaded = watcher.wait_for(BOUND, "update with every router", |line| {
        watchers::count(line, "totals", "routers").is_some_and(|n| n >= ROUTERS as u64)
    })?;
    result.load_ms = started.elapsed().as_secs_f64() * 1000.0;
    result.full_state_bytes = watchers::number(&loaded, "bytes").unwrap_or(0);
    result.one_watcher_kib = memory_kib(control_plane.process.pid());

    // Compile time, while the running control plane idles.
    let (small_config, ..) = write_config(dir, "cp-scale-small", &yaml(SMALL), None)?;
    for _ in 0..VALIDATE_RUNS {
        result
            .validate_small_ms
            .push(validate(&small_config, SMALL)?);
        result
            .validate_ms
            .push(validate(&control_plane.static_path, ROUTERS)?);
    }

    // One router's rule changes: the whole file is rewritten, one router differs.
    let changed = ROUTERS / 2;
    let rewritten = sluice_dynamic(
        backend,
        (0..ROUTERS).map(|i| {
            let (name, rule, chain) = scale_route(i);
            if i == changed {
                let rule = format!("Host(`r{i}.bench`) && PathPrefix(`/r{i}-changed`)");
                (name, rule, chain)
            } else {
                (name, rule, chain)
            }
        }),
        "",
    );
    let aside = dir.join("cp-scale/.routes.yml");
    std::fs::write(&aside, rewritten)?;
    let written = Instant::now();
    std::fs::rename(&aside, control_plane.dynamic_dir.join("routes.yml"))?;
    let loaded_version = watchers::field(&loaded, "version")
        .unwrap_or_default()
        .to_owned();
    let delta = watcher.wait_for(BOUND, "update after the change", |line| {
        line.starts_with("update ") && watchers::field(line, "version") != Some(&loaded_version)
    })?;
    result.delta_ms = written.elapsed().as_secs_f64() * 1000.0;
    result.delta_bytes = watchers::number(&delta, "bytes").unwrap_or(0);
    result.delta_upserts = watchers::field(&delta, "upserts")
        .unwrap_or_default()
        .to_owned();
    result.delta_removals = watchers::number(&delta, "removals").unwrap_or(0);

    let mut many = Watchers::start(
        dir,
        &control_plane.grpc_url,
        "cp-scale-many",
        Some(WATCHERS),
    )?;
    watchers::wait_ready(&mut many, BOUND)?;
    result.many_watchers_kib = memory_kib(control_plane.process.pid());
    drop(many);
    drop(watcher);
    drop(control_plane);
    Ok(result)
}

/// One `validate` run, bounded; its wall time in ms. Fails unless it
/// reports `routers` routers valid.
fn validate(config: &Path, routers: usize) -> anyhow::Result<f64> {
    let output_path = config.with_extension("validate.out");
    let output = std::fs::File::create(&output_path)?;
    let started = Instant::now();
    let mut child = Command::new(release_bin("sluice-control-plane"))
        .arg("validate")
        .arg("--configFile")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()
        .context("starting sluice-control-plane validate")?;
    let status = wait_bounded(
        &mut child,
        started,
        BOUND,
        Duration::from_millis(1),
        "`validate`",
    )?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let printed = std::fs::read_to_string(&output_path)?;
    let expected = format!("configuration is valid: {routers} routers");
    if !status.success() || !printed.contains(&expected) {
        bail!("`validate` of {} ({status}): {printed}", config.display());
    }
    Ok(elapsed)
}
