//! The static configuration's serde types: Traefik v3's key names and
//! Sluice's defaults. Values with a syntax of their own (log levels,
//! addresses) are parsed as they are read, so a bad one is an error naming
//! its key. Entry points are in `entry_point.rs`.
//!
//! Sections Sluice does not act on yet (`api`, `metrics`, the Docker and
//! Kubernetes Gateway provider...) are kept as opaque JSON so Traefik files load.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::entry_point::EntryPointConfig;
use super::kubernetes::{KubernetesCrdConfig, KubernetesIngressConfig};
use super::providers::{ConsulCatalogConfig, ConsulConfig, EtcdConfig, RedisConfig};
use crate::dynamic::Duration;

/// Sluice's static configuration: where proxies listen, which providers run,
/// how the control plane logs and where it serves. Built by
/// [`StaticConfig::load`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticConfig {
    /// Entry points by name: the listeners of every proxy.
    pub entry_points: BTreeMap<String, EntryPointConfig>,
    /// The providers to run.
    pub providers: ProvidersConfig,
    /// The control plane's own logging.
    pub log: LogConfig,
    /// Sluice's own settings: gRPC and admin listeners, debouncing, history.
    pub control_plane: ControlPlaneConfig,
    /// Traefik's access log settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<serde_json::Value>,
    /// Traefik's API and dashboard settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<serde_json::Value>,
    /// Traefik's ping endpoint settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<serde_json::Value>,
    /// Traefik's metrics settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
    /// Traefik's tracing settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<serde_json::Value>,
    /// Traefik's `global` section (version checks, usage statistics), accepted
    /// so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<serde_json::Value>,
    /// Traefik's default HTTP servers transport, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers_transport: Option<serde_json::Value>,
    /// Traefik's default TCP servers transport, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_servers_transport: Option<serde_json::Value>,
    /// Traefik's ACME and Tailscale certificate resolvers, accepted so Traefik
    /// files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates_resolvers: Option<serde_json::Value>,
    /// Traefik's experimental features, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experimental: Option<serde_json::Value>,
    /// Traefik's CNAME flattening settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_resolver: Option<serde_json::Value>,
    /// Traefik's `core` section (default rule syntax), accepted so Traefik
    /// files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<serde_json::Value>,
    /// Traefik's SPIFFE workload API settings, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe: Option<serde_json::Value>,
}

/// The `providers` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ProvidersConfig {
    /// Minimum time between two configurations from one provider; absent,
    /// the control plane's debounce alone applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers_throttle_duration: Option<Duration>,
    /// Read dynamic configuration from a file or a directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileProviderConfig>,
    /// Read routes from Kubernetes Ingresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_ingress: Option<KubernetesIngressConfig>,
    /// Read routes from Traefik's Kubernetes custom resources.
    #[serde(rename = "kubernetesCRD", skip_serializing_if = "Option::is_none")]
    pub kubernetes_crd: Option<KubernetesCrdConfig>,
    /// Traefik's Kubernetes Gateway API provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_gateway: Option<serde_json::Value>,
    /// Read dynamic configuration from Consul's KV store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulConfig>,
    /// Read routes from Consul services and their tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consul_catalog: Option<ConsulCatalogConfig>,
    /// Read dynamic configuration from etcd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdConfig>,
    /// Read dynamic configuration from Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfig>,
    /// Traefik's ZooKeeper provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoo_keeper: Option<serde_json::Value>,
    /// Traefik's Docker provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<serde_json::Value>,
    /// Traefik's Docker Swarm provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<serde_json::Value>,
    /// Traefik's Nomad provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nomad: Option<serde_json::Value>,
    /// Traefik's AWS ECS provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs: Option<serde_json::Value>,
    /// Traefik's HTTP provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<serde_json::Value>,
    /// Traefik's REST provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest: Option<serde_json::Value>,
    /// Traefik's plugin provider settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Value>,
}

/// `providers.file`: exactly one of `filename` and `directory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FileProviderConfig {
    /// One YAML or TOML file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<PathBuf>,
    /// A directory, read recursively: every `.yml`, `.yaml` and `.toml` file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// Re-read on change (default true).
    pub watch: bool,
    /// Traefik's template debugging switch; accepted, Sluice does not expand
    /// Go templates.
    pub debug_log_generated_template: bool,
}

impl Default for FileProviderConfig {
    fn default() -> Self {
        Self {
            filename: None,
            directory: None,
            watch: true,
            debug_log_generated_template: false,
        }
    }
}

