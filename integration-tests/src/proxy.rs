//! A `sluice-proxy` process.

use std::time::Duration;

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
}
