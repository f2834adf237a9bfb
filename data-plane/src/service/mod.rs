//! Services: where a routed request goes. A service is a load balancer over
//! servers ([`load_balancer`]), a weighted service of services ([`weighted`])
//! or a failover pair ([`failover`]); choosing a server is synchronous and
//! lock-free, forwarding to it is the caller's job.
//!
//! Long-lived state (health, rotation positions, pooled connections) lives in
//! [`SharedState`](crate::shared::SharedState), not here, so a snapshot swap
//! rebuilds these cheap structures without resetting it.

mod client;
mod failover;
mod health_check;
mod load_balancer;
mod upstream;
mod weighted;
mod wrr;

use std::collections::HashMap;
use std::sync::Arc;

use sluice_proto::v1::{self, service::Kind};

pub(crate) use client::UpstreamClient;
pub use client::UpstreamConfig;
pub use health_check::HealthCheckError;
pub(crate) use health_check::{CheckSpec, HealthChecks};
pub(crate) use load_balancer::LoadBalancer;
pub use upstream::ServerUrlError;
pub(crate) use upstream::{Protocol, Upstream};

use crate::shared::SharedState;
use failover::Failover;
use weighted::Weighted;

/// Why a service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A referenced service is not in the snapshot.
    #[error("service `{0}` does not exist")]
    NotFound(String),
    /// Services reference each other in a loop.
    #[error("services reference each other in a loop: {0}")]
    Cycle(String),
    /// The service has no kind.
    #[error("the service has no type")]
    Empty,
    /// Mirroring is not implemented.
    #[error("mirroring services are not supported by this proxy yet")]
    Mirroring,
    /// Sticky sessions are not implemented.
    #[error("sticky sessions are not supported by this proxy version")]
    Sticky,
    /// A server URL is unusable.
    #[error(transparent)]
    ServerUrl(#[from] ServerUrlError),
    /// A server URL's host is not a valid Host header.
    #[error("server URL `{0}` has a host that is not a valid Host header")]
    ServerHost(String),
    /// A health check is unusable.
    #[error("health check")]
    HealthCheck(#[from] HealthCheckError),
    /// The servers transport a load balancer names is not in the snapshot.
    #[error("servers transport `{0}` does not exist")]
    TransportNotFound(String),
    /// The servers transport's TLS settings are unusable.
    #[error(transparent)]
    Transport(#[from] crate::tls::TlsError),
    /// A child service (of a weighted or failover service) failed.
    #[error("service `{name}`")]
    Child {
        /// The child's name.
        name: String,
        /// Why it failed.
        #[source]
        source: Box<ServiceError>,
    },
}

/// A service, ready to pick servers.
#[derive(Debug)]
pub(crate) enum Service {
    /// Over servers.
    LoadBalancer(LoadBalancer),
    /// Over services.
    Weighted(Weighted),
    /// Main and fallback.
    Failover(Failover),
}

/// The server chosen for a request, with the balancer it belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selected<'a> {
    /// The balancer (its forwarding options).
    pub(crate) balancer: &'a LoadBalancer,
    /// The server.
    pub(crate) server: &'a Upstream,
}

impl Service {
    /// Picks a healthy server, or `None` (503).
    pub(crate) fn select(&self) -> Option<Selected<'_>> {
        match self {
            Self::LoadBalancer(balancer) => {
                balancer.pick().map(|server| Selected { balancer, server })
            }
            Self::Weighted(weighted) => weighted.select(),
            Self::Failover(failover) => failover.select(),
        }
    }

    /// True when some server can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        match self {
            Self::LoadBalancer(balancer) => balancer.is_available(),
            Self::Weighted(weighted) => weighted.is_available(),
            Self::Failover(failover) => failover.is_available(),
        }
    }
}

