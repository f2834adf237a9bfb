//! Traefik's `traefik.io/v1alpha1` custom resources to routers, services,
//! middlewares, TLS options and servers transports, the way Traefik's
//! `kubernetescrd` provider names them: a Middleware `auth` in namespace
//! `default` is `default-auth@kubernetescrd`.
//!
//! - IngressRoute ([`ingress_route`]): one router per route,
//!   `<namespace>-<name>-<index>`, with its `match`, `priority`,
//!   middlewares (`name` + `namespace`), services (Kubernetes Services by
//!   port, weighted, or TraefikServices) and `tls` (a Secret's certificate,
//!   TLSOption, resolver, domains).
//! - Middleware, TraefikService, TLSOption, ServersTransport
//!   ([`resources`]): the `spec` is Traefik's dynamic configuration model,
//!   with Kubernetes references (Secrets, Services, other resources)
//!   resolved to inline values and names.
//! - References to another namespace are refused unless
//!   `allowCrossNamespace` is set.
//! - With `ingressClass` set, only resources whose
//!   `kubernetes.io/ingress.class` annotation names it are read.

mod ingress_route;
mod resources;
#[cfg(test)]
mod tests;

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde::de::DeserializeOwned;

use super::Built;
use super::cluster::Cluster;
use super::endpoints::{self, PortRef};
use super::names::{location, namespaced, normalize, origin};
use super::output::Output;
use super::watch::custom_resource;
use crate::config::KubernetesCrdConfig;
use crate::dynamic::{
    HealthCheckConfig, LoadBalancerConfig, ResponseForwardingConfig, ServerConfig, ServiceConfig,
    StickyConfig,
};

/// A Traefik custom resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum CrdKind {
    Middleware,
    ServersTransport,
    TlsOption,
    TraefikService,
    IngressRoute,
}

impl CrdKind {
    /// Every kind, in build order: what others reference comes first.
    pub(super) const ALL: [Self; 5] = [
        Self::Middleware,
        Self::ServersTransport,
        Self::TlsOption,
        Self::TraefikService,
        Self::IngressRoute,
    ];

    /// The kind as Kubernetes spells it.
    pub(super) fn kind(self) -> &'static str {
        match self {
            Self::Middleware => "Middleware",
            Self::ServersTransport => "ServersTransport",
            Self::TlsOption => "TLSOption",
            Self::TraefikService => "TraefikService",
            Self::IngressRoute => "IngressRoute",
        }
    }

    /// The API resource to watch.
    pub(super) fn api_resource(self) -> ApiResource {
        let plural = match self {
            Self::Middleware => "middlewares",
            Self::ServersTransport => "serverstransports",
            Self::TlsOption => "tlsoptions",
            Self::TraefikService => "traefikservices",
            Self::IngressRoute => "ingressroutes",
        };
        custom_resource(self.kind(), plural)
    }
}

/// One custom resource being read.
pub(super) struct Object<'a> {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) location: String,
    pub(super) origin: String,
    pub(super) object: &'a DynamicObject,
}

impl Object<'_> {
    /// `<namespace>-<name>`: the resource's name in the model.
    pub(super) fn model_name(&self) -> String {
        namespaced(&self.namespace, &self.name)
    }

    /// The `spec`, as `T`; the error names the field at fault.
    pub(super) fn spec<T: DeserializeOwned>(&self) -> Result<T, (String, String)> {
        let spec = self
            .object
            .data
            .get("spec")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        deserialize(spec)
    }
}

/// `value` as `T`; the error is `(spec.<path>, message)`.
pub(super) fn deserialize<T: DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let key = if path == "." {
            "spec".to_owned()
        } else {
            format!("spec.{path}")
        };
        (key, error.into_inner().to_string())
    })
}

/// What resolving references needs.
pub(super) struct Context<'a> {
    pub(super) cluster: &'a Cluster,
    pub(super) config: &'a KubernetesCrdConfig,
}

