//! Serving a routed request with its service ([`serve`]): the service picks
//! a server (following sticky cookies, whose `Set-Cookie` goes on the
//! response; a mirroring service copies the request on the way), and the
//! request is forwarded to it, the response back: hop-by-hop headers
//! stripped, `X-Forwarded-*` set, bodies and trailers streamed both ways
//! (hyper's `Incoming` passed through, never buffered), upgrades
//! (WebSocket...) tunnelled with `copy_bidirectional`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use http::uri::{PathAndQuery, Scheme};
use http::{Extensions, HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use tokio_util::sync::CancellationToken;

use crate::body::{ProxyBody, status_response};
use crate::headers::{self, Forwarded};
use crate::middleware::RequestContext;
use crate::service::{Protocol, Selected, Service, Target};
use crate::upgrade::PendingIo;

/// Where a request comes from, as forwarding tells servers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// The TCP peer.
    pub(crate) peer: IpAddr,
    /// The peer IP as a header value.
    pub(crate) peer_header: &'a HeaderValue,
    /// The client connection is TLS.
    pub(crate) tls: bool,
    /// `X-Forwarded-For` is sent.
    pub(crate) forward_for: bool,
    /// `X-Forwarded-Server`.
    pub(crate) forwarded_server: &'a HeaderValue,
    /// Closes upgraded tunnels when the grace period is over.
    pub(crate) hard_stop: &'a CancellationToken,
}

impl<'a> Origin<'a> {
    /// The origin of the request `ctx` describes.
    pub(crate) fn of(ctx: &RequestContext<'a>) -> Self {
        Self {
            peer: ctx.conn.peer,
            peer_header: &ctx.conn.peer_header,
            tls: ctx.conn.tls.is_some(),
            forward_for: ctx.forward_for,
            forwarded_server: &ctx.shared.forwarded_server,
            hard_stop: &ctx.shared.hard_stop,
        }
    }

    /// The same, owned, for work that outlives the request (mirror copies).
    pub(crate) fn detach(&self) -> OwnedOrigin {
        OwnedOrigin {
            peer: self.peer,
            peer_header: self.peer_header.clone(),
            tls: self.tls,
            forward_for: self.forward_for,
            forwarded_server: self.forwarded_server.clone(),
            hard_stop: self.hard_stop.clone(),
        }
    }
}

/// An [`Origin`] owning its parts.
#[derive(Debug)]
pub(crate) struct OwnedOrigin {
    peer: IpAddr,
    peer_header: HeaderValue,
    tls: bool,
    forward_for: bool,
    forwarded_server: HeaderValue,
    hard_stop: CancellationToken,
}

impl OwnedOrigin {
    /// Borrowed, for [`serve`].
    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin {
            peer: self.peer,
            peer_header: &self.peer_header,
            tls: self.tls,
            forward_for: self.forward_for,
            forwarded_server: &self.forwarded_server,
            hard_stop: &self.hard_stop,
        }
    }

    /// Fires when the proxy stops for good.
    pub(crate) fn hard_stop(&self) -> &CancellationToken {
        &self.hard_stop
    }
}

/// Serves `req` with `service`: 503 when it has no server for it, else the
/// response of the server it picked (through its mirroring, if it is a
/// mirroring service), with the sticky cookies the pick set.
pub(crate) async fn serve(
    service: &Service,
    req: Request<ProxyBody>,
    origin: &Origin<'_>,
) -> Response<ProxyBody> {
    let Some(pick) = service.select(req.headers()) else {
        return status_response(StatusCode::SERVICE_UNAVAILABLE);
    };
    let mut response = match pick.target {
        Target::Server(selected) => forward(selected, req, origin).await,
        Target::Mirroring(mirroring) => mirroring.serve(req, origin).await,
    };
    for cookie in pick.set_cookies {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// [`serve`], boxed: mirroring services serve their main service and their
/// mirrors with it (a recursive call).
pub(crate) fn serve_boxed<'a>(
    service: &'a Service,
    req: Request<ProxyBody>,
    origin: &'a Origin<'_>,
) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send + 'a>> {
    Box::pin(serve(service, req, origin))
}

/// Marks a response the proxy made because no connection to the server
/// could be opened (refused, unreachable, dial timeout): the server got
/// nothing of the request, so sending it again is safe (`retry`). A 502 a
/// backend sent, or a failure after the request was written, has no mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectFailed;

