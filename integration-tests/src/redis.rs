//! A real Redis server (Debian's `redis-server`) on a free loopback port,
//! without persistence; `redis-cli` writes keys as a user would.
//!
//! It starts with keyspace notifications on (`--notify-keyspace-events
//! KEA`), as Traefik's Redis provider requires;
//! [`RedisServer::start_without_notifications`] leaves them off.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ChildProcess, eventually, free_port, run_command};

/// A running `redis-server`; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    process: Option<ChildProcess>,
    port: u16,
    notifications: bool,
    dir: TempDir,
}

impl RedisServer {
    /// Starts Redis with keyspace notifications and waits until it answers
    /// `PING`.
    pub async fn start() -> Self {
        Self::start_with(true).await
    }

    /// Starts Redis with keyspace notifications off (its default).
    pub async fn start_without_notifications() -> Self {
        Self::start_with(false).await
    }

    async fn start_with(notifications: bool) -> Self {
        let mut redis = Self {
            process: None,
            port: free_port(),
            notifications,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        let events = if self.notifications { "KEA" } else { "" };
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--dir",
            &self.dir.path().display().to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--notify-keyspace-events",
            events,
        ]
        .map(str::to_owned);
        // Debian's `redis-server`; `cargo xtask ci` installs it.
        self.process = Some(ChildProcess::spawn(
            "redis-server",
            Path::new("redis-server"),
            &args,
        ));
        eventually("Redis to answer PING", Duration::from_secs(30), || async {
            let output = self.cli_output(&["PING"]);
            let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if answer == "PONG" {
                Ok(())
            } else {
                Err(format!(
                    "redis-cli PING: {answer} {}",
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        })
        .await;
    }

    /// `127.0.0.1:PORT`, as `endpoints` take it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `SET key value`.
    pub fn set(&self, key: &str, value: &str) {
        self.cli(&["SET", key, value]);
    }

    /// `DEL` of every key starting with `prefix` (found with `SCAN`).
    pub fn delete_prefix(&self, prefix: &str) {
        let pattern = format!("{prefix}*");
        let output = self.cli_output(&["--scan", "--pattern", &pattern]);
        let keys = String::from_utf8_lossy(&output.stdout).into_owned();
        let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
        if keys.is_empty() {
            return;
        }
        let mut args = vec!["DEL"];
        args.extend(keys);
        self.cli(&args);
    }

    /// Runs a command with `redis-cli` and checks that it did not fail.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = self.cli_output(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && !stdout.starts_with("ERR"),
            "redis-cli {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn cli_output(&self, args: &[&str]) -> std::process::Output {
        let port = self.port.to_string();
        let mut all = vec!["-h", "127.0.0.1", "-p", &port];
        all.extend_from_slice(args);
        // Debian's `redis-tools`, installed with `redis-server`.
        run_command("redis-cli", &all)
    }

    /// Kills Redis with SIGKILL, as a crash would; its keys are lost.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.signal("KILL");
            process.wait_exit(Duration::from_secs(10));
        }
    }

    /// Starts Redis again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}
