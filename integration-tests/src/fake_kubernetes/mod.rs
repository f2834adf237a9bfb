//! A fake Kubernetes API server: the parts of the API that Sluice's
//! Kubernetes providers use, answering as a real API server does.
//!
//! - Resources: Services, Secrets (`/api/v1`), EndpointSlices
//!   (`discovery.k8s.io/v1`), Ingresses and IngressClasses
//!   (`networking.k8s.io/v1`), and Traefik's `traefik.io/v1alpha1` kinds;
//!   namespaced and cluster-wide paths.
//! - List: `{"kind":"<Kind>List","apiVersion","metadata":{"resourceVersion"},
//!   "items"}`, every object with its own `metadata.resourceVersion`.
//! - Watch (`?watch=true&resourceVersion=N`): a chunked stream of JSON lines
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object"}`, replaying the
//!   bounded event history after `N`, then live events; bookmarks when
//!   `allowWatchBookmarks` is set; the stream ends after `timeoutSeconds`.
//!   A `resourceVersion` older than the history answers an `ERROR` event
//!   with a `410 Expired` Status, which makes clients relist.
//! - `labelSelector` and `fieldSelector` on lists and watches; an object
//!   that stops matching is seen as `DELETED`, as the API server does.
//! - `PATCH .../ingresses/<name>/status` (merge patch).
//!
//! Objects are applied from YAML manifests, as `kubectl apply` would
//! (`stringData` of Secrets becomes base64 `data`).
//! [`FakeKubernetes::restart`] drops every connection and serves again on
//! the same port with the history gone, as a restarted API server does.

mod generate;
mod selector;
mod server;

pub use generate::application_name;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Events kept for watches that resume from a resourceVersion.
const HISTORY: usize = 1000;

/// A resource type served by the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
}

impl ResourceType {
    /// `v1` or `group/version`.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn resource(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        kind,
        namespaced,
    }
}

/// Every resource type the fake serves.
pub(crate) const RESOURCES: [ResourceType; 10] = [
    resource("", "v1", "services", "Service", true),
    resource("", "v1", "secrets", "Secret", true),
    resource(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
    ),
    resource("networking.k8s.io", "v1", "ingresses", "Ingress", true),
    resource(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
    ),
    resource(
        "traefik.io",
        "v1alpha1",
        "ingressroutes",
        "IngressRoute",
        true,
    ),
    resource("traefik.io", "v1alpha1", "middlewares", "Middleware", true),
    resource(
        "traefik.io",
        "v1alpha1",
        "traefikservices",
        "TraefikService",
        true,
    ),
    resource("traefik.io", "v1alpha1", "tlsoptions", "TLSOption", true),
    resource(
        "traefik.io",
        "v1alpha1",
        "serverstransports",
        "ServersTransport",
        true,
    ),
];

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) resource_version: u64,
    pub(crate) plural: &'static str,
    /// The object before the change (`None` when created).
    pub(crate) old: Option<Value>,
    /// The object after the change (`None` when deleted).
    pub(crate) new: Option<Value>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Objects by resource plural, then `(namespace, name)`.
    pub(crate) objects: BTreeMap<&'static str, BTreeMap<(String, String), Value>>,
    pub(crate) resource_version: u64,
    pub(crate) history: VecDeque<Change>,
    /// Watches from a resourceVersion at or below this answer 410.
    pub(crate) compacted: u64,
    /// List requests served, by resource plural.
    pub(crate) lists: BTreeMap<&'static str, usize>,
}

/// The API server's state, shared by the HTTP server and tests.
#[derive(Debug)]
pub(crate) struct ApiServer {
    pub(crate) state: Mutex<State>,
    pub(crate) changes: broadcast::Sender<Arc<Change>>,
}

impl ApiServer {
    fn record(&self, state: &mut State, change: Change) {
        if state.history.len() == HISTORY
            && let Some(dropped) = state.history.pop_front()
        {
            state.compacted = dropped.resource_version;
        }
        state.history.push_back(change.clone());
        let _ = self.changes.send(Arc::new(change));
    }
}

/// A running fake API server on 127.0.0.1.
#[derive(Debug)]
pub struct FakeKubernetes {
    pub address: SocketAddr,
    server: Arc<ApiServer>,
    task: Option<JoinHandle<()>>,
}

