//! Generated resource names, as Traefik spells them so that references
//! written for Traefik (`default-auth@kubernetescrd`) keep working.

/// Traefik's `provider.Normalize`: runs of characters other than letters
/// and digits become one `-`, and none is left at either end.
pub(super) fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// `<namespace>-<name>`: how a namespaced object is named in the model.
pub(super) fn namespaced(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

/// `Ingress default/api`, `IngressRoute default/web`: where an error is.
pub(super) fn location(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind} {namespace}/{name}")
}

/// `namespace/name`, for `origins`.
pub(super) fn origin(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_traefik() {
        assert_eq!(
            normalize("public-fe-node-qa-ingress-www.xxxx.com/api3"),
            "public-fe-node-qa-ingress-www-xxxx-com-api3"
        );
        assert_eq!(normalize("default-web--/"), "default-web");
    }
}
