//! Active health checks: one task per checked server, probing it on an
//! interval. An unhealthy server leaves its balancer's rotation and comes
//! back when a probe succeeds again.
//!
//! Health is long-lived state: [`HealthChecks`] lives in the proxy's shared
//! state and keys statuses and tasks by service name and server URL, so a
//! snapshot swap neither resets a server's health nor restarts its checker
//! (unless its check configuration changed). Checks start and stop as servers
//! appear and disappear ([`HealthChecks::reconcile`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version, header};
use http_body_util::BodyExt;
use sluice_proto::v1;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::UpstreamClient;
use super::upstream::{Protocol, ServerUrl};
use crate::body::ProxyBody;

/// Interval when the snapshot leaves it unset (Traefik's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Probe timeout when the snapshot leaves it unset (Traefik's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Response bytes read from a probe before the body is dropped.
const MAX_PROBE_BODY: usize = 64 * 1024;

/// Why a health check configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    /// gRPC health checks are not implemented.
    #[error("gRPC health checks (mode `grpc`) are not supported by this proxy version")]
    GrpcMode,
    /// The mode is neither `http` nor `grpc`.
    #[error("unknown health check mode `{0}`")]
    Mode(String),
    /// The scheme is not `http`, `h2c` or `https`.
    #[error("unknown health check scheme `{0}`")]
    Scheme(String),
    /// The method is not a valid HTTP method.
    #[error("invalid health check method `{0}`")]
    Method(String),
    /// A header name or value is invalid.
    #[error("invalid health check header `{0}`")]
    Header(String),
    /// The hostname is not a valid Host header.
    #[error("invalid health check hostname `{0}`")]
    Hostname(String),
    /// The probe URL does not parse.
    #[error("invalid health check path `{0}`")]
    Path(String),
}

/// The health of one server, read by balancers on every request.
#[derive(Debug)]
pub(crate) struct ServerHealth {
    healthy: AtomicBool,
    /// Bumped on every change, so rotations know to recompute.
    epoch: Arc<AtomicU64>,
}

impl ServerHealth {
    fn new(epoch: Arc<AtomicU64>) -> Self {
        Self {
            healthy: AtomicBool::new(true),
            epoch,
        }
    }

    /// True while the server takes traffic.
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Records a probe result; true when it changed the status.
    pub(crate) fn set(&self, healthy: bool) -> bool {
        let changed = self.healthy.swap(healthy, Ordering::AcqRel) != healthy;
        if changed {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }
}

/// Stable identity of a checked server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ServerKey {
    /// Qualified service name.
    pub(crate) service: String,
    /// Server URL as written in the snapshot.
    pub(crate) url: String,
}

/// How to probe one server, resolved from the snapshot's health check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HealthCheckConfig {
    protocol: Protocol,
    uri: Uri,
    method: Method,
    host: Option<HeaderValue>,
    headers: HeaderMap,
    /// `None` accepts any 2xx or 3xx.
    expected_status: Option<u16>,
    interval: Duration,
    unhealthy_interval: Duration,
    timeout: Duration,
}

