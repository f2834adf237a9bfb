//! The resources the proxy holds, keyed by kind and name, so that deltas
//! (upserts and removals by name) apply to them; and the full resource set
//! the runtime is built from, borrowed from them.
//!
//! Applying an update never mutates: it returns the new state, which the
//! caller keeps only once a runtime has been built from it, so a rejected
//! update leaves the held state (and version) as they were. Resources are
//! shared between the old and the new state, so a delta costs what it
//! carries, not what the proxy holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_proto::ResourceNames;
use sluice_proto::v1::{self, ResourceKind, Resources, SnapshotUpdate};

/// Why an update cannot be applied to the held state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The delta was computed against another version.
    #[error("delta applies to version `{base}` but this proxy holds `{held}`")]
    BaseMismatch {
        /// The delta's base version.
        base: String,
        /// The version held.
        held: String,
    },
    /// A removal names no known kind.
    #[error("removal of `{name}` has an unknown resource kind ({kind})")]
    UnknownKind {
        /// The resource name.
        name: String,
        /// The kind number received.
        kind: i32,
    },
}

/// Resources by kind and name, at a version.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResourceState {
    version: String,
    entry_points: Kind<sluice_proto::v1::EntryPoint>,
    routers: Kind<sluice_proto::v1::Router>,
    services: Kind<sluice_proto::v1::Service>,
    middlewares: Kind<sluice_proto::v1::Middleware>,
    certificates: Kind<sluice_proto::v1::Certificate>,
    tls_options: Kind<sluice_proto::v1::TlsOptions>,
    tls_stores: Kind<sluice_proto::v1::TlsStore>,
    servers_transports: Kind<sluice_proto::v1::ServersTransport>,
}

type Kind<T> = BTreeMap<String, Arc<T>>;

impl ResourceState {
    /// The version held (`""` for none).
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// The state after `update`.
    pub(crate) fn apply(&self, update: SnapshotUpdate) -> Result<Self, StateError> {
        let mut next = if update.full_state {
            Self::default()
        } else if update.base_version != self.version {
            return Err(StateError::BaseMismatch {
                base: update.base_version,
                held: self.version.clone(),
            });
        } else {
            self.clone()
        };
        for removal in &update.removals {
            let name = removal.name.as_str();
            match ResourceKind::try_from(removal.kind) {
                Ok(ResourceKind::EntryPoint) => next.entry_points.remove(name).map(drop),
                Ok(ResourceKind::Router) => next.routers.remove(name).map(drop),
                Ok(ResourceKind::Service) => next.services.remove(name).map(drop),
                Ok(ResourceKind::Middleware) => next.middlewares.remove(name).map(drop),
                Ok(ResourceKind::Certificate) => next.certificates.remove(name).map(drop),
                Ok(ResourceKind::TlsOptions) => next.tls_options.remove(name).map(drop),
                Ok(ResourceKind::TlsStore) => next.tls_stores.remove(name).map(drop),
                Ok(ResourceKind::ServersTransport) => {
                    next.servers_transports.remove(name).map(drop)
                }
                Ok(ResourceKind::Unspecified) | Err(_) => {
                    return Err(StateError::UnknownKind {
                        name: name.to_owned(),
                        kind: removal.kind,
                    });
                }
            };
        }
        if let Some(upserts) = update.upserts {
            upsert(&mut next.entry_points, upserts.entry_points);
            upsert(&mut next.routers, upserts.routers);
            upsert(&mut next.services, upserts.services);
            upsert(&mut next.middlewares, upserts.middlewares);
            upsert(&mut next.certificates, upserts.certificates);
            upsert(&mut next.tls_options, upserts.tls_options);
            upsert(&mut next.tls_stores, upserts.tls_stores);
            upsert(&mut next.servers_transports, upserts.servers_transports);
        }
        next.version = update.version;
        Ok(next)
    }

    /// Every resource, each list sorted by name.
    pub(crate) fn resources(&self) -> ResourceSet<'_> {
        fn list<T>(kind: &Kind<T>) -> Vec<&T> {
            kind.values().map(|resource| &**resource).collect()
        }
        ResourceSet {
            entry_points: list(&self.entry_points),
            routers: list(&self.routers),
            services: list(&self.services),
            middlewares: list(&self.middlewares),
            certificates: list(&self.certificates),
            tls_options: list(&self.tls_options),
            tls_stores: list(&self.tls_stores),
            servers_transports: list(&self.servers_transports),
        }
    }
}

