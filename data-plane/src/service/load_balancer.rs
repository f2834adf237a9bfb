//! `loadBalancer` services: smooth weighted round robin over the healthy
//! servers of the service.

use std::sync::Arc;

use http::HeaderValue;
use sluice_proto::v1;

use super::ServiceError;
use super::client::UpstreamClient;
use super::health_check::{CheckSpec, HealthCheckConfig, ServerKey};
use super::upstream::{ServerUrl, Upstream};
use super::wrr::Rotation;
use crate::shared::SharedState;

/// A load balancer over servers.
#[derive(Debug)]
pub(crate) struct LoadBalancer {
    servers: Vec<Upstream>,
    /// Forward the client's Host header (else the server URL's host).
    pub(crate) pass_host_header: bool,
    /// The client of the balancer's servers transport.
    pub(crate) client: Arc<UpstreamClient>,
    rotation: Rotation,
}

impl LoadBalancer {
    /// Builds the balancer of service `name`, speaking to servers with
    /// `client`; the health checks it needs are pushed to `checks`.
    pub(crate) fn build(
        name: &str,
        config: &v1::LoadBalancer,
        shared: &SharedState,
        client: Arc<UpstreamClient>,
        checks: &mut Vec<CheckSpec>,
    ) -> Result<Self, ServiceError> {
        if config.sticky.is_some() {
            return Err(ServiceError::Sticky);
        }
        let mut servers = Vec::with_capacity(config.servers.len());
        for server in &config.servers {
            let target = ServerUrl::parse(&server.url)?;
            let health = match &config.health_check {
                Some(check) => {
                    let key = ServerKey {
                        service: name.to_owned(),
                        url: server.url.clone(),
                    };
                    let health = shared.health.checked(&key);
                    checks.push(CheckSpec {
                        key,
                        config: HealthCheckConfig::new(check, &target)?,
                        health: health.clone(),
                        client: client.clone(),
                    });
                    health
                }
                None => shared.health.unchecked(),
            };
            servers.push(Upstream {
                url: server.url.clone(),
                host_header: HeaderValue::from_str(target.authority.as_str())
                    .map_err(|_| ServiceError::ServerHost(server.url.clone()))?,
                target,
                preserve_path: server.preserve_path,
                weight: server.weight,
                health,
            });
        }
        let rotation = Rotation::new(
            servers.iter().map(|s| s.weight).collect(),
            shared.position(name),
            shared.health.epoch(),
        );
        Ok(Self {
            servers,
            pass_host_header: config.pass_host_header,
            client,
            rotation,
        })
    }

    /// The next healthy server, if any.
    pub(crate) fn pick(&self) -> Option<&Upstream> {
        let servers = &self.servers;
        self.rotation
            .next(|i| servers[i].health.is_healthy())
            .map(|i| &servers[i])
    }

    /// True when some server can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.servers
            .iter()
            .any(|s| s.weight > 0 && s.health.is_healthy())
    }
}
