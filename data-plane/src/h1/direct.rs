//! Direct forwarding: a bodiless HTTP/1.x request whose router has no
//! middleware and whose service forwards straight to `http://` servers is
//! forwarded from its raw head, and the server's raw response head written
//! back, without building `http` requests, responses or header maps.
//!
//! It is the general path (`dispatch`, then `forward`) with the same rules
//! applied to raw fields: the same routing, path normalisation and SNI
//! check; the header rules of `crate::headers` (`write_forwarded_request`,
//! `write_stripped_response`); the same server choice, client and error
//! statuses. Anything else (an absolute-form target, a body, an upgrade, a
//! 404 or 503) is left to the general path. `direct_tests` sends the same
//! requests both ways and compares what servers and clients receive.

use bytes::{BufMut, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName};

use super::client;
use super::head::RawRequest;
use crate::dispatch::ConnInfo;
use crate::headers::{
    FieldKind, HeaderFields, RawForwarding, visible_ascii, write_forwarded_request,
};
use crate::router::{RequestView, canonical_host, normalize};
use crate::runtime::Runtime;
use crate::service::{DirectSend, Target};

/// A request headed straight for a server; it holds nothing of the
/// runtime, which the request need not keep alive.
#[derive(Debug)]
pub(crate) struct Direct {
    /// The server's client, connections and timeouts.
    pub(crate) send: DirectSend,
    /// The request may be sent again on a new connection.
    pub(crate) replayable: bool,
}

/// Hides an untrusted peer's `X-Forwarded-*` from routing, as dispatch
/// removes them before it routes.
#[derive(Debug)]
struct Trusted<'a> {
    raw: &'a RawRequest,
    trusted: bool,
}

impl HeaderFields for Trusted<'_> {
    fn find_value(&self, name: &HeaderName, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        if !self.trusted && FieldKind::of_name(name).is_client_forwarded() {
            return false;
        }
        self.raw.head.find_value(name, test)
    }
}

/// Routes `raw` and, when it can go directly, writes the head to send the
/// server into `out`.
pub(crate) fn plan(
    runtime: &Runtime,
    conn: &ConnInfo,
    forwarded_server: &[u8],
    raw: &RawRequest,
    out: &mut BytesMut,
) -> Option<Direct> {
    let entry_point = runtime.entry_point(&conn.entry_point)?;
    if entry_point.redirect.is_some() {
        return None;
    }
    let target = raw.target_bytes();
    if !target.starts_with(b"/") {
        return None;
    }
    let target = PathAndQuery::from_maybe_shared(target).ok()?;
    let path = normalize(target.path()).ok()?;
    let original_host = raw.head.first(FieldKind::Host);
    let authority = original_host.and_then(visible_ascii).unwrap_or("");
    let host = canonical_host(authority);
    if let Some(sni) = conn.tls.as_ref().and_then(|tls| tls.sni.as_deref())
        && !host.is_empty()
        && *host != *sni
    {
        return None;
    }
    let trusted = entry_point.trust.trusts(conn.peer);
    let routes = if conn.tls.is_some() {
        &entry_point.tls_routes
    } else {
        &entry_point.routes
    };
    let headers = Trusted { raw, trusted };
    let view = RequestView {
        host: &host,
        path: &path,
        method: &raw.method,
        headers: &headers,
        query: target.query(),
        client_ip: conn.peer,
    };
    let route = routes.route(&view)?;
    if !route.target.direct {
        return None;
    }
    let Target::Server(selected) = route
        .target
        .service
        .target(&HeaderMap::new(), &mut Vec::new())?
    else {
        return None;
    };
    let server = selected.server;
    let pools = server.pools.as_ref()?;
    out.put_slice(raw.method.as_str().as_bytes());
    out.put_u8(b' ');
    if server.preserve_path {
        out.put_slice(server.target.path.as_bytes());
    }
    out.put_slice(path.as_bytes());
    if let Some(query) = target.query() {
        out.put_u8(b'?');
        out.put_slice(query.as_bytes());
    }
    out.put_slice(b" HTTP/1.1\r\n");
    let host_sent: &[u8] = if selected.balancer.pass_host_header {
        original_host.unwrap_or(server.target.authority.as_str().as_bytes())
    } else {
        server.host_header.as_bytes()
    };
    let forwarded = write_forwarded_request(
        raw.head.fields(),
        &RawForwarding {
            trusted,
            client_ip: conn.peer_header.as_bytes(),
            tls: conn.tls.is_some(),
            original_host,
            host: host_sent,
            server: forwarded_server,
        },
        out,
    );
    client::put_empty_body_length(&raw.method, out);
    out.put_slice(b"\r\n");
    Some(Direct {
        send: selected.balancer.client.direct(pools),
        replayable: client::idempotent(&raw.method) || forwarded.idempotency_key,
    })
}
