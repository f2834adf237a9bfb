//! Entry points come from the static configuration: where proxies listen,
//! which peers may set `X-Forwarded-*`, and middlewares applied to every
//! router on them.

use std::collections::BTreeMap;

use sluice_proto::v1::{EntryPoint, EntryPointRedirection, ForwardedHeaders, RouterTls, TlsDomain};

use super::report::{CompileReport, ResourceKindName};
use crate::config::{EntryPointConfig, Protocol};
use crate::providers::ProviderUpdate;

/// Entry points as they ship, plus what routers need to know about them.
#[derive(Debug, Default)]
pub struct CompiledEntryPoints {
    /// By name.
    pub by_name: BTreeMap<String, EntryPoint>,
    /// Entry points of a router that names none: those marked `asDefault`,
    /// or all of them when none is (as Traefik does).
    pub defaults: Vec<String>,
    /// Entry points whose middleware list names a middleware that does not
    /// exist: routers on them are not served.
    pub broken_middlewares: BTreeMap<String, String>,
}

/// Converts the static entry points. Middlewares named without `@provider`
/// resolve to the one provider that defines that name.
pub fn compile_entry_points(
    entry_points: &BTreeMap<String, EntryPointConfig>,
    providers: &BTreeMap<String, ProviderUpdate>,
    report: &mut CompileReport,
) -> CompiledEntryPoints {
    let mut compiled = CompiledEntryPoints::default();
    for (name, config) in entry_points {
        let key = ResourceKindName::qualified("entryPoint", name);
        report.register_static(&key, serde_json::to_value(config).ok());
        if config.address.protocol == Protocol::Udp {
            report.error(&key, "UDP entry points are not supported".to_owned());
            continue;
        }
        let http = &config.http;
        let mut middlewares = Vec::new();
        for middleware in &http.middlewares {
            match resolve_middleware(middleware, providers) {
                Ok(qualified) => middlewares.push(qualified),
                Err(message) => {
                    report.error_on_shipped(&key, format!("http.middlewares: {message}"));
                    compiled
                        .broken_middlewares
                        .insert(name.clone(), middleware.to_owned());
                }
            }
        }
        let redirection = http
            .redirections
            .as_ref()
            .and_then(|redirections| redirections.entry_point.as_ref())
            .map(|redirect| EntryPointRedirection {
                to: redirect.to.clone(),
                scheme: redirect.scheme.clone(),
                permanent: redirect.permanent,
                port: entry_points
                    .get(&redirect.to)
                    .map(|target| u32::from(target.address.port))
                    .or_else(|| redirect.to.strip_prefix(':')?.parse().ok())
                    .unwrap_or(0),
            });
        let tls = http.tls.as_ref().map(|tls| RouterTls {
            options: tls.options.clone(),
            cert_resolver: tls.cert_resolver.clone(),
            domains: tls
                .domains
                .iter()
                .map(|domain| TlsDomain {
                    main: domain.main.clone(),
                    sans: domain.sans.clone(),
                })
                .collect(),
        });
        let forwarded_headers = Some(ForwardedHeaders {
            trusted_ips: config
                .forwarded_headers
                .trusted_ips
                .iter()
                .map(ToString::to_string)
                .collect(),
            insecure: config.forwarded_headers.insecure,
        });
        compiled.by_name.insert(
            name.clone(),
            EntryPoint {
                name: name.clone(),
                content_version: String::new(),
                address: config.address.to_string(),
                forwarded_headers,
                middlewares,
                redirection,
                tls,
            },
        );
    }
    let marked: Vec<String> = entry_points
        .iter()
        .filter(|(_, config)| config.as_default)
        .map(|(name, _)| name.clone())
        .collect();
    compiled.defaults = if marked.is_empty() {
        entry_points.keys().cloned().collect()
    } else {
        marked
    };
    compiled
}

fn resolve_middleware(
    name: &str,
    providers: &BTreeMap<String, ProviderUpdate>,
) -> Result<String, String> {
    let defines = |provider: &ProviderUpdate, plain: &str| {
        provider
            .config
            .http
            .as_ref()
            .is_some_and(|http| http.middlewares.contains_key(plain))
    };
    if let Some((plain, provider)) = name.split_once('@') {
        return match providers.get(provider) {
            Some(update) if defines(update, plain) => Ok(name.to_owned()),
            _ => Err(format!("`{name}` does not exist")),
        };
    }
    let owners: Vec<&str> = providers
        .values()
        .filter(|update| defines(update, name))
        .map(|update| update.provider.as_str())
        .collect();
    match owners.as_slice() {
        [provider] => Ok(format!("{name}@{provider}")),
        [] => Err(format!("`{name}` does not exist")),
        several => Err(format!(
            "`{name}` is defined by several providers ({}); write `{name}@<provider>`",
            several.join(", ")
        )),
    }
}
