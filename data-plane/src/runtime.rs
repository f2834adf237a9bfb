//! The immutable runtime the proxy serves: per entry point, its routing
//! table, forwarded-headers trust and redirection; services built once and
//! shared by the routers that use them.
//!
//! A runtime is built from the full resource set of a snapshot and published
//! with `ArcSwap::store`; requests load it when they start and finish on it.
//! Building is all-or-nothing: a snapshot this proxy cannot serve faithfully
//! (TLS entry points, middlewares, mirroring, sticky sessions: later
//! versions) fails the build with an error naming the resource, which the
//! snapshot client NACKs while the previous runtime keeps serving.
//!
//! Middlewares will slot in here: a router compiles to a [`RouteTarget`], and
//! a chain per router (and per entry point) will sit beside its service.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use sluice_proto::v1::{self, Resources, middleware};

use crate::redirect::Redirect;
use crate::router::{Matcher, MatcherError, Route, RouterTable};
use crate::service::{CheckSpec, Service, ServiceBuilder, ServiceError};
use crate::shared::SharedState;

/// Why a snapshot cannot be turned into a runtime.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// TLS termination is not implemented yet.
    #[error(
        "entry point `{entry_point}` terminates TLS, which this proxy version does not support"
    )]
    EntryPointTls {
        /// The entry point.
        entry_point: String,
    },
    /// An entry point has middlewares, which are not implemented yet.
    #[error(
        "entry point `{entry_point}`: middleware `{middleware}` ({kind}) is not supported by this proxy version"
    )]
    EntryPointMiddleware {
        /// The entry point.
        entry_point: String,
        /// The middleware's qualified name.
        middleware: String,
        /// The middleware's Traefik type.
        kind: &'static str,
    },
    /// A trusted IP of `forwardedHeaders` is neither an IP nor a CIDR.
    #[error(
        "entry point `{entry_point}`: forwardedHeaders.trustedIPs: `{value}` is not an IP or a CIDR"
    )]
    TrustedIp {
        /// The entry point.
        entry_point: String,
        /// The value as written.
        value: String,
    },
    /// A router has middlewares, which are not implemented yet.
    #[error(
        "router `{router}`: middleware `{middleware}` ({kind}) is not supported by this proxy version"
    )]
    RouterMiddleware {
        /// The router.
        router: String,
        /// The middleware's qualified name.
        middleware: String,
        /// The middleware's Traefik type.
        kind: &'static str,
    },
    /// A router's rule does not compile.
    #[error("router `{router}`: rule `{rule}`")]
    Rule {
        /// The router.
        router: String,
        /// The rule as written.
        rule: String,
        /// Why.
        #[source]
        source: MatcherError,
    },
    /// A router's service cannot be built.
    #[error("router `{router}`: service `{service}`")]
    Service {
        /// The router.
        router: String,
        /// The service's qualified name.
        service: String,
        /// Why.
        #[source]
        source: ServiceError,
    },
}

/// Where a matched request goes.
#[derive(Debug)]
pub(crate) struct RouteTarget {
    /// The router's service.
    pub(crate) service: Arc<Service>,
}

/// Which peers may set `X-Forwarded-*` headers.
#[derive(Debug, Default)]
pub(crate) struct ForwardedTrust {
    insecure: bool,
    nets: Vec<IpNet>,
}

