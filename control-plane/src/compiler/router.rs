//! `http.routers`: rules parsed into matcher trees, references resolved.
//!
//! A router ships only when its rule parses, its entry points exist, and its
//! service and every middleware it names ship too (fail closed).
//!
//! A router depends only on its own configuration and on which entry points,
//! services, middlewares and TLS options exist, so [`RouterCache`] keeps each
//! outcome (sealed router or error) from one compilation to the next: while
//! those names stay the same, an unchanged router is not compiled again.
//! With thousands of routers, parsing their rules was most of a compile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use sluice_proto::v1::{self as proto, Middleware, RouterTls, TlsDomain, TlsOptions};

use super::entry_point::CompiledEntryPoints;
use super::report::{CompileReport, ResourceKindName, shown};
use super::{check_plain_name, qualify, stamp_content_version};
use crate::dynamic::RouterConfig;
use crate::providers::ProviderUpdate;
use crate::rule::{RuleSyntax, parse_rule, rule_priority};

/// What routers may reference.
pub(super) struct RouterRefs<'a> {
    pub(super) entry_points: &'a CompiledEntryPoints,
    pub(super) services: &'a BTreeMap<String, proto::Service>,
    pub(super) middlewares: &'a BTreeMap<String, Middleware>,
    pub(super) tls_options: &'a BTreeMap<String, TlsOptions>,
}

/// The outcome of every router of the last compilation, by provider and name.
#[derive(Debug, Default)]
pub(super) struct RouterCache {
    /// The names the cached outcomes were compiled against.
    names: Option<ReferencedNames>,
    by_provider: HashMap<String, HashMap<String, CachedRouter>>,
}

#[derive(Debug)]
struct CachedRouter {
    key: ResourceKindName,
    config: RouterConfig,
    /// The configuration as the admin API shows it.
    shown: Option<Arc<Value>>,
    /// The sealed router, or why it is left out.
    outcome: Result<proto::Router, String>,
}

/// Everything a router's outcome depends on besides its own configuration.
#[derive(Debug, PartialEq)]
struct ReferencedNames {
    entry_points: Vec<String>,
    default_entry_points: Vec<String>,
    broken_entry_points: Vec<(String, String)>,
    services: Vec<String>,
    middlewares: Vec<String>,
    tls_options: Vec<String>,
}

impl ReferencedNames {
    fn of(refs: &RouterRefs<'_>) -> Self {
        Self {
            entry_points: refs.entry_points.by_name.keys().cloned().collect(),
            default_entry_points: refs.entry_points.defaults.clone(),
            broken_entry_points: refs
                .entry_points
                .broken
                .iter()
                .map(|(name, reason)| (name.clone(), reason.clone()))
                .collect(),
            services: refs.services.keys().cloned().collect(),
            middlewares: refs.middlewares.keys().cloned().collect(),
            tls_options: refs.tls_options.keys().cloned().collect(),
        }
    }

    /// Whether `refs` holds exactly these names (compared without copying them).
    fn matches(&self, refs: &RouterRefs<'_>) -> bool {
        self.entry_points
            .iter()
            .eq(refs.entry_points.by_name.keys())
            && self.default_entry_points == refs.entry_points.defaults
            && self
                .broken_entry_points
                .iter()
                .map(|(name, reason)| (name, reason))
                .eq(refs.entry_points.broken.iter())
            && self.services.iter().eq(refs.services.keys())
            && self.middlewares.iter().eq(refs.middlewares.keys())
            && self.tls_options.iter().eq(refs.tls_options.keys())
    }
}

impl RouterCache {
    /// Forgets every outcome when the names routers may reference changed.
    fn check_names(&mut self, refs: &RouterRefs<'_>) {
        if self.names.as_ref().is_some_and(|names| names.matches(refs)) {
            return;
        }
        self.names = Some(ReferencedNames::of(refs));
        self.by_provider.clear();
    }
}

