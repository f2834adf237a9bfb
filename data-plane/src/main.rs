//! `sluice-proxy`: the Sluice data plane.
//!
//! - `run`: serve the snapshots of a control plane until SIGTERM/SIGINT;
//! - `healthcheck`: exit 0 when the admin endpoint's `/ping` answers;
//! - `version`: print the version and git commit.
//!
//! Every flag can also come from a `SLUICE_PROXY_*` environment variable;
//! flags win.

use std::num::NonZero;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sluice_data_plane::{
    ControlPlaneAuth, DEFAULT_ADMIN_ADDRESS, GIT_COMMIT, LogFormat, Proxy, ProxyConfig,
    ServingThreads, UpstreamConfig, VERSION, default_node_id, healthcheck, init_logging,
    parse_duration, parse_key_value, shutdown_signal,
};

#[derive(Debug, Parser)]
#[command(
    name = "sluice-proxy",
    version,
    about = "Sluice data plane: a reverse proxy fed by the Sluice control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the snapshots streamed by a control plane.
    Run(Box<RunArgs>),
    /// Exit 0 when the admin endpoint answers GET /ping with 200, 1 otherwise.
    Healthcheck {
        /// Admin endpoint address.
        #[arg(long, env = "SLUICE_PROXY_ADMIN_ADDRESS", default_value = DEFAULT_ADMIN_ADDRESS)]
        admin_address: String,
    },
    /// Print the version and the git commit.
    Version,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Control plane gRPC URL, e.g. http://127.0.0.1:7000.
    #[arg(long, env = "SLUICE_PROXY_CONTROL_PLANE")]
    control_plane: String,
    /// PEM CA of the control plane's certificate (turns TLS on).
    #[arg(long, env = "SLUICE_PROXY_CONTROL_PLANE_CA")]
    control_plane_ca: Option<std::path::PathBuf>,
    /// PEM client certificate for a control plane that requires mTLS.
    #[arg(
        long,
        env = "SLUICE_PROXY_CONTROL_PLANE_CERT",
        requires = "control_plane_key"
    )]
    control_plane_cert: Option<std::path::PathBuf>,
    /// PEM key of the client certificate.
    #[arg(
        long,
        env = "SLUICE_PROXY_CONTROL_PLANE_KEY",
        requires = "control_plane_cert"
    )]
    control_plane_key: Option<std::path::PathBuf>,
    /// Bearer token for a control plane that requires one.
    #[arg(long, env = "SLUICE_PROXY_CONTROL_PLANE_TOKEN", hide_env_values = true)]
    control_plane_token: Option<String>,
    /// Node id (defaults to the host name).
    #[arg(long, env = "SLUICE_PROXY_NODE_ID")]
    node_id: Option<String>,
    /// A label `key=value` for the fleet view (repeatable; comma-separated in the environment).
    #[arg(long = "label", env = "SLUICE_PROXY_LABELS", value_delimiter = ',', value_parser = parse_key_value)]
    labels: Vec<(String, String)>,
    /// Admin endpoint address (/ping, /ready, /api/snapshot).
    #[arg(long, env = "SLUICE_PROXY_ADMIN_ADDRESS", default_value = DEFAULT_ADMIN_ADDRESS)]
    admin_address: String,
    /// Override an entry point's address: `NAME=ADDRESS` (repeatable; comma-separated in the environment).
    #[arg(long = "entry-point", env = "SLUICE_PROXY_ENTRY_POINTS", value_delimiter = ',', value_parser = parse_key_value)]
    entry_points: Vec<(String, String)>,
    /// Threads serving connections, each with its own listening sockets and
    /// backend connections (0: one per CPU core).
    #[arg(long, env = "SLUICE_PROXY_SERVING_THREADS", default_value_t = 0)]
    serving_threads: usize,
    /// Time in-flight requests get to finish on SIGTERM/SIGINT.
    #[arg(long, env = "SLUICE_PROXY_GRACE_PERIOD", default_value = "10s", value_parser = parse_duration)]
    grace_period: Duration,
    /// Log level or filter directives (defaults to RUST_LOG, then `info`).
    #[arg(long, env = "SLUICE_PROXY_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "SLUICE_PROXY_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("sluice-proxy {VERSION} (commit {GIT_COMMIT})");
            Ok(())
        }
        Command::Healthcheck { admin_address } => runtime().and_then(|rt| {
            rt.block_on(healthcheck(&admin_address))
                .with_context(|| format!("proxy at {admin_address} is not healthy"))
        }),
        Command::Run(args) => run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice-proxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime of the control link, the admin endpoint and health checks;
/// connections are served on the serving threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_level.as_deref(), args.log_format)?;
    let serving_threads = match args.serving_threads {
        0 => std::thread::available_parallelism().map_or(1, NonZero::get),
        threads => threads,
    };
    let serving =
        ServingThreads::start(serving_threads).context("cannot start the serving threads")?;
    let config = ProxyConfig {
        control_plane: args.control_plane,
        control_plane_auth: ControlPlaneAuth {
            ca_file: args.control_plane_ca,
            cert_file: args.control_plane_cert,
            key_file: args.control_plane_key,
            token: args.control_plane_token,
        },
        node_id: args.node_id.unwrap_or_else(default_node_id),
        labels: args.labels.into_iter().collect(),
        admin_address: args.admin_address,
        entry_points: args.entry_points.into_iter().collect(),
        grace_period: args.grace_period,
        upstream: UpstreamConfig {
            serving_threads,
            ..UpstreamConfig::default()
        },
        serving: serving.handles().to_vec(),
    };
    tracing::info!(
        version = VERSION,
        commit = GIT_COMMIT,
        node_id = %config.node_id,
        control_plane = %config.control_plane,
        serving_threads,
        "sluice-proxy starting"
    );
    let result = runtime()?.block_on(async {
        let signals = tokio::spawn(shutdown_signal());
        Proxy::run(config, async {
            match signals.await {
                Ok(Ok(signal)) => tracing::info!(signal, "shutdown requested"),
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot listen for signals; shutting down")
                }
                Err(error) => tracing::error!(%error, "signal task failed; shutting down"),
            }
        })
        .await
        .context("sluice-proxy failed")
    });
    serving.stop();
    result
}
