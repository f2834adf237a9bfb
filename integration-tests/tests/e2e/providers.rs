//! Provider scenarios: routes from Consul KV, the Consul Catalog, a real
//! etcd and a real Redis, served by a real control plane and proxy.
//!
//! - [`consul`]: KV keys become routes, follow changes and deletions, a
//!   malformed key names itself while the rest ships; the catalog routes
//!   passing instances only; Consul going away keeps the routes.
//! - [`etcd`]: the same against a real etcd, killed and restarted; over
//!   mutual TLS; a missing TLS file named at startup.
//! - [`redis`]: the same against a real Redis, with keyspace notifications
//!   and, when they are off, by periodic reads.

mod consul;
mod etcd;
mod redis;

use std::time::Duration;

use integration_tests::{ControlPlane, ControlPlaneOptions, Proxy, eventually, request};

/// How long a change may take to reach the proxy, with ample margin for a
/// loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A control plane with entry point `web` and one more provider, and a
/// proxy serving its snapshots.
#[derive(Debug)]
struct Stack {
    control_plane: ControlPlane,
    proxy: Proxy,
}

impl Stack {
    /// Starts the control plane with `providers.<provider>` set to
    /// `settings` (YAML), and a proxy.
    async fn start(provider: &str, settings: &str) -> Self {
        let control_plane = ControlPlaneOptions::new()
            .entry_point("web")
            .provider(provider, settings)
            .start()
            .await;
        let proxy = Proxy::start(&control_plane.grpc_url(), "proxy-1", &[]);
        proxy.wait_ready().await;
        Self {
            control_plane,
            proxy,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.control_plane.entry_point_port("web")
        )
    }

    /// `GET /` with `host`: the backend that answered, or why not.
    async fn backend(&self, host: &str) -> Result<String, String> {
        self.backend_at(host, "/").await
    }

    async fn backend_at(&self, host: &str, path: &str) -> Result<String, String> {
        let url = self.url(path);
        let response = request("GET", &url, &[("host", host)], Vec::new()).await?;
        if response.status != 200 {
            return Err(format!("{host}{path} answered {}", response.status));
        }
        response
            .headers
            .get("x-backend")
            .cloned()
            .ok_or_else(|| format!("{host}{path}: no x-backend header"))
    }

    /// Waits until `host` is served by `backend`.
    async fn wait_backend(&self, host: &str, backend: &str) {
        eventually(&format!("{host} served by {backend}"), DEADLINE, || async {
            match self.backend(host).await {
                Ok(answered) if answered == backend => Ok(()),
                Ok(answered) => Err(format!("served by {answered}")),
                Err(error) => Err(error),
            }
        })
        .await;
    }

    /// Waits until `host` answers 404: no router for it.
    async fn wait_not_found(&self, host: &str) {
        eventually(&format!("{host} to have no route"), DEADLINE, || async {
            let response = request("GET", &self.url("/"), &[("host", host)], Vec::new()).await?;
            if response.status == 404 {
                Ok(())
            } else {
                Err(format!("answered {}", response.status))
            }
        })
        .await;
    }

    /// Waits until `/api/providers` shows `provider` in `state`; returns
    /// its entry.
    async fn wait_provider_state(&self, provider: &str, state: &str) -> serde_json::Value {
        eventually(
            &format!("provider {provider} to be {state}"),
            DEADLINE,
            || async {
                let providers = self.control_plane.api("/api/providers").await;
                let entry = &providers[provider];
                if entry["state"] == state {
                    Ok(entry.clone())
                } else {
                    Err(format!("/api/providers: {providers}"))
                }
            },
        )
        .await
    }
}
