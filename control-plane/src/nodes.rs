//! What the control plane knows of each proxy: which version it was sent,
//! which it acknowledged, its last rejection. Read by `ListNodes`, the admin
//! API and the dashboard.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_proto::v1::{Hello, Nack, NodeStatus};

/// Per-node state, keyed by node id. A node that reconnects replaces its
/// previous entry; a stream that ends only marks its own connection gone.
#[derive(Debug, Default)]
pub(crate) struct NodeRegistry {
    nodes: Mutex<BTreeMap<String, (u64, NodeStatus)>>,
    next_connection: Mutex<u64>,
}

/// Identifies one Watch stream of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connection {
    node_id: String,
    id: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

impl NodeRegistry {
    /// Records a new stream from the node that said `hello`.
    pub(crate) fn connect(&self, hello: &Hello, peer: String) -> Connection {
        let id = {
            let mut next = self
                .next_connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let now = now_ms();
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = nodes.remove(&hello.node_id).map(|(_, status)| status);
        let status = NodeStatus {
            node_id: hello.node_id.clone(),
            labels: hello.labels.clone(),
            build_version: hello.build_version.clone(),
            peer,
            connected: true,
            connected_since_ms: now,
            last_seen_ms: now,
            version_served: String::new(),
            version_acked: hello.version.clone(),
            last_nack: previous
                .as_ref()
                .and_then(|status| status.last_nack.clone()),
            last_nack_ms: previous.map_or(0, |status| status.last_nack_ms),
        };
        nodes.insert(hello.node_id.clone(), (id, status));
        Connection {
            node_id: hello.node_id.clone(),
            id,
        }
    }

    fn update(&self, connection: &Connection, change: impl FnOnce(&mut NodeStatus)) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((id, status)) = nodes.get_mut(&connection.node_id)
            && *id == connection.id
        {
            status.last_seen_ms = now_ms();
            change(status);
        }
    }

    /// The node was sent `version`.
    pub(crate) fn served(&self, connection: &Connection, version: &str) {
        self.update(connection, |status| {
            status.version_served = version.to_owned()
        });
    }

    /// The node applied `version`.
    pub(crate) fn acked(&self, connection: &Connection, version: &str) {
        self.update(connection, |status| {
            status.version_acked = version.to_owned()
        });
    }

    /// The node rejected a version.
    pub(crate) fn nacked(&self, connection: &Connection, nack: Nack) {
        self.update(connection, |status| {
            status.last_nack = Some(nack);
            status.last_nack_ms = now_ms();
        });
    }

    /// The stream ended.
    pub(crate) fn disconnect(&self, connection: &Connection) {
        self.update(connection, |status| status.connected = false);
    }

    /// Every node seen since start, by node id.
    pub(crate) fn list(&self) -> Vec<NodeStatus> {
        let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        nodes.values().map(|(_, status)| status.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(node: &str) -> Hello {
        Hello {
            node_id: node.to_owned(),
            version: "3-abc".to_owned(),
            ..Hello::default()
        }
    }

    #[test]
    fn a_stale_stream_does_not_mark_a_reconnected_node_gone() {
        let registry = NodeRegistry::default();
        let old = registry.connect(&hello("p1"), "127.0.0.1:1".to_owned());
        let new = registry.connect(&hello("p1"), "127.0.0.1:2".to_owned());
        registry.disconnect(&old);
        registry.acked(&new, "4-def");
        let nodes = registry.list();
        assert_eq!(nodes.len(), 1);
        assert!(nodes[0].connected);
        assert_eq!(nodes[0].version_acked, "4-def");
        assert_eq!(nodes[0].peer, "127.0.0.1:2");
    }

    #[test]
    fn a_nack_is_kept_across_reconnects() {
        let registry = NodeRegistry::default();
        let first = registry.connect(&hello("p1"), String::new());
        registry.nacked(
            &first,
            Nack {
                version: "5-x".to_owned(),
                error: "cannot bind".to_owned(),
            },
        );
        registry.disconnect(&first);
        registry.connect(&hello("p1"), String::new());
        assert_eq!(
            registry.list()[0].last_nack.as_ref().unwrap().error,
            "cannot bind"
        );
    }
}
