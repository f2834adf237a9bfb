//! Server certificates: parsed once into rustls `CertifiedKey`s (cached by
//! content version across runtime swaps, so a swap re-parses only what
//! changed), indexed per runtime by exact name and by wildcard, and chosen
//! per handshake by SNI.
//!
//! Selection follows Traefik: an exact name, then a wildcard `*.example.com`
//! covering one more label, then the store's default certificate (the one
//! configured, else a self-signed "TRAEFIK DEFAULT CERT" generated at start);
//! with `sniStrict`, no match means no certificate and the handshake fails.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use dashmap::DashMap;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sluice_proto::v1;

use super::TlsError;

/// Common name of the generated default certificate, as Traefik names it.
pub(crate) const DEFAULT_CERT_CN: &str = "TRAEFIK DEFAULT CERT";

/// Parsed certificates by content version, shared by every runtime.
pub(crate) struct CertCache {
    parsed: DashMap<String, Arc<CertifiedKey>>,
    generated: Arc<CertifiedKey>,
}

impl fmt::Debug for CertCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertCache")
            .field("parsed", &self.parsed.len())
            .finish_non_exhaustive()
    }
}

impl CertCache {
    /// An empty cache with a freshly generated default certificate.
    pub(crate) fn new() -> Result<Self, TlsError> {
        Ok(Self {
            parsed: DashMap::new(),
            generated: Arc::new(generate_default()?),
        })
    }

    /// The generated self-signed default certificate.
    pub(crate) fn generated(&self) -> Arc<CertifiedKey> {
        self.generated.clone()
    }

    /// `certificate`, parsed on first sight.
    pub(crate) fn get(&self, certificate: &v1::Certificate) -> Result<Arc<CertifiedKey>, TlsError> {
        let key = cache_key(certificate);
        if let Some(parsed) = self.parsed.get(&key) {
            return Ok(parsed.clone());
        }
        let parsed = Arc::new(
            certified_key(&certificate.cert_pem, &certificate.key_pem).map_err(|reason| {
                TlsError::Certificate {
                    name: certificate.name.clone(),
                    origin: certificate.origin.clone(),
                    reason,
                }
            })?,
        );
        self.parsed.insert(key, parsed.clone());
        Ok(parsed)
    }

    /// Forgets certificates no runtime uses.
    pub(crate) fn retain(&self, in_use: &HashSet<String>) {
        self.parsed.retain(|key, _| in_use.contains(key));
    }
}

/// The cache key of a certificate: its name and content version.
pub(crate) fn cache_key(certificate: &v1::Certificate) -> String {
    format!("{}#{}", certificate.name, certificate.content_version)
}

/// Parses a PEM chain and key into a signing `CertifiedKey`.
pub(crate) fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, String> {
    let chain = parse_chain(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|error| format!("private key: {error}"))?;
    let signing = any_supported_type(&key).map_err(|error| format!("private key: {error}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|error| format!("the key does not match the certificate: {error}"))?;
    Ok(certified)
}

/// Every certificate of a PEM chain.
pub(crate) fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("certificate: {error}"))?;
    if chain.is_empty() {
        return Err("certificate: no PEM certificate".to_owned());
    }
    Ok(chain)
}

fn generate_default() -> Result<CertifiedKey, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|error| TlsError::Generate(error.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERT_CN);
    let key = rcgen::KeyPair::generate().map_err(|error| TlsError::Generate(error.to_string()))?;
    let certificate = params
        .self_signed(&key)
        .map_err(|error| TlsError::Generate(error.to_string()))?;
    certified_key(&certificate.pem(), &key.serialize_pem()).map_err(TlsError::Generate)
}

/// A runtime's certificates by name, built once per runtime.
#[derive(Debug, Default)]
pub(crate) struct CertIndex {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertIndex {
    /// Indexes `certificates` of the `default` store (the only store Traefik
    /// serves) by their names, with `default` as the fallback.
    pub(crate) fn new(
        certificates: &[(&v1::Certificate, Arc<CertifiedKey>)],
        default: Arc<CertifiedKey>,
    ) -> Self {
        let mut index = Self {
            default: Some(default),
            ..Self::default()
        };
        for (certificate, key) in certificates {
            let in_default =
                certificate.stores.is_empty() || certificate.stores.iter().any(|s| s == "default");
            if !in_default {
                continue;
            }
            for name in &certificate.sans {
                let name = name.to_ascii_lowercase();
                let map = match name.strip_prefix("*.") {
                    Some(suffix) => index.wildcard.entry(suffix.to_owned()),
                    None => index.exact.entry(name),
                };
                // The first certificate (by name order) wins, deterministically.
                map.or_insert_with(|| key.clone());
            }
        }
        index
    }

