//! A WebSocket echo server: every text or binary message comes back as is.
//! It remembers the headers of each handshake, to show what a proxy
//! forwarded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// A running WebSocket echo server; stops when dropped.
#[derive(Debug)]
pub struct WebSocketEchoBackend {
    pub address: SocketAddr,
    handshakes: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    task: JoinHandle<()>,
}

impl WebSocketEchoBackend {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding backend");
        let address = listener.local_addr().expect("backend address");
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let handshakes = Arc::clone(&handshakes);
            tokio::spawn(async move {
                let mut connections = JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    while connections.try_join_next().is_some() {}
                    let handshakes = Arc::clone(&handshakes);
                    connections.spawn(async move {
                        // The signature is tungstenite's callback's.
                        #[allow(clippy::result_large_err)]
                        let record = |request: &Request, response: Response| {
                            let mut headers = BTreeMap::new();
                            headers.insert(":path".to_owned(), request.uri().to_string());
                            for (name, value) in request.headers() {
                                headers.insert(
                                    name.as_str().to_owned(),
                                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                                );
                            }
                            handshakes.lock().unwrap().push(headers);
                            Ok(response)
                        };
                        let Ok(mut socket) =
                            tokio_tungstenite::accept_hdr_async(stream, record).await
                        else {
                            return;
                        };
                        while let Some(Ok(message)) = socket.next().await {
                            let reply = match message {
                                Message::Text(_) | Message::Binary(_) => message,
                                Message::Close(_) => break,
                                // Pings are answered by tungstenite itself.
                                _ => continue,
                            };
                            if socket.send(reply).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            })
        };
        Self {
            address,
            handshakes,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (the server URL a service uses).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The handshake requests received so far: header names lower-cased,
    /// plus `:path` (the request target).
    pub fn handshakes(&self) -> Vec<BTreeMap<String, String>> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for WebSocketEchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
