//! The admin API: JSON over HTTP for operators and the dashboard.
//!
//! Shaped after Traefik's API (`/api/rawdata`, `/api/http/routers`...) with
//! Sluice's additions (`/api/nodes`, `/api/snapshot`, `/api/providers`). It
//! only reads the compile report, the store, the node registry and the
//! providers' health, and never prints secret material: configurations are
//! redacted by the compiler's report, and certificates are shown by name,
//! origin, names covered and expiry only (`/api/certificates`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::compiler::ResourceStatus;
use crate::nodes::NodeRegistry;
use crate::providers::ProviderHealthRegistry;
use crate::store::SnapshotStore;

/// Sluice's build version and git commit.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit the binary was built from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("SLUICE_GIT_COMMIT");

#[derive(Debug, Clone)]
struct AdminState {
    store: Arc<SnapshotStore>,
    nodes: Arc<NodeRegistry>,
    providers: Arc<ProviderHealthRegistry>,
}

/// Serves the admin API on `listener` until `shutdown`.
pub(crate) async fn serve_admin(
    listener: tokio::net::TcpListener,
    store: Arc<SnapshotStore>,
    nodes: Arc<NodeRegistry>,
    providers: Arc<ProviderHealthRegistry>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/ping", get(|| async { "OK" }))
        .route("/api/version", get(version))
        .route("/api/rawdata", get(rawdata))
        .route("/api/errors", get(errors))
        .route("/api/entrypoints", get(entry_points))
        .route("/api/http/routers", get(|state| list(state, "router")))
        .route(
            "/api/http/routers/{name}",
            get(|state, name| one(state, "router", name)),
        )
        .route("/api/http/services", get(|state| list(state, "service")))
        .route(
            "/api/http/services/{name}",
            get(|state, name| one(state, "service", name)),
        )
        .route(
            "/api/http/middlewares",
            get(|state| list(state, "middleware")),
        )
        .route(
            "/api/http/middlewares/{name}",
            get(|state, name| one(state, "middleware", name)),
        )
        .route("/api/nodes", get(node_list))
        .route(
            "/api/providers",
            get(|State(state): State<AdminState>| async move { Json(state.providers.snapshot()) }),
        )
        .route("/api/snapshot", get(snapshot))
        .route("/api/certificates", get(certificates))
        .with_state(AdminState {
            store,
            nodes,
            providers,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn version(State(state): State<AdminState>) -> Json<Value> {
    let current = state.store.current();
    Json(json!({
        "version": BUILD_VERSION,
        "commit": GIT_COMMIT,
        "snapshotVersion": current.as_ref().map(|published| published.version().to_owned()),
        "generation": current.as_ref().map(|published| published.generation),
    }))
}

/// Every resource by kind (`routers`, `services`...), like Traefik's rawdata.
async fn rawdata(State(state): State<AdminState>) -> Json<Value> {
    let report = state.store.report();
    let mut sections: BTreeMap<&str, BTreeMap<&str, &ResourceStatus>> = BTreeMap::new();
    for section in [
        "entryPoints",
        "routers",
        "services",
        "middlewares",
        "tlsOptions",
        "tlsStores",
        "certificates",
        "serversTransports",
    ] {
        sections.insert(section, BTreeMap::new());
    }
    for status in report.resources.values() {
        sections
            .entry(section_of(status.kind))
            .or_default()
            .insert(&status.name, status);
    }
    let mut body = serde_json::to_value(sections).unwrap_or_default();
    body["errors"] = serde_json::to_value(&report.errors).unwrap_or_default();
    Json(body)
}

fn section_of(kind: &str) -> &'static str {
    match kind {
        "entryPoint" => "entryPoints",
        "router" => "routers",
        "service" => "services",
        "middleware" => "middlewares",
        "tlsOptions" => "tlsOptions",
        "tlsStore" => "tlsStores",
        "serversTransport" => "serversTransports",
        _ => "certificates",
    }
}

async fn errors(State(state): State<AdminState>) -> Json<Value> {
    let report = state.store.report();
    Json(json!(
        report
            .errors
            .iter()
            .map(|error| json!({
                "kind": error.kind,
                "name": error.name,
                "origin": error.origin,
                "message": error.message,
                "text": error.to_string(),
            }))
            .collect::<Vec<_>>()
    ))
}

async fn entry_points(state: State<AdminState>) -> Json<Vec<Arc<ResourceStatus>>> {
    list(state, "entryPoint").await
}

async fn list(
    State(state): State<AdminState>,
    kind: &'static str,
) -> Json<Vec<Arc<ResourceStatus>>> {
    let report = state.store.report();
    Json(
        report
            .resources
            .values()
            .filter(|status| status.kind == kind)
            .cloned()
            .collect(),
    )
}

async fn one(
    State(state): State<AdminState>,
    kind: &'static str,
    Path(name): Path<String>,
) -> Response {
    let report = state.store.report();
    match report
        .resources
        .values()
        .find(|status| status.kind == kind && status.name == name)
    {
        Some(status) => Json(status.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("{kind} `{name}` not found")})),
        )
            .into_response(),
    }
}