impl FakeKubernetes {
    /// Starts an API server with no object.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts an API server with no object on 127.0.0.1:`port` (0: a free
    /// one).
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the fake API server");
        let address = listener.local_addr().expect("fake API server address");
        let (changes, _) = broadcast::channel(4096);
        let server = Arc::new(ApiServer {
            state: Mutex::new(State {
                resource_version: 1000,
                ..State::default()
            }),
            changes,
        });
        let task = Some(server::serve(listener, Arc::clone(&server)));
        Self {
            address,
            server,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, for the providers' `endpoint` option.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Applies every document of a YAML manifest (created or replaced).
    pub fn apply_yaml(&self, manifest: &str) {
        for document in serde_yaml::Deserializer::from_str(manifest) {
            let object = Value::deserialize(document).expect("manifest document");
            if !object.is_null() {
                self.apply(object);
            }
        }
    }

    /// Applies one object (created or replaced).
    pub fn apply(&self, mut object: Value) {
        let resource = resource_of(&object);
        normalize(&mut object, &resource);
        let key = object_key(&object);
        let mut state = self.server.state.lock().unwrap();
        state.resource_version += 1;
        let version = state.resource_version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let old = state
            .objects
            .entry(resource.plural)
            .or_default()
            .insert(key, object.clone());
        if let Some(old) = &old {
            object["metadata"]["uid"] = old["metadata"]["uid"].clone();
        }
        self.server.record(
            &mut state,
            Change {
                resource_version: version,
                plural: resource.plural,
                old,
                new: Some(object),
            },
        );
    }

    /// Applies `count` generated applications (an Ingress, a Service and
    /// its EndpointSlice each, shaped as in a real cluster) and the
    /// IngressClass `sluice` their Ingresses name; see [`application_name`].
    pub fn apply_applications(&self, count: usize) {
        self.apply(generate::ingress_class());
        for index in 0..count {
            for object in generate::application(index) {
                self.apply(object);
            }
        }
    }

    /// Replaces the first Pod of generated application `index` with a new
    /// one at a new address (`generation` counts the churns, from 1), as a
    /// rollout does: one EndpointSlice changes.
    pub fn churn_application_pod(&self, index: usize, generation: usize) {
        self.apply(generate::endpoint_slice(index, generation));
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.server.state.lock().unwrap().resource_version
    }

    /// Deletes an object; `kind` as in manifests (`Ingress`).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let resource = RESOURCES
            .iter()
            .find(|resource| resource.kind == kind)
            .unwrap_or_else(|| panic!("unknown kind {kind}"));
        let namespace = if resource.namespaced { namespace } else { "" };
        let mut state = self.server.state.lock().unwrap();
        let removed = state
            .objects
            .entry(resource.plural)
            .or_default()
            .remove(&(namespace.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"));
        state.resource_version += 1;
        let version = state.resource_version;
        self.server.record(
            &mut state,
            Change {
                resource_version: version,
                plural: resource.plural,
                old: Some(removed),
                new: None,
            },
        );
    }

    /// The stored object, as a GET would return it.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = RESOURCES.iter().find(|resource| resource.kind == kind)?;
        let state = self.server.state.lock().unwrap();
        state
            .objects
            .get(resource.plural)?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// How many list requests were served for a kind (`Ingress`).
    pub fn list_count(&self, kind: &str) -> usize {
        let state = self.server.state.lock().unwrap();
        RESOURCES
            .iter()
            .find(|resource| resource.kind == kind)
            .and_then(|resource| state.lists.get(resource.plural).copied())
            .unwrap_or(0)
    }

    /// Forgets the event history: a watch resuming from any earlier
    /// resourceVersion gets `410 Gone` and must relist.
    pub fn compact(&self) {
        let mut state = self.server.state.lock().unwrap();
        state.history.clear();
        state.compacted = state.resource_version;
    }

    /// Closes the listener and every connection, then serves the same
    /// objects on the same port with the history compacted, as an API
    /// server restarted on top of etcd does.
    pub async fn restart(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.compact();
        let address = self.address;
        let listener = crate::wait::eventually(
            "the fake API server's port to be free again",
            Duration::from_secs(10),
            || async move {
                TcpListener::bind(address)
                    .await
                    .map_err(|error| error.to_string())
            },
        )
        .await;
        self.task = Some(server::serve(listener, Arc::clone(&self.server)));
    }
}

impl Drop for FakeKubernetes {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The resource type of a manifest object, by `apiVersion` and `kind`.
fn resource_of(object: &Value) -> ResourceType {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    *RESOURCES
        .iter()
        .find(|resource| resource.kind == kind && resource.api_version() == api_version)
        .unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"))
}

/// Fills what the API server fills: namespace, uid, creation time;
/// a Secret's `stringData` becomes `data`.
fn normalize(object: &mut Value, resource: &ResourceType) {
    let metadata = &mut object["metadata"];
    if resource.namespaced && metadata["namespace"].is_null() {
        metadata["namespace"] = json!("default");
    }
    if metadata["uid"].is_null() {
        let name = metadata["name"].as_str().unwrap_or_default().to_owned();
        let namespace = metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        metadata["uid"] = json!(format!("{}-{namespace}-{name}", resource.plural));
    }
    if metadata["creationTimestamp"].is_null() {
        metadata["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    }
    if resource.kind == "Secret"
        && let Some(Value::Object(strings)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        let data = object["data"].as_object().cloned().unwrap_or_default();
        let mut data = data;
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(key, json!(encoded));
        }
        object["data"] = Value::Object(data);
    }
}

/// `(namespace, name)` of an object.
pub(crate) fn object_key(object: &Value) -> (String, String) {
    let metadata = &object["metadata"];
    (
        metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        metadata["name"].as_str().unwrap_or_default().to_owned(),
    )
}
