//! What the compiler says about each resource: enabled or not, and why.
//!
//! The admin API serves this (like Traefik's `/api/rawdata`) and
//! `sluice-control-plane validate` prints its errors. Secrets (password
//! hashes, private keys) are redacted from the configuration it echoes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::providers::{ProviderUpdate, SourceError};

/// A resource's kind and qualified name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceKindName {
    /// `entryPoint`, `router`, `service`, `middleware`, `certificate`, `tlsOptions` or `tlsStore`.
    pub kind: &'static str,
    /// Qualified name (`name@provider`).
    pub name: String,
}

impl ResourceKindName {
    /// A kind and an already qualified name.
    pub fn qualified(kind: &'static str, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
        }
    }

    /// A router defined by `provider`.
    pub fn router(provider: &str, name: &str) -> Self {
        Self::qualified("router", &format!("{name}@{provider}"))
    }

    /// A service defined by `provider`.
    pub fn service(provider: &str, name: &str) -> Self {
        Self::qualified("service", &format!("{name}@{provider}"))
    }

    /// A middleware defined by `provider`.
    pub fn middleware(provider: &str, name: &str) -> Self {
        Self::qualified("middleware", &format!("{name}@{provider}"))
    }

    /// The key the provider's `origins` hold for this resource
    /// (`http.routers.api` for router `api@file`).
    fn origin_key(&self, provider: &str) -> String {
        let plain = self
            .name
            .strip_suffix(provider)
            .and_then(|name| name.strip_suffix('@'))
            .unwrap_or(&self.name);
        let section = self.model_section();
        let mut key = String::with_capacity(section.len() + 1 + plain.len());
        key.push_str(section);
        key.push('.');
        key.push_str(plain);
        key
    }

    /// Where this kind lives in the dynamic configuration model.
    fn model_section(&self) -> &'static str {
        match self.kind {
            "router" => "http.routers",
            "service" => "http.services",
            "middleware" => "http.middlewares",
            "tlsOptions" => "tls.options",
            "tlsStore" => "tls.stores",
            "certificate" => "tls.certificates",
            "serversTransport" => "http.serversTransports",
            _ => "entryPoints",
        }
    }
}

/// Status of one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub kind: &'static str,
    pub name: String,
    /// Provider that defined it (`file`, `kubernetes`...); empty for entry points.
    pub provider: String,
    /// Where it was defined (file path, `namespace/name`), when the provider says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `enabled` when it ships in the snapshot, `disabled` otherwise.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The configuration as the provider gave it, secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Arc<Value>>,
}

/// One problem, naming the resource and where it was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompileError {
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub message: String,
}

impl CompileError {
    /// The key the user wrote in the provider's source (`http.routers.api`
    /// for `api@file`), for the HTTP resources defined by name.
    fn source_key(&self) -> Option<String> {
        let section = match self.kind {
            "router" | "service" | "middleware" => {
                ResourceKindName::qualified(self.kind, &self.name).model_section()
            }
            _ => return None,
        };
        let (plain, _provider) = self.name.rsplit_once('@')?;
        Some(format!("{section}.{plain}"))
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name, message) = (self.kind, &self.name, &self.message);
        match (kind, &self.origin, self.source_key()) {
            ("source", _, _) => write!(f, "{message}"),
            (_, Some(origin), Some(key)) => {
                write!(f, "{origin}: {key} ({kind} `{name}`): {message}")
            }
            (_, Some(origin), None) => write!(f, "{origin}: {kind} `{name}`: {message}"),
            (_, None, _) => write!(f, "{kind} `{name}`: {message}"),
        }
    }
}

/// Everything the compiler found out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompileReport {
    /// Every resource seen, with its status; a router's status is shared
    /// between the reports of compilations that keep the router.
    pub resources: BTreeMap<ResourceKindName, Arc<ResourceStatus>>,
    /// Every error, source errors first, then by kind and name.
    pub errors: Vec<CompileError>,
}

impl ResourceStatus {
    /// The status of a resource `update` defines, enabled until an error
    /// says otherwise, with its (redacted) configuration.
    pub(crate) fn defined_by(
        key: &ResourceKindName,
        update: &ProviderUpdate,
        config: Option<Arc<Value>>,
    ) -> Self {
        Self {
            kind: key.kind,
            name: key.name.clone(),
            provider: update.provider.clone(),
            origin: update
                .origins
                .get(&key.origin_key(&update.provider))
                .cloned(),
            status: "enabled",
            errors: Vec::new(),
            config,
        }
    }

    /// Marks the resource as left out, with the reason.
    pub(crate) fn disable(&mut self, message: String) {
        self.status = "disabled";
        self.errors.push(message);
    }
}

impl CompileReport {
    /// Records a resource as seen, with its (redacted) configuration.
    pub(crate) fn register(
        &mut self,
        key: &ResourceKindName,
        update: &ProviderUpdate,
        config: Option<Arc<Value>>,
    ) {
        let status = ResourceStatus::defined_by(key, update, config);
        self.resources.insert(key.clone(), Arc::new(status));
    }

