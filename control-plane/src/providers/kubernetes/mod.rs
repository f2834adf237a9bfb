//! The Kubernetes providers: `kubernetes` turns `networking.k8s.io/v1`
//! Ingresses into routes, `kubernetescrd` turns Traefik's
//! `traefik.io/v1alpha1` resources (IngressRoute, Middleware,
//! TraefikService, TLSOption, ServersTransport) into routes. Both send
//! traffic to the ready Pod addresses of EndpointSlices, not to Service
//! cluster IPs, and read Secrets only where an object references them.
//!
//! - Every kind is watched with a `kube` watcher feeding a reflector store
//!   ([`watch`]); a relist after `410 Gone` or a reconnection swaps a store's
//!   content at once, so the routes never blink while the API server
//!   restarts.
//! - After every change (throttled by `throttleDuration`), the whole
//!   configuration is rebuilt from the stores ([`ingress`], [`crd`]); the
//!   aggregator sends only what changed, so a Pod going away in one Service
//!   changes that Service alone.
//! - A broken object is left out with an error naming it (`Ingress
//!   default/api`) and the field or annotation at fault; everything else is
//!   served. A deleted object falls out of its store, and its routes with it.
//! - Until every store has listed once, nothing is sent: a half-read cluster
//!   never replaces the routes.

mod annotations;
mod cluster;
mod crd;
mod endpoints;
mod ingress;
mod names;
mod output;
mod secrets;
mod status;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::cluster::Cluster;
use self::watch::{Signal, Watchers};
use super::publish::Publisher;
use super::{ProviderHealthRegistry, ProviderUpdate, SourceError};
use crate::config::{KubernetesCrdConfig, KubernetesIngressConfig, Secret};
use crate::dynamic::DynamicConfig;

/// The Ingress provider's name: `<namespace>-<name>-<port>@kubernetes`.
const INGRESS_PROVIDER: &str = "kubernetes";

/// The CRD provider's name: middlewares are `<namespace>-<name>@kubernetescrd`.
const CRD_PROVIDER: &str = "kubernetescrd";

/// Why a Kubernetes provider cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// `endpoint` is not a URL.
    #[error("endpoint `{endpoint}` is not a URL: {reason}")]
    Endpoint {
        /// The value written.
        endpoint: String,
        /// Why it does not parse.
        reason: String,
    },
    /// `ingressEndpoint.publishedService` is not `namespace/name`.
    #[error("ingressEndpoint.publishedService `{0}`: expected `namespace/name`")]
    PublishedService(String),
    /// No kubeconfig and no in-cluster service account could be used.
    #[error("no Kubernetes client configuration: {0}")]
    ClientConfig(String),
}

/// Connection settings shared by both providers.
#[derive(Debug, Clone)]
struct Connection {
    endpoint: String,
    token: Secret,
    cert_auth_file_path: String,
    namespaces: Vec<String>,
    label_selector: String,
}

/// Which resources a provider reads and how it turns them into routes.
#[derive(Debug, Clone)]
enum Flavor {
    Ingress(KubernetesIngressConfig),
    Crd(KubernetesCrdConfig),
}

/// A Kubernetes provider, `kubernetes` (Ingress) or `kubernetescrd`.
#[derive(Debug, Clone)]
pub struct KubernetesProvider {
    connection: Connection,
    throttle: Duration,
    flavor: Flavor,
}

impl KubernetesProvider {
    /// The Ingress provider for `providers.kubernetesIngress`.
    pub fn ingress(config: &KubernetesIngressConfig) -> Result<Self, KubernetesError> {
        if let Some(endpoint) = &config.ingress_endpoint
            && !endpoint.published_service.is_empty()
            && endpoint.published_service.split_once('/').is_none()
        {
            return Err(KubernetesError::PublishedService(
                endpoint.published_service.clone(),
            ));
        }
        Self::new(
            Connection {
                endpoint: config.endpoint.clone(),
                token: config.token.clone(),
                cert_auth_file_path: config.cert_auth_file_path.clone(),
                namespaces: config.namespaces.clone(),
                label_selector: config.label_selector.clone(),
            },
            config.throttle_duration.map(|d| d.0),
            Flavor::Ingress(config.clone()),
        )
    }

    /// The CRD provider for `providers.kubernetesCRD`.
    pub fn crd(config: &KubernetesCrdConfig) -> Result<Self, KubernetesError> {
        Self::new(
            Connection {
                endpoint: config.endpoint.clone(),
                token: config.token.clone(),
                cert_auth_file_path: config.cert_auth_file_path.clone(),
                namespaces: config.namespaces.clone(),
                label_selector: config.label_selector.clone(),
            },
            config.throttle_duration.map(|d| d.0),
            Flavor::Crd(config.clone()),
        )
    }

    fn new(
        connection: Connection,
        throttle: Option<Duration>,
        flavor: Flavor,
    ) -> Result<Self, KubernetesError> {
        if !connection.endpoint.is_empty() {
            connection.endpoint.parse::<http::Uri>().map_err(|error| {
                KubernetesError::Endpoint {
                    endpoint: connection.endpoint.clone(),
                    reason: error.to_string(),
                }
            })?;
        }
        Ok(Self {
            connection,
            throttle: throttle.unwrap_or_default(),
            flavor,
        })
    }