impl Context<'_> {
    /// The namespace of a reference from `object` to the `kind` `name`
    /// (`Middleware`, `auth`): its own when empty; another one only with
    /// `allowCrossNamespace`. The error names the object referenced as
    /// `namespace/name`.
    pub(super) fn namespace_of(
        &self,
        object: &Object<'_>,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<String, String> {
        if namespace.is_empty() || namespace == object.namespace {
            Ok(object.namespace.clone())
        } else if self.config.allow_cross_namespace {
            Ok(namespace.to_owned())
        } else {
            Err(format!(
                "{kind} `{namespace}/{name}` is in another namespace than `{}`; \
                 set allowCrossNamespace to reference another namespace",
                object.namespace
            ))
        }
    }

    /// A load-balancer service for Kubernetes Service `namespace/name` at
    /// `port`, added to `output`; returns its name.
    pub(super) fn kubernetes_service(
        &self,
        output: &mut Output,
        service: &KubernetesServiceRef<'_>,
        origin: &str,
    ) -> Result<Option<String>, String> {
        let urls = endpoints::servers(
            self.cluster,
            service.namespace,
            service.name,
            service.port,
            service.scheme,
            self.config.allow_external_name_services,
        )
        .map_err(|error| error.to_string())?;
        if urls.is_empty() && !self.config.allow_empty_services {
            return Ok(None);
        }
        let config = ServiceConfig {
            load_balancer: Some(LoadBalancerConfig {
                servers: urls
                    .into_iter()
                    .map(|url| ServerConfig {
                        url,
                        ..ServerConfig::default()
                    })
                    .collect(),
                pass_host_header: service.pass_host_header,
                servers_transport: service.servers_transport.to_owned(),
                sticky: service.sticky.cloned(),
                strategy: service.strategy.cloned(),
                health_check: service.health_check.cloned(),
                response_forwarding: service.response_forwarding.cloned(),
            }),
            ..ServiceConfig::default()
        };
        let base = normalize(&format!(
            "{}-{}-{}",
            service.namespace,
            service.name,
            service.port.label()
        ));
        let fallback = format!("{base}-{}", normalize(origin));
        Ok(Some(output.service(base, fallback, config, origin)))
    }
}

/// A Kubernetes Service as an IngressRoute or TraefikService names it.
pub(super) struct KubernetesServiceRef<'a> {
    pub(super) namespace: &'a str,
    pub(super) name: &'a str,
    pub(super) port: &'a PortRef,
    pub(super) scheme: Option<&'a str>,
    pub(super) pass_host_header: Option<bool>,
    /// Already a model name (`<namespace>-<name>`), or empty.
    pub(super) servers_transport: &'a str,
    pub(super) sticky: Option<&'a StickyConfig>,
    pub(super) strategy: Option<&'a String>,
    pub(super) health_check: Option<&'a HealthCheckConfig>,
    pub(super) response_forwarding: Option<&'a ResponseForwardingConfig>,
}

/// Builds the `kubernetescrd` provider's configuration.
pub(super) fn build(cluster: &Cluster, config: &KubernetesCrdConfig) -> Built {
    let context = Context { cluster, config };
    let mut output = Output::default();
    for (kind, object) in &cluster.custom {
        if !config.ingress_class.is_empty()
            && object.annotations().get("kubernetes.io/ingress.class")
                != Some(&config.ingress_class)
        {
            continue;
        }
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let object = Object {
            location: location(kind.kind(), &namespace, &name),
            origin: origin(&namespace, &name),
            namespace,
            name,
            object,
        };
        match kind {
            CrdKind::IngressRoute => ingress_route::build(&context, &object, &mut output),
            CrdKind::Middleware => resources::middleware(&context, &object, &mut output),
            CrdKind::TraefikService => resources::traefik_service(&context, &object, &mut output),
            CrdKind::TlsOption => resources::tls_option(&context, &object, &mut output),
            CrdKind::ServersTransport => {
                resources::servers_transport(&context, &object, &mut output);
            }
        }
    }
    output.finish()
}
