//! Proxy scenarios: routing, hot swap, resilience, streaming, shutdown.
//!
//! - [`fleet`]: two proxies follow file edits, survive a control-plane crash
//!   and resume without a full re-send; NACKed snapshots keep the old routes;
//!   `healthcheck`, `version`, `/ready`.
//! - [`protocols`]: WebSocket, gRPC to an h2c backend, 256 MiB up and down
//!   with bounded proxy memory.
//! - [`routing`]: priorities, path normalisation, forwarding headers.
//! - [`resilience`]: health checks, 200 snapshot swaps under `wrk` load,
//!   SIGTERM during a slow request.
//! - [`services`]: sticky sessions and mirroring.

mod fleet;
mod protocols;
mod resilience;
mod routing;
mod services;

use std::time::Duration;

use integration_tests::{ControlPlane, ControlPlaneOptions, Proxy, request};
use tokio::sync::{Mutex, MutexGuard};

/// How long a change may take to reach a proxy (debounce, compile, stream,
/// apply), or a proxy to reconnect, with ample margin for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// Tests that push a lot of traffic take turns, so that they do not starve
/// each other (and other tests) on a small machine.
static HEAVY: Mutex<()> = Mutex::const_new(());

async fn heavy_test() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}

/// A dynamic configuration file (`http.routers`, `http.services`) in
/// Traefik v3's YAML.
#[derive(Debug, Clone, Default)]
struct Routes {
    routers: String,
    services: String,
}

impl Routes {
    fn new() -> Self {
        Self::default()
    }

    /// A router on every entry point.
    fn router(self, name: &str, rule: &str, service: &str) -> Self {
        self.router_with(name, rule, service, "")
    }

    /// A router with more settings (YAML under the router, e.g.
    /// `"priority: 100"`).
    fn router_with(mut self, name: &str, rule: &str, service: &str, settings: &str) -> Self {
        let rule = rule.replace('\'', "''");
        self.routers.push_str(&format!(
            "    {name}:\n      rule: '{rule}'\n      service: {service}\n"
        ));
        for line in settings.lines() {
            self.routers.push_str(&format!("      {line}\n"));
        }
        self
    }

    /// A `loadBalancer` service over `urls`.
    fn load_balancer(self, name: &str, urls: &[String]) -> Self {
        self.load_balancer_with(name, urls, "")
    }

    /// A `loadBalancer` service with more settings (YAML under
    /// `loadBalancer`, e.g. a `healthCheck`).
    fn load_balancer_with(self, name: &str, urls: &[String], settings: &str) -> Self {
        let mut body = String::from("loadBalancer:\n  servers:\n");
        for url in urls {
            body.push_str(&format!("    - url: \"{url}\"\n"));
        }
        for line in settings.lines() {
            body.push_str(&format!("  {line}\n"));
        }
        self.service(name, &body)
    }

    /// A service given as YAML (under `http.services.<name>`).
    fn service(mut self, name: &str, body: &str) -> Self {
        self.services.push_str(&format!("    {name}:\n"));
        for line in body.lines() {
            self.services.push_str(&format!("      {line}\n"));
        }
        self
    }

    fn yaml(&self) -> String {
        let section = |name: &str, body: &str| {
            if body.is_empty() {
                format!("  {name}: {{}}\n")
            } else {
                format!("  {name}:\n{body}")
            }
        };
        format!(
            "http:\n{}{}",
            section("routers", &self.routers),
            section("services", &self.services)
        )
    }
}

/// The file every scenario keeps its routes in.
const ROUTES_FILE: &str = "routes.yml";

/// A control plane with the entry point `web`, and one proxy listening on
/// it, serving the control plane's current snapshot.
#[derive(Debug)]
struct Stack {
    control_plane: ControlPlane,
    proxy: Proxy,
}

impl Stack {
    async fn start(routes: &Routes) -> Self {
        Self::start_with(
            ControlPlaneOptions::new()
                .entry_point("web")
                .dynamic_file(ROUTES_FILE, &routes.yaml()),
        )
        .await
    }

    /// Starts the control plane as `options` say and a proxy `proxy-1` on
    /// its entry points' addresses.
    async fn start_with(options: ControlPlaneOptions) -> Self {
        let control_plane = options.start().await;
        let proxy = Proxy::start(&control_plane.grpc_url(), "proxy-1", &[]);
        proxy.wait_ready().await;
        proxy
            .wait_serving(&control_plane.current_version().await)
            .await;
        Self {
            control_plane,
            proxy,
        }
    }

    /// The port of entry point `web`.
    fn port(&self) -> u16 {
        self.control_plane.entry_point_port("web")
    }

    /// `http://127.0.0.1:<web port><path>`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// Rewrites the routes and waits until the proxy serves them.
    async fn update(&self, routes: &Routes) -> String {
        // The control plane's version, not the proxy's: they differ after a NACK.
        let old = self.control_plane.current_version().await;
        self.control_plane
            .write_dynamic(ROUTES_FILE, &routes.yaml());
        let version = self.control_plane.next_version(&old).await;
        self.proxy.wait_serving(&version).await;
        version
    }
}

/// Waits until every proxy serves `version` (its own admin endpoint says so).
async fn wait_serving(proxies: &[&Proxy], version: &str) {
    for proxy in proxies {
        proxy.wait_serving(version).await;
    }
}

/// `GET url` with a Host header; `Ok(x-backend)` when the answer is 200.
async fn backend_of(url: &str, host: &str) -> Result<String, String> {
    let response = request("GET", url, &[("host", host)], Vec::new()).await?;
    if response.status != 200 {
        return Err(format!(
            "GET {url} (Host {host}) answered {}: {}",
            response.status, response.body
        ));
    }
    response
        .headers
        .get("x-backend")
        .cloned()
        .ok_or_else(|| format!("GET {url}: no x-backend header in {:?}", response.headers))
}

/// The proxy's update counters from its admin endpoint: (full, delta, rejected).
async fn update_counts(proxy: &Proxy) -> (u64, u64, u64) {
    let snapshot = proxy.admin_json("/api/snapshot").await;
    let count = |key: &str| {
        snapshot[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no `{key}` in /api/snapshot: {snapshot}"))
    };
    (
        count("updatesFull"),
        count("updatesDelta"),
        count("updatesRejected"),
    )
}
