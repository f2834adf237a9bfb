//! Harness for Sluice's integration scenarios: real binaries over real
//! sockets on 127.0.0.1.
//!
//! - [`ControlPlane`] and [`Proxy`] start `sluice-control-plane` and
//!   `sluice-proxy` on free ports and kill them when dropped.
//! - [`EchoBackend`] is an HTTP server that answers with a JSON description
//!   of the request it received.
//! - [`WatchClient`] plays a proxy's side of the `Watch` stream message by
//!   message; [`grpcurl`] runs the real `grpcurl` against a control plane.
//! - [`eventually`] waits for a condition with a deadline; scenarios never
//!   sleep to let things settle.
//!
//! The binaries are taken from the workspace target directory; `cargo xtask
//! ci` builds them before running the tests.

mod backend;
mod binaries;
mod control_plane;
mod grpc;
mod http;
mod process;
mod proxy;
mod wait;

pub use backend::{EchoBackend, EchoedRequest};
pub use binaries::binary;
pub use control_plane::ControlPlane;
pub use grpc::{WatchClient, grpcurl};
pub use http::{HttpResponse, get, request};
pub use process::{ChildProcess, free_port, run_command, run_to_completion};
pub use proxy::Proxy;
pub use wait::eventually;
