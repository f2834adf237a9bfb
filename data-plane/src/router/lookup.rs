//! Router lookup on its own, outside a running proxy: the compiled matchers
//! and the index one entry point uses, built from proto routers. It exists
//! for the `router_lookup` benchmark (`data-plane/benches/`), which measures
//! how lookup cost grows with the number of routers.

use std::sync::Arc;

use http::{HeaderMap, Method};
use sluice_proto::v1;

use super::index::{Route, RouterTable, default_priority};
use super::matcher::{RequestView, canonical_host};
use super::path::normalize;
use crate::runtime::{BuildError, router_matcher};

/// The routers of one entry point, compiled and indexed as the proxy's
/// runtime does it, with no services or middlewares behind them.
#[derive(Debug)]
pub struct RouterIndex {
    table: RouterTable<()>,
    headers: HeaderMap,
}

impl RouterIndex {
    /// Compiles every router's matcher and indexes them (priority: the
    /// explicit one, else the rule's length). Entry points, TLS, services
    /// and middlewares are ignored.
    ///
    /// # Errors
    ///
    /// [`BuildError::Rule`] naming the first router whose matcher is
    /// missing or does not compile.
    pub fn new<'a>(routers: impl IntoIterator<Item = &'a v1::Router>) -> Result<Self, BuildError> {
        let routes = routers
            .into_iter()
            .map(|router| {
                let matcher = router_matcher(router)?;
                Ok(Arc::new(Route {
                    name: router.name.clone(),
                    priority: default_priority(router.priority, &router.rule),
                    matcher: Arc::new(matcher),
                    target: (),
                }))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Self {
            table: RouterTable::new(routes),
            headers: HeaderMap::new(),
        })
    }

    /// The name of the router that takes a `GET` of `path` with this
    /// `Host` (`authority`, port allowed), resolved the way a request is:
    /// host canonicalised, path normalised, then the index. `None` when no
    /// router matches or the path is rejected.
    pub fn route(&self, authority: &str, path: &str) -> Option<&str> {
        let path = normalize(path).ok()?;
        let host = canonical_host(authority);
        let view = RequestView {
            host: &host,
            path: &path,
            method: &Method::GET,
            headers: &self.headers,
            query: None,
            client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        };
        self.table.route(&view).map(|route| route.name.as_str())
    }

    /// How many routers are indexed.
    pub fn len(&self) -> usize {
        self.table.routes().len()
    }

    /// Whether no router is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.routes().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::v1::{MatcherList, matcher::Kind};

    fn router(name: &str, host: &str, prefix: &str) -> v1::Router {
        let leaf = |kind| v1::Matcher { kind: Some(kind) };
        v1::Router {
            name: name.to_owned(),
            rule: format!("Host(`{host}`) && PathPrefix(`{prefix}`)"),
            matcher: Some(leaf(Kind::All(MatcherList {
                matchers: vec![
                    leaf(Kind::Host(host.to_owned())),
                    leaf(Kind::PathPrefix(prefix.to_owned())),
                ],
            }))),
            ..v1::Router::default()
        }
    }

    #[test]
    fn routes_by_host_and_path_as_a_request_would() {
        let routers = [
            router("short", "a.test", "/"),
            router("long", "a.test", "/api"),
            router("other", "b.test", "/"),
        ];
        let index = RouterIndex::new(&routers).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.route("A.test:8080", "/api/x"), Some("long"));
        assert_eq!(index.route("a.test", "/web"), Some("short"));
        assert_eq!(index.route("b.test", "/./api"), Some("other"));
        assert_eq!(index.route("c.test", "/"), None);
    }

    #[test]
    fn a_router_without_matcher_is_named() {
        let routers = [v1::Router {
            name: "broken@file".to_owned(),
            ..v1::Router::default()
        }];
        let error = RouterIndex::new(&routers).unwrap_err();
        assert!(matches!(error, BuildError::Rule { router, .. } if router == "broken@file"));
    }
}
