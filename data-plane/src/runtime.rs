//! The immutable runtime the proxy serves: per entry point, its routing
//! table, forwarded-headers trust and redirection; services built once and
//! shared by the routers that use them.
//!
//! A runtime is built from the full resource set of a snapshot and published
//! with `ArcSwap::store`; requests load it when they start and finish on it.
//! Building is all-or-nothing: a snapshot this proxy cannot serve faithfully
//! (middlewares it cannot build or does not implement, services referencing
//! missing services or each other in a loop, unusable server URLs, health
//! checks, certificates or TLS options) fails the build with an error naming
//! the resource, which the snapshot client NACKs while the previous runtime
//! keeps serving.
//!
//! A router compiles to a [`RouteTarget`]: its service and its middleware
//! chain, entry point middlewares first. A router on entry points with
//! different middlewares gets one route per distinct list. A router with
//! `tls` (its own, or its entry point's `http.tls`) goes to the entry
//! point's TLS table and is only served on TLS connections; the others only
//! on plain ones, as in Traefik.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use sluice_proto::v1;

use crate::matchers::MatcherCache;
use crate::middleware::{Chain, MiddlewareError, Middlewares};
use crate::redirect::Redirect;
use crate::router::{Matcher, MatcherError, Route, RouterTable, default_priority};
use crate::service::{CheckSpec, Service, ServiceBuilder, ServiceError};
use crate::shared::{SharedState, StateKey};
use crate::state::ResourceSet;
use crate::tls::{CertificateSummary, EntryPointTls, TlsBuilder, TlsError, claim_host, rule_hosts};

/// Why a snapshot cannot be turned into a runtime.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Certificates or TLS options cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An entry point's TLS cannot be set up.
    #[error("entry point `{entry_point}`")]
    EntryPointTls {
        /// The entry point.
        entry_point: String,
        /// Why.
        #[source]
        source: TlsError,
    },
    /// An entry point's middlewares cannot be served.
    #[error("entry point `{entry_point}`")]
    EntryPointMiddleware {
        /// The entry point.
        entry_point: String,
        /// Why.
        #[source]
        source: MiddlewareError,
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
    /// A router's middlewares cannot be served.
    #[error("router `{router}`")]
    RouterMiddleware {
        /// The router.
        router: String,
        /// Why.
        #[source]
        source: MiddlewareError,
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
    /// Entry point then router middlewares.
    pub(crate) chain: Chain,
    /// No middleware, and the service forwards straight to `http://`
    /// servers: a bodiless HTTP/1.1 request may take `h1::direct`.
    pub(crate) direct: bool,
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
    /// The routers served on plain connections.
    pub(crate) routes: RouterTable<RouteTarget>,
    /// The routers served on TLS connections.
    pub(crate) tls_routes: RouterTable<RouteTarget>,
    /// Set when some router is served over TLS here.
    pub(crate) tls: Option<EntryPointTls>,
}

/// An entry point while its runtime is built.
struct EntryPointBuild<'a> {
    address: String,
    trust: ForwardedTrust,
    redirect: Option<Redirect>,
    /// `http.tls` of the entry point: every router on it terminates TLS.
    tls: Option<&'a v1::RouterTls>,
    routes: Vec<Arc<Route<RouteTarget>>>,
    tls_routes: Vec<Arc<Route<RouteTarget>>>,
    /// TLS options wanted by the hosts of TLS routers.
    tls_hosts: HashMap<String, String>,
}

/// An immutable, servable compilation of one snapshot.
#[derive(Debug, Default)]
pub struct Runtime {
    version: String,
    entry_points: HashMap<String, EntryPointRuntime>,
    certificates: Vec<CertificateSummary>,
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
    /// Middleware state it uses (for pruning the rest).
    pub(crate) middleware_states: Vec<StateKey>,
    /// Certificates it uses (cache keys, for pruning the rest).
    pub(crate) certificates: Vec<String>,
    /// Servers transports it uses (`name#version`, for pruning the rest).
    pub(crate) transports: Vec<String>,
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

