//! Files the configuration points to (certificates, keys, CAs), which the
//! compiler reads: a rewrite of one of them (certificate rotation) must
//! trigger a recompilation although no configuration file changed. Their
//! parent directories are watched too, as configuration directories are, so
//! renames over the file (`mv new.pem cert.pem`) are seen.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::dynamic::DynamicConfig;

/// The files `config` references by path (inline PEM is skipped).
pub(super) fn referenced_files(config: &DynamicConfig) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut add = |value: &str| {
        if !value.is_empty() && !value.contains("-----BEGIN") {
            files.insert(PathBuf::from(value));
        }
    };
    if let Some(tls) = &config.tls {
        for certificate in &tls.certificates {
            add(&certificate.cert_file);
            add(&certificate.key_file);
        }
        for store in tls.stores.values() {
            if let Some(default) = &store.default_certificate {
                add(&default.cert_file);
                add(&default.key_file);
            }
        }
        for options in tls.options.values() {
            for ca in options.client_auth.iter().flat_map(|auth| &auth.ca_files) {
                add(ca);
            }
        }
    }
    if let Some(http) = &config.http {
        for transport in http.servers_transports.values() {
            for ca in &transport.root_cas {
                add(ca);
            }
            for certificate in &transport.certificates {
                add(&certificate.cert_file);
                add(&certificate.key_file);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_collected_and_inline_pem_skipped() {
        let config: DynamicConfig = serde_yaml::from_str(
            r#"
tls:
  certificates:
    - certFile: /certs/a.pem
      keyFile: /certs/a.key
    - certFile: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"
      keyFile: /certs/b.key
  options:
    mtls:
      clientAuth:
        caFiles: [/certs/ca.pem]
http:
  serversTransports:
    t:
      rootCAs: [/certs/backend-ca.pem]
"#,
        )
        .unwrap();
        let files: Vec<String> = referenced_files(&config)
            .into_iter()
            .map(|path| path.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/certs/a.key",
                "/certs/a.pem",
                "/certs/b.key",
                "/certs/backend-ca.pem",
                "/certs/ca.pem"
            ]
        );
    }
}
