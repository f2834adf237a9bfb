//! `http.services`: load balancers, and services made of other services.
//!
//! A service that references a missing or broken service is itself broken,
//! transitively, and so is a cycle of references.

use std::collections::{BTreeMap, BTreeSet};

use sluice_proto::v1::{
    self as proto, FailoverService, LoadBalancer, MirrorTarget, MirroringService, Server,
    WeightedService, WeightedTarget, service::Kind,
};

use super::report::{CompileReport, ResourceKindName, shown};
use super::{check_plain_name, qualify};
use crate::dynamic::{HealthCheckConfig, LoadBalancerConfig, ServiceConfig, StickyConfig};
use crate::providers::ProviderUpdate;

const DEFAULT_HEALTH_CHECK_INTERVAL_MS: i64 = 30_000;
const DEFAULT_HEALTH_CHECK_TIMEOUT_MS: i64 = 5_000;

/// Compiles every service; returns those that ship, by qualified name.
pub(super) fn compile_services(
    providers: &BTreeMap<String, ProviderUpdate>,
    report: &mut CompileReport,
) -> BTreeMap<String, proto::Service> {
    let mut services = BTreeMap::new();
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        for (name, config) in &http.services {
            let key = ResourceKindName::service(&update.provider, name);
            report.register(&key, update, shown(config));
            let compiled = check_plain_name(name)
                .and_then(|()| compile_service(config, &update.provider, http));
            match compiled {
                Ok(kind) => {
                    services.insert(
                        key.name.clone(),
                        proto::Service {
                            name: key.name,
                            content_version: String::new(),
                            kind: Some(kind),
                        },
                    );
                }
                Err(message) => report.error(&key, message),
            }
        }
    }
    drop_broken_references(&mut services, report);
    services
}

