//! The chain of one router and how a request goes through it.
//!
//! A [`Chain`] is built once per runtime. A request walks it with [`Next`]:
//! each middleware gets the request and a `Next` for the rest, and
//! `next.run(req, ctx)` calls the following middleware, or, past the last
//! one, picks a server of the router's service and forwards. Each step is
//! one boxed future (the chain is recursive); a router without middlewares
//! skips all of it and forwards directly, without an allocation.

use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};

use super::Middleware;
use crate::body::ProxyBody;
use crate::dispatch::ConnInfo;
use crate::forward::Origin;
use crate::service::Service;
use crate::shared::SharedState;

/// What the middlewares of one request share besides the request itself.
#[derive(Debug)]
pub(crate) struct RequestContext<'a> {
    /// Long-lived state (backend clients for middlewares that call out).
    pub(crate) shared: &'a SharedState,
    /// The client connection: entry point and peer.
    pub(crate) conn: &'a ConnInfo,
    /// Qualified name of the router that matched.
    pub(crate) router: &'a str,
    /// The user an authentication middleware accepted.
    pub(crate) user: Option<String>,
    /// Whether `X-Forwarded-For` is sent upstream (a `headers` middleware
    /// setting it to the empty value turns it off, as in Traefik).
    pub(crate) forward_for: bool,
}

impl<'a> RequestContext<'a> {
    /// The context of a request on `conn` matched by `router`.
    pub(crate) fn new(shared: &'a SharedState, conn: &'a ConnInfo, router: &'a str) -> Self {
        Self {
            shared,
            conn,
            router,
            user: None,
            forward_for: true,
        }
    }
}

/// The middlewares of one router, in the order they see a request.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    middlewares: Arc<[Arc<Middleware>]>,
}

impl Chain {
    /// A chain of `middlewares`.
    pub(crate) fn new(middlewares: Vec<Arc<Middleware>>) -> Self {
        Self {
            middlewares: middlewares.into(),
        }
    }

    /// Whether the chain has no middleware.
    pub(crate) fn is_empty(&self) -> bool {
        self.middlewares.is_empty()
    }

    /// Serves `req` through the middlewares, then `service`.
    pub(crate) async fn run(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        service: &Service,
    ) -> Response<ProxyBody> {
        if self.middlewares.is_empty() {
            return serve(service, req, ctx).await;
        }
        Next {
            rest: &self.middlewares,
            endpoint: Endpoint::Service(service),
        }
        .run(req, ctx)
        .await
    }

    /// Serves `req` through the middlewares, then a fake backend.
    #[cfg(test)]
    pub(crate) async fn run_to(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        backend: &super::test_util::Backend,
    ) -> Response<ProxyBody> {
        Next {
            rest: &self.middlewares,
            endpoint: Endpoint::Test(backend),
        }
        .run(req, ctx)
        .await
    }
}

/// The response of the rest of a chain, boxed: the chain is recursive.
pub(crate) type ResponseFuture<'a> = Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send + 'a>>;

/// The rest of a chain, then the service. `Copy`, so a middleware may run it
/// several times (retry) or not at all (a rejection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Next<'a> {
    rest: &'a [Arc<Middleware>],
    endpoint: Endpoint<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Endpoint<'a> {
    /// Pick a server of the service and forward.
    Service(&'a Service),
    /// A fake backend answering in-process.
    #[cfg(test)]
    Test(&'a super::test_util::Backend),
}

impl<'a> Next<'a> {
    /// Serves `req` with the rest of the chain.
    pub(crate) fn run<'b>(
        self,
        req: Request<ProxyBody>,
        ctx: &'b mut RequestContext<'_>,
    ) -> ResponseFuture<'b>
    where
        'a: 'b,
    {
        match (self.rest.split_first(), self.endpoint) {
            (Some((first, rest)), endpoint) => {
                Box::pin(first.call(req, ctx, Next { rest, endpoint }))
            }
            (None, Endpoint::Service(service)) => Box::pin(serve(service, req, ctx)),
            #[cfg(test)]
            (None, Endpoint::Test(backend)) => Box::pin(backend.serve(req, ctx)),
        }
    }
}

/// Serves `req` with `service` (see [`crate::forward::serve`]).
async fn serve(
    service: &Service,
    req: Request<ProxyBody>,
    ctx: &mut RequestContext<'_>,
) -> Response<ProxyBody> {
    crate::forward::serve(service, req, &Origin::of(ctx)).await
}
