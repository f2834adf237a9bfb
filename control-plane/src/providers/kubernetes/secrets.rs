//! Secrets, read only where an object references them: TLS Secrets become
//! inline PEM certificates, auth Secrets become htpasswd users. Nothing is
//! cached: a rotated Secret is read again on the next rebuild.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use sha1::{Digest, Sha1};

use super::cluster::Cluster;
use crate::dynamic::TlsCertificateConfig;

/// `type: kubernetes.io/basic-auth`: plain `username` and `password` keys.
const BASIC_AUTH_TYPE: &str = "kubernetes.io/basic-auth";

/// The certificate and key of TLS Secret `namespace/name` (`tls.crt`,
/// `tls.key`), inline.
pub(super) fn tls_certificate(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<TlsCertificateConfig, String> {
    let secret = find(cluster, namespace, name)?;
    Ok(TlsCertificateConfig {
        cert_file: text(secret, namespace, name, "tls.crt")?,
        key_file: text(secret, namespace, name, "tls.key")?,
        stores: Vec::new(),
    })
}

/// htpasswd users from Secret `namespace/name`: a `kubernetes.io/basic-auth`
/// Secret (its plain password hashed as `{SHA}`), or a Secret whose single
/// key (or key `auth`, as ingress-nginx reads it) holds htpasswd lines, as
/// `kubectl create secret generic NAME --from-file auth` makes.
pub(super) fn htpasswd_users(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, String> {
    let secret = find(cluster, namespace, name)?;
    if secret.type_.as_deref() == Some(BASIC_AUTH_TYPE) {
        let user = text(secret, namespace, name, "username")?;
        let password = text(secret, namespace, name, "password")?;
        let digest = Sha1::digest(password.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        return Ok(vec![format!("{user}:{{SHA}}{hash}")]);
    }
    let data = secret.data.clone().unwrap_or_default();
    let key = if data.len() == 1 {
        data.keys().next().cloned().unwrap_or_default()
    } else if data.contains_key("auth") {
        "auth".to_owned()
    } else {
        return Err(format!(
            "secret `{namespace}/{name}` must hold one key of htpasswd lines (or a key `auth`), \
             it has {}",
            data.len()
        ));
    };
    let lines = text(secret, namespace, name, &key)?;
    let users: Vec<String> = lines
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        return Err(format!(
            "secret `{namespace}/{name}` key `{key}` holds no user"
        ));
    }
    Ok(users)
}

fn find<'a>(cluster: &'a Cluster, namespace: &str, name: &str) -> Result<&'a Secret, String> {
    cluster
        .secret(namespace, name)
        .ok_or_else(|| format!("secret `{namespace}/{name}` not found"))
}

/// Key `key` of the Secret, as UTF-8.
fn text(secret: &Secret, namespace: &str, name: &str, key: &str) -> Result<String, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| format!("secret `{namespace}/{name}` has no key `{key}`"))?;
    String::from_utf8(bytes.0.clone())
        .map_err(|_| format!("secret `{namespace}/{name}` key `{key}` is not UTF-8 text"))
}

/// The CA certificate of Secret `namespace/name`: key `tls.ca`, else
/// `ca.crt`, inline.
pub(super) fn ca_certificate(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    let secret = find(cluster, namespace, name)?;
    let has = |key: &str| {
        secret
            .data
            .as_ref()
            .is_some_and(|data| data.contains_key(key))
    };
    let key = if has("tls.ca") { "tls.ca" } else { "ca.crt" };
    text(secret, namespace, name, key)
}
