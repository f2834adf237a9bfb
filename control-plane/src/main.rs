//! `sluice-control-plane`: parse the command line and the static
//! configuration, set up logging, run, and map the outcome to an exit code.

use std::process::ExitCode;

use anyhow::Context;
use sluice_control_plane::cli::{self, Command, ConfigArgs};
use sluice_control_plane::config::{StaticConfig, StaticConfigSources, default_config_file};
use sluice_control_plane::{BUILD_VERSION, GIT_COMMIT, init_tracing, run, validate};
use tokio_util::sync::CancellationToken;

/// Compiling a large configuration allocates and frees millions of small
/// values; mimalloc does that faster than glibc (a 10,000-router compile
/// takes about 40 % less time) and the peak after repeated compiles is
/// lower (docs/benchmarks/kubernetes.md), for a somewhat larger resident
/// size when idle (about 18 MiB more at 10,000 routers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("sluice-control-plane {BUILD_VERSION} (commit {GIT_COMMIT})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(args) => run_validate(&args),
        Command::Run(args) => run_control_plane(&args),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {}", error_chain(&error));
        ExitCode::FAILURE
    })
}

/// The error and its causes, skipping a cause whose text the message above
/// it already includes (library errors often print their source inline).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn load_config(args: &ConfigArgs) -> anyhow::Result<StaticConfig> {
    let config_file = args
        .config_file
        .clone()
        .or_else(|| std::env::var_os("SLUICE_CONFIGFILE").map(Into::into))
        .or_else(default_config_file);
    let config = StaticConfig::load(StaticConfigSources {
        config_file: config_file.as_deref(),
        flags: &args.flags,
        env: std::env::vars().collect(),
    })?;
    Ok(config)
}

fn run_validate(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args)?;
    let (report, routers) = validate(&config)?;
    for error in &report.errors {
        println!("{error}");
    }
    if report.errors.is_empty() {
        println!("configuration is valid: {routers} routers");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} errors; {routers} routers would be served",
            report.errors.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn run_control_plane(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args)?;
    init_tracing(&config.log);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let running = run::start(config, shutdown.clone()).await?;
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        running.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