    /// The provider's name: `kubernetes` or `kubernetescrd`.
    pub fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::Ingress(_) => INGRESS_PROVIDER,
            Flavor::Crd(_) => CRD_PROVIDER,
        }
    }

    /// Watches the cluster and sends a fresh [`ProviderUpdate`] after every
    /// change, until `shutdown`. While the API server cannot be reached the
    /// last configuration stays in place and the health says why.
    pub async fn run(
        self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        let mut publisher = Publisher::new(self.name(), updates, health);
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => {
                publisher.failed(&error);
                shutdown.cancelled().await;
                return;
            }
        };
        let mut watchers = Watchers::start(&client, &self.connection, self.watched_kinds());
        if !watchers
            .synced(&shutdown, |error| publisher.failed(&error))
            .await
        {
            return;
        }
        publisher.healthy();
        let status = self.status_writer(&client);
        loop {
            let (update, cluster) = self.build(&watchers);
            if !publisher.publish(update, &shutdown).await {
                return;
            }
            if let Some(status) = &status {
                status.update(&cluster).await;
            }
            match watchers.next_change(&shutdown, self.throttle).await {
                Some(Signal::Failed(error)) => publisher.failed(&error),
                Some(_) => publisher.healthy(),
                None => return,
            }
        }
    }

    /// Lists everything once and builds the configuration, for `validate`;
    /// an API server that fails or does not answer within `timeout` is an
    /// error of the provider.
    pub async fn load_once(&self, timeout: Duration) -> ProviderUpdate {
        let failed = |message: String| ProviderUpdate {
            provider: self.name().to_owned(),
            config: DynamicConfig::default(),
            errors: vec![SourceError {
                location: format!("providers.{}", self.config_key()),
                key: None,
                message,
            }],
            origins: BTreeMap::new(),
        };
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => return failed(error.to_string()),
        };
        let mut watchers = Watchers::start(&client, &self.connection, self.watched_kinds());
        let expired = CancellationToken::new();
        let mut last_error = None;
        let synced = tokio::select! {
            synced = watchers.synced(&expired, |error| last_error = Some(error)) => synced,
            () = tokio::time::sleep(timeout) => false,
        };
        if !synced {
            return failed(match last_error {
                Some(error) => format!("cannot read the API server: {error}"),
                None => format!("the API server did not answer within {timeout:?}"),
            });
        }
        self.build(&watchers).0
    }

    /// `kubernetesIngress` or `kubernetesCRD`, for errors.
    fn config_key(&self) -> &'static str {
        match self.flavor {
            Flavor::Ingress(_) => "kubernetesIngress",
            Flavor::Crd(_) => "kubernetesCRD",
        }
    }

    fn watched_kinds(&self) -> watch::Kinds {
        match self.flavor {
            Flavor::Ingress(_) => watch::Kinds::Ingress,
            Flavor::Crd(_) => watch::Kinds::Crd,
        }
    }

    /// The whole configuration from the stores' current content.
    fn build(&self, watchers: &Watchers) -> (ProviderUpdate, Cluster) {
        let cluster = watchers.cluster();
        let built = match &self.flavor {
            Flavor::Ingress(config) => ingress::build(&cluster, config),
            Flavor::Crd(config) => crd::build(&cluster, config),
        };
        let update = ProviderUpdate {
            provider: self.name().to_owned(),
            config: built.config,
            errors: built.errors,
            origins: built.origins,
        };
        (update, cluster)
    }

    fn status_writer(&self, client: &kube::Client) -> Option<status::StatusWriter> {
        match &self.flavor {
            Flavor::Ingress(config) => config
                .ingress_endpoint
                .as_ref()
                .map(|endpoint| status::StatusWriter::new(client.clone(), endpoint, config)),
            Flavor::Crd(_) => None,
        }
    }

    /// A client for `endpoint`, else from the kubeconfig or the in-cluster
    /// service account.
    async fn client(&self) -> Result<kube::Client, KubernetesError> {
        let connection = &self.connection;
        let mut config = if connection.endpoint.is_empty() {
            kube::Config::infer()
                .await
                .map_err(|error| KubernetesError::ClientConfig(error.to_string()))?
        } else {
            let url = connection
                .endpoint
                .parse()
                .map_err(|error: http::uri::InvalidUri| KubernetesError::Endpoint {
                    endpoint: connection.endpoint.clone(),
                    reason: error.to_string(),
                })?;
            kube::Config::new(url)
        };
        if !connection.token.is_empty() {
            config.auth_info.token = Some(connection.token.expose().to_owned().into());
        }
        if !connection.cert_auth_file_path.is_empty() {
            config.root_cert_file = Some(connection.cert_auth_file_path.clone().into());
        }
        kube::Client::try_from(config)
            .map_err(|error| KubernetesError::ClientConfig(error.to_string()))
    }
}

/// What a builder produced: the configuration, the objects it left out and
/// where each resource came from.
#[derive(Debug, Default)]
struct Built {
    config: DynamicConfig,
    errors: Vec<SourceError>,
    origins: BTreeMap<String, String>,
}
