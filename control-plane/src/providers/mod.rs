//! Providers turn a source (files, Kubernetes, Consul, etcd, Redis) into a
//! [`DynamicConfig`] fragment and send it, tagged with their name, to the
//! aggregator. They know nothing of snapshots.

mod backoff;
mod consul;
mod endpoint;
mod etcd;
mod file;
mod kubernetes;
mod kv;
mod publish;
mod redis;
mod status;
mod tls;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::dynamic::DynamicConfig;

pub use consul::{
    ConstraintError, ConsulCatalogError, ConsulCatalogProvider, ConsulError, ConsulKvProvider,
    DefaultRuleError,
};
pub use etcd::{EtcdError, EtcdProvider};
pub use file::{FileProvider, FileProviderError};
pub use kubernetes::{KubernetesError, KubernetesProvider};
pub use redis::{RedisError, RedisProvider};
pub use status::{ProviderHealth, ProviderHealthRegistry, ProviderState};
pub use tls::ProviderTlsError;

/// The latest complete view of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderUpdate {
    /// Provider name, used to qualify resource names (`name@file`).
    pub provider: String,
    /// Everything the provider could read.
    pub config: DynamicConfig,
    /// What it could not read, each naming where the problem is.
    pub errors: Vec<SourceError>,
    /// Where each resource was defined, keyed by its path in the model
    /// (`http.routers.<name>`, `http.services.<name>`, `http.middlewares.<name>`,
    /// `tls.options.<name>`...), e.g. the file path, so compile errors can name it.
    pub origins: BTreeMap<String, String>,
}

/// A problem in a provider's source that the user must fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceError {
    /// Where: a file path, `namespace/name`, a KV key.
    pub location: String,
    /// Key path inside that source (`http.routers.api.rule`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {}: {}", self.location, key, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}
