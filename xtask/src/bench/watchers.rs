//! Simulated proxies: `snapshot-watch` (integration-tests, release build)
//! holding one or many `Watch` streams to a control plane, its output lines
//! read back here.
//!
//! Its lines (see `integration-tests/src/bin/snapshot-watch.rs`):
//! - one stream: `update version=.. totals=routers:N,.. upserts=.. bytes=N`;
//! - `--streams N`: `recv stream=I version=.. at_us=.. bytes=.. full=..
//!   routers=.. removals=.. names=a@file,b@file`, and `ready streams=N`
//!   once every stream has its first update.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::contenders::{Process, release_bin};

/// A running `snapshot-watch`; dropping it stops it.
pub(crate) struct Watchers {
    process: Process,
    lines: Receiver<String>,
}

impl Watchers {
    /// Connects `streams` streams (`None`: the single-stream mode) as nodes
    /// named after `node`; stderr goes to `dir/<node>.log`.
    pub(crate) fn start(
        dir: &Path,
        grpc_url: &str,
        node: &str,
        streams: Option<usize>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(release_bin("snapshot-watch"));
        command.args([grpc_url, node]);
        if let Some(count) = streams {
            command.args(["--streams", &count.to_string()]);
        }
        let (process, stdout) = Process::spawn_piped(
            &format!("snapshot-watch ({node})"),
            &mut command,
            &dir.join(format!("{node}.log")),
        )?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self { process, lines })
    }

    /// The next line, or `None` once `deadline` has passed.
    pub(crate) fn next_line(&mut self, deadline: Instant) -> anyhow::Result<Option<String>> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                self.process.check_running()?;
                bail!("{} closed its output", self.process.name)
            }
        }
    }

    /// Reads lines until one satisfies `accept`, within `within`.
    pub(crate) fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        mut accept: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        while let Some(line) = self.next_line(deadline)? {
            if accept(&line) {
                return Ok(line);
            }
        }
        bail!("{}: no {what} within {within:?}", self.process.name)
    }

    /// Discards the lines already printed.
    pub(crate) fn drain(&mut self) {
        while self.lines.try_recv().is_ok() {}
    }
}

/// The value of `key=value` in a line of space-separated pairs.
pub(crate) fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// `field` parsed as a number.
pub(crate) fn number(line: &str, key: &str) -> Option<u64> {
    field(line, key)?.parse().ok()
}

/// The count for `kind` in a `kind:count,...` field (`totals`, `upserts`).
pub(crate) fn count(line: &str, key: &str, kind: &str) -> Option<u64> {
    field(line, key)?.split(',').find_map(|pair| {
        let (name, count) = pair.split_once(':')?;
        (name == kind).then(|| count.parse().ok())?
    })
}

/// Whether a `recv` line's `names` holds router `name` (any provider).
pub(crate) fn carries_router(line: &str, name: &str) -> bool {
    field(line, "names").is_some_and(|names| {
        names
            .split(',')
            .any(|qualified| qualified.split('@').next() == Some(name))
    })
}

/// Waits until `snapshot-watch --streams` says every stream has its first update.
pub(crate) fn wait_ready(watchers: &mut Watchers, within: Duration) -> anyhow::Result<()> {
    watchers
        .wait_for(within, "`ready` line", |line| line.starts_with("ready "))
        .map(drop)
        .context("waiting for every simulated watcher's first update")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_recv_and_update_lines() {
        let recv = "recv stream=7 version=12-ab at_us=1700000000123456 bytes=321 full=false \
                    routers=1 removals=0 names=added3@file";
        assert_eq!(field(recv, "stream"), Some("7"));
        assert_eq!(number(recv, "at_us"), Some(1_700_000_000_123_456));
        assert!(carries_router(recv, "added3"));
        assert!(!carries_router(recv, "added"));
        let update = "update version=3 base=2 full=false upserts=routers:1 removals=0 \
                      totals=routers:10000,services:1 changed=1 changes=- bytes=250";
        assert_eq!(count(update, "totals", "routers"), Some(10_000));
        assert_eq!(count(update, "upserts", "services"), None);
        assert_eq!(number(update, "bytes"), Some(250));
    }
}
