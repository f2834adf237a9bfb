//! `networking.k8s.io/v1` Ingresses to routers, services and generated
//! middlewares, the way Traefik's `kubernetes` provider does it.
//!
//! - Accepted Ingresses: with `ingressClass` set, those of that class
//!   (annotation `kubernetes.io/ingress.class`, or `spec.ingressClassName`
//!   naming an IngressClass of controller `traefik.io/ingress-controller`
//!   or `sluice.dev/ingress-controller`); without it, those without a
//!   class, with the annotation `traefik` or `sluice`, or with an
//!   IngressClass of those controllers.
//! - One router per rule path, named
//!   `<namespace>-<ingress>-<host>-<path>` normalized: ``Host(`h`)`` (or
//!   `HostRegexp` for `*.h`) and, by `pathType`, ``Path(`p`)`` (Exact),
//!   ``PathPrefix(`p`)`` (Prefix), or the `router.pathmatcher` annotation's
//!   matcher (ImplementationSpecific, default `PathPrefix`). ingress-nginx
//!   regex paths become `PathRegexp`. `defaultBackend` is a catch-all
//!   router of the lowest priority.
//! - One service per backend, `<namespace>-<service>-<port>`, whose servers
//!   are the ready Pod addresses of the Service's EndpointSlices.
//! - Generated middlewares are named after their router:
//!   `<router>-basic-auth`, `<router>-request-modifier`, `<router>-rewrite`.
//! - `spec.tls` Secrets become certificates and make the routers TLS.
//!
//! An Ingress whose annotations or auth Secret are wrong is left out whole
//! (never served without its authentication); a backend that cannot be
//! resolved leaves out its path alone.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use kube::ResourceExt;

use super::annotations::{self, IngressAnnotations, Rewrite, ServiceAnnotations};
use super::cluster::Cluster;
use super::endpoints::{self, PortRef};
use super::names::{location, normalize, origin};
use super::output::Output;
use super::{Built, secrets};
use crate::config::KubernetesIngressConfig;
use crate::dynamic::{
    BasicAuthConfig, LoadBalancerConfig, MiddlewareConfig, ReplacePathRegexConfig, RouterConfig,
    RouterTlsConfig, ServerConfig, ServiceConfig, StickyConfig,
};

/// The legacy class annotation.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// IngressClass controllers served by Sluice.
const CONTROLLERS: [&str; 2] = [
    "traefik.io/ingress-controller",
    "sluice.dev/ingress-controller",
];

/// Class annotation values accepted when no `ingressClass` is configured.
const DEFAULT_CLASSES: [&str; 2] = ["traefik", "sluice"];

/// Priority of `defaultBackend` routers: below any rule's length.
const DEFAULT_BACKEND_PRIORITY: i64 = 1;

/// Builds the `kubernetes` provider's configuration.
pub(super) fn build(cluster: &Cluster, config: &KubernetesIngressConfig) -> Built {
    let mut output = Output::default();
    for ingress in accepted(cluster, config) {
        build_ingress(cluster, config, ingress, &mut output);
    }
    output.finish()
}

/// The Ingresses this provider serves.
pub(super) fn accepted<'a>(
    cluster: &'a Cluster,
    config: &KubernetesIngressConfig,
) -> impl Iterator<Item = &'a Ingress> {
    let ours: BTreeSet<String> = cluster
        .ingress_classes
        .iter()
        .filter(|class| {
            class
                .spec
                .as_ref()
                .and_then(|spec| spec.controller.as_deref())
                .is_some_and(|controller| CONTROLLERS.contains(&controller))
        })
        .map(|class| class.name_any())
        .collect();
    let wanted = config.ingress_class.clone();
    cluster
        .ingresses
        .iter()
        .map(|i| &**i)
        .filter(move |ingress| {
            let annotation = ingress
                .annotations()
                .get(CLASS_ANNOTATION)
                .map(String::as_str);
            let class_name = ingress
                .spec
                .as_ref()
                .and_then(|spec| spec.ingress_class_name.as_deref());
            if !wanted.is_empty() {
                return annotation == Some(wanted.as_str())
                    || (class_name == Some(wanted.as_str()) && ours.contains(&wanted));
            }
            match (annotation, class_name) {
                (Some(annotation), _) => DEFAULT_CLASSES.contains(&annotation),
                (None, Some(class)) => ours.contains(class),
                (None, None) => true,
            }
        })
}

/// What every router of one Ingress shares.
struct IngressContext<'a> {
    namespace: String,
    name: String,
    location: String,
    origin: String,
    annotations: IngressAnnotations,
    /// htpasswd users of the auth annotations, read from their Secret.
    users: Option<Vec<String>>,
    tls: bool,
    config: &'a KubernetesIngressConfig,
}

