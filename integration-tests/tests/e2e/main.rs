//! End-to-end scenarios: the real `sluice-control-plane` and `sluice-proxy`
//! binaries over real sockets on 127.0.0.1. One test binary, one module per
//! capability, so the suite links once.

mod control_plane;
mod kubernetes;
mod middlewares;
mod providers;
mod proxy;
mod tls;
