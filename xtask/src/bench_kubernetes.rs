//! `cargo xtask bench-kubernetes [--apps N]`: the Kubernetes provider at
//! the scale of issue 5 — 5,000 Ingresses + 5,000 Services + their
//! EndpointSlices load with the control plane under 300 MiB, and a Pod
//! churn in one Service yields a delta for that Service only. Writes
//! `docs/benchmarks/kubernetes.md`.
//!
//! Three release processes on 127.0.0.1, all started and stopped here:
//!
//! - `fake-kubernetes` (integration-tests): the harness's fake API server
//!   holding `N` generated applications (Ingress, Service, EndpointSlice of
//!   three Pods each, with the labels, annotations and `managedFields` a
//!   real API server returns); on `churn <i>` it replaces a Pod of
//!   application `i`.
//! - `sluice-control-plane` with `providers.kubernetesIngress.endpoint`
//!   pointing at it.
//! - `snapshot-watch` (integration-tests): a `Watch` client playing a proxy;
//!   it ACKs every update and prints what each carried and which content
//!   versions it changed.
//!
//! Measured: time from the control plane's start to a proxy holding all `N`
//! routers, the control plane's VmRSS/VmHWM (`/proc/<pid>/status`) and CPU
//! time then, and for one Pod churn the delta's composition and the time
//! from the API server's event to the proxy's update.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{run_step, workspace_root};

/// Applications generated unless `--apps` says otherwise (issue 5).
const DEFAULT_APPS: usize = 5_000;

/// The memory target of issue 5, MiB.
const TARGET_MIB: u64 = 300;

/// How long the whole cluster may take to reach the proxy.
const LOAD_DEADLINE: Duration = Duration::from_secs(600);

/// How long one churn may take to reach the proxy.
const CHURN_DEADLINE: Duration = Duration::from_secs(60);

/// Pod churns, one after the other, each in another Service: more than
/// the control plane's default history (16 snapshots), so memory is
/// measured once that history is full.
const DEFAULT_CHURNS: usize = 24;

/// Child processes, killed when dropped.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process's stdout, line by line, read on a thread.
struct Lines {
    receiver: Receiver<String>,
    what: &'static str,
}

impl Lines {
    fn new(stdout: impl Read + Send + 'static, what: &'static str) -> Self {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { receiver, what }
    }

    /// The next line satisfying `accept`, within `deadline` from now.
    fn wait_for(
        &self,
        deadline: Duration,
        mut accept: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) if accept(&line) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("{}: nothing expected within {deadline:?}", self.what)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("{} exited", self.what)
                }
            }
        }
    }
}

/// Memory and CPU of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    hwm_kib: u64,
    cpu_seconds: f64,
}

impl Usage {
    fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
                .with_context(|| format!("{name} in /proc/{pid}/status"))
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14 and stime 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_ticks = ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0);
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            cpu_seconds: cpu_ticks as f64 / clock_ticks() as f64,
        })
    }
}

fn clock_ticks() -> u64 {
    command_output("getconf", &["CLK_TCK"])
        .and_then(|ticks| ticks.parse().ok())
        .unwrap_or(100)
}

/// One `update ...` line of `snapshot-watch`, as `key=value` pairs.
#[derive(Debug, Clone)]
struct Update {
    line: String,
}

impl Update {
    fn parse(line: &str) -> Option<Self> {
        line.strip_prefix("update ").map(|rest| Self {
            line: rest.to_owned(),
        })
    }

    fn get(&self, key: &str) -> &str {
        self.line
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    }

    /// `kind:count` pairs of a field (`totals`, `upserts`).
    fn counts(&self, key: &str) -> Vec<(String, usize)> {
        self.get(key)
            .split(',')
            .filter_map(|pair| {
                let (kind, count) = pair.split_once(':')?;
                Some((kind.to_owned(), count.parse().ok()?))
            })
            .collect()
    }

    fn total(&self, kind: &str) -> usize {
        self.counts("totals")
            .into_iter()
            .find_map(|(name, count)| (name == kind).then_some(count))
            .unwrap_or(0)
    }
}

