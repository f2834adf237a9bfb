//! State that outlives runtimes: pooled backend connections, server health
//! and its checkers, and rotation positions, keyed by stable identities
//! (service name, server URL) so that a snapshot swap does not reset them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use dashmap::DashMap;
use http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::service::{HealthChecks, UpstreamClient, UpstreamConfig};

/// Long-lived state shared by every runtime of one proxy.
#[derive(Debug)]
pub(crate) struct SharedState {
    /// `X-Forwarded-Server`: the node id.
    pub(crate) forwarded_server: HeaderValue,
    /// Pooled clients to backends.
    pub(crate) client: Arc<UpstreamClient>,
    /// Server health and health-check tasks.
    pub(crate) health: HealthChecks,
    /// Smooth weighted round robin positions, by service name.
    positions: DashMap<String, Arc<AtomicUsize>>,
    /// Fires when the grace period is over: tunnels (WebSocket...) close.
    pub(crate) hard_stop: CancellationToken,
}

impl SharedState {
    /// Fresh state for node `node_id`; background tasks stop with `hard_stop`.
    pub(crate) fn new(
        node_id: String,
        upstream: &UpstreamConfig,
        hard_stop: CancellationToken,
    ) -> Self {
        let forwarded_server = HeaderValue::from_str(&node_id)
            .unwrap_or_else(|_| HeaderValue::from_static("sluice-proxy"));
        Self {
            forwarded_server,
            client: Arc::new(UpstreamClient::new(upstream)),
            health: HealthChecks::new(hard_stop.child_token()),
            positions: DashMap::new(),
            hard_stop,
        }
    }

    /// The rotation position of service `name`.
    pub(crate) fn position(&self, name: &str) -> Arc<AtomicUsize> {
        if let Some(position) = self.positions.get(name) {
            return position.clone();
        }
        self.positions.entry(name.to_owned()).or_default().clone()
    }

    /// Forgets the positions of services no longer in use.
    pub(crate) fn retain_positions(&self, in_use: &HashSet<&str>) {
        self.positions
            .retain(|name, _| in_use.contains(name.as_str()));
    }
}
