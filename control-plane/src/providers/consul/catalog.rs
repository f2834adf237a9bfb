//! The Consul Catalog provider (`providers.consulCatalog`): routes from
//! Consul services, their tags and their passing instances.
//!
//! One blocking query follows `/v1/catalog/services`; one more per service
//! follows `/v1/health/service/<name>?passing=true`, started and stopped as
//! services come and go. Only instances whose checks all pass are routed.
//! What an instance's tags mean is in `tags.rs`.
//!
//! A failing query keeps what it last read (the service list, or that
//! service's instances) and is retried with backoff; the provider reports
//! `error` at `/api/providers` until every query answers again. With
//! `namespaces` (Consul Enterprise), one provider per namespace, named
//! `consulcatalog-<namespace>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{BlockingQuery, ConsulClient, ConsulError, DEFAULT_WAIT};
use super::constraints::{Constraint, ConstraintError};
use super::tags::{CatalogRules, DefaultRule, DefaultRuleError, Instance};
use crate::config::ConsulCatalogConfig;
use crate::providers::backoff::Backoff;
use crate::providers::publish::Publisher;
use crate::providers::{ProviderHealthRegistry, ProviderUpdate};

/// The failure key of the service list, beside service names.
const CATALOG: &str = "/v1/catalog/services";