/// What was measured.
struct Figures {
    settings: Settings,
    objects: usize,
    populate: Duration,
    load: Duration,
    loaded: Update,
    loaded_usage: Usage,
    snapshot_version: String,
    churns: Vec<Churn>,
    /// After the first churn.
    first_churn_usage: Usage,
    /// After the last churn.
    after_usage: Usage,
}

/// One Pod replaced and the update it caused.
struct Churn {
    /// `namespace/name resourceVersion=N`.
    churned: String,
    delta: Update,
    /// From writing the churn to the update reaching the watch client.
    latency: Duration,
}

/// What to measure; the defaults are issue 5's.
#[derive(Debug, Clone, Copy)]
struct Settings {
    apps: usize,
    churns: usize,
    /// `controlPlane.historySize`; the control plane's default when `None`.
    history_size: Option<usize>,
}

impl Settings {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut settings = Self {
            apps: DEFAULT_APPS,
            churns: DEFAULT_CHURNS,
            history_size: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value: usize = args
                .next()
                .and_then(|value| value.parse().ok())
                .with_context(|| format!("{flag} needs a number\n\n{USAGE}"))?;
            match flag.as_str() {
                "--apps" if value > 0 => settings.apps = value,
                "--churns" if value > 0 => settings.churns = value,
                "--history-size" => settings.history_size = Some(value),
                _ => bail!("unexpected `{flag} {value}`\n\n{USAGE}"),
            }
        }
        Ok(settings)
    }

    /// The flags that differ from the defaults, for the report.
    fn flags(&self) -> String {
        let mut flags = String::new();
        if self.apps != DEFAULT_APPS {
            let _ = write!(flags, " --apps {}", self.apps);
        }
        if self.churns != DEFAULT_CHURNS {
            let _ = write!(flags, " --churns {}", self.churns);
        }
        if let Some(size) = self.history_size {
            let _ = write!(flags, " --history-size {size}");
        }
        flags
    }
}

const USAGE: &str =
    "usage: cargo xtask bench-kubernetes [--apps N] [--churns N] [--history-size N]";

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let settings = Settings::parse(args)?;
    run_step(
        "cargo",
        &["build", "--release", "-p", "sluice-control-plane", "--bins"],
    )?;
    run_step(
        "cargo",
        &["build", "--release", "-p", "integration-tests", "--bins"],
    )?;
    let figures = measure(settings)?;
    let report = report(&figures);
    let path = workspace_root().join("docs/benchmarks/kubernetes.md");
    std::fs::create_dir_all(path.parent().expect("docs/benchmarks"))?;
    std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: wrote {}", path.display());
    Ok(())
}

