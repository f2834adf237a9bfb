//! TLS with rustls (ring provider): termination on entry points and TLS to
//! backends.
//!
//! - [`certs`]: certificates parsed once ([`CertCache`], in the shared state),
//!   indexed per runtime by SNI ([`CertIndex`]), with a generated default;
//! - [`server`]: one rustls `ServerConfig` per TLS options set;
//! - [`EntryPointTls`]: per entry point, which options a handshake gets,
//!   chosen from the SNI before the handshake (Traefik picks the options of
//!   the router whose `Host` matches the SNI, the `default` ones otherwise);
//! - [`accept`]: peeks the first byte of a connection (a TLS record starts
//!   with 0x16), reads the ClientHello and completes the handshake;
//! - [`backend`]: rustls client configs of servers transports.

mod accept;
mod backend;
mod build;
mod certs;
mod server;
#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ServerConfig;
use sluice_proto::v1::{self, matcher::Kind};

pub(crate) use accept::{Accepted, TlsInfo, accept};
pub(crate) use backend::client_config;
pub(crate) use build::{TlsBuilder, claim_host};
pub(crate) use certs::CertCache;

/// Why TLS material or options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or its key does not parse or do not match.
    #[error("certificate `{name}` ({origin}): {reason}")]
    Certificate {
        /// The certificate's name.
        name: String,
        /// Where it came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A TLS options set cannot be honoured.
    #[error("TLS options `{name}`: {reason}")]
    Options {
        /// The options' name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A servers transport's TLS settings cannot be used.
    #[error("servers transport `{name}`: {reason}")]
    Transport {
        /// The transport's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The default certificate cannot be generated.
    #[error("generating the default certificate: {0}")]
    Generate(String),
}

/// What the admin endpoint shows of a certificate: never the key.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CertificateSummary {
    /// The certificate's name.
    pub(crate) name: String,
    /// The names it covers.
    pub(crate) sans: Vec<String>,
    /// End of validity, Unix seconds.
    pub(crate) not_after_unix: i64,
    /// Where it came from.
    pub(crate) origin: String,
}

impl From<&v1::Certificate> for CertificateSummary {
    fn from(certificate: &v1::Certificate) -> Self {
        Self {
            name: certificate.name.clone(),
            sans: certificate.sans.clone(),
            not_after_unix: certificate.not_after_unix,
            origin: certificate.origin.clone(),
        }
    }
}

/// The TLS side of one entry point: the config each handshake gets.
#[derive(Debug)]
pub(crate) struct EntryPointTls {
    /// By lower-cased host of a TLS router's rule.
    by_host: HashMap<String, Arc<ServerConfig>>,
    /// For any other SNI, and for handshakes without one.
    default: Arc<ServerConfig>,
}

impl EntryPointTls {
    /// An entry point where `by_host` names the options of some hosts.
    pub(crate) fn new(
        by_host: HashMap<String, Arc<ServerConfig>>,
        default: Arc<ServerConfig>,
    ) -> Self {
        Self { by_host, default }
    }

    /// The config for a ClientHello with `sni`.
    pub(crate) fn config_for(&self, sni: Option<&str>) -> Arc<ServerConfig> {
        sni.and_then(|sni| self.by_host.get(&sni.to_ascii_lowercase()))
            .unwrap_or(&self.default)
            .clone()
    }
}

/// The hosts a rule requires (`Host(...)` in conjunctions and disjunctions,
/// not under a negation), lower-cased.
pub(crate) fn rule_hosts(matcher: &v1::Matcher) -> Vec<String> {
    let mut hosts = Vec::new();
    collect_hosts(matcher, &mut hosts);
    hosts
}

fn collect_hosts(matcher: &v1::Matcher, hosts: &mut Vec<String>) {
    match &matcher.kind {
        Some(Kind::Host(host)) => hosts.push(host.to_ascii_lowercase()),
        Some(Kind::All(list) | Kind::Any(list)) => {
            for matcher in &list.matchers {
                collect_hosts(matcher, hosts);
            }
        }
        _ => {}
    }
}
