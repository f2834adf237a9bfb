//! One `kube` watcher per kind and namespace, each feeding a reflector
//! store, and the signals that tell the provider to rebuild.
//!
//! A watcher lists, then watches from the list's `resourceVersion` with
//! bookmarks; when the API server answers `410 Gone` or the connection
//! drops, it relists with backoff. The reflector buffers a relist and swaps
//! the store's content when it is complete, so a reader never sees a
//! half-listed kind.
//!
//! Objects are trimmed before they are stored: `managedFields` and the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation are
//! bookkeeping of the API server and `kubectl`, often larger than the rest
//! of the object, and no route depends on them.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Connection;
use super::cluster::Cluster;
use super::crd::CrdKind;

/// Label every EndpointSlice managed for a Service carries.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The annotation `kubectl apply` leaves: a JSON copy of the whole object.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Helm keeps every release in a Secret of this type: large, numerous and
/// never referenced by a route, so not watched.
const SECRET_FIELD_SELECTOR: &str = "type!=helm.sh/release.v1";

/// Which set of kinds to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kinds {
    /// Ingresses, IngressClasses, Services, EndpointSlices, Secrets.
    Ingress,
    /// Traefik's custom resources, Services, EndpointSlices, Secrets.
    Crd,
}

/// What a watcher reports.
#[derive(Debug)]
pub(super) enum Signal {
    /// Watcher number `n` finished a (re)list: its store is complete.
    Synced(usize),
    /// An object was added, changed or deleted.
    Changed,
    /// The API server could not be read; the watcher retries with backoff.
    Failed(String),
}

/// The running watchers and their stores. Dropping it stops the watchers.
pub(super) struct Watchers {
    ingresses: Vec<Store<Ingress>>,
    ingress_classes: Vec<Store<IngressClass>>,
    services: Vec<Store<Service>>,
    slices: Vec<Store<EndpointSlice>>,
    secrets: Vec<Store<Secret>>,
    custom: Vec<(CrdKind, Store<DynamicObject>)>,
    signals: mpsc::UnboundedReceiver<Signal>,
    sender: mpsc::UnboundedSender<Signal>,
    tasks: JoinSet<()>,
    count: usize,
}

impl Watchers {
    /// Starts watching `kinds` in the connection's namespaces (all when
    /// none is set).
    pub(super) fn start(client: &Client, connection: &Connection, kinds: Kinds) -> Self {
        let (sender, signals) = mpsc::unbounded_channel();
        let mut watchers = Self {
            ingresses: Vec::new(),
            ingress_classes: Vec::new(),
            services: Vec::new(),
            slices: Vec::new(),
            secrets: Vec::new(),
            custom: Vec::new(),
            signals,
            sender,
            tasks: JoinSet::new(),
            count: 0,
        };
        let selected = || {
            let config = watcher::Config::default();
            if connection.label_selector.is_empty() {
                config
            } else {
                config.labels(&connection.label_selector)
            }
        };
        let namespaces: Vec<Option<&str>> = if connection.namespaces.is_empty() {
            vec![None]
        } else {
            connection
                .namespaces
                .iter()
                .map(|n| Some(n.as_str()))
                .collect()
        };
        for namespace in namespaces {
            match kinds {
                Kinds::Ingress => {
                    let store = watchers.spawn(api(client, namespace), (), selected());
                    watchers.ingresses.push(store);
                }
                Kinds::Crd => {
                    for kind in CrdKind::ALL {
                        let resource = kind.api_resource();
                        let api = match namespace {
                            Some(namespace) => {
                                Api::namespaced_with(client.clone(), namespace, &resource)
                            }
                            None => Api::all_with(client.clone(), &resource),
                        };
                        let store = watchers.spawn(api, resource, selected());
                        watchers.custom.push((kind, store));
                    }
                }
            }
            let store = watchers.spawn(api(client, namespace), (), watcher::Config::default());
            watchers.services.push(store);
            let slices = watcher::Config::default().labels(SERVICE_NAME_LABEL);
            let store = watchers.spawn(api(client, namespace), (), slices);
            watchers.slices.push(store);
            let secrets = watcher::Config::default().fields(SECRET_FIELD_SELECTOR);
            let store = watchers.spawn(api(client, namespace), (), secrets);
            watchers.secrets.push(store);
        }
        if kinds == Kinds::Ingress {
            let classes = Api::all(client.clone());
            let store = watchers.spawn(classes, (), watcher::Config::default());
            watchers.ingress_classes.push(store);
        }
        watchers
    }

