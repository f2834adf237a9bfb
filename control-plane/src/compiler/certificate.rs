//! The `tls` section: certificates read and inlined as PEM (their names and
//! expiry read from the leaf certificate), TLS options and certificate
//! stores. Option names are qualified like other resources, except
//! `default`, which every provider shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_proto::v1::{Certificate, TlsClientAuth, TlsDomain, TlsOptions, TlsStore};

use super::qualify;
use super::report::{CompileReport, ResourceKindName, shown};
use super::tls_options::check_options;
use crate::dynamic::{TlsCertificateConfig, TlsOptionsConfig};
use crate::providers::ProviderUpdate;

/// Compiled `tls` section.
pub(super) struct CompiledTls {
    pub(super) certificates: Vec<Certificate>,
    /// By qualified name (`default` unqualified).
    pub(super) options: BTreeMap<String, TlsOptions>,
    pub(super) stores: Vec<TlsStore>,
}

/// `previous` are the certificates of the last published snapshot: a
/// certificate file that stops loading (a rotation caught half-written, a key
/// that no longer matches) keeps its last good version, with the error
/// reported, rather than dropping that host back to the default certificate.
pub(super) fn compile_tls(
    providers: &BTreeMap<String, ProviderUpdate>,
    previous: &[Arc<Certificate>],
    report: &mut CompileReport,
) -> CompiledTls {
    let mut certificates = BTreeMap::new();
    let mut options = BTreeMap::new();
    let mut stores = BTreeMap::new();
    for update in providers.values() {
        let Some(tls) = &update.config.tls else {
            continue;
        };
        for (index, config) in tls.certificates.iter().enumerate() {
            let origin_key = format!("tls.certificates[{index}]");
            match load_certificate(config, &origin_key) {
                Ok(certificate) => {
                    certificates.insert(certificate.name.clone(), certificate);
                }
                Err(message) => {
                    let key = ResourceKindName::qualified(
                        "certificate",
                        &format!("{origin_key}@{}", update.provider),
                    );
                    report.register(&key, update, shown(config));
                    match last_good(previous, &config.cert_file) {
                        Some(certificate) => {
                            report.error_on_shipped(
                                &key,
                                format!(
                                    "{message}; still serving the previous `{}`",
                                    config.cert_file
                                ),
                            );
                            certificates.insert(certificate.name.clone(), certificate.clone());
                        }
                        None => report.error(&key, message),
                    }
                }
            }
        }
        for (name, config) in &tls.options {
            let qualified = if name == "default" {
                name.clone()
            } else {
                qualify(name, &update.provider)
            };
            let key = ResourceKindName::qualified("tlsOptions", &qualified);
            report.register(&key, update, shown(config));
            if options.contains_key(&qualified) {
                report.error(
                    &key,
                    "the `default` TLS options are defined by several providers".to_owned(),
                );
                continue;
            }
            match compile_options(&qualified, config) {
                Ok(compiled) => {
                    options.insert(qualified, compiled);
                }
                Err(message) => report.error(&key, message),
            }
        }
        for (name, config) in &tls.stores {
            let key = ResourceKindName::qualified("tlsStore", name);
            report.register(&key, update, shown(config));
            let default_certificate = match &config.default_certificate {
                Some(files) => {
                    let as_certificate = TlsCertificateConfig {
                        cert_file: files.cert_file.clone(),
                        key_file: files.key_file.clone(),
                        stores: vec![name.clone()],
                    };
                    match load_certificate(&as_certificate, "defaultCertificate") {
                        Ok(certificate) => {
                            let certificate_name = certificate.name.clone();
                            certificates.insert(certificate_name.clone(), certificate);
                            certificate_name
                        }
                        Err(message) => {
                            report.error(&key, message);
                            continue;
                        }
                    }
                }
                None => String::new(),
            };
            stores.insert(
                name.clone(),
                TlsStore {
                    name: name.clone(),
                    content_version: String::new(),
                    default_certificate,
                    default_generated_cert: config
                        .default_generated_cert
                        .as_ref()
                        .and_then(|generated| generated.domain.as_ref())
                        .map(|domain| TlsDomain {
                            main: domain.main.clone(),
                            sans: domain.sans.clone(),
                        }),
                },
            );
        }
    }
    CompiledTls {
        certificates: certificates.into_values().collect(),
        options,
        stores: stores.into_values().collect(),
    }
}

/// The last published certificate read from the file `cert_file` (inline
/// PEM has no identity across edits).
fn last_good<'a>(previous: &'a [Arc<Certificate>], cert_file: &str) -> Option<&'a Certificate> {
    if cert_file.contains("-----BEGIN") {
        return None;
    }
    previous
        .iter()
        .map(|certificate| &**certificate)
        .find(|certificate| certificate.origin == cert_file)
}

/// Reads a certificate and key, each a file path or inline PEM, and checks
/// that the key belongs to the certificate, so a mismatched pair is reported
/// here, naming the files, instead of being rejected by every proxy.
fn load_certificate(config: &TlsCertificateConfig, key: &str) -> Result<Certificate, String> {
    let cert_pem = read_pem(&config.cert_file, &format!("{key}.certFile"), "CERTIFICATE")?;
    let key_pem = read_pem(&config.key_file, &format!("{key}.keyFile"), "PRIVATE KEY")?;
    let leaf = read_leaf(&cert_pem).map_err(|error| format!("{key}.certFile: {error}"))?;
    check_key_matches(&cert_pem, &key_pem)
        .map_err(|error| format!("{key}.keyFile {}: {error}", shown_source(&config.key_file)))?;
    let digest = Sha256::digest(cert_pem.as_bytes());
    let origin = if config.cert_file.contains("-----BEGIN") {
        "inline PEM".to_owned()
    } else {
        config.cert_file.clone()
    };
    Ok(Certificate {
        name: format!("cert-{}", hex::encode(&digest[..8])),
        content_version: String::new(),
        cert_pem,
        key_pem,
        stores: if config.stores.is_empty() {
            vec!["default".to_owned()]
        } else {
            config.stores.clone()
        },
        sans: leaf.names,
        origin,
        not_after_unix: leaf.not_after_unix,
    })
}