/// Why a Consul Catalog provider cannot be created from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConsulCatalogError {
    /// The endpoint is unusable.
    #[error(transparent)]
    Endpoint(#[from] ConsulError),
    /// `defaultRule` uses an unsupported template.
    #[error(transparent)]
    DefaultRule(#[from] DefaultRuleError),
    /// `constraints` does not parse.
    #[error(transparent)]
    Constraints(#[from] ConstraintError),
    /// `connectAware: true`.
    #[error("connectAware: Consul Connect is not supported; set it to false")]
    ConnectAware,
    /// `strictChecks` asks for more than passing instances.
    #[error("strictChecks: only passing instances are routed; set it to [passing] or remove it")]
    StrictChecks,
}

/// Reads routes from the Consul catalog.
#[derive(Debug)]
pub struct ConsulCatalogProvider {
    name: String,
    client: ConsulClient,
    rules: Arc<CatalogRules>,
    /// Query parameters of every request (`dc=...&ns=...&stale`).
    parameters: String,
    wait: Duration,
}

/// What the watchers report to the provider's loop.
enum Event {
    Services(Result<Vec<String>, ConsulError>),
    Instances {
        service: String,
        generation: u64,
        instances: Result<Vec<Instance>, ConsulError>,
    },
}

/// One entry of `/v1/health/service/<name>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthEntry {
    node: HealthNode,
    service: HealthService,
    #[serde(default)]
    checks: Vec<HealthCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthNode {
    #[serde(default)]
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthService {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthCheck {
    status: String,
}

impl ConsulCatalogProvider {
    /// The providers for `providers.consulCatalog`: one, or one per namespace.
    pub fn from_config(config: &ConsulCatalogConfig) -> Result<Vec<Self>, ConsulCatalogError> {
        if config.connect_aware {
            return Err(ConsulCatalogError::ConnectAware);
        }
        if config
            .strict_checks
            .as_ref()
            .is_some_and(|checks| checks.iter().any(|check| check != "passing"))
        {
            return Err(ConsulCatalogError::StrictChecks);
        }
        let endpoint = &config.endpoint;
        let address = match endpoint.scheme.as_str() {
            "" => endpoint.address.clone(),
            scheme => format!("{scheme}://{}", endpoint.address),
        };
        let basic_auth = endpoint
            .http_auth
            .as_ref()
            .map(|auth| (auth.username.as_str(), &auth.password));
        let client = ConsulClient::new(
            &[address],
            &endpoint.token,
            basic_auth,
            "endpoint.tls",
            endpoint.tls.as_ref(),
        )?;
        let constraints = (!config.constraints.trim().is_empty())
            .then(|| Constraint::parse(&config.constraints))
            .transpose()?;
        let rules = Arc::new(CatalogRules {
            prefix: config.prefix.clone(),
            exposed_by_default: config.exposed_by_default,
            default_rule: DefaultRule::parse(&config.default_rule)?,
            constraints,
        });
        let mut parameters = Vec::new();
        if !endpoint.datacenter.is_empty() {
            parameters.push(format!("dc={}", encode(&endpoint.datacenter)));
        }
        for (enabled, flag) in [
            (config.stale, "stale"),
            (config.require_consistent, "consistent"),
            (config.cache, "cached"),
        ] {
            if enabled {
                parameters.push(flag.to_owned());
            }
        }
        let wait = endpoint
            .endpoint_wait_time
            .map_or(DEFAULT_WAIT, |wait| wait.0);
        let provider = |name: String, namespace: Option<&str>| {
            let mut parameters = parameters.clone();
            if let Some(namespace) = namespace {
                parameters.push(format!("ns={}", encode(namespace)));
            }
            Self {
                name,
                client: client.clone(),
                rules: Arc::clone(&rules),
                parameters: parameters.join("&"),
                wait,
            }
        };
        if config.namespaces.is_empty() {
            return Ok(vec![provider("consulcatalog".to_owned(), None)]);
        }
        Ok(config
            .namespaces
            .iter()
            .map(|namespace| provider(format!("consulcatalog-{namespace}"), Some(namespace)))
            .collect())
    }

    /// The provider's name (`consulcatalog`, `consulcatalog-<namespace>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the catalog once: the services, then each one's instances.
    pub async fn load(&mut self) -> Result<ProviderUpdate, ConsulError> {
        let path = self.services_path();
        let response = self.client.get(&path, DEFAULT_WAIT).await?;
        let mut services = BTreeMap::new();
        for service in service_names(&response.json()?) {
            let path = self.health_path(&service);
            let response = self.client.get(&path, DEFAULT_WAIT).await?;
            services.insert(service, passing_instances(response.json()?));
        }
        Ok(self.update(&services))
    }

    /// Watches the catalog and sends a fresh update after every change,
    /// until `shutdown`.
    pub async fn run(
        self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        // Cancelled when this loop ends, whatever the reason: stops every watcher.
        let watchers = shutdown.child_token();
        let _stop_watchers = watchers.clone().drop_guard();
        let mut publisher = Publisher::new(&self.name, updates, health);
        let (events_sender, mut events) = mpsc::channel(64);
        let path = self.services_path();
        spawn_watcher(
            self.client.clone(),
            path,
            self.wait,
            watchers.clone(),
            events_sender.clone(),
            |response| Ok(Event::Services(Ok(service_names(&response.json()?)))),
            |error| Event::Services(Err(error)),
        );

        let mut services: BTreeMap<String, Watched> = BTreeMap::new();
        let mut failures: BTreeMap<String, String> = BTreeMap::new();
        let mut listed = false;
        let mut generation = 0;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                None => return,
                Some(Event::Services(Ok(names))) => {
                    listed = true;
                    failures.remove(CATALOG);
                    services.retain(|name, watched| {
                        let keep = names.contains(name);
                        if !keep {
                            watched.stop.cancel();
                            failures.remove(name);
                        }
                        keep
                    });
                    for name in names {
                        if services.contains_key(&name) {
                            continue;
                        }
                        generation += 1;
                        let stop = watchers.child_token();
                        let service = name.clone();
                        let on_error = service.clone();
                        spawn_watcher(
                            self.client.clone(),
                            self.health_path(&name),
                            self.wait,
                            stop.clone(),
                            events_sender.clone(),
                            move |response| {
                                Ok(Event::Instances {
                                    service: service.clone(),
                                    generation,
                                    instances: Ok(passing_instances(response.json()?)),
                                })
                            },
                            move |error| Event::Instances {
                                service: on_error.clone(),
                                generation,
                                instances: Err(error),
                            },
                        );
                        services.insert(
                            name,
                            Watched {
                                generation,
                                stop,
                                instances: None,
                            },
                        );
                    }
                }
                Some(Event::Services(Err(error))) => {
                    failures.insert(CATALOG.to_owned(), error.to_string());
                }
                Some(Event::Instances {
                    service,
                    generation,
                    instances,
                }) => {
                    let Some(watched) = services
                        .get_mut(&service)
                        .filter(|watched| watched.generation == generation)
                    else {
                        continue;
                    };
                    match instances {
                        Ok(instances) => {
                            watched.instances = Some(instances);
                            failures.remove(&service);
                        }
                        Err(error) => {
                            failures.insert(service, error.to_string());
                        }
                    }
                }
            }
            match failures.iter().next() {
                Some((source, error)) => publisher.failed(&format!("{source}: {error}")),
                None => publisher.healthy(),
            }
            let everything_read = services
                .iter()
                .all(|(name, watched)| watched.instances.is_some() || failures.contains_key(name));
            if listed && everything_read {
                let current = services
                    .iter()
                    .filter_map(|(name, watched)| Some((name.clone(), watched.instances.clone()?)))
                    .collect();
                if !publisher.publish(self.update(&current), &shutdown).await {
                    return;
                }
            }
        }
    }

    fn services_path(&self) -> String {
        if self.parameters.is_empty() {
            CATALOG.to_owned()
        } else {
            format!("{CATALOG}?{}", self.parameters)
        }
    }

    fn health_path(&self, service: &str) -> String {
        let mut path = format!("/v1/health/service/{}?passing=true", encode(service));
        if !self.parameters.is_empty() {
            path.push('&');
            path.push_str(&self.parameters);
        }
        path
    }

    fn update(&self, services: &BTreeMap<String, Vec<Instance>>) -> ProviderUpdate {
        let built = self.rules.build(services);
        ProviderUpdate {
            provider: self.name.clone(),
            config: built.config,
            errors: built.errors,
            origins: built.origins,
        }
    }
}

/// A service whose instances are being watched.
#[derive(Debug)]
struct Watched {
    generation: u64,
    stop: CancellationToken,
    /// `None` until first read.
    instances: Option<Vec<Instance>>,
}

/// Follows one blocking query until `stop`, turning each answer (or
/// failure) into an event; failures are retried with backoff.
fn spawn_watcher(
    mut client: ConsulClient,
    path: String,
    wait: Duration,
    stop: CancellationToken,
    events: mpsc::Sender<Event>,
    on_answer: impl Fn(super::client::ConsulResponse) -> Result<Event, ConsulError> + Send + 'static,
    on_error: impl Fn(ConsulError) -> Event + Send + 'static,
) {
    tokio::spawn(async move {
        let mut query = BlockingQuery::new(path, wait);
        let mut backoff = Backoff::default();
        loop {
            let answer = tokio::select! {
                () = stop.cancelled() => return,
                answer = query.next(&mut client) => answer,
            };
            let (event, failed) = match answer.and_then(&on_answer) {
                Ok(event) => (event, false),
                Err(error) => (on_error(error), true),
            };
            let sent = tokio::select! {
                () = stop.cancelled() => return,
                sent = events.send(event) => sent.is_ok(),
            };
            if !sent {
                return;
            }
            if failed {
                if !backoff.wait(&stop).await {
                    return;
                }
            } else {
                backoff.reset();
            }
        }
    });
}

/// The names of `/v1/catalog/services` (name to tags).
fn service_names(services: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    services.keys().cloned().collect()
}

/// The instances of a health answer whose checks all pass.
fn passing_instances(entries: Vec<HealthEntry>) -> Vec<Instance> {
    let mut instances: Vec<Instance> = entries
        .into_iter()
        .filter(|entry| entry.checks.iter().all(|check| check.status == "passing"))
        .map(|entry| Instance {
            id: entry.service.id,
            address: if entry.service.address.is_empty() {
                entry.node.address
            } else {
                entry.service.address
            },
            port: entry.service.port,
            tags: entry.service.tags.unwrap_or_default(),
        })
        .collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances
}

/// Percent-encodes what is not unreserved in a URL path segment or query value.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConsulEndpointConfig, ProviderTlsConfig};

    #[test]
    fn only_instances_whose_checks_all_pass_are_kept() {
        let entries: Vec<HealthEntry> = serde_json::from_value(serde_json::json!([
            {"Node": {"Node": "n1", "Address": "10.0.0.1"},
             "Service": {"ID": "web-1", "Service": "web", "Tags": ["a"], "Address": "", "Port": 80},
             "Checks": [{"Status": "passing"}, {"Status": "passing"}]},
            {"Node": {"Node": "n2", "Address": "10.0.0.2"},
             "Service": {"ID": "web-2", "Service": "web", "Tags": null, "Address": "10.1.0.2", "Port": 81},
             "Checks": [{"Status": "passing"}]},
            {"Node": {"Node": "n3", "Address": "10.0.0.3"},
             "Service": {"ID": "web-3", "Service": "web", "Tags": [], "Address": "", "Port": 82},
             "Checks": [{"Status": "passing"}, {"Status": "critical"}]},
        ]))
        .unwrap();
        let instances = passing_instances(entries);
        let addresses: Vec<_> = instances
            .iter()
            .map(|i| format!("{}={}:{}", i.id, i.address, i.port))
            .collect();
        assert_eq!(addresses, ["web-1=10.0.0.1:80", "web-2=10.1.0.2:81"]);
        assert_eq!(instances[0].tags, ["a"]);
    }

    #[test]
    fn configuration_errors_are_caught_at_startup() {
        let with = |change: fn(&mut ConsulCatalogConfig)| {
            let mut config = ConsulCatalogConfig::default();
            change(&mut config);
            ConsulCatalogProvider::from_config(&config).map(|providers| {
                providers
                    .into_iter()
                    .map(|p| (p.name, p.parameters))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            with(|_| {}).unwrap(),
            [("consulcatalog".to_owned(), String::new())]
        );
        let namespaced = with(|config| {
            config.namespaces = vec!["team a".to_owned()];
            config.stale = true;
            config.endpoint.datacenter = "dc2".to_owned();
        })
        .unwrap();
        assert_eq!(
            namespaced,
            [(
                "consulcatalog-team a".to_owned(),
                "dc=dc2&stale&ns=team%20a".to_owned()
            )]
        );
        let error = with(|config| config.connect_aware = true).unwrap_err();
        assert!(error.to_string().contains("Consul Connect"), "{error}");
        let error = with(|config| config.default_rule = "{{ .Labels }}".to_owned()).unwrap_err();
        assert!(error.to_string().contains("{{ .Labels }}"), "{error}");
        let error = with(|config| config.constraints = "Tag(`a`) &&".to_owned()).unwrap_err();
        assert!(
            error.to_string().contains("constraints `Tag(`a`) &&`"),
            "{error}"
        );
        let error = with(|config| {
            config.strict_checks = Some(vec!["passing".to_owned(), "warning".to_owned()]);
        })
        .unwrap_err();
        assert!(error.to_string().contains("strictChecks"), "{error}");
        let error = with(|config| {
            config.endpoint = ConsulEndpointConfig {
                scheme: "https".to_owned(),
                tls: Some(ProviderTlsConfig {
                    cert: "/x/client.pem".to_owned(),
                    ..ProviderTlsConfig::default()
                }),
                ..ConsulEndpointConfig::default()
            };
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "endpoint.tls.cert and endpoint.tls.key must be set together"
        );
    }
}
