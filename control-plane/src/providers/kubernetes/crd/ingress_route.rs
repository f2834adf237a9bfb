//! IngressRoute to routers (one per route) and the services they use.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use super::{Context, KubernetesServiceRef, Object, namespaced};
use crate::dynamic::{
    DomainConfig, HealthCheckConfig, ResponseForwardingConfig, RouterConfig, RouterTlsConfig,
    ServiceConfig, StickyConfig, WeightedConfig, WeightedServiceRef,
};
use crate::providers::kubernetes::endpoints::PortRef;
use crate::providers::kubernetes::output::Output;
use crate::providers::kubernetes::secrets;

/// `spec` of an IngressRoute.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IngressRouteSpec {
    #[serde(default)]
    entry_points: Vec<String>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    tls: Option<Tls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Route {
    #[serde(rename = "match")]
    rule: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    syntax: Option<String>,
    #[serde(default)]
    middlewares: Vec<Reference>,
    #[serde(default)]
    services: Vec<ServiceRef>,
    #[serde(default)]
    observability: Option<serde_json::Value>,
}

/// A reference to another resource by name and namespace.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Reference {
    pub(super) name: String,
    #[serde(default)]
    pub(super) namespace: String,
}

/// A service of a route or of a TraefikService. Traefik's `nativeLB` and
/// `nodePortLB` are accepted and have no effect: Sluice always balances
/// over Pods.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServiceRef {
    pub(super) name: String,
    #[serde(default)]
    pub(super) namespace: String,
    /// `Service` (default) or `TraefikService`.
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) port: Option<IntOrString>,
    #[serde(default)]
    pub(super) weight: Option<u32>,
    #[serde(default)]
    pub(super) pass_host_header: Option<bool>,
    #[serde(default)]
    pub(super) scheme: Option<String>,
    #[serde(default)]
    pub(super) servers_transport: String,
    #[serde(default)]
    pub(super) sticky: Option<StickyConfig>,
    #[serde(default)]
    pub(super) strategy: Option<String>,
    #[serde(default)]
    pub(super) response_forwarding: Option<ResponseForwardingConfig>,
    #[serde(default)]
    pub(super) health_check: Option<HealthCheckConfig>,
    /// For mirrors only.
    #[serde(default)]
    pub(super) percent: Option<u32>,
}

/// `spec.tls`; Traefik's `store` is accepted (there is one store).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    #[serde(default)]
    secret_name: String,
    #[serde(default)]
    options: Option<Reference>,
    #[serde(default)]
    cert_resolver: String,
    #[serde(default)]
    domains: Vec<DomainConfig>,
}

pub(super) fn build(context: &Context<'_>, object: &Object<'_>, output: &mut Output) {
    let spec: IngressRouteSpec = match object.spec() {
        Ok(spec) => spec,
        Err((key, message)) => return output.error(&object.location, Some(key), message),
    };
    let tls = match &spec.tls {
        Some(tls) => match router_tls(context, object, tls, output) {
            Ok(tls) => Some(tls),
            Err((key, message)) => return output.error(&object.location, Some(key), message),
        },
        None => None,
    };
    for (index, route) in spec.routes.iter().enumerate() {
        let key = format!("spec.routes[{index}]");
        if route.kind.as_deref().is_some_and(|kind| kind != "Rule") {
            output.error(
                &object.location,
                Some(format!("{key}.kind")),
                "only `Rule` is supported".to_owned(),
            );
            continue;
        }
        let router = format!("{}-{index}", object.model_name());
        let mut middlewares = Vec::new();
        for (position, reference) in route.middlewares.iter().enumerate() {
            match middleware_name(context, object, reference) {
                Ok(name) => middlewares.push(name),
                Err(message) => {
                    output.error(
                        &object.location,
                        Some(format!("{key}.middlewares[{position}]")),
                        message,
                    );
                }
            }
        }
        if middlewares.len() != route.middlewares.len() {
            continue;
        }
        let service = match route_service(context, object, &router, &route.services, output) {
            Ok(Some(service)) => service,
            Ok(None) => continue,
            Err((position, message)) => {
                output.error(
                    &object.location,
                    Some(format!("{key}.services[{position}]")),
                    message,
                );
                continue;
            }
        };
        output.router(
            router,
            RouterConfig {
                entry_points: spec.entry_points.clone(),
                middlewares,
                service,
                rule: route.rule.clone(),
                rule_syntax: route.syntax.clone(),
                priority: route.priority,
                tls: tls.clone(),
                observability: route.observability.clone(),
            },
            &object.origin,
        );
    }
}