fn measure(settings: Settings) -> anyhow::Result<Figures> {
    let apps = settings.apps;
    let root = workspace_root();
    let bin = root.join("target/release");
    let dir = root.join("target/bench-kubernetes");
    std::fs::create_dir_all(&dir)?;
    let mut children = Children::default();

    // The API server, populated before the control plane starts.
    let api_port = free_port()?;
    let started = Instant::now();
    let mut fake = Command::new(bin.join("fake-kubernetes"))
        .args(["--port", &api_port.to_string(), "--apps", &apps.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting fake-kubernetes")?;
    let mut fake_stdin = fake.stdin.take().context("fake-kubernetes stdin")?;
    let fake_lines = Lines::new(
        fake.stdout.take().context("fake-kubernetes stdout")?,
        "fake-kubernetes",
    );
    children.0.push(fake);
    let listening = fake_lines.wait_for(LOAD_DEADLINE, |line| line.starts_with("listening "))?;
    let populate = started.elapsed();
    let objects = listening
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("objects="))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    eprintln!("xtask: {listening} (populated in {populate:.2?})");

    // The control plane.
    let (grpc_port, api_admin_port, web_port) = (free_port()?, free_port()?, free_port()?);
    let config = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:{web_port}\"\n\
         providers:\n  kubernetesIngress:\n    endpoint: \"http://127.0.0.1:{api_port}\"\n\
         log:\n  level: INFO\n\
         controlPlane:\n  grpcAddress: \"127.0.0.1:{grpc_port}\"\n  \
         apiAddress: \"127.0.0.1:{api_admin_port}\"\n{history}",
        history = settings
            .history_size
            .map(|size| format!("  historySize: {size}\n"))
            .unwrap_or_default(),
    );
    let config_path = dir.join("sluice.yml");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.join("control-plane.log"))?;
    let started = Instant::now();
    let control_plane = Command::new(bin.join("sluice-control-plane"))
        .args(["run", "--configFile", &config_path.display().to_string()])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting sluice-control-plane")?;
    let pid = control_plane.id();
    children.0.push(control_plane);
    let admin = format!("127.0.0.1:{api_admin_port}");
    wait_until(LOAD_DEADLINE, "the control plane's admin API", || {
        http_get(&admin, "/api/version").ok()
    })?;

    // A proxy's view, from the first snapshot on.
    let mut watch = Command::new(bin.join("snapshot-watch"))
        .args([&format!("http://127.0.0.1:{grpc_port}"), "bench-watch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting snapshot-watch")?;
    let _watch_stdin: ChildStdin = watch.stdin.take().context("snapshot-watch stdin")?;
    let updates = Lines::new(
        watch.stdout.take().context("snapshot-watch stdout")?,
        "snapshot-watch",
    );
    children.0.push(watch);
    let loaded = updates.wait_for(LOAD_DEADLINE, |line| {
        Update::parse(line).is_some_and(|update| update.total("routers") >= apps)
    })?;
    let load = started.elapsed();
    let loaded = Update::parse(&loaded).context("an update line")?;
    let loaded_usage = Usage::read(pid)?;
    let version_body = http_get(&admin, "/api/version")?;
    let snapshot_version = json_string(&version_body, "snapshotVersion").unwrap_or_default();
    if snapshot_version != loaded.get("version") {
        bail!(
            "/api/version shows {snapshot_version}, the proxy holds {}",
            loaded.get("version")
        );
    }
    eprintln!(
        "xtask: {} routers in {load:.2?}; VmRSS {} KiB, VmHWM {} KiB",
        loaded.total("routers"),
        loaded_usage.rss_kib,
        loaded_usage.hwm_kib
    );

    // Pods replaced one at a time in different Services, each waited for.
    let mut churns = Vec::with_capacity(settings.churns);
    let mut first_usage = None;
    for round in 0..settings.churns {
        let index = (apps / 2 + round * 97) % apps;
        writeln!(fake_stdin, "churn {index}")?;
        fake_stdin.flush()?;
        let churned_at = Instant::now();
        let churned = fake_lines.wait_for(CHURN_DEADLINE, |line| line.starts_with("churned "))?;
        let delta = updates.wait_for(CHURN_DEADLINE, |line| line.starts_with("update "))?;
        let latency = churned_at.elapsed();
        let delta = Update::parse(&delta).context("an update line")?;
        if first_usage.is_none() {
            first_usage = Some(Usage::read(pid)?);
            eprintln!("xtask: {churned}: update {} in {latency:.2?}", delta.line);
        }
        churns.push(Churn {
            churned: churned.trim_start_matches("churned ").to_owned(),
            delta,
            latency,
        });
    }
    let after_usage = Usage::read(pid)?;
    drop(fake_stdin);
    Ok(Figures {
        settings,
        objects,
        populate,
        load,
        loaded,
        loaded_usage,
        snapshot_version,
        churns,
        first_churn_usage: first_usage.context("at least one churn")?,
        after_usage,
    })
}

