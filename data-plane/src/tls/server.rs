//! One rustls `ServerConfig` per TLS options set of a runtime, built from
//! the snapshot's `TlsOptions` (Traefik's names mapped to rustls): versions,
//! cipher suites, key exchange groups, ALPN, client authentication and
//! `sniStrict`. Each config resolves certificates from the runtime's shared
//! [`CertIndex`].

use std::sync::Arc;

use rustls::crypto::ring::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme, SupportedCipherSuite,
    SupportedProtocolVersion,
};
use sluice_proto::v1;

use super::TlsError;
use super::certs::{CertIndex, CertResolver, parse_chain};

/// The options a router gets when it names none.
pub(crate) const DEFAULT_OPTIONS: &str = "default";

/// Builds the rustls config of `options`, resolving certificates from `index`.
pub(crate) fn server_config(
    options: &v1::TlsOptions,
    index: Arc<CertIndex>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let invalid = |reason: String| TlsError::Options {
        name: options.name.clone(),
        reason,
    };
    let provider = Arc::new(provider(options).map_err(invalid)?);
    let versions = versions(&options.min_version, &options.max_version).map_err(invalid)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|error| invalid(error.to_string()))?;
    let verifier = client_verifier(options.client_auth.as_ref(), &provider).map_err(invalid)?;
    let mut config = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(Arc::new(CertResolver {
        index,
        sni_strict: options.sni_strict,
    }));
    config.alpn_protocols = options
        .alpn_protocols
        .iter()
        .map(|protocol| protocol.as_bytes().to_vec())
        .collect();
    if options.disable_session_tickets {
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// Traefik's defaults: TLS 1.2 and 1.3, HTTP/2 then HTTP/1.1.
pub(crate) fn default_options() -> v1::TlsOptions {
    v1::TlsOptions {
        name: DEFAULT_OPTIONS.to_owned(),
        alpn_protocols: vec!["h2".to_owned(), "http/1.1".to_owned()],
        ..Default::default()
    }
}

fn versions(min: &str, max: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let rank = |option: &str, value: &str, default: u8| match value {
        "" => Ok(default),
        "VersionTLS12" => Ok(12),
        "VersionTLS13" => Ok(13),
        other => Err(format!(
            "{option} `{other}` is not supported (VersionTLS12 or VersionTLS13)"
        )),
    };
    let (min, max) = (rank("minVersion", min, 12)?, rank("maxVersion", max, 13)?);
    let versions: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(rank, _)| (min..=max).contains(rank))
        .map(|(_, version)| version)
        .collect();
    if versions.is_empty() {
        return Err("minVersion is above maxVersion".to_owned());
    }
    Ok(versions)
}

