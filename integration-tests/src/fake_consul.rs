//! A fake Consul agent: the parts of Consul's HTTP API that Sluice's Consul
//! providers use, answering with Consul's documented bodies and headers.
//!
//! - `GET /v1/kv/<key>` (exact) and `?recurse` (prefix): entries
//!   `{"LockIndex","Key","Flags","Value" (base64, null when empty),
//!   "CreateIndex","ModifyIndex"}`, 404 when nothing matches;
//!   `PUT /v1/kv/<key>` (the body is the value) and `DELETE /v1/kv/<key>`
//!   (`?recurse` for a prefix) answer `true`.
//! - `GET /v1/catalog/services`: `{"<name>": ["<tag>", ...]}`, the `consul`
//!   service included as on a real agent.
//! - `GET /v1/health/service/<name>`: `[{"Node", "Service", "Checks"}]`,
//!   `?passing` keeps the instances whose checks all pass.
//! - Every answer carries `X-Consul-Index`: one modify index for the whole
//!   agent, raised by every write. A GET with `?index=N` blocks until the
//!   index passes N or `wait` (default 5m, at most 10m) expires, as Consul's
//!   blocking queries do.
//!
//! Services are registered and their checks changed with methods here (a
//! real agent gets them from its own configuration and health checks).
//! [`FakeConsul::stop`] closes the listener and every connection, as a
//! crashed agent would; [`FakeConsul::start_again`] serves the same state
//! on the same port. [`FakeConsul::start_tls`] serves the same API over
//! TLS (rustls) with a [`TestPki`] server certificate, requiring a client
//! certificate signed by its CA, as an agent with `verify_incoming` does.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::TestPki;

/// One KV entry.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    create_index: u64,
    modify_index: u64,
}

/// One registered service instance on the fake node.
#[derive(Debug, Clone)]
struct ServiceInstance {
    id: String,
    service: String,
    address: String,
    port: u16,
    tags: Vec<String>,
    /// `passing`, `warning` or `critical`.
    check_status: String,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Default)]
struct State {
    kv: BTreeMap<String, Entry>,
    instances: BTreeMap<String, ServiceInstance>,
}

/// The agent's state and its modify index, shared by the server and tests.
#[derive(Debug)]
struct Agent {
    state: Mutex<State>,
    index: watch::Sender<u64>,
}

impl Agent {
    /// Applies a write and raises the index, waking blocked queries.
    fn write<T>(&self, change: impl FnOnce(&mut State, u64) -> T) -> T {
        let mut state = self.state.lock().unwrap();
        let index = *self.index.borrow() + 1;
        let result = change(&mut state, index);
        self.index.send_replace(index);
        result
    }
}

/// A running fake Consul agent on 127.0.0.1.
#[derive(Debug)]
pub struct FakeConsul {
    pub address: SocketAddr,
    agent: Arc<Agent>,
    task: Option<JoinHandle<()>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl FakeConsul {
    /// Starts an agent with an empty KV store and only the `consul` service.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts an agent that only speaks TLS, with `pki`'s server
    /// certificate, and requires clients to present a certificate signed by
    /// its CA.
    pub async fn start_tls(pki: &TestPki) -> Self {
        Self::start_with(Some(server_config(pki))).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding fake Consul");
        let address = listener.local_addr().expect("fake Consul address");
        let (index, _) = watch::channel(1);
        let agent = Arc::new(Agent {
            state: Mutex::new(State::default()),
            index,
        });
        let mut consul = Self {
            address,
            agent,
            task: None,
            tls,
        };
        consul.register("consul", "consul", "127.0.0.1", address.port(), &[]);
        consul.task = Some(serve(
            listener,
            Arc::clone(&consul.agent),
            consul.tls.clone(),
        ));
        consul
    }

    /// `127.0.0.1:PORT`, as `endpoints` take it.
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// Closes the listener and every connection: Consul is gone.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Serves the same state on the same port again.
    pub async fn start_again(&mut self) {
        self.stop();
        let listener = crate::wait::eventually(
            "the fake Consul's port to be free again",
            Duration::from_secs(10),
            || async {
                TcpListener::bind(self.address)
                    .await
                    .map_err(|error| error.to_string())
            },
        )
        .await;
        self.task = Some(serve(listener, Arc::clone(&self.agent), self.tls.clone()));
    }

    /// Sets a KV entry, as `consul kv put` would.
    pub fn put(&self, key: &str, value: &str) {
        self.agent.write(|state, index| {
            let create_index = state.kv.get(key).map_or(index, |entry| entry.create_index);
            state.kv.insert(
                key.to_owned(),
                Entry {
                    value: value.as_bytes().to_vec(),
                    create_index,
                    modify_index: index,
                },
            );
        });
    }

    /// Deletes a KV entry and every entry under it (`consul kv delete -recurse`).
    pub fn delete_prefix(&self, prefix: &str) {
        self.agent.write(|state, _| {
            state.kv.retain(|key, _| !key.starts_with(prefix));
        });
    }

    /// Registers a service instance on the node, its check passing.
    pub fn register(&self, service: &str, id: &str, address: &str, port: u16, tags: &[&str]) {
        self.agent.write(|state, index| {
            state.instances.insert(
                id.to_owned(),
                ServiceInstance {
                    id: id.to_owned(),
                    service: service.to_owned(),
                    address: address.to_owned(),
                    port,
                    tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
                    check_status: "passing".to_owned(),
                    create_index: index,
                    modify_index: index,
                },
            );
        });
    }

    /// Removes a service instance.
    pub fn deregister(&self, id: &str) {
        self.agent.write(|state, _| {
            state.instances.remove(id);
        });
    }

    /// Sets the status of an instance's check (`passing`, `warning`, `critical`).
    pub fn set_check(&self, id: &str, status: &str) {
        self.agent.write(|state, index| {
            let instance = state
                .instances
                .get_mut(id)
                .unwrap_or_else(|| panic!("no service instance `{id}`"));
            status.clone_into(&mut instance.check_status);
            instance.modify_index = index;
        });
    }

    /// The current modify index.
    pub fn index(&self) -> u64 {
        *self.agent.index.borrow()
    }
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        self.stop();
    }
}