fn build_ingress(
    cluster: &Cluster,
    config: &KubernetesIngressConfig,
    ingress: &Ingress,
    output: &mut Output,
) {
    let namespace = ingress.namespace().unwrap_or_default();
    let name = ingress.name_any();
    let location = location("Ingress", &namespace, &name);
    let parsed = match annotations::parse(ingress.annotations(), &namespace) {
        Ok(parsed) => parsed,
        Err(error) => return output.error(&location, Some(error.key), error.message),
    };
    let users = match &parsed.basic_auth {
        Some(auth) => match secrets::htpasswd_users(cluster, &auth.namespace, &auth.name) {
            Ok(users) => Some(users),
            Err(message) => return output.error(&location, Some(auth.key.clone()), message),
        },
        None => None,
    };
    let spec = ingress.spec.clone().unwrap_or_default();
    let tls_entries = spec.tls.unwrap_or_default();
    for (index, tls) in tls_entries.iter().enumerate() {
        let Some(secret) = &tls.secret_name else {
            continue;
        };
        match secrets::tls_certificate(cluster, &namespace, secret) {
            Ok(certificate) => output.certificate(origin(&namespace, secret), certificate),
            Err(message) => output.error(
                &location,
                Some(format!("spec.tls[{index}].secretName")),
                message,
            ),
        }
    }
    let context = IngressContext {
        origin: origin(&namespace, &name),
        tls: parsed.tls || !tls_entries.is_empty(),
        namespace,
        name,
        location,
        annotations: parsed,
        users,
        config,
    };
    if let Some(backend) = &spec.default_backend {
        let router = normalize(&format!(
            "{}-{}-default-backend",
            context.namespace, context.name
        ));
        add_route(
            cluster,
            &context,
            output,
            Route {
                router,
                rule: "PathPrefix(`/`)".to_owned(),
                priority: DEFAULT_BACKEND_PRIORITY,
                path: None,
                backend,
                key: "spec.defaultBackend".to_owned(),
            },
        );
    }
    for (rule_index, rule) in spec.rules.unwrap_or_default().iter().enumerate() {
        let host = rule.host.clone().unwrap_or_default();
        let Some(http) = &rule.http else {
            continue;
        };
        for (path_index, path) in http.paths.iter().enumerate() {
            let text = path.path.clone().unwrap_or_default();
            let matcher = if context.annotations.path_regex {
                "PathRegexp"
            } else {
                match path.path_type.as_str() {
                    "Exact" => "Path",
                    "Prefix" => "PathPrefix",
                    _ => context
                        .annotations
                        .path_matcher
                        .as_deref()
                        .unwrap_or("PathPrefix"),
                }
            };
            let router = normalize(&format!(
                "{}-{}-{host}{text}",
                context.namespace, context.name
            ));
            add_route(
                cluster,
                &context,
                output,
                Route {
                    router,
                    rule: rule_text(&host, matcher, &text),
                    priority: context.annotations.priority,
                    path: (!text.is_empty()).then_some(text),
                    backend: &path.backend,
                    key: format!("spec.rules[{rule_index}].http.paths[{path_index}].backend"),
                },
            );
        }
    }
}

/// One router to add.
struct Route<'a> {
    router: String,
    rule: String,
    priority: i64,
    /// The rule's path, for path rewrites.
    path: Option<String>,
    backend: &'a IngressBackend,
    /// Where the backend is in the Ingress, for errors.
    key: String,
}

