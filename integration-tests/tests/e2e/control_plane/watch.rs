//! The Watch protocol as a proxy lives it, one message at a time: full state
//! then deltas, ACK and NACK, resuming from history, and at most one update
//! in flight with newer changes coalesced.

use std::time::Duration;

use integration_tests::{ControlPlane, WatchClient, eventually, grpcurl};
use serde_json::Value;
use sluice_proto::v1::matcher::Kind as MatcherKind;
use sluice_proto::v1::{ResourceKind, ResourceRef, Resources, SnapshotUpdate};

use super::{CHANGE_DEADLINE, generation, routes_file, stdout_json, wait_for_routes};

/// How long "nothing arrives" is watched for, once the condition that
/// would have triggered an update has been observed through the API.
const QUIET_WINDOW: Duration = Duration::from_millis(700);

const NACK_ERROR: &str = "cannot bind 127.0.0.1:1: test";

fn upserts(update: &SnapshotUpdate) -> &Resources {
    update.upserts.as_ref().expect("an update carries upserts")
}

fn router_names(update: &SnapshotUpdate) -> Vec<&str> {
    upserts(update)
        .routers
        .iter()
        .map(|router| router.name.as_str())
        .collect()
}

/// Asserts `update` upserts nothing but routers.
fn only_routers_upserted(update: &SnapshotUpdate) {
    let upserts = upserts(update);
    assert!(
        upserts.entry_points.is_empty()
            && upserts.services.is_empty()
            && upserts.middlewares.is_empty()
            && upserts.certificates.is_empty()
            && upserts.tls_options.is_empty()
            && upserts.tls_stores.is_empty(),
        "only routers changed, but the delta upserts {upserts:#?}"
    );
}

fn router_removal(name: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::Router as i32,
        name: name.to_owned(),
    }
}

/// The generation part of a `<generation>-<hash>` version.
fn generation_of(version: &str) -> u64 {
    version
        .split_once('-')
        .and_then(|(generation, _)| generation.parse().ok())
        .unwrap_or_else(|| panic!("`{version}` is not `<generation>-<hash>`"))
}

/// The entry for `node` in `/api/nodes` or `ListNodes` output.
fn node<'a>(nodes: &'a Value, node_id: &str) -> Option<&'a Value> {
    nodes
        .as_array()?
        .iter()
        .find(|node| node["nodeId"] == node_id)
}

