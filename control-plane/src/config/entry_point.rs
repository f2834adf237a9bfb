//! Entry points (`entryPoints.<name>`): the listeners every proxy opens, and
//! the defaults they give the HTTP routers on them.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::dynamic::DomainConfig;

/// `entryPoints.<name>`: one listener of every proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointConfig {
    /// `[host]:port[/tcp|/udp]`, e.g. `:80` or `127.0.0.1:8080`. Required.
    pub address: EntryPointAddress,
    /// Routers that name no entry point attach to the entry points marked
    /// `asDefault` (to all of them when none is marked).
    #[serde(default)]
    pub as_default: bool,
    /// Let user routers answer ACME challenges; accepted for compatibility.
    #[serde(default, rename = "allowACMEByPass")]
    pub allow_acme_bypass: bool,
    /// Set `SO_REUSEPORT` on the listener.
    #[serde(default)]
    pub reuse_port: bool,
    /// Which clients' `X-Forwarded-*` headers are trusted.
    #[serde(default)]
    pub forwarded_headers: ForwardedHeadersConfig,
    /// Defaults for the HTTP routers on this entry point.
    #[serde(default)]
    pub http: EntryPointHttpConfig,
    /// Traefik's timeouts and keep-alive limits, accepted so Traefik files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<serde_json::Value>,
    /// Traefik's PROXY protocol settings, accepted so Traefik files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<serde_json::Value>,
    /// Traefik's HTTP/2 settings, accepted so Traefik files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<serde_json::Value>,
    /// Traefik's HTTP/3 settings, accepted so Traefik files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http3: Option<serde_json::Value>,
    /// Traefik's UDP session settings, accepted so Traefik files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<serde_json::Value>,
    /// Traefik's per-entry-point observability switches, accepted so Traefik
    /// files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<serde_json::Value>,
}

/// An entry point address, `[host]:port[/tcp|/udp]`, parsed when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointAddress {
    /// IP address or host name; empty means every interface.
    pub host: String,
    /// Port number.
    pub port: u16,
    /// Transport protocol; TCP unless the address ends in `/udp`.
    pub protocol: Protocol,
}

/// The transport protocol of an entry point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (HTTP/1.1, HTTP/2, TLS).
    #[default]
    Tcp,
    /// UDP (accepted so Traefik files load; Sluice serves no UDP routes yet).
    Udp,
}

/// `entryPoints.<name>.forwardedHeaders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardedHeadersConfig {
    /// Trust `X-Forwarded-*` headers from every client.
    pub insecure: bool,
    /// Trust them from these addresses or CIDR ranges only.
    #[serde(rename = "trustedIPs", deserialize_with = "deserialize_ip_ranges")]
    pub trusted_ips: Vec<IpNet>,
    /// Headers listed in `Connection` that may pass through the middlewares
    /// before hop-by-hop headers are removed.
    pub connection: Vec<String>,
}

/// `entryPoints.<name>.http`: defaults for the HTTP routers of an entry point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointHttpConfig {
    /// Redirect every request to another entry point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirections: Option<RedirectionsConfig>,
    /// Middlewares prepended to every router on this entry point.
    pub middlewares: Vec<String>,
    /// Terminate TLS for every router on this entry point; present (even
    /// empty, `tls: {}`) means enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<EntryPointTlsConfig>,
    /// URL-encode semicolons in query strings instead of treating them as
    /// separators.
    pub encode_query_semicolons: bool,
    /// Remove `/./`, `/../` and repeated slashes from request paths
    /// (default true).
    pub sanitize_path: bool,
    /// Largest accepted request header block, in bytes (default 1 MiB).
    pub max_header_bytes: u64,
}

impl Default for EntryPointHttpConfig {
    fn default() -> Self {
        Self {
            redirections: None,
            middlewares: Vec::new(),
            tls: None,
            encode_query_semicolons: false,
            sanitize_path: true,
            max_header_bytes: 1 << 20,
        }
    }
}

/// `entryPoints.<name>.http.redirections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectionsConfig {
    /// Redirect to another entry point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<EntryPointRedirectConfig>,
}