    /// The certificates served, for the admin endpoint.
    pub(crate) fn certificates(&self) -> &[CertificateSummary] {
        &self.certificates
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
    /// point addresses by name; `matchers` keeps unchanged routers' compiled
    /// rules from earlier builds.
    pub(crate) fn build(
        version: &str,
        resources: &ResourceSet<'_>,
        shared: &SharedState,
        overrides: &HashMap<String, String>,
        matchers: &mut MatcherCache,
    ) -> Result<Built, BuildError> {
        matchers.start_build();
        let mut middlewares =
            Middlewares::new(resources.middlewares.iter().copied(), &shared.middlewares);
        let mut services = ServiceBuilder::new(resources.services.iter().copied(), shared)
            .with_transports(resources.servers_transports.iter().copied());
        let mut tls = TlsBuilder::new(resources, &shared.certificates)?;
        let mut entry_points: HashMap<String, EntryPointBuild<'_>> = HashMap::new();
        let mut entry_point_middlewares: HashMap<&str, &[String]> = HashMap::new();
        for &ep in &resources.entry_points {
            // Checked here so that an error names the entry point, not a router.
            middlewares
                .chain(&[&ep.middlewares], &mut services)
                .map_err(|source| BuildError::EntryPointMiddleware {
                    entry_point: ep.name.clone(),
                    source,
                })?;
            entry_point_middlewares.insert(&ep.name, &ep.middlewares);
            let address = overrides.get(&ep.name).unwrap_or(&ep.address).clone();
            entry_points.insert(
                ep.name.clone(),
                EntryPointBuild {
                    address,
                    trust: ForwardedTrust::new(&ep.name, ep.forwarded_headers.as_ref())?,
                    redirect: ep.redirection.as_ref().map(Redirect::new),
                    tls: ep.tls.as_ref(),
                    routes: Vec::new(),
                    tls_routes: Vec::new(),
                    tls_hosts: HashMap::new(),
                },
            );
        }

        for &router in &resources.routers {
            let matcher = matchers.get(router)?;
            let service = services
                .get(&router.service)
                .map_err(|source| BuildError::Service {
                    router: router.name.clone(),
                    service: router.service.clone(),
                    source,
                })?;
            let names: Vec<&str> = if router.entry_points.is_empty() {
                let mut all: Vec<&str> = entry_point_middlewares.keys().copied().collect();
                all.sort_unstable();
                all
            } else {
                router.entry_points.iter().map(String::as_str).collect()
            };
            // One route per distinct list of entry point middlewares.
            let mut routes: Vec<(&[String], Arc<Route<RouteTarget>>)> = Vec::new();
            for name in names {
                let Some(entry_point) = entry_points.get_mut(name) else {
                    tracing::warn!(
                        router = %router.name,
                        entry_point = %name,
                        "router names an entry point that is not in the snapshot"
                    );
                    continue;
                };
                let ep_middlewares = entry_point_middlewares.get(name).copied().unwrap_or(&[]);
                let table = match router.tls.as_ref().or(entry_point.tls) {
                    Some(router_tls) => {
                        for host in router.matcher.as_ref().map(rule_hosts).unwrap_or_default() {
                            claim_host(&mut entry_point.tls_hosts, host, &router_tls.options);
                        }
                        &mut entry_point.tls_routes
                    }
                    None => &mut entry_point.routes,
                };
                if let Some((_, route)) = routes.iter().find(|(list, _)| *list == ep_middlewares) {
                    table.push(route.clone());
                    continue;
                }
                let chain = middlewares
                    .chain(&[ep_middlewares, &router.middlewares], &mut services)
                    .map_err(|source| BuildError::RouterMiddleware {
                        router: router.name.clone(),
                        source,
                    })?;
                let route = Arc::new(Route {
                    name: router.name.clone(),
                    priority: default_priority(router.priority, &router.rule),
                    matcher: Arc::clone(&matcher),
                    target: RouteTarget {
                        direct: chain.is_empty() && service.forwards_directly(),
                        service: service.clone(),
                        chain,
                    },
                });
                table.push(route.clone());
                routes.push((ep_middlewares, route));
            }
        }

        let services_in_use = services.names().map(str::to_owned).collect();
        let transports = services.transports_in_use().to_vec();
        let mut runtime_entry_points = HashMap::with_capacity(entry_points.len());
        for (name, ep) in entry_points {
            let ep_tls = if ep.tls_routes.is_empty() && ep.tls.is_none() {
                None
            } else {
                Some(tls.entry_point(&ep.tls_hosts).map_err(|source| {
                    BuildError::EntryPointTls {
                        entry_point: name.clone(),
                        source,
                    }
                })?)
            };
            runtime_entry_points.insert(
                name,
                EntryPointRuntime {
                    address: ep.address,
                    bound: None,
                    trust: ep.trust,
                    redirect: ep.redirect,
                    routes: RouterTable::new(ep.routes),
                    tls_routes: RouterTable::new(ep.tls_routes),
                    tls: ep_tls,
                },
            );
        }
        matchers.finish_build();
        let runtime = Runtime {
            version: version.to_owned(),
            entry_points: runtime_entry_points,
            certificates: resources.certificates.iter().map(|&c| c.into()).collect(),
        };
        Ok(Built {
            runtime,
            checks: services.into_checks(),
            services: services_in_use,
            middleware_states: middlewares.into_state_keys(),
            certificates: tls.into_certificates_in_use(),
            transports,
        })
    }
}

/// The compiled matcher of `router`; the error names the router and its rule.
pub(crate) fn router_matcher(router: &v1::Router) -> Result<Matcher, BuildError> {
    router
        .matcher
        .as_ref()
        .ok_or(MatcherError::Empty)
        .and_then(Matcher::compile)
        .map_err(|source| BuildError::Rule {
            router: router.name.clone(),
            rule: router.rule.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_tests::{middleware, service};
    use crate::service::UpstreamConfig;
    use sluice_proto::v1::{EntryPoint, Resources, Router, matcher::Kind, middleware};
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
            services: vec![service("s@file", "http://127.0.0.1:1", None)],
            ..Default::default()
        }
    }

    fn build(resources: &Resources) -> Result<Built, BuildError> {
        build_with(resources, &mut MatcherCache::default())
    }

    fn build_with(resources: &Resources, matchers: &mut MatcherCache) -> Result<Built, BuildError> {
        let shared = SharedState::new(
            "n".into(),
            &UpstreamConfig::default(),
            CancellationToken::new(),
        );
        let overrides = HashMap::from([("web".to_owned(), "127.0.0.1:0".to_owned())]);
        Runtime::build(
            "1-a",
            &ResourceSet::from(resources),
            &shared,
            &overrides,
            matchers,
        )
    }

    #[test]
    fn the_next_build_shares_an_unchanged_routers_matcher() {
        let mut resources = resources();
        resources.routers[0].content_version = "1".into();
        let mut matchers = MatcherCache::default();
        let first = build_with(&resources, &mut matchers).unwrap();
        let second = build_with(&resources, &mut matchers).unwrap();
        let matcher = |built: &Built| {
            let routes = built.runtime.entry_point("web").unwrap().routes.routes();
            Arc::clone(&routes[0].matcher)
        };
        assert!(Arc::ptr_eq(&matcher(&first), &matcher(&second)));
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
    fn unbuildable_middlewares_fail_the_build_by_name() {
        let mut resources = resources();
        resources.routers[0].middlewares = vec!["auth@file".into()];
        resources.middlewares = vec![middleware(
            "auth@file",
            middleware::Kind::BasicAuth(v1::BasicAuth {
                users: vec![v1::HtpasswdUser {
                    user: "bob".into(),
                    hash: "$apr1$x".into(),
                }],
                ..Default::default()
            }),
        )];
        let error = build(&resources).unwrap_err();
        assert_eq!(
            crate::report::chain(&error),
            "router `r@file`: middleware `auth@file` (basicAuth): user `bob`: malformed $apr1$ hash"
        );

        resources.routers[0].middlewares = vec!["missing@file".into()];
        let error = build(&resources).unwrap_err();
        assert_eq!(
            crate::report::chain(&error),
            "router `r@file`: middleware `missing@file` does not exist"
        );
    }

    #[test]
    fn entry_point_middlewares_fail_the_build_by_entry_point() {
        let mut resources = resources();
        resources.entry_points[0].middlewares = vec!["c@file".into()];
        resources.middlewares = vec![
            middleware(
                "c@file",
                middleware::Kind::Chain(v1::Chain {
                    middlewares: vec!["d@file".into()],
                }),
            ),
            middleware(
                "d@file",
                middleware::Kind::Chain(v1::Chain {
                    middlewares: vec!["c@file".into()],
                }),
            ),
        ];
        let error = build(&resources).unwrap_err();
        assert_eq!(
            crate::report::chain(&error),
            "entry point `web`: chain middlewares include each other: c@file -> d@file -> c@file"
        );
    }

    #[test]
    fn chains_put_entry_point_middlewares_first_and_expand_chains() {
        let mut resources = resources();
        resources.entry_points.push(EntryPoint {
            name: "other".into(),
            address: ":81".into(),
            ..Default::default()
        });
        resources.entry_points[0].middlewares = vec!["ep@file".into()];
        resources.routers[0].middlewares = vec!["c@file".into()];
        let prefix = |p: &str| middleware::Kind::AddPrefix(v1::AddPrefix { prefix: p.into() });
        resources.middlewares = vec![
            middleware("ep@file", prefix("/ep")),
            middleware("a@file", prefix("/a")),
            middleware("b@file", prefix("/b")),
            middleware(
                "c@file",
                middleware::Kind::Chain(v1::Chain {
                    middlewares: vec!["a@file".into(), "b@file".into(), "a@file".into()],
                }),
            ),
        ];
        let built = build(&resources).unwrap();
        // The prefixes of the route's chain, in order.
        let prefixes = |ep: &str| {
            let table = &built.runtime.entry_point(ep).unwrap().routes;
            let debug = format!("{:?}", table.routes()[0].target.chain);
            debug
                .split("prefix: \"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(prefixes("web"), ["/ep", "/a", "/b", "/a"]);
        assert_eq!(prefixes("other"), ["/a", "/b", "/a"]);
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