/// Forwards `req`, as the middlewares left it, to the selected server.
async fn forward(
    selected: Selected<'_>,
    mut req: Request<ProxyBody>,
    origin: &Origin<'_>,
) -> Response<ProxyBody> {
    let server = selected.server;
    let protocol = server.target.protocol;
    let upgrade = headers::strip_request(req.headers_mut());
    if upgrade.is_some() && protocol == Protocol::H2c {
        tracing::warn!(server = %server.url, "cannot forward a protocol upgrade to an h2c backend");
        return status_response(StatusCode::BAD_GATEWAY);
    }
    let client_upgrade = upgrade.as_ref().map(|_| PendingIo::of_request(&mut req));

    let original_host = original_host(&req);
    let websocket = upgrade
        .as_ref()
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    headers::set_forwarded(
        req.headers_mut(),
        &Forwarded {
            client_ip: origin.peer_header,
            forward_for: origin.forward_for,
            websocket,
            tls: origin.tls,
            host: original_host.as_ref(),
            server: origin.forwarded_server,
        },
    );
    let host = if selected.balancer.pass_host_header {
        original_host
    } else {
        Some(server.host_header.clone())
    };
    match host {
        Some(host) => req.headers_mut().insert(header::HOST, host),
        None => req.headers_mut().remove(header::HOST),
    };

    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path_and_query = if server.preserve_path && !server.target.path.is_empty() {
        match format!("{}{}", server.target.path, path_and_query).parse() {
            Ok(joined) => joined,
            Err(_) => return status_response(StatusCode::BAD_REQUEST),
        }
    } else {
        path_and_query
    };
    let uri = Uri::builder()
        .scheme(if protocol == Protocol::Https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        })
        .authority(server.target.authority.clone())
        .path_and_query(path_and_query)
        .build();
    parts.uri = match uri {
        Ok(uri) => uri,
        Err(_) => return status_response(StatusCode::BAD_REQUEST),
    };
    parts.version = match protocol {
        Protocol::H2c => Version::HTTP_2,
        Protocol::Http1 | Protocol::Https => Version::HTTP_11,
    };
    // Server-side extensions (upgrade handles, h2 protocol) mean nothing upstream.
    parts.extensions = Extensions::new();
    let upstream_req = Request::from_parts(parts, body);

    let mut response = match selected
        .balancer
        .client
        .send(protocol, upstream_req, server.pools.as_ref())
        .await
    {
        Ok(response) => response,
        Err(error) => {
            let status = error.status();
            // Debug, as Traefik does: a dead backend under load must not flood the logs.
            tracing::debug!(
                server = %server.url,
                peer = %origin.peer,
                status = status.as_u16(),
                error = %crate::report::chain(&error),
                "forwarding failed"
            );
            let mut response = status_response(status);
            if error.is_connect() {
                response.extensions_mut().insert(ConnectFailed);
            }
            return response;
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            tracing::warn!(server = %server.url, "server switched protocols without being asked");
            return status_response(StatusCode::BAD_GATEWAY);
        };
        let upstream_upgrade = PendingIo::of_response(&mut response);
        let hard_stop = origin.hard_stop.clone();
        let url = server.url.clone();
        tokio::spawn(async move {
            let (mut client, mut upstream) =
                match tokio::try_join!(client_upgrade.connect(), upstream_upgrade.connect()) {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::debug!(server = %url, %error, "upgrade did not complete");
                        return;
                    }
                };
            tokio::select! {
                () = hard_stop.cancelled() => {}
                result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                    if let Err(error) = result {
                        tracing::debug!(server = %url, %error, "tunnel closed with an error");
                    }
                }
            }
        });
        let (mut parts, _) = response.into_parts();
        headers::strip_response(&mut parts.headers, true);
        return Response::from_parts(parts, ProxyBody::empty());
    }

    let (mut parts, body) = response.into_parts();
    headers::strip_response(&mut parts.headers, false);
    Response::from_parts(parts, body)
}

/// The Host the client asked for: the `:authority` of an HTTP/2 request (or
/// an absolute-form URI), else the `Host` header.
fn original_host<B>(req: &Request<B>) -> Option<HeaderValue> {
    let from_uri = || {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    };
    let from_header = || req.headers().get(header::HOST).cloned();
    if req.version() == Version::HTTP_2 {
        from_uri().or_else(from_header)
    } else {
        from_header().or_else(from_uri)
    }
}
