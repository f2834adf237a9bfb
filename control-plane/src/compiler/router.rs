//! `http.routers`: rules parsed into matcher trees, references resolved.
//!
//! A router ships only when its rule parses, its entry points exist, and its
//! service and every middleware it names ship too (fail closed).

use std::collections::BTreeMap;

use sluice_proto::v1::{self as proto, Middleware, RouterTls, TlsDomain, TlsOptions};

use super::entry_point::CompiledEntryPoints;
use super::report::{CompileReport, ResourceKindName};
use super::{check_plain_name, qualify};
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

/// Compiles every router; returns those that ship.
pub(super) fn compile_routers(
    providers: &BTreeMap<String, ProviderUpdate>,
    refs: &RouterRefs<'_>,
    report: &mut CompileReport,
) -> Vec<proto::Router> {
    let mut routers = Vec::new();
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        for (name, config) in &http.routers {
            let key = ResourceKindName::router(&update.provider, name);
            report.register(&key, update, serde_json::to_value(config).ok());
            let compiled = check_plain_name(name)
                .and_then(|()| compile_router(&key.name, config, &update.provider, refs));
            match compiled {
                Ok(router) => routers.push(router),
                Err(message) => report.error(&key, message),
            }
        }
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
