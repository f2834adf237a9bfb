//! The annotations an Ingress or a Service may carry, parsed and checked;
//! an annotation that does not parse makes its object an error naming the
//! annotation.
//!
//! The `service.*` annotations belong on the Service, as Traefik reads them
//! ([`parse_service`]); on the Ingress they still apply to its backends
//! where the Service does not set them.
//!
//! - Traefik v2/v3 (`traefik.ingress.kubernetes.io/`): `router.entrypoints`,
//!   `router.middlewares`, `router.priority`, `router.pathmatcher`,
//!   `router.tls`, `router.tls.options`, `router.tls.certresolver`,
//!   `service.passhostheader`, `service.serversscheme`,
//!   `service.serverstransport`, `service.sticky.cookie` and its `.name`,
//!   `.secure`, `.httponly`, `.samesite`, `.maxage`.
//! - Traefik 1.x: `traefik.ingress.kubernetes.io/request-modifier`
//!   (`ReplacePathRegex: <regex> <replacement>`, `ReplacePath: <path>`,
//!   `AddPrefix: <prefix>`), `traefik.ingress.kubernetes.io/rewrite-target`,
//!   `ingress.kubernetes.io/auth-type: basic` with `auth-secret` and
//!   `auth-realm`.
//! - ingress-nginx (`nginx.ingress.kubernetes.io/`): `auth-type: basic`,
//!   `auth-secret`, `auth-realm`, `rewrite-target`, `use-regex`.

use std::collections::BTreeMap;

use crate::dynamic::{
    AddPrefixConfig, MiddlewareConfig, ReplacePathConfig, ReplacePathRegexConfig,
    StickyCookieConfig,
};

const TRAEFIK: &str = "traefik.ingress.kubernetes.io/";
const TRAEFIK_V1: &str = "ingress.kubernetes.io/";
const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// An annotation that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AnnotationError {
    /// The annotation's full key.
    pub(super) key: String,
    /// What is wrong with its value.
    pub(super) message: String,
}

/// How the path is rewritten before the request is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rewrite {
    /// Traefik 1.x `rewrite-target`: the matched path prefix is replaced.
    Traefik(String),
    /// ingress-nginx `rewrite-target`: the path (a regex when `use-regex`
    /// is set or the target uses `$n`) is rewritten to the target.
    Nginx {
        /// The target, with `$n` references to the path's groups.
        target: String,
        /// The path is a regular expression.
        regex: bool,
    },
}

/// Basic authentication from a Secret of htpasswd lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BasicAuth {
    /// The `auth-secret` annotation's key, for errors.
    pub(super) key: String,
    /// The Secret's namespace.
    pub(super) namespace: String,
    /// The Secret's name.
    pub(super) name: String,
    /// `auth-realm`, empty for the default.
    pub(super) realm: String,
}

/// Everything the annotations of one Ingress say.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct IngressAnnotations {
    pub(super) entry_points: Vec<String>,
    pub(super) middlewares: Vec<String>,
    pub(super) priority: i64,
    /// `Path`, `PathPrefix` or `PathRegexp`, for ImplementationSpecific paths.
    pub(super) path_matcher: Option<String>,
    pub(super) tls: bool,
    pub(super) tls_options: String,
    pub(super) cert_resolver: String,
    /// `service.*` on the Ingress: defaults for its backends' Services.
    pub(super) service: ServiceAnnotations,
    /// Traefik 1.x `request-modifier`.
    pub(super) request_modifier: Option<MiddlewareConfig>,
    pub(super) rewrite: Option<Rewrite>,
    /// ingress-nginx: paths are regular expressions (`use-regex`, or a
    /// `rewrite-target` with `$n`).
    pub(super) path_regex: bool,
    pub(super) basic_auth: Option<BasicAuth>,
}

/// The `service.*` annotations of a Service (or an Ingress).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ServiceAnnotations {
    pub(super) pass_host_header: Option<bool>,
    pub(super) servers_scheme: Option<String>,
    pub(super) servers_transport: Option<String>,
    pub(super) sticky: Option<StickyCookieConfig>,
}

impl ServiceAnnotations {
    /// These annotations, each falling back to `defaults` when not set.
    pub(super) fn or(&self, defaults: &Self) -> Self {
        Self {
            pass_host_header: self.pass_host_header.or(defaults.pass_host_header),
            servers_scheme: self
                .servers_scheme
                .clone()
                .or_else(|| defaults.servers_scheme.clone()),
            servers_transport: self
                .servers_transport
                .clone()
                .or_else(|| defaults.servers_transport.clone()),
            sticky: self.sticky.clone().or_else(|| defaults.sticky.clone()),
        }
    }
}

