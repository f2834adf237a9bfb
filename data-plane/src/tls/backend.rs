//! rustls client configs for HTTPS backends, from a servers transport:
//! trusted roots (`rootCAs`, else the Mozilla roots of `webpki-roots`),
//! `insecureSkipVerify` and a client certificate for mTLS. ALPN (`h2` unless
//! `disableHTTP2`) is set by the connector (`service::client`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sluice_proto::v1;

use super::TlsError;
use super::certs::parse_chain;

/// The client config of `transport` (`None`: the default transport).
pub(crate) fn client_config(
    transport: Option<&v1::ServersTransport>,
) -> Result<ClientConfig, TlsError> {
    let name = transport.map_or("default", |t| t.name.as_str());
    let invalid = |reason: String| TlsError::Transport {
        name: name.to_owned(),
        reason,
    };
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(error.to_string()))?;
    let builder = match transport {
        Some(transport) if transport.insecure_skip_verify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        Some(transport) if !transport.root_ca_pems.is_empty() => {
            let mut roots = RootCertStore::empty();
            for (index, pem) in transport.root_ca_pems.iter().enumerate() {
                for certificate in parse_chain(pem)
                    .map_err(|error| invalid(format!("rootCAs[{index}]: {error}")))?
                {
                    roots
                        .add(certificate)
                        .map_err(|error| invalid(format!("rootCAs[{index}]: {error}")))?;
                }
            }
            builder.with_root_certificates(roots)
        }
        _ => builder.with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
    };
    let client_certificate = transport.and_then(|t| t.certificates.first());
    let config = match client_certificate {
        Some(certificate) => {
            let chain = parse_chain(&certificate.cert_pem)
                .map_err(|error| invalid(format!("certificates[0]: {error}")))?;
            let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
                .map_err(|error| invalid(format!("certificates[0]: private key: {error}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| invalid(format!("certificates[0]: {error}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// `insecureSkipVerify`: any certificate is accepted; handshake signatures
/// are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
