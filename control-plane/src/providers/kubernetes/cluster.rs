//! A read-only view of everything the watchers hold, indexed the way the
//! builders look things up: Services and Secrets by `namespace/name`,
//! EndpointSlices by the Service they belong to. Objects are sorted by
//! namespace and name, so building is deterministic.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::api::DynamicObject;

use super::crd::CrdKind;

/// `(namespace, name)`.
pub(super) type Key = (String, String);

/// The stores' content at one moment.
#[derive(Debug, Default)]
pub(super) struct Cluster {
    /// Ingresses, by namespace then name.
    pub(super) ingresses: Vec<Arc<Ingress>>,
    /// IngressClasses, by name.
    pub(super) ingress_classes: Vec<Arc<IngressClass>>,
    /// Services by `(namespace, name)`.
    pub(super) services: HashMap<Key, Arc<Service>>,
    /// EndpointSlices by `(namespace, service name)`, sorted by name.
    pub(super) slices: HashMap<Key, Vec<Arc<EndpointSlice>>>,
    /// Secrets by `(namespace, name)`.
    pub(super) secrets: HashMap<Key, Arc<Secret>>,
    /// Traefik custom resources, by kind then namespace and name.
    pub(super) custom: Vec<(CrdKind, Arc<DynamicObject>)>,
}

impl Cluster {
    /// Indexes the objects.
    pub(super) fn new(
        mut ingresses: Vec<Arc<Ingress>>,
        mut ingress_classes: Vec<Arc<IngressClass>>,
        services: Vec<Arc<Service>>,
        slices: Vec<Arc<EndpointSlice>>,
        secrets: Vec<Arc<Secret>>,
        mut custom: Vec<(CrdKind, Arc<DynamicObject>)>,
    ) -> Self {
        ingresses.sort_by_key(|ingress| key(&**ingress));
        ingress_classes.sort_by_key(|class| class.name_any());
        custom.sort_by(|(a, left), (b, right)| (a, key(&**left)).cmp(&(b, key(&**right))));
        let mut by_service: HashMap<Key, Vec<Arc<EndpointSlice>>> = HashMap::new();
        for slice in slices {
            let Some(service) = slice.labels().get("kubernetes.io/service-name").cloned() else {
                continue;
            };
            by_service
                .entry((slice.namespace().unwrap_or_default(), service))
                .or_default()
                .push(slice);
        }
        for slices in by_service.values_mut() {
            slices.sort_by_key(|slice| slice.name_any());
        }
        Self {
            ingresses,
            ingress_classes,
            services: services.into_iter().map(|s| (key(&*s), s)).collect(),
            slices: by_service,
            secrets: secrets.into_iter().map(|s| (key(&*s), s)).collect(),
            custom,
        }
    }

    /// The Service `namespace/name`.
    pub(super) fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|service| &**service)
    }

    /// The EndpointSlices of Service `namespace/name`.
    pub(super) fn slices_of(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        self.slices
            .get(&(namespace.to_owned(), service.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// The Secret `namespace/name`.
    pub(super) fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|secret| &**secret)
    }
}

/// `(namespace, name)` of an object.
pub(super) fn key(object: &impl ResourceExt) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}