    fn spawn<K>(
        &mut self,
        api: Api<K>,
        dyntype: K::DynamicType,
        config: watcher::Config,
    ) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Clone + Eq + Hash + Send + Sync,
    {
        let writer = reflector::store::Writer::new(dyntype);
        let store = writer.as_reader();
        let id = self.count;
        self.count += 1;
        let sender = self.sender.clone();
        self.tasks.spawn(async move {
            let events = watcher(api, config)
                .default_backoff()
                .modify(trim::<K>)
                .reflect(writer);
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                let signal = match event {
                    Ok(watcher::Event::InitDone) => Signal::Synced(id),
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Signal::Changed,
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                    Err(error) => Signal::Failed(error.to_string()),
                };
                if sender.send(signal).is_err() {
                    return;
                }
            }
        });
        store
    }

    /// Waits until every watcher has listed once, passing failures to
    /// `failed` meanwhile. False on `shutdown`.
    pub(super) async fn synced(
        &mut self,
        shutdown: &CancellationToken,
        mut failed: impl FnMut(String),
    ) -> bool {
        let mut synced = BTreeSet::new();
        while synced.len() < self.count {
            let signal = tokio::select! {
                () = shutdown.cancelled() => return false,
                signal = self.signals.recv() => signal,
            };
            match signal {
                Some(Signal::Synced(id)) => {
                    synced.insert(id);
                }
                Some(Signal::Changed) => {}
                Some(Signal::Failed(error)) => failed(error),
                None => return false,
            }
        }
        true
    }

    /// Waits for the next change, then `throttle`, and takes every signal
    /// that arrived meanwhile; returns the last one. `None` on `shutdown`.
    pub(super) async fn next_change(
        &mut self,
        shutdown: &CancellationToken,
        throttle: Duration,
    ) -> Option<Signal> {
        let mut last = tokio::select! {
            () = shutdown.cancelled() => return None,
            signal = self.signals.recv() => signal?,
        };
        if !throttle.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(throttle) => {}
            }
        }
        while let Ok(signal) = self.signals.try_recv() {
            last = signal;
        }
        Some(last)
    }

    /// Everything the stores hold now.
    pub(super) fn cluster(&self) -> Cluster {
        Cluster::new(
            states(&self.ingresses),
            states(&self.ingress_classes),
            states(&self.services),
            states(&self.slices),
            states(&self.secrets),
            self.custom
                .iter()
                .flat_map(|(kind, store)| store.state().into_iter().map(|object| (*kind, object)))
                .collect(),
        )
    }
}

/// Drops what no route reads and the stores would otherwise keep.
fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn states<K>(stores: &[Store<K>]) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Clone + Eq + Hash,
{
    stores.iter().flat_map(Store::state).collect()
}

/// The API resource of a kind, for watchers of custom resources.
pub(super) fn custom_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "traefik.io".to_owned(),
        version: "v1alpha1".to_owned(),
        api_version: "traefik.io/v1alpha1".to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_what_routes_read() {
        let mut service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "api",
                "namespace": "default",
                "labels": {"app": "api"},
                "annotations": {
                    LAST_APPLIED_ANNOTATION: "{\"apiVersion\":\"v1\"}",
                    "traefik.ingress.kubernetes.io/service.passhostheader": "false"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap();
        trim(&mut service);
        assert_eq!(service.metadata.managed_fields, None);
        let annotations = service.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["traefik.ingress.kubernetes.io/service.passhostheader"]
        );
        assert_eq!(service.metadata.labels.unwrap()["app"], "api");
        assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 80);
    }
}
