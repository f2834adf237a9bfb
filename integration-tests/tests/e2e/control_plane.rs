//! Control-plane scenarios: what a user sees of `sluice-control-plane` over
//! `grpcurl`, a scripted Watch client, the admin API and the command line.
//!
//! - [`grpc`]: `grpcurl list`, `GetSnapshot`, health.
//! - [`watch`]: full state, deltas, ACK/NACK, resuming from history, one
//!   update in flight with coalescing.
//! - [`errors`]: `validate`, per-resource errors, secrets redacted, last good
//!   content kept.
//! - [`burst`]: 1,000 edits give a handful of versions, the last one exact.
//! - [`cli`]: static-configuration precedence, unknown keys, `version`.

mod burst;
mod cli;
mod errors;
mod grpc;
mod watch;

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::{ControlPlane, eventually, get};
use serde_json::Value;

/// How long a change may take to show: file watcher debounce, aggregator
/// debounce and compile, with ample margin for a loaded CI machine.
const CHANGE_DEADLINE: Duration = Duration::from_secs(20);

/// A dynamic configuration file with these routers (name, rule), all sending
/// to one service `backend`, whose server is never contacted (no proxy runs).
fn routes_file(routers: &[(&str, &str)]) -> String {
    let mut text = String::from("http:\n  routers:\n");
    for (name, rule) in routers {
        text.push_str(&format!(
            "    {name}:\n      rule: \"{rule}\"\n      service: backend\n"
        ));
    }
    text.push_str(
        "  services:\n    backend:\n      loadBalancer:\n        servers:\n          \
         - url: \"http://127.0.0.1:9\"\n",
    );
    text
}

/// The routers of `/api/snapshot`, qualified name to rule.
fn snapshot_rules(snapshot: &Value) -> BTreeMap<String, String> {
    snapshot["routers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|router| {
            (
                router["name"].as_str().unwrap_or_default().to_owned(),
                router["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits until the current snapshot routes exactly `routers` (qualified name,
/// rule) and returns its version.
async fn wait_for_routes(control_plane: &ControlPlane, routers: &[(&str, &str)]) -> String {
    let expected: BTreeMap<String, String> = routers
        .iter()
        .map(|(name, rule)| ((*name).to_owned(), (*rule).to_owned()))
        .collect();
    let url = format!("{}/api/snapshot", control_plane.api_url);
    eventually(
        &format!("the snapshot to route exactly {expected:?}"),
        CHANGE_DEADLINE,
        || async {
            let response = get(&url).await?;
            if response.status != 200 {
                return Err(format!("/api/snapshot answered {}", response.status));
            }
            let snapshot = response.json();
            let rules = snapshot_rules(&snapshot);
            if rules == expected {
                Ok(snapshot["version"].as_str().unwrap_or_default().to_owned())
            } else {
                Err(format!("routers are {rules:?}"))
            }
        },
    )
    .await
}

/// `/api/version`'s snapshot generation.
async fn generation(control_plane: &ControlPlane) -> u64 {
    control_plane.api("/api/version").await["generation"]
        .as_u64()
        .expect("/api/version has a generation once a snapshot is published")
}

/// Parses a command's standard output as JSON, failing with what it printed.
fn stdout_json(output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "command failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"))
}