/// Waits until `/api/nodes` shows `node_id` having acknowledged `version`.
async fn wait_for_ack(control_plane: &ControlPlane, node_id: &str, version: &str) {
    eventually(
        &format!("/api/nodes to show {node_id} acknowledged {version}"),
        CHANGE_DEADLINE,
        || async {
            let nodes = control_plane.api("/api/nodes").await;
            match node(&nodes, node_id) {
                Some(node) if node["versionAcked"] == version => Ok(()),
                _ => Err(format!("nodes: {nodes}")),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_sends_full_state_then_deltas_records_nacks_and_resumes_from_history() {
    let alpha = "Host(`alpha.example`)";
    let beta = "Host(`beta.example`)";
    let gamma = "Host(`gamma.example`)";
    let control_plane = ControlPlane::start(
        &["web"],
        &[(
            "routes.yml",
            &routes_file(&[("alpha", alpha), ("beta", beta), ("gamma", gamma)]),
        )],
    )
    .await;
    let v1 = wait_for_routes(
        &control_plane,
        &[
            ("alpha@file", alpha),
            ("beta@file", beta),
            ("gamma@file", gamma),
        ],
    )
    .await;

    // Hello with nothing held: the full state.
    let mut watch = WatchClient::connect(&control_plane.grpc_url(), "watcher-1", "").await;
    let full = watch.next_update().await;
    assert!(full.full_state, "{full:#?}");
    assert_eq!(full.version, v1);
    assert_eq!(full.base_version, "");
    assert_eq!(
        router_names(&full),
        ["alpha@file", "beta@file", "gamma@file"]
    );
    let services: Vec<&str> = upserts(&full)
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(services, ["backend@file"]);
    let entry_points: Vec<&str> = upserts(&full)
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(entry_points, ["web"]);
    assert!(full.removals.is_empty());
    watch.ack(&v1).await;
    wait_for_ack(&control_plane, "watcher-1", &v1).await;

    // One router of three changes: a delta holding only it.
    let beta2 = "Host(`beta2.example`) && PathPrefix(`/b`)";
    control_plane.write_dynamic(
        "routes.yml",
        &routes_file(&[("alpha", alpha), ("beta", beta2), ("gamma", gamma)]),
    );
    let delta = watch.next_update().await;
    assert!(!delta.full_state, "{delta:#?}");
    assert_eq!(delta.base_version, v1);
    assert_eq!(router_names(&delta), ["beta@file"], "{delta:#?}");
    only_routers_upserted(&delta);
    assert!(delta.removals.is_empty(), "{delta:#?}");
    let beta_router = &upserts(&delta).routers[0];
    assert_eq!(beta_router.rule, beta2);
    assert!(
        matches!(
            beta_router.matcher.as_ref().and_then(|m| m.kind.as_ref()),
            Some(MatcherKind::All(list)) if list.matchers.len() == 2
        ),
        "{beta_router:#?}"
    );
    assert_eq!(
        control_plane.snapshot_version().await.as_deref(),
        Some(delta.version.as_str())
    );
    let v2 = delta.version.clone();
    watch.ack(&v2).await;
    wait_for_ack(&control_plane, "watcher-1", &v2).await;

    // A router goes away: a delta with its removal only.
    control_plane.write_dynamic(
        "routes.yml",
        &routes_file(&[("alpha", alpha), ("beta", beta2)]),
    );
    let removal = watch.next_update().await;
    assert!(!removal.full_state, "{removal:#?}");
    assert_eq!(removal.base_version, v2);
    assert_eq!(removal.removals, [router_removal("gamma@file")]);
    assert_eq!(
        upserts(&removal),
        &Resources::default(),
        "nothing else changed"
    );
    let v3 = removal.version.clone();
    watch.ack(&v3).await;
    wait_for_ack(&control_plane, "watcher-1", &v3).await;

    // The next update is rejected: the NACK shows in ListNodes and /api/nodes.
    let alpha2 = "Host(`alpha2.example`)";
    control_plane.write_dynamic(
        "routes.yml",
        &routes_file(&[("alpha", alpha2), ("beta", beta2)]),
    );
    let rejected = watch.next_update().await;
    assert_eq!(rejected.base_version, v3);
    assert_eq!(router_names(&rejected), ["alpha@file"]);
    let v4 = rejected.version.clone();
    watch.nack(&v4, NACK_ERROR).await;
    let grpc_address = control_plane.grpc_address.clone();
    let listed = eventually("ListNodes to show the NACK", CHANGE_DEADLINE, || async {
        let nodes = stdout_json(&grpcurl(
            &[],
            &grpc_address,
            &["sluice.v1.SnapshotService/ListNodes"],
        ));
        match node(&nodes["nodes"], "watcher-1") {
            Some(node) if node["lastNack"]["error"] == NACK_ERROR => Ok(node.clone()),
            _ => Err(format!("ListNodes printed {nodes}")),
        }
    })
    .await;
    assert_eq!(listed["lastNack"]["version"], v4.as_str());
    assert_eq!(listed["versionAcked"], v3.as_str());
    assert_eq!(listed["versionServed"], v4.as_str());
    assert_eq!(listed["connected"], true);
    assert_eq!(listed["buildVersion"], "integration-tests");
    let nodes = control_plane.api("/api/nodes").await;
    let shown = node(&nodes, "watcher-1").expect("/api/nodes lists watcher-1");
    assert_eq!(shown["lastNack"]["error"], NACK_ERROR, "{nodes:#}");
    assert_eq!(shown["lastNack"]["version"], v4.as_str());
    assert_eq!(shown["versionAcked"], v3.as_str());
    assert_eq!(shown["upToDate"], false);
    // A rejected version is not sent again on this stream.
    assert_eq!(watch.next_update_within(QUIET_WINDOW).await, None);
    drop(watch);

    // Reconnecting with a version still in history resumes by delta from it.
    let mut resumed = WatchClient::connect(&control_plane.grpc_url(), "watcher-1", &v1).await;
    let resume = resumed.next_update().await;
    assert!(!resume.full_state, "{resume:#?}");
    assert_eq!(resume.base_version, v1);
    assert_eq!(resume.version, v4);
    assert_eq!(router_names(&resume), ["alpha@file", "beta@file"]);
    only_routers_upserted(&resume);
    assert_eq!(resume.removals, [router_removal("gamma@file")]);
    drop(resumed);

    // A version not in history, or none: the full state.
    for held in ["999-0000000000000000", ""] {
        let mut fresh = WatchClient::connect(&control_plane.grpc_url(), "watcher-2", held).await;
        let update = fresh.next_update().await;
        assert!(update.full_state, "held {held:?}: {update:#?}");
        assert_eq!(update.base_version, "", "held {held:?}");
        assert_eq!(update.version, v4, "held {held:?}");
        assert_eq!(
            router_names(&update),
            ["alpha@file", "beta@file"],
            "held {held:?}"
        );
        assert_eq!(upserts(&update).services.len(), 1, "held {held:?}");
        assert!(update.removals.is_empty(), "held {held:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_update_in_flight_and_newer_changes_coalesce_until_the_ack() {
    let rule = |n: u32| format!("Host(`v{n}.example`)");
    let other = "Host(`other.example`)";
    let control_plane = ControlPlane::start(
        &["web"],
        &[(
            "routes.yml",
            &routes_file(&[("moving", &rule(1)), ("other", other)]),
        )],
    )
    .await;
    let write = |n: u32| {
        control_plane.write_dynamic(
            "routes.yml",
            &routes_file(&[("moving", &rule(n)), ("other", other)]),
        );
    };
    let v1 = wait_for_routes(
        &control_plane,
        &[("moving@file", &rule(1)), ("other@file", other)],
    )
    .await;
    let mut watch = WatchClient::connect(&control_plane.grpc_url(), "slow-proxy", "").await;
    let full = watch.next_update().await;
    assert_eq!(full.version, v1);
    watch.ack(&v1).await;
    wait_for_ack(&control_plane, "slow-proxy", &v1).await;

    // An update arrives and is left un-acknowledged.
    write(2);
    let pending = watch.next_update().await;
    assert_eq!(pending.base_version, v1);
    assert_eq!(upserts(&pending).routers[0].rule, rule(2));
    let pending_generation = generation_of(&pending.version);

    // Two more versions are published meanwhile...
    write(3);
    wait_for_routes(
        &control_plane,
        &[("moving@file", &rule(3)), ("other@file", other)],
    )
    .await;
    write(4);
    let latest = wait_for_routes(
        &control_plane,
        &[("moving@file", &rule(4)), ("other@file", other)],
    )
    .await;
    assert_eq!(generation(&control_plane).await, pending_generation + 2);
    let nodes = control_plane.api("/api/nodes").await;
    let shown = node(&nodes, "slow-proxy").expect("/api/nodes lists slow-proxy");
    assert_eq!(
        shown["versionServed"],
        pending.version.as_str(),
        "{nodes:#}"
    );
    assert_eq!(shown["versionAcked"], v1.as_str(), "{nodes:#}");

    // ...but nothing more is sent while the update is un-acknowledged.
    assert_eq!(watch.next_update_within(QUIET_WINDOW).await, None);

    // Once acknowledged, the next update goes straight to the latest version.
    watch.ack(&pending.version).await;
    let coalesced = watch.next_update().await;
    assert!(!coalesced.full_state, "{coalesced:#?}");
    assert_eq!(coalesced.base_version, pending.version);
    assert_eq!(coalesced.version, latest);
    assert_eq!(router_names(&coalesced), ["moving@file"]);
    assert_eq!(upserts(&coalesced).routers[0].rule, rule(4));
    only_routers_upserted(&coalesced);
    assert!(coalesced.removals.is_empty());
    watch.ack(&latest).await;
    wait_for_ack(&control_plane, "slow-proxy", &latest).await;
    // Up to date: nothing else comes.
    assert_eq!(watch.next_update_within(QUIET_WINDOW).await, None);
}
