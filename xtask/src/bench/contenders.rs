//! The processes a benchmark runs: the fixed backend (nginx answering `ok`),
//! the proxies under test (nginx, HAProxy, Caddy, Sluice) with their
//! generated configurations, and the bookkeeping that measures them (CPU
//! time and RSS from `/proc`) and stops them (by the PIDs started here, also
//! on error paths: [`Process`] stops its process tree when dropped).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A 4 KiB, compressible body served by the backend on `/big` (for Compress).
pub(crate) fn big_body() -> String {
    "sluice benchmark payload, compressible text. ".repeat(92)[..4096].to_string()
}

/// A free port on 127.0.0.1 (bound, then released for the process to take).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A process started by the benchmark; dropping it stops it and its children.
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
}

impl Process {
    pub(crate) fn spawn(name: &str, command: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        Ok(Self {
            name: name.to_string(),
            child,
        })
    }

    /// Starts `command` with its stdout piped back (returned) and its stdin
    /// piped and held open until the process is dropped; stderr goes to `log`.
    pub(crate) fn spawn_piped(
        name: &str,
        command: &mut Command,
        log: &Path,
    ) -> anyhow::Result<(Self, ChildStdout)> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        Ok((
            Self {
                name: name.to_string(),
                child,
            },
            stdout,
        ))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited during start-up ({status})", self.name);
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // nginx workers outlive a SIGKILLed master: ask the root to stop, then
        // kill whatever of the tree (as seen now) is left.
        let tree = process_tree(self.pid());
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in tree.into_iter().skip(1) {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// `pid` and all its descendants, `pid` first.
pub(crate) fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = stat_fields(child) {
                // After `comm`: state, ppid, ...
                if let Some(ppid) = fields.get(1).and_then(|s| s.parse::<u32>().ok()) {
                    parents.push((child, ppid));
                }
            }
        }
    }
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        index += 1;
    }
    tree
}

/// The fields of `/proc/<pid>/stat` after the `(comm)` field.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process tree, in clock ticks (USER_HZ, 100 on Linux).
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .filter_map(stat_fields)
        // utime and stime are fields 14 and 15; 12 and 13 counted after comm.
        .map(|f| {
            f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

/// (VmRSS, VmHWM) summed over a process tree, in KiB.
pub(crate) fn memory_kib(pid: u32) -> (u64, u64) {
    let mut rss = 0;
    let mut hwm = 0;
    for pid in process_tree(pid) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        for line in status.lines() {
            let value = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                rss += value();
            } else if line.starts_with("VmHWM:") {
                hwm += value();
            }
        }
    }
    (rss, hwm)
}

/// One GET over a fresh connection (`Connection: close`); the status code.
pub(crate) fn http_status(
    address: SocketAddr,
    host: &str,
    path: &str,
    headers: &[String],
    timeout: Duration,
) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        let _ = write!(request, "{header}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))
}

/// A load target: where to send requests and what measures its CPU and memory.
pub(crate) struct Target {
    pub(crate) name: String,
    /// HTTP/1.1 listener.
    pub(crate) h1: SocketAddr,
    /// h2c (prior knowledge) listener, when the contender offers one.
    pub(crate) h2: Option<SocketAddr>,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<String>,
    /// The process measured (with its children); `None` for the direct ceiling.
    pub(crate) measured_pid: Option<u32>,
}

impl Target {
    pub(crate) fn url(&self, address: SocketAddr) -> String {
        format!("http://{address}{}", self.path)
    }