impl HealthCheckConfig {
    /// Resolves `check` against the server it probes.
    pub(crate) fn new(
        check: &v1::HealthCheck,
        server: &ServerUrl,
    ) -> Result<Self, HealthCheckError> {
        match check.mode.to_ascii_lowercase().as_str() {
            "" | "http" => {}
            "grpc" => return Err(HealthCheckError::GrpcMode),
            other => return Err(HealthCheckError::Mode(other.to_owned())),
        }
        let protocol = match check.scheme.to_ascii_lowercase().as_str() {
            "" => server.protocol,
            "http" => Protocol::Http1,
            "h2c" => Protocol::H2c,
            "https" => Protocol::Https,
            other => return Err(HealthCheckError::Scheme(other.to_owned())),
        };
        let port = u16::try_from(check.port)
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or(server.port);
        let path = match check.path.as_str() {
            "" => "/",
            p => p,
        };
        let scheme = if protocol == Protocol::Https {
            "https"
        } else {
            "http"
        };
        let uri = format!("{scheme}://{}:{port}{path}", server.host)
            .parse()
            .map_err(|_| HealthCheckError::Path(check.path.clone()))?;
        let method = match check.method.as_str() {
            "" => Method::GET,
            m => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| HealthCheckError::Method(m.to_owned()))?,
        };
        let host = match check.hostname.as_str() {
            "" => None,
            h => Some(
                HeaderValue::from_str(h).map_err(|_| HealthCheckError::Hostname(h.to_owned()))?,
            ),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &check.headers {
            let invalid = || HealthCheckError::Header(name.clone());
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?,
                HeaderValue::from_str(value).map_err(|_| invalid())?,
            );
        }
        let interval = positive_ms(check.interval_ms).unwrap_or(DEFAULT_INTERVAL);
        Ok(Self {
            protocol,
            uri,
            method,
            host,
            headers,
            expected_status: u16::try_from(check.status).ok().filter(|&s| s != 0),
            interval,
            unhealthy_interval: positive_ms(check.unhealthy_interval_ms).unwrap_or(interval),
            timeout: positive_ms(check.timeout_ms).unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// Sends one probe; `Err` says why the server is unhealthy.
    async fn probe(&self, client: &UpstreamClient) -> Result<(), String> {
        let mut request = Request::new(ProxyBody::empty());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = match self.protocol {
            Protocol::H2c => Version::HTTP_2,
            Protocol::Http1 | Protocol::Https => Version::HTTP_11,
        };
        *request.headers_mut() = self.headers.clone();
        if let Some(host) = &self.host {
            request.headers_mut().insert(header::HOST, host.clone());
        }
        let exchange = async {
            let response = client
                .send(self.protocol, request, None)
                .await
                .map_err(|e| crate::report::chain(&e))?;
            let status = response.status();
            // Read a little of the body so the connection can be reused.
            let mut body = response.into_body();
            let mut read = 0;
            while read < MAX_PROBE_BODY {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                    Some(Err(_)) | None => break,
                }
            }
            Ok::<_, String>(status)
        };
        let status = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no response within {:?}", self.timeout))??;
        let healthy = match self.expected_status {
            Some(expected) => status.as_u16() == expected,
            None => status.is_success() || status.is_redirection(),
        };
        if healthy {
            Ok(())
        } else {
            Err(format!("unexpected status {status}"))
        }
    }
}

fn positive_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// A server the runtime wants checked.
#[derive(Debug)]
pub(crate) struct CheckSpec {
    /// Which server.
    pub(crate) key: ServerKey,
    /// How.
    pub(crate) config: HealthCheckConfig,
    /// Where results go.
    pub(crate) health: Arc<ServerHealth>,
    /// The client of the server's transport.
    pub(crate) client: Arc<UpstreamClient>,
}

#[derive(Debug)]
struct RunningCheck {
    config: HealthCheckConfig,
    /// Probes go through this client: a changed servers transport means a new one.
    client: Arc<UpstreamClient>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Health of every checked server and the tasks checking them.
#[derive(Debug)]
pub(crate) struct HealthChecks {
    epoch: Arc<AtomicU64>,
    statuses: DashMap<ServerKey, Arc<ServerHealth>>,
    /// Only touched when a snapshot is applied, never on the request path.
    running: Mutex<HashMap<ServerKey, RunningCheck>>,
    cancel: CancellationToken,
}

impl HealthChecks {
    /// An empty registry whose tasks stop when `cancel` fires.
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            epoch: Arc::new(AtomicU64::new(0)),
            statuses: DashMap::new(),
            running: Mutex::new(HashMap::new()),
            cancel,
        }
    }

    /// The epoch bumped whenever any server's health changes.
    pub(crate) fn epoch(&self) -> Arc<AtomicU64> {
        self.epoch.clone()
    }

    /// Health of a server without checks: always healthy.
    pub(crate) fn unchecked(&self) -> Arc<ServerHealth> {
        Arc::new(ServerHealth::new(self.epoch.clone()))
    }

    /// The long-lived health of a checked server (healthy until a probe fails).
    pub(crate) fn checked(&self, key: &ServerKey) -> Arc<ServerHealth> {
        self.statuses
            .entry(key.clone())
            .or_insert_with(|| Arc::new(ServerHealth::new(self.epoch.clone())))
            .clone()
    }

