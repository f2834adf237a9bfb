//! A `sluice-control-plane` process with its own configuration directory.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tempfile::TempDir;

use crate::{
    ChildProcess, ControlPlaneOptions, binary, eventually, free_port, get, run_to_completion,
};

/// How long a change may take to reach a snapshot or a proxy (debounce,
/// compile, stream, apply), with ample margin for a loaded machine.
pub(crate) const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(30);

/// A running control plane on free ports, reading a file-provider directory.
#[derive(Debug)]
pub struct ControlPlane {
    pub process: ChildProcess,
    /// `127.0.0.1:PORT` of the gRPC listener.
    pub grpc_address: String,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub api_url: String,
    /// Entry points (name, port) in the static configuration.
    pub entry_points: Vec<(String, u16)>,
    dir: TempDir,
}

impl ControlPlane {
    /// Starts a control plane with these entry points (name -> port on
    /// 127.0.0.1) and dynamic configuration files, and waits for its API.
    pub async fn start(entry_points: &[&str], dynamic_files: &[(&str, &str)]) -> Self {
        let mut options = ControlPlaneOptions::new();
        for name in entry_points {
            options = options.entry_point(name);
        }
        for (name, contents) in dynamic_files {
            options = options.dynamic_file(name, contents);
        }
        Self::start_with(options).await
    }

    /// Starts a control plane as `options` describe (entry point settings
    /// such as `forwardedHeaders`, debounce, a chosen gRPC port), and waits
    /// for its API.
    pub async fn start_with(options: ControlPlaneOptions) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("dynamic")).expect("dynamic directory");
        for (name, contents) in &options.dynamic_files {
            std::fs::write(dir.path().join("dynamic").join(name), contents).expect("writing file");
        }
        let entry_points: Vec<(String, u16)> = options
            .entry_points
            .iter()
            .map(|(name, _)| (name.clone(), free_port()))
            .collect();
        let grpc_address = format!("127.0.0.1:{}", options.grpc_port.unwrap_or_else(free_port));
        let api_url = format!("http://127.0.0.1:{}", free_port());
        let mut config = String::from("entryPoints:\n");
        for ((name, port), (_, settings)) in entry_points.iter().zip(&options.entry_points) {
            config.push_str(&format!("  {name}:\n    address: \"127.0.0.1:{port}\"\n"));
            for line in settings.lines() {
                config.push_str(&format!("    {line}\n"));
            }
        }
        config.push_str(&format!(
            "providers:\n  file:\n    directory: \"{}\"\n    watch: true\n",
            dir.path().join("dynamic").display(),
        ));
        for (name, settings) in &options.providers {
            config.push_str(&format!("  {name}:\n"));
            for line in settings.lines() {
                config.push_str(&format!("    {line}\n"));
            }
        }
        config.push_str(&format!(
            "controlPlane:\n  grpcAddress: \"{grpc_address}\"\n  apiAddress: \"{}\"\n  \
             debounce:\n    quietPeriod: {}\n    maxDelay: {}\n",
            api_url.trim_start_matches("http://"),
            options.quiet_period,
            options.max_delay,
        ));
        for line in options.control_plane_settings.lines() {
            config.push_str(&format!("  {line}\n"));
        }
        std::fs::write(dir.path().join("sluice.yml"), config).expect("writing static config");
        let process = Self::spawn(dir.path());
        let control_plane = Self {
            process,
            grpc_address,
            api_url,
            entry_points,
            dir,
        };
        control_plane.wait_api().await;
        control_plane
    }

    fn spawn(dir: &Path) -> ChildProcess {
        ChildProcess::spawn(
            "sluice-control-plane",
            &binary("sluice-control-plane"),
            &[
                "run".to_owned(),
                "--configFile".to_owned(),
                dir.join("sluice.yml").display().to_string(),
            ],
        )
    }

    async fn wait_api(&self) {
        let url = format!("{}/api/version", self.api_url);
        eventually(
            "the control plane's admin API",
            Duration::from_secs(20),
            || async { get(&url).await.map(|_| ()) },
        )
        .await;
    }

    /// `http://127.0.0.1:PORT` for proxies.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_address)
    }

    /// The port of an entry point.
    pub fn entry_point_port(&self, name: &str) -> u16 {
        self.entry_points
            .iter()
            .find(|(entry_point, _)| entry_point == name)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| panic!("no entry point `{name}`"))
    }

    /// Path of a file in the dynamic configuration directory.
    pub fn dynamic_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("dynamic").join(name)
    }

    /// Writes a dynamic configuration file the way editors do: to a
    /// temporary file, then renamed over the target.
    pub fn write_dynamic(&self, name: &str, contents: &str) {
        let target = self.dynamic_path(name);
        let temporary = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&temporary, contents).expect("writing temporary file");
        std::fs::rename(&temporary, &target).expect("renaming into place");
    }

    /// Deletes a dynamic configuration file.
    pub fn remove_dynamic(&self, name: &str) {
        std::fs::remove_file(self.dynamic_path(name)).expect("removing dynamic file");
    }

    /// Path of the static configuration file this control plane runs with.
    pub fn static_config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.yml")
    }

    /// Runs `sluice-control-plane validate --configFile <static file>` on
    /// this control plane's configuration, as a user would.
    pub fn validate(&self) -> Output {
        let config = self.static_config_path();
        run_to_completion(
            &binary("sluice-control-plane"),
            &["validate", "--configFile", &config.display().to_string()],
            &[],
            Duration::from_secs(30),
        )
    }

    /// GET an admin API path, as JSON.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let response = get(&format!("{}{path}", self.api_url))
            .await
            .unwrap_or_else(|error| panic!("admin API {path}: {error}"));
        response.json()
    }

    /// The current snapshot version (`null` before the first).
    pub async fn snapshot_version(&self) -> Option<String> {
        self.api("/api/version").await["snapshotVersion"]
            .as_str()
            .map(str::to_owned)
    }

    /// Waits for the first compiled snapshot and returns its version.
    pub async fn current_version(&self) -> String {
        eventually("a compiled snapshot", SNAPSHOT_DEADLINE, || async {
            self.snapshot_version()
                .await
                .ok_or_else(|| "no snapshot yet".to_owned())
        })
        .await
    }

    /// Waits until the published snapshot version is other than `old`, and
    /// returns it.
    pub async fn next_version(&self, old: &str) -> String {
        eventually("a new snapshot version", SNAPSHOT_DEADLINE, || async {
            match self.snapshot_version().await {
                Some(version) if version != old => Ok(version),
                other => Err(format!("version is still {other:?}")),
            }
        })
        .await
    }

    /// The `/api/nodes` entry for `node_id`, or why there is none.
    pub async fn node(&self, node_id: &str) -> Result<serde_json::Value, String> {
        let nodes = self.api("/api/nodes").await;
        nodes
            .as_array()
            .and_then(|nodes| nodes.iter().find(|node| node["nodeId"] == node_id))
            .cloned()
            .ok_or_else(|| format!("`{node_id}` is not in /api/nodes: {nodes}"))
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill_hard(&mut self) {
        self.process.signal("KILL");
        self.process.wait_exit(Duration::from_secs(5));
    }

    /// Starts the process again with the same configuration and ports.
    pub async fn restart(&mut self) {
        self.process.kill();
        self.process = Self::spawn(self.dir.path());
        self.wait_api().await;
    }
}