    /// Records resources with statuses kept from an earlier compilation,
    /// at once: a batch sorted by key (one kind, by name) is merged in
    /// without a search per resource.
    pub(crate) fn register_sorted(
        &mut self,
        statuses: Vec<(ResourceKindName, Arc<ResourceStatus>)>,
    ) {
        // Already sorted, so collecting only checks the order.
        let mut batch: BTreeMap<_, _> = statuses.into_iter().collect();
        self.resources.append(&mut batch);
    }

    /// Records a resource that needs no provider (entry points).
    pub(crate) fn register_static(&mut self, key: &ResourceKindName, config: Option<Arc<Value>>) {
        self.resources.insert(
            key.clone(),
            Arc::new(ResourceStatus {
                kind: key.kind,
                name: key.name.clone(),
                provider: String::new(),
                origin: Some("static configuration".to_owned()),
                status: "enabled",
                errors: Vec::new(),
                config,
            }),
        );
    }

    /// Marks a resource as left out, with the reason.
    pub(crate) fn error(&mut self, key: &ResourceKindName, message: String) {
        self.entry(key).disable(message);
    }

    /// Records an error on a resource that still ships (an entry point whose
    /// middleware is broken keeps listening; its routers are left out).
    pub(crate) fn error_on_shipped(&mut self, key: &ResourceKindName, message: String) {
        self.entry(key).errors.push(message);
    }

    fn entry(&mut self, key: &ResourceKindName) -> &mut ResourceStatus {
        let status = self.resources.entry(key.clone()).or_insert_with(|| {
            Arc::new(ResourceStatus {
                kind: key.kind,
                name: key.name.clone(),
                provider: key
                    .name
                    .rsplit_once('@')
                    .map(|(_, p)| p.to_owned())
                    .unwrap_or_default(),
                origin: None,
                status: "disabled",
                errors: Vec::new(),
                config: None,
            })
        });
        Arc::make_mut(status)
    }

    /// Records an error the provider found while reading its source.
    pub(crate) fn push_source_error(&mut self, provider: &str, error: &SourceError) {
        self.errors.push(CompileError {
            kind: "source",
            name: provider.to_owned(),
            origin: Some(error.location.clone()),
            message: error.to_string(),
        });
    }

    /// Collects per-resource errors into [`Self::errors`], in a stable order.
    pub(crate) fn finish(&mut self) {
        for status in self.resources.values() {
            for message in &status.errors {
                self.errors.push(CompileError {
                    kind: status.kind,
                    name: status.name.clone(),
                    origin: status.origin.clone(),
                    message: message.clone(),
                });
            }
        }
    }

    /// True when a resource of this kind and name ships.
    pub fn is_enabled(&self, key: &ResourceKindName) -> bool {
        self.resources
            .get(key)
            .is_some_and(|status| status.status == "enabled")
    }
}

/// Replaces password hashes and private keys with a marker, in place.
/// A resource's configuration as the admin API shows it: secrets redacted,
/// shared between compilations that keep it.
pub(crate) fn shown<T: Serialize>(config: &T) -> Option<Arc<Value>> {
    let mut value = serde_json::to_value(config).ok()?;
    redact_secrets(&mut value);
    Some(Arc::new(value))
}

pub(crate) fn redact_secrets(value: &mut Value) {
    const MARKER: &str = "<redacted>";
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("users", Value::Array(users)) => {
                        for user in users {
                            if let Value::String(line) = user {
                                let name = line.split(':').next().unwrap_or_default();
                                *line = format!("{name}:{MARKER}");
                            }
                        }
                    }
                    ("keyFile" | "key" | "password" | "token", Value::String(text))
                        if key != "keyFile" || text.contains("-----BEGIN") =>
                    {
                        *text = MARKER.to_owned();
                    }
                    (_, child) => redact_secrets(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_the_key_and_the_resource() {
        let error = CompileError {
            kind: "router",
            name: "api@file".to_owned(),
            origin: Some("/etc/sluice/a.yml".to_owned()),
            message: "rule `Host(`a`: column 6: unclosed string".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "/etc/sluice/a.yml: http.routers.api (router `api@file`): \
             rule `Host(`a`: column 6: unclosed string"
        );
        let entry_point = CompileError {
            kind: "entryPoint",
            name: "web".to_owned(),
            origin: Some("static configuration".to_owned()),
            message: "bad".to_owned(),
        };
        assert_eq!(
            entry_point.to_string(),
            "static configuration: entryPoint `web`: bad"
        );
    }

    #[test]
    fn redacts_hashes_and_inline_keys_but_keeps_user_names_and_paths() {
        let mut value = serde_json::json!({
            "basicAuth": {"users": ["alice:$apr1$salt$hash"], "realm": "r"},
            "tls": {"key": "-----BEGIN PRIVATE KEY-----"},
            "certificates": [{"certFile": "/c.pem", "keyFile": "/k.pem"},
                             {"certFile": "x", "keyFile": "-----BEGIN EC PRIVATE KEY-----"}],
        });
        redact_secrets(&mut value);
        assert_eq!(value["basicAuth"]["users"][0], "alice:<redacted>");
        assert_eq!(value["basicAuth"]["realm"], "r");
        assert_eq!(value["tls"]["key"], "<redacted>");
        assert_eq!(value["certificates"][0]["keyFile"], "/k.pem");
        assert_eq!(value["certificates"][1]["keyFile"], "<redacted>");
    }
}
