//! Services: where a routed request goes. A service is a load balancer over
//! servers ([`load_balancer`]), a weighted service of services ([`weighted`]),
//! a failover pair ([`failover`]) or a mirroring service ([`mirroring`]).
//! Choosing a server is synchronous and lock-free ([`Service::select`]),
//! following sticky-session cookies ([`sticky`]) where configured;
//! forwarding to it is `forward::serve`'s job.
//!
//! Long-lived state (health, rotation positions, mirror counts, pooled
//! connections) lives in [`SharedState`](crate::shared::SharedState), not
//! here, so a snapshot swap rebuilds these cheap structures without
//! resetting it.

mod client;
mod failover;
mod health_check;
mod load_balancer;
mod mirroring;
#[cfg(test)]
mod proxy_tests;
mod sticky;
mod upstream;
mod weighted;
mod wrr;

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use sluice_proto::v1::{self, service::Kind};

pub use client::UpstreamConfig;
pub(crate) use client::{DirectSend, SendError, UpstreamClient};
pub use health_check::HealthCheckError;
pub(crate) use health_check::{CheckSpec, HealthChecks};
pub(crate) use load_balancer::LoadBalancer;
pub(crate) use mirroring::{MirrorBudget, MirrorCounts, Mirroring};
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
    /// A child service (of a weighted, failover or mirroring service) failed.
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
    /// Main, with copies to mirrors.
    Mirroring(Mirroring),
}

/// The server chosen for a request, with the balancer it belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selected<'a> {
    /// The balancer (its forwarding options).
    pub(crate) balancer: &'a LoadBalancer,
    /// The server.
    pub(crate) server: &'a Upstream,
}

/// What serves a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A server.
    Server(Selected<'a>),
    /// A mirroring service, which picks its main service's server itself
    /// (after buffering the body, when it copies it).
    Mirroring(&'a Mirroring),
}

/// A [`Target`] with the sticky cookies its response must set.
#[derive(Debug)]
pub(crate) struct Pick<'a> {
    /// Where the request goes.
    pub(crate) target: Target<'a>,
    /// `Set-Cookie` values for the response: one per sticky balancer on the
    /// way that had to (re)assign the client. Empty (no allocation) without
    /// sticky sessions.
    pub(crate) set_cookies: Vec<&'a HeaderValue>,
}