    /// Makes the running checks exactly `specs`: starts new ones, restarts
    /// those whose check or transport changed, stops and forgets the others.
    pub(crate) fn reconcile(&self, specs: Vec<CheckSpec>) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let wanted: HashMap<ServerKey, CheckSpec> =
            specs.into_iter().map(|s| (s.key.clone(), s)).collect();
        running.retain(|key, check| {
            let keep = wanted.get(key).is_some_and(|spec| {
                spec.config == check.config && Arc::ptr_eq(&spec.client, &check.client)
            });
            if !keep {
                check.cancel.cancel();
            }
            keep
        });
        self.statuses.retain(|key, _| wanted.contains_key(key));
        for (key, spec) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let cancel = self.cancel.child_token();
            let task = tokio::spawn(run_check(
                key.clone(),
                spec.config.clone(),
                spec.health,
                Arc::clone(&spec.client),
                cancel.clone(),
            ));
            running.insert(
                key,
                RunningCheck {
                    config: spec.config,
                    client: spec.client,
                    cancel,
                    task,
                },
            );
        }
    }

    /// Stops every check and waits for the tasks to end.
    pub(crate) async fn shutdown(&self) {
        let checks: Vec<RunningCheck> = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            running.drain().map(|(_, check)| check).collect()
        };
        for check in checks {
            check.cancel.cancel();
            // A check that panicked has nothing left to stop.
            let _ = check.task.await;
        }
    }
}

async fn run_check(
    key: ServerKey,
    config: HealthCheckConfig,
    health: Arc<ServerHealth>,
    client: Arc<UpstreamClient>,
    cancel: CancellationToken,
) {
    loop {
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            result = config.probe(&client) => result,
        };
        match result {
            Ok(()) => {
                if health.set(true) {
                    tracing::info!(service = %key.service, server = %key.url, "server is healthy again");
                }
            }
            Err(reason) => {
                if health.set(false) {
                    tracing::warn!(
                        service = %key.service,
                        server = %key.url,
                        %reason,
                        "server failed its health check and leaves the rotation"
                    );
                }
            }
        }
        let wait = if health.is_healthy() {
            config.interval
        } else {
            config.unhealthy_interval
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UpstreamConfig;

    fn server() -> ServerUrl {
        ServerUrl::parse("http://127.0.0.1:8080").unwrap()
    }

    #[test]
    fn defaults_and_overrides() {
        let config = HealthCheckConfig::new(
            &v1::HealthCheck {
                path: "/health".into(),
                port: 9000,
                ..Default::default()
            },
            &server(),
        )
        .unwrap();
        assert_eq!(config.uri, "http://127.0.0.1:9000/health");
        assert_eq!(config.method, Method::GET);
        assert_eq!(config.interval, DEFAULT_INTERVAL);
        assert_eq!(config.unhealthy_interval, DEFAULT_INTERVAL);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.expected_status, None);
        let grpc = v1::HealthCheck {
            mode: "grpc".into(),
            ..Default::default()
        };
        assert!(matches!(
            HealthCheckConfig::new(&grpc, &server()),
            Err(HealthCheckError::GrpcMode)
        ));
    }

    #[tokio::test]
    async fn a_changed_transport_restarts_the_check() {
        let checks = HealthChecks::new(CancellationToken::new());
        let key = ServerKey {
            service: "s".into(),
            url: "http://127.0.0.1:9".into(),
        };
        let config = HealthCheckConfig::new(
            &v1::HealthCheck {
                path: "/health".into(),
                ..Default::default()
            },
            &server(),
        )
        .unwrap();
        let client = |transport: Option<&v1::ServersTransport>| {
            Arc::new(UpstreamClient::new(&UpstreamConfig::default(), transport).unwrap())
        };
        let spec = |client: &Arc<UpstreamClient>| CheckSpec {
            key: key.clone(),
            config: config.clone(),
            health: checks.checked(&key),
            client: Arc::clone(client),
        };
        let running_client = || {
            let running = checks.running.lock().unwrap();
            Arc::clone(&running[&key].client)
        };
        let first = client(None);
        checks.reconcile(vec![spec(&first)]);
        checks.reconcile(vec![spec(&first)]);
        assert!(Arc::ptr_eq(&running_client(), &first), "unchanged: kept");
        let insecure = client(Some(&v1::ServersTransport {
            insecure_skip_verify: true,
            ..Default::default()
        }));
        checks.reconcile(vec![spec(&insecure)]);
        assert!(
            Arc::ptr_eq(&running_client(), &insecure),
            "new transport: restarted"
        );
        checks.shutdown().await;
    }

    #[test]
    fn health_changes_bump_the_epoch() {
        let checks = HealthChecks::new(CancellationToken::new());
        let key = ServerKey {
            service: "s".into(),
            url: "http://x".into(),
        };
        let health = checks.checked(&key);
        assert!(Arc::ptr_eq(&health, &checks.checked(&key)));
        let epoch = checks.epoch();
        assert!(health.is_healthy());
        assert!(!health.set(true));
        assert_eq!(epoch.load(Ordering::Acquire), 0);
        assert!(health.set(false));
        assert!(!health.is_healthy());
        assert_eq!(epoch.load(Ordering::Acquire), 1);
    }
}
