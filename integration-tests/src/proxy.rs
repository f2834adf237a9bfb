//! A `sluice-proxy` process.

use std::time::Duration;

use crate::control_plane::SNAPSHOT_DEADLINE;
use crate::{ChildProcess, binary, eventually, free_port, get};

/// A running proxy connected to a control plane.
#[derive(Debug)]
pub struct Proxy {
    pub process: ChildProcess,
    pub node_id: String,
    /// `http://127.0.0.1:PORT` of the proxy's admin endpoint.
    pub admin_url: String,
}

impl Proxy {
    /// Starts a proxy; `entry_points` override addresses (name, port) so
    /// several proxies can run on one host.
    pub fn start(control_plane_url: &str, node_id: &str, entry_points: &[(&str, u16)]) -> Self {
        Self::start_with_args(control_plane_url, node_id, entry_points, &[])
    }

    /// Like [`Proxy::start`], with more command-line arguments
    /// (`--control-plane-ca`...).
    pub fn start_with_args(
        control_plane_url: &str,
        node_id: &str,
        entry_points: &[(&str, u16)],
        extra: &[String],
    ) -> Self {
        let admin_address = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "run".to_owned(),
            "--control-plane".to_owned(),
            control_plane_url.to_owned(),
            "--node-id".to_owned(),
            node_id.to_owned(),
            "--admin-address".to_owned(),
            admin_address.clone(),
            "--grace-period".to_owned(),
            "5s".to_owned(),
        ];
        for (name, port) in entry_points {
            args.push("--entry-point".to_owned());
            args.push(format!("{name}=127.0.0.1:{port}"));
        }
        args.extend(extra.iter().cloned());
        Self {
            process: ChildProcess::spawn(node_id, &binary("sluice-proxy"), &args),
            node_id: node_id.to_owned(),
            admin_url: format!("http://{admin_address}"),
        }
    }

    /// Waits until `/ready` answers 200 (a snapshot is applied).
    pub async fn wait_ready(&self) {
        let url = format!("{}/ready", self.admin_url);
        eventually(
            &format!("proxy {} to be ready", self.node_id),
            Duration::from_secs(20),
            || async {
                let response = get(&url).await?;
                if response.status == 200 {
                    Ok(())
                } else {
                    Err(format!("/ready answered {}", response.status))
                }
            },
        )
        .await;
    }

    /// Waits until the proxy serves `version` (its admin endpoint says so).
    pub async fn wait_serving(&self, version: &str) {
        eventually(
            &format!("proxy {} to serve {version}", self.node_id),
            SNAPSHOT_DEADLINE,
            || async {
                let serving = self.version().await;
                if serving == version {
                    Ok(())
                } else {
                    Err(format!("it serves `{serving}`"))
                }
            },
        )
        .await;
    }

    /// `127.0.0.1:PORT` of the admin endpoint, as `--admin-address` takes it.
    pub fn admin_address(&self) -> &str {
        self.admin_url.trim_start_matches("http://")
    }

    /// GET an admin endpoint path (e.g. `/api/snapshot`), as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let response = get(&format!("{}{path}", self.admin_url))
            .await
            .unwrap_or_else(|error| panic!("proxy {} admin {path}: {error}", self.node_id));
        response.json()
    }

    /// The snapshot version the proxy serves (`""` before the first).
    pub async fn version(&self) -> String {
        self.admin_json("/api/snapshot").await["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The proxy's peak resident memory so far (`VmHWM` in
    /// `/proc/PID/status`), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let path = format!("/proc/{}/status", self.process.pid());
        let status = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {path}: {error}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM line in {path}:\n{status}"))
    }
}
