//! A `Watch` client that plays a proxy and reports every update, for
//! benchmarks:
//!
//! ```text
//! snapshot-watch http://127.0.0.1:7050 bench-watch
//! ```
//!
//! connects as node `bench-watch`, acknowledges every update, and prints
//! one line per update: `update <DeltaSummary>` (version, full state or
//! delta, upserts by kind, removals, totals held, content versions
//! changed). It exits when stdin closes or the stream ends.

use std::time::Duration;

use anyhow::Context;
use integration_tests::{SnapshotState, WatchClient};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: snapshot-watch <grpc-url> <node-id>")?;
    let node = args.next().unwrap_or_else(|| "snapshot-watch".to_owned());
    let mut client = WatchClient::connect(&url, &node, "").await;
    let mut state = SnapshotState::new();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                if line?.is_none() {
                    return Ok(());
                }
            }
            update = client.next_update_within(Duration::from_secs(24 * 3600)) => {
                let Some(update) = update else { continue };
                let summary = state.apply(&update);
                client.ack(&update.version).await;
                println!("update {summary}");
            }
        }
    }
}