/// `entryPoints.<name>.http.redirections.entryPoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointRedirectConfig {
    /// The target: an entry point name (`websecure`) or a port (`:443`).
    pub to: String,
    /// Scheme of the redirect URL (default `https`).
    #[serde(default = "default_redirect_scheme")]
    pub scheme: String,
    /// Answer 301/308 rather than 302/307 (default true).
    #[serde(default = "default_true")]
    pub permanent: bool,
    /// Priority of the generated catch-all router (default just below the
    /// maximum, so user routers with an explicit priority can win).
    #[serde(default = "default_redirect_priority")]
    pub priority: i64,
}

/// `entryPoints.<name>.http.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointTlsConfig {
    /// Name of the TLS options (`tls.options.<name>`) to use.
    pub options: String,
    /// Certificate resolver name; accepted, Sluice serves configured
    /// certificates only.
    pub cert_resolver: String,
    /// Domains to request certificates for.
    pub domains: Vec<DomainConfig>,
}

fn default_true() -> bool {
    true
}

fn default_redirect_scheme() -> String {
    "https".to_owned()
}

fn default_redirect_priority() -> i64 {
    i64::MAX - 1
}

impl FromStr for EntryPointAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = "expected `[host]:port[/tcp|/udp]`, e.g. `:80`";
        let (address, protocol) = match text.split_once('/') {
            None => (text, Protocol::Tcp),
            Some((address, protocol)) if protocol.eq_ignore_ascii_case("tcp") => {
                (address, Protocol::Tcp)
            }
            Some((address, protocol)) if protocol.eq_ignore_ascii_case("udp") => {
                (address, Protocol::Udp)
            }
            Some((_, protocol)) => {
                return Err(format!(
                    "unknown protocol `{protocol}` in address `{text}` (expected tcp or udp)"
                ));
            }
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("address `{text}` has no port ({expected})"))?;
        let port = port
            .parse()
            .map_err(|_| format!("invalid port `{port}` in address `{text}` ({expected})"))?;
        let host = match host.strip_prefix('[') {
            Some(bracketed) => bracketed
                .strip_suffix(']')
                .filter(|ip| ip.parse::<Ipv6Addr>().is_ok())
                .ok_or_else(|| format!("invalid IPv6 address in `{text}` ({expected})"))?,
            None if host.contains(':') => {
                return Err(format!(
                    "IPv6 addresses must be in brackets, e.g. `[::1]:80`, in `{text}`"
                ));
            }
            None if host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
            {
                host
            }
            None => return Err(format!("invalid host `{host}` in address `{text}`")),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            protocol,
        })
    }
}

impl fmt::Display for EntryPointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match self.protocol {
            Protocol::Tcp => Ok(()),
            Protocol::Udp => f.write_str("/udp"),
        }
    }
}

impl Serialize for EntryPointAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryPointAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

/// Reads IP addresses and CIDR ranges; a bare address is a single-host range.
fn deserialize_ip_ranges<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    de::Error::custom(format!(
                        "`{text}` is neither an IP address nor a CIDR range"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entry_point_addresses() {
        let address = |text: &str| text.parse::<EntryPointAddress>();
        let web = address(":80").unwrap();
        assert_eq!(
            (web.host.as_str(), web.port, web.protocol),
            ("", 80, Protocol::Tcp)
        );
        let local = address("127.0.0.1:8080").unwrap();
        assert_eq!((local.host.as_str(), local.port), ("127.0.0.1", 8080));
        let v6 = address("[::1]:443/tcp").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 443));
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!(address(":1704/UDP").unwrap().to_string(), ":1704/udp");
        assert_eq!(address("localhost:80").unwrap().host, "localhost");

        assert!(address("80").unwrap_err().contains("no port"));
        assert!(address(":80/sctp").unwrap_err().contains("sctp"));
        assert!(address(":http").unwrap_err().contains("invalid port"));
        assert!(address("::1:80").unwrap_err().contains("brackets"));
        assert!(address("a b:80").unwrap_err().contains("invalid host"));
    }

    #[test]
    fn trusted_ips_accept_addresses_and_ranges() {
        let headers: ForwardedHeadersConfig =
            serde_json::from_value(serde_json::json!({"trustedIPs": ["10.0.0.0/8", "::1"]}))
                .unwrap();
        assert_eq!(
            headers.trusted_ips,
            [
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let error = serde_json::from_value::<ForwardedHeadersConfig>(
            serde_json::json!({"trustedIPs": ["10.0.0.300"]}),
        )
        .unwrap_err();
        assert!(error.to_string().contains("10.0.0.300"), "{error}");
    }
}
