//! Traefik's HTTP middleware definitions (`http.middlewares.<name>`).
//!
//! One struct per middleware type, with Traefik v3's option names. Options
//! Traefik still accepts for compatibility (v2 names, deprecated options) are
//! here too, so a Traefik file loads; the compiler decides what Sluice serves.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, de};

use super::Duration;

/// `http.middlewares.<name>`: exactly one middleware type is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MiddlewareConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_prefix: Option<AddPrefixConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<StripPrefixConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix_regex: Option<StripPrefixRegexConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_path: Option<ReplacePathConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_path_regex: Option<ReplacePathRegexConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allow_list: Option<IpAllowListConfig>,
    /// The v2 name of `ipAllowList`, still accepted by Traefik v3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_white_list: Option<IpWhiteListConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeadersConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_regex: Option<RedirectRegexConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_scheme: Option<RedirectSchemeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_auth: Option<DigestAuthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_auth: Option<ForwardAuthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_req: Option<InFlightReqConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering: Option<BufferingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// `compress: {}` and a bare `compress:` both enable it with defaults.
    #[serde(
        default,
        deserialize_with = "allow_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub compress: Option<CompressConfig>,
    #[serde(
        default,
        rename = "passTLSClientCert",
        skip_serializing_if = "Option::is_none"
    )]
    pub pass_tls_client_cert: Option<PassTlsClientCertConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// `contentType: {}` and a bare `contentType:` both enable it.
    #[serde(
        default,
        deserialize_with = "allow_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<ContentTypeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_web: Option<GrpcWebConfig>,
    /// Traefik plugins, by plugin name: accepted so files load, never served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Value>,
}

/// `addPrefix`: prepends a prefix to the request path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddPrefixConfig {
    /// The prefix, starting with `/`.
    #[serde(default)]
    pub prefix: String,
}

/// `stripPrefix`: removes the first matching prefix from the request path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StripPrefixConfig {
    #[serde(default, deserialize_with = "string_list")]
    pub prefixes: Vec<String>,
    /// Deprecated v2 behaviour: always leave a path starting with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_slash: Option<bool>,
}

/// `stripPrefixRegex`: removes the first prefix matching one of the regexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StripPrefixRegexConfig {
    #[serde(default, deserialize_with = "string_list")]
    pub regex: Vec<String>,
}

/// `replacePath`: replaces the whole request path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacePathConfig {
    #[serde(default)]
    pub path: String,
}

/// `replacePathRegex`: rewrites the request path with a regex.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacePathRegexConfig {
    /// Go (RE2) regular expression matched against the path.
    #[serde(default)]
    pub regex: String,
    /// Replacement, with `$1` / `${name}` references to capture groups.
    #[serde(default)]
    pub replacement: String,
}

/// `chain`: a reusable list of middlewares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChainConfig {
    /// Middleware names, applied in order; `name@provider` for another provider's.
    #[serde(default, deserialize_with = "string_list")]
    pub middlewares: Vec<String>,
}

/// How the client IP is chosen from the connection and `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpStrategyConfig {
    /// Use the `X-Forwarded-For` entry at this position from the right; wins over `excludedIPs`.
    #[serde(default)]
    pub depth: i64,
    /// Use the rightmost `X-Forwarded-For` entry not in these IPs or CIDRs.
    #[serde(default, rename = "excludedIPs", deserialize_with = "string_list")]
    pub excluded_ips: Vec<String>,
    /// Group IPv6 clients by this prefix length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_subnet: Option<i64>,
}

/// `ipAllowList`: only lets clients from the given ranges through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpAllowListConfig {
    /// Allowed IPs and CIDRs.
    #[serde(default, deserialize_with = "string_list")]
    pub source_range: Vec<String>,
    /// Absent means the connection's remote address.
    #[serde(
        default,
        deserialize_with = "allow_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_strategy: Option<IpStrategyConfig>,
    /// Status of rejected requests; default 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_status_code: Option<i64>,
}

/// `ipWhiteList`: v2's `ipAllowList`, without `rejectStatusCode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpWhiteListConfig {
    /// Allowed IPs and CIDRs.
    #[serde(default, deserialize_with = "string_list")]
    pub source_range: Vec<String>,
    /// Absent means the connection's remote address.
    #[serde(
        default,
        deserialize_with = "allow_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_strategy: Option<IpStrategyConfig>,
}

