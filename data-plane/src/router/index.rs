//! The routing table of one entry point: routers sorted by priority, and an
//! index that narrows a request to the few routers that can match it, so
//! that lookup does not grow with the number of routers.
//!
//! Order is Traefik's: priority descending, ties broken by router name
//! ascending (deterministic). A router's position in that order is its rank.
//!
//! Index:
//! - routers whose rule requires an exact host go into a map from host to
//!   bucket; the others (regex host, no host) go into one fallback bucket;
//! - inside a bucket, routers whose rule requires a literal path prefix
//!   (`Path`, `PathPrefix`) sit in a byte trie at the end of that prefix, the
//!   others in a plain list; a bucket of a few routers is all plain list.
//!
//! Lookup walks the request's host bucket and the fallback bucket: the plain
//! list, then every trie node along the request path. Every list is sorted by
//! rank, and a router sits only where a request it can match will look, so
//! scanning each list until its first match, or until a rank no better than
//! the best match so far, finds the highest-priority match without merging
//! lists and without allocating.

use std::collections::HashMap;
use std::sync::Arc;

use super::matcher::{Matcher, RequestView};

/// A compiled router.
#[derive(Debug)]
pub(crate) struct Route<T> {
    /// Qualified router name.
    pub(crate) name: String,
    /// Explicit priority, or the rule's length.
    pub(crate) priority: i64,
    /// The compiled rule, shared with the routes of the same router in this
    /// runtime and the next ones while the router is unchanged.
    pub(crate) matcher: Arc<Matcher>,
    /// What a matching request goes to.
    pub(crate) target: T,
}

/// A router's priority: `explicit` when set (non-zero), else the length of
/// its rule, as Traefik does.
pub(crate) fn default_priority(explicit: i64, rule: &str) -> i64 {
    match explicit {
        0 => i64::try_from(rule.len()).unwrap_or(i64::MAX),
        explicit => explicit,
    }
}

/// The routers of one entry point, indexed for lookup.
#[derive(Debug)]
pub(crate) struct RouterTable<T> {
    /// Sorted by rank.
    routes: Vec<Arc<Route<T>>>,
    by_host: HashMap<String, Bucket>,
    fallback: Bucket,
}

impl<T> RouterTable<T> {
    /// Sorts the routes and indexes them.
    pub(crate) fn new(mut routes: Vec<Arc<Route<T>>>) -> Self {
        routes.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        // Every (host, rank) pair a router requires, grouped by host below:
        // one sort instead of a growing list per host, and one key per host.
        let mut hosted: Vec<(&str, u32)> = Vec::with_capacity(routes.len());
        let mut fallback = Vec::new();
        for (rank, route) in routes.iter().enumerate() {
            let rank = u32::try_from(rank).unwrap_or(u32::MAX);
            match route.matcher.required_hosts() {
                Some(hosts) => hosted.extend(dedup(hosts).into_iter().map(|host| (host, rank))),
                None => fallback.push(rank),
            }
        }
        // By host, then rank: each host's ranks ascend.
        hosted.sort_unstable();
        let prefixes = |rank: u32| routes[rank as usize].matcher.required_path_prefixes();
        let mut by_host = HashMap::with_capacity(hosted.len());
        for group in hosted.chunk_by(|a, b| a.0 == b.0) {
            let ranks = group.iter().map(|&(_, rank)| rank);
            by_host.insert(group[0].0.to_owned(), Bucket::new(ranks, prefixes));
        }
        let fallback = Bucket::new(fallback.into_iter(), prefixes);
        Self {
            routes,
            by_host,
            fallback,
        }
    }

    /// The highest-ranked route matching the request.
    pub(crate) fn route(&self, req: &RequestView<'_>) -> Option<&Arc<Route<T>>> {
        let mut best = u32::MAX;
        if let Some(bucket) = self.by_host.get(req.host) {
            bucket.scan(&self.routes, req, &mut best);
        }
        self.fallback.scan(&self.routes, req, &mut best);
        self.routes.get(usize::try_from(best).ok()?)
    }

    /// Routes in rank order.
    pub(crate) fn routes(&self) -> &[Arc<Route<T>>] {
        &self.routes
    }
}

fn dedup(mut values: Vec<&str>) -> Vec<&str> {
    values.sort_unstable();
    values.dedup();
    values
}

/// Routers sharing a host requirement (or the lack of one).
#[derive(Debug, Default)]
struct Bucket {
    /// Routers with no literal path requirement.
    any_path: Vec<u32>,
    /// Routers by required path prefix.
    prefixes: PrefixTrie,
}

/// Buckets this small are scanned whole: a trie costs more to build (and
/// free, on every snapshot) than it saves, and most hosts have one router.
const SCANNED_WHOLE: usize = 4;

