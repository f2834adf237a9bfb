//! Traefik v3's dynamic configuration, as serde types.
//!
//! This is what providers produce: the file provider deserializes it from
//! YAML or TOML, the Kubernetes and KV providers build it from their sources.
//! Keys are Traefik's (camelCase); unknown keys are rejected so a typo is an
//! error naming the key rather than a silently ignored option. The compiler
//! turns this model into a proto snapshot.

mod duration;
mod middleware;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use duration::Duration;
pub use middleware::*;

/// One provider's dynamic configuration (or the merge of several).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicConfig {
    /// HTTP routers, services, middlewares and servers transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConfig>,
    /// TCP routing: accepted so Traefik files load, not served by Sluice yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<serde_json::Value>,
    /// UDP routing: accepted so Traefik files load, not served by Sluice yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<serde_json::Value>,
    /// Certificates, TLS options and certificate stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The `http` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpConfig {
    /// Shared: routers come by the thousand, and merging or compiling a
    /// configuration copies pointers to the unchanged ones.
    #[serde(default)]
    pub routers: BTreeMap<String, Arc<RouterConfig>>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub middlewares: BTreeMap<String, MiddlewareConfig>,
    #[serde(default)]
    pub servers_transports: BTreeMap<String, ServersTransportConfig>,
}

/// `http.routers.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterConfig {
    /// Entry points the router listens on; empty means every entry point.
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// Middleware names, applied in order.
    #[serde(default)]
    pub middlewares: Vec<String>,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Matching rule, e.g. ``Host(`example.com`) && PathPrefix(`/api`)``.
    #[serde(default)]
    pub rule: String,
    /// `v3` (default) or `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_syntax: Option<String>,
    /// Explicit priority; 0 or absent means the rule's length.
    #[serde(default)]
    pub priority: i64,
    /// TLS termination for this router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouterTlsConfig>,
    /// Accepted for compatibility; metrics and tracing are configured elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<serde_json::Value>,
}

/// `http.routers.<name>.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterTlsConfig {
    #[serde(default)]
    pub options: String,
    #[serde(default)]
    pub cert_resolver: String,
    #[serde(default)]
    pub domains: Vec<DomainConfig>,
}

/// A main domain and its subject alternative names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    #[serde(default)]
    pub main: String,
    #[serde(default)]
    pub sans: Vec<String>,
}

/// `http.services.<name>`: exactly one of the kinds is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<WeightedConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirroring: Option<MirroringConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverConfig>,
}

/// `loadBalancer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancerConfig {
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// Forward the client's Host header; Traefik's default is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_host_header: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_forwarding: Option<ResponseForwardingConfig>,
    #[serde(default)]
    pub servers_transport: String,
    /// Accepted for compatibility (`wrr` is the only strategy served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// One backend server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    #[serde(default)]
    pub url: String,
    /// Relative weight; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default)]
    pub preserve_path: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<StickyCookieConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StickyCookieConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub http_only: bool,
    #[serde(default)]
    pub same_site: String,
    #[serde(default)]
    pub max_age: i64,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub domain: String,
}

/// Active health check of a load balancer's servers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckConfig {
    #[serde(default)]
    pub scheme: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub status: u32,
    #[serde(default)]
    pub port: u32,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_interval: Option<Duration>,
    /// Default 5s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseForwardingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<Duration>,
}

/// `weighted`: a service of services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightedConfig {
    #[serde(default)]
    pub services: Vec<WeightedServiceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedServiceRef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirroringConfig {
    #[serde(default)]
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_body: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<i64>,
    #[serde(default)]
    pub mirrors: Vec<MirrorConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub percent: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailoverConfig {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub fallback: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
}

/// `http.serversTransports.<name>`: how to talk to backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServersTransportConfig {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, rename = "rootCAs")]
    pub root_cas: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<CertificateFiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_idle_conns_per_host: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding_timeouts: Option<ForwardingTimeoutsConfig>,
    #[serde(default, rename = "disableHTTP2")]
    pub disable_http2: bool,
    #[serde(default, rename = "peerCertURI")]
    pub peer_cert_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardingTimeoutsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_conn_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_timeout: Option<Duration>,
}

/// A certificate and its key: each a file path or inline PEM, as Traefik allows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateFiles {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

/// The `tls` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub certificates: Vec<TlsCertificateConfig>,
    #[serde(default)]
    pub options: BTreeMap<String, TlsOptionsConfig>,
    #[serde(default)]
    pub stores: BTreeMap<String, TlsStoreConfig>,
}

/// `tls.certificates[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsCertificateConfig {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
    #[serde(default)]
    pub stores: Vec<String>,
}

/// `tls.options.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsOptionsConfig {
    #[serde(default)]
    pub min_version: String,
    #[serde(default)]
    pub max_version: String,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    #[serde(default)]
    pub curve_preferences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuthConfig>,
    #[serde(default)]
    pub sni_strict: bool,
    #[serde(default)]
    pub alpn_protocols: Vec<String>,
    #[serde(default)]
    pub disable_session_tickets: bool,
    /// Deprecated in Traefik, accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientAuthConfig {
    #[serde(default)]
    pub ca_files: Vec<String>,
    #[serde(default)]
    pub client_auth_type: String,
}

/// `tls.stores.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsStoreConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<CertificateFiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_generated_cert: Option<DefaultGeneratedCertConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultGeneratedCertConfig {
    #[serde(default)]
    pub resolver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainConfig>,
}
