//! `mirroring` services: every request goes to the main service, and a copy
//! of `percent` % of them goes to each mirror (any kind of service), whose
//! answers are thrown away. As in Traefik v3:
//!
//! - Which requests are copied is counted, not drawn: a mirror gets the n-th
//!   request when, with it, it would still have had at most `percent` % of
//!   them. 50 % copies requests 1, 3, 5...; 100 % all; 0 % none.
//! - `mirrorBody: true` (the default) reads the body whole before anything is
//!   sent, up to `maxBodySize` bytes, to give every copy the same bytes; a
//!   larger body is streamed to the main service and nobody gets a copy.
//!   `maxBodySize: 0` copies only requests without a body. `mirrorBody:
//!   false` streams the body to the main service and sends copies without
//!   one. A request that is not copied is never buffered.
//! - Copies leave once the main service's response head is back, so a copy
//!   never reaches a mirror before the original reached its server, and a
//!   request the client abandoned is not copied. Nothing a mirror does (slow,
//!   refusing connections, errors) changes the client's response.
//!
//! Unlike Traefik, memory and time are bounded (see the constants): a body is
//! never buffered past [`MAX_BODY`] (`maxBodySize: -1`, Traefik's "no limit",
//! means that), and the copies in flight in the whole proxy are capped in
//! number and in buffered bytes; a copy that would exceed a cap is dropped,
//! and so is one still running after [`COPY_TIMEOUT`]. The copy slot is taken
//! before the body is read, so it also caps the requests being buffered for
//! mirroring. WebSocket and other upgrade requests are not copied.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use sluice_proto::v1;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Service;
use crate::body::{Buffered, ProxyBody, Read, read_limited, status_response};
use crate::forward::{Origin, OwnedOrigin, serve_boxed};
use crate::shared::SharedState;

/// The most body bytes read for mirroring one request (16 MiB), whatever
/// `maxBodySize` says.
pub(crate) const MAX_BODY: u64 = 16 << 20;
/// Copies in flight in the whole proxy (one per mirrored request, however
/// many mirrors it goes to).
pub(crate) const MAX_COPIES: usize = 1024;
/// Body bytes held by the copies in flight in the whole proxy (128 MiB).
pub(crate) const MAX_COPIED_BYTES: usize = 128 << 20;
/// How long a copy may take, from sending it to the end of the mirror's
/// response.
pub(crate) const COPY_TIMEOUT: Duration = Duration::from_secs(10);

/// Room for mirror copies, shared by every mirroring service of the proxy.
#[derive(Debug, Clone)]
pub(crate) struct MirrorBudget {
    copies: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    timeout: Duration,
}

impl Default for MirrorBudget {
    fn default() -> Self {
        Self::new(MAX_COPIES, MAX_COPIED_BYTES, COPY_TIMEOUT)
    }
}

impl MirrorBudget {
    /// Room for `copies` copies holding `bytes` body bytes, each allowed
    /// `timeout`.
    pub(crate) fn new(copies: usize, bytes: usize, timeout: Duration) -> Self {
        Self {
            copies: Arc::new(Semaphore::new(copies)),
            bytes: Arc::new(Semaphore::new(bytes)),
            timeout,
        }
    }

    /// A copy slot, if one is free.
    fn copy(&self) -> Option<OwnedSemaphorePermit> {
        self.copies.clone().try_acquire_owned().ok()
    }

    /// Room for `len` body bytes, if there is that much.
    fn bytes(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let len = u32::try_from(len).ok()?;
        self.bytes.clone().try_acquire_many_owned(len).ok()
    }

    /// Copy slots free.
    #[cfg(test)]
    fn free_copies(&self) -> usize {
        self.copies.available_permits()
    }
}

/// The requests a mirroring service got and the copies each mirror was
/// sent. Long-lived (in the shared state, by service name): a snapshot swap
/// does not restart the count, which would send the first request after
/// every swap to every mirror.
#[derive(Debug)]
pub(crate) struct MirrorCounts {
    total: AtomicU64,
    sent: Box<[AtomicU64]>,
}

