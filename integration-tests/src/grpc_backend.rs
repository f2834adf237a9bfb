//! A gRPC server over h2c (cleartext HTTP/2 with prior knowledge) serving
//! the standard `grpc.health.v1.Health` service, to proxy gRPC calls to.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A running `grpc.health.v1.Health` server; the overall service (`""`) is
/// SERVING. Stops when dropped.
#[derive(Debug)]
pub struct GrpcHealthBackend {
    pub address: SocketAddr,
    reporter: HealthReporter,
    task: JoinHandle<()>,
}

impl GrpcHealthBackend {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding backend");
        let address = listener.local_addr().expect("backend address");
        let (reporter, service) = tonic_health::server::health_reporter();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self {
            address,
            reporter,
            task,
        }
    }

    /// `h2c://127.0.0.1:PORT`: the server URL a service uses (Traefik's
    /// scheme for cleartext HTTP/2 backends).
    pub fn h2c_url(&self) -> String {
        format!("h2c://{}", self.address)
    }

    /// Sets the status `Check` reports for `service` (`""`: the server).
    pub async fn set_status(&self, service: &str, status: ServingStatus) {
        self.reporter.set_service_status(service, status).await;
    }
}

impl Drop for GrpcHealthBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
