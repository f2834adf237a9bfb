//! Checks `tls.options.<name>` against what the proxies' TLS stack (rustls
//! with the ring provider) can do, so an option a proxy could not honour is
//! an error naming the option and the value here, not a NACK later.
//!
//! Names are Traefik's (Go's `crypto/tls` names): `VersionTLS12`,
//! `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `CurveP256`...

use crate::dynamic::TlsOptionsConfig;

/// TLS versions rustls speaks.
pub(crate) const TLS_VERSIONS: [&str; 2] = ["VersionTLS12", "VersionTLS13"];
/// Versions Traefik accepts that rustls does not speak.
const LEGACY_TLS_VERSIONS: [&str; 2] = ["VersionTLS10", "VersionTLS11"];

/// Cipher suites rustls (ring) implements, under their Go names.
pub(crate) const CIPHER_SUITES: [&str; 11] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Key exchange groups rustls (ring) implements, under their Go names.
pub(crate) const CURVES: [&str; 3] = ["CurveP256", "CurveP384", "X25519"];

/// `clientAuth.clientAuthType` values.
pub(crate) const CLIENT_AUTH_TYPES: [&str; 5] = [
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
];

/// Checks every option; the error names the option and the value.
pub(crate) fn check_options(config: &TlsOptionsConfig) -> Result<(), String> {
    for (option, value) in [
        ("minVersion", &config.min_version),
        ("maxVersion", &config.max_version),
    ] {
        if value.is_empty() || TLS_VERSIONS.contains(&value.as_str()) {
            continue;
        }
        if LEGACY_TLS_VERSIONS.contains(&value.as_str()) {
            return Err(format!(
                "{option} `{value}`: TLS 1.0 and 1.1 are not supported by Sluice (use {})",
                TLS_VERSIONS.join(" or ")
            ));
        }
        return Err(format!(
            "{option} `{value}`: expected one of {}",
            TLS_VERSIONS.join(", ")
        ));
    }
    if config.min_version == "VersionTLS13" && config.max_version == "VersionTLS12" {
        return Err("minVersion `VersionTLS13` is above maxVersion `VersionTLS12`".to_owned());
    }
    for (index, suite) in config.cipher_suites.iter().enumerate() {
        if !CIPHER_SUITES.contains(&suite.as_str()) {
            return Err(format!(
                "cipherSuites[{index}] `{suite}` is not supported (supported: {})",
                CIPHER_SUITES.join(", ")
            ));
        }
    }
    for (index, curve) in config.curve_preferences.iter().enumerate() {
        if !CURVES.contains(&curve.as_str()) {
            return Err(format!(
                "curvePreferences[{index}] `{curve}` is not supported (supported: {})",
                CURVES.join(", ")
            ));
        }
    }
    if let Some(auth) = &config.client_auth {
        let kind = auth.client_auth_type.as_str();
        if !kind.is_empty() && !CLIENT_AUTH_TYPES.contains(&kind) {
            return Err(format!(
                "clientAuth.clientAuthType `{kind}`: expected one of {}",
                CLIENT_AUTH_TYPES.join(", ")
            ));
        }
        let verifies = matches!(
            kind,
            "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert"
        );
        if verifies && auth.ca_files.is_empty() {
            return Err(format!(
                "clientAuth.clientAuthType `{kind}` verifies client certificates: clientAuth.caFiles is empty"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamic::ClientAuthConfig;

    fn options(edit: impl FnOnce(&mut TlsOptionsConfig)) -> Result<(), String> {
        let mut config = TlsOptionsConfig::default();
        edit(&mut config);
        check_options(&config)
    }

    #[test]
    fn versions_name_the_option() {
        assert!(options(|o| o.min_version = "VersionTLS13".into()).is_ok());
        assert_eq!(
            options(|o| o.min_version = "VersionTLS10".into()).unwrap_err(),
            "minVersion `VersionTLS10`: TLS 1.0 and 1.1 are not supported by Sluice (use VersionTLS12 or VersionTLS13)"
        );
        assert!(
            options(|o| o.max_version = "TLS9".into())
                .unwrap_err()
                .starts_with("maxVersion `TLS9`: expected one of")
        );
        assert!(
            options(|o| {
                o.min_version = "VersionTLS13".into();
                o.max_version = "VersionTLS12".into();
            })
            .is_err()
        );
    }

    #[test]
    fn cipher_suites_and_curves_name_the_value() {
        assert!(
            options(|o| o.cipher_suites = vec![
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_AES_128_GCM_SHA256".into()
            ])
            .is_ok()
        );
        let error = options(|o| {
            o.cipher_suites = vec![
                "TLS_AES_128_GCM_SHA256".into(),
                "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
            ]
        })
        .unwrap_err();
        assert!(
            error.starts_with("cipherSuites[1] `TLS_RSA_WITH_AES_128_CBC_SHA` is not supported"),
            "{error}"
        );
        assert!(options(|o| o.curve_preferences = vec!["X25519".into()]).is_ok());
        assert!(
            options(|o| o.curve_preferences = vec!["CurveP521".into()])
                .unwrap_err()
                .starts_with("curvePreferences[0] `CurveP521` is not supported")
        );
    }

    #[test]
    fn client_auth_types() {
        let auth = |kind: &str, cas: &[&str]| {
            options(|o| {
                o.client_auth = Some(ClientAuthConfig {
                    ca_files: cas.iter().map(|s| (*s).to_owned()).collect(),
                    client_auth_type: kind.into(),
                })
            })
        };
        assert!(auth("RequireAnyClientCert", &[]).is_ok());
        assert!(auth("RequireAndVerifyClientCert", &["ca.pem"]).is_ok());
        assert!(auth("RequireAndVerifyClientCert", &[]).is_err());
        assert!(
            auth("Always", &[])
                .unwrap_err()
                .starts_with("clientAuth.clientAuthType `Always`")
        );
    }
}