impl MirrorCounts {
    /// Counts for `mirrors` mirrors.
    pub(crate) fn new(mirrors: usize) -> Self {
        Self {
            total: AtomicU64::new(0),
            sent: (0..mirrors).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// How many mirrors these counts are for.
    pub(crate) fn mirrors(&self) -> usize {
        self.sent.len()
    }
}

/// A mirroring service.
#[derive(Debug)]
pub(crate) struct Mirroring {
    name: Arc<str>,
    main: Arc<Service>,
    mirrors: Box<[Mirror]>,
    counts: Arc<MirrorCounts>,
    /// Copies carry the request body.
    mirror_body: bool,
    /// The largest body copied.
    max_body: u64,
    budget: MirrorBudget,
}

#[derive(Debug)]
struct Mirror {
    service: Arc<Service>,
    percent: u64,
}

impl Mirroring {
    /// Mirroring service `name` over `main`, with `(mirror, percent)` pairs.
    pub(crate) fn new(
        name: &str,
        main: Arc<Service>,
        mirrors: Vec<(Arc<Service>, u32)>,
        config: &v1::MirroringService,
        shared: &SharedState,
    ) -> Self {
        let max_body =
            u64::try_from(config.max_body_size).map_or(MAX_BODY, |max| max.min(MAX_BODY));
        Self {
            name: name.into(),
            main,
            counts: shared.mirror_counts(name, mirrors.len()),
            mirrors: mirrors
                .into_iter()
                .map(|(service, percent)| Mirror {
                    service,
                    percent: u64::from(percent.min(100)),
                })
                .collect(),
            mirror_body: config.mirror_body,
            max_body,
            budget: shared.mirror_budget.clone(),
        }
    }

    /// True when the main service can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.main.is_available()
    }

    /// Counts one request; the mirrors that get a copy of it.
    fn draw(&self) -> Vec<usize> {
        let total = self.counts.total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut chosen = Vec::new();
        for (i, (mirror, sent)) in self.mirrors.iter().zip(&self.counts.sent).enumerate() {
            let allowed = total.saturating_mul(mirror.percent);
            let taken = sent.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sent| {
                (sent.saturating_mul(100) < allowed).then_some(sent + 1)
            });
            if taken.is_ok() {
                chosen.push(i);
            }
        }
        chosen
    }

    /// Serves `req` with the main service and sends copies to the mirrors
    /// whose turn it is.
    pub(crate) async fn serve(
        &self,
        req: Request<ProxyBody>,
        origin: &Origin<'_>,
    ) -> Response<ProxyBody> {
        let chosen = self.draw();
        if chosen.is_empty() {
            return serve_boxed(&self.main, req, origin).await;
        }
        if req.headers().contains_key(header::UPGRADE) || req.method() == Method::CONNECT {
            tracing::debug!(service = %self.name, "upgrade requests are not mirrored");
            return serve_boxed(&self.main, req, origin).await;
        }
        let Some(slot) = self.budget.copy() else {
            tracing::debug!(service = %self.name, "too many mirror copies in flight; not mirrored");
            return serve_boxed(&self.main, req, origin).await;
        };
        let (parts, body) = req.into_parts();
        let (body, copied) = if !self.mirror_body || body.is_end_stream() {
            (body, None)
        } else {
            match read_limited(body, self.max_body).await {
                Read::Whole(buffered) => (buffered.body(), Some(buffered)),
                Read::TooLarge(body) => {
                    tracing::debug!(
                        service = %self.name,
                        max_body_size = self.max_body,
                        "request body too large to mirror; not mirrored"
                    );
                    return serve_boxed(&self.main, Request::from_parts(parts, body), origin).await;
                }
                Read::Failed(error) => {
                    tracing::debug!(service = %self.name, %error, "request body failed");
                    return status_response(StatusCode::BAD_REQUEST);
                }
            }
        };
        let copied_len = copied.as_ref().map_or(0, |b| b.data.len());
        let bytes = self.budget.bytes(copied_len);
        let head = bytes.is_some().then(|| head_of(&parts));
        let response = serve_boxed(&self.main, Request::from_parts(parts, body), origin).await;
        let (Some(head), Some(bytes)) = (head, bytes) else {
            tracing::debug!(service = %self.name, "too many mirrored bytes in flight; not mirrored");
            return response;
        };
        let mirrors = chosen
            .into_iter()
            .map(|i| self.mirrors[i].service.clone())
            .collect();
        tokio::spawn(send_copies(Copies {
            service: self.name.clone(),
            head,
            body: copied,
            mirrors,
            origin: origin.detach(),
            timeout: self.budget.timeout,
            permits: (slot, bytes),
        }));
        response
    }
}

