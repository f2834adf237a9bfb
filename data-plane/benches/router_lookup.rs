//! How router lookup grows with the number of routers (issue 7, item 2):
//! one entry point with 10, 1,000 and 10,000 routers, router *i* ruled
//! ``Host(`ri.bench`) && PathPrefix(`/ri`)`` (the rule `cargo xtask bench`
//! loads the proxies with), compiled and indexed as the proxy does it
//! ([`RouterIndex`]). Each lookup is the routing step of one request: host
//! canonicalised, path normalised, index consulted.
//!
//! - `hit`: a request for the last-defined router;
//! - `miss`: a request for a host no router names (the 404 path).
//!
//! ```sh
//! cargo bench -p sluice-data-plane --bench router_lookup
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sluice_data_plane::RouterIndex;
use sluice_proto::v1::{self, MatcherList, matcher::Kind};

/// Router counts measured.
const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn leaf(kind: Kind) -> v1::Matcher {
    v1::Matcher { kind: Some(kind) }
}

/// Router `i` as the control plane compiles ``Host(`ri.bench`) && PathPrefix(`/ri`)``.
fn router(i: usize) -> v1::Router {
    let host = format!("r{i}.bench");
    let prefix = format!("/r{i}");
    v1::Router {
        name: format!("r{i}@file"),
        rule: format!("Host(`{host}`) && PathPrefix(`{prefix}`)"),
        matcher: Some(leaf(Kind::All(MatcherList {
            matchers: vec![leaf(Kind::Host(host)), leaf(Kind::PathPrefix(prefix))],
        }))),
        entry_points: vec!["web".to_owned()],
        service: "backend@file".to_owned(),
        ..v1::Router::default()
    }
}

fn index(size: usize) -> RouterIndex {
    let routers: Vec<v1::Router> = (0..size).map(router).collect();
    RouterIndex::new(&routers).expect("the generated rules compile")
}

fn router_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_lookup");
    for size in SIZES {
        let index = index(size);
        let last = size - 1;
        let (host, path) = (format!("r{last}.bench"), format!("/r{last}/item"));
        let expected = format!("r{last}@file");
        assert_eq!(index.route(&host, &path), Some(expected.as_str()));
        group.bench_with_input(BenchmarkId::new("hit", size), &size, |b, _| {
            b.iter(|| black_box(index.route(black_box(&host), black_box(&path))).is_some())
        });
        assert_eq!(index.route("unknown.bench", &path), None);
        group.bench_with_input(BenchmarkId::new("miss", size), &size, |b, _| {
            b.iter(|| {
                black_box(index.route(black_box("unknown.bench"), black_box(&path))).is_some()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, router_lookup);
criterion_main!(benches);
