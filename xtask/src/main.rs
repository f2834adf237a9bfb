//! `cargo xtask`: the project's own commands, in plain Rust.
//!
//! - `cargo xtask up`: builds Sluice and runs the demo: a backend, the
//!   control plane on `examples/quickstart/`, and one proxy.
//! - `cargo xtask ci`: installs what the tests need when missing, then runs
//!   `cargo fmt --check`, clippy with `-D warnings`, and every test.
//! - `cargo xtask bench [--quick]`: Sluice against nginx, HAProxy and Caddy;
//!   writes `docs/benchmarks/`.
//! - `cargo xtask bench-kubernetes [--apps N]`: the Kubernetes provider with
//!   5,000 Ingresses, Services and EndpointSlices; writes
//!   `docs/benchmarks/kubernetes.md`.

mod backend;
mod bench;
mod bench_kubernetes;
mod ci;
mod up;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  up     run the demo: backend + control plane (examples/quickstart) + proxy
  ci     install test prerequisites if missing, then fmt check, clippy, all tests
  bench  [--quick] benchmark Sluice against nginx, HAProxy and Caddy (docs/benchmarks/)
  bench-kubernetes [--apps N]
         5,000 Ingresses + Services + EndpointSlices: control plane memory, churn delta
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("up") => up::run(),
        Some("ci") => ci::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("bench-kubernetes") => bench_kubernetes::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// A command that does not inherit what `cargo run` set for xtask itself.
/// Build scripts (ring's among them) rerun when `CARGO_MANIFEST_DIR` or
/// `CARGO_PKG_NAME` differ, so a nested `cargo build` would otherwise
/// rebuild them and everything above them after every plain `cargo build`.
fn command(program: &str) -> Command {
    const SET_FOR_XTASK: [&str; 5] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
    ];
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let inherited = name
            .to_str()
            .is_some_and(|name| SET_FOR_XTASK.iter().any(|prefix| name.starts_with(prefix)));
        if inherited {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a command from the workspace root, failing when it fails.
fn run_step(program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = command(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