/// Copies of one request on their way to the mirrors.
struct Copies {
    /// The mirroring service, for logs.
    service: Arc<str>,
    head: Parts,
    /// `None`: the copies have no body.
    body: Option<Buffered>,
    mirrors: Vec<Arc<Service>>,
    origin: OwnedOrigin,
    timeout: Duration,
    /// Given back when the copies are done.
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Sends the copies, reads the answers to the end (the connections go back
/// to the pool) and drops them. A plain function returning a boxed future:
/// [`Mirroring::serve`] and `forward::serve` call each other.
fn send_copies(copies: Copies) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Copies {
            service,
            head,
            body,
            mirrors,
            origin,
            timeout,
            permits,
        } = copies;
        let from = origin.origin();
        let sends = mirrors.iter().map(|mirror| {
            let req = copy(&head, body.as_ref());
            let from = &from;
            async move {
                let response = serve_boxed(mirror, req, from).await;
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
            }
        });
        tokio::select! {
            () = origin.hard_stop().cancelled() => {}
            done = tokio::time::timeout(timeout, futures::future::join_all(sends)) => {
                if done.is_err() {
                    tracing::debug!(%service, ?timeout, "mirror copies cut short");
                }
            }
        }
        drop(permits);
    })
}

/// The head of a request, without its extensions (connection-level state
/// that means nothing to another request).
fn head_of(parts: &Parts) -> Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head
}