/// Builds the services routers reference, each once, resolving references
/// between services.
#[derive(Debug)]
pub(crate) struct ServiceBuilder<'a> {
    definitions: HashMap<&'a str, &'a v1::Service>,
    built: HashMap<String, Arc<Service>>,
    /// Names being built, to detect loops.
    stack: Vec<String>,
    shared: &'a SharedState,
    checks: Vec<CheckSpec>,
    transports: HashMap<&'a str, &'a v1::ServersTransport>,
    /// `name#content_version` of the transports used.
    transports_in_use: Vec<String>,
}

impl<'a> ServiceBuilder<'a> {
    /// A builder over the snapshot's services.
    pub(crate) fn new(services: &'a [v1::Service], shared: &'a SharedState) -> Self {
        Self {
            definitions: services.iter().map(|s| (s.name.as_str(), s)).collect(),
            built: HashMap::new(),
            stack: Vec::new(),
            shared,
            checks: Vec::new(),
            transports: HashMap::new(),
            transports_in_use: Vec::new(),
        }
    }

    /// Lets load balancers use the snapshot's servers transports.
    pub(crate) fn with_transports(mut self, transports: &'a [v1::ServersTransport]) -> Self {
        self.transports = transports.iter().map(|t| (t.name.as_str(), t)).collect();
        self
    }

    /// `name#content_version` of the servers transports in use.
    pub(crate) fn transports_in_use(&self) -> &[String] {
        &self.transports_in_use
    }

    /// The service named `name`, built on first use.
    pub(crate) fn get(&mut self, name: &str) -> Result<Arc<Service>, ServiceError> {
        if let Some(service) = self.built.get(name) {
            return Ok(service.clone());
        }
        if self.stack.iter().any(|n| n == name) {
            let mut cycle = self.stack.clone();
            cycle.push(name.to_owned());
            return Err(ServiceError::Cycle(cycle.join(" -> ")));
        }
        let definition = *self
            .definitions
            .get(name)
            .ok_or_else(|| ServiceError::NotFound(name.to_owned()))?;
        self.stack.push(name.to_owned());
        let result = self.build(definition);
        self.stack.pop();
        let service = Arc::new(result?);
        self.built.insert(name.to_owned(), service.clone());
        Ok(service)
    }