/// `<namespace>-<name>` of a Middleware, or a `name@provider` as is.
fn middleware_name(
    context: &Context<'_>,
    object: &Object<'_>,
    reference: &Reference,
) -> Result<String, String> {
    if reference.name.contains('@') {
        return Ok(reference.name.clone());
    }
    let namespace =
        context.namespace_of(object, &reference.namespace, "Middleware", &reference.name)?;
    Ok(namespaced(&namespace, &reference.name))
}

/// The service of a route: its only service, or a weighted service of
/// all of them named after the router. `Ok(None)` when no service has a
/// ready endpoint; `Err((index, message))` names the service at fault.
fn route_service(
    context: &Context<'_>,
    object: &Object<'_>,
    router: &str,
    services: &[ServiceRef],
    output: &mut Output,
) -> Result<Option<String>, (usize, String)> {
    let mut weighted = Vec::new();
    for (index, service) in services.iter().enumerate() {
        if let Some(name) =
            service_name(context, object, service, output).map_err(|m| (index, m))?
        {
            weighted.push(WeightedServiceRef {
                name,
                weight: service.weight,
            });
        }
    }
    match weighted.len() {
        0 => Ok(None),
        1 if services.len() == 1 => Ok(weighted.pop().map(|service| service.name)),
        _ => {
            let config = ServiceConfig {
                weighted: Some(WeightedConfig {
                    services: weighted,
                    ..WeightedConfig::default()
                }),
                ..ServiceConfig::default()
            };
            Ok(Some(output.service(
                router.to_owned(),
                router.to_owned(),
                config,
                &object.origin,
            )))
        }
    }
}

/// The model name of one service reference, adding a load balancer for a
/// Kubernetes Service. `Ok(None)` when it has no ready endpoint.
pub(super) fn service_name(
    context: &Context<'_>,
    object: &Object<'_>,
    service: &ServiceRef,
    output: &mut Output,
) -> Result<Option<String>, String> {
    match service.kind.as_deref().unwrap_or("Service") {
        "TraefikService" => {
            if service.name.contains('@') {
                return Ok(Some(service.name.clone()));
            }
            let namespace = context.namespace_of(
                object,
                &service.namespace,
                "TraefikService",
                &service.name,
            )?;
            Ok(Some(namespaced(&namespace, &service.name)))
        }
        "Service" => {
            let namespace =
                context.namespace_of(object, &service.namespace, "Service", &service.name)?;
            let port = service
                .port
                .as_ref()
                .map(PortRef::from_int_or_string)
                .ok_or_else(|| "`port` is required for a Service".to_owned())?;
            let servers_transport = match service.servers_transport.as_str() {
                "" => String::new(),
                transport if transport.contains('@') => transport.to_owned(),
                transport => namespaced(&namespace, transport),
            };
            context.kubernetes_service(
                output,
                &KubernetesServiceRef {
                    namespace: &namespace,
                    name: &service.name,
                    port: &port,
                    scheme: service.scheme.as_deref(),
                    pass_host_header: service.pass_host_header,
                    servers_transport: &servers_transport,
                    sticky: service.sticky.as_ref(),
                    strategy: service.strategy.as_ref(),
                    health_check: service.health_check.as_ref(),
                    response_forwarding: service.response_forwarding.as_ref(),
                },
                &object.origin,
            )
        }
        other => Err(format!(
            "kind `{other}` is not `Service` or `TraefikService`"
        )),
    }
}

/// The router TLS of `spec.tls`, its Secret's certificate added.
fn router_tls(
    context: &Context<'_>,
    object: &Object<'_>,
    tls: &Tls,
    output: &mut Output,
) -> Result<RouterTlsConfig, (String, String)> {
    if !tls.secret_name.is_empty() {
        let certificate =
            secrets::tls_certificate(context.cluster, &object.namespace, &tls.secret_name)
                .map_err(|message| ("spec.tls.secretName".to_owned(), message))?;
        output.certificate(
            format!("{}/{}", object.namespace, tls.secret_name),
            certificate,
        );
    }
    let options = match &tls.options {
        Some(reference) if reference.name.contains('@') => reference.name.clone(),
        Some(reference) => {
            let namespace = context
                .namespace_of(object, &reference.namespace, "TLSOption", &reference.name)
                .map_err(|message| ("spec.tls.options".to_owned(), message))?;
            namespaced(&namespace, &reference.name)
        }
        None => String::new(),
    };
    Ok(RouterTlsConfig {
        options,
        cert_resolver: tls.cert_resolver.clone(),
        domains: tls.domains.clone(),
    })
}
