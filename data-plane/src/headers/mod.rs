//! Header rewriting between client and backend.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`,
//! `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Transfer-Encoding`,
//! `Upgrade`, plus the legacy `Proxy-Connection`) and every header named in
//! `Connection` are removed in both directions, except that `TE: trailers`
//! survives, and `Connection: Upgrade` / `Upgrade` survive on an upgrade
//! request and on its `101` answer. `Trailer` is kept: it announces the
//! trailers forwarded with the body, and hyper's HTTP/1.1 encoder only sends
//! trailers that it announces (Go's reverse proxy re-announces them the same
//! way).
//!
//! Then the `X-Forwarded-*` headers are set, after stripping, so a client
//! cannot get them removed by naming them in `Connection`. Client-sent
//! `X-Forwarded-*` and `X-Real-Ip` are dropped when the request arrives,
//! before routing and middlewares, unless the entry point trusts the peer
//! (Traefik's `forwardedHeaders.trustedIPs` / `insecure`): what middlewares
//! add (`X-Forwarded-Prefix`) then reaches the backend.
//!
//! [`raw`] applies the same rules to raw fields, for direct forwarding.

use http::header::{
    CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

mod raw;

pub(crate) use raw::{
    FieldKind, RawField, RawForwarding, StrippedResponse, write_forwarded_request,
};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// `X-Forwarded-For`.
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`.
pub(crate) const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// `X-Forwarded-Server`.
pub(crate) const X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
/// `X-Real-Ip`.
pub(crate) const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers a client may only set when trusted (Traefik's list).
const CLIENT_FORWARDED: [HeaderName; 11] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_FORWARDED_SERVER,
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-forwarded-method"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-tls-client-cert"),
    HeaderName::from_static("x-forwarded-tls-client-cert-info"),
    X_REAL_IP,
];

const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    PROXY_CONNECTION,
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Read access to a message's header fields, parsed into a `HeaderMap` or
/// raw off the wire (`h1::RawHead`): what routing and framing look at.
pub(crate) trait HeaderFields: std::fmt::Debug {
    /// Calls `test` on the values of `name` in order, until it returns
    /// true; whether it did.
    fn find_value(&self, name: &HeaderName, test: &mut dyn FnMut(&[u8]) -> bool) -> bool;

    /// [`HeaderFields::find_value`] for a field the rules single out: raw
    /// fields are then found by their kind, not by comparing names.
    fn find_known(&self, known: &Known, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.find_value(&known.name, test)
    }

    /// Whether the field `known` is present.
    fn contains_known(&self, known: &Known) -> bool {
        self.find_known(known, &mut |_| true)
    }
}

/// A field the rules look up: its name, and the kind raw fields of that
/// name are classified as.
#[derive(Debug)]
pub(crate) struct Known {
    pub(crate) name: HeaderName,
    pub(crate) kind: FieldKind,
}

/// The fields looked up on every request, by name and kind.
pub(crate) mod known {
    use http::{HeaderName, header};

    use super::{FieldKind, Known};

    pub(crate) const CONTENT_LENGTH: Known = Known {
        name: header::CONTENT_LENGTH,
        kind: FieldKind::ContentLength,
    };
    pub(crate) const TRANSFER_ENCODING: Known = Known {
        name: header::TRANSFER_ENCODING,
        kind: FieldKind::TransferEncoding,
    };
    pub(crate) const CONNECTION: Known = Known {
        name: header::CONNECTION,
        kind: FieldKind::Connection,
    };
    pub(crate) const UPGRADE: Known = Known {
        name: header::UPGRADE,
        kind: FieldKind::Upgrade,
    };
    pub(crate) const DATE: Known = Known {
        name: header::DATE,
        kind: FieldKind::Date,
    };
    pub(crate) const TRAILER: Known = Known {
        name: header::TRAILER,
        kind: FieldKind::Trailer,
    };
    pub(crate) const IDEMPOTENCY_KEY: Known = Known {
        name: HeaderName::from_static("idempotency-key"),
        kind: FieldKind::IdempotencyKey,
    };
    pub(crate) const X_IDEMPOTENCY_KEY: Known = Known {
        name: HeaderName::from_static("x-idempotency-key"),
        kind: FieldKind::IdempotencyKey,
    };
}

impl HeaderFields for HeaderMap {
    fn find_value(&self, name: &HeaderName, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name)
            .iter()
            .any(|value| test(value.as_bytes()))
    }
}

/// A header value as text, when it is all visible ASCII (or tabs), as
/// `HeaderValue::to_str` reads it.
pub(crate) fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// A header name as Go writes it (`x-auth-user` -> `X-Auth-User`): what
/// Traefik's regexes and CORS lists see.
pub(crate) fn canonical_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let mapped = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            mapped
        })
        .collect()
}

/// Strips hop-by-hop headers from a request. When the request asks for a
/// protocol upgrade, returns the `Upgrade` value and keeps the upgrade
/// headers.
pub(crate) fn strip_request(headers: &mut HeaderMap) -> Option<HeaderValue> {
    strip(headers, true)
}

/// Strips hop-by-hop headers from a response; a `101 Switching Protocols`
/// keeps its upgrade headers.
pub(crate) fn strip_response(headers: &mut HeaderMap, switching_protocols: bool) {
    strip(headers, switching_protocols);
}

fn strip(headers: &mut HeaderMap, upgrade_allowed: bool) -> Option<HeaderValue> {
    // Most messages carry none: one pass over their few names is cheaper
    // than hashing every hop-by-hop name for a lookup.
    if !holds_any(headers, &HOP_BY_HOP) {
        return None;
    }
    // Read before anything is removed: `Connection: TE` (which RFC 9110
    // asks of a client sending `TE`) must not lose `TE: trailers`.
    let te_trailers = headers
        .get_all(TE)
        .iter()
        .any(|value| value.to_str().is_ok_and(te_accepts_trailers));
    let mut upgrade_requested = false;
    if headers.contains_key(CONNECTION) {
        let mut named = Vec::new();
        for value in headers.get_all(CONNECTION) {
            let Ok(value) = value.to_str() else { continue };
            for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("upgrade") {
                    upgrade_requested = true;
                } else if token.eq_ignore_ascii_case("host") {
                    // The request's authority, not a hop's: Go keeps it too.
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    let upgrade = if upgrade_allowed && upgrade_requested {
        headers.get(UPGRADE).cloned()
    } else {
        None
    };
    // Only those present: removing an absent name still hashes it.
    let present: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name))
        .cloned()
        .collect();
    for name in present {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    if let Some(upgrade) = &upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, upgrade.clone());
    }
    upgrade
}

/// Whether `headers` holds one of `names`.
fn holds_any(headers: &HeaderMap, names: &[HeaderName]) -> bool {
    headers.keys().any(|present| names.contains(present))
}

/// What the `X-Forwarded-*` headers say about a request.
#[derive(Debug)]
pub(crate) struct Forwarded<'a> {
    /// The TCP peer's IP, as a header value.
    pub(crate) client_ip: &'a HeaderValue,
    /// Whether `X-Forwarded-For` is sent (a `headers` middleware may turn it off).
    pub(crate) forward_for: bool,
    /// The request upgrades to WebSocket (`ws`/`wss`).
    pub(crate) websocket: bool,
    /// The client connection is TLS.
    pub(crate) tls: bool,
    /// The Host the client asked for, port included.
    pub(crate) host: Option<&'a HeaderValue>,
    /// This proxy's name.
    pub(crate) server: &'a HeaderValue,
}

/// Removes the `X-Forwarded-*` and `X-Real-Ip` headers of a peer the entry
/// point does not trust.
pub(crate) fn remove_untrusted_forwarded(headers: &mut HeaderMap) {
    if !holds_any(headers, &CLIENT_FORWARDED) {
        return;
    }
    for name in CLIENT_FORWARDED {
        headers.remove(name);
    }
}

/// The port a forwarded proto implies when the host names none: Traefik
/// derives `X-Forwarded-Port` from `X-Forwarded-Proto`.
fn default_port(proto: &[u8]) -> &'static str {
    match proto {
        b"https" | b"wss" => "443",
        _ => "80",
    }
}

/// Sets the `X-Forwarded-*` and `X-Real-Ip` headers (Traefik's rules: the
/// peer is appended to `X-Forwarded-For`; the others are set when absent,
/// except `X-Forwarded-Server`, always this proxy).
pub(crate) fn set_forwarded(headers: &mut HeaderMap, forwarded: &Forwarded<'_>) {
    let client_ip = forwarded.client_ip;
    let xff = if headers.contains_key(X_FORWARDED_FOR) {
        let mut joined = Vec::new();
        for prior in headers.get_all(X_FORWARDED_FOR) {
            joined.extend_from_slice(prior.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(client_ip.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client_ip.clone())
    } else {
        client_ip.clone()
    };
    if forwarded.forward_for {
        headers.insert(X_FORWARDED_FOR, xff);
    } else {
        headers.remove(X_FORWARDED_FOR);
    }
    let proto = match (forwarded.websocket, forwarded.tls) {
        (true, true) => "wss",
        (true, false) => "ws",
        (false, true) => "https",
        (false, false) => "http",
    };
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !headers.contains_key(X_FORWARDED_HOST)
        && let Some(host) = forwarded.host
    {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if !headers.contains_key(X_FORWARDED_PORT) {
        let port = forwarded
            .host
            .and_then(|h| explicit_port(h.as_bytes()))
            .and_then(|p| HeaderValue::from_bytes(p).ok())
            .unwrap_or_else(|| {
                let proto = headers.get(X_FORWARDED_PROTO).map(HeaderValue::as_bytes);
                HeaderValue::from_static(default_port(proto.unwrap_or_default()))
            });
        headers.insert(X_FORWARDED_PORT, port);
    }
    headers.insert(X_FORWARDED_SERVER, forwarded.server.clone());
    if !headers.contains_key(X_REAL_IP) {
        headers.insert(X_REAL_IP, client_ip.clone());
    }
}

/// Whether a `TE` value accepts trailers.
fn te_accepts_trailers(value: &str) -> bool {
    value.split(',').any(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("trailers")
    })
}

/// The port of `host:port` / `[v6]:port`, if written.
fn explicit_port(host: &[u8]) -> Option<&[u8]> {
    let colon = host.iter().rposition(|&b| b == b':')?;
    let (name, port) = (&host[..colon], &host[colon + 1..]);
    let bracketed = name.starts_with(b"[") && name.ends_with(b"]");
    let plain = !name.contains(&b':');
    ((bracketed || plain) && !port.is_empty() && port.iter().all(u8::is_ascii_digit))
        .then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret, x-forwarded-host"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "s"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("te", "gzip, trailers"),
            ("trailer", "grpc-status"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        assert_eq!(strip_request(&mut headers), None);
        assert_eq!(get(&headers, "x-kept"), Some("yes"));
        assert_eq!(get(&headers, "te"), Some("trailers"));
        assert_eq!(get(&headers, "trailer"), Some("grpc-status"));
        for gone in [
            "connection",
            "keep-alive",
            "x-secret",
            "transfer-encoding",
            "proxy-authorization",
            "upgrade",
        ] {
            assert!(!headers.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn upgrade_requests_keep_upgrade_headers() {
        let mut headers = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(strip_request(&mut headers).unwrap(), "websocket");
        assert_eq!(get(&headers, "connection"), Some("Upgrade"));
        assert_eq!(get(&headers, "upgrade"), Some("websocket"));
        let mut response = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        strip_response(&mut response, true);
        assert_eq!(get(&response, "upgrade"), Some("websocket"));
        let mut response = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        strip_response(&mut response, false);
        assert!(response.is_empty());
    }

    fn forwarded<'a>(
        ip: &'a HeaderValue,
        host: Option<&'a HeaderValue>,
        server: &'a HeaderValue,
    ) -> Forwarded<'a> {
        Forwarded {
            client_ip: ip,
            forward_for: true,
            websocket: false,
            tls: false,
            host,
            server,
        }
    }

    #[test]
    fn untrusted_peers_cannot_set_forwarded_headers() {
        let client_sent = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
            ("x-forwarded-port", "1"),
            ("x-forwarded-server", "evil"),
            ("x-forwarded-prefix", "/evil"),
            ("x-real-ip", "6.6.6.6"),
        ];
        let ip = HeaderValue::from_static("10.0.0.7");
        let host = HeaderValue::from_static("app.test:8080");
        let server = HeaderValue::from_static("node-1");
        let mut headers = map(&client_sent);
        remove_untrusted_forwarded(&mut headers);
        set_forwarded(&mut headers, &forwarded(&ip, Some(&host), &server));
        assert_eq!(get(&headers, "x-forwarded-for"), Some("10.0.0.7"));
        assert_eq!(get(&headers, "x-forwarded-proto"), Some("http"));
        assert_eq!(get(&headers, "x-forwarded-host"), Some("app.test:8080"));
        assert_eq!(get(&headers, "x-forwarded-port"), Some("8080"));
        assert_eq!(get(&headers, "x-forwarded-server"), Some("node-1"));
        assert_eq!(get(&headers, "x-real-ip"), Some("10.0.0.7"));
        assert!(!headers.contains_key("x-forwarded-prefix"));
    }

    #[test]
    fn trusted_peers_keep_and_extend_forwarded_headers() {
        let ip = HeaderValue::from_static("10.0.0.7");
        let host = HeaderValue::from_static("app.test");
        let server = HeaderValue::from_static("node-1");
        let mut headers = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.test"),
            ("x-real-ip", "1.1.1.1"),
        ]);
        set_forwarded(&mut headers, &forwarded(&ip, Some(&host), &server));
        assert_eq!(
            get(&headers, "x-forwarded-for"),
            Some("1.1.1.1, 2.2.2.2, 10.0.0.7")
        );
        assert_eq!(get(&headers, "x-forwarded-proto"), Some("https"));
        assert_eq!(get(&headers, "x-forwarded-host"), Some("public.test"));
        assert_eq!(get(&headers, "x-forwarded-port"), Some("443"));
        assert_eq!(get(&headers, "x-real-ip"), Some("1.1.1.1"));
        assert_eq!(get(&headers, "x-forwarded-server"), Some("node-1"));
    }

    #[test]
    fn connection_cannot_remove_proxy_set_headers() {
        let ip = HeaderValue::from_static("10.0.0.7");
        let server = HeaderValue::from_static("node-1");
        let mut headers = map(&[("connection", "X-Forwarded-For, X-Real-Ip, X-Forwarded-Host")]);
        strip_request(&mut headers);
        let host = HeaderValue::from_static("app.test");
        remove_untrusted_forwarded(&mut headers);
        set_forwarded(&mut headers, &forwarded(&ip, Some(&host), &server));
        assert_eq!(get(&headers, "x-forwarded-for"), Some("10.0.0.7"));
        assert_eq!(get(&headers, "x-real-ip"), Some("10.0.0.7"));
        assert_eq!(get(&headers, "x-forwarded-host"), Some("app.test"));
        assert_eq!(get(&headers, "x-forwarded-port"), Some("80"));
    }

    #[test]
    fn websocket_proto() {
        let ip = HeaderValue::from_static("10.0.0.7");
        let server = HeaderValue::from_static("n");
        let mut headers = HeaderMap::new();
        let mut info = forwarded(&ip, None, &server);
        info.websocket = true;
        set_forwarded(&mut headers, &info);
        assert_eq!(get(&headers, "x-forwarded-proto"), Some("ws"));
    }

    #[test]
    fn x_forwarded_for_can_be_turned_off() {
        let ip = HeaderValue::from_static("10.0.0.7");
        let server = HeaderValue::from_static("n");
        let mut headers = map(&[("x-forwarded-for", "1.1.1.1")]);
        let mut info = forwarded(&ip, None, &server);
        info.forward_for = false;
        set_forwarded(&mut headers, &info);
        assert!(!headers.contains_key("x-forwarded-for"));
        assert_eq!(get(&headers, "x-real-ip"), Some("10.0.0.7"));
    }

    #[test]
    fn explicit_ports() {
        assert_eq!(explicit_port(b"a:80"), Some(&b"80"[..]));
        assert_eq!(explicit_port(b"[::1]:81"), Some(&b"81"[..]));
        assert_eq!(explicit_port(b"::1"), None);
        assert_eq!(explicit_port(b"a"), None);
        assert_eq!(explicit_port(b"a:"), None);
    }
}