impl Bucket {
    /// A bucket of the routers ranked `ranks` (ascending); `prefixes` gives
    /// the path prefixes a rank's router requires, if any (asked only of
    /// buckets too large to scan whole).
    fn new<'a>(
        ranks: impl ExactSizeIterator<Item = u32>,
        prefixes: impl Fn(u32) -> Option<Vec<&'a str>>,
    ) -> Self {
        let mut bucket = Self::default();
        if ranks.len() <= SCANNED_WHOLE {
            bucket.any_path = ranks.collect();
            return bucket;
        }
        for rank in ranks {
            match prefixes(rank) {
                Some(prefixes) => {
                    for prefix in dedup(prefixes) {
                        bucket.prefixes.insert(prefix.as_bytes(), rank);
                    }
                }
                None => bucket.any_path.push(rank),
            }
        }
        bucket
    }

    fn scan<T>(&self, routes: &[Arc<Route<T>>], req: &RequestView<'_>, best: &mut u32) {
        scan_list(&self.any_path, routes, req, best);
        self.prefixes
            .for_each_prefix_of(req.path.as_bytes(), |ranks| {
                scan_list(ranks, routes, req, best)
            });
    }
}

/// Scans ranks (ascending) until the first match or a rank that cannot beat
/// `best`.
fn scan_list<T>(ranks: &[u32], routes: &[Arc<Route<T>>], req: &RequestView<'_>, best: &mut u32) {
    for &rank in ranks {
        if rank >= *best {
            return;
        }
        if routes[rank as usize].matcher.matches(req) {
            *best = rank;
            return;
        }
    }
}

/// A byte trie whose nodes hold the ranks of routers requiring the prefix
/// that ends there, in ascending order. Empty (no root) until the first
/// insert.
#[derive(Debug, Default)]
struct PrefixTrie {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// Children sorted by byte.
    children: Vec<(u8, u32)>,
    ranks: Vec<u32>,
}

impl PrefixTrie {
    /// Adds a router; ranks must be inserted in ascending order.
    fn insert(&mut self, prefix: &[u8], rank: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut node = 0usize;
        for &byte in prefix {
            node = match self.child(node, byte) {
                Some(child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    let children = &mut self.nodes[node].children;
                    let at = children.partition_point(|&(b, _)| b < byte);
                    children.insert(at, (byte, child as u32));
                    child
                }
            };
        }
        self.nodes[node].ranks.push(rank);
    }

    fn child(&self, node: usize, byte: u8) -> Option<usize> {
        let children = &self.nodes[node].children;
        children
            .binary_search_by_key(&byte, |&(b, _)| b)
            .ok()
            .map(|at| children[at].1 as usize)
    }

