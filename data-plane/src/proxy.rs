//! The proxy as a whole: admin endpoint, snapshot client, listeners and
//! shared state wired together, and the graceful shutdown that takes them
//! down in order (stop accepting, drain within the grace period, stop the
//! rest).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

use crate::admin::{self, AdminState};
use crate::apply::Applier;
use crate::config::{ControlPlaneAuth, ProxyConfig};
use crate::dispatch::Dispatcher;
use crate::listeners::{Listeners, bind};
use crate::runtime::Runtime;
use crate::shared::SharedState;
use crate::snapshot_client::{self, BearerToken, Identity};
use crate::{GIT_COMMIT, VERSION};

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The control plane URL is not a valid URL.
    #[error("invalid control plane URL `{url}`")]
    ControlPlaneUrl {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// A control plane credential file cannot be read.
    #[error("cannot read {flag} `{path}`")]
    ControlPlaneFile {
        /// The flag that names the file.
        flag: &'static str,
        /// The path as given.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The control plane TLS settings are refused.
    #[error("control plane TLS settings")]
    ControlPlaneTls(#[source] tonic::transport::Error),
    /// The control plane token cannot be sent as a header.
    #[error("--control-plane-token is not a valid header value")]
    ControlPlaneToken,
    /// The admin endpoint cannot listen.
    #[error("cannot listen on the admin address `{address}`")]
    Admin {
        /// The address as given.
        address: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    admin_address: SocketAddr,
    admin: Arc<AdminState>,
    admin_stop: CancellationToken,
    admin_task: JoinHandle<()>,
    client_stop: CancellationToken,
    client_task: JoinHandle<Applier>,
    shared: Arc<SharedState>,
    hard_stop: CancellationToken,
}

impl Proxy {
    /// Binds the admin endpoint and starts watching the control plane. The
    /// proxy serves nothing but the admin endpoint until the first snapshot.
    pub async fn start(config: ProxyConfig) -> Result<Self, ProxyError> {
        let endpoint = Endpoint::from_shared(config.control_plane.clone()).map_err(|source| {
            ProxyError::ControlPlaneUrl {
                url: config.control_plane.clone(),
                source,
            }
        })?;
        let endpoint = secure_endpoint(endpoint, &config.control_plane_auth)?;
        let token = bearer(&config.control_plane_auth)?;
        let endpoint = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(20))
            .keep_alive_timeout(std::time::Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let admin_listener =
            bind(&config.admin_address)
                .await
                .map_err(|source| ProxyError::Admin {
                    address: config.admin_address.clone(),
                    source,
                })?;
        let admin_address = admin_listener
            .local_addr()
            .map_err(|source| ProxyError::Admin {
                address: config.admin_address.clone(),
                source,
            })?;

        let hard_stop = CancellationToken::new();
        let runtime = Arc::new(ArcSwap::from_pointee(Runtime::default()));
        let shared = Arc::new(SharedState::new(
            config.node_id.clone(),
            &config.upstream,
            hard_stop.clone(),
        ));
        let dispatcher = Arc::new(Dispatcher::new(runtime.clone(), shared.clone()));
        let listeners = Listeners::new(
            dispatcher,
            config.grace_period,
            hard_stop.clone(),
            config.serving,
        );
        let mut applier = Applier::new(
            runtime.clone(),
            listeners,
            shared.clone(),
            config.entry_points,
        );

        let admin = Arc::new(AdminState::new(runtime, shared.clone()));
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            admin.clone(),
            admin_stop.clone(),
        ));
        tracing::info!(address = %admin_address, "admin endpoint listening");

        let identity = Identity {
            node_id: config.node_id,
            labels: config.labels,
            build_version: format!("{VERSION}+{GIT_COMMIT}"),
        };
        let client_stop = CancellationToken::new();
        let stop = client_stop.clone();
        let client_task = tokio::spawn(async move {
            snapshot_client::run(endpoint, token, identity, &mut applier, stop).await;
            applier
        });
        Ok(Self {
            admin_address,
            admin,
            admin_stop,
            admin_task,
            client_stop,
            client_task,
            shared,
            hard_stop,
        })
    }

    /// Starts, runs until `shutdown` completes, then shuts down gracefully.
    pub async fn run(
        config: ProxyConfig,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ProxyError> {
        let proxy = Self::start(config).await?;
        shutdown.await;
        proxy.shutdown().await;
        Ok(())
    }

    /// The address the admin endpoint is bound to.
    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    /// Stops accepting connections, lets in-flight requests finish within
    /// the grace period, then stops everything else.
    pub async fn shutdown(self) {
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        self.admin.set_draining();
        self.client_stop.cancel();
        match self.client_task.await {
            Ok(mut applier) => applier.shutdown().await,
            Err(error) => tracing::error!(%error, "the snapshot client failed"),
        }
        self.hard_stop.cancel();
        self.shared.health.shutdown().await;
        self.admin_stop.cancel();
        // The admin task only ends by cancellation; a panic has been logged.
        let _ = self.admin_task.await;
        tracing::info!("shutdown complete");
    }
}

/// TLS for the control plane link: on with a CA or an `https://` URL.
fn secure_endpoint(endpoint: Endpoint, auth: &ControlPlaneAuth) -> Result<Endpoint, ProxyError> {
    let https = endpoint.uri().scheme_str() == Some("https");
    if !https && auth.ca_file.is_none() && auth.cert_file.is_none() {
        return Ok(endpoint);
    }
    let read = |flag: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ProxyError::ControlPlaneFile {
            flag,
            path: path.display().to_string(),
            source,
        })
    };
    let mut tls = ClientTlsConfig::new();
    tls = match &auth.ca_file {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read("--control-plane-ca", path)?)),
        None => tls.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&auth.cert_file, &auth.key_file) {
        tls = tls.identity(TlsIdentity::from_pem(
            read("--control-plane-cert", cert)?,
            read("--control-plane-key", key)?,
        ));
    }
    endpoint
        .tls_config(tls)
        .map_err(ProxyError::ControlPlaneTls)
}

/// The `authorization` value sent with every call, if a token is set.
fn bearer(auth: &ControlPlaneAuth) -> Result<BearerToken, ProxyError> {
    let value = auth
        .token
        .as_ref()
        .filter(|token| !token.is_empty())
        .map(|token| {
            let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| ProxyError::ControlPlaneToken)?;
            value.set_sensitive(true);
            Ok(value)
        })
        .transpose()?;
    Ok(BearerToken(value))
}
