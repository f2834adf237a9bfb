//! Wires the control plane together: providers feed the aggregator, which
//! publishes to the store, which the gRPC server streams and the admin API
//! shows. Also `validate`, which loads every provider once and compiles.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::serve_admin;
use crate::aggregator::{Aggregator, Debounce};
use crate::compiler::{CompileInput, CompileReport, compile};
use crate::config::StaticConfig;
use crate::grpc::{GrpcError, LinkSecurity, SnapshotServer};
use crate::nodes::NodeRegistry;
use crate::providers::{
    ConsulCatalogError, ConsulCatalogProvider, ConsulError, ConsulKvProvider, EtcdError,
    EtcdProvider, FileProvider, FileProviderError, KubernetesError, KubernetesProvider,
    ProviderHealthRegistry, ProviderUpdate, SourceError,
};
use crate::providers::{RedisError, RedisProvider};
use crate::store::SnapshotStore;

/// Why the control plane could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener could not be bound.
    #[error("cannot listen on `{address}` ({key}): {source}")]
    Bind {
        key: &'static str,
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The file provider's configuration is unusable.
    #[error("providers.file: {0}")]
    FileProvider(#[from] FileProviderError),
    /// The Consul KV provider's configuration is unusable.
    #[error("providers.consul: {0}")]
    ConsulProvider(#[from] ConsulError),
    /// The Consul Catalog provider's configuration is unusable.
    #[error("providers.consulCatalog: {0}")]
    ConsulCatalogProvider(#[from] ConsulCatalogError),
    /// The etcd provider's configuration is unusable.
    #[error("providers.etcd: {0}")]
    EtcdProvider(#[from] EtcdError),
    /// The Redis provider's configuration is unusable.
    #[error("providers.redis: {0}")]
    RedisProvider(#[from] RedisError),
    /// The Kubernetes Ingress provider's configuration is unusable.
    #[error("providers.kubernetesIngress: {0}")]
    KubernetesIngressProvider(#[source] KubernetesError),
    /// The Kubernetes CRD provider's configuration is unusable.
    #[error("providers.kubernetesCRD: {0}")]
    KubernetesCrdProvider(#[source] KubernetesError),
    /// `validate` could not start the runtime that reads the stores.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error(transparent)]
    Grpc(#[from] GrpcError),
    /// The admin API failed.
    #[error("admin API: {0}")]
    Admin(#[source] std::io::Error),
}

/// A started control plane.
#[derive(Debug)]
pub struct RunningControlPlane {
    /// Where `SnapshotService` listens.
    pub grpc_address: SocketAddr,
    /// Where the admin API listens.
    pub api_address: SocketAddr,
    /// The snapshot store, for embedding and tests.
    pub store: Arc<SnapshotStore>,
    tasks: JoinSet<Result<(), RunError>>,
    shutdown: CancellationToken,
}

impl RunningControlPlane {
    /// Waits until `shutdown` is cancelled or a server fails; then stops everything.
    pub async fn wait(mut self) -> Result<(), RunError> {
        let mut outcome = Ok(());
        while let Some(finished) = self.tasks.join_next().await {
            match finished {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    if outcome.is_ok() {
                        outcome = Err(error);
                    }
                    self.shutdown.cancel();
                }
                Err(join_error) => {
                    tracing::error!(%join_error, "control-plane task panicked");
                    self.shutdown.cancel();
                }
            }
        }
        outcome
    }
}

async fn bind(key: &'static str, address: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| RunError::Bind {
            key,
            address: address.to_string(),
            source,
        })
}

/// Binds the listeners and starts every task; returns once listening.
pub async fn start(
    config: StaticConfig,
    shutdown: CancellationToken,
) -> Result<RunningControlPlane, RunError> {
    let control_plane = &config.control_plane;
    let grpc_listener = bind("controlPlane.grpcAddress", control_plane.grpc_address).await?;
    let api_listener = bind("controlPlane.apiAddress", control_plane.api_address).await?;
    let grpc_address = grpc_listener
        .local_addr()
        .map_err(|source| RunError::Bind {
            key: "controlPlane.grpcAddress",
            address: control_plane.grpc_address.to_string(),
            source,
        })?;
    let api_address = api_listener.local_addr().map_err(|source| RunError::Bind {
        key: "controlPlane.apiAddress",
        address: control_plane.api_address.to_string(),
        source,
    })?;
    let security = LinkSecurity::from_config(control_plane)?;
    if security.tls.is_none() && !grpc_address.ip().is_loopback() {
        tracing::warn!(
            %grpc_address,
            "the gRPC listener is plaintext on a non-loopback address: snapshots carry secrets"
        );
    }
    if !security.authenticates(control_plane) && !grpc_address.ip().is_loopback() {
        tracing::warn!(
            %grpc_address,
            "proxies are not authenticated (no controlPlane.tls.clientCAFile, no controlPlane.token)"
        );
    }

    let store = Arc::new(SnapshotStore::new(control_plane.history_size));
    let nodes = Arc::new(NodeRegistry::default());
    let debounce = Debounce::from_config(
        &control_plane.debounce,
        config.providers.providers_throttle_duration,
    );
    let mut tasks = JoinSet::new();
    let (updates_sender, updates) = mpsc::channel(64);

    let mut provider_count = 0;
    if let Some(file) = &config.providers.file {
        let provider = FileProvider::new(file)?;
        let sender = updates_sender.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            provider.run(sender, token).await;
            Ok(())
        });
        provider_count += 1;
    }
    let health = Arc::new(ProviderHealthRegistry::default());
    for provider in store_providers(&config)? {
        let sender = updates_sender.clone();
        let token = shutdown.clone();
        let health = Arc::clone(&health);
        tasks.spawn(async move {
            provider.run(sender, health, token).await;
            Ok(())
        });
        provider_count += 1;
    }
    drop(updates_sender);
    if provider_count == 0 {
        tracing::warn!("no provider is configured: only entry points will be served");
        store.publish(compile(CompileInput {
            entry_points: &config.entry_points,
            providers: &BTreeMap::new(),
            previous_certificates: &[],
        }));
    }

    let aggregator = Aggregator::new(config.entry_points.clone(), Arc::clone(&store), debounce);
    let token = shutdown.clone();
    tasks.spawn(async move {
        aggregator.run(updates, token).await;
        Ok(())
    });

    let server = SnapshotServer::new(Arc::clone(&store), Arc::clone(&nodes), shutdown.clone());
    tasks.spawn(async move {
        server
            .serve(grpc_listener, security)
            .await
            .map_err(RunError::from)
    });

    let admin_store = Arc::clone(&store);
    let token = shutdown.clone();
    tasks.spawn(async move {
        serve_admin(api_listener, admin_store, nodes, health, token)
            .await
            .map_err(RunError::Admin)
    });

    tracing::info!(%grpc_address, %api_address, "control plane listening");
    Ok(RunningControlPlane {
        grpc_address,
        api_address,
        store,
        tasks,
        shutdown,
    })
}

/// Loads every provider once and compiles, without listening anywhere. A
/// store that cannot be read within [`VALIDATE_TIMEOUT`] is an error of
/// that provider.
pub fn validate(config: &StaticConfig) -> Result<(CompileReport, usize), RunError> {
    let mut providers: BTreeMap<String, ProviderUpdate> = BTreeMap::new();
    if let Some(file) = &config.providers.file {
        let update = FileProvider::new(file)?.load();
        providers.insert(update.provider.clone(), update);
    }
    let stores = store_providers(config)?;
    if !stores.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        for provider in stores {
            let update = runtime.block_on(provider.load_once());
            providers.insert(update.provider.clone(), update);
        }
    }
    let compiled = compile(CompileInput {
        entry_points: &config.entry_points,
        providers: &providers,
        previous_certificates: &[],
    });
    Ok((compiled.report, compiled.resources.routers.len()))
}

/// How long `validate` waits for each store.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider that watches a store: Consul KV, Consul Catalog, etcd or a
/// Kubernetes API server.
enum StoreProvider {
    ConsulKv(ConsulKvProvider),
    ConsulCatalog(ConsulCatalogProvider),
    Etcd(EtcdProvider),
    Kubernetes(KubernetesProvider),
    Redis(RedisProvider),
}

/// The store providers the configuration enables, checked for startup errors.
fn store_providers(config: &StaticConfig) -> Result<Vec<StoreProvider>, RunError> {
    let providers = &config.providers;
    let mut stores = Vec::new();
    if let Some(consul) = &providers.consul {
        let kv = ConsulKvProvider::from_config(consul)?;
        stores.extend(kv.into_iter().map(StoreProvider::ConsulKv));
    }
    if let Some(catalog) = &providers.consul_catalog {
        let catalog = ConsulCatalogProvider::from_config(catalog)?;
        stores.extend(catalog.into_iter().map(StoreProvider::ConsulCatalog));
    }
    if let Some(etcd) = &providers.etcd {
        stores.push(StoreProvider::Etcd(EtcdProvider::new(etcd)?));
    }
    if let Some(redis) = &providers.redis {
        stores.push(StoreProvider::Redis(RedisProvider::new(redis)?));
    }
    if let Some(ingress) = &providers.kubernetes_ingress {
        let provider =
            KubernetesProvider::ingress(ingress).map_err(RunError::KubernetesIngressProvider)?;
        stores.push(StoreProvider::Kubernetes(provider));
    }
    if let Some(crd) = &providers.kubernetes_crd {
        let provider = KubernetesProvider::crd(crd).map_err(RunError::KubernetesCrdProvider)?;
        stores.push(StoreProvider::Kubernetes(provider));
    }
    Ok(stores)
}

impl StoreProvider {
    async fn run(
        self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        match self {
            Self::ConsulKv(provider) => provider.run(updates, health, shutdown).await,
            Self::ConsulCatalog(provider) => provider.run(updates, health, shutdown).await,
            Self::Etcd(provider) => provider.run(updates, health, shutdown).await,
            Self::Kubernetes(provider) => provider.run(updates, health, shutdown).await,
            Self::Redis(provider) => provider.run(updates, health, shutdown).await,
        }
    }

    /// One read, for `validate`; a store that fails or does not answer is an
    /// error of the provider.
    async fn load_once(self) -> ProviderUpdate {
        let (name, loaded) = match self {
            Self::ConsulKv(mut provider) => {
                let loaded = timeout(provider.load()).await;
                (provider.name().to_owned(), loaded)
            }
            Self::ConsulCatalog(mut provider) => {
                let loaded = timeout(provider.load()).await;
                (provider.name().to_owned(), loaded)
            }
            Self::Etcd(mut provider) => {
                let loaded = timeout(provider.load()).await;
                (provider.name().to_owned(), loaded)
            }
            Self::Redis(mut provider) => {
                let loaded = timeout(provider.load()).await;
                (provider.name().to_owned(), loaded)
            }
            Self::Kubernetes(provider) => return provider.load_once(VALIDATE_TIMEOUT).await,
        };
        loaded.unwrap_or_else(|message| ProviderUpdate {
            provider: name.clone(),
            config: Default::default(),
            errors: vec![SourceError {
                location: format!("{name} provider"),
                key: None,
                message,
            }],
            origins: BTreeMap::new(),
        })
    }
}

/// `load` within [`VALIDATE_TIMEOUT`], its error as text.
async fn timeout<E: std::fmt::Display>(
    load: impl std::future::Future<Output = Result<ProviderUpdate, E>>,
) -> Result<ProviderUpdate, String> {
    match tokio::time::timeout(VALIDATE_TIMEOUT, load).await {
        Ok(Ok(update)) => Ok(update),
        Ok(Err(error)) => Err(format!("cannot read the store: {error}")),
        Err(_) => Err(format!(
            "the store did not answer within {VALIDATE_TIMEOUT:?}"
        )),
    }
}