    /// Names of the services built so far.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.built.keys().map(String::as_str)
    }

    /// The health checks the built services need.
    pub(crate) fn into_checks(self) -> Vec<CheckSpec> {
        self.checks
    }

    fn build(&mut self, definition: &v1::Service) -> Result<Service, ServiceError> {
        let name = definition.name.as_str();
        match definition.kind.as_ref().ok_or(ServiceError::Empty)? {
            Kind::LoadBalancer(config) => {
                let client = match config.servers_transport.as_str() {
                    "" => self.shared.client.clone(),
                    transport => {
                        let transport = *self
                            .transports
                            .get(transport)
                            .ok_or_else(|| ServiceError::TransportNotFound(transport.to_owned()))?;
                        self.transports_in_use
                            .push(format!("{}#{}", transport.name, transport.content_version));
                        self.shared.transport_client(transport)?
                    }
                };
                Ok(Service::LoadBalancer(LoadBalancer::build(
                    name,
                    config,
                    self.shared,
                    client,
                    &mut self.checks,
                )?))
            }
            Kind::Weighted(config) => {
                if config.sticky.is_some() {
                    return Err(ServiceError::Sticky);
                }
                let mut children = Vec::with_capacity(config.services.len());
                for target in &config.services {
                    children.push((self.child(&target.name)?, target.weight));
                }
                Ok(Service::Weighted(Weighted::new(
                    name,
                    children,
                    self.shared,
                )))
            }
            Kind::Failover(config) => Ok(Service::Failover(Failover::new(
                self.child(&config.service)?,
                self.child(&config.fallback)?,
            ))),
            Kind::Mirroring(_) => Err(ServiceError::Mirroring),
        }
    }

    fn child(&mut self, name: &str) -> Result<Arc<Service>, ServiceError> {
        self.get(name).map_err(|source| match source {
            // A missing child or a loop is reported as is, not nested.
            ServiceError::NotFound(_) | ServiceError::Cycle(_) => source,
            source => ServiceError::Child {
                name: name.to_owned(),
                source: Box::new(source),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::v1::{FailoverService, MirroringService, WeightedService, WeightedTarget};
    use tokio_util::sync::CancellationToken;

    fn lb(name: &str, urls: &[&str]) -> v1::Service {
        v1::Service {
            name: name.into(),
            kind: Some(Kind::LoadBalancer(v1::LoadBalancer {
                servers: urls
                    .iter()
                    .map(|u| v1::Server {
                        url: (*u).into(),
                        weight: 1,
                        preserve_path: false,
                    })
                    .collect(),
                pass_host_header: true,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn weighted(name: &str, children: &[(&str, u32)]) -> v1::Service {
        v1::Service {
            name: name.into(),
            kind: Some(Kind::Weighted(WeightedService {
                services: children
                    .iter()
                    .map(|(n, w)| WeightedTarget {
                        name: (*n).into(),
                        weight: *w,
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn shared() -> SharedState {
        SharedState::new(
            "node".into(),
            &UpstreamConfig::default(),
            CancellationToken::new(),
        )
    }

    fn url(service: &Service) -> &str {
        &service.select().unwrap().server.url
    }

    #[test]
    fn weighted_over_balancers() {
        let services = vec![
            lb("a", &["http://a1", "http://a2"]),
            lb("b", &["http://b1"]),
            weighted("w", &[("a", 2), ("b", 1)]),
        ];
        let shared = shared();
        let mut builder = ServiceBuilder::new(&services, &shared);
        let w = builder.get("w").unwrap();
        let picks: Vec<_> = (0..6).map(|_| url(&w).to_owned()).collect();
        assert_eq!(
            picks,
            [
                "http://a1",
                "http://b1",
                "http://a2",
                "http://a1",
                "http://b1",
                "http://a2"
            ]
        );
        assert_eq!(builder.names().count(), 3);
    }

    #[test]
    fn references_are_checked() {
        let services = vec![
            weighted("w", &[("x", 1)]),
            weighted("l1", &[("l2", 1)]),
            weighted("l2", &[("l1", 1)]),
        ];
        let shared = shared();
        let mut builder = ServiceBuilder::new(&services, &shared);
        assert!(matches!(builder.get("w"), Err(ServiceError::NotFound(n)) if n == "x"));
        assert!(matches!(builder.get("l1"), Err(ServiceError::Cycle(c)) if c == "l1 -> l2 -> l1"));
    }

    #[test]
    fn mirroring_is_refused_by_name() {
        let services = vec![v1::Service {
            name: "m".into(),
            kind: Some(Kind::Mirroring(MirroringService::default())),
            ..Default::default()
        }];
        let shared = shared();
        let error = ServiceBuilder::new(&services, &shared)
            .get("m")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "mirroring services are not supported by this proxy yet"
        );
    }

    #[test]
    fn failover_uses_fallback_when_main_is_down() {
        let mut main = lb("main", &["http://m1"]);
        if let Some(Kind::LoadBalancer(config)) = &mut main.kind {
            config.health_check = Some(v1::HealthCheck::default());
        }
        let services = vec![
            main,
            lb("fallback", &["http://f1"]),
            v1::Service {
                name: "fo".into(),
                kind: Some(Kind::Failover(FailoverService {
                    service: "main".into(),
                    fallback: "fallback".into(),
                })),
                ..Default::default()
            },
        ];
        let shared = shared();
        let mut builder = ServiceBuilder::new(&services, &shared);
        let failover = builder.get("fo").unwrap();
        assert_eq!(url(&failover), "http://m1");
        let checks = builder.into_checks();
        assert_eq!(checks.len(), 1);
        checks[0].health.set(false);
        assert_eq!(url(&failover), "http://f1");
        checks[0].health.set(true);
        assert_eq!(url(&failover), "http://m1");
    }
}