    /// Waits until a request answers 200, bounded; fails if a process died.
    pub(crate) fn wait_ready(
        &self,
        processes: &mut [&mut Process],
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            for process in processes.iter_mut() {
                process.check_running()?;
            }
            let status = http_status(
                self.h1,
                &self.host,
                &self.path,
                &self.headers,
                Duration::from_secs(2),
            );
            if matches!(status, Ok(200)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer 200 on {} within {within:?} (last: {status:?})",
                    self.name,
                    self.h1
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// The nginx `http {}` preamble shared by the backend and the nginx proxy.
fn nginx_main(dir: &Path, name: &str) -> String {
    let d = dir.display();
    // As root, workers would switch to `nobody`: keep them the current user.
    let user = if running_as_root() {
        "user root root;\n"
    } else {
        ""
    };
    format!(
        "{user}worker_processes auto;\ndaemon off;\npid {d}/{name}.pid;\n\
         error_log {d}/{name}-error.log warn;\n\
         events {{ worker_connections 8192; }}\n"
    )
}

fn nginx_http_common(dir: &Path, name: &str) -> String {
    let d = dir.display();
    format!(
        "access_log off;\nkeepalive_requests 1000000;\nkeepalive_timeout 60s;\n\
         client_body_temp_path {d}/{name}-body;\nproxy_temp_path {d}/{name}-proxy;\n\
         fastcgi_temp_path {d}/{name}-fastcgi;\nuwsgi_temp_path {d}/{name}-uwsgi;\n\
         scgi_temp_path {d}/{name}-scgi;\n"
    )
}

fn nginx_command(dir: &Path, config: &Path) -> Command {
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(config)
        .arg("-e")
        .arg(dir.join("nginx-startup-error.log"));
    command
}

/// The fixed backend: nginx answering `ok` (and a 4 KiB file on `/big`), all cores.
pub(crate) fn start_backend(dir: &Path) -> anyhow::Result<(Process, Target)> {
    let (h1, h2) = (free_port()?, free_port()?);
    // A file: nginx caps a config token at 4 KiB.
    let big = dir.join("big.txt");
    std::fs::write(&big, big_body())?;
    let config = format!(
        "{}http {{\n{}default_type text/plain;\n\
         server {{\n listen 127.0.0.1:{h1};\n listen 127.0.0.1:{h2} http2;\n\
         location / {{ return 200 \"ok\"; }}\n location = /big {{ alias {}; }}\n}}\n}}\n",
        nginx_main(dir, "backend"),
        nginx_http_common(dir, "backend"),
        big.display()
    );
    let path = dir.join("backend-nginx.conf");
    std::fs::write(&path, config)?;
    let mut process = Process::spawn(
        "backend (nginx)",
        &mut nginx_command(dir, &path),
        &dir.join("backend.out"),
    )?;
    let target = Target {
        name: "direct (no proxy)".into(),
        h1: loopback(h1),
        h2: Some(loopback(h2)),
        host: "127.0.0.1".into(),
        path: "/".into(),
        headers: Vec::new(),
        measured_pid: None,
    };
    target.wait_ready(&mut [&mut process], Duration::from_secs(15))?;
    Ok((process, target))
}

fn proxy_target(name: &str, h1: u16, h2: Option<u16>, pid: u32) -> Target {
    Target {
        name: name.into(),
        h1: loopback(h1),
        h2: h2.map(loopback),
        host: "127.0.0.1".into(),
        path: "/".into(),
        headers: Vec::new(),
        measured_pid: Some(pid),
    }
}

/// nginx as a reverse proxy: all cores, keep-alive upstream, h2c on a second port.
pub(crate) fn start_nginx(dir: &Path, backend: SocketAddr) -> anyhow::Result<(Process, Target)> {
    let (h1, h2) = (free_port()?, free_port()?);
    let config = format!(
        "{}http {{\n{}upstream backend {{ server {backend}; keepalive 128; keepalive_requests 1000000; }}\n\
         server {{\n listen 127.0.0.1:{h1};\n listen 127.0.0.1:{h2} http2;\n\
         location / {{\n  proxy_pass http://backend;\n  proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\";\n }}\n}}\n}}\n",
        nginx_main(dir, "nginx-proxy"),
        nginx_http_common(dir, "nginx-proxy"),
    );
    let path = dir.join("nginx-proxy.conf");
    std::fs::write(&path, config)?;
    let mut process = Process::spawn(
        "nginx",
        &mut nginx_command(dir, &path),
        &dir.join("nginx-proxy.out"),
    )?;
    let target = proxy_target("nginx", h1, Some(h2), process.pid());
    target.wait_ready(&mut [&mut process], Duration::from_secs(15))?;
    Ok((process, target))
}

/// HAProxy: one process, a thread per core (its default), connection reuse.
pub(crate) fn start_haproxy(dir: &Path, backend: SocketAddr) -> anyhow::Result<(Process, Target)> {
    let (h1, h2) = (free_port()?, free_port()?);
    let d = dir.display();
    let config = format!(
        "global\n  pidfile {d}/haproxy.pid\n  maxconn 4096\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n\
         timeout server 60s\n  http-reuse always\n\
         frontend fe\n  bind 127.0.0.1:{h1}\n  bind 127.0.0.1:{h2} proto h2\n\
         default_backend be\n\
         backend be\n  server s1 {backend}\n"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config)?;
    let mut process = Process::spawn(
        "haproxy",
        Command::new("haproxy").arg("-db").arg("-f").arg(&path),
        &dir.join("haproxy.out"),
    )?;
    let target = proxy_target("HAProxy", h1, Some(h2), process.pid());
    target.wait_ready(&mut [&mut process], Duration::from_secs(15))?;
    Ok((process, target))
}

/// Caddy: `reverse_proxy` (keep-alive by default), h1 + h2c on one port.
pub(crate) fn start_caddy(dir: &Path, backend: SocketAddr) -> anyhow::Result<(Process, Target)> {
    let h1 = free_port()?;
    let config = format!(
        "{{\n\tadmin off\n\tauto_https off\n\
         \tservers {{\n\t\tprotocols h1 h2c\n\t}}\n}}\n\
         http://:{h1} {{\n\tbind 127.0.0.1\n\treverse_proxy {backend}\n}}\n"
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, config)?;
    let caddy_home = dir.join("caddy-home");
    std::fs::create_dir_all(&caddy_home)?;
    let mut process = Process::spawn(
        "caddy",
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", &caddy_home)
            .env("XDG_DATA_HOME", &caddy_home)
            .env("XDG_CONFIG_HOME", &caddy_home),
        &dir.join("caddy.out"),
    )?;
    let target = proxy_target("Caddy", h1, Some(h1), process.pid());
    target.wait_ready(&mut [&mut process], Duration::from_secs(15))?;
    Ok((process, target))
}

/// A Sluice control plane on a file provider directory, without a proxy.
pub(crate) struct ControlPlane {
    pub(crate) process: Process,
    pub(crate) dynamic_dir: PathBuf,
    /// The static configuration file (`--configFile`).
    pub(crate) static_path: PathBuf,
    /// `http://127.0.0.1:PORT` of the snapshot service.
    pub(crate) grpc_url: String,
    grpc: SocketAddr,
    /// The entry point `web` the snapshot declares (bound by proxies only).
    web: SocketAddr,
}

impl ControlPlane {
    /// Starts a control plane serving `dynamic_yaml` (one file, `routes.yml`,
    /// in `dir/name/dynamic/`); `debounce` is `(quietPeriod, maxDelay)`,
    /// `None` for the defaults (100ms, 1s).
    pub(crate) fn start(
        dir: &Path,
        name: &str,
        dynamic_yaml: &str,
        debounce: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let (static_path, dynamic_dir, web, grpc) =
            write_config(dir, name, dynamic_yaml, debounce)?;
        let process = Process::spawn(
            &format!("sluice-control-plane ({name})"),
            Command::new(release_bin("sluice-control-plane"))
                .arg("run")
                .arg("--configFile")
                .arg(&static_path),
            &dir.join(name).join("control-plane.log"),
        )?;
        Ok(Self {
            process,
            dynamic_dir,
            static_path,
            grpc_url: format!("http://{grpc}"),
            grpc,
            web,
        })
    }

    /// Waits until the snapshot service accepts connections, bounded.
    pub(crate) fn wait_listening(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            self.process.check_running()?;
            if TcpStream::connect_timeout(&self.grpc, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {} within {within:?}",
                    self.process.name,
                    self.grpc
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A binary of the release build.
pub(crate) fn release_bin(name: &str) -> PathBuf {
    crate::workspace_root().join("target/release").join(name)
}

/// Writes a control plane's static configuration (file provider on
/// `dir/name/dynamic/`, holding `routes.yml`): (static file, dynamic
/// directory, `web` entry point, gRPC address).
pub(crate) fn write_config(
    dir: &Path,
    name: &str,
    dynamic_yaml: &str,
    debounce: Option<(&str, &str)>,
) -> anyhow::Result<(PathBuf, PathBuf, SocketAddr, SocketAddr)> {
    let stack_dir = dir.join(name);
    let dynamic_dir = stack_dir.join("dynamic");
    std::fs::create_dir_all(&dynamic_dir)?;
    std::fs::write(dynamic_dir.join("routes.yml"), dynamic_yaml)?;
    let (web, grpc, api) = (free_port()?, free_port()?, free_port()?);
    let debounce = debounce
        .map(|(quiet, max)| {
            format!("  debounce:\n    quietPeriod: \"{quiet}\"\n    maxDelay: \"{max}\"\n")
        })
        .unwrap_or_default();
    let static_yaml = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:{web}\"\n\
         providers:\n  file:\n    directory: \"{}\"\n    watch: true\n\
         log:\n  level: WARN\n\
         controlPlane:\n  grpcAddress: \"127.0.0.1:{grpc}\"\n  apiAddress: \"127.0.0.1:{api}\"\n{debounce}",
        dynamic_dir.display()
    );
    let static_path = stack_dir.join("sluice.yml");
    std::fs::write(&static_path, static_yaml)?;
    Ok((static_path, dynamic_dir, loopback(web), loopback(grpc)))
}

/// A Sluice control plane + one proxy on a file provider directory.
pub(crate) struct SluiceStack {
    pub(crate) proxy_address: SocketAddr,
    pub(crate) dynamic_dir: PathBuf,
    pub(crate) control_plane: Process,
    pub(crate) proxy: Process,
}

impl SluiceStack {
    /// Starts a stack serving `dynamic_yaml` (one file); `debounce` is
    /// `(quietPeriod, maxDelay)`, `None` for the defaults (100ms, 1s).
    pub(crate) fn start(
        dir: &Path,
        name: &str,
        dynamic_yaml: &str,
        debounce: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let control_plane = ControlPlane::start(dir, name, dynamic_yaml, debounce)?;
        let admin = free_port()?;
        let proxy = Process::spawn(
            &format!("sluice-proxy ({name})"),
            Command::new(release_bin("sluice-proxy")).args([
                "run",
                "--control-plane",
                &control_plane.grpc_url,
                "--node-id",
                &format!("bench-{name}"),
                "--admin-address",
                &format!("127.0.0.1:{admin}"),
                "--log-level",
                "warn",
            ]),
            &dir.join(name).join("proxy.log"),
        )?;
        Ok(Self {
            proxy_address: control_plane.web,
            dynamic_dir: control_plane.dynamic_dir,
            control_plane: control_plane.process,
            proxy,
        })
    }

    /// A load target on this stack's proxy, waited for until it answers 200.
    pub(crate) fn target(
        &mut self,
        name: &str,
        host: &str,
        path: &str,
        headers: &[String],
    ) -> anyhow::Result<Target> {
        let target = Target {
            name: name.into(),
            h1: self.proxy_address,
            h2: Some(self.proxy_address),
            host: host.into(),
            path: path.into(),
            headers: headers.to_vec(),
            measured_pid: Some(self.proxy.pid()),
        };
        target.wait_ready(
            &mut [&mut self.control_plane, &mut self.proxy],
            Duration::from_secs(90),
        )?;
        Ok(target)
    }
}

/// The file-provider YAML for one service to `backend` and `routers`
/// (name, rule, middlewares), plus raw `middlewares` YAML.
pub(crate) fn sluice_dynamic(
    backend: SocketAddr,
    routers: impl Iterator<Item = (String, String, Vec<String>)>,
    middlewares: &str,
) -> String {
    let mut yaml = String::from("http:\n  routers:\n");
    for (name, rule, chain) in routers {
        let _ = write!(
            yaml,
            "    {name}:\n      rule: \"{rule}\"\n      entryPoints: [web]\n      service: backend\n"
        );
        if !chain.is_empty() {
            let _ = writeln!(yaml, "      middlewares: [{}]", chain.join(", "));
        }
    }
    let _ = write!(
        yaml,
        "  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: \"http://{backend}\"\n"
    );
    if !middlewares.is_empty() {
        yaml.push_str("  middlewares:\n");
        yaml.push_str(middlewares);
    }
    yaml
}
