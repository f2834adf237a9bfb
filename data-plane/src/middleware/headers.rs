//! `headers`: custom request and response headers, security headers and
//! CORS, in Traefik's order.
//!
//! Request: a CORS preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`, when any CORS option is set) is answered
//! here with `200` and the `Access-Control-Allow-*` headers; otherwise the
//! custom request headers are applied (an empty value removes the header;
//! `Host` sets the request's host; an empty `X-Forwarded-For` stops the proxy
//! from sending one), then `allowedHosts` is checked against the host (or the
//! first `hostsProxyHeaders` header set) and a mismatch answered with `500
//! Bad Host` (unrolled/secure's answer; not in `isDevelopment`).
//!
//! Response: the security headers (STS only over HTTPS, as `sslProxyHeaders`
//! tell, or with `forceSTSHeader`; `Public-Key-Pins` only over HTTPS), then
//! the custom response headers, then `Access-Control-Allow-Origin` for an
//! allowed `Origin`, `...-Allow-Credentials`, `...-Expose-Headers` and
//! `Vary: Origin`.

use std::collections::BTreeMap;

use http::header::{HOST, VARY};
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use regex::Regex;
use sluice_proto::v1;

use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, text_response};
use crate::dispatch::request_authority;
use crate::headers::X_FORWARDED_FOR;

const ALLOW_ORIGIN: HeaderName = HeaderName::from_static("access-control-allow-origin");
const ALLOW_CREDENTIALS: HeaderName = HeaderName::from_static("access-control-allow-credentials");
const ALLOW_HEADERS: HeaderName = HeaderName::from_static("access-control-allow-headers");
const ALLOW_METHODS: HeaderName = HeaderName::from_static("access-control-allow-methods");
const EXPOSE_HEADERS: HeaderName = HeaderName::from_static("access-control-expose-headers");
const MAX_AGE: HeaderName = HeaderName::from_static("access-control-max-age");
const REQUEST_METHOD: HeaderName = HeaderName::from_static("access-control-request-method");
const ORIGIN: HeaderName = HeaderName::from_static("origin");

/// A built `headers` middleware.
#[derive(Debug)]
pub(crate) struct Headers {
    /// In name order; `None` removes.
    request: Vec<(HeaderName, Option<HeaderValue>)>,
    /// In name order; `None` removes.
    response: Vec<(HeaderName, Option<HeaderValue>)>,
    cors: Option<Cors>,
    secure: Option<Secure>,
}

#[derive(Debug)]
struct Cors {
    allow_credentials: bool,
    allow_headers: Option<HeaderValue>,
    allow_methods: Option<HeaderValue>,
    origins: Vec<String>,
    origin_regexes: Vec<Regex>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
    add_vary: bool,
}

#[derive(Debug)]
struct Secure {
    allowed_hosts: Vec<String>,
    hosts_proxy_headers: Vec<HeaderName>,
    ssl_proxy_headers: Vec<(HeaderName, String)>,
    /// `Strict-Transport-Security`, and whether it is sent without HTTPS.
    sts: Option<(HeaderValue, bool)>,
    public_key: Option<HeaderValue>,
    /// Headers set on every response.
    always: Vec<(HeaderName, HeaderValue)>,
}

impl Headers {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::Headers) -> Result<Self, MiddlewareBuildError> {
        Ok(Self {
            request: custom("customRequestHeaders", &config.custom_request_headers)?,
            response: custom("customResponseHeaders", &config.custom_response_headers)?,
            cors: Cors::new(config)?,
            secure: Secure::new(config)?,
        })
    }

    /// Applies the headers around `next`, or answers a preflight or a bad host.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        if let Some(cors) = &self.cors
            && let Some(preflight) = cors.preflight(&req)
        {
            return preflight;
        }
        for (name, value) in &self.request {
            match value {
                None if name == X_FORWARDED_FOR => {
                    req.headers_mut().remove(name);
                    ctx.forward_for = false;
                }
                None => {
                    req.headers_mut().remove(name);
                }
                Some(value) if name == HOST => set_host(&mut req, value),
                Some(value) => {
                    req.headers_mut().insert(name.clone(), value.clone());
                }
            }
        }
        let https = match &self.secure {
            Some(secure) => {
                if !secure.host_allowed(&req) {
                    tracing::debug!(router = ctx.router, "headers: host not in allowedHosts");
                    return text_response(StatusCode::INTERNAL_SERVER_ERROR, "Bad Host\n");
                }
                secure.is_https(&req)
            }
            None => false,
        };
        let origin = req.headers().get(ORIGIN).cloned();
        let mut response = next.run(req, ctx).await;
        let headers = response.headers_mut();
        if let Some(secure) = &self.secure {
            secure.apply(headers, https);
        }
        for (name, value) in &self.response {
            match value {
                Some(value) => headers.insert(name.clone(), value.clone()),
                None => headers.remove(name),
            };
        }
        if let Some(cors) = &self.cors {
            cors.apply(headers, origin.as_ref());
        }
        response
    }
}

