//! The TLS part of building a runtime: the certificate index (certificates
//! taken from the shared cache, so unchanged ones are not parsed again), one
//! rustls config per TLS options set used, and per entry point the options
//! each SNI gets.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ServerConfig;
use sluice_proto::v1;

use super::certs::{CertCache, CertIndex, cache_key};
use super::server::{DEFAULT_OPTIONS, default_options, server_config};
use super::{EntryPointTls, TlsError};
use crate::state::ResourceSet;

/// Builds the TLS side of one runtime.
#[derive(Debug)]
pub(crate) struct TlsBuilder<'a> {
    index: Arc<CertIndex>,
    options: HashMap<&'a str, &'a v1::TlsOptions>,
    configs: HashMap<String, Arc<ServerConfig>>,
    certificates_in_use: Vec<String>,
    default_options: v1::TlsOptions,
}

impl<'a> TlsBuilder<'a> {
    /// Parses (or reuses) every certificate of `resources`.
    pub(crate) fn new(resources: &ResourceSet<'a>, cache: &CertCache) -> Result<Self, TlsError> {
        let mut pairs = Vec::with_capacity(resources.certificates.len());
        for &certificate in &resources.certificates {
            pairs.push((certificate, cache.get(certificate)?));
        }
        let configured_default = resources
            .tls_stores
            .iter()
            .find(|store| store.name == "default")
            .map(|store| store.default_certificate.as_str())
            .filter(|name| !name.is_empty())
            .and_then(|name| pairs.iter().find(|(c, _)| c.name == name))
            .map(|(_, key)| key.clone());
        let default = configured_default.unwrap_or_else(|| cache.generated());
        Ok(Self {
            index: Arc::new(CertIndex::new(&pairs, default)),
            options: resources
                .tls_options
                .iter()
                .map(|&options| (options.name.as_str(), options))
                .collect(),
            configs: HashMap::new(),
            certificates_in_use: resources
                .certificates
                .iter()
                .copied()
                .map(cache_key)
                .collect(),
            default_options: default_options(),
        })
    }

    /// The rustls config of options `name` (`""` means `default`).
    pub(crate) fn config(&mut self, name: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let name = if name.is_empty() {
            DEFAULT_OPTIONS
        } else {
            name
        };
        if let Some(config) = self.configs.get(name) {
            return Ok(config.clone());
        }
        let options = match self.options.get(name) {
            Some(options) => *options,
            None if name == DEFAULT_OPTIONS => &self.default_options,
            None => {
                return Err(TlsError::Options {
                    name: name.to_owned(),
                    reason: "not in the snapshot".to_owned(),
                });
            }
        };
        let config = server_config(options, self.index.clone())?;
        self.configs.insert(name.to_owned(), config.clone());
        Ok(config)
    }

    /// The TLS side of an entry point whose TLS routers' hosts want the
    /// given options. A host claimed by routers with different options gets
    /// the `default` ones, as in Traefik.
    pub(crate) fn entry_point(
        &mut self,
        hosts: &HashMap<String, String>,
    ) -> Result<EntryPointTls, TlsError> {
        let mut by_host = HashMap::with_capacity(hosts.len());
        for (host, options) in hosts {
            by_host.insert(host.clone(), self.config(options)?);
        }
        Ok(EntryPointTls::new(by_host, self.config(DEFAULT_OPTIONS)?))
    }

    /// Cache keys of the certificates the runtime uses.
    pub(crate) fn into_certificates_in_use(self) -> Vec<String> {
        self.certificates_in_use
    }
}

/// Records that `host` (of a TLS router) wants `options`; a conflict falls
/// back to the default options.
pub(crate) fn claim_host(hosts: &mut HashMap<String, String>, host: String, options: &str) {
    let options = if options.is_empty() {
        DEFAULT_OPTIONS
    } else {
        options
    };
    match hosts.get(&host) {
        Some(existing) if existing != options => {
            tracing::warn!(
                %host,
                "routers on the same host want different TLS options: using the default ones"
            );
            hosts.insert(host, DEFAULT_OPTIONS.to_owned());
        }
        Some(_) => {}
        None => {
            hosts.insert(host, options.to_owned());
        }
    }
}
