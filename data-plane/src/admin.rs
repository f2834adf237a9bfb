//! The admin endpoint (default `127.0.0.1:9901`), for probes and humans:
//!
//! - `GET /ping`: `200 OK` while the process runs (like Traefik's ping);
//! - `GET /ready`: `503` until the first snapshot is applied and while
//!   shutting down, `200` otherwise;
//! - `GET /api/snapshot`: JSON summary of what the proxy serves (version,
//!   entry points with their bound addresses, routers) and how many snapshot
//!   updates it applied (`updatesFull`, `updatesDelta`) and rejected
//!   (`updatesRejected`) since start. Never secrets.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::body::{ProxyBody, not_found, text_response};
use crate::runtime::Runtime;
use crate::shared::SharedState;

/// What the admin endpoint reports on.
#[derive(Debug)]
pub(crate) struct AdminState {
    runtime: Arc<ArcSwap<Runtime>>,
    shared: Arc<SharedState>,
    draining: AtomicBool,
}

impl AdminState {
    /// State over the proxy's runtime and long-lived state.
    pub(crate) fn new(runtime: Arc<ArcSwap<Runtime>>, shared: Arc<SharedState>) -> Self {
        Self {
            runtime,
            shared,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on `/ready` answers 503.
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.runtime.load().version().is_empty()
    }
}

/// Serves the admin endpoint on `listener` until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, state: Arc<AdminState>, stop: CancellationToken) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                let service = service_fn(move |req| {
                    let response = respond(&req, &state);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                connections.spawn(async move {
                    // Probes hang up abruptly; nothing worth reporting.
                    let _ = connection.await;
                });
            }
        }
    }
    connections.abort_all();
}

fn respond(req: &Request<Incoming>, state: &AdminState) -> Response<ProxyBody> {
    match req.uri().path() {
        "/ping" => text_response(StatusCode::OK, "OK"),
        "/ready" if state.is_ready() => text_response(StatusCode::OK, "OK"),
        "/ready" => text_response(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        "/api/snapshot" => snapshot(state),
        _ => not_found(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    version: &'a str,
    ready: bool,
    updates_full: u64,
    updates_delta: u64,
    updates_rejected: u64,
    entry_points: Vec<EntryPointSummary<'a>>,
    routers: Vec<RouterSummary<'a>>,
    certificates: &'a [crate::tls::CertificateSummary],
}

#[derive(Debug, Serialize)]
struct EntryPointSummary<'a> {
    name: &'a str,
    address: &'a str,
    bound: Option<String>,
    tls: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RouterSummary<'a> {
    name: &'a str,
    priority: i64,
    entry_points: Vec<&'a str>,
}

fn snapshot(state: &AdminState) -> Response<ProxyBody> {
    let runtime = state.runtime.load_full();
    let mut entry_points: Vec<_> = runtime
        .entry_points()
        .iter()
        .map(|(name, ep)| EntryPointSummary {
            name,
            address: &ep.address,
            bound: ep.bound.map(|a| a.to_string()),
            tls: ep.tls.is_some(),
        })
        .collect();
    entry_points.sort_by(|a, b| a.name.cmp(b.name));
    let mut routers: BTreeMap<&str, RouterSummary<'_>> = BTreeMap::new();
    for (name, ep) in runtime.entry_points() {
        for route in ep.routes.routes().iter().chain(ep.tls_routes.routes()) {
            routers
                .entry(&route.name)
                .or_insert_with(|| RouterSummary {
                    name: &route.name,
                    priority: route.priority,
                    entry_points: Vec::new(),
                })
                .entry_points
                .push(name);
        }
    }
    let mut routers: Vec<_> = routers.into_values().collect();
    for router in &mut routers {
        router.entry_points.sort_unstable();
    }
    let summary = Summary {
        version: runtime.version(),
        ready: state.is_ready(),
        updates_full: state.shared.updates.full(),
        updates_delta: state.shared.updates.delta(),
        updates_rejected: state.shared.updates.rejected_count(),
        entry_points,
        routers,
        certificates: runtime.certificates(),
    };
    match serde_json::to_vec_pretty(&summary) {
        Ok(json) => {
            let mut response = Response::new(ProxyBody::full(json));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => text_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::service::UpstreamConfig;

    #[tokio::test]
    async fn snapshot_reports_update_counters() {
        let runtime = Arc::new(ArcSwap::from_pointee(Runtime::default()));
        let shared = Arc::new(SharedState::new(
            "n".into(),
            &UpstreamConfig::default(),
            CancellationToken::new(),
        ));
        shared.updates.applied(true);
        shared.updates.applied(false);
        shared.updates.applied(false);
        shared.updates.rejected();
        let state = AdminState::new(runtime, shared);
        let response = snapshot(&state);
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["version"], "");
        assert_eq!(json["ready"], false);
        assert_eq!(json["updatesFull"], 1);
        assert_eq!(json["updatesDelta"], 2);
        assert_eq!(json["updatesRejected"], 1);
        assert_eq!(json["entryPoints"], serde_json::json!([]));
    }
}