/// `headers`: custom request/response headers, CORS and security headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeadersConfig {
    /// Headers set on the request; an empty value removes the header.
    #[serde(default)]
    pub custom_request_headers: BTreeMap<String, String>,
    /// Headers set on the response; an empty value removes the header.
    #[serde(default)]
    pub custom_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub access_control_allow_credentials: bool,
    #[serde(default, deserialize_with = "string_list")]
    pub access_control_allow_headers: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub access_control_allow_methods: Vec<String>,
    /// Allowed origins; `*` allows any.
    #[serde(default, deserialize_with = "string_list")]
    pub access_control_allow_origin_list: Vec<String>,
    /// Allowed origins as Go regular expressions.
    #[serde(default, deserialize_with = "string_list")]
    pub access_control_allow_origin_list_regex: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub access_control_expose_headers: Vec<String>,
    /// Seconds a preflight response may be cached.
    #[serde(default)]
    pub access_control_max_age: i64,
    /// Add `Vary: Origin` when the allowed origin depends on the request.
    #[serde(default)]
    pub add_vary_header: bool,
    /// Host names allowed to be served; empty allows any.
    #[serde(default, deserialize_with = "string_list")]
    pub allowed_hosts: Vec<String>,
    /// Headers that may carry the original host (checked against `allowedHosts`).
    #[serde(default, deserialize_with = "string_list")]
    pub hosts_proxy_headers: Vec<String>,
    /// Header/value pairs that mark a request as HTTPS behind another proxy.
    #[serde(default)]
    pub ssl_proxy_headers: BTreeMap<String, String>,
    /// `Strict-Transport-Security` max-age; 0 leaves the header out.
    #[serde(default)]
    pub sts_seconds: i64,
    #[serde(default)]
    pub sts_include_subdomains: bool,
    #[serde(default)]
    pub sts_preload: bool,
    /// Send `Strict-Transport-Security` on plain HTTP too.
    #[serde(default, rename = "forceSTSHeader")]
    pub force_sts_header: bool,
    /// `X-Frame-Options: DENY`.
    #[serde(default)]
    pub frame_deny: bool,
    /// `X-Frame-Options` value; wins over `frameDeny`.
    #[serde(default)]
    pub custom_frame_options_value: String,
    /// `X-Content-Type-Options: nosniff`.
    #[serde(default)]
    pub content_type_nosniff: bool,
    /// `X-XSS-Protection: 1; mode=block`.
    #[serde(default)]
    pub browser_xss_filter: bool,
    /// `X-XSS-Protection` value; wins over `browserXssFilter`.
    #[serde(default, rename = "customBrowserXSSValue")]
    pub custom_browser_xss_value: String,
    #[serde(default)]
    pub content_security_policy: String,
    #[serde(default)]
    pub content_security_policy_report_only: String,
    /// `Public-Key-Pins` value.
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub referrer_policy: String,
    #[serde(default)]
    pub permissions_policy: String,
    /// Relax `allowedHosts`, SSL and STS checks for local development.
    #[serde(default)]
    pub is_development: bool,
    /// Deprecated: `Feature-Policy` value (use `permissionsPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_policy: Option<String>,
    /// Deprecated: redirect plain HTTP to HTTPS (use `redirectScheme`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect: Option<bool>,
    /// Deprecated: like `sslRedirect`, with a temporary redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_temporary_redirect: Option<bool>,
    /// Deprecated: host to redirect to with `sslRedirect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_host: Option<String>,
    /// Deprecated: redirect to `sslHost` even on HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_force_host: Option<bool>,
}

/// `errors`: serves an error page from another service for some statuses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorsConfig {
    /// Statuses that trigger the error page: `404`, `500-599`, `401,403`.
    #[serde(default, deserialize_with = "string_list")]
    pub status: Vec<String>,
    /// Status rewrites (`"500-599": 503`) applied to the error page response.
    #[serde(default)]
    pub status_rewrites: BTreeMap<String, i64>,
    /// Service serving the error page.
    #[serde(default)]
    pub service: String,
    /// Path of the error page; `{status}` is replaced by the status code.
    #[serde(default)]
    pub query: String,
}

/// What groups requests as coming from one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceCriterionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_strategy: Option<IpStrategyConfig>,
    /// Group by the value of this request header.
    #[serde(default)]
    pub request_header_name: String,
    /// Group by the request's host.
    #[serde(default)]
    pub request_host: bool,
}

