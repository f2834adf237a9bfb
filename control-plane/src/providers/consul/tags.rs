//! Consul Catalog services as dynamic configuration, the way Traefik reads
//! them.
//!
//! Each passing instance's `traefik.*` tags (`key=value`) are decoded with
//! the KV layout, `.` separated; then Traefik's defaults apply:
//!
//! - `traefik.enable=false` hides an instance; with `exposedByDefault:
//!   false`, only `traefik.enable=true` shows one;
//! - no service tags: a load balancer named after the service (normalized:
//!   `my_api` is `my-api`); every load balancer without servers gets the
//!   instance, `http://<address>:<port>`, where
//!   `traefik.http.services.<s>.loadbalancer.server.port`, `.scheme` and
//!   `.weight` override the port, scheme and weight;
//! - no router tags: a router named after the service with `defaultRule`;
//!   a router without a rule gets `defaultRule`, without a service the only
//!   service there is.
//!
//! Instances of one service are merged: load balancers that agree gain each
//! other's servers; resources defined differently by two instances keep the
//! first definition, and the other is reported.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use super::constraints::Constraint;
use crate::dynamic::{DynamicConfig, HttpConfig, LoadBalancerConfig, ServerConfig, ServiceConfig};
use crate::providers::SourceError;
use crate::providers::kv::{KeyTree, Node};

/// One passing instance of a Consul service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    /// The service instance's ID.
    pub(crate) id: String,
    /// The service's address, or its node's when empty.
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) tags: Vec<String>,
}

/// Why `defaultRule` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("defaultRule `{template}`: {message}")]
pub struct DefaultRuleError {
    /// The template as written.
    pub template: String,
    /// What is wrong.
    pub message: String,
}

/// `defaultRule`: text with `{{ .Name }}` and `{{ normalize .Name }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultRule {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    NormalizedName,
}

impl DefaultRule {
    /// Parses the subset of Go templates that default rules use.
    pub(crate) fn parse(template: &str) -> Result<Self, DefaultRuleError> {
        let error = |message: String| DefaultRuleError {
            template: template.to_owned(),
            message,
        };
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let Some(length) = rest[start..].find("}}") else {
                return Err(error("`{{` is never closed".to_owned()));
            };
            let action = &rest[start + 2..start + length];
            let words: Vec<&str> = action.split_whitespace().collect();
            parts.push(match words.as_slice() {
                [".Name"] => Part::Name,
                ["normalize", ".Name"] => Part::NormalizedName,
                _ => {
                    return Err(error(format!(
                        "unsupported template action `{{{{{action}}}}}` \
                         (supported: `{{{{ .Name }}}}`, `{{{{ normalize .Name }}}}`)"
                    )));
                }
            });
            rest = &rest[start + length + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The rule for the service `name`.
    pub(crate) fn render(&self, name: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.clone(),
                Part::Name => name.to_owned(),
                Part::NormalizedName => normalize(name),
            })
            .collect()
    }
}

/// Traefik's name normalization: runs of characters other than letters and
/// digits become one `-`, trimmed at both ends.
pub(crate) fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The catalog provider's reading rules (from `providers.consulCatalog`).
#[derive(Debug, Clone)]
pub(crate) struct CatalogRules {
    pub(crate) prefix: String,
    pub(crate) exposed_by_default: bool,
    pub(crate) default_rule: DefaultRule,
    pub(crate) constraints: Option<Constraint>,
}

/// What the catalog decodes to.
#[derive(Debug, Default)]
pub(crate) struct CatalogConfig {
    pub(crate) config: DynamicConfig,
    pub(crate) errors: Vec<SourceError>,
    pub(crate) origins: BTreeMap<String, String>,
}

/// Per-service overrides of the instance's server, from
/// `loadbalancer.server.*` tags.
#[derive(Debug, Default)]
struct ServerOverride {
    port: Option<u16>,
    scheme: Option<String>,
    weight: Option<u32>,
}

impl CatalogRules {
    /// The configuration of every service's passing instances, by service
    /// name.
    pub(crate) fn build(&self, services: &BTreeMap<String, Vec<Instance>>) -> CatalogConfig {
        let mut merged = CatalogConfig::default();
        let mut http = HttpConfig::default();
        for (service, instances) in services {
            for instance in instances {
                let location = format!("service `{service}` instance `{}`", instance.id);
                if let Some(config) =
                    self.instance(service, instance, &location, &mut merged.errors)
                {
                    merge(&mut http, config, service, &location, &mut merged);
                }
            }
        }
        if !http.routers.is_empty() || !http.services.is_empty() || !http.middlewares.is_empty() {
            merged.config.http = Some(http);
        }
        merged
    }

