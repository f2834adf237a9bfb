//! Sluice data plane: the stateless proxy that serves the snapshots the
//! control plane streams to it.
//!
//! Where to start reading:
//! - [`Proxy`] wires everything together: the snapshot client
//!   (`snapshot_client`) watches the control plane, `apply` turns each update
//!   into a new resource state (`state`), a new [`Runtime`] (`runtime`: router
//!   tables and services) and listeners (`listeners`), and publishes the
//!   runtime with `ArcSwap::store`;
//! - a request goes `listeners` -> `dispatch` (entry point, path
//!   normalisation, `router`) -> `middleware` (the router's chain) ->
//!   `service` (server choice) -> `forward` (`headers`, streaming, upgrades);
//! - long-lived state that must survive runtime swaps (health, pools,
//!   rotation positions, middleware state) lives in `shared`;
//! - `admin` serves `/ping`, `/ready` and `/api/snapshot`.

mod admin;
mod apply;
mod backoff;
mod body;
mod config;
mod dispatch;
mod forward;
mod h1;
mod headers;
mod healthcheck;
mod listeners;
mod logging;
mod matchers;
mod middleware;
mod proxy;
mod redirect;
mod report;
mod router;
mod runtime;
mod service;
mod serving;
mod shared;
mod shutdown;
mod snapshot_client;
mod state;
mod tls;
mod upgrade;

#[cfg(test)]
mod proxy_tests;

pub use apply::ApplyError;
pub use config::{
    ControlPlaneAuth, DEFAULT_ADMIN_ADDRESS, ProxyConfig, default_node_id, parse_duration,
    parse_key_value,
};
pub use healthcheck::{HealthcheckError, healthcheck};
pub use listeners::BindError;
pub use logging::{LogFormat, LoggingError, init_logging};
pub use middleware::{HtpasswdError, MiddlewareBuildError, MiddlewareError};
pub use proxy::{Proxy, ProxyError};
pub use router::{MatcherError, RouterIndex};
pub use runtime::{BuildError, Runtime};
pub use service::{HealthCheckError, ServerUrlError, ServiceError, UpstreamConfig};
pub use serving::ServingThreads;
pub use shutdown::shutdown_signal;
pub use state::StateError;
pub use tls::TlsError;

/// Version of this proxy.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit this proxy was built from (`unknown` outside a repository).
pub const GIT_COMMIT: &str = env!("SLUICE_GIT_COMMIT");