/// Compiles every router, reusing the cached outcome of an unchanged one;
/// returns those that ship, sealed. The cache keeps only this compilation's
/// routers.
pub(super) fn compile_routers(
    providers: &BTreeMap<String, ProviderUpdate>,
    refs: &RouterRefs<'_>,
    report: &mut CompileReport,
    cache: &mut RouterCache,
) -> Vec<proto::Router> {
    cache.check_names(refs);
    let mut last_compile = std::mem::take(&mut cache.by_provider);
    let mut routers = Vec::new();
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        let mut previous = last_compile.remove(&update.provider).unwrap_or_default();
        let mut current = HashMap::with_capacity(http.routers.len());
        for (name, config) in &http.routers {
            let cached = match previous.remove(name) {
                Some(cached) if cached.config == *config => cached,
                _ => {
                    let key = ResourceKindName::router(&update.provider, name);
                    let outcome = check_plain_name(name)
                        .and_then(|()| compile_router(&key.name, config, &update.provider, refs))
                        .map(|mut router| {
                            stamp_content_version(&mut router);
                            router
                        });
                    CachedRouter {
                        key,
                        config: config.clone(),
                        shown: shown(config),
                        outcome,
                    }
                }
            };
            report.register(&cached.key, update, cached.shown.clone());
            match &cached.outcome {
                Ok(router) => routers.push(router.clone()),
                Err(message) => report.error(&cached.key, message.clone()),
            }
            current.insert(name.clone(), cached);
        }
        cache.by_provider.insert(update.provider.clone(), current);
    }
    routers
}

fn compile_router(
    name: &str,
    config: &RouterConfig,
    provider: &str,
    refs: &RouterRefs<'_>,
) -> Result<proto::Router, String> {
    if config.rule.trim().is_empty() {
        return Err("`rule` is empty".to_owned());
    }
    let syntax = RuleSyntax::from_option(config.rule_syntax.as_deref())
        .map_err(|error| format!("ruleSyntax: {error}"))?;
    let matcher = parse_rule(&config.rule, syntax).map_err(|error| error.to_string())?;

    let entry_points = if config.entry_points.is_empty() {
        refs.entry_points.defaults.clone()
    } else {
        for entry_point in &config.entry_points {
            if !refs.entry_points.by_name.contains_key(entry_point) {
                return Err(format!(
                    "entryPoints: `{entry_point}` is not an entry point (known: {})",
                    known(refs.entry_points.by_name.keys())
                ));
            }
        }
        config.entry_points.clone()
    };

    if config.service.is_empty() {
        return Err("`service` is empty".to_owned());
    }
    let service = qualify(&config.service, provider);
    if !refs.services.contains_key(&service) {
        return Err(format!("service `{service}` does not exist or is broken"));
    }

    let middlewares = config
        .middlewares
        .iter()
        .map(|middleware| {
            let qualified = qualify(middleware, provider);
            if refs.middlewares.contains_key(&qualified) {
                Ok(qualified)
            } else {
                Err(format!(
                    "middleware `{qualified}` does not exist or is broken; the router is not served without it"
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    for entry_point in &entry_points {
        if let Some(reason) = refs.entry_points.broken.get(entry_point) {
            return Err(format!(
                "entry point `{entry_point}`: {reason}; the router is not served without it"
            ));
        }
    }

    let tls = config
        .tls
        .as_ref()
        .map(|tls| {
            let options = if tls.options.is_empty() || tls.options == "default" {
                String::new()
            } else {
                let qualified = qualify(&tls.options, provider);
                if !refs.tls_options.contains_key(&qualified) {
                    return Err(format!(
                        "tls.options `{qualified}` does not exist or is broken"
                    ));
                }
                qualified
            };
            Ok(RouterTls {
                options,
                cert_resolver: tls.cert_resolver.clone(),
                domains: tls
                    .domains
                    .iter()
                    .map(|domain| TlsDomain {
                        main: domain.main.clone(),
                        sans: domain.sans.clone(),
                    })
                    .collect(),
            })
        })
        .transpose()?;

    Ok(proto::Router {
        name: name.to_owned(),
        content_version: String::new(),
        rule: config.rule.clone(),
        matcher: Some(matcher),
        priority: if config.priority != 0 {
            config.priority
        } else {
            rule_priority(&config.rule)
        },
        entry_points,
        middlewares,
        service,
        tls,
    })
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