/// `rateLimit`: a token bucket per source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitConfig {
    /// Requests allowed per `period` on average; 0 disables the limit.
    #[serde(default)]
    pub average: i64,
    /// Default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Duration>,
    /// Requests allowed in a burst; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<i64>,
    /// Absent means the client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterionConfig>,
    /// Shared limits in Redis: accepted so files load, not served by Sluice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<serde_json::Value>,
}

/// `redirectRegex`: redirects when the request URL matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectRegexConfig {
    /// Go (RE2) regular expression matched against the full request URL.
    #[serde(default)]
    pub regex: String,
    /// Target URL, with `$1` / `${name}` references to capture groups.
    #[serde(default)]
    pub replacement: String,
    /// 301/308 instead of 302/307.
    #[serde(default)]
    pub permanent: bool,
}

/// `redirectScheme`: redirects to another scheme (and port).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectSchemeConfig {
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: String,
    /// Target port; a string in Traefik, a number is accepted too.
    #[serde(default, deserialize_with = "string_or_number")]
    pub port: String,
    /// 301/308 instead of 302/307.
    #[serde(default)]
    pub permanent: bool,
}

/// `basicAuth`: HTTP basic authentication against htpasswd-style users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuthConfig {
    /// `user:hash` entries (`htpasswd` output).
    #[serde(default, deserialize_with = "string_list")]
    pub users: Vec<String>,
    /// File of `user:hash` lines, merged with `users`.
    #[serde(default)]
    pub users_file: String,
    /// Default `traefik`.
    #[serde(default)]
    pub realm: String,
    /// Header that receives the authenticated user name.
    #[serde(default)]
    pub header_field: String,
    /// Remove the `Authorization` header before forwarding.
    #[serde(default)]
    pub remove_header: bool,
}

/// `digestAuth`: HTTP digest authentication against htdigest-style users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DigestAuthConfig {
    /// `user:realm:ha1` entries (`htdigest` output).
    #[serde(default, deserialize_with = "string_list")]
    pub users: Vec<String>,
    /// File of `user:realm:ha1` lines, merged with `users`.
    #[serde(default)]
    pub users_file: String,
    /// Default `traefik`.
    #[serde(default)]
    pub realm: String,
    /// Header that receives the authenticated user name.
    #[serde(default)]
    pub header_field: String,
    /// Remove the `Authorization` header before forwarding.
    #[serde(default)]
    pub remove_header: bool,
}

/// TLS from Sluice to a server it calls (the forwardAuth server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTlsConfig {
    /// CA certificates: a file path or inline PEM.
    #[serde(default)]
    pub ca: String,
    /// Client certificate: a file path or inline PEM.
    #[serde(default)]
    pub cert: String,
    /// Client key: a file path or inline PEM.
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Deprecated and without effect in Traefik v3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_optional: Option<bool>,
}

/// `forwardAuth`: asks an authentication server about each request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardAuthConfig {
    /// URL of the authentication server.
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsConfig>,
    /// Pass the client's `X-Forwarded-*` headers on instead of setting them.
    #[serde(default)]
    pub trust_forward_header: bool,
    /// Headers copied from the auth response onto the forwarded request.
    #[serde(default, deserialize_with = "string_list")]
    pub auth_response_headers: Vec<String>,
    /// Regex of further auth response headers to copy.
    #[serde(default)]
    pub auth_response_headers_regex: String,
    /// Request headers sent to the auth server; empty sends all.
    #[serde(default, deserialize_with = "string_list")]
    pub auth_request_headers: Vec<String>,
    /// Cookies copied from the auth response onto the response.
    #[serde(default, deserialize_with = "string_list")]
    pub add_auth_cookies_to_response: Vec<String>,
    /// Header that receives the authenticated user name.
    #[serde(default)]
    pub header_field: String,
    /// Send the request body to the auth server.
    #[serde(default)]
    pub forward_body: bool,
    /// Largest body sent with `forwardBody`; default -1 (no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<i64>,
    /// Keep a relative `Location` of the auth response as it is.
    #[serde(default)]
    pub preserve_location_header: bool,
    /// Call the auth server with the request's method instead of GET.
    #[serde(default)]
    pub preserve_request_method: bool,
}