/// TLS with `pki`'s server certificate, requiring a client certificate
/// signed by its CA.
fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pki.ca()).expect("reading the CA") {
        roots
            .add(certificate.expect("CA certificate"))
            .expect("adding the CA");
    }
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .expect("client certificate verifier");
    let (cert, key) = pki.server();
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("reading the server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .expect("server TLS configuration");
    Arc::new(config)
}

/// Accepts connections (TLS ones with `tls`) until aborted; aborting closes
/// them all.
fn serve(
    listener: TcpListener,
    agent: Arc<Agent>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> JoinHandle<()> {
    let tls = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let agent = Arc::clone(&agent);
            let tls = tls.clone();
            connections.spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&agent), request));
                let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = match tls {
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                    Some(tls) => {
                        // A client without an acceptable certificate fails here.
                        let Ok(stream) = tls.accept(stream).await else {
                            return;
                        };
                        http.serve_connection(TokioIo::new(stream), service).await
                    }
                };
            });
        }
    })
}

/// The query parameters: `recurse` and `passing` may have no value.
fn parameters(request: &Request<hyper::body::Incoming>) -> BTreeMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect()
}

/// A Go duration as Consul reads `wait`: `10s`, `5m`, `250ms`.
fn parse_wait(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number * 60)),
        "h" => Some(Duration::from_secs(number * 3600)),
        _ => None,
    }
}

fn is_true(parameters: &BTreeMap<String, String>, name: &str) -> bool {
    parameters
        .get(name)
        .is_some_and(|value| value.is_empty() || value == "true")
}

