//! A Pod replaced in one Service of many reaches the proxies as a delta
//! holding that Service alone: only its content version changes. (How
//! fast, and at what scale, is `cargo xtask bench-kubernetes`'s business.)

use std::collections::BTreeMap;

use integration_tests::{
    ControlPlaneOptions, FakeKubernetes, SnapshotState, WatchClient, application_name, eventually,
};
use serde_json::Value;

use super::DEADLINE;

/// Generated applications: Ingress + Service + EndpointSlice each.
const APPS: usize = 40;

/// The application whose Pod is replaced.
const CHURNED: usize = 17;

/// `name -> contentVersion` of one kind in `/api/snapshot`.
fn content_versions(snapshot: &Value, kind: &str) -> BTreeMap<String, String> {
    snapshot[kind]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            (
                item["name"].as_str().unwrap_or_default().to_owned(),
                item["contentVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_churn_in_one_service_changes_that_service_s_content_version_only() {
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_applications(APPS);
    let control_plane = ControlPlaneOptions::new()
        .entry_point("web")
        .provider(
            "kubernetesIngress",
            &format!("endpoint: \"{}\"", kubernetes.url()),
        )
        .start()
        .await;
    let before = eventually("every application routed", DEADLINE, || async {
        let snapshot = control_plane.api("/api/snapshot").await;
        let routers = content_versions(&snapshot, "routers").len();
        if routers == APPS {
            Ok(snapshot)
        } else {
            Err(format!("{routers} routers"))
        }
    })
    .await;

    // A proxy holding the current snapshot.
    let mut proxy = WatchClient::connect(&control_plane.grpc_url(), "churn-watch", "").await;
    let mut state = SnapshotState::new();
    let first = proxy.next_update().await;
    let full = state.apply(&first);
    proxy.ack(&first.version).await;
    assert!(full.full_state, "{full}");
    assert_eq!(full.totals["routers"], APPS, "{full}");

    kubernetes.churn_application_pod(CHURNED, 1);
    let update = proxy.next_update().await;
    let delta = state.apply(&update);
    proxy.ack(&update.version).await;

    let (namespace, name) = application_name(CHURNED);
    // Named after the Service port the Ingress backend names, `http`.
    let service = format!("{namespace}-{name}-http@kubernetes");
    assert!(!delta.full_state, "a delta, not the whole state: {delta}");
    assert_eq!(delta.base_version, first.version, "{delta}");
    assert_eq!(
        delta.upserts,
        BTreeMap::from([("services", vec![service.clone()])]),
        "{delta}"
    );
    assert!(delta.removals.is_empty(), "{delta}");
    let changed: Vec<(&str, &str)> = delta
        .changed
        .iter()
        .map(|change| (change.kind, change.name.as_str()))
        .collect();
    assert_eq!(changed, [("services", service.as_str())], "{delta}");

    // The admin API agrees: that Service's content version alone changed.
    let after = control_plane.api("/api/snapshot").await;
    assert_eq!(after["version"], update.version.as_str());
    for kind in ["routers", "middlewares", "serversTransports"] {
        assert_eq!(
            content_versions(&before, kind),
            content_versions(&after, kind),
            "{kind}"
        );
    }
    let (old, new) = (
        content_versions(&before, "services"),
        content_versions(&after, "services"),
    );
    assert_eq!(old.len(), new.len());
    let differing: Vec<&String> = old
        .keys()
        .filter(|name| old.get(*name) != new.get(*name))
        .collect();
    assert_eq!(differing, [&service]);
    assert_eq!(
        state.content_version("services", &service),
        new.get(&service).map(String::as_str)
    );
}
