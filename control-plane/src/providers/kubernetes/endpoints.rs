//! From a Service and one of its ports to the URLs of the ready Pods behind
//! it, read from the Service's EndpointSlices (`discovery.k8s.io/v1`), not
//! its cluster IP: the proxy balances over Pods itself, and a Pod that stops
//! being ready leaves the list at once.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cluster::Cluster;

/// A backend's port: the Service port's number or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PortRef {
    /// `port.number`.
    Number(i32),
    /// `port.name`.
    Name(String),
}

impl PortRef {
    /// From an Ingress backend or an IngressRoute service's `port`.
    pub(super) fn from_int_or_string(port: &IntOrString) -> Self {
        match port {
            IntOrString::Int(number) => Self::Number(*number),
            IntOrString::String(text) => match text.parse() {
                Ok(number) => Self::Number(number),
                Err(_) => Self::Name(text.clone()),
            },
        }
    }

    /// How the port is written in generated names.
    pub(super) fn label(&self) -> String {
        match self {
            Self::Number(number) => number.to_string(),
            Self::Name(name) => name.clone(),
        }
    }
}

/// Why a backend has no servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EndpointError {
    /// No such Service.
    #[error("service `{namespace}/{name}` not found")]
    ServiceNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Service has no such port.
    #[error("service `{namespace}/{name}` has no port `{port}`")]
    PortNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The port asked for.
        port: String,
    },
    /// An `ExternalName` Service while `allowExternalNameServices` is off.
    #[error(
        "service `{namespace}/{name}` is of type ExternalName; set allowExternalNameServices to route to it"
    )]
    ExternalName {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// Resolves Service `namespace/name` port `port` to server URLs, sorted.
/// `scheme` overrides the default (`https` for port 443 or a port named
/// `https...`, else `http`). An empty list means no ready Pod.
pub(super) fn servers(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    port: &PortRef,
    scheme: Option<&str>,
    allow_external_name: bool,
) -> Result<Vec<String>, EndpointError> {
    let service =
        cluster
            .service(namespace, name)
            .ok_or_else(|| EndpointError::ServiceNotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let service_port = ports
        .iter()
        .find(|candidate| match port {
            PortRef::Number(number) => candidate.port == *number,
            PortRef::Name(wanted) => candidate.name.as_deref() == Some(wanted),
        })
        .cloned();
    let is_external = spec.type_.as_deref() == Some("ExternalName");
    let service_port = match (service_port, port, is_external) {
        (Some(found), _, _) => found,
        // An ExternalName Service may list no ports: the number is used as is.
        (None, PortRef::Number(number), true) => ServicePort {
            port: *number,
            ..ServicePort::default()
        },
        (None, _, _) => {
            return Err(EndpointError::PortNotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                port: port.label(),
            });
        }
    };
    let scheme = scheme.unwrap_or_else(|| default_scheme(&service_port));
    if is_external {
        if !allow_external_name {
            return Err(EndpointError::ExternalName {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            });
        }
        let host = spec.external_name.unwrap_or_default();
        return Ok(vec![format!("{scheme}://{host}:{}", service_port.port)]);
    }
    let mut urls = BTreeSet::new();
    for slice in cluster.slices_of(namespace, name) {
        if slice.address_type == "FQDN" {
            continue;
        }
        let Some(target) = slice.ports.iter().flatten().find_map(|slice_port| {
            (slice_port.name.as_deref().unwrap_or("") == service_port.name.as_deref().unwrap_or(""))
                .then_some(slice_port.port)
                .flatten()
        }) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for address in &endpoint.addresses {
                let host = if address.contains(':') {
                    format!("[{address}]")
                } else {
                    address.clone()
                };
                urls.insert(format!("{scheme}://{host}:{target}"));
            }
        }
    }
    Ok(urls.into_iter().collect())
}

/// Traefik's rule: HTTPS for port 443 or a port named `https...`.
fn default_scheme(port: &ServicePort) -> &'static str {
    if port.port == 443 || port.name.as_deref().is_some_and(|n| n.starts_with("https")) {
        "https"
    } else {
        "http"
    }
}
