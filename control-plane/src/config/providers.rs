//! The static settings of the key-value and Consul Catalog providers
//! (`providers.consul`, `providers.consulCatalog`, `providers.etcd`,
//! `providers.redis`), with Traefik v3's key names and defaults.
//!
//! Options Traefik has that change nothing in Sluice (polling intervals,
//! since changes always arrive through blocking queries or watches) are
//! accepted so Traefik files load, and documented as such.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dynamic::Duration;

/// A credential (token, password): read like a string, never printed by
/// `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no credential is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

/// TLS to a provider's store (`tls` under `consul`, `etcd`,
/// `consulCatalog.endpoint`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderTlsConfig {
    /// CA certificate file.
    pub ca: String,
    /// Client certificate file.
    pub cert: String,
    /// Client key file.
    pub key: String,
    /// Skip verifying the store's certificate.
    pub insecure_skip_verify: bool,
    /// Traefik's switch for how a server asks for client certificates;
    /// accepted, it changes nothing for a client.
    pub ca_optional: bool,
}

/// `providers.consul`: dynamic configuration from Consul's KV store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsulConfig {
    /// The key under which the configuration lives (default `traefik`).
    pub root_key: String,
    /// Consul agents, `host:port` or `http://host:port`, tried in order
    /// (default `127.0.0.1:8500`).
    pub endpoints: Vec<String>,
    /// ACL token, sent as `X-Consul-Token`.
    pub token: Secret,
    /// Consul Enterprise namespaces: one provider per namespace, named
    /// `consul-<namespace>`.
    pub namespaces: Vec<String>,
    /// TLS to Consul.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProviderTlsConfig>,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        Self {
            root_key: "traefik".to_owned(),
            endpoints: vec!["127.0.0.1:8500".to_owned()],
            token: Secret::default(),
            namespaces: Vec::new(),
            tls: None,
        }
    }
}

/// `providers.etcd`: dynamic configuration from etcd (v3 API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EtcdConfig {
    /// The key prefix under which the configuration lives (default `traefik`).
    pub root_key: String,
    /// etcd members, `host:port` or `http://host:port`, tried in order
    /// (default `127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// User name, when etcd authentication is enabled.
    pub username: String,
    /// Password of `username`.
    pub password: Secret,
    /// TLS to etcd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProviderTlsConfig>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            root_key: "traefik".to_owned(),
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            username: String::new(),
            password: Secret::default(),
            tls: None,
        }
    }
}

/// `providers.redis`: dynamic configuration from Redis, one string key per
/// value at its full path (`traefik/http/routers/api/rule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisConfig {
    /// The key prefix under which the configuration lives (default `traefik`).
    pub root_key: String,
    /// Redis servers, `host:port`, tried in order (default `127.0.0.1:6379`).
    pub endpoints: Vec<String>,
    /// ACL user name (Redis 6 and later).
    pub username: String,
    /// Password of `username`, or the `requirepass` password.
    pub password: Secret,
    /// Database number.
    pub db: i64,
    /// TLS to Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProviderTlsConfig>,
    /// Traefik's Redis Sentinel settings; only an empty section is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<serde_json::Value>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            root_key: "traefik".to_owned(),
            endpoints: vec!["127.0.0.1:6379".to_owned()],
            username: String::new(),
            password: Secret::default(),
            db: 0,
            tls: None,
            sentinel: None,
        }
    }
}

/// `providers.consulCatalog`: routes from Consul services and their tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsulCatalogConfig {
    /// Which services to expose, by tag: ``Tag(`a`) && !Tag(`b`)``,
    /// ``TagRegex(`^v[0-9]+$`)``, `||`, parentheses.
    pub constraints: String,
    /// Tag prefix of Sluice's settings (default `traefik`: `traefik.enable`).
    pub prefix: String,
    /// Traefik's polling interval; accepted, changes always arrive through
    /// blocking queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<Duration>,
    /// Read from the Consul leader only (`consistent`).
    pub require_consistent: bool,
    /// Let any Consul server answer (`stale`).
    pub stale: bool,
    /// Use the agent's cache (`cached`).
    pub cache: bool,
    /// Expose services without a `traefik.enable=true` tag (default true).
    pub exposed_by_default: bool,
    /// Rule of the router created for a service without router tags:
    /// `{{ normalize .Name }}` and `{{ .Name }}` stand for the service name.
    pub default_rule: String,
    /// Consul Connect; only `false` is supported.
    pub connect_aware: bool,
    /// Connect for every service; only meaningful with `connectAware`.
    pub connect_by_default: bool,
    /// Sluice's own name in Consul Connect; only meaningful with
    /// `connectAware`.
    pub service_name: String,
    /// Traefik's switch between polling and watching; accepted, changes
    /// always arrive through blocking queries.
    pub watch: bool,
    /// Health check statuses an instance needs to be routed; only
    /// `passing` is supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict_checks: Option<Vec<String>>,
    /// Consul Enterprise namespaces: one provider per namespace, named
    /// `consulcatalog-<namespace>`.
    pub namespaces: Vec<String>,
    /// How to reach Consul.
    pub endpoint: ConsulEndpointConfig,
}

impl Default for ConsulCatalogConfig {
    fn default() -> Self {
        Self {
            constraints: String::new(),
            prefix: "traefik".to_owned(),
            refresh_interval: None,
            require_consistent: false,
            stale: false,
            cache: false,
            exposed_by_default: true,
            default_rule: "Host(`{{ normalize .Name }}`)".to_owned(),
            connect_aware: false,
            connect_by_default: false,
            service_name: "traefik".to_owned(),
            watch: false,
            strict_checks: None,
            namespaces: Vec::new(),
            endpoint: ConsulEndpointConfig::default(),
        }
    }
}

/// `providers.consulCatalog.endpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsulEndpointConfig {
    /// The Consul agent, `host:port` or `http://host:port` (default
    /// `127.0.0.1:8500`).
    pub address: String,
    /// `http` (default); `https` needs TLS.
    pub scheme: String,
    /// Datacenter to read; the agent's own when empty.
    pub datacenter: String,
    /// ACL token, sent as `X-Consul-Token`.
    pub token: Secret,
    /// How long a blocking query may wait for a change (default 5m, at most 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_wait_time: Option<Duration>,
    /// TLS to Consul.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProviderTlsConfig>,
    /// HTTP basic authentication to Consul.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_auth: Option<HttpAuthConfig>,
}

impl Default for ConsulEndpointConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:8500".to_owned(),
            scheme: String::new(),
            datacenter: String::new(),
            token: Secret::default(),
            endpoint_wait_time: None,
            tls: None,
            http_auth: None,
        }
    }
}

/// `providers.consulCatalog.endpoint.httpAuth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpAuthConfig {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}
