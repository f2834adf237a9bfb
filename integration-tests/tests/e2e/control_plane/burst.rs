//! Debounce: a burst of edits gives a handful of snapshot versions, and the
//! last one is exactly the last file written.

use integration_tests::ControlPlane;

use super::{generation, routes_file, wait_for_routes};

const EDITS: u32 = 1_000;
/// "A handful": the file watcher and the aggregator both debounce (quiet
/// period 50 ms, at most 500 ms), so a burst that lasts a few seconds on a
/// slow machine still gives far fewer versions than this.
const MAX_GENERATIONS: u64 = 20;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_edits_gives_a_handful_of_versions_and_the_last_is_exact() {
    let rule = |n: u32| format!("Host(`burst-{n}.example`) && PathPrefix(`/{n}`)");
    let control_plane = ControlPlane::start(
        &["web"],
        &[("routes.yml", &routes_file(&[("burst", &rule(0))]))],
    )
    .await;
    wait_for_routes(&control_plane, &[("burst@file", &rule(0))]).await;
    assert_eq!(generation(&control_plane).await, 1);

    // Each edit a complete, valid file, saved the way editors do.
    for n in 1..=EDITS {
        control_plane.write_dynamic("routes.yml", &routes_file(&[("burst", &rule(n))]));
    }

    let last = wait_for_routes(&control_plane, &[("burst@file", &rule(EDITS))]).await;
    let generation = generation(&control_plane).await;
    assert!(
        (2..=MAX_GENERATIONS).contains(&generation),
        "{EDITS} edits gave {generation} snapshot generations (current version {last})"
    );
    assert!(last.starts_with(&format!("{generation}-")), "{last}");
}