async fn handle(
    agent: Arc<Agent>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let parameters = parameters(&request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if method == Method::PUT || method == Method::DELETE {
        let Some(key) = path.strip_prefix("/v1/kv/") else {
            return Ok(reply(
                StatusCode::METHOD_NOT_ALLOWED,
                0,
                "method not allowed".into(),
            ));
        };
        let body = request
            .into_body()
            .collect()
            .await
            .map(|body| body.to_bytes())
            .unwrap_or_default();
        let key = key.to_owned();
        agent.write(|state, index| {
            if method == Method::PUT {
                let create_index = state.kv.get(&key).map_or(index, |entry| entry.create_index);
                state.kv.insert(
                    key,
                    Entry {
                        value: body.to_vec(),
                        create_index,
                        modify_index: index,
                    },
                );
            } else if is_true(&parameters, "recurse") {
                state.kv.retain(|existing, _| !existing.starts_with(&key));
            } else {
                state.kv.remove(&key);
            }
        });
        let index = *agent.index.borrow();
        return Ok(reply(StatusCode::OK, index, "true".into()));
    }
    if method != Method::GET {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            0,
            "method not allowed".into(),
        ));
    }

    // A blocking query: wait for the index to pass `index`, or `wait`.
    if let Some(wanted) = parameters
        .get("index")
        .and_then(|index| index.parse::<u64>().ok())
    {
        let wait = parameters
            .get("wait")
            .and_then(|wait| parse_wait(wait))
            .unwrap_or(Duration::from_secs(300))
            .min(Duration::from_secs(600));
        let mut changes = agent.index.subscribe();
        let passed = changes.wait_for(|index| *index > wanted);
        let _ = tokio::time::timeout(wait, passed).await;
    }

    let state = agent.state.lock().unwrap();
    let index = *agent.index.borrow();
    let (status, body) = if let Some(key) = path.strip_prefix("/v1/kv/") {
        kv_entries(&state, key, is_true(&parameters, "recurse"))
    } else if path == "/v1/catalog/services" {
        (StatusCode::OK, catalog_services(&state))
    } else if let Some(service) = path.strip_prefix("/v1/health/service/") {
        let passing = is_true(&parameters, "passing");
        (StatusCode::OK, health_entries(&state, service, passing))
    } else {
        (StatusCode::NOT_FOUND, Value::Null)
    };
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    Ok(reply(status, index, body))
}

fn reply(status: StatusCode, index: u64, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("X-Consul-Knownleader", "true")
        .header("X-Consul-Lastcontact", "0");
    if index > 0 {
        response = response.header("X-Consul-Index", index.to_string());
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn kv_entries(state: &State, key: &str, recurse: bool) -> (StatusCode, Value) {
    let entries: Vec<Value> = state
        .kv
        .iter()
        .filter(|(existing, _)| {
            if recurse {
                existing.starts_with(key)
            } else {
                *existing == key
            }
        })
        .map(|(existing, entry)| {
            let value = (!entry.value.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(&entry.value));
            json!({
                "LockIndex": 0,
                "Key": existing,
                "Flags": 0,
                "Value": value,
                "CreateIndex": entry.create_index,
                "ModifyIndex": entry.modify_index,
            })
        })
        .collect();
    if entries.is_empty() {
        (StatusCode::NOT_FOUND, Value::Null)
    } else {
        (StatusCode::OK, Value::Array(entries))
    }
}

fn catalog_services(state: &State) -> Value {
    let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for instance in state.instances.values() {
        let tags = services.entry(&instance.service).or_default();
        for tag in &instance.tags {
            if !tags.contains(&tag.as_str()) {
                tags.push(tag);
            }
        }
    }
    json!(services)
}

fn health_entries(state: &State, service: &str, passing: bool) -> Value {
    let node = json!({
        "ID": "a4b1f6c2-6a2e-4a3c-9d53-1b0c5c2e7f01",
        "Node": "node-1",
        "Address": "127.0.0.1",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"},
        "Meta": {"consul-network-segment": ""},
        "CreateIndex": 1,
        "ModifyIndex": 1,
    });
    let serf = json!({
        "Node": "node-1",
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "CreateIndex": 1,
        "ModifyIndex": 1,
    });
    let entries: Vec<Value> = state
        .instances
        .values()
        .filter(|instance| instance.service == service)
        .filter(|instance| !passing || instance.check_status == "passing")
        .map(|instance| {
            json!({
                "Node": node,
                "Service": {
                    "ID": instance.id,
                    "Service": instance.service,
                    "Tags": instance.tags,
                    "Address": instance.address,
                    "TaggedAddresses": {
                        "lan_ipv4": {"Address": instance.address, "Port": instance.port},
                    },
                    "Meta": {},
                    "Port": instance.port,
                    "Weights": {"Passing": 1, "Warning": 1},
                    "EnableTagOverride": false,
                    "Proxy": {"MeshGateway": {}, "Expose": {}},
                    "Connect": {},
                    "CreateIndex": instance.create_index,
                    "ModifyIndex": instance.modify_index,
                },
                "Checks": [
                    serf,
                    {
                        "Node": "node-1",
                        "CheckID": format!("service:{}", instance.id),
                        "Name": format!("Service '{}' check", instance.service),
                        "Status": instance.check_status,
                        "Notes": "",
                        "Output": "",
                        "ServiceID": instance.id,
                        "ServiceName": instance.service,
                        "ServiceTags": instance.tags,
                        "Type": "http",
                        "CreateIndex": instance.create_index,
                        "ModifyIndex": instance.modify_index,
                    },
                ],
            })
        })
        .collect();
    Value::Array(entries)
}
