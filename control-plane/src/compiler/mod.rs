//! The compiler: merged provider configuration in, proto resources out.
//!
//! Every resource is qualified (`name@provider`), validated and converted on
//! its own. A broken resource is left out with its error recorded, and so is
//! everything that depends on it (a router whose service or middleware is
//! broken is not served: fail closed); everything else still ships. Output
//! is deterministic: lists are sorted by name and each resource carries a
//! content version hashed from its encoded bytes. Routers come by the
//! thousand, so [`Compiler`] keeps each one compiled and shares it with the
//! next compilation while its configuration stays the same.

mod certificate;
mod entry_point;
mod middleware;
mod report;
mod router;
mod servers_transport;
mod service;
#[cfg(test)]
mod tests;
mod tls_options;

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use sha2::{Digest, Sha256};
use sluice_proto::ResourceNames;
use sluice_proto::v1::Resources;

use crate::config::EntryPointConfig;
use crate::providers::ProviderUpdate;
use crate::resources::SharedResources;

pub use entry_point::compile_entry_points;
use report::shown;
pub use report::{CompileError, CompileReport, ResourceKindName, ResourceStatus};

pub(crate) use middleware::{MiddlewareContext, compile_middleware};

/// What the compiler reads: the static entry points and each provider's latest view.
#[derive(Debug, Clone, Copy)]
pub struct CompileInput<'a> {
    /// Entry points from the static configuration, by name.
    pub entry_points: &'a BTreeMap<String, EntryPointConfig>,
    /// Latest update of every provider, by provider name.
    pub providers: &'a BTreeMap<String, ProviderUpdate>,
    /// Certificates of the last published snapshot, kept when their file
    /// stops loading; empty for a one-off compilation.
    pub previous_certificates: &'a [std::sync::Arc<sluice_proto::v1::Certificate>],
}

/// Result of one compilation.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The resources that passed validation, each list sorted by name.
    pub resources: SharedResources,
    /// Per-resource status and every error, for the admin API and `validate`.
    pub report: CompileReport,
}

/// Compiles the merged configuration once. Never fails as a whole: problems
/// are reported per resource in [`Compiled::report`].
pub fn compile(input: CompileInput<'_>) -> Compiled {
    Compiler::default().compile(input)
}

/// A compiler that remembers what it compiled, so compiling again after a
/// small change costs little more than the change (see [`router`]).
#[derive(Debug, Default)]
pub struct Compiler {
    routers: router::RouterCache,
}

impl Compiler {
    /// Compiles the merged configuration; the result is the same as
    /// [`compile`]'s.
    pub fn compile(&mut self, input: CompileInput<'_>) -> Compiled {
        compile_with(input, &mut self.routers)
    }
}

fn compile_with(input: CompileInput<'_>, router_cache: &mut router::RouterCache) -> Compiled {
    let mut report = CompileReport::default();
    for update in input.providers.values() {
        for error in &update.errors {
            report.push_source_error(&update.provider, error);
        }
    }

    let middlewares = middleware_stage(input.providers, &mut report);
    let transports = servers_transport::compile_servers_transports(input.providers, &mut report);
    let mut services = service::compile_services(input.providers, &mut report);
    servers_transport::drop_services_without_transport(&mut services, &transports, &mut report);
    let tls = certificate::compile_tls(input.providers, input.previous_certificates, &mut report);
    let entry_points =
        compile_entry_points(input.entry_points, &middlewares, &tls.options, &mut report);
    let routers = router::compile_routers(
        input.providers,
        &router::RouterRefs {
            entry_points: &entry_points,
            services: &services,
            middlewares: &middlewares,
            tls_options: &tls.options,
        },
        &mut report,
        router_cache,
    );

    let mut resources = Resources {
        entry_points: entry_points.by_name.into_values().collect(),
        routers: Vec::new(),
        services: services.into_values().collect(),
        middlewares: middlewares.into_values().collect(),
        certificates: tls.certificates,
        tls_options: tls.options.into_values().collect(),
        tls_stores: tls.stores,
        servers_transports: transports.into_values().collect(),
    };
    seal(&mut resources);
    let resources = SharedResources {
        routers,
        ..SharedResources::from_proto(resources)
    };
    report.finish();
    Compiled { resources, report }
}

