//! The proxy's static configuration, and the parsers the command line uses
//! for it. Flags come first, then `SLUICE_PROXY_*` environment variables,
//! then defaults (clap's precedence, set up in `main.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use crate::service::UpstreamConfig;

/// Default admin endpoint address.
pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9901";

/// Everything `sluice-proxy run` needs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Control plane gRPC URL (`http://host:port`, or `https://` with TLS).
    pub control_plane: String,
    /// How the proxy authenticates to the control plane.
    pub control_plane_auth: ControlPlaneAuth,
    /// Node id sent in the hello and as `X-Forwarded-Server`.
    pub node_id: String,
    /// Labels sent in the hello.
    pub labels: BTreeMap<String, String>,
    /// Admin endpoint address.
    pub admin_address: String,
    /// Entry point addresses that replace the snapshot's, by name.
    pub entry_points: HashMap<String, String>,
    /// Time in-flight requests get to finish on shutdown.
    pub grace_period: Duration,
    /// Backend connection settings.
    pub upstream: UpstreamConfig,
    /// The runtimes that serve connections (see [`crate::ServingThreads`]);
    /// none serves them on the runtime that starts the proxy.
    pub serving: Vec<tokio::runtime::Handle>,
}

/// Credentials for the control plane link.
#[derive(Clone, Default)]
pub struct ControlPlaneAuth {
    /// PEM CA that issued the control plane's certificate; setting it (or an
    /// `https://` URL) turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for a control plane that requires mTLS.
    pub cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Bearer token sent with every call.
    pub token: Option<String>,
}

impl std::fmt::Debug for ControlPlaneAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneAuth")
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses `NAME=VALUE` (entry point overrides, labels).
pub fn parse_key_value(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{value}`")),
    }
}

/// Parses a duration such as `10s`, `500ms` or `1m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("invalid duration `{value}`: {e}"))
}

/// The machine's host name, the default node id.
pub fn default_node_id() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sluice-proxy".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_durations() {
        assert_eq!(
            parse_key_value("web=127.0.0.1:8080").unwrap(),
            ("web".to_owned(), "127.0.0.1:8080".to_owned())
        );
        assert!(parse_key_value("web").is_err());
        assert!(parse_key_value("=x").is_err());
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("ten").is_err());
        assert!(!default_node_id().is_empty());
    }
}
