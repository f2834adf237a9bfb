//! `cargo xtask bench [--quick]`: Sluice against nginx, HAProxy and Caddy on
//! this machine, in one run (issue 7), written to `docs/benchmarks/`.
//!
//! One nginx answering `ok` is the backend for every contender. Every
//! process runs on 127.0.0.1 as the current user, with its configuration,
//! pid and log files in `target/bench-tmp/`; all are started up front and
//! measured round by round (interleaved), so slow drift of a busy machine
//! hits every contender alike. Medians over the rounds are reported.
//!
//! - [`contenders`]: configurations, processes, `/proc` measurements.
//! - [`load`]: `wrk` and `h2load` runs and their output.
//! - [`router_lookup`]: the criterion micro-benchmark of router lookup.
//! - [`propagation`]: time for a route change to reach one proxy and 1, 10
//!   and 100 simulated ones ([`watchers`]); errors under churn.
//! - [`control_plane_scale`]: compile time, memory and delta size at 10,000
//!   routers.
//! - [`report`]: `docs/benchmarks/README.md` and `throughput.svg`.

mod contenders;
mod control_plane_scale;
mod load;
mod propagation;
mod report;
mod router_lookup;
mod watchers;

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use contenders::{Process, SluiceStack, Target, sluice_dynamic};
use load::LoadResult;

use crate::{run_step, workspace_root};

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    /// Seconds per load run.
    pub(crate) seconds: u64,
    pub(crate) rounds: usize,
    pub(crate) propagation_samples: usize,
    pub(crate) churn_changes: usize,
}

/// Simulated watchers of the fan-out measurement, one run each.
pub(crate) const FAN_OUT: [usize; 3] = [1, 10, 100];

/// Load generator of one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    Wrk,
    H2load,
}

/// One load run and what the proxy spent on it.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) load: LoadResult,
    /// utime + stime of the proxy (and its children) during the run.
    pub(crate) cpu_seconds: Option<f64>,
    /// VmRSS and VmHWM after the run, KiB, summed over the proxy's processes.
    pub(crate) rss_kib: Option<(u64, u64)>,
}

/// Sections of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Proxies,
    Middlewares,
    RouteScale,
}

/// The samples of one (section, target, tool), in round order.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) section: Section,
    pub(crate) name: String,
    pub(crate) tool: Tool,
    pub(crate) samples: Vec<Sample>,
}

/// Everything measured, for the report.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
    pub(crate) propagation: Option<propagation::Propagation>,
    /// Propagation to simulated watchers, one entry per count in [`FAN_OUT`].
    pub(crate) fan_out: Vec<propagation::FanOut>,
    pub(crate) control_plane: Option<control_plane_scale::ControlPlaneScale>,
    pub(crate) router_lookup: Vec<router_lookup::Estimate>,
    /// The exact load commands, one per kind.
    pub(crate) commands: Vec<String>,
}

impl Results {
    fn push(&mut self, section: Section, name: &str, tool: Tool, sample: Sample) {
        match self
            .rows
            .iter_mut()
            .find(|r| r.section == section && r.name == name && r.tool == tool)
        {
            Some(row) => row.samples.push(sample),
            None => self.rows.push(Row {
                section,
                name: name.to_string(),
                tool,
                samples: vec![sample],
            }),
        }
    }

    pub(crate) fn row(&self, section: Section, name: &str, tool: Tool) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.section == section && r.name == name && r.tool == tool)
    }
}

/// Tools the benchmark runs, and their Debian packages (installed only here,
/// not by `ci`: benchmarks are not part of CI).
const TOOLS: &[(&str, &str)] = &[
    ("wrk", "wrk"),
    ("h2load", "nghttp2-client"),
    ("nginx", "nginx"),
    ("haproxy", "haproxy"),
    ("caddy", "caddy"),
    ("htpasswd", "apache2-utils"),
];

