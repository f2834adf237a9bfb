//! Where the Sluice binaries under test are.

use std::path::PathBuf;

/// Path of a workspace binary (`sluice-control-plane`, `sluice-proxy`) in
/// the target directory of this build. Panics with a hint when it is missing.
pub fn binary(name: &str) -> PathBuf {
    // The test executable lives in `<target>/<profile>/deps/`.
    let executable = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in <target>/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} does not exist: build the binaries first (`cargo build --workspace --bins`, which `cargo xtask ci` does)",
        path.display()
    );
    path
}