/// Parses the `service.*` annotations.
pub(super) fn parse_service(
    annotations: &BTreeMap<String, String>,
) -> Result<ServiceAnnotations, AnnotationError> {
    let traefik = |name: &str| {
        annotations
            .get(&format!("{TRAEFIK}{name}"))
            .map(|value| value.trim())
    };
    let mut parsed = ServiceAnnotations {
        pass_host_header: boolean(annotations, &format!("{TRAEFIK}service.passhostheader"))?,
        servers_transport: traefik("service.serverstransport").map(str::to_owned),
        sticky: sticky(annotations)?,
        ..ServiceAnnotations::default()
    };
    if let Some(value) = traefik("service.serversscheme") {
        if !["http", "https", "h2c"].contains(&value) {
            return Err(AnnotationError {
                key: format!("{TRAEFIK}service.serversscheme"),
                message: format!("`{value}` is not one of http, https, h2c"),
            });
        }
        parsed.servers_scheme = Some(value.to_owned());
    }
    Ok(parsed)
}

/// Parses the annotations of an Ingress in `namespace`.
pub(super) fn parse(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
) -> Result<IngressAnnotations, AnnotationError> {
    let get = |key: &str| annotations.get(key).map(|value| value.trim());
    let traefik = |name: &str| get(&format!("{TRAEFIK}{name}"));
    let error = |key: String, message: String| AnnotationError { key, message };
    let mut parsed = IngressAnnotations {
        entry_points: traefik("router.entrypoints").map(list).unwrap_or_default(),
        middlewares: traefik("router.middlewares").map(list).unwrap_or_default(),
        tls_options: traefik("router.tls.options").unwrap_or_default().to_owned(),
        cert_resolver: traefik("router.tls.certresolver")
            .unwrap_or_default()
            .to_owned(),
        service: parse_service(annotations)?,
        ..IngressAnnotations::default()
    };
    if let Some(value) = traefik("router.priority") {
        parsed.priority = value.parse().map_err(|_| {
            error(
                format!("{TRAEFIK}router.priority"),
                format!("`{value}` is not an integer"),
            )
        })?;
    }
    if let Some(value) = traefik("router.pathmatcher") {
        if !["Path", "PathPrefix", "PathRegexp"].contains(&value) {
            return Err(error(
                format!("{TRAEFIK}router.pathmatcher"),
                format!("`{value}` is not one of Path, PathPrefix, PathRegexp"),
            ));
        }
        parsed.path_matcher = Some(value.to_owned());
    }
    parsed.tls = boolean(annotations, &format!("{TRAEFIK}router.tls"))?.unwrap_or(false)
        || !parsed.tls_options.is_empty()
        || !parsed.cert_resolver.is_empty();
    if let Some(value) = traefik("request-modifier") {
        parsed.request_modifier = Some(
            request_modifier(value)
                .map_err(|message| error(format!("{TRAEFIK}request-modifier"), message))?,
        );
    }
    if let Some(target) = traefik("rewrite-target") {
        parsed.rewrite = Some(Rewrite::Traefik(target.to_owned()));
    }
    parsed.path_regex = boolean(annotations, &format!("{NGINX}use-regex"))?.unwrap_or(false);
    if let Some(target) = get(&format!("{NGINX}rewrite-target")) {
        let regex = parsed.path_regex || has_group_reference(target);
        parsed.path_regex = regex;
        parsed.rewrite = Some(Rewrite::Nginx {
            target: target.to_owned(),
            regex,
        });
    }
    for prefix in [TRAEFIK_V1, NGINX] {
        if let Some(auth) = basic_auth(annotations, prefix, namespace)? {
            parsed.basic_auth = Some(auth);
        }
    }
    Ok(parsed)
}

/// A comma-separated list, trimmed, empty items dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn boolean(
    annotations: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<bool>, AnnotationError> {
    annotations
        .get(key)
        .map(|value| match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(AnnotationError {
                key: key.to_owned(),
                message: format!("`{other}` is not `true` or `false`"),
            }),
        })
        .transpose()
}

