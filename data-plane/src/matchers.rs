//! Compiled router matchers kept from one runtime build to the next: a
//! snapshot that changes one router of thousands compiles one matcher, and
//! the routes of unchanged routers share theirs with the runtime before.

use std::iter::Peekable;
use std::sync::Arc;
use std::vec;

use sluice_proto::v1;

use crate::router::Matcher;
use crate::runtime::{BuildError, router_matcher};

/// The last build's matchers, walked side by side with the next build's
/// routers: both come sorted by name, so finding a router's matcher is a
/// step along a list, not a search.
#[derive(Debug)]
pub(crate) struct MatcherCache {
    /// The last successful build's matchers by router name, being walked.
    previous: Peekable<vec::IntoIter<CachedMatcher>>,
    /// This build's, in the order it asked.
    current: Vec<CachedMatcher>,
}

#[derive(Debug)]
struct CachedMatcher {
    router: String,
    /// The control plane's hash of the whole router.
    content_version: String,
    matcher: Arc<Matcher>,
}

impl Default for MatcherCache {
    fn default() -> Self {
        Self {
            previous: Vec::new().into_iter().peekable(),
            current: Vec::new(),
        }
    }
}

impl MatcherCache {
    /// Starts a build. After a build that failed half way the walk cannot
    /// resume, so everything is compiled again.
    pub(crate) fn start_build(&mut self) {
        if !self.current.is_empty() {
            *self = Self::default();
        }
    }

    /// The compiled matcher of `router`, compiled again only when its
    /// content version changed. A router without one (not from a control
    /// plane) is always compiled; routers asked out of name order are
    /// compiled, not found.
    pub(crate) fn get(&mut self, router: &v1::Router) -> Result<Arc<Matcher>, BuildError> {
        if router.content_version.is_empty() {
            return router_matcher(router).map(Arc::new);
        }
        while self
            .previous
            .next_if(|cached| cached.router < router.name)
            .is_some()
        {}
        let matcher = match self.previous.next_if(|cached| cached.router == router.name) {
            Some(cached) if cached.content_version == router.content_version => {
                let matcher = Arc::clone(&cached.matcher);
                self.current.push(cached);
                return Ok(matcher);
            }
            _ => Arc::new(router_matcher(router)?),
        };
        self.current.push(CachedMatcher {
            router: router.name.clone(),
            content_version: router.content_version.clone(),
            matcher: Arc::clone(&matcher),
        });
        Ok(matcher)
    }

    /// Ends a build that succeeded: its matchers are kept for the next one,
    /// and those of routers it no longer holds are dropped.
    pub(crate) fn finish_build(&mut self) {
        let mut current = std::mem::take(&mut self.current);
        if !current.is_sorted_by(|a, b| a.router <= b.router) {
            current.sort_by(|a, b| a.router.cmp(&b.router));
        }
        self.previous = current.into_iter().peekable();
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::v1::matcher::Kind;

    use super::*;

    fn router(name: &str, host: &str, content_version: &str) -> v1::Router {
        v1::Router {
            name: name.to_owned(),
            content_version: content_version.to_owned(),
            matcher: Some(v1::Matcher {
                kind: Some(Kind::Host(host.to_owned())),
            }),
            ..v1::Router::default()
        }
    }

    /// One successful build asking for `routers` (name, host, content version).
    fn build(cache: &mut MatcherCache, routers: &[(&str, &str, &str)]) -> Vec<Arc<Matcher>> {
        cache.start_build();
        let matchers = routers
            .iter()
            .map(|&(name, host, version)| cache.get(&router(name, host, version)).unwrap())
            .collect();
        cache.finish_build();
        matchers
    }

    #[test]
    fn an_unchanged_router_keeps_its_matcher_and_a_changed_one_is_compiled_again() {
        let mut cache = MatcherCache::default();
        let first = build(&mut cache, &[("a@file", "a.test", "1")]);
        let same = build(&mut cache, &[("a@file", "a.test", "1")]);
        assert!(Arc::ptr_eq(&first[0], &same[0]));
        let changed = build(&mut cache, &[("a@file", "b.test", "2")]);
        assert!(!Arc::ptr_eq(&first[0], &changed[0]));
        assert_eq!(changed[0].required_hosts(), Some(vec!["b.test"]));
    }

    #[test]
    fn routers_a_build_did_not_use_are_forgotten() {
        let mut cache = MatcherCache::default();
        let both = build(
            &mut cache,
            &[("a@file", "a.test", "1"), ("b@file", "b.test", "1")],
        );
        build(&mut cache, &[("a@file", "a.test", "1")]);
        let b_again = build(&mut cache, &[("b@file", "b.test", "1")]);
        assert!(!Arc::ptr_eq(&both[1], &b_again[0]));
    }

    #[test]
    fn a_failed_build_leaves_a_cache_that_still_answers_right() {
        let mut cache = MatcherCache::default();
        build(
            &mut cache,
            &[("a@file", "a.test", "1"), ("b@file", "b.test", "1")],
        );
        cache.start_build();
        cache.get(&router("a@file", "a.test", "1")).unwrap();
        // The build fails here: no finish_build.
        let b = build(&mut cache, &[("b@file", "c.test", "2")]);
        assert_eq!(b[0].required_hosts(), Some(vec!["c.test"]));
    }

    #[test]
    fn routers_out_of_name_order_are_compiled_right() {
        let mut cache = MatcherCache::default();
        let out_of_order = [("b@file", "b.test", "1"), ("a@file", "a.test", "1")];
        build(&mut cache, &out_of_order);
        let again = build(&mut cache, &out_of_order);
        assert_eq!(again[0].required_hosts(), Some(vec!["b.test"]));
        assert_eq!(again[1].required_hosts(), Some(vec!["a.test"]));
    }

    #[test]
    fn routers_without_a_content_version_are_not_cached() {
        let mut cache = MatcherCache::default();
        let first = build(&mut cache, &[("a@file", "a.test", "")]);
        let second = build(&mut cache, &[("a@file", "b.test", "")]);
        assert_eq!(second[0].required_hosts(), Some(vec!["b.test"]));
        assert!(!Arc::ptr_eq(&first[0], &second[0]));
    }
}