/// `inFlightReq`: caps concurrent requests per source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InFlightReqConfig {
    /// Maximum simultaneous requests.
    #[serde(default)]
    pub amount: i64,
    /// Absent means the request's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterionConfig>,
}

/// `buffering`: reads whole bodies before passing them on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BufferingConfig {
    /// Largest request body accepted; 0 means no limit.
    #[serde(default)]
    pub max_request_body_bytes: i64,
    /// Request bytes kept in memory before spilling to disk; default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_request_body_bytes: Option<i64>,
    /// Largest response body accepted; 0 means no limit.
    #[serde(default)]
    pub max_response_body_bytes: i64,
    /// Response bytes kept in memory before spilling to disk; default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_response_body_bytes: Option<i64>,
    /// When to replay the buffered request, e.g. `IsNetworkError() && Attempts() < 2`.
    #[serde(default)]
    pub retry_expression: String,
}

/// `circuitBreaker`: stops calling a failing service for a while.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreakerConfig {
    /// When to open, e.g. `NetworkErrorRatio() > 0.5`.
    #[serde(default)]
    pub expression: String,
    /// How often the expression is evaluated; default 100ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_period: Option<Duration>,
    /// How long the breaker stays open; default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_duration: Option<Duration>,
    /// How long traffic ramps back up; default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_duration: Option<Duration>,
    /// Status returned while open; default 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<i64>,
}

/// `compress`: compresses responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompressConfig {
    /// Content types never compressed; exclusive with `includedContentTypes`.
    #[serde(default, deserialize_with = "string_list")]
    pub excluded_content_types: Vec<String>,
    /// The only content types compressed; exclusive with `excludedContentTypes`.
    #[serde(default, deserialize_with = "string_list")]
    pub included_content_types: Vec<String>,
    /// Smaller responses are not compressed; default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_response_body_bytes: Option<i64>,
    /// Allowed encodings by preference; default `zstd`, `br`, `gzip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encodings: Option<Vec<String>>,
    /// Encoding used when the client sends no `Accept-Encoding` (or `*`).
    #[serde(default)]
    pub default_encoding: String,
}

/// `passTLSClientCert`: passes the client certificate to the backend in headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PassTlsClientCertConfig {
    /// Send the certificate in `X-Forwarded-Tls-Client-Cert`.
    #[serde(default)]
    pub pem: bool,
    /// Fields sent in `X-Forwarded-Tls-Client-Cert-Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<TlsClientCertInfoConfig>,
}

/// `passTLSClientCert.info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsClientCertInfoConfig {
    #[serde(default)]
    pub not_after: bool,
    #[serde(default)]
    pub not_before: bool,
    #[serde(default)]
    pub sans: bool,
    #[serde(default)]
    pub serial_number: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<TlsClientCertSubjectConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<TlsClientCertIssuerConfig>,
}

/// `passTLSClientCert.info.subject`: distinguished name parts to send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsClientCertSubjectConfig {
    #[serde(default)]
    pub country: bool,
    #[serde(default)]
    pub province: bool,
    #[serde(default)]
    pub locality: bool,
    #[serde(default)]
    pub organization: bool,
    #[serde(default)]
    pub organizational_unit: bool,
    #[serde(default)]
    pub common_name: bool,
    #[serde(default)]
    pub serial_number: bool,
    #[serde(default)]
    pub domain_component: bool,
}

/// `passTLSClientCert.info.issuer`: as the subject, without `organizationalUnit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsClientCertIssuerConfig {
    #[serde(default)]
    pub country: bool,
    #[serde(default)]
    pub province: bool,
    #[serde(default)]
    pub locality: bool,
    #[serde(default)]
    pub organization: bool,
    #[serde(default)]
    pub common_name: bool,
    #[serde(default)]
    pub serial_number: bool,
    #[serde(default)]
    pub domain_component: bool,
}

/// `retry`: retries a request that got no response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryConfig {
    /// Attempts in total, at least 1.
    #[serde(default)]
    pub attempts: i64,
    /// First backoff interval; default 100ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<Duration>,
}

/// `contentType`: sets `Content-Type` from the body when the backend did not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContentTypeConfig {
    /// Deprecated; `false` turns detection off, absent means on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_detect: Option<bool>,
}