/// Polls `check` every 50 ms until it gives a value, for at most `deadline`.
fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Some(value) = check() {
            return Ok(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what}: not ready within {deadline:?}")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The body of `GET path` on `address`, when it answers 200.
fn http_get(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

/// The string value of `"key":"..."` in a flat JSON object.
fn json_string(body: &str, key: &str) -> Option<String> {
    let start = body.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `team-NN-app-NNNNN-` of `team-NN/app-NNNNN resourceVersion=...`: the
/// prefix of that application's service names.
fn service_of(churned: &str) -> String {
    let object = churned.split_whitespace().next().unwrap_or("");
    format!("services:{}-", object.replace('/', "-"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `value` of `key: value` in a `/proc` file.
fn proc_field(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == key).then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The version of `package` in Cargo.lock.
fn locked_version(root: &Path, package: &str) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return version.trim_matches('"').to_owned();
        }
    }
    "unknown".to_owned()
}

fn report(figures: &Figures) -> String {
    let root = workspace_root();
    let hwm = figures.after_usage.hwm_kib;
    let verdict = if hwm < TARGET_MIB * 1024 {
        "met"
    } else {
        "**not met**"
    };
    let first = &figures.churns[0];
    let delta = &first.delta;
    let upserts: Vec<String> = delta
        .counts("upserts")
        .into_iter()
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect();
    let changes = delta.get("changes").replace(';', "`, `");
    // A delta for that Service only: no full state, no removal, one
    // service sent and one content version changed.
    let single = figures
        .churns
        .iter()
        .filter(|churn| {
            churn.delta.get("full") == "false"
                && churn.delta.get("removals") == "0"
                && churn.delta.counts("upserts") == [("services".to_owned(), 1)]
                && churn.delta.get("changed") == "1"
                && churn
                    .delta
                    .get("changes")
                    .contains(&service_of(&churn.churned))
        })
        .count();
    let mut latencies: Vec<f64> = figures
        .churns
        .iter()
        .map(|churn| churn.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty =
        command_output("git", &["status", "--porcelain"]).is_some_and(|status| !status.is_empty());
    let mut text = String::new();
    let _ = write!(
        text,
        "# Kubernetes provider at scale\n\n\
         Issue 5: *5,000 Ingresses + 5,000 Services + their EndpointSlices load with the \
         control plane under 300 MiB; a pod churn in one service yields a delta for that \
         service only.* Measured by `cargo xtask bench-kubernetes`; benchmarks are not tests, \
         this file is written by a run.\n\n\
         ## Figures\n\n\
         | | |\n|---|---|\n\
         | Objects served by the API server | {objects} ({apps} Ingresses, {apps} Services, {apps} EndpointSlices of 3 Pods, 1 IngressClass) |\n\
         | Control plane start to a proxy holding every route | {load:.2} s |\n\
         | Snapshot then | `{version}`: {routers} routers, {services} services |\n\
         | Control plane CPU time to load | {cpu:.2} s |\n\
         | Control plane VmRSS / VmHWM, loaded | {rss} / {hwm_loaded} |\n\
         | Control plane VmRSS / VmHWM after the first churn | {rss_first} / {hwm_first} |\n\
         | Control plane VmRSS / VmHWM after {churns} churns | {rss_after} / {hwm_after} |\n\
         | `controlPlane.historySize` (snapshots kept for deltas) | {history} |\n\
         | Target: peak (VmHWM) under {TARGET_MIB} MiB | {verdict} |\n\
         | First Pod churn | `{churned}` |\n\
         | Its delta | full state: {full}; upserts: {upserts}; removals: {removals} |\n\
         | Content versions it changed | {changed}: `{changes}` |\n\
         | Churns whose delta held their Service only | {single} of {churns} |\n\
         | Churn written to the update received (min / median / max) | {min:.1} / {median:.1} / {max:.1} ms |\n\n",
        objects = figures.objects,
        apps = figures.settings.apps,
        load = figures.load.as_secs_f64(),
        version = figures.snapshot_version,
        routers = figures.loaded.total("routers"),
        services = figures.loaded.total("services"),
        cpu = figures.loaded_usage.cpu_seconds,
        rss = mib(figures.loaded_usage.rss_kib),
        hwm_loaded = mib(figures.loaded_usage.hwm_kib),
        rss_first = mib(figures.first_churn_usage.rss_kib),
        hwm_first = mib(figures.first_churn_usage.hwm_kib),
        churns = figures.churns.len(),
        rss_after = mib(figures.after_usage.rss_kib),
        history = figures
            .settings
            .history_size
            .map_or_else(|| "16 (default)".to_owned(), |size| size.to_string()),
        hwm_after = mib(figures.after_usage.hwm_kib),
        churned = first.churned,
        full = delta.get("full"),
        upserts = if upserts.is_empty() {
            "none".to_owned()
        } else {
            upserts.join(", ")
        },
        removals = delta.get("removals"),
        changed = delta.get("changed"),
        min = latencies[0],
        max = latencies[latencies.len() - 1],
    );
    let _ = write!(
        text,
        "The API server took {populate:.2} s to generate its objects (not counted above).\n\n\
         ## Command\n\n```sh\ncargo xtask bench-kubernetes{apps_flag}\n```\n\n\
         It builds the release binaries, then runs on 127.0.0.1 only: `fake-kubernetes` \
         (integration-tests' fake API server as a process, populated before the control \
         plane starts), `sluice-control-plane` with `providers.kubernetesIngress.endpoint` \
         pointing at it, and `snapshot-watch`, a `Watch` client that plays a proxy (ACKs every \
         update, keeps each resource's content version, prints what every update carried and \
         changed). Memory is `VmRSS`/`VmHWM` of `/proc/<pid>/status` of the control plane when \
         the proxy holds every route, after the first churn and after the last. A churn \
         replaces the first Pod of one application (`churn <i>` on the fake API server's \
         stdin, starting at application {index}, then every 97th), which rewrites one \
         EndpointSlice; each churn waits for its update before the next.\n\n\
         ## Objects\n\n\
         Application *i* is `team-<i mod 50>/app-<i>`: an Ingress (class `sluice`, one host, \
         path `/` Prefix to the Service's port `http`) and a Service (ClusterIP, port 80 → 8080) \
         as `kubectl apply` leaves them — labels, the `kubectl.kubernetes.io/last-applied-configuration` \
         annotation, `managedFields` — and the EndpointSlice the controller keeps for the Service: \
         three ready Pods with node, zone and `targetRef`, owner reference and `managedFields`. \
         The provider stores what the API server returns, so these fields count.\n\n\
         ## Machine and versions\n\n\
         | | |\n|---|---|\n\
         | Date | {date} |\n\
         | CPU | {cpu_model} |\n\
         | CPUs (nproc) | {nproc} |\n\
         | Memory | {memory} |\n\
         | Kernel | {kernel} |\n\
         | Sluice | {sluice} (commit `{commit}`{dirty}) |\n\
         | Rust | {rustc} |\n\
         | kube / k8s-openapi | {kube} / {k8s_openapi} |\n\n\
         ## Limits of the measure\n\n\
         - The fake API server answers a list in one page (a real one pages by 500 with \
         `continue`); the provider receives the same objects either way.\n\
         - One run, no repetition; durations depend on the machine's load.\n\
         - The watch client is a test client, not `sluice-proxy`: the latency is the control \
         plane's (watch event → rebuild → compile → delta on the stream), not a proxy's \
         apply time.\n",
        populate = figures.populate.as_secs_f64(),
        apps_flag = figures.settings.flags(),
        index = figures.settings.apps / 2,
        date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        cpu_model = proc_field("/proc/cpuinfo", "model name"),
        nproc = std::thread::available_parallelism().map_or(0, usize::from),
        memory = proc_field("/proc/meminfo", "MemTotal"),
        kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        sluice = env!("CARGO_PKG_VERSION"),
        dirty = if dirty {
            ", with uncommitted changes"
        } else {
            ""
        },
        rustc = command_output("rustc", &["-V"]).unwrap_or_default(),
        kube = locked_version(&root, "kube"),
        k8s_openapi = locked_version(&root, "k8s-openapi"),
    );
    text
}