/// How a certFile/keyFile value is named in errors, never echoing inline PEM.
fn shown_source(value: &str) -> String {
    if value.contains("-----BEGIN") {
        "(inline PEM)".to_owned()
    } else {
        format!("`{value}`")
    }
}

/// Fails when the private key cannot sign for the certificate's public key.
fn check_key_matches(cert_pem: &str, key_pem: &str) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("certificate: {error}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|error| format!("not a usable private key: {error}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|error| format!("unsupported private key: {error}"))?;
    rustls::sign::CertifiedKey::new(chain, signing)
        .keys_match()
        .map_err(|_| "the key does not match the certificate".to_owned())
}

/// What the proxies and the admin API need from a leaf certificate.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Leaf {
    /// Lower-cased DNS names (subject CN first when it is one, then DNS
    /// SANs) and IP SANs, without duplicates.
    pub(super) names: Vec<String>,
    /// End of validity, Unix seconds.
    pub(super) not_after_unix: i64,
}

/// Parses the first certificate of a PEM chain.
pub(super) fn read_leaf(pem: &str) -> Result<Leaf, String> {
    use x509_parser::extensions::GeneralName;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|error| format!("not a PEM certificate: {error}"))?;
    let certificate = block
        .parse_x509()
        .map_err(|error| format!("not an X.509 certificate: {error}"))?;
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    for common_name in certificate.subject().iter_common_name() {
        if let Ok(name) = common_name.as_str()
            && is_dns_name(name)
        {
            push(name.to_ascii_lowercase());
        }
    }
    if let Ok(Some(sans)) = certificate.subject_alternative_name() {
        for name in &sans.value.general_names {
            match name {
                GeneralName::DNSName(dns) => push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Leaf {
        names,
        not_after_unix: certificate.validity().not_after.timestamp(),
    })
}

/// A host name or wildcard as a certificate CN may hold (not a person's name).
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*'))
}

pub(super) fn read_pem(value: &str, key: &str, label: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{key} is empty"));
    }
    let (pem, shown) = if value.contains("-----BEGIN") {
        (value.to_owned(), "inline PEM".to_owned())
    } else {
        let pem =
            std::fs::read_to_string(value).map_err(|error| format!("{key} `{value}`: {error}"))?;
        (pem, format!("`{value}`"))
    };
    if !pem.contains(&format!("{label}-----")) {
        return Err(format!("{key} {shown}: no PEM block of type `{label}`"));
    }
    Ok(pem)
}

fn compile_options(name: &str, config: &TlsOptionsConfig) -> Result<TlsOptions, String> {
    check_options(config)?;
    let client_auth = config
        .client_auth
        .as_ref()
        .map(|auth| {
            let client_auth_type = if auth.client_auth_type.is_empty() {
                "NoClientCert".to_owned()
            } else {
                auth.client_auth_type.clone()
            };
            let ca_pems = auth
                .ca_files
                .iter()
                .enumerate()
                .map(|(index, file)| {
                    read_pem(file, &format!("clientAuth.caFiles[{index}]"), "CERTIFICATE")
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, String>(TlsClientAuth {
                ca_pems,
                client_auth_type,
            })
        })
        .transpose()?;
    Ok(TlsOptions {
        name: name.to_owned(),
        content_version: String::new(),
        min_version: config.min_version.clone(),
        max_version: config.max_version.clone(),
        cipher_suites: config.cipher_suites.clone(),
        curve_preferences: config.curve_preferences.clone(),
        client_auth,
        sni_strict: config.sni_strict,
        alpn_protocols: if config.alpn_protocols.is_empty() {
            vec![
                "h2".to_owned(),
                "http/1.1".to_owned(),
                "acme-tls/1".to_owned(),
            ]
        } else {
            config.alpn_protocols.clone()
        },
        disable_session_tickets: config.disable_session_tickets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_names_and_expiry_come_from_the_certificate() {
        let mut params = rcgen::CertificateParams::new(vec![
            "Www.Example.com".to_owned(),
            "*.example.com".to_owned(),
            "10.0.0.1".to_owned(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.com");
        params.not_after = rcgen::date_time_ymd(2031, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        let leaf = read_leaf(&pem).unwrap();
        assert_eq!(
            leaf.names,
            [
                "example.com",
                "www.example.com",
                "*.example.com",
                "10.0.0.1"
            ]
        );
        assert_eq!(leaf.not_after_unix, 1_925_078_400);
        assert!(read_leaf("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
    }

    #[test]
    fn certificates_carry_names_and_expiry() {
        let certified = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).unwrap();
        let config = TlsCertificateConfig {
            cert_file: certified.cert.pem(),
            key_file: certified.signing_key.serialize_pem(),
            stores: Vec::new(),
        };
        let certificate = load_certificate(&config, "tls.certificates[0]").unwrap();
        assert_eq!(certificate.sans, ["a.test"]);
        assert!(certificate.not_after_unix > 0);
        assert_eq!(certificate.origin, "inline PEM");
        assert_eq!(certificate.stores, ["default"]);
    }
}