const USAGE: &str = "usage: cargo xtask bench [--quick]";

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => bail!("{USAGE}"),
    };
    let settings = Settings {
        quick,
        seconds: if quick { 3 } else { 10 },
        rounds: if quick { 1 } else { 3 },
        propagation_samples: if quick { 20 } else { 100 },
        churn_changes: if quick { 20 } else { 1_000 },
    };
    let mut results = Results::default();
    install_tools(&mut results)?;
    run_step(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "sluice-data-plane",
            "-p",
            "sluice-control-plane",
            "--bins",
        ],
    )?;
    // The simulated proxies, and the micro-benchmark built before it is timed.
    run_step(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "integration-tests",
            "--bin",
            "snapshot-watch",
        ],
    )?;
    let mut bench_build = router_lookup::CARGO_ARGS.to_vec();
    bench_build.push("--no-run");
    run_step("cargo", &bench_build)?;
    let machine_before = report::Machine::capture();

    let dir = workspace_root().join("target/bench-tmp");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // First, on a machine this benchmark does not load yet.
    eprintln!("xtask bench: router lookup (criterion)");
    match router_lookup::run(settings.quick, &dir.join("router-lookup.log")) {
        Ok(estimates) => results.router_lookup = estimates,
        Err(error) => results
            .notes
            .push(format!("Router lookup could not be measured: {error:#}")),
    }
    // Every process started below; dropped (stopped) on return, error or not.
    let mut processes: Vec<Process> = Vec::new();
    let mut stacks: Vec<SluiceStack> = Vec::new();

    let (backend, direct) = contenders::start_backend(&dir)?;
    processes.push(backend);
    let backend_address = direct.h1;
    let mut proxies = vec![direct];
    for (name, start) in [
        ("nginx", contenders::start_nginx as StartFn),
        ("haproxy", contenders::start_haproxy),
        ("caddy", contenders::start_caddy),
    ] {
        if !on_path(name) {
            results
                .notes
                .push(format!("`{name}` is not installed: skipped."));
            continue;
        }
        let (process, target) = start(&dir, backend_address)?;
        processes.push(process);
        proxies.push(target);
    }

    // Sluice stacks boot in parallel, then each is waited for.
    let one = sluice_dynamic(
        backend_address,
        std::iter::once(("bench".into(), "PathPrefix(`/`)".into(), Vec::new())),
        "",
    );
    stacks.push(SluiceStack::start(&dir, "sluice", &one, None)?);
    let (middleware_yaml, variants) = middleware_config(&dir, backend_address)?;
    stacks.push(SluiceStack::start(
        &dir,
        "middlewares",
        &middleware_yaml,
        None,
    )?);
    const SCALES: [usize; 3] = [10, 1_000, 10_000];
    for routers in SCALES {
        let yaml = sluice_dynamic(backend_address, (0..routers).map(scale_route), "");
        stacks.push(SluiceStack::start(
            &dir,
            &format!("routes-{routers}"),
            &yaml,
            None,
        )?);
    }
    proxies.push(stacks[0].target("Sluice", "127.0.0.1", "/", &[])?);
    let mut middlewares = Vec::new();
    for (label, host, path, headers) in &variants {
        middlewares.push(stacks[1].target(label, host, path, headers)?);
    }
    let mut scales = Vec::new();
    for (index, routers) in SCALES.iter().enumerate() {
        let last = routers - 1;
        scales.push(stacks[2 + index].target(
            &format!("{routers}"),
            &format!("r{last}.bench"),
            &format!("/r{last}"),
            &[],
        )?);
    }

    results.commands = vec![
        format!(
            "wrk {}",
            shell_join(&load::wrk_args(&proxies[0], settings.seconds))
        ),
        format!(
            "h2load {}",
            shell_join(&load::h2load_args(&proxies[0], settings.seconds).unwrap_or_default())
        ),
        format!(
            "wrk {}   # route scale, 10,000 routers",
            shell_join(&load::wrk_args(
                scales.last().expect("three scales"),
                settings.seconds
            ))
        ),
    ];

    for round in 1..=settings.rounds {
        eprintln!("xtask bench: round {round}/{}", settings.rounds);
        for target in &proxies {
            let sample = measure(target, Tool::Wrk, settings.seconds)?;
            results.push(Section::Proxies, &target.name, Tool::Wrk, sample);
            if target.h2.is_some() {
                let sample = measure(target, Tool::H2load, settings.seconds)?;
                results.push(Section::Proxies, &target.name, Tool::H2load, sample);
            }
        }
        for target in &middlewares {
            let sample = measure(target, Tool::Wrk, settings.seconds)?;
            results.push(Section::Middlewares, &target.name, Tool::Wrk, sample);
        }
        for target in &scales {
            let sample = measure(target, Tool::Wrk, settings.seconds)?;
            results.push(Section::RouteScale, &target.name, Tool::Wrk, sample);
        }
    }
    // Free the cores before propagation.
    drop(stacks);
    drop(processes.split_off(1));

    eprintln!("xtask bench: propagation");
    match propagation::run(
        &dir,
        backend_address,
        settings.propagation_samples,
        settings.churn_changes,
    ) {
        Ok(measured) => results.propagation = Some(measured),
        Err(error) => results
            .notes
            .push(format!("Propagation could not be measured: {error:#}")),
    }
    match propagation::fan_out(
        &dir,
        backend_address,
        &FAN_OUT,
        settings.propagation_samples,
    ) {
        Ok(measured) => results.fan_out = measured,
        Err(error) => results.notes.push(format!(
            "Propagation to simulated watchers could not be measured: {error:#}"
        )),
    }
    eprintln!("xtask bench: control-plane scale");
    match control_plane_scale::run(&dir, backend_address) {
        Ok(measured) => results.control_plane = Some(measured),
        Err(error) => results.notes.push(format!(
            "Control-plane scale could not be measured: {error:#}"
        )),
    }
    drop(processes);

    let machine_after = report::Machine::capture();
    let docs = workspace_root().join("docs/benchmarks");
    std::fs::create_dir_all(&docs)?;
    report::write(&docs, &settings, &results, &machine_before, &machine_after)?;
    eprintln!(
        "xtask bench: wrote {}",
        docs.join("README.md")
            .strip_prefix(workspace_root())?
            .display()
    );
    Ok(())
}