/// One copy: the head, with the buffered body or none.
fn copy(head: &Parts, body: Option<&Buffered>) -> Request<ProxyBody> {
    let mut parts = head_of(head);
    let body = match body {
        Some(body) => body.body(),
        None => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::TRANSFER_ENCODING);
            ProxyBody::empty()
        }
    };
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    use http::HeaderValue;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use crate::proxy_tests::{echo_backend, eventually, service};
    use crate::service::{ServiceBuilder, UpstreamConfig};

    fn mirroring(percents: &[u32], shared: &SharedState) -> Mirroring {
        let service = || {
            let services = vec![v1::Service {
                name: "s".into(),
                kind: Some(v1::service::Kind::LoadBalancer(v1::LoadBalancer::default())),
                ..Default::default()
            }];
            crate::service::ServiceBuilder::new(&services, shared)
                .get("s")
                .unwrap()
        };
        Mirroring::new(
            "m@test",
            service(),
            percents.iter().map(|&p| (service(), p)).collect(),
            &v1::MirroringService::default(),
            shared,
        )
    }

    fn shared() -> SharedState {
        SharedState::new(
            "node".into(),
            &UpstreamConfig::default(),
            CancellationToken::new(),
        )
    }

    #[test]
    fn copies_are_counted_not_drawn() {
        let shared = shared();
        let m = mirroring(&[50, 100, 0, 10, 33], &shared);
        let mut per_mirror = [0usize; 5];
        let mut first_four = Vec::new();
        for n in 0..100 {
            let chosen = m.draw();
            if n < 4 {
                first_four.push(chosen.clone());
            }
            for i in chosen {
                per_mirror[i] += 1;
            }
        }
        assert_eq!(per_mirror, [50, 100, 0, 10, 33]);
        // 50 %: requests 1 and 3; 10 %: request 1; 33 %: requests 1 and 4.
        assert_eq!(
            first_four,
            [vec![0, 1, 3, 4], vec![1], vec![0, 1], vec![1, 4]]
        );
    }

    #[test]
    fn counts_survive_a_rebuild_unless_the_mirrors_change() {
        let shared = shared();
        let m = mirroring(&[50], &shared);
        assert_eq!(m.draw(), [0]);
        // The same service rebuilt by a snapshot swap: request 2 is not copied.
        let rebuilt = mirroring(&[50], &shared);
        assert!(rebuilt.draw().is_empty());
        assert_eq!(rebuilt.draw(), [0]);
        // Another number of mirrors starts afresh.
        let changed = mirroring(&[50, 50], &shared);
        assert_eq!(changed.draw(), [0, 1]);
    }

    #[test]
    fn body_limits() {
        let shared = shared();
        let limit = |max_body_size| {
            let config = v1::MirroringService {
                max_body_size,
                ..Default::default()
            };
            let services = vec![v1::Service {
                name: "s".into(),
                kind: Some(v1::service::Kind::LoadBalancer(v1::LoadBalancer::default())),
                ..Default::default()
            }];
            let main = crate::service::ServiceBuilder::new(&services, &shared)
                .get("s")
                .unwrap();
            Mirroring::new("m", main, Vec::new(), &config, &shared).max_body
        };
        assert_eq!(limit(-1), MAX_BODY);
        assert_eq!(limit(0), 0);
        assert_eq!(limit(1024), 1024);
        assert_eq!(limit(i64::MAX), MAX_BODY);
    }

    #[test]
    fn copies_without_body_lose_its_length() {
        let req = Request::post("http://a/x?y")
            .header(header::CONTENT_LENGTH, "3")
            .header("x-keep", "1")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let bare = copy(&parts, None);
        assert_eq!(bare.method(), Method::POST);
        assert_eq!(bare.uri(), "http://a/x?y");
        assert!(!bare.headers().contains_key(header::CONTENT_LENGTH));
        assert_eq!(bare.headers()["x-keep"], "1");
        assert!(bare.body().is_end_stream());

        let buffered = Buffered {
            data: "abc".into(),
            trailers: None,
        };
        let full = copy(&parts, Some(&buffered));
        assert_eq!(full.headers()[header::CONTENT_LENGTH], "3");
        assert!(!full.body().is_end_stream());
    }

    /// A server that accepts connections, keeps them open and never answers;
    /// with the number of connections it accepted.
    async fn silent_server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                open.push(stream);
            }
        });
        (url, accepted)
    }

    /// Serves a GET with `service`, from 10.0.0.1, stopping with `hard_stop`.
    async fn get(service: &Service, hard_stop: &CancellationToken) -> StatusCode {
        let peer_header = HeaderValue::from_static("10.0.0.1");
        let server = HeaderValue::from_static("node");
        let origin = Origin {
            peer: "10.0.0.1".parse().unwrap(),
            peer_header: &peer_header,
            tls: false,
            forward_for: true,
            forwarded_server: &server,
            hard_stop,
        };
        let req = Request::get("/x").body(ProxyBody::empty()).unwrap();
        crate::forward::serve(service, req, &origin).await.status()
    }

    #[tokio::test]
    async fn copies_are_bounded_in_number_and_time() {
        let main = echo_backend().await;
        let (silent, accepted) = silent_server().await;
        let services = vec![
            service("main", &format!("http://{main}"), None),
            service("silent", &silent, None),
            v1::Service {
                name: "m".into(),
                kind: Some(v1::service::Kind::Mirroring(v1::MirroringService {
                    service: "main".into(),
                    mirror_body: true,
                    max_body_size: -1,
                    mirrors: vec![v1::MirrorTarget {
                        name: "silent".into(),
                        percent: 100,
                    }],
                })),
                ..Default::default()
            },
        ];
        // Room for one copy, for a second.
        let mut state = shared();
        state.mirror_budget = MirrorBudget::new(1, 1024, Duration::from_secs(1));
        let budget = state.mirror_budget.clone();
        let service = ServiceBuilder::new(&services, &state).get("m").unwrap();
        let hard_stop = CancellationToken::new();

        // The copy hangs; the client has its answer.
        assert_eq!(get(&service, &hard_stop).await, StatusCode::OK);
        assert_eq!(budget.free_copies(), 0);
        // No room: the next request is served, not copied.
        assert_eq!(get(&service, &hard_stop).await, StatusCode::OK);
        // The hanging copy is given up; the room is back.
        let budget_ref = &budget;
        eventually(|| async move { budget_ref.free_copies() == 1 }).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(get(&service, &hard_stop).await, StatusCode::OK);
        let accepted_ref = &accepted;
        eventually(|| async move { accepted_ref.load(Ordering::SeqCst) == 2 }).await;

        // A copy that would hang for an hour stops with the proxy.
        let mut state = shared();
        state.mirror_budget = MirrorBudget::new(1, 1024, Duration::from_secs(3600));
        let budget = state.mirror_budget.clone();
        let service = ServiceBuilder::new(&services, &state).get("m").unwrap();
        assert_eq!(get(&service, &hard_stop).await, StatusCode::OK);
        assert_eq!(budget.free_copies(), 0);
        hard_stop.cancel();
        let budget_ref = &budget;
        eventually(|| async move { budget_ref.free_copies() == 1 }).await;
    }
}
