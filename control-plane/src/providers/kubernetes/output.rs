//! What a builder accumulates: the provider's configuration, the objects it
//! left out, and which object each resource came from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Built;
use crate::dynamic::{
    DynamicConfig, HttpConfig, MiddlewareConfig, RouterConfig, ServersTransportConfig,
    ServiceConfig, TlsCertificateConfig, TlsConfig, TlsOptionsConfig,
};
use crate::providers::SourceError;

/// A configuration being built.
#[derive(Debug, Default)]
pub(super) struct Output {
    http: HttpConfig,
    certificates: Vec<TlsCertificateConfig>,
    /// Secrets already turned into certificates, `namespace/name`.
    certificate_secrets: BTreeSet<String>,
    tls_options: BTreeMap<String, TlsOptionsConfig>,
    errors: Vec<SourceError>,
    origins: BTreeMap<String, String>,
}

impl Output {
    /// Records an object (or part of one) left out.
    pub(super) fn error(&mut self, location: &str, key: Option<String>, message: String) {
        tracing::warn!(%location, ?key, %message, "Kubernetes object left out");
        self.errors.push(SourceError {
            location: location.to_owned(),
            key,
            message,
        });
    }

    pub(super) fn router(&mut self, name: String, router: RouterConfig, origin: &str) {
        self.origins
            .insert(format!("http.routers.{name}"), origin.to_owned());
        self.http.routers.insert(name, Arc::new(router));
    }

    pub(super) fn middleware(&mut self, name: String, middleware: MiddlewareConfig, origin: &str) {
        self.origins
            .insert(format!("http.middlewares.{name}"), origin.to_owned());
        self.http.middlewares.insert(name, middleware);
    }

    pub(super) fn servers_transport(
        &mut self,
        name: String,
        transport: ServersTransportConfig,
        origin: &str,
    ) {
        self.origins
            .insert(format!("http.serversTransports.{name}"), origin.to_owned());
        self.http.servers_transports.insert(name, transport);
    }

    pub(super) fn tls_options(&mut self, name: String, options: TlsOptionsConfig, origin: &str) {
        self.origins
            .insert(format!("tls.options.{name}"), origin.to_owned());
        self.tls_options.insert(name, options);
    }

    /// Adds a service as `name`, or as `fallback` when `name` already holds
    /// a different one (two Ingresses with different service annotations);
    /// returns the name used.
    pub(super) fn service(
        &mut self,
        name: String,
        fallback: String,
        service: ServiceConfig,
        origin: &str,
    ) -> String {
        let name = match self.http.services.get(&name) {
            Some(existing) if *existing != service => fallback,
            _ => name,
        };
        self.origins
            .entry(format!("http.services.{name}"))
            .or_insert_with(|| origin.to_owned());
        self.http.services.insert(name.clone(), service);
        name
    }

    /// Adds the certificate of Secret `secret` (`namespace/name`) once.
    pub(super) fn certificate(&mut self, secret: String, certificate: TlsCertificateConfig) {
        if self.certificate_secrets.insert(secret) {
            self.certificates.push(certificate);
        }
    }

    pub(super) fn finish(self) -> Built {
        let tls =
            (!self.certificates.is_empty() || !self.tls_options.is_empty()).then(|| TlsConfig {
                certificates: self.certificates,
                options: self.tls_options,
                stores: BTreeMap::new(),
            });
        Built {
            config: DynamicConfig {
                http: Some(self.http),
                tcp: None,
                udp: None,
                tls,
            },
            errors: self.errors,
            origins: self.origins,
        }
    }
}
