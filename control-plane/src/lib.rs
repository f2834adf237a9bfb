//! Sluice control plane.
//!
//! Providers ([`providers`]) read configuration sources into Traefik-shaped
//! [`dynamic::DynamicConfig`] fragments; the aggregator merges them and
//! debounces bursts; the compiler validates and turns the result into proto
//! resources, leaving out (with an error) only what is broken; the store
//! versions snapshots and computes deltas; the gRPC server streams them to
//! proxies and the admin API shows everything. Start at [`run::start`].

mod admin;
mod aggregator;
pub mod cli;
pub mod compiler;
pub mod config;
pub mod dynamic;
mod grpc;
mod link_security;
mod nodes;
pub mod providers;
pub mod resources;
pub mod rule;
pub mod run;
mod store;
mod telemetry;

pub use admin::{BUILD_VERSION, GIT_COMMIT};
pub use grpc::GrpcError;
pub use run::{RunError, RunningControlPlane, validate};
pub use store::{Published, SnapshotStore};
pub use telemetry::init_tracing;