/// A node as JSON (the proto type has no serde support by design).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeView {
    node_id: String,
    labels: BTreeMap<String, String>,
    build_version: String,
    peer: String,
    connected: bool,
    connected_since_ms: i64,
    last_seen_ms: i64,
    version_served: String,
    version_acked: String,
    /// True when the node acknowledged the current snapshot.
    up_to_date: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_nack: Option<Value>,
}

async fn node_list(State(state): State<AdminState>) -> Json<Vec<NodeView>> {
    let current = state.store.current();
    let current_version = current.as_ref().map(|published| published.version());
    Json(
        state
            .nodes
            .list()
            .into_iter()
            .map(|node| {
                NodeView {
                up_to_date: Some(node.version_acked.as_str()) == current_version,
                last_nack: node.last_nack.as_ref().map(|nack| {
                    json!({"version": nack.version, "error": nack.error, "atMs": node.last_nack_ms})
                }),
                node_id: node.node_id,
                labels: node.labels,
                build_version: node.build_version,
                peer: node.peer,
                connected: node.connected,
                connected_since_ms: node.connected_since_ms,
                last_seen_ms: node.last_seen_ms,
                version_served: node.version_served,
                version_acked: node.version_acked,
            }
            })
            .collect(),
    )
}

/// The certificates of the current snapshot: names, origin and expiry,
/// never the key.
async fn certificates(State(state): State<AdminState>) -> Json<Vec<Value>> {
    let Some(current) = state.store.current() else {
        return Json(Vec::new());
    };
    Json(
        current
            .resources
            .certificates
            .iter()
            .map(|certificate| certificate_summary(certificate))
            .collect(),
    )
}

fn certificate_summary(certificate: &sluice_proto::v1::Certificate) -> Value {
    let not_after = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(certificate.not_after_unix).unwrap_or(0));
    json!({
        "name": certificate.name,
        "sans": certificate.sans,
        "notAfter": humantime::format_rfc3339_seconds(not_after).to_string(),
        "notAfterUnix": certificate.not_after_unix,
        "origin": certificate.origin,
        "stores": certificate.stores,
    })
}

/// What the current snapshot routes, without secret material.
async fn snapshot(State(state): State<AdminState>) -> Response {
    let Some(current) = state.store.current() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"message": "no snapshot has been compiled yet"})),
        )
            .into_response();
    };
    let resources = &current.resources;
    Json(json!({
        "version": current.version(),
        "generation": current.generation,
        "entryPoints": resources.entry_points.iter().map(|ep| json!({
            "name": ep.name, "address": ep.address, "middlewares": ep.middlewares,
        })).collect::<Vec<_>>(),
        "routers": resources.routers.iter().map(|router| json!({
            "name": router.name,
            "rule": router.rule,
            "priority": router.priority,
            "entryPoints": router.entry_points,
            "middlewares": router.middlewares,
            "service": router.service,
            "tls": router.tls.is_some(),
            "contentVersion": router.content_version,
        })).collect::<Vec<_>>(),
        "services": resources.services.iter().map(|service| json!({
            "name": service.name, "contentVersion": service.content_version,
        })).collect::<Vec<_>>(),
        "middlewares": resources.middlewares.iter().map(|middleware| json!({
            "name": middleware.name, "contentVersion": middleware.content_version,
        })).collect::<Vec<_>>(),
        "certificates": resources.certificates.iter().map(|certificate| certificate_summary(certificate)).collect::<Vec<_>>(),
        "serversTransports": resources.servers_transports.iter().map(|transport| json!({
            "name": transport.name, "contentVersion": transport.content_version,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}