    /// One instance's configuration, or `None` if it is not exposed.
    fn instance(
        &self,
        service: &str,
        instance: &Instance,
        location: &str,
        errors: &mut Vec<SourceError>,
    ) -> Option<HttpConfig> {
        if let Some(constraints) = &self.constraints
            && !constraints.matches(&instance.tags)
        {
            return None;
        }
        let error = |key: &str, message: String| SourceError {
            location: location.to_owned(),
            key: Some(key.to_owned()),
            message,
        };
        let mut tree = KeyTree::new(&self.prefix, '.');
        for tag in &instance.tags {
            if let Some((key, value)) = tag.split_once('=')
                && let Err(failure) = tree.insert(key.trim(), value)
            {
                errors.push(error(&failure.location, failure.message));
            }
        }
        let enable_key = format!("{}.enable", self.prefix);
        let enabled = match tree.take(&["enable"]).and_then(|node| node.value) {
            None => self.exposed_by_default,
            Some(value) if value.eq_ignore_ascii_case("true") => true,
            Some(value) if value.eq_ignore_ascii_case("false") => false,
            Some(value) => {
                let message = format!("invalid boolean `{value}`; the instance is not exposed");
                errors.push(error(&enable_key, message));
                false
            }
        };
        if !enabled {
            return None;
        }
        let connect = tree
            .take(&["consulcatalog", "connect"])
            .and_then(|node| node.value)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if connect {
            let key = format!("{}.consulcatalog.connect", self.prefix);
            let message = "Consul Connect is not supported; the instance is not exposed";
            errors.push(error(&key, message.to_owned()));
            return None;
        }
        tree.take(&["consulcatalog"]);
        let overrides = self.server_overrides(&mut tree, &mut |key, message| {
            errors.push(error(&key, message));
        });

        let decoded = tree.decode();
        for failure in decoded.errors {
            errors.push(error(&failure.location, failure.message));
        }
        let ignored = [
            ("tcp", decoded.config.tcp.is_some()),
            ("udp", decoded.config.udp.is_some()),
            ("tls", decoded.config.tls.is_some()),
        ];
        for (section, present) in ignored {
            if present {
                let key = format!("{}.{section}", self.prefix);
                errors.push(error(&key, "only `http` tags are read; ignored".to_owned()));
            }
        }
        let mut http = decoded.config.http.unwrap_or_default();
        self.apply_defaults(
            service,
            instance,
            &overrides,
            &mut http,
            &mut |key, message| {
                errors.push(error(&key, message));
            },
        );
        Some(http)
    }

    /// Takes the `loadbalancer.server` tags out of every service.
    fn server_overrides(
        &self,
        tree: &mut KeyTree,
        report: &mut dyn FnMut(String, String),
    ) -> BTreeMap<String, ServerOverride> {
        let mut overrides = BTreeMap::new();
        for (name, node) in tree.children_mut(&["http", "services"]) {
            let Some(server) = node
                .child_ignoring_case_mut("loadbalancer")
                .and_then(|balancer| balancer.take_child_ignoring_case("server"))
            else {
                continue;
            };
            let prefix = format!("{}.http.services.{name}.loadbalancer.server", self.prefix);
            overrides.insert(name.to_owned(), read_override(&server, &prefix, report));
        }
        overrides
    }

    fn apply_defaults(
        &self,
        service: &str,
        instance: &Instance,
        overrides: &BTreeMap<String, ServerOverride>,
        http: &mut HttpConfig,
        report: &mut dyn FnMut(String, String),
    ) {
        let default_name = normalize(service);
        if http.services.is_empty() {
            let balancer = ServiceConfig {
                load_balancer: Some(LoadBalancerConfig::default()),
                ..ServiceConfig::default()
            };
            http.services.insert(default_name.clone(), balancer);
        }
        for (name, config) in &mut http.services {
            let Some(balancer) = &mut config.load_balancer else {
                continue;
            };
            if balancer.servers.is_empty() {
                let server = overrides.get(name);
                let scheme = server.and_then(|s| s.scheme.as_deref()).unwrap_or("http");
                let port = server.and_then(|s| s.port).unwrap_or(instance.port);
                let host = if instance.address.contains(':') {
                    format!("[{}]", instance.address)
                } else {
                    instance.address.clone()
                };
                balancer.servers.push(ServerConfig {
                    url: format!("{scheme}://{host}:{port}"),
                    weight: server.and_then(|s| s.weight),
                    preserve_path: false,
                });
            }
        }
        let only_service = match http.services.keys().collect::<Vec<_>>().as_slice() {
            [only] => Some((*only).clone()),
            _ => None,
        };
        if http.routers.is_empty() {
            match &only_service {
                Some(_) => {
                    http.routers.insert(default_name, Default::default());
                }
                None => report(
                    format!("{}.http.services", self.prefix),
                    "no router tags and several services: no default router is created".to_owned(),
                ),
            }
        }
        http.routers.retain(|name, router| {
            if router.rule.is_empty() {
                Arc::make_mut(router).rule = self.default_rule.render(service);
            }
            if router.service.is_empty() {
                match &only_service {
                    Some(only) => Arc::make_mut(router).service.clone_from(only),
                    None => {
                        report(
                            format!("{}.http.routers.{name}.service", self.prefix),
                            "several services and none named: the router is left out".to_owned(),
                        );
                        return false;
                    }
                }
            }
            true
        });
    }
}

