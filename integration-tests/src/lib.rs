//! Harness for Sluice's integration scenarios: real binaries over real
//! sockets on 127.0.0.1.
//!
//! - [`ControlPlane`] and [`Proxy`] start `sluice-control-plane` and
//!   `sluice-proxy` on free ports and kill them when dropped.
//! - [`EchoBackend`] is an HTTP server that answers with a JSON description
//!   of the request it received; [`StreamingBackend`] counts and generates
//!   large bodies; [`WebSocketEchoBackend`] echoes WebSocket messages;
//!   [`GrpcHealthBackend`] serves `grpc.health.v1.Health` over h2c.
//! - [`HttpsBackend`] answers over TLS with openssl-made certificates from
//!   [`TestPki`], optionally requiring a client certificate (mTLS).
//! - [`raw_get`] writes a request byte for byte (un-normalised paths,
//!   hop-by-hop headers).
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
mod control_plane_options;
mod grpc;
mod grpc_backend;
mod http;
mod process;
mod proxy;
mod raw_http;
mod streaming;
mod wait;
mod websocket;

pub use backend::{EchoBackend, EchoedRequest};
pub use binaries::binary;
pub use control_plane::ControlPlane;
pub use control_plane_options::ControlPlaneOptions;
pub use grpc::{WatchClient, grpcurl};
pub use grpc_backend::GrpcHealthBackend;
pub use http::{HttpResponse, get, request};
pub use process::{ChildProcess, free_port, printed, run_command, run_to_completion};
pub use proxy::Proxy;
pub use raw_http::{RawResponse, raw_get, raw_request};
pub use streaming::{StreamingBackend, download, upload};
pub use wait::eventually;
pub use websocket::WebSocketEchoBackend;
mod etcd;
mod fake_consul;
pub use etcd::Etcd;
pub use fake_consul::FakeConsul;
mod fake_kubernetes;
pub use fake_kubernetes::FakeKubernetes;
mod pki;
mod redis;
pub use pki::TestPki;
pub use redis::RedisServer;
mod https_backend;
pub use fake_kubernetes::application_name;
pub use https_backend::HttpsBackend;
mod snapshot_state;
pub use snapshot_state::{DeltaSummary, SnapshotState, VersionChange};