/// Arguments as a shell would need them typed (single-quoted when they hold a space).
fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

type StartFn = fn(&std::path::Path, std::net::SocketAddr) -> anyhow::Result<(Process, Target)>;

/// Router `i` of the route-scale configurations: ``Host(`ri.bench`) && PathPrefix(`/ri`)``.
pub(crate) fn scale_route(i: usize) -> (String, String, Vec<String>) {
    (
        format!("r{i}"),
        format!("Host(`r{i}.bench`) && PathPrefix(`/r{i}`)"),
        Vec::new(),
    )
}

/// A (label, host, path, headers) to load per middleware variant.
type Variant = (String, String, String, Vec<String>);

/// One router per middleware on the same proxy, told apart by host.
fn middleware_config(
    dir: &std::path::Path,
    backend: std::net::SocketAddr,
) -> anyhow::Result<(String, Vec<Variant>)> {
    let apr1 = htpasswd(&["-nbm", "bench", "bench"])?;
    let bcrypt = htpasswd(&["-nbB", "-C", "10", "bench", "bench"])?;
    std::fs::write(dir.join("htpasswd-hashes"), format!("{apr1}\n{bcrypt}\n"))?;
    let middlewares = format!(
        "    apr1:\n      basicAuth:\n        users: ['{apr1}']\n\
         \x20   bcrypt:\n      basicAuth:\n        users: ['{bcrypt}']\n\
         \x20   rewrite:\n      replacePathRegex:\n        regex: '^/(.*)'\n        replacement: '/rewritten/$1'\n\
         \x20   ratelimit:\n      rateLimit:\n        average: 100000000\n        burst: 100000000\n\
         \x20   compress:\n      compress: {{}}\n"
    );
    let auth = "Authorization: Basic YmVuY2g6YmVuY2g=".to_string();
    let gzip = "Accept-Encoding: gzip".to_string();
    let table: [(&str, &str, &str, &str, Vec<String>); 7] = [
        ("none", "none", "", "/", vec![]),
        ("basicAuth (apr1)", "apr1", "apr1", "/", vec![auth.clone()]),
        (
            "basicAuth (bcrypt, cost 10)",
            "bcrypt",
            "bcrypt",
            "/",
            vec![auth],
        ),
        ("replacePathRegex", "rewrite", "rewrite", "/", vec![]),
        (
            "rateLimit (not limiting)",
            "ratelimit",
            "ratelimit",
            "/",
            vec![],
        ),
        (
            "none, 4 KiB body, gzip accepted",
            "none",
            "",
            "/big",
            vec![gzip.clone()],
        ),
        (
            "compress, 4 KiB body, gzip",
            "compress",
            "compress",
            "/big",
            vec![gzip],
        ),
    ];
    let mut routers = Vec::new();
    let mut variants = Vec::new();
    for (label, host, middleware, path, headers) in table {
        let host = format!("mw-{host}.bench");
        if !routers
            .iter()
            .any(|(n, _, _): &(String, String, Vec<String>)| n == &host.replace('.', "-"))
        {
            let chain = if middleware.is_empty() {
                vec![]
            } else {
                vec![middleware.to_string()]
            };
            routers.push((host.replace('.', "-"), format!("Host(`{host}`)"), chain));
        }
        variants.push((label.to_string(), host, path.to_string(), headers));
    }
    Ok((
        sluice_dynamic(backend, routers.into_iter(), &middlewares),
        variants,
    ))
}