impl Service {
    /// Where a request with `headers` goes, or `None` (503).
    pub(crate) fn select(&self, headers: &HeaderMap) -> Option<Pick<'_>> {
        let mut set_cookies = Vec::new();
        let target = self.target(headers, &mut set_cookies)?;
        Some(Pick {
            target,
            set_cookies,
        })
    }

    /// Where a request with `headers` goes; sticky balancers that assign the
    /// client push their `Set-Cookie` to `set_cookies`.
    pub(crate) fn target<'a>(
        &'a self,
        headers: &HeaderMap,
        set_cookies: &mut Vec<&'a HeaderValue>,
    ) -> Option<Target<'a>> {
        match self {
            Self::LoadBalancer(balancer) => balancer
                .pick(headers, set_cookies)
                .map(|server| Target::Server(Selected { balancer, server })),
            Self::Weighted(weighted) => weighted.target(headers, set_cookies),
            Self::Failover(failover) => failover.target(headers, set_cookies),
            Self::Mirroring(mirroring) => Some(Target::Mirroring(mirroring)),
        }
    }

    /// Whether every request is forwarded straight to an `http://` server,
    /// with no sticky cookie and no mirror: what direct forwarding
    /// (`h1::direct`) serves.
    pub(crate) fn forwards_directly(&self) -> bool {
        match self {
            Self::LoadBalancer(balancer) => balancer.forwards_directly(),
            Self::Weighted(weighted) => weighted.forwards_directly(),
            Self::Failover(failover) => failover.forwards_directly(),
            Self::Mirroring(_) => false,
        }
    }

    /// True when some server can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        match self {
            Self::LoadBalancer(balancer) => balancer.is_available(),
            Self::Weighted(weighted) => weighted.is_available(),
            Self::Failover(failover) => failover.is_available(),
            Self::Mirroring(mirroring) => mirroring.is_available(),
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
    pub(crate) fn new(
        services: impl IntoIterator<Item = &'a v1::Service>,
        shared: &'a SharedState,
    ) -> Self {
        Self {
            definitions: services.into_iter().map(|s| (s.name.as_str(), s)).collect(),
            built: HashMap::new(),
            stack: Vec::new(),
            shared,
            checks: Vec::new(),
            transports: HashMap::new(),
            transports_in_use: Vec::new(),
        }
    }

    /// Lets load balancers use the snapshot's servers transports.
    pub(crate) fn with_transports(
        mut self,
        transports: impl IntoIterator<Item = &'a v1::ServersTransport>,
    ) -> Self {
        self.transports = transports
            .into_iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
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
                let mut children = Vec::with_capacity(config.services.len());
                for target in &config.services {
                    let child = self.child(&target.name)?;
                    children.push((target.name.clone(), child, target.weight));
                }
                let sticky = config.sticky.as_ref().and_then(|s| s.cookie.as_ref());
                Ok(Service::Weighted(Weighted::new(
                    name,
                    children,
                    sticky,
                    self.shared,
                )))
            }
            Kind::Failover(config) => Ok(Service::Failover(Failover::new(
                self.child(&config.service)?,
                self.child(&config.fallback)?,
            ))),
            Kind::Mirroring(config) => {
                let main = self.child(&config.service)?;
                let mut mirrors = Vec::with_capacity(config.mirrors.len());
                for mirror in &config.mirrors {
                    mirrors.push((self.child(&mirror.name)?, mirror.percent));
                }
                Ok(Service::Mirroring(Mirroring::new(
                    name,
                    main,
                    mirrors,
                    config,
                    self.shared,
                )))
            }
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
    use crate::proxy_tests::load_balancer;
    use sluice_proto::v1::{FailoverService, MirroringService, WeightedService, WeightedTarget};
    use tokio_util::sync::CancellationToken;

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
        url_with(service, &HeaderMap::new()).0
    }

    /// The server picked for a request with `headers`, and the cookies set.
    fn url_with<'a>(service: &'a Service, headers: &HeaderMap) -> (&'a str, Vec<String>) {
        let pick = service.select(headers).unwrap();
        let Target::Server(selected) = pick.target else {
            panic!("not a server: {:?}", pick.target);
        };
        let cookies = pick
            .set_cookies
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .collect();
        (&selected.server.url, cookies)
    }

    /// A `Cookie` header sending the `name=value` pair of `set_cookie`.
    fn cookie_of(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, pair.parse().unwrap());
        headers
    }

    fn sticky(name: &str) -> Option<v1::Sticky> {
        Some(v1::Sticky {
            cookie: Some(v1::StickyCookie {
                name: name.into(),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn weighted_over_balancers() {
        let services = vec![
            load_balancer("a", &["http://a1", "http://a2"]),
            load_balancer("b", &["http://b1"]),
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
    fn mirroring_resolves_its_services() {
        let services = vec![
            load_balancer("main", &["http://m1"]),
            load_balancer("copy", &["http://c1"]),
            v1::Service {
                name: "m".into(),
                kind: Some(Kind::Mirroring(MirroringService {
                    service: "main".into(),
                    mirrors: vec![v1::MirrorTarget {
                        name: "copy".into(),
                        percent: 10,
                    }],
                    ..Default::default()
                })),
                ..Default::default()
            },
            v1::Service {
                name: "broken".into(),
                kind: Some(Kind::Mirroring(MirroringService {
                    service: "main".into(),
                    mirrors: vec![v1::MirrorTarget {
                        name: "nowhere".into(),
                        percent: 10,
                    }],
                    ..Default::default()
                })),
                ..Default::default()
            },
        ];
        let shared = shared();
        let mut builder = ServiceBuilder::new(&services, &shared);
        let m = builder.get("m").unwrap();
        assert!(m.is_available());
        assert!(matches!(
            m.select(&HeaderMap::new()).unwrap().target,
            Target::Mirroring(_)
        ));
        assert!(matches!(builder.get("broken"), Err(ServiceError::NotFound(n)) if n == "nowhere"));
    }

    #[test]
    fn sticky_balancer_keeps_the_client_on_its_server() {
        let mut service = load_balancer("app", &["http://a1", "http://a2", "http://a3"]);
        if let Some(Kind::LoadBalancer(config)) = &mut service.kind {
            config.sticky = sticky("s");
            config.health_check = Some(v1::HealthCheck::default());
        }
        let services = vec![service];
        let shared = shared();
        let mut builder = ServiceBuilder::new(&services, &shared);
        let app = builder.get("app").unwrap();
        let checks = builder.into_checks();

        // No cookie: the rotation picks, and the response sets the cookie.
        let (first, cookies) = url_with(&app, &HeaderMap::new());
        assert_eq!(first, "http://a1");
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].starts_with("s="), "{cookies:?}");
        assert!(
            !cookies[0].contains("a1"),
            "the server URL leaks: {cookies:?}"
        );
        let stuck = cookie_of(&cookies[0]);
        // With it: the same server every time, no new cookie.
        for _ in 0..10 {
            assert_eq!(url_with(&app, &stuck), ("http://a1", Vec::new()));
        }
        // Its server goes down: another one, and a cookie for it.
        let a1 = checks.iter().find(|c| c.key.url == "http://a1").unwrap();
        a1.health.set(false);
        let (moved, cookies) = url_with(&app, &stuck);
        assert_ne!(moved, "http://a1");
        assert_eq!(cookies.len(), 1);
        let restuck = cookie_of(&cookies[0]);
        for _ in 0..5 {
            assert_eq!(url_with(&app, &restuck), (moved, Vec::new()));
        }
        // An unknown value is treated as no cookie.
        let (_, cookies) = url_with(&app, &cookie_of("s=0000000000000000"));
        assert_eq!(cookies.len(), 1);
    }

    #[test]
    fn sticky_weighted_and_balancer_cookies_nest() {
        let mut a = load_balancer("a", &["http://a1", "http://a2"]);
        if let Some(Kind::LoadBalancer(config)) = &mut a.kind {
            config.sticky = sticky("inner");
        }
        let mut w = weighted("w", &[("a", 1), ("b", 1)]);
        if let Some(Kind::Weighted(config)) = &mut w.kind {
            config.sticky = sticky("outer");
        }
        let services = vec![a, load_balancer("b", &["http://b1"]), w];
        let shared = shared();
        let w = ServiceBuilder::new(&services, &shared).get("w").unwrap();

        let (first, cookies) = url_with(&w, &HeaderMap::new());
        assert_eq!(first, "http://a1");
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        assert!(cookies[0].starts_with("outer=") && cookies[1].starts_with("inner="));
        let mut both = HeaderMap::new();
        let pairs: Vec<&str> = cookies
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect();
        both.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
        for _ in 0..6 {
            assert_eq!(url_with(&w, &both), ("http://a1", Vec::new()));
        }
        // The outer cookie alone keeps the child; the child's rotation picks.
        let outer = cookie_of(&cookies[0]);
        for _ in 0..4 {
            let (url, cookies) = url_with(&w, &outer);
            assert!(url.starts_with("http://a"), "{url}");
            assert_eq!(cookies.len(), 1);
            assert!(cookies[0].starts_with("inner="));
        }
    }

    #[test]
    fn failover_uses_fallback_when_main_is_down() {
        let mut main = load_balancer("main", &["http://m1"]);
        if let Some(Kind::LoadBalancer(config)) = &mut main.kind {
            config.health_check = Some(v1::HealthCheck::default());
        }
        let services = vec![
            main,
            load_balancer("fallback", &["http://f1"]),
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
