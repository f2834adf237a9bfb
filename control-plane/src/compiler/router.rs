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

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, btree_map};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use sluice_proto::v1::{self as proto, Middleware, RouterTls, TlsDomain, TlsOptions};

use super::entry_point::CompiledEntryPoints;
use super::report::{CompileReport, ResourceKindName, ResourceStatus, shown};
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

/// The outcome of every router of the last compilation, by provider.
#[derive(Debug, Default)]
pub(super) struct RouterCache {
    /// The names the cached outcomes were compiled against.
    names: Option<ReferencedNames>,
    /// Each provider's routers in the order its configuration lists them
    /// (by name), so a compilation walks both side by side, without a
    /// lookup per router.
    by_provider: HashMap<String, Vec<CachedRouter>>,
}

#[derive(Debug)]
struct CachedRouter {
    /// The name in the provider's configuration.
    name: String,
    config: Arc<RouterConfig>,
    /// The router's entry in the report (qualified name, error included).
    status: Arc<ResourceStatus>,
    /// The sealed router, shared by every snapshot that holds it; `None`
    /// when it is left out.
    router: Option<Arc<proto::Router>>,
}

impl CachedRouter {
    fn compile(
        name: &str,
        config: &Arc<RouterConfig>,
        update: &ProviderUpdate,
        refs: &RouterRefs<'_>,
    ) -> Self {
        let provider = &update.provider;
        let key = ResourceKindName::router(provider, name);
        let mut status = ResourceStatus::defined_by(&key, update, shown(&**config));
        let router = match check_plain_name(name)
            .and_then(|()| compile_router(&key.name, config, provider, refs))
        {
            Ok(mut router) => {
                stamp_content_version(&mut router);
                Some(Arc::new(router))
            }
            Err(message) => {
                status.disable(message);
                None
            }
        };
        Self {
            name: name.to_owned(),
            config: Arc::clone(config),
            status: Arc::new(status),
            router,
        }
    }

    /// Keeps the report's origin right when the router moved (another file).
    fn set_origin(&mut self, origin: Option<&String>) {
        if origin != self.status.origin.as_ref() {
            Arc::make_mut(&mut self.status).origin = origin.cloned();
        }
    }
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
/// returns those that ship, sealed and sorted by name. The cache keeps only
/// this compilation's routers.
pub(super) fn compile_routers(
    providers: &BTreeMap<String, ProviderUpdate>,
    refs: &RouterRefs<'_>,
    report: &mut CompileReport,
    cache: &mut RouterCache,
) -> Vec<Arc<proto::Router>> {
    cache.check_names(refs);
    let mut last_compile = std::mem::take(&mut cache.by_provider);
    let total = providers
        .values()
        .filter_map(|update| update.config.http.as_ref())
        .map(|http| http.routers.len())
        .sum();
    let mut outcomes = Vec::with_capacity(total);
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        let previous = last_compile.remove(&update.provider);
        let mut previous = previous.unwrap_or_default().into_iter().peekable();
        let mut origins = RouterOrigins::new(&update.origins);
        let mut current = Vec::with_capacity(http.routers.len());
        for (name, config) in &http.routers {
            // Routers gone since the last compilation are dropped.
            while previous.next_if(|cached| cached.name < *name).is_some() {}
            let mut cached = match previous.next_if(|cached| cached.name == *name) {
                Some(mut cached)
                    if Arc::ptr_eq(&cached.config, config) || cached.config == *config =>
                {
                    // Next time the pointers match.
                    cached.config = Arc::clone(config);
                    cached
                }
                _ => CachedRouter::compile(name, config, update, refs),
            };
            cached.set_origin(origins.of(name));
            outcomes.push((Arc::clone(&cached.status), cached.router.clone()));
            current.push(cached);
        }
        cache.by_provider.insert(update.provider.clone(), current);
    }
    // Qualified names do not keep the configuration's order (`r10@file`
    // sorts before `r1@file`), and providers interleave. One sort serves
    // both the report and the routers: both go by qualified name.
    outcomes.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
    let mut routers = Vec::with_capacity(outcomes.len());
    let mut statuses = Vec::with_capacity(outcomes.len());
    for (status, router) in outcomes {
        routers.extend(router);
        let key = ResourceKindName::qualified(status.kind, &status.name);
        statuses.push((key, status));
    }
    report.register_sorted(statuses);
    routers
}

/// A provider's `origins` for its routers (`http.routers.<name>`), read in
/// name order alongside the routers themselves.
struct RouterOrigins<'a> {
    entries: Peekable<btree_map::Range<'a, String, String>>,
}

impl<'a> RouterOrigins<'a> {
    const PREFIX: &'static str = "http.routers.";

    fn new(origins: &'a BTreeMap<String, String>) -> Self {
        let from = (Bound::Included(Self::PREFIX), Bound::Unbounded);
        Self {
            entries: origins.range::<str, _>(from).peekable(),
        }
    }

    /// The origin of router `name`; names must come in increasing order.
    fn of(&mut self, name: &str) -> Option<&'a String> {
        while let Some((key, origin)) = self.entries.peek() {
            let key_name = key.strip_prefix(Self::PREFIX)?;
            match key_name.cmp(name) {
                Ordering::Less => {
                    self.entries.next();
                }
                Ordering::Equal => return Some(origin),
                Ordering::Greater => return None,
            }
        }
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_origins_are_read_in_step_with_the_routers() {
        let origins: BTreeMap<String, String> = [
            ("http.middlewares.a", "m.yml"),
            ("http.routers.a", "a.yml"),
            ("http.routers.b-c", "bc.yml"),
            ("http.routers.gone", "gone.yml"),
            ("http.routers.z", "z.yml"),
            ("http.services.b", "s.yml"),
        ]
        .into_iter()
        .map(|(key, file)| (key.to_owned(), file.to_owned()))
        .collect();
        let mut walk = RouterOrigins::new(&origins);
        let found: Vec<Option<&str>> = ["a", "b", "b-c", "x", "z", "zz"]
            .into_iter()
            .map(|name| walk.of(name).map(String::as_str))
            .collect();
        assert_eq!(
            found,
            [
                Some("a.yml"),
                None,
                Some("bc.yml"),
                None,
                Some("z.yml"),
                None
            ]
        );
    }
}