fn htpasswd(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("htpasswd")
        .args(args)
        .output()
        .context("running htpasswd")?;
    if !output.status.success() {
        bail!("htpasswd {} failed", args.join(" "));
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

/// One load run with the proxy's CPU time and memory around it.
fn measure(target: &Target, tool: Tool, seconds: u64) -> anyhow::Result<Sample> {
    let before = target.measured_pid.map(contenders::cpu_ticks);
    let load = match tool {
        Tool::Wrk => load::wrk(target, seconds)?,
        Tool::H2load => load::h2load(target, seconds)?.unwrap_or_default(),
    };
    let cpu_seconds = target
        .measured_pid
        .zip(before)
        .map(|(pid, before)| contenders::cpu_ticks(pid).saturating_sub(before) as f64 / 100.0);
    let rss_kib = target.measured_pid.map(contenders::memory_kib);
    // Let sockets in TIME_WAIT and the proxy settle a moment between runs.
    std::thread::sleep(Duration::from_millis(500));
    Ok(Sample {
        load,
        cpu_seconds,
        rss_kib,
    })
}

fn on_path(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Installs missing tools with apt-get; a package this Debian lacks is noted, not fatal
/// (except for the load generators).
fn install_tools(results: &mut Results) -> anyhow::Result<()> {
    let mut updated = false;
    for (command, package) in TOOLS {
        if on_path(command) {
            continue;
        }
        if !updated {
            run_step("apt-get", &["update", "-qq"])?;
            updated = true;
        }
        let available = Command::new("apt-cache")
            .args(["policy", package])
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string();
                text.contains("Candidate:") && !text.contains("Candidate: (none)")
            })
            .unwrap_or(false);
        if available {
            run_step("apt-get", &["install", "-y", "-qq", package])?;
        }
        if !on_path(command) {
            if matches!(*command, "wrk" | "h2load" | "nginx" | "htpasswd") {
                bail!(
                    "`{command}` (Debian package `{package}`) is required and could not be installed"
                );
            }
            results.notes.push(format!(
                "Debian package `{package}` is not available here: `{command}` skipped."
            ));
        }
    }
    Ok(())
}

/// Waits for `child`, started at `started`, polling every `poll`; once it has
/// run for `bound` it is killed and the error names `what`.
pub(crate) fn wait_bounded(
    child: &mut std::process::Child,
    started: std::time::Instant,
    bound: Duration,
    poll: Duration,
    what: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} ran past {bound:?} and was stopped");
        }
        std::thread::sleep(poll);
    }
}
