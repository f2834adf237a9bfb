//! `http.serversTransports`: how proxies talk to backends (TLS verification,
//! client certificates, pooling, timeouts). CA and certificate files are read
//! and inlined as PEM like the `tls` section's; a load balancer naming a
//! transport that does not ship is not served either (fail closed).

use std::collections::BTreeMap;

use sluice_proto::v1::{ClientCertificate, ServersTransport, Service, service::Kind};

use super::certificate::read_pem;
use super::report::{CompileReport, ResourceKindName, shown};
use super::{check_plain_name, qualify};
use crate::dynamic::ServersTransportConfig;
use crate::providers::ProviderUpdate;

/// Compiles every servers transport; returns those that ship, by qualified name.
pub(super) fn compile_servers_transports(
    providers: &BTreeMap<String, ProviderUpdate>,
    report: &mut CompileReport,
) -> BTreeMap<String, ServersTransport> {
    let mut compiled = BTreeMap::new();
    for update in providers.values() {
        let Some(http) = &update.config.http else {
            continue;
        };
        for (name, config) in &http.servers_transports {
            let qualified = qualify(name, &update.provider);
            let key = ResourceKindName::qualified("serversTransport", &qualified);
            report.register(&key, update, shown(config));
            match check_plain_name(name).and_then(|()| compile(&qualified, config)) {
                Ok(transport) => {
                    compiled.insert(qualified, transport);
                }
                Err(message) => report.error(&key, message),
            }
        }
    }
    compiled
}

/// Drops load balancers whose servers transport does not ship.
pub(super) fn drop_services_without_transport(
    services: &mut BTreeMap<String, Service>,
    transports: &BTreeMap<String, ServersTransport>,
    report: &mut CompileReport,
) {
    let broken: Vec<(String, String)> = services
        .values()
        .filter_map(|service| match &service.kind {
            Some(Kind::LoadBalancer(balancer))
                if !balancer.servers_transport.is_empty()
                    && !transports.contains_key(&balancer.servers_transport) =>
            {
                Some((service.name.clone(), balancer.servers_transport.clone()))
            }
            _ => None,
        })
        .collect();
    for (name, transport) in broken {
        services.remove(&name);
        report.error(
            &ResourceKindName::qualified("service", &name),
            format!("loadBalancer.serversTransport `{transport}` does not exist or is broken"),
        );
    }
}

fn compile(name: &str, config: &ServersTransportConfig) -> Result<ServersTransport, String> {
    let root_ca_pems = config
        .root_cas
        .iter()
        .enumerate()
        .map(|(index, file)| read_pem(file, &format!("rootCAs[{index}]"), "CERTIFICATE"))
        .collect::<Result<Vec<_>, _>>()?;
    let certificates = config
        .certificates
        .iter()
        .enumerate()
        .map(|(index, files)| {
            let key = format!("certificates[{index}]");
            Ok(ClientCertificate {
                cert_pem: read_pem(&files.cert_file, &format!("{key}.certFile"), "CERTIFICATE")?,
                key_pem: read_pem(&files.key_file, &format!("{key}.keyFile"), "PRIVATE KEY")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let max_idle = match config.max_idle_conns_per_host {
        None => 0,
        Some(value) => u32::try_from(value)
            .map_err(|_| format!("maxIdleConnsPerHost `{value}` is out of range"))?,
    };
    let timeouts = config.forwarding_timeouts.clone().unwrap_or_default();
    let millis = |value: Option<crate::dynamic::Duration>| value.map_or(0, |d| d.as_millis());
    Ok(ServersTransport {
        name: name.to_owned(),
        content_version: String::new(),
        server_name: config.server_name.clone(),
        insecure_skip_verify: config.insecure_skip_verify,
        root_ca_pems,
        certificates,
        max_idle_conns_per_host: max_idle,
        dial_timeout_ms: millis(timeouts.dial_timeout),
        response_header_timeout_ms: millis(timeouts.response_header_timeout),
        idle_conn_timeout_ms: millis(timeouts.idle_conn_timeout),
        disable_http2: config.disable_http2,
    })
}