impl ForwardedTrust {
    fn new(entry_point: &str, config: Option<&v1::ForwardedHeaders>) -> Result<Self, BuildError> {
        let Some(config) = config else {
            return Ok(Self::default());
        };
        let nets = config
            .trusted_ips
            .iter()
            .map(|value| {
                value
                    .parse::<IpNet>()
                    .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BuildError::TrustedIp {
                        entry_point: entry_point.to_owned(),
                        value: value.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            insecure: config.insecure,
            nets,
        })
    }

    /// True when `ip`'s forwarded headers are kept.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.insecure || self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// One entry point of the runtime.
#[derive(Debug)]
pub(crate) struct EntryPointRuntime {
    /// Address to listen on (the snapshot's, or the local override).
    pub(crate) address: String,
    /// Address actually bound, once the listener is up.
    pub(crate) bound: Option<SocketAddr>,
    /// Forwarded-headers trust.
    pub(crate) trust: ForwardedTrust,
    /// When set, every request is redirected.
    pub(crate) redirect: Option<Redirect>,
    /// The routers attached to this entry point.
    pub(crate) routes: RouterTable<RouteTarget>,
}

/// An immutable, servable compilation of one snapshot.
#[derive(Debug, Default)]
pub struct Runtime {
    version: String,
    entry_points: HashMap<String, EntryPointRuntime>,
}

/// A runtime with what must happen once it is published.
#[derive(Debug)]
pub(crate) struct Built {
    /// The runtime.
    pub(crate) runtime: Runtime,
    /// Health checks its services need.
    pub(crate) checks: Vec<CheckSpec>,
    /// Services it uses (for pruning long-lived state).
    pub(crate) services: Vec<String>,
}

impl Runtime {
    /// The snapshot version this runtime serves (`""` before the first).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The entry point named `name`.
    pub(crate) fn entry_point(&self, name: &str) -> Option<&EntryPointRuntime> {
        self.entry_points.get(name)
    }

    /// Entry points by name.
    pub(crate) fn entry_points(&self) -> &HashMap<String, EntryPointRuntime> {
        &self.entry_points
    }

    /// Records the address an entry point's listener is bound to.
    pub(crate) fn set_bound(&mut self, name: &str, address: SocketAddr) {
        if let Some(entry_point) = self.entry_points.get_mut(name) {
            entry_point.bound = Some(address);
        }
    }

    /// Compiles `resources` (version `version`); `overrides` replace entry
    /// point addresses by name.
    pub(crate) fn build(
        version: &str,
        resources: &Resources,
        shared: &SharedState,
        overrides: &HashMap<String, String>,
    ) -> Result<Built, BuildError> {
        let middleware_kinds: HashMap<&str, &'static str> = resources
            .middlewares
            .iter()
            .map(|m| (m.name.as_str(), middleware_kind(m.kind.as_ref())))
            .collect();
        let kind_of = |name: &str| {
            middleware_kinds
                .get(name)
                .copied()
                .unwrap_or("not in the snapshot")
        };

        let mut entry_points = HashMap::new();
        for ep in &resources.entry_points {
            if ep.tls.is_some() {
                return Err(BuildError::EntryPointTls {
                    entry_point: ep.name.clone(),
                });
            }
            if let Some(middleware) = ep.middlewares.first() {
                return Err(BuildError::EntryPointMiddleware {
                    entry_point: ep.name.clone(),
                    middleware: middleware.clone(),
                    kind: kind_of(middleware),
                });
            }
            let address = overrides.get(&ep.name).unwrap_or(&ep.address).clone();
            entry_points.insert(
                ep.name.clone(),
                (
                    address,
                    ForwardedTrust::new(&ep.name, ep.forwarded_headers.as_ref())?,
                    ep.redirection.as_ref().map(Redirect::new),
                    Vec::new(),
                ),
            );
        }

        let mut services = ServiceBuilder::new(&resources.services, shared);
        for router in &resources.routers {
            if let Some(middleware) = router.middlewares.first() {
                return Err(BuildError::RouterMiddleware {
                    router: router.name.clone(),
                    middleware: middleware.clone(),
                    kind: kind_of(middleware),
                });
            }
            if router.tls.is_some() {
                tracing::warn!(
                    router = %router.name,
                    "router terminates TLS, which this proxy version does not support; it is not served"
                );
                continue;
            }
            let matcher = router
                .matcher
                .as_ref()
                .ok_or(MatcherError::Empty)
                .and_then(Matcher::compile)
                .map_err(|source| BuildError::Rule {
                    router: router.name.clone(),
                    rule: router.rule.clone(),
                    source,
                })?;
            let service = services
                .get(&router.service)
                .map_err(|source| BuildError::Service {
                    router: router.name.clone(),
                    service: router.service.clone(),
                    source,
                })?;
            let route = Arc::new(Route {
                name: router.name.clone(),
                priority: match router.priority {
                    0 => i64::try_from(router.rule.len()).unwrap_or(i64::MAX),
                    explicit => explicit,
                },
                matcher,
                target: RouteTarget { service },
            });
            if router.entry_points.is_empty() {
                for (_, _, _, routes) in entry_points.values_mut() {
                    routes.push(route.clone());
                }
            }
            for name in &router.entry_points {
                match entry_points.get_mut(name) {
                    Some((_, _, _, routes)) => routes.push(route.clone()),
                    None => tracing::warn!(
                        router = %router.name,
                        entry_point = %name,
                        "router names an entry point that is not in the snapshot"
                    ),
                }
            }
        }

        let services_in_use = services.names().map(str::to_owned).collect();
        let runtime = Runtime {
            version: version.to_owned(),
            entry_points: entry_points
                .into_iter()
                .map(|(name, (address, trust, redirect, routes))| {
                    let entry_point = EntryPointRuntime {
                        address,
                        bound: None,
                        trust,
                        redirect,
                        routes: RouterTable::new(routes),
                    };
                    (name, entry_point)
                })
                .collect(),
        };
        Ok(Built {
            runtime,
            checks: services.into_checks(),
            services: services_in_use,
        })
    }
}

/// Traefik's name for a middleware type.
fn middleware_kind(kind: Option<&middleware::Kind>) -> &'static str {
    use middleware::Kind as K;
    match kind {
        None => "no type",
        Some(K::AddPrefix(_)) => "addPrefix",
        Some(K::StripPrefix(_)) => "stripPrefix",
        Some(K::StripPrefixRegex(_)) => "stripPrefixRegex",
        Some(K::ReplacePath(_)) => "replacePath",
        Some(K::ReplacePathRegex(_)) => "replacePathRegex",
        Some(K::BasicAuth(_)) => "basicAuth",
        Some(K::DigestAuth(_)) => "digestAuth",
        Some(K::Headers(_)) => "headers",
        Some(K::RedirectScheme(_)) => "redirectScheme",
        Some(K::RedirectRegex(_)) => "redirectRegex",
        Some(K::IpAllowList(_)) => "ipAllowList",
        Some(K::RateLimit(_)) => "rateLimit",
        Some(K::InFlightReq(_)) => "inFlightReq",
        Some(K::Retry(_)) => "retry",
        Some(K::CircuitBreaker(_)) => "circuitBreaker",
        Some(K::Compress(_)) => "compress",
        Some(K::Buffering(_)) => "buffering",
        Some(K::Chain(_)) => "chain",
        Some(K::Errors(_)) => "errors",
        Some(K::ForwardAuth(_)) => "forwardAuth",
        Some(K::ContentType(_)) => "contentType",
        Some(K::GrpcWeb(_)) => "grpcWeb",
        Some(K::PassTlsClientCert(_)) => "passTLSClientCert",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::UpstreamConfig;
    use sluice_proto::v1::{EntryPoint, Middleware, Router, matcher::Kind};
    use tokio_util::sync::CancellationToken;

    fn resources() -> Resources {
        Resources {
            entry_points: vec![EntryPoint {
                name: "web".into(),
                address: ":80".into(),
                ..Default::default()
            }],
            routers: vec![Router {
                name: "r@file".into(),
                rule: "PathPrefix(`/`)".into(),
                matcher: Some(v1::Matcher {
                    kind: Some(Kind::PathPrefix("/".into())),
                }),
                service: "s@file".into(),
                ..Default::default()
            }],
            services: vec![v1::Service {
                name: "s@file".into(),
                kind: Some(v1::service::Kind::LoadBalancer(v1::LoadBalancer {
                    servers: vec![v1::Server {
                        url: "http://127.0.0.1:1".into(),
                        weight: 1,
                        preserve_path: false,
                    }],
                    pass_host_header: true,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn build(resources: &Resources) -> Result<Built, BuildError> {
        let shared = SharedState::new(
            "n".into(),
            &UpstreamConfig::default(),
            CancellationToken::new(),
        );
        let overrides = HashMap::from([("web".to_owned(), "127.0.0.1:0".to_owned())]);
        Runtime::build("1-a", resources, &shared, &overrides)
    }

    #[test]
    fn builds_entry_points_and_routes() {
        let built = build(&resources()).unwrap();
        let web = built.runtime.entry_point("web").unwrap();
        assert_eq!(web.address, "127.0.0.1:0");
        assert_eq!(web.routes.routes().len(), 1);
        assert_eq!(
            web.routes.routes()[0].priority,
            "PathPrefix(`/`)".len() as i64
        );
        assert_eq!(built.services, ["s@file"]);
    }

    #[test]
    fn middlewares_fail_the_build_by_name() {
        let mut resources = resources();
        resources.routers[0].middlewares = vec!["auth@file".into()];
        resources.middlewares = vec![Middleware {
            name: "auth@file".into(),
            kind: Some(middleware::Kind::BasicAuth(Default::default())),
            ..Default::default()
        }];
        let error = build(&resources).unwrap_err();
        assert_eq!(
            error.to_string(),
            "router `r@file`: middleware `auth@file` (basicAuth) is not supported by this proxy version"
        );
    }

    #[test]
    fn missing_services_fail_the_build() {
        let mut resources = resources();
        resources.routers[0].service = "nope@file".into();
        let error = build(&resources).unwrap_err();
        assert_eq!(
            crate::report::chain(&error),
            "router `r@file`: service `nope@file`: service `nope@file` does not exist"
        );
    }

    #[test]
    fn trust_parses_ips_and_cidrs() {
        let trust = ForwardedTrust::new(
            "web",
            Some(&v1::ForwardedHeaders {
                trusted_ips: vec!["10.0.0.0/8".into(), "192.168.1.1".into()],
                insecure: false,
            }),
        )
        .unwrap();
        assert!(trust.trusts("10.1.2.3".parse().unwrap()));
        assert!(trust.trusts("192.168.1.1".parse().unwrap()));
        assert!(!trust.trusts("192.168.1.2".parse().unwrap()));
        assert!(
            ForwardedTrust::new(
                "web",
                Some(&v1::ForwardedHeaders {
                    trusted_ips: vec!["x".into()],
                    insecure: false
                })
            )
            .is_err()
        );
    }
}
