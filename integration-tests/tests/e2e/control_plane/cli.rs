//! The command line: static configuration from file, environment and flags
//! (flags win, then the environment), unknown keys, `version`.

use std::path::Path;
use std::time::Duration;

use integration_tests::{
    ChildProcess, binary, eventually, free_port, get, printed, run_to_completion,
};

/// Starts `sluice-control-plane run --configFile <config> <flags...>` with
/// extra environment variables.
fn run_control_plane(config: &Path, flags: &[String], env: &[(&str, &str)]) -> ChildProcess {
    let mut args = vec![
        "run".to_owned(),
        "--configFile".to_owned(),
        config.display().to_string(),
    ];
    args.extend_from_slice(flags);
    ChildProcess::spawn_with_env(
        "sluice-control-plane",
        &binary("sluice-control-plane"),
        &args,
        env,
    )
}

/// Waits until the admin API answers on `port`.
async fn wait_api(port: u16) {
    let url = format!("http://127.0.0.1:{port}/api/version");
    eventually(
        &format!("the admin API on port {port}"),
        Duration::from_secs(20),
        || async { get(&url).await.map(|_| ()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_override_the_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("sluice.yml");
    std::fs::write(
        &config,
        format!(
            "controlPlane:\n  grpcAddress: \"127.0.0.1:{}\"\n  apiAddress: \"127.0.0.1:{file_port}\"\n",
            free_port()
        ),
    )
    .expect("writing static config");
    let env_address = format!("127.0.0.1:{env_port}");
    let env = [("SLUICE_CONTROLPLANE_APIADDRESS", env_address.as_str())];

    // One process has one admin address: where it answers is what won.
    // File, environment and flag: the flag wins.
    let flag = format!("--controlPlane.apiAddress=127.0.0.1:{flag_port}");
    let mut process = run_control_plane(&config, &[flag], &env);
    wait_api(flag_port).await;
    process.kill();

    // File and environment: the environment wins.
    let mut process = run_control_plane(&config, &[], &env);
    wait_api(env_port).await;
    process.kill();

    // The file alone.
    let _process = run_control_plane(&config, &[], &[]);
    wait_api(file_port).await;
}

#[tokio::test]
async fn an_unknown_static_key_stops_run_with_the_file_and_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("sluice.yml");
    std::fs::write(
        &config,
        format!(
            "entryPoints:\n  web:\n    adress: \"127.0.0.1:{}\"\ncontrolPlane:\n  \
             grpcAddress: \"127.0.0.1:{}\"\n  apiAddress: \"127.0.0.1:{}\"\n",
            free_port(),
            free_port(),
            free_port()
        ),
    )
    .expect("writing static config");
    let config_text = config.display().to_string();
    let output = run_to_completion(
        &binary("sluice-control-plane"),
        &["run", "--configFile", &config_text],
        &[],
        Duration::from_secs(20),
    );
    let printed = printed(&output);
    assert!(!output.status.success(), "run accepted `adress`: {printed}");
    assert!(
        printed.contains(&config_text),
        "the file is not named: {printed}"
    );
    assert!(
        printed.contains("entryPoints.web.adress"),
        "the key is not named: {printed}"
    );
}

#[tokio::test]
async fn version_prints_the_version_and_the_commit() {
    let output = run_to_completion(
        &binary("sluice-control-plane"),
        &["version"],
        &[],
        Duration::from_secs(20),
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    // The workspace shares one version, so this crate's is the binary's.
    assert!(
        printed.contains(env!("CARGO_PKG_VERSION")),
        "no version in: {printed}"
    );
    let commit = printed
        .split_once("commit ")
        .map(|(_, rest)| rest.trim().trim_end_matches(')'))
        .unwrap_or_else(|| panic!("no commit in: {printed}"));
    // Built from a git checkout (as here), the commit is an abbreviated hash;
    // elsewhere it is `unknown`.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds integration-tests");
    if workspace.join(".git").exists() {
        assert!(
            commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "`{commit}` is not a commit hash: {printed}"
        );
    } else {
        assert_eq!(commit, "unknown", "{printed}");
    }
}