    /// The certificate for `sni`, without falling back to the default.
    pub(crate) fn matching(&self, sni: &str) -> Option<&Arc<CertifiedKey>> {
        let sni = sni.trim_end_matches('.');
        if let Some(key) = self.exact.get(sni) {
            return Some(key);
        }
        let (_, parent) = sni.split_once('.')?;
        self.wildcard.get(parent)
    }

    /// The certificate for `sni` (lower-cased), or the default unless `strict`.
    pub(crate) fn resolve(&self, sni: Option<&str>, strict: bool) -> Option<Arc<CertifiedKey>> {
        if let Some(key) = sni.and_then(|sni| self.matching(sni)) {
            return Some(key.clone());
        }
        if strict { None } else { self.default.clone() }
    }
}

/// rustls's view of a [`CertIndex`] under one set of TLS options.
#[derive(Debug)]
pub(crate) struct CertResolver {
    pub(crate) index: Arc<CertIndex>,
    pub(crate) sni_strict: bool,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = client_hello.server_name().map(str::to_ascii_lowercase);
        let chosen = self.index.resolve(sni.as_deref(), self.sni_strict);
        if chosen.is_none() {
            tracing::debug!(sni = ?sni, "no certificate for the SNI (sniStrict): handshake refused");
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn self_signed(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    fn certificate(name: &str, sans: &[&str]) -> v1::Certificate {
        let (cert_pem, key_pem) = self_signed(sans);
        v1::Certificate {
            name: name.into(),
            content_version: "v1".into(),
            cert_pem,
            key_pem,
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let cache = CertCache::new().unwrap();
        let a = certificate("a", &["a.example.com"]);
        let wild = certificate("w", &["*.example.com"]);
        let other = certificate("o", &["other.test"]);
        let mut other_store = other.clone();
        other_store.stores = vec!["internal".into()];
        let pairs: Vec<_> = [&a, &wild, &other_store]
            .into_iter()
            .map(|c| (c, cache.get(c).unwrap()))
            .collect();
        let index = CertIndex::new(&pairs, cache.generated());
        let key_a = cache.get(&a).unwrap();
        let key_w = cache.get(&wild).unwrap();
        assert!(Arc::ptr_eq(
            &index.resolve(Some("a.example.com"), false).unwrap(),
            &key_a
        ));
        assert!(Arc::ptr_eq(
            &index.resolve(Some("b.example.com"), false).unwrap(),
            &key_w
        ));
        // A wildcard covers one label only.
        assert!(index.matching("x.b.example.com").is_none());
        assert!(index.matching("example.com").is_none());
        let default = index.resolve(Some("unknown.test"), false).unwrap();
        assert!(Arc::ptr_eq(&default, &cache.generated()));
        assert!(index.resolve(Some("unknown.test"), true).is_none());
        assert!(index.resolve(None, true).is_none());
        // Certificates of other stores are not served.
        assert!(index.matching("other.test").is_none());
    }

    #[test]
    fn parsed_once_per_content_version() {
        let cache = CertCache::new().unwrap();
        let a = certificate("a", &["a.example.com"]);
        let first = cache.get(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get(&a).unwrap()));
        cache.retain(&HashSet::new());
        assert!(!Arc::ptr_eq(&first, &cache.get(&a).unwrap()));
    }

    #[test]
    fn mismatched_keys_and_garbage_are_refused() {
        let (cert, _) = self_signed(&["a.test"]);
        let (_, other_key) = self_signed(&["b.test"]);
        assert!(
            certified_key(&cert, &other_key)
                .unwrap_err()
                .contains("does not match")
        );
        assert!(certified_key("nope", &other_key).is_err());
    }

    #[test]
    fn the_generated_default_is_traefiks() {
        let cache = CertCache::new().unwrap();
        let der = cache.generated().cert[0].clone();
        let text = String::from_utf8_lossy(der.as_ref()).into_owned();
        assert!(text.contains(DEFAULT_CERT_CN));
    }
}
