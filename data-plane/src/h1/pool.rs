//! Connections to servers, and the idle ones kept for reuse.
//!
//! A pool belongs to one serving thread (see `crate::serving`), so a
//! connection is only ever driven by the thread whose reactor it is
//! registered with, and its lock is never contended. Idle connections are
//! kept per server authority, most recently used first, at most
//! `max_idle_per_host` of them and for at most `idle_timeout`; a sweeper
//! task closes the expired ones while the pool holds any.
//!
//! A connection taken from the pool is checked without a system call: its
//! readiness (kept by tokio from the last `epoll` wake-up) says whether the
//! server sent anything, and an idle HTTP/1.1 connection that became
//! readable was closed by the server (or is out of step with it).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Authority;
use tokio::net::TcpStream;

/// An open connection to a server.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) io: TcpStream,
    /// Bytes read and not consumed yet.
    pub(crate) read_buf: BytesMut,
    /// It has already carried a request.
    pub(crate) reused: bool,
}

impl Connection {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            read_buf: BytesMut::new(),
            reused: false,
        }
    }

    /// Whether an idle connection can carry another request: the server has
    /// sent nothing since (no data, no close).
    fn is_usable(&self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            // No readiness recorded: nothing arrived.
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness can be stale (a read that filled the buffer keeps
            // it): ask the socket once.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }
}

/// Dials `authority` (an IP literal, or a name resolved with the system
/// resolver; each address is tried in turn), with `TCP_NODELAY` and TCP
/// keep-alive probes after 30 s idle, within `timeout`.
pub(crate) async fn connect(authority: &Authority, timeout: Duration) -> io::Result<Connection> {
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let dial = async {
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
        };
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{authority}` resolves to no address"),
            )
        }))
    };
    let stream = tokio::time::timeout(timeout, dial).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to `{authority}` timed out after {timeout:?}"),
        )
    })??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(Connection::new(stream))
}

#[derive(Debug)]
struct Idle {
    connection: Connection,
    since: Instant,
}

/// The idle connections to one server authority.
#[derive(Debug)]
pub(crate) struct HostPool {
    /// This pool's own copy: a request reads it without touching memory
    /// another serving thread writes.
    authority: Authority,
    /// Oldest first.
    idle: Mutex<VecDeque<Idle>>,
}

/// How long idle connections are kept, and how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle_per_host: usize,
}

/// Idle connections of one serving thread.
#[derive(Debug)]
pub(crate) struct Pool {
    limits: PoolLimits,
    hosts: Mutex<HashMap<Authority, Arc<HostPool>>>,
    sweeping: AtomicBool,
}

/// Where a connection goes back once its exchange is over: one server's
/// idle connections in one pool.
#[derive(Debug, Clone)]
pub(crate) struct Return {
    pool: Arc<Pool>,
    host: Arc<HostPool>,
}

/// One server's idle connections in every pool of a client: looked up once,
/// when a runtime is built, so that a request finds them without hashing.
#[derive(Debug, Clone)]
pub(crate) struct ServerPools(Arc<[Return]>);

impl ServerPools {
    /// The server's connections in `slot`'s pool.
    pub(crate) fn slot(&self, slot: usize) -> &Return {
        &self.0[slot % self.0.len()]
    }
}

impl Return {
    /// The server's authority.
    pub(crate) fn authority(&self) -> &Authority {
        &self.host.authority
    }

    /// An idle connection still fit for a request, if any.
    pub(crate) fn checkout(&self) -> Option<Connection> {
        let mut idle = self.host.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Most recently used first: once one expired, so did all the others.
        while let Some(candidate) = idle.pop_back() {
            if candidate.since.elapsed() >= self.pool.limits.idle_timeout {
                idle.clear();
                return None;
            }
            if candidate.connection.is_usable() {
                return Some(candidate.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next request to the same server.
    pub(crate) fn put(self, mut connection: Connection) {
        connection.reused = true;
        let limits = self.pool.limits;
        if limits.max_idle_per_host == 0 {
            return;
        }
        {
            let mut idle = self.host.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= limits.max_idle_per_host {
                idle.pop_front();
            }
            idle.push_back(Idle {
                connection,
                since: Instant::now(),
            });
        }
        self.pool.start_sweeper();
    }
}

impl Pool {
    /// An empty pool.
    pub(crate) fn new(limits: PoolLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            hosts: Mutex::new(HashMap::new()),
            sweeping: AtomicBool::new(false),
        })
    }

    /// `authority`'s idle connections in this pool.
    pub(crate) fn host(self: &Arc<Self>, authority: &Authority) -> Return {
        let host = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            match hosts.get(authority) {
                Some(host) => host.clone(),
                None => {
                    let own = Authority::from_maybe_shared(bytes::Bytes::copy_from_slice(
                        authority.as_str().as_bytes(),
                    ))
                    .unwrap_or_else(|_| authority.clone());
                    let host = Arc::new(HostPool {
                        authority: own,
                        idle: Mutex::default(),
                    });
                    hosts.insert(authority.clone(), host.clone());
                    host
                }
            }
        };
        Return {
            pool: self.clone(),
            host,
        }
    }

    /// `authority`'s idle connections in each of `pools`.
    pub(crate) fn server_pools(pools: &[Arc<Self>], authority: &Authority) -> ServerPools {
        ServerPools(pools.iter().map(|pool| pool.host(authority)).collect())
    }

    /// Starts the task that closes expired idle connections, unless it runs.
    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(sweep(Arc::downgrade(self), self.limits.idle_timeout));
    }

    /// Closes expired idle connections; `true` while some are left.
    fn evict_expired(&self) -> bool {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.retain(|_, host| {
            let mut idle = host.idle.lock().unwrap_or_else(|e| e.into_inner());
            while idle
                .front()
                .is_some_and(|oldest| oldest.since.elapsed() >= self.limits.idle_timeout)
            {
                idle.pop_front();
            }
            // A host whose connections are all out (in use) stays.
            !idle.is_empty() || Arc::strong_count(host) > 1
        });
        !hosts.is_empty()
    }
}

async fn sweep(pool: Weak<Pool>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let Some(pool) = pool.upgrade() else { return };
        if !pool.evict_expired() {
            pool.sweeping.store(false, Ordering::Release);
            // A connection returned between the eviction and the flag
            // finds no sweeper running: start again for it.
            if pool.evict_expired() && !pool.sweeping.swap(true, Ordering::AcqRel) {
                continue;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn limits() -> PoolLimits {
        PoolLimits {
            idle_timeout: Duration::from_secs(60),
            max_idle_per_host: 2,
        }
    }

    #[tokio::test]
    async fn idle_connections_are_reused_until_the_server_closes_them() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let pool = Pool::new(limits());
        let connection = connect(&authority, Duration::from_secs(5)).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        let back = pool.host(&authority);
        assert!(back.checkout().is_none());
        back.clone().put(connection);

        let reused = back.checkout().expect("the idle connection");
        assert!(reused.reused);
        back.clone().put(reused);

        accepted.shutdown().await.unwrap();
        drop(accepted);
        // The close is seen once the reactor has had a turn to record it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(connection) = back.checkout() {
            assert!(Instant::now() < deadline, "the close was never noticed");
            back.clone().put(connection);
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn at_most_max_idle_connections_are_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let pool = Pool::new(limits());
        let mut open = Vec::new();
        for _ in 0..3 {
            open.push(connect(&authority, Duration::from_secs(5)).await.unwrap());
            let _ = listener.accept().await.unwrap();
        }
        let back = pool.host(&authority);
        for connection in open {
            back.clone().put(connection);
        }
        let host = pool.hosts.lock().unwrap()[&authority].clone();
        assert_eq!(host.idle.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_connections_are_swept() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let pool = Pool::new(PoolLimits {
            idle_timeout: Duration::from_secs(10),
            max_idle_per_host: 4,
        });
        let connection = connect(&authority, Duration::from_secs(5)).await.unwrap();
        pool.host(&authority).put(connection);
        assert!(pool.sweeping.load(Ordering::Acquire));
        // `Instant` in the pool is the real clock: expire by moving it back.
        {
            let hosts = pool.hosts.lock().unwrap();
            let mut idle = hosts[&authority].idle.lock().unwrap();
            idle[0].since -= Duration::from_secs(11);
        }
        // The sweeper wakes every 5 s (half the idle timeout): wait for it
        // to have emptied the pool and stopped, within a bound.
        for _ in 0..60 {
            if pool.hosts.lock().unwrap().is_empty() && !pool.sweeping.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(pool.hosts.lock().unwrap().is_empty());
        assert!(!pool.sweeping.load(Ordering::Acquire));
    }
}
