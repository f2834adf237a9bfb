//! HTTP/1.1 on the wire, for the proxy's own connections: message heads
//! (`head`), body lengths (`framing`), reading bodies (`decode`), writing
//! messages (`write`); the server that serves client connections
//! (`server`, handing HTTP/2 to hyper) and the client that forwards
//! `http://` requests (`client`) over pooled connections (`pool`).
//!
//! The proxy speaks HTTP/1.1 with this code rather than with hyper's so
//! that a request runs on its connection's own task from the first byte of
//! its head to the last byte of its response: hyper's server and pooled
//! client each hand a request between tasks over channels, with a timer per
//! request, which the profile in `docs/benchmarks/profile.md` showed to be
//! most of the proxy's CPU per request beyond the kernel's.

mod client;
mod date;
mod decode;
mod direct;
#[cfg(test)]
mod direct_tests;
mod framing;
mod head;
mod pool;
mod rewind;
mod server;
#[cfg(test)]
mod server_tests;
mod stop;
#[cfg(test)]
mod test_client;
mod write;

pub(crate) use client::{Client, ExchangeError, Exchanged, PendingUpgrade, ResponseBody, send_via};
pub(crate) use pool::{PoolLimits, Return, ServerPools};
pub(crate) use server::{ClientUpgrade, RequestBody, ServerSettings, serve};
pub(crate) use stop::StopSignal;
