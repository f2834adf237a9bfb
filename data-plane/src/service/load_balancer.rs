//! `loadBalancer` services: smooth weighted round robin over the healthy
//! servers of the service, with sticky sessions when `sticky.cookie` is set.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use sluice_proto::v1;

use super::ServiceError;
use super::client::UpstreamClient;
use super::health_check::{CheckSpec, HealthCheckConfig, ServerKey};
use super::sticky::{Sticky, server_name};
use super::upstream::{Protocol, ServerUrl, Upstream};
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
    /// Set with `sticky.cookie`.
    sticky: Option<Sticky>,
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
            let pools = (target.protocol == Protocol::Http1)
                .then(|| client.server_pools(&target.authority));
            servers.push(Upstream {
                pools,
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
        let sticky = config
            .sticky
            .as_ref()
            .and_then(|sticky| sticky.cookie.as_ref())
            .map(|cookie| {
                Sticky::new(
                    name,
                    cookie,
                    config.servers.iter().map(|s| server_name(&s.url)),
                )
            });
        Ok(Self {
            servers,
            pass_host_header: config.pass_host_header,
            client,
            rotation,
            sticky,
        })
    }

    /// The server for a request with `headers`: the one its sticky cookie
    /// names while it is healthy, else the next healthy one of the rotation
    /// (whose `Set-Cookie` is pushed to `set_cookies` when sessions are sticky).
    pub(crate) fn pick<'a>(
        &'a self,
        headers: &HeaderMap,
        set_cookies: &mut Vec<&'a HeaderValue>,
    ) -> Option<&'a Upstream> {
        let servers = &self.servers;
        let Some(sticky) = &self.sticky else {
            return self
                .rotation
                .next(|i| servers[i].health.is_healthy())
                .map(|i| &servers[i]);
        };
        if let Some(i) = sticky.target(headers)
            && servers[i].health.is_healthy()
        {
            return Some(&servers[i]);
        }
        let i = self.rotation.next(|i| servers[i].health.is_healthy())?;
        set_cookies.push(sticky.set_cookie(i));
        Some(&servers[i])
    }

    /// Whether a request is forwarded straight to an `http://` server (no
    /// sticky cookie to set or follow).
    pub(crate) fn forwards_directly(&self) -> bool {
        self.sticky.is_none()
            && self
                .servers
                .iter()
                .all(|server| server.target.protocol == Protocol::Http1)
    }

    /// True when some server can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.servers
            .iter()
            .any(|s| s.weight > 0 && s.health.is_healthy())
    }
}
