//! The listeners of each entry point, reconciled with each runtime: a
//! listener whose address did not change is left alone; new ones are bound
//! before the runtime is published (a bind failure fails the update); removed
//! ones stop accepting and let their connections finish.
//!
//! An entry point has one listening socket per serving runtime (see
//! [`crate::serving`]), bound to the same address with `SO_REUSEPORT` when
//! there are several, each accepting on its own runtime.
//!
//! Each connection is served by `h1::serve` (HTTP/1.1 with keep-alive and
//! upgrades, and HTTP/2 with prior knowledge on the same port, handed to
//! hyper), with `TCP_NODELAY`, a header read timeout and bounded heads. On
//! an entry point with TLS routers, a connection that opens with a TLS
//! handshake is terminated first (`tls::accept`, with the TLS settings of
//! the runtime current at that moment); HTTP/2 is then chosen by ALPN.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{ConnInfo, Dispatcher};
use crate::h1::{self, ServerSettings, StopSignal};
use crate::runtime::Runtime;
use crate::tls::{self, Accepted};

/// Time a client has to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the bytes of a request head (HTTP/1.1 head, HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Pending connections the kernel queues per listener.
const BACKLOG: u32 = 1024;

/// An entry point's address could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("entry point `{entry_point}`: cannot listen on `{address}`")]
pub struct BindError {
    /// The entry point.
    pub entry_point: String,
    /// The address as configured.
    pub address: String,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Resolves `host:port`, `ip:port` or `:port` (all interfaces, IPv4).
pub(crate) async fn resolve_address(address: &str) -> io::Result<SocketAddr> {
    if let Some(port) = address.strip_prefix(':') {
        let port = port
            .parse::<u16>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port"))?;
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    if let Ok(address) = address.parse() {
        return Ok(address);
    }
    tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the host name resolves to no address",
            )
        })
}

/// Binds a listening socket with `SO_REUSEADDR` (fast restarts).
pub(crate) async fn bind(address: &str) -> io::Result<TcpListener> {
    listen(resolve_address(address).await?, false)
}

/// Binds `count` (at least one) listening sockets to one address, sharing
/// it with `SO_REUSEPORT` when there are several (the first fixes a `:0`
/// port); returns the address they are bound to.
async fn bind_shared(
    address: &str,
    count: usize,
) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let mut address = resolve_address(address).await?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let listener = listen(address, count > 1)?;
        address = listener.local_addr()?;
        // Registered again by the runtime that accepts on it.
        listeners.push(listener.into_std()?);
    }
    Ok((address, listeners))
}

fn listen(address: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// An entry point's listeners, bound and not yet accepting.
#[derive(Debug)]
struct NewListeners {
    entry_point: String,
    /// As configured.
    address: String,
    bound: SocketAddr,
    /// One per serving runtime.
    sockets: Vec<std::net::TcpListener>,
}

/// Listeners to bind for a runtime, prepared before it is published.
#[derive(Debug)]
pub(crate) struct ListenPlan {
    new: Vec<NewListeners>,
    bound: Vec<(String, SocketAddr)>,
}

impl ListenPlan {
    /// Every entry point of the runtime with the address it is bound to.
    pub(crate) fn bound(&self) -> &[(String, SocketAddr)] {
        &self.bound
    }
}

#[derive(Debug)]
struct Active {
    address: String,
    bound: SocketAddr,
    stop: CancellationToken,
    /// One accept loop per serving runtime.
    tasks: Vec<JoinHandle<()>>,
}

/// The listeners of the proxy.
#[derive(Debug)]
pub(crate) struct Listeners {
    active: HashMap<String, Active>,
    draining: JoinSet<()>,
    dispatcher: Arc<Dispatcher>,
    settings: Arc<ServerSettings>,
    grace_period: Duration,
    hard_stop: CancellationToken,
    /// The runtimes that accept and serve connections.
    serving: Vec<Handle>,
}

impl Listeners {
    /// No listener yet; connections get `grace_period` to finish when their
    /// listener stops, and are cut when `hard_stop` fires. They are served
    /// on the `serving` runtimes, or on the current one if there are none.
    pub(crate) fn new(
        dispatcher: Arc<Dispatcher>,
        grace_period: Duration,
        hard_stop: CancellationToken,
        mut serving: Vec<Handle>,
    ) -> Self {
        if serving.is_empty() {
            serving.push(Handle::current());
        }
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let settings = ServerSettings {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_head_bytes: MAX_HEADER_BYTES,
            http2,
        };
        Self {
            active: HashMap::new(),
            draining: JoinSet::new(),
            dispatcher,
            settings: Arc::new(settings),
            grace_period,
            hard_stop,
            serving,
        }
    }

    /// Binds the listeners `runtime` needs that are not up yet.
    pub(crate) async fn prepare(&self, runtime: &Runtime) -> Result<ListenPlan, BindError> {
        let mut plan = ListenPlan {
            new: Vec::new(),
            bound: Vec::new(),
        };
        let mut names: Vec<_> = runtime.entry_points().iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, entry_point) in names {
            match self.active.get(name) {
                Some(active) if active.address == entry_point.address => {
                    plan.bound.push((name.clone(), active.bound));
                }
                _ => {
                    let (bound, sockets) = bind_shared(&entry_point.address, self.serving.len())
                        .await
                        .map_err(|source| BindError {
                            entry_point: name.clone(),
                            address: entry_point.address.clone(),
                            source,
                        })?;
                    plan.bound.push((name.clone(), bound));
                    plan.new.push(NewListeners {
                        entry_point: name.clone(),
                        address: entry_point.address.clone(),
                        bound,
                        sockets,
                    });
                }
            }
        }
        Ok(plan)
    }

    /// Starts the planned listeners and stops those no longer wanted (call
    /// once the runtime they serve is published).
    pub(crate) fn commit(&mut self, plan: ListenPlan) {
        let wanted: HashSet<&str> = plan.bound.iter().map(|(name, _)| name.as_str()).collect();
        let replaced: HashSet<&str> = plan
            .new
            .iter()
            .map(|new| new.entry_point.as_str())
            .collect();
        let stopping: Vec<String> = self
            .active
            .keys()
            .filter(|name| !wanted.contains(name.as_str()) || replaced.contains(name.as_str()))
            .cloned()
            .collect();
        for name in stopping {
            if let Some(active) = self.active.remove(&name) {
                tracing::info!(entry_point = %name, address = %active.bound, "entry point stops listening");
                active.stop.cancel();
                self.draining.spawn(drain(active.tasks));
            }
        }
        for NewListeners {
            entry_point: name,
            address,
            bound,
            sockets,
        } in plan.new
        {
            tracing::info!(entry_point = %name, %bound, "entry point listening");
            let stop = self.hard_stop.child_token();
            let entry_point: Arc<str> = Arc::from(name.as_str());
            let tasks = sockets
                .into_iter()
                .zip(&self.serving)
                .map(|(listener, serving)| {
                    serving.spawn(accept_loop(
                        entry_point.clone(),
                        listener,
                        self.dispatcher.clone(),
                        self.settings.clone(),
                        stop.clone(),
                        self.grace_period,
                        self.hard_stop.clone(),
                    ))
                })
                .collect();
            self.active.insert(
                name,
                Active {
                    address,
                    bound,
                    stop,
                    tasks,
                },
            );
        }
    }

    /// Stops accepting everywhere and waits for connections to finish, at
    /// most the grace period.
    pub(crate) async fn shutdown(&mut self) {
        for (_, active) in self.active.drain() {
            active.stop.cancel();
            self.draining.spawn(drain(active.tasks));
        }
        while self.draining.join_next().await.is_some() {}
    }
}

