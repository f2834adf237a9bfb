//! Entry points come from the static configuration: where proxies listen,
//! which peers may set `X-Forwarded-*`, and middlewares applied to every
//! router on them.

use std::collections::BTreeMap;

use sluice_proto::v1::{
    EntryPoint, EntryPointRedirection, ForwardedHeaders, Middleware, RouterTls, TlsDomain,
    TlsOptions,
};

use super::report::{CompileReport, ResourceKindName, shown};
use crate::config::{EntryPointConfig, Protocol};

/// Entry points as they ship, plus what routers need to know about them.
#[derive(Debug, Default)]
pub struct CompiledEntryPoints {
    /// By name.
    pub by_name: BTreeMap<String, EntryPoint>,
    /// Entry points of a router that names none: those marked `asDefault`,
    /// or all of them when none is (as Traefik does).
    pub defaults: Vec<String>,
    /// Entry points whose middlewares or TLS options do not exist or are
    /// broken, with the reason: routers on them are not served (fail closed).
    pub broken: BTreeMap<String, String>,
}

/// Converts the static entry points. Middlewares and TLS options named
/// without `@provider` resolve to the one provider that defines that name;
/// they must have compiled.
pub fn compile_entry_points(
    entry_points: &BTreeMap<String, EntryPointConfig>,
    middlewares: &BTreeMap<String, Middleware>,
    tls_options: &BTreeMap<String, TlsOptions>,
    report: &mut CompileReport,
) -> CompiledEntryPoints {
    let mut compiled = CompiledEntryPoints::default();
    for (name, config) in entry_points {
        let key = ResourceKindName::qualified("entryPoint", name);
        report.register_static(&key, shown(config));
        if config.address.protocol == Protocol::Udp {
            report.error(&key, "UDP entry points are not supported".to_owned());
            continue;
        }
        let http = &config.http;
        let mut resolved_middlewares = Vec::new();
        for middleware in &http.middlewares {
            match resolve(middleware, middlewares.keys()) {
                Ok(qualified) => resolved_middlewares.push(qualified),
                Err(message) => {
                    let message = format!("http.middlewares: middleware {message}");
                    report.error_on_shipped(&key, message.clone());
                    compiled.broken.insert(name.clone(), message);
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
            options: match tls.options.as_str() {
                "" | "default" => String::new(),
                options => match resolve(options, tls_options.keys()) {
                    Ok(qualified) => qualified,
                    Err(message) => {
                        let message = format!("http.tls.options: TLS options {message}");
                        report.error_on_shipped(&key, message.clone());
                        compiled.broken.insert(name.clone(), message);
                        String::new()
                    }
                },
            },
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
                middlewares: resolved_middlewares,
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

/// Resolves `name` or `name@provider` among compiled, qualified names.
fn resolve<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Result<String, String> {
    let known: Vec<&String> = known.collect();
    if name.contains('@') {
        return if known.iter().any(|candidate| *candidate == name) {
            Ok(name.to_owned())
        } else {
            Err(format!("`{name}` does not exist or is broken"))
        };
    }
    let prefix = format!("{name}@");
    let owners: Vec<&String> = known
        .into_iter()
        .filter(|candidate| candidate.starts_with(&prefix))
        .collect();
    match owners.as_slice() {
        [qualified] => Ok((*qualified).clone()),
        [] => Err(format!("`{name}` does not exist or is broken")),
        several => Err(format!(
            "`{name}` is defined by several providers ({}); write `{name}@<provider>`",
            several
                .iter()
                .map(|q| format!("`{q}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