/// The `log` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LogConfig {
    /// Minimum level logged (default `INFO`).
    pub level: LogLevel,
    /// Line format (default `common`).
    pub format: LogFormat,
    /// Disable colours in the `common` format.
    pub no_color: bool,
    /// Log to this file rather than standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<PathBuf>,
    /// Traefik's log rotation size in megabytes; accepted for compatibility.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Traefik's log rotation age in days; accepted for compatibility.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Traefik's rotated file count; accepted for compatibility.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backups: Option<u64>,
    /// Traefik's rotated file compression; accepted for compatibility.
    pub compress: bool,
    /// Traefik's OpenTelemetry log export, accepted so Traefik files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<serde_json::Value>,
}

/// A log level, written in any case (`INFO`, `info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    #[default]
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`: Traefik's; logs errors only.
    Fatal,
    /// `PANIC`: Traefik's; logs errors only.
    Panic,
}

impl LogLevel {
    /// The `tracing` filter directive for this level (`info`); `FATAL` and
    /// `PANIC` filter at `error`.
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error | Self::Fatal | Self::Panic => "error",
        }
    }

    const ALL: [(Self, &'static str); 7] = [
        (Self::Trace, "TRACE"),
        (Self::Debug, "DEBUG"),
        (Self::Info, "INFO"),
        (Self::Warn, "WARN"),
        (Self::Error, "ERROR"),
        (Self::Fatal, "FATAL"),
        (Self::Panic, "PANIC"),
    ];
}

/// The log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Common,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Whether lines are JSON objects.
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// `controlPlane`: Sluice's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneConfig {
    /// Where proxies fetch snapshots (default `127.0.0.1:7050`).
    pub grpc_address: SocketAddr,
    /// Where the admin API and dashboard listen (default `127.0.0.1:7070`).
    pub api_address: SocketAddr,
    /// How bursts of provider changes are coalesced. A bare duration
    /// (`debounce: 200ms`) sets the quiet period.
    pub debounce: DebounceConfig,
    /// How many snapshot versions are kept for deltas (default 16, at least 1).
    pub history_size: usize,
    /// TLS for the gRPC listener (mTLS when `clientCAFile` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ControlPlaneTlsConfig>,
    /// Bearer token proxies must present on `SnapshotService` calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `controlPlane.tls`: the gRPC listener's certificate and, optionally, the
/// CA that proxies' client certificates must chain to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneTlsConfig {
    /// PEM certificate chain of the listener.
    pub cert_file: String,
    /// PEM private key of the listener.
    pub key_file: String,
    /// PEM CA certificates; when set, every client must present a
    /// certificate issued by one of them.
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: String,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            grpc_address: SocketAddr::from(([127, 0, 0, 1], 7050)),
            api_address: SocketAddr::from(([127, 0, 0, 1], 7070)),
            debounce: DebounceConfig::default(),
            history_size: 16,
            tls: None,
            token: None,
        }
    }
}

/// `controlPlane.debounce`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DebounceConfig {
    /// Compile once no change has arrived for this long (default 100ms).
    pub quiet_period: Duration,
    /// Compile at the latest this long after the first change of a burst
    /// (default 1s; not shorter than the quiet period).
    pub max_delay: Duration,
}

impl Default for DebounceConfig {
    fn default() -> Self {
        Self {
            quiet_period: Duration(std::time::Duration::from_millis(100)),
            max_delay: Duration(std::time::Duration::from_secs(1)),
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(text))
            .map(|(level, _)| *level)
            .ok_or_else(|| {
                format!(
                    "unknown log level `{text}` (expected TRACE, DEBUG, INFO, WARN, ERROR, FATAL or PANIC)"
                )
            })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, name) = Self::ALL
            .iter()
            .find(|(level, _)| level == self)
            .expect("every level is listed in ALL");
        f.write_str(name)
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("common") {
            Ok(Self::Common)
        } else if text.eq_ignore_ascii_case("json") {
            Ok(Self::Json)
        } else {
            Err(format!(
                "unknown log format `{text}` (expected common or json)"
            ))
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Common => "common",
            Self::Json => "json",
        })
    }
}

/// Serde through `FromStr` and `Display`, for values written as one string.
macro_rules! serde_as_string {
    ($($type:ty),*) => {$(
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?
                    .parse()
                    .map_err(de::Error::custom)
            }
        }
    )*};
}

serde_as_string!(LogLevel, LogFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_and_formats_ignore_case() {
        assert_eq!("debug".parse::<LogLevel>(), Ok(LogLevel::Debug));
        assert_eq!("WaRn".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert_eq!(LogLevel::Fatal.as_filter(), "error");
        assert_eq!(LogLevel::Trace.to_string(), "TRACE");
        assert!(
            "verbose"
                .parse::<LogLevel>()
                .unwrap_err()
                .contains("verbose")
        );
        assert!("JSON".parse::<LogFormat>().unwrap().is_json());
        assert!("logfmt".parse::<LogFormat>().is_err());
    }
}