    /// Calls `f` with the ranks of every node along `path`, root included.
    fn for_each_prefix_of(&self, path: &[u8], mut f: impl FnMut(&[u32])) {
        let Some(root) = self.nodes.first() else {
            return;
        };
        let mut node = 0usize;
        f(&root.ranks);
        for &byte in path {
            match self.child(node, byte) {
                Some(child) => {
                    node = child;
                    if !self.nodes[node].ranks.is_empty() {
                        f(&self.nodes[node].ranks);
                    }
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use sluice_proto::v1::{self, MatcherList, matcher::Kind};

    fn leaf(kind: Kind) -> v1::Matcher {
        v1::Matcher { kind: Some(kind) }
    }

    fn all(children: Vec<v1::Matcher>) -> v1::Matcher {
        leaf(Kind::All(MatcherList { matchers: children }))
    }

    fn any(children: Vec<v1::Matcher>) -> v1::Matcher {
        leaf(Kind::Any(MatcherList { matchers: children }))
    }

    fn route(name: &str, priority: i64, matcher: v1::Matcher) -> Arc<Route<()>> {
        Arc::new(Route {
            name: name.to_owned(),
            priority,
            matcher: Arc::new(Matcher::compile(&matcher).unwrap()),
            target: (),
        })
    }

    fn lookup<'t>(table: &'t RouterTable<()>, host: &str, path: &str) -> Option<&'t str> {
        let headers = HeaderMap::new();
        let view = RequestView {
            host,
            path,
            method: &Method::GET,
            headers: &headers,
            query: None,
            client_ip: "127.0.0.1".parse().unwrap(),
        };
        table.route(&view).map(|r| r.name.as_str())
    }

    fn prefix(p: &str) -> v1::Matcher {
        leaf(Kind::PathPrefix(p.into()))
    }

    fn host(h: &str) -> v1::Matcher {
        leaf(Kind::Host(h.into()))
    }

    #[test]
    fn longer_prefix_wins_by_default_priority() {
        // Default priority is the rule's length.
        let table = RouterTable::new(vec![
            route("api", "PathPrefix(`/api`)".len() as i64, prefix("/api")),
            route(
                "api-v2",
                "PathPrefix(`/api/v2`)".len() as i64,
                prefix("/api/v2"),
            ),
        ]);
        assert_eq!(lookup(&table, "x", "/api/v2/users"), Some("api-v2"));
        assert_eq!(lookup(&table, "x", "/api/v1/users"), Some("api"));
        assert_eq!(lookup(&table, "x", "/apiv2"), Some("api"));
        assert_eq!(lookup(&table, "x", "/other"), None);
    }

    #[test]
    fn explicit_priority_overrides_length() {
        let table = RouterTable::new(vec![
            route("api", 100, prefix("/api")),
            route("api-v2", 21, prefix("/api/v2")),
        ]);
        assert_eq!(lookup(&table, "x", "/api/v2/users"), Some("api"));
    }

    #[test]
    fn host_regexp_outranks_host_by_length() {
        // Traefik's documented pitfall.
        let regexp_rule = r"HostRegexp(`[a-z]+\.traefik\.com`)";
        let host_rule = "Host(`foobar.traefik.com`)";
        let table = RouterTable::new(vec![
            route(
                "regexp",
                regexp_rule.len() as i64,
                leaf(Kind::HostRegexp(r"^[a-z]+\.traefik\.com$".into())),
            ),
            route("host", host_rule.len() as i64, host("foobar.traefik.com")),
        ]);
        assert_eq!(lookup(&table, "foobar.traefik.com", "/"), Some("regexp"));
    }

    #[test]
    fn ties_break_by_name() {
        let table = RouterTable::new(vec![
            route("b", 10, prefix("/")),
            route("a", 10, prefix("/")),
            route("c", 10, prefix("/")),
        ]);
        assert_eq!(lookup(&table, "x", "/"), Some("a"));
        let names: Vec<_> = table.routes().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn hosts_compare_lower_cased() {
        let table = RouterTable::new(vec![route("h", 1, host("Example.com"))]);
        assert_eq!(lookup(&table, "example.com", "/"), Some("h"));
    }

    fn random_matcher(rng: &mut StdRng) -> v1::Matcher {
        let hosts = ["a.test", "b.test", "c.test"];
        let paths = ["/", "/a", "/a/", "/a/b", "/ab", "/b", "/b/c", ""];
        let pick =
            |rng: &mut StdRng, items: &[&str]| items[rng.random_range(0..items.len())].to_owned();
        let simple = |rng: &mut StdRng| -> v1::Matcher {
            match rng.random_range(0..5) {
                0 => leaf(Kind::Host(pick(rng, &hosts))),
                1 => leaf(Kind::PathPrefix(pick(rng, &paths))),
                2 => leaf(Kind::Path(pick(rng, &paths))),
                3 => leaf(Kind::HostRegexp("^[ab]\\.test$".into())),
                _ => leaf(Kind::Method(
                    if rng.random_bool(0.5) { "GET" } else { "POST" }.into(),
                )),
            }
        };
        match rng.random_range(0..4) {
            0 => simple(rng),
            1 => all(vec![simple(rng), simple(rng)]),
            2 => any(vec![simple(rng), simple(rng)]),
            _ => all(vec![simple(rng), any(vec![simple(rng), simple(rng)])]),
        }
    }

    #[test]
    fn index_agrees_with_linear_scan() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..50 {
            let routes: Vec<_> = (0..40)
                .map(|i| {
                    let priority = rng.random_range(0..5);
                    route(&format!("r{i:02}"), priority, random_matcher(&mut rng))
                })
                .collect();
            let table = RouterTable::new(routes);
            for host in ["a.test", "b.test", "c.test", "d.test"] {
                for path in [
                    "/", "/a", "/a/", "/a/b", "/a/bc", "/ab", "/b", "/b/c", "/c", "/aa",
                ] {
                    let headers = HeaderMap::new();
                    let view = RequestView {
                        host,
                        path,
                        method: &Method::GET,
                        headers: &headers,
                        query: None,
                        client_ip: "127.0.0.1".parse().unwrap(),
                    };
                    let linear = table
                        .routes()
                        .iter()
                        .find(|r| r.matcher.matches(&view))
                        .map(|r| r.name.as_str());
                    assert_eq!(
                        lookup(&table, host, path),
                        linear,
                        "round {round} {host}{path}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_routers_are_indexed() {
        let routes: Vec<_> = (0..10_000)
            .map(|i| {
                route(
                    &format!("r{i}"),
                    30,
                    all(vec![
                        host(&format!("h{}.test", i % 100)),
                        prefix(&format!("/svc{i}")),
                    ]),
                )
            })
            .collect();
        let table = RouterTable::new(routes);
        assert_eq!(lookup(&table, "h42.test", "/svc9942/x"), Some("r9942"));
        assert_eq!(lookup(&table, "h42.test", "/svc9943/x"), None);
        // A request reaches at most the routers whose prefix it starts with.
        let bucket = &table.by_host["h42.test"];
        let mut candidates = 0;
        bucket
            .prefixes
            .for_each_prefix_of(b"/svc9942/x", |ranks| candidates += ranks.len());
        assert_eq!(candidates + bucket.any_path.len(), 1);
    }
}
