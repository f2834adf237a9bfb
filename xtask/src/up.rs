//! `cargo xtask up`: the whole thing on one machine, in one command.
//!
//! Builds the binaries, starts two demo backends on 127.0.0.1:9081 and
//! :9082, the control plane on `examples/quickstart/sluice.yml` (which
//! routes `localhost:8000` to them) and one proxy, then waits for Ctrl-C and
//! stops what it started.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{backend, run_step, workspace_root};

const BACKENDS: [(&str, &str); 2] = [
    ("127.0.0.1:9081", "backend-1"),
    ("127.0.0.1:9082", "backend-2"),
];

/// Child processes, killed when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn run() -> anyhow::Result<()> {
    run_step(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "sluice-control-plane",
            "-p",
            "sluice-data-plane",
        ],
    )?;
    let root = workspace_root();
    let bin = root.join("target/release");

    for (address, name) in BACKENDS {
        let listener = TcpListener::bind(address)
            .with_context(|| format!("binding the demo backend on {address}"))?;
        backend::spawn(listener, name);
    }

    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(bin.join("sluice-control-plane"))
            .args(["run", "--configFile", "examples/quickstart/sluice.yml"])
            .current_dir(&root)
            .spawn()
            .context("starting sluice-control-plane")?,
    );
    children.0.push(
        Command::new(bin.join("sluice-proxy"))
            .args([
                "run",
                "--control-plane",
                "http://127.0.0.1:7050",
                "--node-id",
                "demo-proxy",
            ])
            .current_dir(&root)
            .spawn()
            .context("starting sluice-proxy")?,
    );

    wait_until_ready("http://127.0.0.1:9901/ready", &mut children)?;
    println!(
        "\nSluice is up.\n\
         \x20 curl http://localhost:8000/            # routed to the demo backends\n\
         \x20 curl http://127.0.0.1:7070/api/rawdata # control-plane admin API\n\
         \x20 curl http://127.0.0.1:7070/api/nodes   # connected proxies\n\
         \x20 grpcurl -plaintext 127.0.0.1:7050 sluice.v1.SnapshotService/GetSnapshot\n\
         Edit examples/quickstart/dynamic/*.yml and the change is live. Ctrl-C stops everything.\n"
    );
    // Ctrl-C reaches the whole process group; otherwise the first process to exit ends the demo.
    loop {
        for child in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a Sluice process exited ({status})");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls the proxy's readiness endpoint with a plain HTTP/1.0 request.
fn wait_until_ready(url: &str, children: &mut Children) -> anyhow::Result<()> {
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for child in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a Sluice process exited during start-up ({status})");
            }
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"GET /ready HTTP/1.0\r\n\r\n");
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the proxy was not ready within 30 s ({url})")
}