fn add_route(cluster: &Cluster, context: &IngressContext<'_>, output: &mut Output, route: Route) {
    let Some(service) = &route.backend.service else {
        return output.error(
            &context.location,
            Some(route.key),
            "only Service backends are supported".to_owned(),
        );
    };
    let port = match service.port.as_ref() {
        Some(port) => match (&port.name, port.number) {
            (Some(name), _) if !name.is_empty() => PortRef::Name(name.clone()),
            (_, Some(number)) => PortRef::Number(number),
            _ => {
                return output.error(
                    &context.location,
                    Some(format!("{}.service.port", route.key)),
                    "set `name` or `number`".to_owned(),
                );
            }
        },
        None => {
            return output.error(
                &context.location,
                Some(format!("{}.service.port", route.key)),
                "the port is required".to_owned(),
            );
        }
    };
    let on_service = match cluster.service(&context.namespace, &service.name) {
        Some(object) => match annotations::parse_service(object.annotations()) {
            Ok(parsed) => parsed,
            Err(error) => {
                return output.error(
                    &location("Service", &context.namespace, &service.name),
                    Some(error.key),
                    error.message,
                );
            }
        },
        None => ServiceAnnotations::default(),
    };
    let service_annotations = on_service.or(&context.annotations.service);
    let annotations = &context.annotations;
    let urls = match endpoints::servers(
        cluster,
        &context.namespace,
        &service.name,
        &port,
        service_annotations.servers_scheme.as_deref(),
        context.config.allow_external_name_services,
    ) {
        Ok(urls) => urls,
        Err(error) => {
            return output.error(
                &context.location,
                Some(format!("{}.service", route.key)),
                error.to_string(),
            );
        }
    };
    if urls.is_empty() && !context.config.allow_empty_services {
        tracing::debug!(
            ingress = %context.origin,
            service = %service.name,
            "no ready endpoint: route left out"
        );
        return;
    }
    let service_config = ServiceConfig {
        load_balancer: Some(LoadBalancerConfig {
            servers: urls
                .into_iter()
                .map(|url| ServerConfig {
                    url,
                    ..ServerConfig::default()
                })
                .collect(),
            sticky: service_annotations.sticky.map(|cookie| StickyConfig {
                cookie: Some(cookie),
            }),
            pass_host_header: service_annotations.pass_host_header,
            servers_transport: service_annotations.servers_transport.unwrap_or_default(),
            ..LoadBalancerConfig::default()
        }),
        ..ServiceConfig::default()
    };
    let service_name = output.service(
        normalize(&format!(
            "{}-{}-{}",
            context.namespace,
            service.name,
            port.label()
        )),
        normalize(&format!(
            "{}-{}-{}-{}",
            context.namespace,
            context.name,
            service.name,
            port.label()
        )),
        service_config,
        &context.origin,
    );

    let mut middlewares = Vec::new();
    if let Some(users) = &context.users {
        let name = format!("{}-basic-auth", route.router);
        let realm = annotations
            .basic_auth
            .as_ref()
            .map(|auth| auth.realm.clone())
            .unwrap_or_default();
        let middleware = MiddlewareConfig {
            basic_auth: Some(BasicAuthConfig {
                users: users.clone(),
                realm,
                ..BasicAuthConfig::default()
            }),
            ..MiddlewareConfig::default()
        };
        output.middleware(name.clone(), middleware, &context.origin);
        middlewares.push(name);
    }
    middlewares.extend(annotations.middlewares.iter().cloned());
    if let Some(modifier) = &annotations.request_modifier {
        let name = format!("{}-request-modifier", route.router);
        output.middleware(name.clone(), modifier.clone(), &context.origin);
        middlewares.push(name);
    }
    if let Some(rewrite) = &annotations.rewrite {
        let name = format!("{}-rewrite", route.router);
        let middleware = MiddlewareConfig {
            replace_path_regex: Some(rewrite_regex(rewrite, route.path.as_deref())),
            ..MiddlewareConfig::default()
        };
        output.middleware(name.clone(), middleware, &context.origin);
        middlewares.push(name);
    }
    let tls = context.tls.then(|| RouterTlsConfig {
        options: annotations.tls_options.clone(),
        cert_resolver: annotations.cert_resolver.clone(),
        domains: Vec::new(),
    });
    output.router(
        route.router,
        RouterConfig {
            entry_points: annotations.entry_points.clone(),
            middlewares,
            service: service_name,
            rule: route.rule,
            priority: route.priority,
            tls,
            ..RouterConfig::default()
        },
        &context.origin,
    );
}

/// The rule of a host and a path matched by `matcher`.
fn rule_text(host: &str, matcher: &str, path: &str) -> String {
    let host_rule = if let Some(suffix) = host.strip_prefix("*.") {
        Some(format!(
            "HostRegexp(`^[a-zA-Z0-9-]+\\.{}$`)",
            regex::escape(suffix)
        ))
    } else {
        (!host.is_empty()).then(|| format!("Host(`{host}`)"))
    };
    let path_rule = match (path.is_empty(), matcher) {
        (true, _) => None,
        (false, "PathRegexp") if !path.starts_with('^') => Some(format!("PathRegexp(`^{path}`)")),
        (false, matcher) => Some(format!("{matcher}(`{path}`)")),
    };
    match (host_rule, path_rule) {
        (Some(host), Some(path)) => format!("{host} && {path}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => "PathPrefix(`/`)".to_owned(),
    }
}

/// The path rewrite of a `rewrite-target` annotation for a rule `path`.
fn rewrite_regex(rewrite: &Rewrite, path: Option<&str>) -> ReplacePathRegexConfig {
    let path = path.unwrap_or("");
    match rewrite {
        // Traefik 1.x: the matched prefix is replaced, the rest kept.
        Rewrite::Traefik(target) => ReplacePathRegexConfig {
            regex: format!("^{}(.*)", regex::escape(path)),
            replacement: format!("{}$1", target.trim_end_matches('/')),
        },
        // ingress-nginx: the whole path becomes the target, whose `$n` refer
        // to the path regex's groups.
        Rewrite::Nginx { target, regex } => ReplacePathRegexConfig {
            regex: if *regex {
                format!("^{}", path.trim_start_matches('^'))
            } else {
                format!("^{}.*", regex::escape(path))
            },
            replacement: target.clone(),
        },
    }
}

#[cfg(test)]
#[path = "ingress_tests.rs"]
mod tests;
