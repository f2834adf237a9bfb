//! Middleware, TraefikService, TLSOption and ServersTransport: their `spec`
//! is Traefik's dynamic model once Kubernetes references are resolved —
//! Secrets inlined (`basicAuth.secret`, `forwardAuth.tls.caSecret`,
//! `clientAuth.secretNames`, `rootCAsSecrets`, `certificatesSecrets`),
//! middleware and service references turned into model names.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ingress_route::{Reference, ServiceRef, service_name};
use super::{Context, Object, deserialize, namespaced};
use crate::dynamic::{
    MiddlewareConfig, MirrorConfig, MirroringConfig, ServersTransportConfig, ServiceConfig,
    StickyConfig, TlsOptionsConfig, WeightedConfig, WeightedServiceRef,
};
use crate::providers::kubernetes::output::Output;
use crate::providers::kubernetes::secrets;

/// A problem at a key of the spec.
type KeyError = (String, String);

pub(super) fn middleware(context: &Context<'_>, object: &Object<'_>, output: &mut Output) {
    let resolved = spec_object(object).and_then(|mut spec| {
        resolve_middleware(context, object, &mut spec, output)?;
        deserialize::<MiddlewareConfig>(Value::Object(spec))
    });
    match resolved {
        Ok(config) => output.middleware(object.model_name(), config, &object.origin),
        Err((key, message)) => output.error(&object.location, Some(key), message),
    }
}

/// Replaces the Kubernetes references of a Middleware spec.
fn resolve_middleware(
    context: &Context<'_>,
    object: &Object<'_>,
    spec: &mut Map<String, Value>,
    output: &mut Output,
) -> Result<(), KeyError> {
    for kind in ["basicAuth", "digestAuth"] {
        let Some(section) = spec.get_mut(kind).and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(secret) = section.remove("secret") {
            let key = format!("spec.{kind}.secret");
            let name = secret
                .as_str()
                .ok_or_else(|| (key.clone(), "expected a Secret name".to_owned()))?;
            let users = secrets::htpasswd_users(context.cluster, &object.namespace, name)
                .map_err(|message| (key, message))?;
            section.insert("users".to_owned(), json!(users));
        }
    }
    if let Some(chain) = spec.get_mut("chain").and_then(Value::as_object_mut)
        && let Some(references) = chain.get("middlewares").cloned()
    {
        let references: Vec<Reference> = serde_json::from_value(references)
            .map_err(|error| ("spec.chain.middlewares".to_owned(), error.to_string()))?;
        let mut names = Vec::new();
        for (index, reference) in references.iter().enumerate() {
            let name = if reference.name.contains('@') {
                reference.name.clone()
            } else {
                let namespace = context
                    .namespace_of(object, &reference.namespace, "Middleware", &reference.name)
                    .map_err(|message| (format!("spec.chain.middlewares[{index}]"), message))?;
                namespaced(&namespace, &reference.name)
            };
            names.push(name);
        }
        chain.insert("middlewares".to_owned(), json!(names));
    }
    if let Some(errors) = spec.get_mut("errors").and_then(Value::as_object_mut)
        && let Some(service) = errors.get("service").filter(|s| s.is_object()).cloned()
    {
        let key = "spec.errors.service".to_owned();
        let service: ServiceRef =
            serde_json::from_value(service).map_err(|error| (key.clone(), error.to_string()))?;
        let name = service_name(context, object, &service, output)
            .map_err(|message| (key.clone(), message))?
            .ok_or_else(|| (key, "the service has no ready endpoint".to_owned()))?;
        errors.insert("service".to_owned(), json!(name));
    }
    if let Some(tls) = spec
        .get_mut("forwardAuth")
        .and_then(|auth| auth.get_mut("tls"))
        .and_then(Value::as_object_mut)
    {
        if let Some(secret) = tls.remove("caSecret") {
            let key = "spec.forwardAuth.tls.caSecret".to_owned();
            let name = secret.as_str().unwrap_or_default();
            let ca = secrets::ca_certificate(context.cluster, &object.namespace, name)
                .map_err(|message| (key, message))?;
            tls.insert("ca".to_owned(), json!(ca));
        }
        if let Some(secret) = tls.remove("certSecret") {
            let key = "spec.forwardAuth.tls.certSecret".to_owned();
            let name = secret.as_str().unwrap_or_default();
            let pair = secrets::tls_certificate(context.cluster, &object.namespace, name)
                .map_err(|message| (key, message))?;
            tls.insert("cert".to_owned(), json!(pair.cert_file));
            tls.insert("key".to_owned(), json!(pair.key_file));
        }
    }
    Ok(())
}