/// `grpcWeb`: translates gRPC-Web requests to gRPC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcWebConfig {
    /// Allowed origins; `*` allows any.
    #[serde(default, deserialize_with = "string_list")]
    pub allow_origins: Vec<String>,
}

/// A present key with no value (`compress:` in YAML) enables the section with
/// its defaults, as Traefik's `allowEmpty` does; an absent key stays `None`.
fn allow_empty<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(|value| Some(value.unwrap_or_default()))
}

/// A scalar Traefik reads as a string, written either way (`port: 443`).
fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(ScalarVisitor)
}

/// A list of strings; like Traefik, a single string is split on commas and a
/// number stands for its decimal text (`status: [404, "500-599"]`).
fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;
    impl<'de> de::Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings, or one comma-separated string")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<String>, E> {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }
        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Vec<String>, E> {
            Ok(vec![number.to_string()])
        }
        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Vec<String>, E> {
            Ok(vec![number.to_string()])
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(Scalar(item)) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(ListVisitor)
}

/// One list item of [`string_list`].
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

struct ScalarVisitor;

impl de::Visitor<'_> for ScalarVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<String, E> {
        Ok(number.to_string())
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<String, E> {
        Ok(number.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamic::DynamicConfig;

    fn middlewares_yaml(text: &str) -> BTreeMap<String, MiddlewareConfig> {
        let config: DynamicConfig = serde_yaml::from_str(text).unwrap();
        config.http.unwrap().middlewares
    }

    fn middlewares_toml(text: &str) -> BTreeMap<String, MiddlewareConfig> {
        let config: DynamicConfig = toml::from_str(text).unwrap();
        config.http.unwrap().middlewares
    }

    #[test]
    fn yaml_examples_from_traefik_docs_fit_the_dynamic_config() {
        let middlewares = middlewares_yaml(
            r#"
http:
  middlewares:
    test-replacepathregex:
      replacePathRegex:
        regex: "^/api3/(.*)"
        replacement: "/api/$1"
    test-auth:
      basicAuth:
        users:
          - "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
        usersFile: "/path/to/my/usersfile"
"#,
        );
        assert_eq!(
            middlewares["test-replacepathregex"].replace_path_regex,
            Some(ReplacePathRegexConfig {
                regex: "^/api3/(.*)".to_owned(),
                replacement: "/api/$1".to_owned(),
            })
        );
        assert_eq!(
            middlewares["test-auth"].basic_auth,
            Some(BasicAuthConfig {
                users: vec!["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/".to_owned()],
                users_file: "/path/to/my/usersfile".to_owned(),
                ..BasicAuthConfig::default()
            })
        );
    }

    #[test]
    fn yaml_headers_rate_limit_and_circuit_breaker() {
        let middlewares = middlewares_yaml(
            r#"
http:
  middlewares:
    testHeader:
      headers:
        accessControlAllowMethods: ["GET", "OPTIONS", "PUT"]
        accessControlAllowHeaders: "*"
        accessControlAllowOriginList:
          - https://foo.bar.org
        accessControlExposeHeaders: X-One, X-Two
        accessControlMaxAge: 100
        addVaryHeader: true
        forceSTSHeader: true
        customBrowserXSSValue: "0"
        browserXssFilter: true
        sslRedirect: true
        featurePolicy: "vibrate 'none';"
        customRequestHeaders:
          X-Script-Name: "test"
          X-Custom-Request-Header: ""
    test-ratelimit:
      rateLimit:
        average: 100
        period: 1m
        burst: 50
        sourceCriterion:
          ipStrategy:
            depth: 2
            excludedIPs:
              - 127.0.0.1/32
            ipv6Subnet: 64
    latency-check:
      circuitBreaker:
        expression: "LatencyAtQuantileMS(50.0) > 100"
        checkPeriod: 10s
        responseCode: 502
"#,
        );
        let headers = middlewares["testHeader"].headers.as_ref().unwrap();
        assert_eq!(
            headers.access_control_allow_methods,
            ["GET", "OPTIONS", "PUT"]
        );
        assert_eq!(headers.access_control_allow_headers, ["*"]);
        assert_eq!(headers.access_control_expose_headers, ["X-One", "X-Two"]);
        assert!(headers.force_sts_header && headers.browser_xss_filter);
        assert_eq!(headers.custom_browser_xss_value, "0");
        assert_eq!(headers.ssl_redirect, Some(true));
        assert_eq!(
            headers.custom_request_headers["X-Custom-Request-Header"],
            ""
        );

        let rate_limit = middlewares["test-ratelimit"].rate_limit.as_ref().unwrap();
        assert_eq!(rate_limit.period.unwrap().as_millis(), 60_000);
        assert_eq!(rate_limit.burst, Some(50));
        let strategy = rate_limit
            .source_criterion
            .as_ref()
            .and_then(|criterion| criterion.ip_strategy.as_ref())
            .unwrap();
        assert_eq!(strategy.depth, 2);
        assert_eq!(strategy.excluded_ips, ["127.0.0.1/32"]);
        assert_eq!(strategy.ipv6_subnet, Some(64));

        let breaker = middlewares["latency-check"]
            .circuit_breaker
            .as_ref()
            .unwrap();
        assert_eq!(breaker.check_period.unwrap().as_millis(), 10_000);
        assert_eq!(breaker.fallback_duration, None);
        assert_eq!(breaker.response_code, Some(502));
    }

    #[test]
    fn yaml_scalars_traefik_reads_as_strings_may_be_numbers() {
        let middlewares = middlewares_yaml(
            r#"
http:
  middlewares:
    to-https:
      redirectScheme:
        scheme: https
        port: 443
    pages:
      errors:
        status: [404, "500-599"]
        service: error-pages
        query: "/{status}.html"
"#,
        );
        assert_eq!(
            middlewares["to-https"]
                .redirect_scheme
                .as_ref()
                .unwrap()
                .port,
            "443"
        );
        assert_eq!(
            middlewares["pages"].errors.as_ref().unwrap().status,
            ["404", "500-599"]
        );
    }

    #[test]
    fn empty_sections_enable_a_middleware_with_its_defaults() {
        let middlewares = middlewares_yaml(
            "
http:
  middlewares:
    braces:
      compress: {}
    bare:
      compress:
    detect:
      contentType:
    allow:
      ipAllowList:
        sourceRange: [10.0.0.0/8]
        ipStrategy:
",
        );
        assert_eq!(
            middlewares["braces"].compress,
            Some(CompressConfig::default())
        );
        assert_eq!(
            middlewares["bare"].compress,
            Some(CompressConfig::default())
        );
        assert_eq!(
            middlewares["detect"].content_type,
            Some(ContentTypeConfig::default())
        );
        let allow = middlewares["allow"].ip_allow_list.as_ref().unwrap();
        assert_eq!(allow.ip_strategy, Some(IpStrategyConfig::default()));
        assert_eq!(middlewares["allow"].compress, None);
    }

    #[test]
    fn toml_examples_from_traefik_docs() {
        let middlewares = middlewares_toml(
            r#"
[http.middlewares]
  [http.middlewares.test-compress.compress]
    excludedContentTypes = ["text/event-stream"]
    encodings = ["zstd", "br"]

  [http.middlewares.test-auth.forwardAuth]
    address = "https://example.com/auth"
    authResponseHeaders = ["X-Auth-User", "X-Secret"]
    authResponseHeadersRegex = "^X-"
    addAuthCookiesToResponse = ["Session-Cookie"]
    maxBodySize = 1000
    [http.middlewares.test-auth.forwardAuth.tls]
      ca = "path/to/local.crt"
      caOptional = true

  [http.middlewares.test-passtlsclientcert.passTLSClientCert]
    pem = true
    [http.middlewares.test-passtlsclientcert.passTLSClientCert.info]
      notAfter = true
      sans = true
      [http.middlewares.test-passtlsclientcert.passTLSClientCert.info.subject]
        organizationalUnit = true
        domainComponent = true
      [http.middlewares.test-passtlsclientcert.passTLSClientCert.info.issuer]
        commonName = true

  [http.middlewares.test-ipallowlist.ipAllowList]
    sourceRange = ["127.0.0.1/32", "192.168.1.7"]
    rejectStatusCode = 404
    [http.middlewares.test-ipallowlist.ipAllowList.ipStrategy]
      excludedIPs = ["127.0.0.1/32"]

  [http.middlewares.legacy.ipWhiteList]
    sourceRange = ["10.0.0.0/8"]

  [http.middlewares.test-retry.retry]
    attempts = 4
    initialInterval = "100ms"

  [http.middlewares.limit.buffering]
    maxRequestBodyBytes = 2000000
    retryExpression = "IsNetworkError() && Attempts() < 2"

  [http.middlewares.secured.chain]
    middlewares = ["https-only", "known-ips", "auth-users"]

  [http.middlewares.test-inflightreq.inFlightReq]
    amount = 10
    [http.middlewares.test-inflightreq.inFlightReq.sourceCriterion]
      requestHeaderName = "username"

  [http.middlewares.test-grpc-web.grpcWeb]
    allowOrigins = ["*"]

  [http.middlewares.my-plugin.plugin.demo]
    headers = { X-Demo = "test" }
"#,
        );
        let compress = middlewares["test-compress"].compress.as_ref().unwrap();
        assert_eq!(
            compress.encodings.as_deref(),
            Some(&["zstd".to_owned(), "br".to_owned()][..])
        );
        let forward = middlewares["test-auth"].forward_auth.as_ref().unwrap();
        assert_eq!(forward.max_body_size, Some(1000));
        assert_eq!(forward.tls.as_ref().unwrap().ca_optional, Some(true));
        let pass = middlewares["test-passtlsclientcert"]
            .pass_tls_client_cert
            .as_ref()
            .unwrap();
        let info = pass.info.as_ref().unwrap();
        assert!(info.subject.as_ref().unwrap().organizational_unit);
        assert!(info.issuer.as_ref().unwrap().common_name);
        let allow = middlewares["test-ipallowlist"]
            .ip_allow_list
            .as_ref()
            .unwrap();
        assert_eq!(allow.reject_status_code, Some(404));
        assert!(middlewares["legacy"].ip_white_list.is_some());
        let retry = middlewares["test-retry"].retry.as_ref().unwrap();
        assert_eq!(retry.initial_interval.unwrap().as_millis(), 100);
        assert_eq!(
            middlewares["secured"]
                .chain
                .as_ref()
                .unwrap()
                .middlewares
                .len(),
            3
        );
        assert_eq!(
            middlewares["test-inflightreq"]
                .in_flight_req
                .as_ref()
                .unwrap()
                .amount,
            10
        );
        assert!(middlewares["my-plugin"].plugin.is_some());
    }

    #[test]
    fn unknown_options_are_rejected_naming_the_key() {
        let error = serde_yaml::from_str::<DynamicConfig>(
            "
http:
  middlewares:
    auth:
      basicAuth:
        users: []
        userFile: /etc/users
",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `userFile`"), "{error}");

        let error = toml::from_str::<DynamicConfig>(
            "[http.middlewares.x.headers]\nforceStsHeader = true\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("forceStsHeader"), "{error}");

        let error =
            serde_yaml::from_str::<MiddlewareConfig>("ipWhiteList: {rejectStatusCode: 404}")
                .unwrap_err()
                .to_string();
        assert!(error.contains("rejectStatusCode"), "{error}");

        let error = serde_yaml::from_str::<MiddlewareConfig>("stripPrefixes: {prefixes: [/a]}")
            .unwrap_err()
            .to_string();
        assert!(error.contains("stripPrefixes"), "{error}");
    }

    #[test]
    fn serializes_back_with_traefik_key_names() {
        let config = MiddlewareConfig {
            headers: Some(HeadersConfig {
                force_sts_header: true,
                custom_browser_xss_value: "0".to_owned(),
                ..HeadersConfig::default()
            }),
            pass_tls_client_cert: Some(PassTlsClientCertConfig::default()),
            rate_limit: Some(RateLimitConfig {
                source_criterion: Some(SourceCriterionConfig {
                    ip_strategy: Some(IpStrategyConfig {
                        excluded_ips: vec!["10.0.0.1".to_owned()],
                        ..IpStrategyConfig::default()
                    }),
                    ..SourceCriterionConfig::default()
                }),
                ..RateLimitConfig::default()
            }),
            ..MiddlewareConfig::default()
        };
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["headers"]["forceSTSHeader"], true);
        assert_eq!(value["headers"]["customBrowserXSSValue"], "0");
        assert!(value["headers"].get("sslRedirect").is_none());
        assert!(value.get("passTLSClientCert").is_some());
        assert_eq!(
            value["rateLimit"]["sourceCriterion"]["ipStrategy"]["excludedIPs"][0],
            "10.0.0.1"
        );
        let back: MiddlewareConfig = serde_json::from_value(value).unwrap();
        assert_eq!(back, config);
    }
}