fn sticky(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<StickyCookieConfig>, AnnotationError> {
    let key = |name: &str| format!("{TRAEFIK}service.sticky.cookie{name}");
    if !boolean(annotations, &key(""))?.unwrap_or(false) {
        return Ok(None);
    }
    let text = |name: &str| annotations.get(&key(name)).map(|v| v.trim().to_owned());
    let same_site = text(".samesite").unwrap_or_default();
    if !["", "none", "lax", "strict"].contains(&same_site.as_str()) {
        return Err(AnnotationError {
            key: key(".samesite"),
            message: format!("`{same_site}` is not one of none, lax, strict"),
        });
    }
    let max_age = match text(".maxage") {
        Some(value) => value.parse().map_err(|_| AnnotationError {
            key: key(".maxage"),
            message: format!("`{value}` is not an integer"),
        })?,
        None => 0,
    };
    Ok(Some(StickyCookieConfig {
        name: text(".name").unwrap_or_default(),
        secure: boolean(annotations, &key(".secure"))?.unwrap_or(false),
        http_only: boolean(annotations, &key(".httponly"))?.unwrap_or(false),
        same_site,
        max_age,
        ..StickyCookieConfig::default()
    }))
}

/// Traefik 1.x's `request-modifier`: `ReplacePathRegex: <regex>
/// <replacement>`, `ReplacePath: <path>` or `AddPrefix: <prefix>`.
fn request_modifier(value: &str) -> Result<MiddlewareConfig, String> {
    let (kind, argument) = value
        .split_once(':')
        .ok_or_else(|| format!("`{value}`: expected `<modifier>: <arguments>`"))?;
    let argument = argument.trim();
    let mut middleware = MiddlewareConfig::default();
    match kind.trim() {
        "ReplacePathRegex" => {
            let (regex, replacement) = argument
                .split_once(char::is_whitespace)
                .map(|(regex, replacement)| (regex.trim(), replacement.trim()))
                .filter(|(regex, replacement)| !regex.is_empty() && !replacement.is_empty())
                .ok_or_else(|| {
                    format!("`{value}`: expected `ReplacePathRegex: <regex> <replacement>`")
                })?;
            regex::Regex::new(regex).map_err(|error| format!("regex `{regex}`: {error}"))?;
            middleware.replace_path_regex = Some(ReplacePathRegexConfig {
                regex: regex.to_owned(),
                replacement: replacement.to_owned(),
            });
        }
        "ReplacePath" if !argument.is_empty() => {
            middleware.replace_path = Some(ReplacePathConfig {
                path: argument.to_owned(),
            });
        }
        "AddPrefix" if !argument.is_empty() => {
            middleware.add_prefix = Some(AddPrefixConfig {
                prefix: argument.to_owned(),
            });
        }
        "ReplacePath" | "AddPrefix" => return Err(format!("`{value}`: the argument is empty")),
        other => {
            return Err(format!(
                "`{other}` is not one of ReplacePathRegex, ReplacePath, AddPrefix"
            ));
        }
    }
    Ok(middleware)
}

/// Whether a rewrite target refers to a capture group (`$1`, `${1}`).
fn has_group_reference(target: &str) -> bool {
    let bytes = target.as_bytes();
    bytes.iter().enumerate().any(|(index, byte)| {
        *byte == b'$'
            && bytes
                .get(index + 1)
                .is_some_and(|next| next.is_ascii_digit() || *next == b'{')
    })
}

/// `<prefix>auth-type: basic` with `<prefix>auth-secret` (`name` or
/// `namespace/name`) and `<prefix>auth-realm`.
fn basic_auth(
    annotations: &BTreeMap<String, String>,
    prefix: &str,
    namespace: &str,
) -> Result<Option<BasicAuth>, AnnotationError> {
    let type_key = format!("{prefix}auth-type");
    let Some(kind) = annotations.get(&type_key).map(|v| v.trim()) else {
        return Ok(None);
    };
    if kind != "basic" {
        return Err(AnnotationError {
            key: type_key,
            message: format!("`{kind}` is not supported (only `basic`)"),
        });
    }
    let secret_key = format!("{prefix}auth-secret");
    let secret = annotations
        .get(&secret_key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AnnotationError {
            key: secret_key.clone(),
            message: format!("required with `{type_key}: basic`"),
        })?;
    let (secret_namespace, name) = secret.split_once('/').unwrap_or((namespace, secret));
    if secret_namespace != namespace {
        return Err(AnnotationError {
            key: secret_key,
            message: format!("secret `{secret}` is in another namespace"),
        });
    }
    Ok(Some(BasicAuth {
        key: secret_key,
        namespace: secret_namespace.to_owned(),
        name: name.to_owned(),
        realm: annotations
            .get(&format!("{prefix}auth-realm"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_traefik_1_request_modifiers() {
        let parsed = parse(
            &annotations(&[(
                "traefik.ingress.kubernetes.io/request-modifier",
                "ReplacePathRegex: ^/api3/(.*) /api/$1",
            )]),
            "default",
        )
        .unwrap();
        let regex = parsed.request_modifier.unwrap().replace_path_regex.unwrap();
        assert_eq!(
            (regex.regex.as_str(), regex.replacement.as_str()),
            ("^/api3/(.*)", "/api/$1")
        );
        let prefix = parse(
            &annotations(&[(
                "traefik.ingress.kubernetes.io/request-modifier",
                "AddPrefix: /v1",
            )]),
            "default",
        )
        .unwrap();
        assert_eq!(
            prefix.request_modifier.unwrap().add_prefix.unwrap().prefix,
            "/v1"
        );
        let error = parse(
            &annotations(&[(
                "traefik.ingress.kubernetes.io/request-modifier",
                "Rewrite: /x",
            )]),
            "default",
        )
        .unwrap_err();
        assert_eq!(error.key, "traefik.ingress.kubernetes.io/request-modifier");
    }

    #[test]
    fn service_annotations_override_the_ingress_ones_they_set() {
        let on_service = parse_service(&annotations(&[
            (
                "traefik.ingress.kubernetes.io/service.passhostheader",
                "false",
            ),
            (
                "traefik.ingress.kubernetes.io/service.sticky.cookie",
                "true",
            ),
        ]))
        .unwrap();
        let on_ingress = parse_service(&annotations(&[
            (
                "traefik.ingress.kubernetes.io/service.passhostheader",
                "true",
            ),
            ("traefik.ingress.kubernetes.io/service.serversscheme", "h2c"),
        ]))
        .unwrap();
        let merged = on_service.or(&on_ingress);
        assert_eq!(merged.pass_host_header, Some(false));
        assert_eq!(merged.servers_scheme.as_deref(), Some("h2c"));
        assert!(merged.sticky.is_some());
        assert_eq!(merged.servers_transport, None);
        let error = parse_service(&annotations(&[(
            "traefik.ingress.kubernetes.io/service.serversscheme",
            "ftp",
        )]))
        .unwrap_err();
        assert_eq!(
            error.key,
            "traefik.ingress.kubernetes.io/service.serversscheme"
        );
    }

    #[test]
    fn reads_router_and_service_annotations() {
        let parsed = parse(
            &annotations(&[
                (
                    "traefik.ingress.kubernetes.io/router.entrypoints",
                    "web, websecure",
                ),
                (
                    "traefik.ingress.kubernetes.io/router.middlewares",
                    "default-auth@kubernetescrd",
                ),
                ("traefik.ingress.kubernetes.io/router.priority", "42"),
                (
                    "traefik.ingress.kubernetes.io/service.sticky.cookie",
                    "true",
                ),
                (
                    "traefik.ingress.kubernetes.io/service.sticky.cookie.name",
                    "lb",
                ),
                (
                    "traefik.ingress.kubernetes.io/service.sticky.cookie.samesite",
                    "lax",
                ),
                ("nginx.ingress.kubernetes.io/auth-type", "basic"),
                ("nginx.ingress.kubernetes.io/auth-secret", "users"),
                ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
            ]),
            "default",
        )
        .unwrap();
        assert_eq!(parsed.entry_points, ["web", "websecure"]);
        assert_eq!(parsed.middlewares, ["default-auth@kubernetescrd"]);
        assert_eq!(parsed.priority, 42);
        let sticky = parsed.service.sticky.unwrap();
        assert_eq!(
            (sticky.name.as_str(), sticky.same_site.as_str()),
            ("lb", "lax")
        );
        assert_eq!(parsed.basic_auth.unwrap().name, "users");
        assert_eq!(
            parsed.rewrite,
            Some(Rewrite::Nginx {
                target: "/$2".to_owned(),
                regex: true
            })
        );
        let error = parse(
            &annotations(&[("traefik.ingress.kubernetes.io/router.priority", "high")]),
            "default",
        )
        .unwrap_err();
        assert_eq!(error.key, "traefik.ingress.kubernetes.io/router.priority");
    }
}
