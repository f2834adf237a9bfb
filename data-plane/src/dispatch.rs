//! The request path of the proxy: load the current runtime, find the entry
//! point, drop forwarded headers the peer may not set, normalise the path,
//! route (TLS connections against the TLS routers, plain ones against the
//! others), run the router's middleware chain, pick a server, forward.
//!
//! On a TLS connection with an SNI, a request for another host is answered
//! 421 Misdirected Request: a certificate (and the TLS options, client
//! authentication included) chosen for one name must not front another.
//!
//! The runtime is loaded once per request (`ArcSwap::load_full`) and held
//! until the response head is ready, so a request finishes on the runtime it
//! started on while new requests see a newer one.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};

use crate::body::{ProxyBody, not_found, status_response};
use crate::headers;
use crate::middleware::RequestContext;
use crate::router::{RequestView, canonical_host, normalize};
use crate::runtime::Runtime;
use crate::shared::SharedState;
use crate::tls::TlsInfo;

/// What a connection knows about itself, shared by its requests.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// Entry point the connection was accepted on.
    pub(crate) entry_point: Arc<str>,
    /// TCP peer, IPv4-mapped addresses folded to IPv4.
    pub(crate) peer: IpAddr,
    /// The peer IP as a header value.
    pub(crate) peer_header: HeaderValue,
    /// Set on TLS connections.
    pub(crate) tls: Option<TlsInfo>,
}

impl ConnInfo {
    /// Information about a connection from `peer` on `entry_point`.
    pub(crate) fn new(entry_point: Arc<str>, peer: SocketAddr) -> Self {
        let peer = peer.ip().to_canonical();
        let peer_header = HeaderValue::from_str(&peer.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("0.0.0.0"));
        Self {
            entry_point,
            peer,
            peer_header,
            tls: None,
        }
    }

    /// The same connection, over TLS.
    pub(crate) fn with_tls(self, tls: TlsInfo) -> Self {
        Self {
            tls: Some(tls),
            ..self
        }
    }
}

/// Serves requests on the current runtime.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    runtime: Arc<ArcSwap<Runtime>>,
    shared: Arc<SharedState>,
}

impl Dispatcher {
    /// A dispatcher reading `runtime` on every request.
    pub(crate) fn new(runtime: Arc<ArcSwap<Runtime>>, shared: Arc<SharedState>) -> Self {
        Self { runtime, shared }
    }

    /// The runtime being served.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The runtime being served, borrowed: no count of references is
    /// bumped (keep it only briefly).
    pub(crate) fn runtime_guard(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.runtime.load()
    }

    /// `X-Forwarded-Server`: this proxy's name.
    pub(crate) fn forwarded_server(&self) -> &HeaderValue {
        &self.shared.forwarded_server
    }

    /// Answers one request.
    pub(crate) async fn handle(
        &self,
        mut req: Request<ProxyBody>,
        conn: &ConnInfo,
    ) -> Response<ProxyBody> {
        let runtime = self.runtime.load_full();
        let Some(entry_point) = runtime.entry_point(&conn.entry_point) else {
            // The entry point went away while this connection drained.
            return not_found();
        };
        if let Some(redirect) = &entry_point.redirect {
            return redirect.respond(&req);
        }
        if !entry_point.trust.trusts(conn.peer) {
            headers::remove_untrusted_forwarded(req.headers_mut());
        }
        let (route, path_and_query) = {
            let path = match normalize(req.uri().path()) {
                Ok(path) => path,
                Err(error) => {
                    tracing::debug!(peer = %conn.peer, %error, "rejected request path");
                    return status_response(StatusCode::BAD_REQUEST);
                }
            };
            let host = canonical_host(request_authority(&req));
            if let Some(sni) = conn.tls.as_ref().and_then(|tls| tls.sni.as_deref())
                && !host.is_empty()
                && *host != *sni
            {
                tracing::debug!(peer = %conn.peer, %sni, %host, "Host does not match the SNI");
                return status_response(StatusCode::MISDIRECTED_REQUEST);
            }
            let routes = if conn.tls.is_some() {
                &entry_point.tls_routes
            } else {
                &entry_point.routes
            };
            let view = RequestView {
                host: &host,
                path: &path,
                method: req.method(),
                headers: req.headers(),
                query: req.uri().query(),
                client_ip: conn.peer,
            };
            let Some(route) = routes.route(&view) else {
                return not_found();
            };
            let path_and_query = match path {
                Cow::Borrowed(_) => None,
                Cow::Owned(mut path) => {
                    if let Some(query) = req.uri().query() {
                        path.push('?');
                        path.push_str(query);
                    }
                    match PathAndQuery::try_from(path) {
                        Ok(pq) => Some(pq),
                        Err(_) => return status_response(StatusCode::BAD_REQUEST),
                    }
                }
            };
            (route, path_and_query)
        };
        // Middlewares and the backend see the normalised path.
        if let Some(path_and_query) = path_and_query {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(path_and_query);
            match Uri::from_parts(parts) {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return status_response(StatusCode::BAD_REQUEST),
            }
        }
        let mut ctx = RequestContext::new(&self.shared, conn, &route.name);
        route
            .target
            .chain
            .run(req, &mut ctx, &route.target.service)
            .await
    }
}

/// `:authority` for HTTP/2 and absolute-form requests, else the Host header
/// (Go's `Request.Host`).
pub(crate) fn request_authority<B>(req: &Request<B>) -> &str {
    let from_header = || {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    };
    let from_uri = || req.uri().authority().map(|a| a.as_str());
    let authority = if req.version() == Version::HTTP_2 {
        from_uri().or_else(from_header)
    } else {
        from_header().or_else(from_uri)
    };
    authority.unwrap_or("")
}
