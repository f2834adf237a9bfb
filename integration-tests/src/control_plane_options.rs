//! How a [`ControlPlane`] is started, builder-style, for scenarios that need
//! more than entry point names and dynamic files.

use crate::ControlPlane;

/// Static and dynamic configuration of a control plane to start.
///
/// ```ignore
/// let control_plane = ControlPlaneOptions::new()
///     .entry_point("web")
///     .entry_point_with("trusted", "forwardedHeaders:\n  insecure: true")
///     .dynamic_file("routes.yml", ROUTES)
///     .debounce("10ms", "200ms")
///     .start()
///     .await;
/// ```
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// Entry point names, each with YAML settings besides its address.
    pub(crate) entry_points: Vec<(String, String)>,
    /// Dynamic configuration files (name, contents).
    pub(crate) dynamic_files: Vec<(String, String)>,
    /// `controlPlane.debounce.quietPeriod`.
    pub(crate) quiet_period: String,
    /// `controlPlane.debounce.maxDelay`.
    pub(crate) max_delay: String,
    /// gRPC port on 127.0.0.1 (a free one when `None`).
    pub(crate) grpc_port: Option<u16>,
    /// More providers beside the file provider: (name, YAML settings).
    pub(crate) providers: Vec<(String, String)>,
    /// More `controlPlane` settings, as YAML lines (`tls:`, `token:`).
    pub(crate) control_plane_settings: String,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            entry_points: Vec::new(),
            dynamic_files: Vec::new(),
            quiet_period: "50ms".to_owned(),
            max_delay: "500ms".to_owned(),
            grpc_port: None,
            providers: Vec::new(),
            control_plane_settings: String::new(),
        }
    }
}

impl ControlPlaneOptions {
    /// No entry point, no dynamic file, debounce 50 ms / 500 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// An entry point listening on a free port of 127.0.0.1.
    pub fn entry_point(self, name: &str) -> Self {
        self.entry_point_with(name, "")
    }

    /// An entry point with `settings`: YAML written under
    /// `entryPoints.<name>` beside its address, e.g.
    /// `"forwardedHeaders:\n  insecure: true"`.
    pub fn entry_point_with(mut self, name: &str, settings: &str) -> Self {
        self.entry_points
            .push((name.to_owned(), settings.to_owned()));
        self
    }

    /// A dynamic configuration file present from the start.
    pub fn dynamic_file(mut self, name: &str, contents: &str) -> Self {
        self.dynamic_files
            .push((name.to_owned(), contents.to_owned()));
        self
    }

    /// Debounce of file changes (`controlPlane.debounce`), as durations
    /// (`10ms`, `1s`).
    pub fn debounce(mut self, quiet_period: &str, max_delay: &str) -> Self {
        quiet_period.clone_into(&mut self.quiet_period);
        max_delay.clone_into(&mut self.max_delay);
        self
    }

    /// Listens for gRPC on this port of 127.0.0.1 (e.g. one a proxy already
    /// tries to reach).
    pub fn grpc_port(mut self, port: u16) -> Self {
        self.grpc_port = Some(port);
        self
    }

    /// Another provider beside the file provider: `settings` is YAML written
    /// under `providers.<name>`, e.g. `provider("consul", "endpoints:
    /// [\"127.0.0.1:8500\"]")`.
    pub fn provider(mut self, name: &str, settings: &str) -> Self {
        self.providers.push((name.to_owned(), settings.to_owned()));
        self
    }

    /// Adds `controlPlane` settings, as YAML lines relative to `controlPlane`.
    pub fn control_plane_settings(mut self, settings: &str) -> Self {
        self.control_plane_settings.push_str(settings);
        self
    }

    /// Starts the control plane and waits for its API.
    pub async fn start(self) -> ControlPlane {
        ControlPlane::start_with(self).await
    }
}