fn compile_service(
    config: &ServiceConfig,
    provider: &str,
    http: &crate::dynamic::HttpConfig,
) -> Result<Kind, String> {
    let set: Vec<&str> = [
        ("loadBalancer", config.load_balancer.is_some()),
        ("weighted", config.weighted.is_some()),
        ("mirroring", config.mirroring.is_some()),
        ("failover", config.failover.is_some()),
    ]
    .into_iter()
    .filter_map(|(kind, present)| present.then_some(kind))
    .collect();
    match set.as_slice() {
        [] => {
            return Err(
                "no service type set (expected one of loadBalancer, weighted, mirroring, failover)"
                    .to_owned(),
            );
        }
        [_] => {}
        several => {
            return Err(format!(
                "several service types set: {}",
                several
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(lb) = &config.load_balancer {
        return compile_load_balancer(lb, provider, http).map(Kind::LoadBalancer);
    }
    if let Some(weighted) = &config.weighted {
        let services = weighted
            .services
            .iter()
            .enumerate()
            .map(|(index, target)| {
                if target.name.is_empty() {
                    return Err(format!("weighted.services[{index}].name is empty"));
                }
                Ok(WeightedTarget {
                    name: qualify(&target.name, provider),
                    weight: target.weight.unwrap_or(1),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if services.is_empty() {
            return Err("weighted.services is empty".to_owned());
        }
        return Ok(Kind::Weighted(WeightedService {
            services,
            sticky: weighted.sticky.as_ref().map(sticky),
            health_check: None,
        }));
    }
    if let Some(mirroring) = &config.mirroring {
        if mirroring.service.is_empty() {
            return Err("mirroring.service is empty".to_owned());
        }
        let mirrors = mirroring
            .mirrors
            .iter()
            .enumerate()
            .map(|(index, mirror)| {
                if mirror.percent > 100 {
                    return Err(format!(
                        "mirroring.mirrors[{index}].percent `{}` is over 100",
                        mirror.percent
                    ));
                }
                Ok(MirrorTarget {
                    name: qualify(&mirror.name, provider),
                    percent: mirror.percent,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Kind::Mirroring(MirroringService {
            service: qualify(&mirroring.service, provider),
            mirror_body: mirroring.mirror_body.unwrap_or(true),
            max_body_size: mirroring.max_body_size.unwrap_or(-1),
            mirrors,
        }));
    }
    let failover = config.failover.as_ref().expect("exactly one kind is set");
    if failover.service.is_empty() || failover.fallback.is_empty() {
        return Err("failover needs both `service` and `fallback`".to_owned());
    }
    Ok(Kind::Failover(FailoverService {
        service: qualify(&failover.service, provider),
        fallback: qualify(&failover.fallback, provider),
    }))
}

fn compile_load_balancer(
    config: &LoadBalancerConfig,
    provider: &str,
    http: &crate::dynamic::HttpConfig,
) -> Result<LoadBalancer, String> {
    let servers = config
        .servers
        .iter()
        .enumerate()
        .map(|(index, server)| {
            check_server_url(&server.url).map_err(|reason| {
                format!(
                    "loadBalancer.servers[{index}].url `{}`: {reason}",
                    server.url
                )
            })?;
            Ok(Server {
                url: server.url.clone(),
                weight: server.weight.unwrap_or(1),
                preserve_path: server.preserve_path,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let servers_transport = if config.servers_transport.is_empty() {
        String::new()
    } else {
        let local = config
            .servers_transport
            .split('@')
            .next()
            .unwrap_or_default();
        if !config.servers_transport.contains('@') && !http.servers_transports.contains_key(local) {
            return Err(format!(
                "loadBalancer.serversTransport `{}` does not exist",
                config.servers_transport
            ));
        }
        qualify(&config.servers_transport, provider)
    };
    Ok(LoadBalancer {
        servers,
        pass_host_header: config.pass_host_header.unwrap_or(true),
        health_check: config.health_check.as_ref().map(health_check).transpose()?,
        sticky: config.sticky.as_ref().map(sticky),
        servers_transport,
        flush_interval_ms: config
            .response_forwarding
            .as_ref()
            .and_then(|forwarding| forwarding.flush_interval)
            .map_or(100, |interval| interval.as_millis()),
    })
}

/// Server URLs need a scheme the proxy speaks and a host.
fn check_server_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|error| format!("not a URL ({error})"))?;
    match uri.scheme_str() {
        Some("http" | "https" | "h2c") => {}
        Some(other) => {
            return Err(format!(
                "unsupported scheme `{other}` (expected http, https or h2c)"
            ));
        }
        None => return Err("missing scheme (expected http://, https:// or h2c://)".to_owned()),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err("missing host".to_owned()),
    }
}

fn health_check(config: &HealthCheckConfig) -> Result<proto::HealthCheck, String> {
    let mode = if config.mode.is_empty() {
        "http"
    } else {
        config.mode.as_str()
    };
    if !matches!(mode, "http" | "grpc") {
        return Err(format!(
            "loadBalancer.healthCheck.mode `{mode}`: expected `http` or `grpc`"
        ));
    }
    if mode == "http" && !config.path.starts_with('/') {
        return Err(format!(
            "loadBalancer.healthCheck.path `{}`: must start with `/`",
            config.path
        ));
    }
    let interval_ms = config
        .interval
        .map_or(DEFAULT_HEALTH_CHECK_INTERVAL_MS, |interval| {
            interval.as_millis()
        });
    if interval_ms <= 0 {
        return Err("loadBalancer.healthCheck.interval must be positive".to_owned());
    }
    if config.status != 0 && !(100..=599).contains(&config.status) {
        return Err(format!(
            "loadBalancer.healthCheck.status `{}`: not an HTTP status code",
            config.status
        ));
    }
    Ok(proto::HealthCheck {
        scheme: config.scheme.clone(),
        mode: mode.to_owned(),
        path: config.path.clone(),
        method: if config.method.is_empty() {
            "GET".to_owned()
        } else {
            config.method.to_ascii_uppercase()
        },
        status: config.status,
        port: config.port,
        interval_ms,
        unhealthy_interval_ms: config
            .unhealthy_interval
            .map_or(interval_ms, |interval| interval.as_millis()),
        timeout_ms: config
            .timeout
            .map_or(DEFAULT_HEALTH_CHECK_TIMEOUT_MS, |timeout| {
                timeout.as_millis()
            }),
        hostname: config.hostname.clone(),
        follow_redirects: config.follow_redirects.unwrap_or(true),
        headers: config.headers.clone(),
    })
}

fn sticky(config: &StickyConfig) -> proto::Sticky {
    proto::Sticky {
        cookie: config.cookie.as_ref().map(|cookie| proto::StickyCookie {
            name: cookie.name.clone(),
            secure: cookie.secure,
            http_only: cookie.http_only,
            same_site: cookie.same_site.clone(),
            max_age: cookie.max_age,
            path: cookie.path.clone().unwrap_or_else(|| "/".to_owned()),
            domain: cookie.domain.clone(),
        }),
    }
}

/// The services a service sends traffic to.
fn children(service: &proto::Service) -> Vec<&str> {
    match &service.kind {
        Some(Kind::Weighted(weighted)) => {
            weighted.services.iter().map(|t| t.name.as_str()).collect()
        }
        Some(Kind::Mirroring(mirroring)) => std::iter::once(mirroring.service.as_str())
            .chain(mirroring.mirrors.iter().map(|m| m.name.as_str()))
            .collect(),
        Some(Kind::Failover(failover)) => {
            vec![failover.service.as_str(), failover.fallback.as_str()]
        }
        _ => Vec::new(),
    }
}

/// Removes services in reference cycles, then, until none is left, services
/// whose references are missing or broken.
fn drop_broken_references(
    services: &mut BTreeMap<String, proto::Service>,
    report: &mut CompileReport,
) {
    let cyclic: Vec<String> = services
        .keys()
        .filter(|start| {
            let mut stack: Vec<&str> = children(&services[*start]);
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if next == start.as_str() {
                    return true;
                }
                if seen.insert(next)
                    && let Some(service) = services.get(next)
                {
                    stack.extend(children(service));
                }
            }
            false
        })
        .cloned()
        .collect();
    for name in cyclic {
        services.remove(&name);
        report.error(
            &ResourceKindName::qualified("service", &name),
            "references itself through other services".to_owned(),
        );
    }
    loop {
        let broken: Vec<(String, String)> = services
            .values()
            .filter_map(|service| {
                children(service)
                    .into_iter()
                    .find(|child| !services.contains_key(*child))
                    .map(|child| {
                        (
                            service.name.clone(),
                            format!(
                                "references service `{child}`, which does not exist or is broken"
                            ),
                        )
                    })
            })
            .collect();
        if broken.is_empty() {
            break;
        }
        for (name, message) in broken {
            services.remove(&name);
            report.error(&ResourceKindName::qualified("service", &name), message);
        }
    }
}