/// Compiles every middleware, then drops chains in reference cycles and
/// chains that reference a missing or broken middleware (transitively), so a
/// chain never ships half-built.
fn middleware_stage(
    providers: &BTreeMap<String, ProviderUpdate>,
    report: &mut CompileReport,
) -> BTreeMap<String, sluice_proto::v1::Middleware> {
    let mut compiled = BTreeMap::new();
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        for (name, config) in &http.middlewares {
            let key = ResourceKindName::middleware(&update.provider, name);
            report.register(&key, update, shown(config));
            if let Err(message) = check_plain_name(name) {
                report.error(&key, message);
                continue;
            }
            let context = MiddlewareContext {
                provider: &update.provider,
            };
            match compile_middleware(config, &context) {
                Ok(kind) => {
                    compiled.insert(
                        key.name.clone(),
                        sluice_proto::v1::Middleware {
                            name: key.name.clone(),
                            content_version: String::new(),
                            kind: Some(kind),
                        },
                    );
                }
                Err(error) => report.error(&key, error.to_string()),
            }
        }
    }
    drop_broken_chains(&mut compiled, report);
    compiled
}

fn drop_broken_chains(
    middlewares: &mut BTreeMap<String, sluice_proto::v1::Middleware>,
    report: &mut CompileReport,
) {
    use sluice_proto::v1::middleware::Kind;
    // Chains that only reference each other in a loop would recurse forever in a proxy.
    for name in chain_cycles(middlewares) {
        middlewares.remove(&name);
        report.error(
            &ResourceKindName::qualified("middleware", &name),
            "chain.middlewares: the chain references itself".to_owned(),
        );
    }
    loop {
        let broken: Vec<(String, String)> = middlewares
            .values()
            .filter_map(|middleware| {
                let Some(Kind::Chain(chain)) = &middleware.kind else {
                    return None;
                };
                chain
                    .middlewares
                    .iter()
                    .find(|member| !middlewares.contains_key(*member))
                    .map(|member| {
                        (
                            middleware.name.clone(),
                            format!("chain.middlewares: `{member}` does not exist or is broken"),
                        )
                    })
            })
            .collect();
        if broken.is_empty() {
            break;
        }
        for (name, message) in broken {
            middlewares.remove(&name);
            report.error(&ResourceKindName::qualified("middleware", &name), message);
        }
    }
}

fn chain_cycles(middlewares: &BTreeMap<String, sluice_proto::v1::Middleware>) -> Vec<String> {
    use sluice_proto::v1::middleware::Kind;
    let members = |name: &str| -> Vec<String> {
        match middlewares.get(name).and_then(|m| m.kind.as_ref()) {
            Some(Kind::Chain(chain)) => chain.middlewares.clone(),
            _ => Vec::new(),
        }
    };
    middlewares
        .keys()
        .filter(|start| {
            let mut stack = members(start);
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if &next == *start {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.extend(members(&next));
                }
            }
            false
        })
        .cloned()
        .collect()
}

/// Qualifies a reference: `name` becomes `name@provider`, `name@other` is kept.
pub(crate) fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}@{provider}")
    }
}

/// Resource names are plain; the provider suffix is added by Sluice.
fn check_plain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.contains('@') {
        return Err(format!(
            "the name `{name}` contains `@`, which is reserved for the provider suffix"
        ));
    }
    Ok(())
}

/// Sorts every list by name and stamps each resource with its content
/// version (routers come sealed from their cache).
fn seal(resources: &mut Resources) {
    fn seal_list<T: ResourceNames + Message>(list: &mut [T]) {
        list.sort_by(|a, b| a.name().cmp(b.name()));
        list.iter_mut().for_each(stamp_content_version);
    }
    seal_list(&mut resources.entry_points);
    seal_list(&mut resources.services);
    seal_list(&mut resources.middlewares);
    seal_list(&mut resources.certificates);
    seal_list(&mut resources.tls_options);
    seal_list(&mut resources.tls_stores);
    seal_list(&mut resources.servers_transports);
}

/// Sets a resource's content version: a hash of its encoding without one.
fn stamp_content_version<T: ResourceNames + Message>(resource: &mut T) {
    resource.set_content_version(String::new());
    let digest = Sha256::digest(resource.encode_to_vec());
    resource.set_content_version(hex::encode(&digest[..8]));
}