/// A whole resource set, borrowed: what a runtime is built from. Each kind
/// is sorted by name when it comes from a [`ResourceState`].
#[derive(Debug, Default)]
pub(crate) struct ResourceSet<'a> {
    pub(crate) entry_points: Vec<&'a v1::EntryPoint>,
    pub(crate) routers: Vec<&'a v1::Router>,
    pub(crate) services: Vec<&'a v1::Service>,
    pub(crate) middlewares: Vec<&'a v1::Middleware>,
    pub(crate) certificates: Vec<&'a v1::Certificate>,
    pub(crate) tls_options: Vec<&'a v1::TlsOptions>,
    pub(crate) tls_stores: Vec<&'a v1::TlsStore>,
    pub(crate) servers_transports: Vec<&'a v1::ServersTransport>,
}

impl<'a> From<&'a Resources> for ResourceSet<'a> {
    fn from(resources: &'a Resources) -> Self {
        Self {
            entry_points: resources.entry_points.iter().collect(),
            routers: resources.routers.iter().collect(),
            services: resources.services.iter().collect(),
            middlewares: resources.middlewares.iter().collect(),
            certificates: resources.certificates.iter().collect(),
            tls_options: resources.tls_options.iter().collect(),
            tls_stores: resources.tls_stores.iter().collect(),
            servers_transports: resources.servers_transports.iter().collect(),
        }
    }
}

fn upsert<T: ResourceNames>(kind: &mut Kind<T>, resources: Vec<T>) {
    for resource in resources {
        kind.insert(resource.name().to_owned(), Arc::new(resource));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::v1::{EntryPoint, ResourceRef, Router};

    fn router(name: &str, rule: &str) -> Router {
        Router {
            name: name.into(),
            rule: rule.into(),
            ..Default::default()
        }
    }

    fn full(version: &str, routers: Vec<Router>) -> SnapshotUpdate {
        SnapshotUpdate {
            version: version.into(),
            full_state: true,
            upserts: Some(Resources {
                entry_points: vec![EntryPoint {
                    name: "web".into(),
                    ..Default::default()
                }],
                routers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn full_state_replaces_everything() {
        let state = ResourceState::default()
            .apply(full("1", vec![router("a", "x"), router("b", "x")]))
            .unwrap();
        let state = state.apply(full("2", vec![router("c", "x")])).unwrap();
        assert_eq!(state.version(), "2");
        let names: Vec<_> = state
            .resources()
            .routers
            .into_iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["c"]);
    }

    #[test]
    fn deltas_upsert_and_remove_by_kind_and_name() {
        let state = ResourceState::default()
            .apply(full("1", vec![router("a", "old"), router("b", "x")]))
            .unwrap();
        let delta = SnapshotUpdate {
            version: "2".into(),
            base_version: "1".into(),
            full_state: false,
            upserts: Some(Resources {
                routers: vec![router("a", "new"), router("c", "x")],
                ..Default::default()
            }),
            removals: vec![
                ResourceRef {
                    kind: ResourceKind::Router.into(),
                    name: "b".into(),
                },
                // Same name, other kind: the router "web" does not exist, the entry point stays.
                ResourceRef {
                    kind: ResourceKind::Router.into(),
                    name: "web".into(),
                },
            ],
        };
        let next = state.apply(delta).unwrap();
        assert_eq!(next.version(), "2");
        let resources = next.resources();
        let routers: Vec<_> = resources
            .routers
            .iter()
            .map(|r| (r.name.as_str(), r.rule.as_str()))
            .collect();
        assert_eq!(routers, [("a", "new"), ("c", "x")]);
        assert_eq!(resources.entry_points.len(), 1);
        // The previous state is untouched.
        assert_eq!(state.version(), "1");
        assert_eq!(state.resources().routers.len(), 2);
    }

    #[test]
    fn deltas_on_another_base_are_refused() {
        let state = ResourceState::default().apply(full("1", vec![])).unwrap();
        let delta = SnapshotUpdate {
            version: "3".into(),
            base_version: "2".into(),
            ..Default::default()
        };
        assert!(matches!(
            state.apply(delta),
            Err(StateError::BaseMismatch { .. })
        ));
        let bad_kind = SnapshotUpdate {
            version: "2".into(),
            base_version: "1".into(),
            removals: vec![ResourceRef {
                kind: 0,
                name: "x".into(),
            }],
            ..Default::default()
        };
        assert!(matches!(
            state.apply(bad_kind),
            Err(StateError::UnknownKind { .. })
        ));
    }
}