/// A custom header map, in name order (Go's map order is random anyway).
fn custom(
    option: &str,
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, Option<HeaderValue>)>, MiddlewareBuildError> {
    headers
        .iter()
        .map(|(name, value)| {
            let header = MiddlewareBuildError::header_name(format!("headers.{option}"), name)?;
            let value = match value.as_str() {
                "" => None,
                value => Some(MiddlewareBuildError::header_value(
                    format!("headers.{option}.{name}"),
                    value,
                )?),
            };
            Ok((header, value))
        })
        .collect()
}

/// Sets the request's host: the `Host` header, and the authority of an
/// absolute request target (HTTP/2).
fn set_host(req: &mut Request<ProxyBody>, host: &HeaderValue) {
    if req.uri().authority().is_some()
        && let Ok(authority) = Authority::try_from(host.as_bytes())
    {
        let mut parts = req.uri().clone().into_parts();
        parts.authority = Some(authority);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.headers_mut().insert(HOST, host.clone());
}

/// `values` joined with `,`, or `None` when empty.
fn joined(option: &str, values: &[String]) -> Result<Option<HeaderValue>, MiddlewareBuildError> {
    if values.is_empty() {
        return Ok(None);
    }
    MiddlewareBuildError::header_value(format!("headers.{option}"), &values.join(",")).map(Some)
}

impl Cors {
    /// `None` when no CORS option is set.
    fn new(config: &v1::Headers) -> Result<Option<Self>, MiddlewareBuildError> {
        let any = config.access_control_allow_credentials
            || !config.access_control_allow_headers.is_empty()
            || !config.access_control_allow_methods.is_empty()
            || !config.access_control_allow_origin_list.is_empty()
            || !config.access_control_allow_origin_list_regex.is_empty()
            || !config.access_control_expose_headers.is_empty()
            || config.access_control_max_age != 0
            || config.add_vary_header;
        if !any {
            return Ok(None);
        }
        let origin_regexes = config
            .access_control_allow_origin_list_regex
            .iter()
            .enumerate()
            .map(|(index, regex)| {
                MiddlewareBuildError::regex(
                    format!("headers.accessControlAllowOriginListRegex[{index}]"),
                    regex,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Self {
            allow_credentials: config.access_control_allow_credentials,
            allow_headers: joined(
                "accessControlAllowHeaders",
                &config.access_control_allow_headers,
            )?,
            allow_methods: joined(
                "accessControlAllowMethods",
                &config.access_control_allow_methods,
            )?,
            origins: config.access_control_allow_origin_list.clone(),
            origin_regexes,
            expose_headers: joined(
                "accessControlExposeHeaders",
                &config.access_control_expose_headers,
            )?,
            max_age: HeaderValue::from(config.access_control_max_age),
            add_vary: config.add_vary_header,
        }))
    }

    /// The answer to a preflight request, if `req` is one.
    fn preflight(&self, req: &Request<ProxyBody>) -> Option<Response<ProxyBody>> {
        let headers = req.headers();
        let non_empty = |name| headers.get(name).filter(|v: &&HeaderValue| !v.is_empty());
        if req.method() != Method::OPTIONS {
            return None;
        }
        let origin = non_empty(ORIGIN)?;
        non_empty(REQUEST_METHOD)?;
        let mut response = Response::new(ProxyBody::empty());
        let out = response.headers_mut();
        if self.allow_credentials {
            out.insert(ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(allow_headers) = &self.allow_headers {
            out.insert(ALLOW_HEADERS, allow_headers.clone());
        }
        if let Some(allow_methods) = &self.allow_methods {
            out.insert(ALLOW_METHODS, allow_methods.clone());
        }
        if let Some(allowed) = self.allowed_origin(Some(origin)) {
            out.insert(ALLOW_ORIGIN, allowed);
        }
        out.insert(MAX_AGE, self.max_age.clone());
        Some(response)
    }

    /// The `Access-Control-Allow-Origin` for `origin`: `*` or the exact entry
    /// of the list that allows it, or the origin a regex matches.
    fn allowed_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin.and_then(|o| o.to_str().ok()).unwrap_or("");
        if let Some(entry) = self.origins.iter().find(|e| *e == "*" || *e == origin) {
            return HeaderValue::from_str(entry).ok();
        }
        self.origin_regexes
            .iter()
            .any(|regex| regex.is_match(origin))
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }

    /// The CORS headers of a (non-preflight) response.
    fn apply(&self, headers: &mut HeaderMap, origin: Option<&HeaderValue>) {
        if let Some(allowed) = self.allowed_origin(origin) {
            headers.insert(ALLOW_ORIGIN, allowed);
        }
        if self.allow_credentials {
            headers.insert(ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(expose) = &self.expose_headers {
            headers.insert(EXPOSE_HEADERS, expose.clone());
        }
        if !self.add_vary {
            return;
        }
        // Traefik reads the first `Vary` and replaces them all.
        let vary = headers.get(VARY).map(HeaderValue::as_bytes).unwrap_or(b"");
        if vary == b"Origin" {
            return;
        }
        let mut value = vary.to_vec();
        if !value.is_empty() {
            value.push(b',');
        }
        value.extend_from_slice(b"Origin");
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.insert(VARY, value);
        }
    }
}

impl Secure {
    /// `None` when no security option is set.
    fn new(config: &v1::Headers) -> Result<Option<Self>, MiddlewareBuildError> {
        let value =
            |option: &str, value: &str| -> Result<Option<HeaderValue>, MiddlewareBuildError> {
                match value {
                    "" => Ok(None),
                    value => MiddlewareBuildError::header_value(format!("headers.{option}"), value)
                        .map(Some),
                }
            };
        let frame_options = match value(
            "customFrameOptionsValue",
            &config.custom_frame_options_value,
        )? {
            Some(custom) => Some(custom),
            None => config.frame_deny.then(|| HeaderValue::from_static("DENY")),
        };
        let xss = match value("customBrowserXSSValue", &config.custom_browser_xss_value)? {
            Some(custom) => Some(custom),
            None => config
                .browser_xss_filter
                .then(|| HeaderValue::from_static("1; mode=block")),
        };
        let always: Vec<(HeaderName, HeaderValue)> = [
            (HeaderName::from_static("x-frame-options"), frame_options),
            (
                HeaderName::from_static("x-content-type-options"),
                config
                    .content_type_nosniff
                    .then(|| HeaderValue::from_static("nosniff")),
            ),
            (HeaderName::from_static("x-xss-protection"), xss),
            (
                HeaderName::from_static("content-security-policy"),
                value("contentSecurityPolicy", &config.content_security_policy)?,
            ),
            (
                HeaderName::from_static("content-security-policy-report-only"),
                value(
                    "contentSecurityPolicyReportOnly",
                    &config.content_security_policy_report_only,
                )?,
            ),
            (
                HeaderName::from_static("referrer-policy"),
                value("referrerPolicy", &config.referrer_policy)?,
            ),
            (
                HeaderName::from_static("permissions-policy"),
                value("permissionsPolicy", &config.permissions_policy)?,
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
        let any = !config.allowed_hosts.is_empty()
            || !config.hosts_proxy_headers.is_empty()
            || !config.ssl_proxy_headers.is_empty()
            || config.sts_seconds != 0
            || config.sts_include_subdomains
            || config.sts_preload
            || config.force_sts_header
            || !config.public_key.is_empty()
            || config.is_development
            || !always.is_empty();
        if !any {
            return Ok(None);
        }
        let development = config.is_development;
        let sts = (config.sts_seconds != 0 && !development).then(|| {
            let mut text = format!("max-age={}", config.sts_seconds);
            if config.sts_include_subdomains {
                text.push_str("; includeSubDomains");
            }
            if config.sts_preload {
                text.push_str("; preload");
            }
            (
                HeaderValue::from_str(&text)
                    .unwrap_or_else(|_| HeaderValue::from_static("max-age=0")),
                config.force_sts_header,
            )
        });
        let hosts_proxy_headers = config
            .hosts_proxy_headers
            .iter()
            .map(|name| MiddlewareBuildError::header_name("headers.hostsProxyHeaders", name))
            .collect::<Result<_, _>>()?;
        let ssl_proxy_headers = config
            .ssl_proxy_headers
            .iter()
            .map(|(name, value)| {
                Ok((
                    MiddlewareBuildError::header_name("headers.sslProxyHeaders", name)?,
                    value.clone(),
                ))
            })
            .collect::<Result<Vec<_>, MiddlewareBuildError>>()?;
        Ok(Some(Self {
            allowed_hosts: if development {
                Vec::new()
            } else {
                config.allowed_hosts.clone()
            },
            hosts_proxy_headers,
            ssl_proxy_headers,
            sts,
            public_key: if development {
                None
            } else {
                value("publicKey", &config.public_key)?
            },
            always,
        }))
    }

    /// True when the request's host (from the first set `hostsProxyHeaders`
    /// header, else the request) is allowed; compared case-insensitively,
    /// port included, as unrolled/secure does.
    fn host_allowed<B>(&self, req: &Request<B>) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let host = self
            .hosts_proxy_headers
            .iter()
            .find_map(|name| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| request_authority(req));
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }

    /// True when the request came over HTTPS, as far as the proxy can tell:
    /// an `https` request target or a matching `sslProxyHeaders` header.
    fn is_https<B>(&self, req: &Request<B>) -> bool {
        req.uri().scheme_str() == Some("https")
            || self.ssl_proxy_headers.iter().any(|(name, value)| {
                let got = req
                    .headers()
                    .get(name)
                    .map_or(&b""[..], HeaderValue::as_bytes);
                got == value.as_bytes()
            })
    }

    /// The security headers of a response.
    fn apply(&self, headers: &mut HeaderMap, https: bool) {
        if let Some((sts, force)) = &self.sts
            && (https || *force)
        {
            headers.insert(
                HeaderName::from_static("strict-transport-security"),
                sts.clone(),
            );
        }
        for (name, value) in &self.always {
            headers.insert(name.clone(), value.clone());
        }
        if https && let Some(public_key) = &self.public_key {
            headers.insert(
                HeaderName::from_static("public-key-pins"),
                public_key.clone(),
            );
        }
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