/// Waits for an entry point's accept loops to finish draining.
async fn drain(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        // A panicked accept loop has nothing left to drain.
        let _ = task.await;
    }
}

async fn accept_loop(
    entry_point: Arc<str>,
    listener: std::net::TcpListener,
    dispatcher: Arc<Dispatcher>,
    settings: Arc<ServerSettings>,
    stop: CancellationToken,
    grace_period: Duration,
    hard_stop: CancellationToken,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(entry_point = %entry_point, %error, "cannot accept on a listener");
            return;
        }
    };
    let mut connections = JoinSet::new();
    let connections_stop = Arc::new(StopSignal::default());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: back off a little.
                        tracing::warn!(entry_point = %entry_point, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let conn = ConnInfo::new(entry_point.clone(), peer);
                connections.spawn(serve_connection(
                    stream,
                    conn,
                    dispatcher.clone(),
                    settings.clone(),
                    connections_stop.clone(),
                ));
            }
        }
    }
    drop(listener);
    // Idle connections close at the stop; busy ones after their response.
    connections_stop.stop();
    let finished = async { while connections.join_next().await.is_some() {} };
    let open = tokio::select! {
        () = finished => false,
        () = tokio::time::sleep(grace_period) => true,
        () = hard_stop.cancelled() => true,
    };
    if open {
        tracing::warn!(
            entry_point = %entry_point,
            connections = connections.len(),
            "grace period over: closing the remaining connections"
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Terminates TLS when the connection starts with a handshake on an entry
/// point that serves TLS, then serves HTTP on it.
async fn serve_connection(
    stream: TcpStream,
    conn: ConnInfo,
    dispatcher: Arc<Dispatcher>,
    settings: Arc<ServerSettings>,
    stop: Arc<StopSignal>,
) {
    let peer = conn.peer;
    let runtime = dispatcher.runtime();
    let tls = runtime
        .entry_point(&conn.entry_point)
        .and_then(|entry_point| entry_point.tls.as_ref());
    let Some(tls) = tls else {
        drop(runtime);
        h1::serve(stream, conn, dispatcher, settings, stop).await;
        return;
    };
    let accepted = tokio::time::timeout(HEADER_READ_TIMEOUT, tls::accept(stream, tls)).await;
    drop(runtime);
    match accepted {
        Ok(Ok(Accepted::Plain(stream))) => {
            h1::serve(stream, conn, dispatcher, settings, stop).await;
        }
        Ok(Ok(Accepted::Tls(stream, info))) => {
            let conn = conn.with_tls(info);
            h1::serve(stream, conn, dispatcher, settings, stop).await;
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
