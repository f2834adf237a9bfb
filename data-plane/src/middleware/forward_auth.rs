//! `forwardAuth`: asks an authentication server about each request, as
//! Traefik's middleware does.
//!
//! The auth request goes to `address` (`GET`, or the request's method with
//! `preserveRequestMethod`) with the request's headers (only
//! `authRequestHeaders` when set), hop-by-hop headers removed, and
//! `X-Forwarded-For/Method/Proto/Host/Uri` describing the original request
//! (the client's own values kept with `trustForwardHeader`). With
//! `forwardBody`, the body goes too (a body over `maxBodySize` gets `401`).
//!
//! A 2xx answer lets the request through: `authResponseHeaders` (and the
//! headers matching `authResponseHeadersRegex`) are copied from the auth
//! response onto the request, replacing the client's; the user is read from
//! the auth response's `headerField`; the cookies named in
//! `addAuthCookiesToResponse` are set on the final response (replacing the
//! backend's cookies of the same name). Any other answer is sent to the
//! client as it is (status, headers, body), its relative `Location` made
//! absolute unless `preserveLocationHeader`. An auth server that cannot be
//! reached gives `500`.
//!
//! The auth server is reached with the proxy's pooled HTTP/1.1 client
//! (`https://` verified against the default roots); custom `tls` material
//! for the auth server is not supported yet and fails the build.

use std::time::Duration;

use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, LOCATION, SET_COOKIE, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::Scheme;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
use regex::Regex;
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, Read, read_limited};
use crate::headers::{
    self, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PORT, X_FORWARDED_PROTO, canonical_name,
};
use crate::service::Protocol;

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// Traefik's client timeout for the auth request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A built `forwardAuth` middleware.
#[derive(Debug)]
pub(crate) struct ForwardAuth {
    address: Uri,
    /// HTTP/1.1, in clear or over TLS.
    protocol: Protocol,
    trust_forward_header: bool,
    response_headers: Vec<HeaderName>,
    response_headers_regex: Option<Regex>,
    request_headers: Vec<HeaderName>,
    cookies: Vec<String>,
    header_field: Option<HeaderName>,
    /// `Some(limit)` when the body is forwarded (`u64::MAX`: no limit).
    forward_body: Option<u64>,
    preserve_location: bool,
    preserve_method: bool,
}