/// `port`, `scheme` and `weight` under `loadbalancer.server`.
fn read_override(
    server: &Node,
    prefix: &str,
    report: &mut dyn FnMut(String, String),
) -> ServerOverride {
    let mut result = ServerOverride::default();
    for (key, node) in &server.children {
        let value = node.value.clone().unwrap_or_default();
        let full_key = format!("{prefix}.{key}");
        match key.to_ascii_lowercase().as_str() {
            "port" => match value.trim().parse() {
                Ok(port) => result.port = Some(port),
                Err(_) => report(full_key, format!("invalid port `{value}`; ignored")),
            },
            "scheme" => result.scheme = Some(value),
            "weight" => match value.trim().parse() {
                Ok(weight) => result.weight = Some(weight),
                Err(_) => report(full_key, format!("invalid weight `{value}`; ignored")),
            },
            _ => report(
                full_key,
                "unknown key (expected port, scheme or weight); ignored".to_owned(),
            ),
        }
    }
    result
}

/// Adds one instance's configuration to the catalog's.
fn merge(
    target: &mut HttpConfig,
    instance: HttpConfig,
    service: &str,
    location: &str,
    merged: &mut CatalogConfig,
) {
    let origin = format!("consul catalog service `{service}`");
    let mut conflict = |section: &str, name: &str| {
        merged.errors.push(SourceError {
            location: location.to_owned(),
            key: Some(format!("{section}.{name}")),
            message: "defined differently by another instance; this definition is ignored"
                .to_owned(),
        });
    };
    for (name, router) in instance.routers {
        match target.routers.entry(name) {
            Entry::Vacant(vacant) => {
                merged
                    .origins
                    .insert(format!("http.routers.{}", vacant.key()), origin.clone());
                vacant.insert(router);
            }
            Entry::Occupied(existing) if *existing.get() == router => {}
            Entry::Occupied(existing) => conflict("http.routers", existing.key()),
        }
    }
    for (name, middleware) in instance.middlewares {
        match target.middlewares.entry(name) {
            Entry::Vacant(vacant) => {
                merged
                    .origins
                    .insert(format!("http.middlewares.{}", vacant.key()), origin.clone());
                vacant.insert(middleware);
            }
            Entry::Occupied(existing) if *existing.get() == middleware => {}
            Entry::Occupied(existing) => conflict("http.middlewares", existing.key()),
        }
    }
    for (name, service_config) in instance.services {
        match target.services.entry(name) {
            Entry::Vacant(vacant) => {
                merged
                    .origins
                    .insert(format!("http.services.{}", vacant.key()), origin.clone());
                vacant.insert(service_config);
            }
            Entry::Occupied(mut existing) => {
                if !merge_servers(existing.get_mut(), service_config) {
                    conflict("http.services", existing.key());
                }
            }
        }
    }
}

/// Adds `other`'s servers to `target` if both are the same load balancer
/// apart from their servers (or are equal); false on a conflict.
fn merge_servers(target: &mut ServiceConfig, other: ServiceConfig) -> bool {
    let (Some(existing), Some(mut added)) =
        (&mut target.load_balancer, other.load_balancer.clone())
    else {
        return *target == other;
    };
    let servers = std::mem::take(&mut added.servers);
    let mut without_servers = existing.clone();
    without_servers.servers.clear();
    if without_servers != added {
        return false;
    }
    for server in servers {
        if !existing.servers.contains(&server) {
            existing.servers.push(server);
        }
    }
    true
}

#[cfg(test)]
mod tests;