/// `spec` of a TraefikService: exactly one of `weighted` and `mirroring`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TraefikServiceSpec {
    #[serde(default)]
    weighted: Option<Weighted>,
    #[serde(default)]
    mirroring: Option<Mirroring>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Weighted {
    #[serde(default)]
    services: Vec<ServiceRef>,
    #[serde(default)]
    sticky: Option<StickyConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mirroring {
    #[serde(flatten)]
    service: ServiceRef,
    #[serde(default)]
    mirrors: Vec<ServiceRef>,
    #[serde(default)]
    mirror_body: Option<bool>,
    #[serde(default)]
    max_body_size: Option<i64>,
}

pub(super) fn traefik_service(context: &Context<'_>, object: &Object<'_>, output: &mut Output) {
    let built = object
        .spec::<TraefikServiceSpec>()
        .and_then(|spec| traefik_service_config(context, object, spec, output));
    match built {
        Ok(config) => {
            let name = object.model_name();
            output.service(name.clone(), name, config, &object.origin);
        }
        Err((key, message)) => output.error(&object.location, Some(key), message),
    }
}

fn traefik_service_config(
    context: &Context<'_>,
    object: &Object<'_>,
    spec: TraefikServiceSpec,
    output: &mut Output,
) -> Result<ServiceConfig, KeyError> {
    let mut resolve = |service: &ServiceRef, key: String| {
        service_name(context, object, service, output).map_err(|message| (key, message))
    };
    match (spec.weighted, spec.mirroring) {
        (Some(weighted), None) => {
            let mut services = Vec::new();
            for (index, service) in weighted.services.iter().enumerate() {
                if let Some(name) = resolve(service, format!("spec.weighted.services[{index}]"))? {
                    services.push(WeightedServiceRef {
                        name,
                        weight: service.weight,
                    });
                }
            }
            Ok(ServiceConfig {
                weighted: Some(WeightedConfig {
                    services,
                    sticky: weighted.sticky,
                    health_check: None,
                }),
                ..ServiceConfig::default()
            })
        }
        (None, Some(mirroring)) => {
            let service =
                resolve(&mirroring.service, "spec.mirroring".to_owned())?.ok_or_else(|| {
                    (
                        "spec.mirroring".to_owned(),
                        "the main service has no ready endpoint".to_owned(),
                    )
                })?;
            let mut mirrors = Vec::new();
            for (index, mirror) in mirroring.mirrors.iter().enumerate() {
                if let Some(name) = resolve(mirror, format!("spec.mirroring.mirrors[{index}]"))? {
                    mirrors.push(MirrorConfig {
                        name,
                        percent: mirror.percent.unwrap_or(0),
                    });
                }
            }
            Ok(ServiceConfig {
                mirroring: Some(MirroringConfig {
                    service,
                    mirror_body: mirroring.mirror_body,
                    max_body_size: mirroring.max_body_size,
                    mirrors,
                    health_check: None,
                }),
                ..ServiceConfig::default()
            })
        }
        _ => Err((
            "spec".to_owned(),
            "set exactly one of `weighted` and `mirroring`".to_owned(),
        )),
    }
}

pub(super) fn tls_option(context: &Context<'_>, object: &Object<'_>, output: &mut Output) {
    let resolved = spec_object(object).and_then(|mut spec| {
        if let Some(client_auth) = spec.get_mut("clientAuth").and_then(Value::as_object_mut)
            && let Some(names) = client_auth.remove("secretNames")
        {
            let names: Vec<String> = serde_json::from_value(names)
                .map_err(|error| ("spec.clientAuth.secretNames".to_owned(), error.to_string()))?;
            let cas = names
                .iter()
                .map(|name| secrets::ca_certificate(context.cluster, &object.namespace, name))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| ("spec.clientAuth.secretNames".to_owned(), message))?;
            client_auth.insert("caFiles".to_owned(), json!(cas));
        }
        deserialize::<TlsOptionsConfig>(Value::Object(spec))
    });
    match resolved {
        Ok(config) => output.tls_options(object.model_name(), config, &object.origin),
        Err((key, message)) => output.error(&object.location, Some(key), message),
    }
}

pub(super) fn servers_transport(context: &Context<'_>, object: &Object<'_>, output: &mut Output) {
    let resolved = spec_object(object).and_then(|mut spec| {
        let mut root_cas = Vec::new();
        if let Some(names) = spec.remove("rootCAsSecrets") {
            let names: Vec<String> = serde_json::from_value(names)
                .map_err(|error| ("spec.rootCAsSecrets".to_owned(), error.to_string()))?;
            for name in names {
                root_cas.push(
                    secrets::ca_certificate(context.cluster, &object.namespace, &name)
                        .map_err(|message| ("spec.rootCAsSecrets".to_owned(), message))?,
                );
            }
        }
        if let Some(references) = spec.remove("rootCAs") {
            let references: Vec<Map<String, Value>> = serde_json::from_value(references)
                .map_err(|error| ("spec.rootCAs".to_owned(), error.to_string()))?;
            for (index, reference) in references.iter().enumerate() {
                let key = format!("spec.rootCAs[{index}]");
                let name = reference
                    .get("secret")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        (
                            key.clone(),
                            "only `secret` references are supported".to_owned(),
                        )
                    })?;
                root_cas.push(
                    secrets::ca_certificate(context.cluster, &object.namespace, name)
                        .map_err(|message| (key, message))?,
                );
            }
        }
        if !root_cas.is_empty() {
            spec.insert("rootCAs".to_owned(), json!(root_cas));
        }
        if let Some(names) = spec.remove("certificatesSecrets") {
            let names: Vec<String> = serde_json::from_value(names)
                .map_err(|error| ("spec.certificatesSecrets".to_owned(), error.to_string()))?;
            let mut certificates = Vec::new();
            for name in names {
                let pair = secrets::tls_certificate(context.cluster, &object.namespace, &name)
                    .map_err(|message| ("spec.certificatesSecrets".to_owned(), message))?;
                certificates.push(json!({"certFile": pair.cert_file, "keyFile": pair.key_file}));
            }
            spec.insert("certificates".to_owned(), json!(certificates));
        }
        deserialize::<ServersTransportConfig>(Value::Object(spec))
    });
    match resolved {
        Ok(config) => output.servers_transport(object.model_name(), config, &object.origin),
        Err((key, message)) => output.error(&object.location, Some(key), message),
    }
}

/// The `spec` as a JSON object.
fn spec_object(object: &Object<'_>) -> Result<Map<String, Value>, KeyError> {
    match object.object.data.get("spec") {
        Some(Value::Object(spec)) => Ok(spec.clone()),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(("spec".to_owned(), "expected an object".to_owned())),
    }
}
