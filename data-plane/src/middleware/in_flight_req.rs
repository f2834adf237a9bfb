//! `inFlightReq`: at most `amount` requests at once per source (by default
//! the request's host, as in Traefik); the next one gets `429 Too Many
//! Requests` with Traefik's body, `max connections reached: <amount>`.
//!
//! A request holds its slot until its response body has been sent (or
//! dropped), not just until the response head: Traefik counts until its
//! handler returns, which for a proxied response is after the body was
//! copied, and a long download is load on the backend all the same. The
//! slot guard is moved into the response body.
//!
//! Counters live in the shared middleware state (a snapshot that keeps the
//! options keeps them, so requests started on an older runtime are still
//! counted) in a sharded map; a source's entry goes away when its count
//! drops to zero, so the map holds at most the requests in flight.

use std::hash::RandomState;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use dashmap::DashMap;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use sluice_proto::v1;

use super::source_criterion::SourceCriterion;
use super::{BuildContext, MiddlewareBuildError, Next, RequestContext, fingerprint};
use crate::body::{BoxError, ProxyBody};

/// A built `inFlightReq` middleware.
#[derive(Debug)]
pub(crate) struct InFlightReq {
    criterion: SourceCriterion,
    amount: u64,
    /// `max connections reached: <amount>`.
    refusal: Bytes,
    counts: Arc<Counts>,
}

/// Requests in flight by source.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    hasher: RandomState,
    in_flight: DashMap<u64, u64>,
}

impl InFlightReq {
    /// From the snapshot; the counters come from the shared state.
    pub(crate) fn new(
        config: &v1::InFlightReq,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        let amount = u64::try_from(config.amount)
            .ok()
            .filter(|amount| *amount >= 1)
            .ok_or_else(|| MiddlewareBuildError::Invalid {
                option: "inFlightReq.amount",
                value: config.amount.to_string(),
                reason: "must be at least 1",
            })?;
        let criterion = SourceCriterion::new(
            "inFlightReq.sourceCriterion",
            config.source_criterion.as_ref(),
        )?;
        // Counts are not options: a changed amount keeps the requests counted.
        let identity = v1::InFlightReq {
            amount: 0,
            source_criterion: config.source_criterion.clone(),
        };
        let counts = ctx.state("inFlightReq", fingerprint(&identity), Counts::default);
        Ok(Self {
            criterion,
            amount,
            refusal: Bytes::from(format!("max connections reached: {amount}")),
            counts,
        })
    }

    /// Takes a slot for the request's source and serves it, or answers 429.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let source = self.criterion.key(&self.counts.hasher, &req, ctx.conn.peer);
        let Some(slot) = Slot::acquire(&self.counts, source, self.amount) else {
            tracing::debug!(router = ctx.router, peer = %ctx.conn.peer, "too many requests in flight");
            let mut response = Response::new(ProxyBody::full(self.refusal.clone()));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return response;
        };
        next.run(req, ctx).await.map(|body| {
            ProxyBody::boxed(Guarded {
                body,
                slot: Some(slot),
            })
        })
    }
}

/// One request's place in its source's count, given back on drop.
#[derive(Debug)]
struct Slot {
    counts: Arc<Counts>,
    source: u64,
}

impl Slot {
    /// A slot for `source` if it has fewer than `amount` in flight.
    fn acquire(counts: &Arc<Counts>, source: u64, amount: u64) -> Option<Self> {
        let mut count = counts.in_flight.entry(source).or_insert(0);
        if *count >= amount {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: counts.clone(),
            source,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts
            .in_flight
            .remove_if_mut(&self.source, |_, count| {
                *count = count.saturating_sub(1);
                *count == 0
            });
    }
}

/// A response body that gives its slot back once it has ended.
#[derive(Debug)]
struct Guarded {
    body: ProxyBody,
    slot: Option<Slot>,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = frame {
            this.slot = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{Backend, config, request, send_with, shared_state, text};
    use super::*;
    use http_body_util::BodyExt;
    use sluice_proto::v1::middleware::Kind;

    fn in_flight(amount: i64) -> v1::Middleware {
        config(
            "ifr",
            Kind::InFlightReq(v1::InFlightReq {
                amount,
                source_criterion: Some(v1::SourceCriterion {
                    request_host: true,
                    ..Default::default()
                }),
            }),
        )
    }

    fn get(host: &str) -> Request<ProxyBody> {
        request(Request::get("/").header("host", host).body(()).unwrap())
    }

    #[tokio::test]
    async fn slots_are_held_until_the_body_ends() {
        let shared = shared_state();
        let backend = Backend::new();
        let middleware = in_flight(2);
        let send = |host| {
            send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                get(host),
            )
        };
        let first = send("a.test").await;
        let second = send("a.test").await;
        assert_eq!(second.status(), StatusCode::OK);
        let refused = send("a.test").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(text(refused).await, "max connections reached: 2");
        // Another host has its own count.
        assert_eq!(send("b.test").await.status(), StatusCode::OK);

        // Reading the first body to its end gives its slot back.
        let body = first.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "backend");
        let third = send("a.test").await;
        assert_eq!(third.status(), StatusCode::OK);
        // Dropping a response does too.
        drop((second, third));
        assert_eq!(send("a.test").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn counts_go_away_at_zero() {
        let shared = shared_state();
        let backend = Backend::new();
        let middleware = in_flight(1);
        for host in ["a", "b", "c"] {
            let response = send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                get(host),
            )
            .await;
            drop(response);
        }
        let mut used = Vec::new();
        let mut ctx = BuildContext {
            name: "ifr@test",
            states: &shared.middlewares,
            used: &mut used,
            services: &mut crate::service::ServiceBuilder::new(&[], &shared),
        };
        let Some(Kind::InFlightReq(options)) = &middleware.kind else {
            unreachable!()
        };
        let rebuilt = InFlightReq::new(options, &mut ctx).unwrap();
        assert!(rebuilt.counts.in_flight.is_empty());
    }
}
