//! Running middlewares in unit tests: a fake backend that records what it
//! received, and a helper that sends one request through a chain built from
//! proto configs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use http::request::Parts;
use http::{Request, Response};
use http_body_util::BodyExt;
use sluice_proto::v1::{self, middleware::Kind};
use tokio_util::sync::CancellationToken;

use super::{Middlewares, RequestContext};
use crate::body::ProxyBody;
use crate::dispatch::ConnInfo;
use crate::service::{ServiceBuilder, UpstreamConfig};
use crate::shared::SharedState;

/// What a fake backend answers with.
type Answer = Box<dyn Fn(&Parts) -> Response<ProxyBody> + Send + Sync>;

/// A backend answering in-process; it keeps the head of the request it got.
pub(crate) struct Backend {
    seen: Mutex<Option<Seen>>,
    answer: Answer,
}

/// What a [`Backend`] got.
struct Seen {
    parts: Parts,
    user: Option<String>,
    forward_for: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend answering `200 backend`.
    pub(crate) fn new() -> Self {
        Self::answering(|_| Response::new(ProxyBody::full("backend")))
    }

    /// A backend answering with `answer`.
    pub(crate) fn answering(
        answer: impl Fn(&Parts) -> Response<ProxyBody> + Send + Sync + 'static,
    ) -> Self {
        Self {
            seen: Mutex::new(None),
            answer: Box::new(answer),
        }
    }

    /// Answers `req`, remembering its head and the authenticated user.
    pub(crate) async fn serve(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
    ) -> Response<ProxyBody> {
        let (parts, _) = req.into_parts();
        let response = (self.answer)(&parts);
        *self.seen.lock().unwrap() = Some(Seen {
            parts,
            user: ctx.user.clone(),
            forward_for: ctx.forward_for,
        });
        response
    }

    /// The request head the backend got, if the request got through.
    pub(crate) fn seen(&self) -> Option<Parts> {
        self.seen
            .lock()
            .unwrap()
            .as_ref()
            .map(|seen| seen.parts.clone())
    }

    /// The user the backend's request was authenticated as.
    pub(crate) fn user(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|seen| seen.user.clone())
    }

    /// Whether the proxy would send `X-Forwarded-For` with the request.
    pub(crate) fn forward_for(&self) -> Option<bool> {
        self.seen
            .lock()
            .unwrap()
            .as_ref()
            .map(|seen| seen.forward_for)
    }
}

/// A middleware config named `name@test`.
pub(crate) fn config(name: &str, kind: Kind) -> v1::Middleware {
    v1::Middleware {
        name: format!("{name}@test"),
        kind: Some(kind),
        ..Default::default()
    }
}

/// Sends `req` from `peer` through the middlewares `configs` (in order) to
/// `backend`, with `shared` as long-lived state.
pub(crate) async fn send_with(
    shared: &SharedState,
    configs: &[v1::Middleware],
    backend: &Backend,
    peer: &str,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let mut middlewares = Middlewares::new(configs, &shared.middlewares);
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
    let mut services = ServiceBuilder::new(&[], shared);
    let chain = middlewares
        .chain(&[&names], &mut services)
        .expect("the middlewares build");
    let conn = ConnInfo::new("web".into(), peer.parse::<SocketAddr>().unwrap());
    let mut ctx = RequestContext::new(shared, &conn, "router@test");
    chain.run_to(req, &mut ctx, backend).await
}

/// Sends `req` from 10.0.0.1 through the middlewares `configs` to `backend`.
pub(crate) async fn send(
    configs: &[v1::Middleware],
    backend: &Backend,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    send_with(&shared_state(), configs, backend, "10.0.0.1:40000", req).await
}

/// Fresh long-lived state.
pub(crate) fn shared_state() -> SharedState {
    SharedState::new(
        "test-node".into(),
        &UpstreamConfig::default(),
        CancellationToken::new(),
    )
}

/// A request with a body-less `Request<()>`'s head.
pub(crate) fn request(head: Request<()>) -> Request<ProxyBody> {
    head.map(|()| ProxyBody::empty())
}

/// A response's body as text.
pub(crate) async fn text(response: Response<ProxyBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A response's headers as `name -> value`, for short assertions.
pub(crate) fn headers(response: &Response<ProxyBody>) -> HashMap<String, String> {
    response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// The build error of a middleware, as the NACK would say it.
pub(crate) fn build_error(config: v1::Middleware) -> String {
    let shared = shared_state();
    let configs = [config];
    let mut middlewares = Middlewares::new(&configs, &shared.middlewares);
    let names = [configs[0].name.clone()];
    let mut services = ServiceBuilder::new(&[], &shared);
    match middlewares.chain(&[&names], &mut services) {
        Ok(_) => panic!("the middleware built"),
        Err(error) => crate::report::chain(&error),
    }
}
