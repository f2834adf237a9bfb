//! An HTTP backend (HTTP/1.1 and h2c) that answers every request with a
//! JSON description of what it received, and remembers it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoedRequest {
    pub method: String,
    /// Path and query, as received.
    pub path_and_query: String,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A running echo backend; stops when dropped, closing its connections.
#[derive(Debug)]
pub struct EchoBackend {
    pub name: String,
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<EchoedRequest>>>,
    status: Arc<AtomicU16>,
    /// Milliseconds to wait before answering.
    delay_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl EchoBackend {
    /// Starts a backend named `name` on a free port of 127.0.0.1.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding backend");
        let address = listener.local_addr().expect("backend address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let task = {
            let name = name.to_owned();
            let received = Arc::clone(&received);
            let status = Arc::clone(&status);
            let delay_ms = Arc::clone(&delay_ms);
            tokio::spawn(async move {
                // Owned by this task: aborting it (drop) closes every connection too,
                // as a killed server would.
                let mut connections = JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    while connections.try_join_next().is_some() {}
                    let name = name.clone();
                    let received = Arc::clone(&received);
                    let status = Arc::clone(&status);
                    let delay_ms = Arc::clone(&delay_ms);
                    connections.spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let name = name.clone();
                            let received = Arc::clone(&received);
                            let status = status.load(Ordering::Relaxed);
                            let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed));
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let mut headers = BTreeMap::new();
                                for (header, value) in &parts.headers {
                                    let value =
                                        String::from_utf8_lossy(value.as_bytes()).into_owned();
                                    headers
                                        .entry(header.as_str().to_owned())
                                        .and_modify(|existing: &mut String| {
                                            existing.push_str(", ");
                                            existing.push_str(&value);
                                        })
                                        .or_insert(value);
                                }
                                let echoed = EchoedRequest {
                                    method: parts.method.to_string(),
                                    path_and_query: parts
                                        .uri
                                        .path_and_query()
                                        .map(ToString::to_string)
                                        .unwrap_or_default(),
                                    headers,
                                    body: body.to_vec(),
                                };
                                let description = json!({
                                    "backend": name,
                                    "method": echoed.method,
                                    "path": echoed.path_and_query,
                                    "headers": echoed.headers,
                                    "bodyLength": echoed.body.len(),
                                });
                                received.lock().unwrap().push(echoed);
                                // Recorded first: `received()` shows the request in flight.
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                Ok::<_, hyper::Error>(
                                    Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .header("x-backend", name)
                                        .body(Full::new(Bytes::from(description.to_string())))
                                        .expect("valid response"),
                                )
                            }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Self {
            name: name.to_owned(),
            address,
            received,
            status,
            delay_ms,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<EchoedRequest> {
        self.received.lock().unwrap().clone()
    }

    /// Makes every later response use `status` (e.g. 500 to fail health checks).
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Makes every later request wait `delay` (after being recorded in
    /// [`EchoBackend::received`]) before it is answered: a slow backend.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::Relaxed);
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