/// The rustls suite of a Go cipher suite name.
pub(crate) fn cipher_suite(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => cipher_suite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cipher_suite::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// The rustls key exchange group of a Go curve name.
pub(crate) fn kx_group(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    match name {
        "CurveP256" => Some(kx_group::SECP256R1),
        "CurveP384" => Some(kx_group::SECP384R1),
        "X25519" => Some(kx_group::X25519),
        _ => None,
    }
}

/// The ring provider restricted to the options' suites and curves. As in Go,
/// TLS 1.3 suites stay enabled unless some are named.
fn provider(options: &v1::TlsOptions) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    if !options.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        for name in &options.cipher_suites {
            let suite = cipher_suite(name)
                .ok_or_else(|| format!("cipherSuites: `{name}` is not supported"))?;
            if !chosen.contains(&suite) {
                chosen.push(suite);
            }
        }
        if !chosen
            .iter()
            .any(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        {
            chosen.extend(
                provider
                    .cipher_suites
                    .iter()
                    .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_))),
            );
        }
        provider.cipher_suites = chosen;
    }
    if !options.curve_preferences.is_empty() {
        provider.kx_groups = options
            .curve_preferences
            .iter()
            .map(|name| {
                kx_group(name).ok_or_else(|| format!("curvePreferences: `{name}` is not supported"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(provider)
}

fn client_verifier(
    auth: Option<&v1::TlsClientAuth>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let roots = || -> Result<Arc<RootCertStore>, String> {
        let mut roots = RootCertStore::empty();
        for (index, pem) in auth.ca_pems.iter().enumerate() {
            for certificate in
                parse_chain(pem).map_err(|error| format!("clientAuth.caFiles[{index}]: {error}"))?
            {
                roots
                    .add(certificate)
                    .map_err(|error| format!("clientAuth.caFiles[{index}]: {error}"))?;
            }
        }
        Ok(Arc::new(roots))
    };
    let webpki = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let builder = WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|error| format!("clientAuth: {error}"))
    };
    Ok(match auth.client_auth_type.as_str() {
        "" | "NoClientCert" => None,
        "RequestClientCert" => Some(Arc::new(AnyClientCert::new(provider, false))),
        "RequireAnyClientCert" => Some(Arc::new(AnyClientCert::new(provider, true))),
        "VerifyClientCertIfGiven" => Some(webpki(true)?),
        "RequireAndVerifyClientCert" => Some(webpki(false)?),
        other => {
            return Err(format!(
                "clientAuth.clientAuthType `{other}` is not supported"
            ));
        }
    })
}

/// Asks for a client certificate and accepts any (Go's `RequestClientCert`
/// and `RequireAnyClientCert`): the handshake signature is still checked, so
/// the client holds the key of what it presents.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl AnyClientCert {
    fn new(provider: &Arc<CryptoProvider>, mandatory: bool) -> Self {
        Self {
            provider: provider.clone(),
            mandatory,
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(edit: impl FnOnce(&mut v1::TlsOptions)) -> Result<Arc<ServerConfig>, TlsError> {
        let mut options = default_options();
        edit(&mut options);
        server_config(&options, Arc::new(CertIndex::default()))
    }

    #[test]
    fn versions_map_and_reject_what_rustls_lacks() {
        let both = versions("", "").unwrap();
        assert_eq!(both.len(), 2);
        let only13 = versions("VersionTLS13", "").unwrap();
        assert_eq!(only13, [&rustls::version::TLS13]);
        assert!(
            versions("VersionTLS10", "")
                .unwrap_err()
                .contains("minVersion `VersionTLS10`")
        );
        assert!(versions("VersionTLS13", "VersionTLS12").is_err());
    }

    #[test]
    fn suites_and_curves_map_or_name_the_value() {
        assert!(cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").is_some());
        assert!(cipher_suite("TLS_RSA_WITH_RC4_128_SHA").is_none());
        let error = options(|o| o.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "TLS options `default`: cipherSuites: `TLS_RSA_WITH_RC4_128_SHA` is not supported"
        );
        let error = options(|o| o.curve_preferences = vec!["CurveP521".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("curvePreferences: `CurveP521`"), "{error}");
        // TLS 1.2 suites only: TLS 1.3 suites stay, as in Go.
        let provider = provider(&v1::TlsOptions {
            cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()],
            curve_preferences: vec!["X25519".into(), "CurveP256".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(provider.cipher_suites.len(), 4);
        assert_eq!(provider.kx_groups.len(), 2);
    }

    #[test]
    fn client_auth_types_build_their_verifiers() {
        let ca = super::super::test_pki::TestCa::new("clients");
        let auth = |kind: &str, cas: Vec<String>| {
            options(|o| {
                o.client_auth = Some(v1::TlsClientAuth {
                    ca_pems: cas,
                    client_auth_type: kind.into(),
                })
            })
        };
        for kind in ["NoClientCert", "RequestClientCert", "RequireAnyClientCert"] {
            assert!(auth(kind, vec![]).is_ok(), "{kind}");
        }
        for kind in ["VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] {
            assert!(auth(kind, vec![ca.pem()]).is_ok(), "{kind}");
            assert!(auth(kind, vec![]).is_err(), "{kind} without CA");
        }
        assert!(auth("Sometimes", vec![]).is_err());
    }
}
