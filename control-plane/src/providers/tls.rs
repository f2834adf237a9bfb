//! TLS to a provider's store (Traefik's `tls` options under
//! `providers.consul`, `providers.consulCatalog.endpoint`, `providers.etcd`,
//! `providers.redis`): a rustls client configuration built once at startup.
//!
//! - `ca`: PEM file of the authorities the store's certificate must chain
//!   to; without it, the system's roots.
//! - `cert` and `key`: PEM files of a client certificate and its key, for
//!   stores that require one (mutual TLS); both or neither.
//! - `insecureSkipVerify`: accept any certificate from the store (its
//!   handshake signatures are still checked). For tests only.
//! - `caOptional`: accepted as in Traefik, where it only changes how a
//!   server asks for client certificates; it changes nothing for a client.
//!
//! Every error names the option and the file (`tls.ca `/x/ca.pem`: No such
//! file or directory`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::ProviderTlsConfig;

/// Why the `tls` options of a provider cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderTlsError {
    /// A file cannot be read.
    #[error("{option} `{path}`: {source}")]
    Read {
        /// The option, relative to the provider (`tls.ca`, `endpoint.tls.key`).
        option: String,
        /// The file as written.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM object of the expected kind.
    #[error("{option} `{path}`: {reason}")]
    Pem {
        /// The option.
        option: String,
        /// The file as written.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Only one of `cert` and `key` is set.
    #[error("{prefix}.cert and {prefix}.key must be set together")]
    HalfIdentity {
        /// The options' prefix (`tls`, `endpoint.tls`).
        prefix: String,
    },
    /// rustls refused the certificates or the key.
    #[error("{prefix}: {source}")]
    Rustls {
        /// The options' prefix.
        prefix: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
}

/// A client configuration for `tls`, written under the option `prefix`
/// (`tls`, `endpoint.tls`). Without `tls`, the system's roots and no client
/// certificate. ALPN is left to the connector (`h2` for etcd's gRPC).
pub(crate) fn client_config(
    prefix: &str,
    tls: Option<&ProviderTlsConfig>,
) -> Result<ClientConfig, ProviderTlsError> {
    let default = ProviderTlsConfig::default();
    let tls = tls.unwrap_or(&default);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rustls_error = |source| ProviderTlsError::Rustls {
        prefix: prefix.to_owned(),
        source,
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            option = %format!("{prefix}.insecureSkipVerify"),
            "the store's TLS certificate is not verified"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(roots(prefix, &tls.ca)?)
    };
    let config = match (tls.cert.is_empty(), tls.key.is_empty()) {
        (true, true) => builder.with_no_client_auth(),
        (false, false) => {
            let certificates = certificates(&format!("{prefix}.cert"), &tls.cert)?;
            let key = private_key(&format!("{prefix}.key"), &tls.key)?;
            builder
                .with_client_auth_cert(certificates, key)
                .map_err(rustls_error)?
        }
        _ => {
            return Err(ProviderTlsError::HalfIdentity {
                prefix: prefix.to_owned(),
            });
        }
    };
    Ok(config)
}

/// The authorities in `ca`, or the system's when it is empty.
fn roots(prefix: &str, ca: &str) -> Result<RootCertStore, ProviderTlsError> {
    let mut store = RootCertStore::empty();
    if ca.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!(%error, "skipping a system root certificate");
        }
        store.add_parsable_certificates(native.certs);
        return Ok(store);
    }
    let option = format!("{prefix}.ca");
    for certificate in certificates(&option, ca)? {
        store
            .add(certificate)
            .map_err(|error| ProviderTlsError::Pem {
                option: option.clone(),
                path: ca.to_owned(),
                reason: format!("not a usable CA certificate: {error}"),
            })?;
    }
    Ok(store)
}

pub(crate) fn read(option: &str, path: &str) -> Result<Vec<u8>, ProviderTlsError> {
    std::fs::read(Path::new(path)).map_err(|source| ProviderTlsError::Read {
        option: option.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in the PEM file `path`; at least one.
fn certificates(
    option: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, ProviderTlsError> {
    let pem_error = |reason: String| ProviderTlsError::Pem {
        option: option.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&read(option, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(format!("not PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(pem_error("no `CERTIFICATE` block".to_owned()));
    }
    Ok(certificates)
}

/// The private key in the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
fn private_key(option: &str, path: &str) -> Result<PrivateKeyDer<'static>, ProviderTlsError> {
    PrivateKeyDer::from_pem_slice(&read(option, path)?).map_err(|error| ProviderTlsError::Pem {
        option: option.to_owned(),
        path: path.to_owned(),
        reason: format!("no private key: {error}"),
    })
}

/// `insecureSkipVerify`: any certificate is accepted, but the handshake's
/// signatures are still verified with the key it carries.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tls(ca: &str, cert: &str, key: &str) -> ProviderTlsConfig {
        ProviderTlsConfig {
            ca: ca.to_owned(),
            cert: cert.to_owned(),
            key: key.to_owned(),
            ..ProviderTlsConfig::default()
        }
    }

    #[test]
    fn errors_name_the_option_and_the_file() {
        let error = client_config("tls", Some(&tls("/x/ca.pem", "", "")))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("tls.ca `/x/ca.pem`: No such file"),
            "{error}"
        );

        let mut not_pem = tempfile::NamedTempFile::new().unwrap();
        not_pem.write_all(b"hello").unwrap();
        let path = not_pem.path().display().to_string();
        let error = client_config("endpoint.tls", Some(&tls(&path, "", "")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("endpoint.tls.ca `{path}`: no `CERTIFICATE` block")
        );

        let error = client_config("tls", Some(&tls("", "/x/cert.pem", "")))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "tls.cert and tls.key must be set together");

        let error = client_config("tls", Some(&tls("", &path, "/x/key.pem")))
            .unwrap_err()
            .to_string();
        assert_eq!(error, format!("tls.cert `{path}`: no `CERTIFICATE` block"));
    }

    #[test]
    fn defaults_to_the_system_roots_without_a_client_certificate() {
        let config = client_config("tls", None).unwrap();
        assert!(!config.client_auth_cert_resolver.has_certs());
        let insecure = ProviderTlsConfig {
            insecure_skip_verify: true,
            ca_optional: true,
            ..ProviderTlsConfig::default()
        };
        let config = client_config("tls", Some(&insecure)).unwrap();
        assert!(config.alpn_protocols.is_empty(), "the connector sets ALPN");
        let verifier = AcceptAnyCertificate {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
