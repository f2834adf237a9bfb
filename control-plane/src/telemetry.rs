//! Logging setup: `log.level` and `log.format` from the static
//! configuration, overridable with `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global tracing subscriber (text or JSON).
pub fn init_tracing(log: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.level.as_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if log.format.is_json() {
        builder.json().init();
    } else {
        builder.init();
    }
}
