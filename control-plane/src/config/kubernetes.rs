//! The static settings of the Kubernetes providers
//! (`providers.kubernetesIngress`, `providers.kubernetesCRD`), with Traefik
//! v3's key names and defaults.
//!
//! Without `endpoint`, the client is configured as `kubectl` would be: the
//! kubeconfig named by `KUBECONFIG` (or `~/.kube/config`), else the
//! in-cluster service account.

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::dynamic::Duration;

/// `providers.kubernetesIngress`: routes from `networking.k8s.io/v1` Ingresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesIngressConfig {
    /// API server URL (`https://host:6443`, or `http://` for a local proxy);
    /// empty uses the kubeconfig or the in-cluster service account.
    pub endpoint: String,
    /// Bearer token sent to `endpoint`.
    pub token: Secret,
    /// CA certificate file that signs the API server's certificate.
    pub cert_auth_file_path: String,
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Kubernetes label selector: only matching Ingresses are read.
    pub label_selector: String,
    /// Only Ingresses of this class (annotation or IngressClass name).
    pub ingress_class: String,
    /// Minimum time between two configurations sent by the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_duration: Option<Duration>,
    /// Route to `ExternalName` Services.
    pub allow_external_name_services: bool,
    /// Keep routes whose Service has no ready endpoint (they answer 503)
    /// instead of leaving them out.
    pub allow_empty_services: bool,
    /// The address written to the Ingresses' `status.loadBalancer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_endpoint: Option<IngressEndpointConfig>,
}

/// `providers.kubernetesIngress.ingressEndpoint`: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressEndpointConfig {
    /// A fixed IP address.
    pub ip: String,
    /// A fixed host name.
    pub hostname: String,
    /// `namespace/name` of the Service whose load balancer addresses are
    /// copied.
    pub published_service: String,
}

/// `providers.kubernetesCRD`: routes from Traefik's `traefik.io/v1alpha1`
/// resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesCrdConfig {
    /// API server URL; empty uses the kubeconfig or the in-cluster service
    /// account.
    pub endpoint: String,
    /// Bearer token sent to `endpoint`.
    pub token: Secret,
    /// CA certificate file that signs the API server's certificate.
    pub cert_auth_file_path: String,
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Kubernetes label selector: only matching resources are read.
    pub label_selector: String,
    /// Only resources with this `kubernetes.io/ingress.class` annotation.
    pub ingress_class: String,
    /// Minimum time between two configurations sent by the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_duration: Option<Duration>,
    /// Let a resource reference middlewares, services and secrets of other
    /// namespaces.
    pub allow_cross_namespace: bool,
    /// Route to `ExternalName` Services.
    pub allow_external_name_services: bool,
    /// Keep routes whose Service has no ready endpoint (they answer 503).
    pub allow_empty_services: bool,
}