impl ForwardAuth {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::ForwardAuth) -> Result<Self, MiddlewareBuildError> {
        let address: Uri = config
            .address
            .parse()
            .map_err(|_| MiddlewareBuildError::Invalid {
                option: "forwardAuth.address",
                value: config.address.clone(),
                reason: "not a URL",
            })?;
        let protocol = match address.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => Protocol::Http1,
            Some(scheme) if *scheme == Scheme::HTTPS => Protocol::Https,
            _ => {
                return Err(MiddlewareBuildError::Invalid {
                    option: "forwardAuth.address",
                    value: config.address.clone(),
                    reason: "expected an http:// or https:// URL",
                });
            }
        };
        if config.tls.is_some() {
            return Err(MiddlewareBuildError::UnsupportedOption("forwardAuth.tls"));
        }
        let names = |option: &str, names: &[String]| {
            names
                .iter()
                .map(|name| MiddlewareBuildError::header_name(option, name))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            address,
            protocol,
            trust_forward_header: config.trust_forward_header,
            response_headers: names(
                "forwardAuth.authResponseHeaders",
                &config.auth_response_headers,
            )?,
            response_headers_regex: match config.auth_response_headers_regex.as_str() {
                "" => None,
                regex => Some(MiddlewareBuildError::regex(
                    "forwardAuth.authResponseHeadersRegex",
                    regex,
                )?),
            },
            request_headers: names(
                "forwardAuth.authRequestHeaders",
                &config.auth_request_headers,
            )?,
            cookies: config.add_auth_cookies_to_response.clone(),
            header_field: match config.header_field.as_str() {
                "" => None,
                name => Some(MiddlewareBuildError::header_name(
                    "forwardAuth.headerField",
                    name,
                )?),
            },
            forward_body: config.forward_body.then(|| {
                u64::try_from(config.max_body_size)
                    .ok()
                    .filter(|max| *max > 0)
                    .unwrap_or(u64::MAX)
            }),
            preserve_location: config.preserve_location_header,
            preserve_method: config.preserve_request_method,
        })
    }

    /// Asks the auth server, then serves the request or answers with the
    /// auth server's response.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        let (body, auth_body) = match self.forward_body {
            None => (body, ProxyBody::empty()),
            Some(limit) => match read_limited(body, limit).await {
                Read::Whole(buffered) => (buffered.body(), buffered.body()),
                Read::TooLarge(_) => {
                    tracing::debug!(router = ctx.router, "request body over maxBodySize");
                    return empty(StatusCode::UNAUTHORIZED);
                }
                Read::Failed(error) => {
                    tracing::debug!(router = ctx.router, %error, "request body failed");
                    return empty(StatusCode::INTERNAL_SERVER_ERROR);
                }
            },
        };
        let auth_request = self.auth_request(&parts, ctx.conn.peer_header.clone(), auth_body);
        let sent = tokio::time::timeout(
            TIMEOUT,
            ctx.shared.client.send(self.protocol, auth_request, None),
        );
        let auth = match sent.await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::debug!(router = ctx.router, address = %self.address, error = %crate::report::chain(&error), "auth server unreachable");
                return empty(StatusCode::INTERNAL_SERVER_ERROR);
            }
            Err(_) => {
                tracing::debug!(router = ctx.router, address = %self.address, "auth server timed out");
                return empty(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        if !auth.status().is_success() {
            let (mut auth_parts, auth_body) = auth.into_parts();
            headers::strip_response(&mut auth_parts.headers, false);
            if !self.preserve_location
                && let Some(location) = auth_parts.headers.get(LOCATION)
                && let Ok(absolute) =
                    HeaderValue::from_str(&resolve(&self.address, location.to_str().unwrap_or("")))
            {
                auth_parts.headers.insert(LOCATION, absolute);
            }
            return Response::from_parts(auth_parts, auth_body);
        }
        let auth_headers = auth.headers();
        self.copy_auth_headers(auth_headers, &mut parts.headers);
        if let Some(field) = &self.header_field
            && let Some(user) = auth_headers.get(field).and_then(|v| v.to_str().ok())
        {
            ctx.user = Some(user.to_owned());
        }
        let cookies: Vec<HeaderValue> = auth_headers
            .get_all(SET_COOKIE)
            .iter()
            .filter(|cookie| self.cookies.iter().any(|name| name == cookie_name(cookie)))
            .cloned()
            .collect();
        drop(auth);
        let mut response = next.run(Request::from_parts(parts, body), ctx).await;
        if !cookies.is_empty() {
            let kept: Vec<HeaderValue> = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter(|cookie| !self.cookies.iter().any(|name| name == cookie_name(cookie)))
                .cloned()
                .collect();
            let headers = response.headers_mut();
            headers.remove(SET_COOKIE);
            for cookie in kept.into_iter().chain(cookies) {
                headers.append(SET_COOKIE, cookie);
            }
        }
        response
    }

    /// The request to the auth server for a request with `parts` from
    /// `peer`.
    fn auth_request(
        &self,
        parts: &http::request::Parts,
        peer: HeaderValue,
        body: ProxyBody,
    ) -> Request<ProxyBody> {
        let original = &parts.headers;
        let mut headers = original.clone();
        headers::strip_request(&mut headers);
        // The auth request is not an upgrade, whatever the original is.
        headers.remove(CONNECTION);
        headers.remove(UPGRADE);
        headers.remove(HOST);
        headers.remove(CONTENT_LENGTH);
        headers.remove(TRANSFER_ENCODING);
        if !self.request_headers.is_empty() {
            headers = self
                .request_headers
                .iter()
                .flat_map(|name| {
                    headers
                        .get_all(name)
                        .iter()
                        .map(|value| (name.clone(), value.clone()))
                        .collect::<Vec<_>>()
                })
                .fold(HeaderMap::new(), |mut map, (name, value)| {
                    map.append(name, value);
                    map
                });
        }
        let trust = self.trust_forward_header;
        let client_ip = match original.get_all(X_FORWARDED_FOR).iter().collect::<Vec<_>>() {
            prior if trust && !prior.is_empty() => {
                let mut joined: Vec<&str> = prior.iter().filter_map(|v| v.to_str().ok()).collect();
                let peer_text = peer.to_str().unwrap_or("");
                joined.push(peer_text);
                HeaderValue::from_str(&joined.join(", ")).unwrap_or(peer)
            }
            _ => peer,
        };
        headers.insert(X_FORWARDED_FOR, client_ip);
        let forwarded = |name: &HeaderName, own: Option<HeaderValue>| match original.get(name) {
            Some(value) if trust && !value.is_empty() => Some(value.clone()),
            _ => own,
        };
        let set =
            |headers: &mut HeaderMap, name: HeaderName, value: Option<HeaderValue>| match value {
                Some(value) => {
                    headers.insert(name, value);
                }
                None => {
                    headers.remove(name);
                }
            };
        let method = HeaderValue::from_str(parts.method.as_str()).ok();
        set(
            &mut headers,
            X_FORWARDED_METHOD,
            forwarded(&X_FORWARDED_METHOD, method),
        );
        set(
            &mut headers,
            X_FORWARDED_PROTO,
            forwarded(&X_FORWARDED_PROTO, Some(HeaderValue::from_static("http"))),
        );
        let port = forwarded(&X_FORWARDED_PORT, None);
        if port.is_some() {
            set(&mut headers, X_FORWARDED_PORT, port);
        }
        set(
            &mut headers,
            X_FORWARDED_HOST,
            forwarded(&X_FORWARDED_HOST, request_host(parts)),
        );
        let uri = parts
            .uri
            .path_and_query()
            .and_then(|pq| HeaderValue::from_str(pq.as_str()).ok());
        set(
            &mut headers,
            X_FORWARDED_URI,
            forwarded(&X_FORWARDED_URI, uri),
        );

        let mut req = Request::new(body);
        *req.method_mut() = if self.preserve_method {
            parts.method.clone()
        } else {
            Method::GET
        };
        *req.uri_mut() = self.address.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        req
    }

    /// Copies the configured headers of the auth response onto the request.
    fn copy_auth_headers(&self, auth: &HeaderMap, request: &mut HeaderMap) {
        for name in &self.response_headers {
            request.remove(name);
            for value in auth.get_all(name) {
                request.append(name.clone(), value.clone());
            }
        }
        if let Some(regex) = &self.response_headers_regex {
            let matching = |name: &HeaderName| regex.is_match(&canonical_name(name.as_str()));
            let stale: Vec<HeaderName> = request.keys().filter(|n| matching(n)).cloned().collect();
            for name in stale {
                request.remove(name);
            }
            for (name, value) in auth.iter().filter(|(name, _)| matching(name)) {
                request.append(name.clone(), value.clone());
            }
        }
    }
}

/// Go's `Request.Host`: the HTTP/2 authority (or an absolute-form URI's),
/// else the `Host` header.
fn request_host(parts: &http::request::Parts) -> Option<HeaderValue> {
    let from_uri = || {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    };
    let from_header = || parts.headers.get(HOST).filter(|h| !h.is_empty()).cloned();
    if parts.version == Version::HTTP_2 {
        from_uri().or_else(from_header)
    } else {
        from_header().or_else(from_uri)
    }
}

/// A response with no body.
fn empty(status: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = status;
    response
}

/// The name of a `Set-Cookie` value.
fn cookie_name(cookie: &HeaderValue) -> &str {
    let text = cookie.to_str().unwrap_or("");
    text.split(['=', ';']).next().unwrap_or("").trim()
}

/// `location` resolved against `base`, as Go's `Response.Location` does.
fn resolve(base: &Uri, location: &str) -> String {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    }
}

#[cfg(test)]
#[path = "forward_auth_tests.rs"]
mod tests;
