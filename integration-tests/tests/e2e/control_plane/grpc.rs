//! `grpcurl` against the control plane: services listed through reflection,
//! the snapshot as JSON, health.

use integration_tests::{ControlPlane, grpcurl};
use serde_json::json;

use super::{routes_file, stdout_json, wait_for_routes};

const API_RULE: &str = "Host(`api.example`) && PathPrefix(`/v1`)";
const WEB_RULE: &str = "Host(`www.example`)";

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_services_and_prints_the_snapshot() {
    let control_plane = ControlPlane::start(
        &["web"],
        &[(
            "routes.yml",
            &routes_file(&[("api", API_RULE), ("www", WEB_RULE)]),
        )],
    )
    .await;
    let version = wait_for_routes(
        &control_plane,
        &[("api@file", API_RULE), ("www@file", WEB_RULE)],
    )
    .await;
    let address = &control_plane.grpc_address;

    let listed = grpcurl(&[], address, &["list"]);
    assert!(listed.status.success(), "grpcurl list: {listed:?}");
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let services: Vec<&str> = stdout.lines().map(str::trim).collect();
    for service in [
        "sluice.v1.SnapshotService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&service),
            "`grpcurl list` does not show {service}: {stdout}"
        );
    }

    let snapshot = stdout_json(&grpcurl(
        &[],
        address,
        &["sluice.v1.SnapshotService/GetSnapshot"],
    ));
    assert_eq!(snapshot["version"], version.as_str());
    let routers = snapshot["resources"]["routers"]
        .as_array()
        .expect("GetSnapshot prints resources.routers");
    let names: Vec<&str> = routers
        .iter()
        .map(|router| router["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["api@file", "www@file"], "{snapshot:#}");
    let api = &routers[0];
    assert_eq!(api["rule"], API_RULE);
    assert_eq!(api["service"], "backend@file");
    assert_eq!(api["entryPoints"], json!(["web"]));
    assert_eq!(
        api["matcher"],
        json!({"all": {"matchers": [{"host": "api.example"}, {"pathPrefix": "/v1"}]}})
    );
    // Default priority: the rule's length (an int64, so a JSON string).
    assert_eq!(api["priority"], API_RULE.len().to_string());
    assert_eq!(routers[1]["matcher"], json!({"host": "www.example"}));
    let services = &snapshot["resources"]["services"];
    assert_eq!(services[0]["name"], "backend@file");
    assert_eq!(
        services[0]["loadBalancer"]["servers"][0]["url"],
        "http://127.0.0.1:9"
    );

    let health = stdout_json(&grpcurl(&[], address, &["grpc.health.v1.Health/Check"]));
    assert_eq!(health, json!({"status": "SERVING"}));
    let service_health = stdout_json(&grpcurl(
        &["-d", r#"{"service": "sluice.v1.SnapshotService"}"#],
        address,
        &["grpc.health.v1.Health/Check"],
    ));
    assert_eq!(service_health, json!({"status": "SERVING"}));
}
