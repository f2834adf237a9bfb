//! Writes the published address (`ingressEndpoint`) into the
//! `status.loadBalancer` of every served Ingress, through the status
//! subresource, so `kubectl get ingress` shows where it is reachable. Only
//! Ingresses whose status differs are patched, so the provider's own
//! patches (which come back as watch events) settle at once.

use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::cluster::Cluster;
use super::ingress;
use crate::config::{IngressEndpointConfig, KubernetesIngressConfig};

/// Patches Ingress statuses with the published address.
pub(super) struct StatusWriter {
    client: kube::Client,
    endpoint: IngressEndpointConfig,
    config: KubernetesIngressConfig,
}

impl StatusWriter {
    pub(super) fn new(
        client: kube::Client,
        endpoint: &IngressEndpointConfig,
        config: &KubernetesIngressConfig,
    ) -> Self {
        Self {
            client,
            endpoint: endpoint.clone(),
            config: config.clone(),
        }
    }

    /// Patches every served Ingress whose status is not the published
    /// address. Failures are logged and retried on the next change.
    pub(super) async fn update(&self, cluster: &Cluster) {
        let Some(desired) = self.published(cluster) else {
            return;
        };
        for ingress in ingress::accepted(cluster, &self.config) {
            if addresses(current(ingress)) == addresses(&desired) {
                continue;
            }
            let namespace = ingress.namespace().unwrap_or_default();
            let name = ingress.name_any();
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({
                "status": {"loadBalancer": {"ingress": desired}}
            });
            if let Err(error) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(ingress = %format!("{namespace}/{name}"), %error, "cannot update the Ingress status");
            }
        }
    }

    /// The address to publish; `None` while a published Service has none.
    fn published(&self, cluster: &Cluster) -> Option<Vec<IngressLoadBalancerIngress>> {
        let endpoint = &self.endpoint;
        if !endpoint.published_service.is_empty() {
            let (namespace, name) = endpoint.published_service.split_once('/')?;
            let service = cluster.service(namespace, name)?;
            let ingresses = service
                .status
                .as_ref()?
                .load_balancer
                .as_ref()?
                .ingress
                .clone()?;
            return Some(
                ingresses
                    .into_iter()
                    .map(|address| IngressLoadBalancerIngress {
                        ip: address.ip,
                        hostname: address.hostname,
                        ..IngressLoadBalancerIngress::default()
                    })
                    .collect(),
            );
        }
        let address = IngressLoadBalancerIngress {
            ip: (!endpoint.ip.is_empty()).then(|| endpoint.ip.clone()),
            hostname: (!endpoint.hostname.is_empty()).then(|| endpoint.hostname.clone()),
            ..IngressLoadBalancerIngress::default()
        };
        (address.ip.is_some() || address.hostname.is_some()).then(|| vec![address])
    }
}

fn current(ingress: &Ingress) -> &[IngressLoadBalancerIngress] {
    ingress
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_deref())
        .unwrap_or(&[])
}

fn addresses(ingresses: &[IngressLoadBalancerIngress]) -> Vec<(Option<&str>, Option<&str>)> {
    ingresses
        .iter()
        .map(|address| (address.ip.as_deref(), address.hostname.as_deref()))
        .collect()
}
