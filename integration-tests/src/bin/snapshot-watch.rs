//! A `Watch` client that plays one proxy, or many, and reports every update,
//! for benchmarks:
//!
//! ```text
//! snapshot-watch http://127.0.0.1:7050 bench-watch
//! snapshot-watch http://127.0.0.1:7050 bench-watch --streams 100
//! ```
//!
//! With one stream (the default) it connects as node `bench-watch`,
//! acknowledges every update, and prints one line per update:
//! `update <DeltaSummary> bytes=<n>` (version, full state or delta, upserts
//! by kind, removals, totals held, content versions changed; `bytes` is the
//! update's encoded protobuf length, what the control plane sent).
//!
//! With `--streams N` it opens `N` streams in this one process, as nodes
//! `bench-watch-0` .. `bench-watch-<N-1>`, each acknowledging every update
//! as soon as it arrives, and prints one line per (stream, update):
//!
//! ```text
//! recv stream=<i> version=<v> at_us=<µs since the Unix epoch> bytes=<n> full=<bool> routers=<n> removals=<n> names=<router,...|->
//! ```
//!
//! `at_us` is read the moment the update arrives, on the wall clock, so a
//! driver on the same machine can subtract the time it wrote a change;
//! `names` lists the routers the update carried when it carried at most
//! 16 (a full state prints `-`). These streams keep no [`SnapshotState`]: a
//! hundred copies of a large state, each cloned per update, would measure
//! this process instead of the control plane. Once every stream has its
//! first update it prints `ready streams=<N>`. Lines waiting together are
//! written together.
//!
//! It exits when stdin closes or a stream ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use integration_tests::{SnapshotState, WatchClient};
use prost::Message;
use sluice_proto::v1::SnapshotUpdate;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const USAGE: &str = "usage: snapshot-watch <grpc-url> [<node-id>] [--streams <N>]";

/// Router names printed per update at most.
const MAX_NAMES: usize = 16;

/// Longer than any benchmark: waiting for the next update never times out.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut url = None;
    let mut node = None;
    let mut streams = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--streams" {
            let count: usize = args
                .next()
                .context(USAGE)?
                .parse()
                .context("--streams takes a number")?;
            if count == 0 {
                bail!("--streams must be at least 1");
            }
            streams = Some(count);
        } else if url.is_none() {
            url = Some(arg);
        } else if node.is_none() {
            node = Some(arg);
        } else {
            bail!("{USAGE}");
        }
    }
    let url = url.context(USAGE)?;
    let node = node.unwrap_or_else(|| "snapshot-watch".to_owned());
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match streams {
        None => {
            let mut client = WatchClient::connect(&url, &node, "").await;
            let mut state = SnapshotState::new();
            loop {
                tokio::select! {
                    line = stdin.next_line() => {
                        if line?.is_none() {
                            return Ok(());
                        }
                    }
                    update = client.next_update_within(FOREVER) => {
                        let Some(update) = update else { continue };
                        let summary = state.apply(&update);
                        client.ack(&update.version).await;
                        println!("update {summary} bytes={}", update.encoded_len());
                    }
                }
            }
        }
        Some(count) => {
            let mut tasks = tokio::task::JoinSet::new();
            let first_updates = Arc::new(AtomicUsize::new(0));
            let (lines, pending_lines) = mpsc::unbounded_channel();
            tasks.spawn(write_lines(pending_lines));
            for stream in 0..count {
                let (url, node) = (url.clone(), format!("{node}-{stream}"));
                let first_updates = Arc::clone(&first_updates);
                let lines = lines.clone();
                tasks.spawn(async move {
                    let mut client = WatchClient::connect(&url, &node, "").await;
                    let mut first = true;
                    loop {
                        let Some(update) = client.next_update_within(FOREVER).await else {
                            continue;
                        };
                        let at = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default();
                        client.ack(&update.version).await;
                        let _ =
                            lines.send(format!("recv stream={stream} {}\n", received(&update, at)));
                        if first {
                            first = false;
                            if first_updates.fetch_add(1, Ordering::SeqCst) + 1 == count {
                                let _ = lines.send(format!("ready streams={count}\n"));
                            }
                        }
                    }
                });
            }
            drop(lines);
            tokio::select! {
                line = async {
                    loop {
                        match stdin.next_line().await {
                            Ok(Some(_)) => continue,
                            other => return other,
                        }
                    }
                } => {
                    line?;
                    Ok(())
                }
                ended = tasks.join_next() => {
                    bail!("a Watch stream (or the output) stopped: {ended:?}")
                }
            }
        }
    }
}

/// Writes the streams' lines to stdout, all those waiting in one write: a
/// hundred streams receiving one update would otherwise make a hundred
/// writes, on the cores the measured streams need. Ends when every stream
/// has ended.
async fn write_lines(mut lines: mpsc::UnboundedReceiver<String>) {
    let mut stdout = tokio::io::stdout();
    let mut batch = String::new();
    while let Some(line) = lines.recv().await {
        batch.push_str(&line);
        while let Ok(line) = lines.try_recv() {
            batch.push_str(&line);
        }
        if stdout.write_all(batch.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// The `recv` line's fields after `stream=`.
fn received(update: &SnapshotUpdate, at: Duration) -> String {
    let routers = update
        .upserts
        .as_ref()
        .map(|resources| resources.routers.as_slice())
        .unwrap_or_default();
    let names = if update.full_state || routers.is_empty() || routers.len() > MAX_NAMES {
        "-".to_owned()
    } else {
        routers
            .iter()
            .map(|router| router.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "version={} at_us={} bytes={} full={} routers={} removals={} names={names}",
        update.version,
        at.as_micros(),
        update.encoded_len(),
        update.full_state,
        routers.len(),
        update.removals.len(),
    )
}
