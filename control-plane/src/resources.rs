//! A snapshot's resources, each behind an `Arc`.
//!
//! Consecutive snapshots share every resource a change did not touch, so
//! publishing a one-router change with thousands of routers copies pointers,
//! not routers; past snapshots kept for deltas cost only what changed; and a
//! delta finds the changed resources by pointer before comparing anything.

use std::cmp::Ordering;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_proto::ResourceNames;
use sluice_proto::v1::{
    Certificate, EntryPoint, Middleware, ResourceRef, Resources, Router, ServersTransport, Service,
    TlsOptions, TlsStore,
};

macro_rules! shared_resources {
    ($($field:ident: $resource:ty),* $(,)?) => {
        /// Every resource of a snapshot by kind, each list sorted by name
        /// with names unique (as the compiler seals them).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct SharedResources {
            $(pub $field: Vec<Arc<$resource>>,)*
        }

        impl SharedResources {
            /// Wraps sealed proto resources.
            pub fn from_proto(resources: Resources) -> Self {
                Self {
                    $($field: resources.$field.into_iter().map(Arc::new).collect(),)*
                }
            }

            /// The proto message: a deep copy, for full states and humans.
            pub fn to_proto(&self) -> Resources {
                Resources {
                    $($field: self.$field.iter().map(|resource| (**resource).clone()).collect(),)*
                }
            }

            /// The hash of the whole set: every (kind, name, content version).
            pub fn content_hash(&self) -> String {
                let mut hasher = Sha256::new();
                $(feed(&mut hasher, &self.$field);)*
                hex::encode(&hasher.finalize()[..8])
            }

            /// What brings a holder of `base` to `self`: the resources new or
            /// changed since, and the names of those gone (by kind, then name).
            pub fn changes_since(&self, base: &Self) -> (Resources, Vec<ResourceRef>) {
                let mut removals = Vec::new();
                let upserts = Resources {
                    $($field: changes_in_kind(&base.$field, &self.$field, &mut removals),)*
                };
                (upserts, removals)
            }
        }
    };
}

shared_resources! {
    entry_points: EntryPoint,
    routers: Router,
    services: Service,
    middlewares: Middleware,
    certificates: Certificate,
    tls_options: TlsOptions,
    tls_stores: TlsStore,
    servers_transports: ServersTransport,
}

fn feed<T: ResourceNames>(hasher: &mut Sha256, list: &[Arc<T>]) {
    for resource in list {
        hasher.update((T::KIND as i32).to_be_bytes());
        hasher.update(resource.name().as_bytes());
        hasher.update([0]);
        hasher.update(resource.content_version().as_bytes());
        hasher.update([0]);
    }
}

/// Walks both lists (sorted by name) side by side. A resource shared with
/// `base` is unchanged without a look at its content.
fn changes_in_kind<T: ResourceNames + Clone>(
    base: &[Arc<T>],
    target: &[Arc<T>],
    removals: &mut Vec<ResourceRef>,
) -> Vec<T> {
    let removal = |resource: &T| ResourceRef {
        kind: T::KIND as i32,
        name: resource.name().to_owned(),
    };
    let mut upserts = Vec::new();
    let (mut before, mut after) = (base.iter().peekable(), target.iter().peekable());
    loop {
        let order = match (before.peek(), after.peek()) {
            (None, None) => break,
            (Some(old), Some(new)) if Arc::ptr_eq(old, new) => Ordering::Equal,
            (Some(old), Some(new)) => old.name().cmp(new.name()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        match order {
            Ordering::Less => removals.extend(before.next().map(|old| removal(old))),
            Ordering::Greater => upserts.extend(after.next().map(|new| (**new).clone())),
            Ordering::Equal => {
                let (Some(old), Some(new)) = (before.next(), after.next()) else {
                    unreachable!("both sides were peeked")
                };
                if !Arc::ptr_eq(old, new) && old.content_version() != new.content_version() {
                    upserts.push((**new).clone());
                }
            }
        }
    }
    upserts
}

#[cfg(test)]
mod tests {
    use sluice_proto::v1::ResourceKind;

    use super::*;

    fn router(name: &str, version: &str) -> Arc<Router> {
        Arc::new(Router {
            name: name.to_owned(),
            content_version: version.to_owned(),
            ..Router::default()
        })
    }

    #[test]
    fn changes_hold_new_and_changed_resources_and_name_the_removed() {
        let shared = router("b@file", "1");
        let base = SharedResources {
            routers: vec![
                router("a@file", "1"),
                Arc::clone(&shared),
                router("c@file", "1"),
            ],
            ..SharedResources::default()
        };
        let target = SharedResources {
            routers: vec![
                router("a@file", "1"),
                shared,
                router("c@file", "2"),
                router("d@file", "1"),
            ],
            services: vec![Arc::new(Service {
                name: "s@file".to_owned(),
                ..Service::default()
            })],
            ..SharedResources::default()
        };
        let (upserts, removals) = target.changes_since(&base);
        let names = |routers: &[Router]| -> Vec<String> {
            routers.iter().map(|router| router.name.clone()).collect()
        };
        assert_eq!(names(&upserts.routers), ["c@file", "d@file"]);
        assert_eq!(upserts.services.len(), 1);
        assert!(removals.is_empty());

        let (upserts, removals) = base.changes_since(&target);
        assert_eq!(names(&upserts.routers), ["c@file"]);
        let removed: Vec<(i32, &str)> = removals
            .iter()
            .map(|removal| (removal.kind, removal.name.as_str()))
            .collect();
        assert_eq!(
            removed,
            [
                (ResourceKind::Router as i32, "d@file"),
                (ResourceKind::Service as i32, "s@file")
            ]
        );
    }

    #[test]
    fn the_hash_names_the_content_not_the_sharing() {
        let one = SharedResources {
            routers: vec![router("a@file", "1")],
            ..SharedResources::default()
        };
        let copy = SharedResources::from_proto(one.to_proto());
        assert_eq!(one.content_hash(), copy.content_hash());
        let changed = SharedResources {
            routers: vec![router("a@file", "2")],
            ..SharedResources::default()
        };
        assert_ne!(one.content_hash(), changed.content_hash());
    }
}
