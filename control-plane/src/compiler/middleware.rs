//! Compiles one `http.middlewares.<name>` entry into its proto message.
//!
//! Everything a proxy would otherwise find out while serving is checked here:
//! regexes compile, IPs and CIDRs parse, htpasswd lines are well formed,
//! files are read, defaults are filled in and names are qualified with their
//! provider. Options Traefik has but the snapshot cannot express are errors,
//! not silently dropped. An error names the option as written in Traefik's
//! configuration and the offending value, never a password hash or a key.
//!
//! The types are compiled by family: [`auth`] (basic, digest, forward),
//! [`client_ip`] (IP allow lists and per-source limits), [`headers`],
//! [`compress`], [`resilience`] (retry, circuit breaker, buffering), and the
//! path, redirect and other small types here.

mod auth;
mod breaker_expr;
mod client_ip;
mod compress;
mod headers;
mod resilience;

use sluice_proto::v1 as pb;
use sluice_proto::v1::middleware::Kind;

use super::qualify;
use crate::dynamic::{
    AddPrefixConfig, ChainConfig, ContentTypeConfig, ErrorsConfig, GrpcWebConfig, MiddlewareConfig,
    PassTlsClientCertConfig, RedirectRegexConfig, RedirectSchemeConfig, ReplacePathConfig,
    ReplacePathRegexConfig, StripPrefixConfig, StripPrefixRegexConfig,
};

/// What compiling a middleware needs besides its own configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MiddlewareContext<'a> {
    /// Provider of the middleware, used to qualify names it references
    /// (`name` -> `name@provider`; a name already containing `@` is kept).
    pub(crate) provider: &'a str,
}

/// Why a middleware cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MiddlewareError {
    /// None of the middleware types is set.
    #[error("no middleware type set")]
    NoType,
    /// More than one middleware type is set.
    #[error("several middleware types set: {}", quoted_list(.0))]
    SeveralTypes(Vec<&'static str>),
    /// A Traefik plugin, which Sluice cannot run.
    #[error("plugins are not supported")]
    Plugin,
    /// An option is missing, unsupported, or conflicts with another.
    #[error("{option}: {reason}")]
    InvalidOption { option: String, reason: String },
    /// An option's value is invalid.
    #[error("{option} `{value}`: {reason}")]
    InvalidValue {
        option: String,
        value: String,
        reason: String,
    },
    /// A regular expression does not compile.
    #[error("{option} `{value}`: {reason}")]
    Regex {
        option: String,
        value: String,
        /// The last line of the regex crate's message, which says what is wrong.
        reason: String,
        #[source]
        source: regex::Error,
    },
    /// A file named by an option cannot be read.
    #[error("{option} `{path}`: {source}")]
    File {
        option: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A circuit-breaker expression does not parse.
    #[error("{option} `{expression}`: column {column}: {reason}")]
    Expression {
        option: String,
        expression: String,
        /// 1-based index in characters.
        column: usize,
        reason: String,
    },
}

impl MiddlewareError {
    fn option(option: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }

    fn value(option: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            option: option.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An option Traefik has that the snapshot cannot express.
    fn unsupported(option: impl Into<String>, advice: &str) -> Self {
        Self::option(option, format!("not supported by Sluice{advice}"))
    }
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compiles a middleware: exactly one type must be set, and its options must
/// be valid. Names it references (chain members, the errors service) come out
/// qualified with `ctx.provider`.
pub(crate) fn compile_middleware(
    config: &MiddlewareConfig,
    ctx: &MiddlewareContext<'_>,
) -> Result<Kind, MiddlewareError> {
    // One line per type: its field, its Traefik name and how it compiles. The
    // destructuring is exhaustive, so a new field cannot be forgotten here.
    macro_rules! dispatch {
        ($($field:ident: $name:literal => $compile:expr,)*) => {{
            let MiddlewareConfig { $($field: _,)* plugin: _ } = config;
            let mut set: Vec<&'static str> =
                [$(($name, config.$field.is_some()),)* ("plugin", config.plugin.is_some())]
                    .into_iter()
                    .filter_map(|(name, set)| set.then_some(name))
                    .collect();
            if set.len() > 1 {
                set.sort_unstable();
                return Err(MiddlewareError::SeveralTypes(set));
            }
            if config.plugin.is_some() {
                return Err(MiddlewareError::Plugin);
            }
            $(if let Some(options) = &config.$field {
                return $compile(options);
            })*
            Err(MiddlewareError::NoType)
        }};
    }
    dispatch! {
        add_prefix: "addPrefix" => |c| add_prefix(c).map(Kind::AddPrefix),
        strip_prefix: "stripPrefix" => |c| Ok(Kind::StripPrefix(strip_prefix(c))),
        strip_prefix_regex: "stripPrefixRegex" =>
            |c| strip_prefix_regex(c).map(Kind::StripPrefixRegex),
        replace_path: "replacePath" => |c| Ok(Kind::ReplacePath(replace_path(c))),
        replace_path_regex: "replacePathRegex" =>
            |c| replace_path_regex(c).map(Kind::ReplacePathRegex),
        chain: "chain" => |c| chain(c, ctx).map(Kind::Chain),
        ip_allow_list: "ipAllowList" => |c| client_ip::ip_allow_list(c).map(Kind::IpAllowList),
        ip_white_list: "ipWhiteList" => |c| client_ip::ip_white_list(c).map(Kind::IpAllowList),
        headers: "headers" => |c| headers::headers(c).map(Kind::Headers),
        errors: "errors" => |c| errors(c, ctx).map(Kind::Errors),
        rate_limit: "rateLimit" => |c| client_ip::rate_limit(c).map(Kind::RateLimit),
        redirect_regex: "redirectRegex" => |c| redirect_regex(c).map(Kind::RedirectRegex),
        redirect_scheme: "redirectScheme" => |c| redirect_scheme(c).map(Kind::RedirectScheme),
        basic_auth: "basicAuth" => |c| auth::basic_auth(c).map(Kind::BasicAuth),
        digest_auth: "digestAuth" => |c| auth::digest_auth(c).map(Kind::DigestAuth),
        forward_auth: "forwardAuth" => |c| auth::forward_auth(c).map(Kind::ForwardAuth),
        in_flight_req: "inFlightReq" => |c| client_ip::in_flight_req(c).map(Kind::InFlightReq),
        buffering: "buffering" => |c| resilience::buffering(c).map(Kind::Buffering),
        circuit_breaker: "circuitBreaker" =>
            |c| resilience::circuit_breaker(c).map(Kind::CircuitBreaker),
        compress: "compress" => |c| compress::compress(c).map(Kind::Compress),
        pass_tls_client_cert: "passTLSClientCert" =>
            |c| Ok(Kind::PassTlsClientCert(pass_tls_client_cert(c))),
        retry: "retry" => |c| resilience::retry(c).map(Kind::Retry),
        content_type: "contentType" => |c| Ok(Kind::ContentType(content_type(c))),
        grpc_web: "grpcWeb" => |c| Ok(Kind::GrpcWeb(grpc_web(c))),
    }
}

fn add_prefix(config: &AddPrefixConfig) -> Result<pb::AddPrefix, MiddlewareError> {
    if config.prefix.is_empty() {
        return Err(MiddlewareError::option("addPrefix.prefix", "required"));
    }
    if !config.prefix.starts_with('/') {
        return Err(MiddlewareError::value(
            "addPrefix.prefix",
            &config.prefix,
            "must start with `/`",
        ));
    }
    Ok(pb::AddPrefix {
        prefix: config.prefix.clone(),
    })
}

fn strip_prefix(config: &StripPrefixConfig) -> pb::StripPrefix {
    pb::StripPrefix {
        prefixes: config.prefixes.clone(),
        // Traefik v3 keeps the deprecated v2 behaviour only when asked.
        force_slash: config.force_slash.unwrap_or(false),
    }
}

fn strip_prefix_regex(
    config: &StripPrefixRegexConfig,
) -> Result<pb::StripPrefixRegex, MiddlewareError> {
    for (index, regex) in config.regex.iter().enumerate() {
        check_regex(format!("stripPrefixRegex.regex[{index}]"), regex)?;
    }
    Ok(pb::StripPrefixRegex {
        regex: config.regex.clone(),
    })
}

fn replace_path(config: &ReplacePathConfig) -> pb::ReplacePath {
    pb::ReplacePath {
        path: config.path.clone(),
    }
}

fn replace_path_regex(
    config: &ReplacePathRegexConfig,
) -> Result<pb::ReplacePathRegex, MiddlewareError> {
    check_regex("replacePathRegex.regex", &config.regex)?;
    // Go's `$1` / `${name}` replacement syntax is the regex crate's too.
    Ok(pb::ReplacePathRegex {
        regex: config.regex.clone(),
        replacement: config.replacement.clone(),
    })
}

fn chain(config: &ChainConfig, ctx: &MiddlewareContext<'_>) -> Result<pb::Chain, MiddlewareError> {
    let middlewares = config
        .middlewares
        .iter()
        .enumerate()
        .map(|(index, name)| {
            if name.is_empty() {
                Err(MiddlewareError::option(
                    format!("chain.middlewares[{index}]"),
                    "empty name",
                ))
            } else {
                Ok(qualify(name, ctx.provider))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(pb::Chain { middlewares })
}

fn errors(
    config: &ErrorsConfig,
    ctx: &MiddlewareContext<'_>,
) -> Result<pb::Errors, MiddlewareError> {
    if !config.status_rewrites.is_empty() {
        return Err(MiddlewareError::unsupported("errors.statusRewrites", ""));
    }
    if config.service.is_empty() {
        return Err(MiddlewareError::option("errors.service", "required"));
    }
    let mut status = Vec::new();
    for (index, entry) in config.status.iter().enumerate() {
        // Traefik also takes comma-separated lists in one entry: `401,403,500-599`.
        for part in entry.split(',') {
            status.push(status_range(part.trim()).map_err(|reason| {
                MiddlewareError::value(format!("errors.status[{index}]"), entry, reason)
            })?);
        }
    }
    Ok(pb::Errors {
        status,
        service: qualify(&config.service, ctx.provider),
        query: config.query.clone(),
    })
}

/// `404` or `500-599`.
fn status_range(text: &str) -> Result<pb::StatusRange, &'static str> {
    const SYNTAX: &str = "expected a status such as `404` or a range such as `500-599`";
    let (from, to) = text.split_once('-').unwrap_or((text, text));
    let code = |text: &str| -> Result<u32, &'static str> {
        let code: u32 = text.trim().parse().map_err(|_| SYNTAX)?;
        if (100..=599).contains(&code) {
            Ok(code)
        } else {
            Err("status codes are between 100 and 599")
        }
    };
    let (from, to) = (code(from)?, code(to)?);
    if from > to {
        return Err("the range is reversed");
    }
    Ok(pb::StatusRange { from, to })
}

fn redirect_regex(config: &RedirectRegexConfig) -> Result<pb::RedirectRegex, MiddlewareError> {
    check_regex("redirectRegex.regex", &config.regex)?;
    if config.replacement.is_empty() {
        return Err(MiddlewareError::option(
            "redirectRegex.replacement",
            "required",
        ));
    }
    Ok(pb::RedirectRegex {
        regex: config.regex.clone(),
        replacement: config.replacement.clone(),
        permanent: config.permanent,
    })
}

fn redirect_scheme(config: &RedirectSchemeConfig) -> Result<pb::RedirectScheme, MiddlewareError> {
    match config.scheme.as_str() {
        "" => return Err(MiddlewareError::option("redirectScheme.scheme", "required")),
        "http" | "https" => {}
        other => {
            return Err(MiddlewareError::value(
                "redirectScheme.scheme",
                other,
                "expected `http` or `https`",
            ));
        }
    }
    let port_ok = config.port.is_empty()
        || (config.port.bytes().all(|b| b.is_ascii_digit())
            && config.port.parse::<u16>().is_ok_and(|port| port != 0));
    if !port_ok {
        return Err(MiddlewareError::value(
            "redirectScheme.port",
            &config.port,
            "expected a port number from 1 to 65535",
        ));
    }
    Ok(pb::RedirectScheme {
        scheme: config.scheme.clone(),
        port: config.port.clone(),
        permanent: config.permanent,
    })
}

fn content_type(config: &ContentTypeConfig) -> pb::ContentType {
    pb::ContentType {
        // The middleware exists to turn detection on; the deprecated option can turn it off.
        auto_detect: config.auto_detect.unwrap_or(true),
    }
}

fn grpc_web(config: &GrpcWebConfig) -> pb::GrpcWeb {
    pb::GrpcWeb {
        allow_origins: config.allow_origins.clone(),
    }
}

fn pass_tls_client_cert(config: &PassTlsClientCertConfig) -> pb::PassTlsClientCert {
    pb::PassTlsClientCert {
        pem: config.pem,
        info: config.info.as_ref().map(|info| pb::PassTlsClientCertInfo {
            not_after: info.not_after,
            not_before: info.not_before,
            sans: info.sans,
            serial_number: info.serial_number,
            subject: info.subject.as_ref().map(|dn| pb::PassTlsClientCertDn {
                country: dn.country,
                province: dn.province,
                locality: dn.locality,
                organization: dn.organization,
                organizational_unit: dn.organizational_unit,
                common_name: dn.common_name,
                serial_number: dn.serial_number,
                domain_component: dn.domain_component,
            }),
            issuer: info.issuer.as_ref().map(|dn| pb::PassTlsClientCertDn {
                country: dn.country,
                province: dn.province,
                locality: dn.locality,
                organization: dn.organization,
                organizational_unit: false,
                common_name: dn.common_name,
                serial_number: dn.serial_number,
                domain_component: dn.domain_component,
            }),
        }),
    }
}

/// Checks that a Go (RE2) regular expression compiles with the regex crate,
/// whose syntax is RE2's for everything but rare corner cases.
fn check_regex(option: impl Into<String>, pattern: &str) -> Result<(), MiddlewareError> {
    regex::Regex::new(pattern).map(drop).map_err(|source| {
        // The regex crate draws a multi-line diagram; its last line says what is wrong.
        let text = source.to_string();
        let reason = text.lines().last().unwrap_or_default();
        MiddlewareError::Regex {
            option: option.into(),
            value: pattern.to_owned(),
            reason: reason.strip_prefix("error: ").unwrap_or(reason).to_owned(),
            source,
        }
    })
}

/// An RFC 9110 token: header names, methods, media type parts.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks a header name written in an option.
fn check_header_name(option: impl Into<String>, name: &str) -> Result<(), MiddlewareError> {
    if is_token(name) {
        Ok(())
    } else {
        Err(MiddlewareError::value(option, name, "invalid header name"))
    }
}

/// Checks the header names of a list option (`option[index]`).
fn check_header_names(option: &str, names: &[String]) -> Result<(), MiddlewareError> {
    names
        .iter()
        .enumerate()
        .try_for_each(|(index, name)| check_header_name(format!("{option}[{index}]"), name))
}

/// An HTTP status code option: `default` when absent (or 0, as in Traefik), else 100 to 599.
fn status_code(option: &str, value: Option<i64>, default: u32) -> Result<u32, MiddlewareError> {
    match value {
        None | Some(0) => Ok(default),
        Some(code) => u32::try_from(code)
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| {
                MiddlewareError::value(option, code, "not an HTTP status code (100 to 599)")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const CTX: MiddlewareContext<'static> = MiddlewareContext { provider: "file" };

    /// Compiles a middleware written in YAML, as in a Traefik file.
    pub(super) fn compile_yaml(yaml: &str) -> Result<Kind, MiddlewareError> {
        let config: MiddlewareConfig = serde_yaml::from_str(yaml).unwrap();
        compile_middleware(&config, &CTX)
    }

    /// The error message of a middleware that must not compile.
    pub(super) fn error_yaml(yaml: &str) -> String {
        match compile_yaml(yaml) {
            Ok(kind) => panic!("compiled to {kind:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn exactly_one_type_must_be_set() {
        assert_eq!(error_yaml("{}"), "no middleware type set");
        assert_eq!(
            error_yaml("{basicAuth: {users: []}, headers: {frameDeny: true}}"),
            "several middleware types set: `basicAuth`, `headers`"
        );
        assert_eq!(
            error_yaml("plugin: {demo: {headers: {X-Demo: test}}}"),
            "plugins are not supported"
        );
        assert_eq!(
            error_yaml("{compress: {}, plugin: {demo: {}}}"),
            "several middleware types set: `compress`, `plugin`"
        );
    }

    #[test]
    fn add_prefix_must_start_with_a_slash() {
        assert_eq!(
            compile_yaml("addPrefix: {prefix: /foo}").unwrap(),
            Kind::AddPrefix(pb::AddPrefix {
                prefix: "/foo".to_owned()
            })
        );
        assert_eq!(
            error_yaml("addPrefix: {prefix: foo}"),
            "addPrefix.prefix `foo`: must start with `/`"
        );
        assert_eq!(error_yaml("addPrefix: {}"), "addPrefix.prefix: required");
    }

    #[test]
    fn path_rewrites_map_directly_and_regexes_compile() {
        assert_eq!(
            compile_yaml("stripPrefix: {prefixes: [/foobar, /fiibar], forceSlash: true}").unwrap(),
            Kind::StripPrefix(pb::StripPrefix {
                prefixes: vec!["/foobar".to_owned(), "/fiibar".to_owned()],
                force_slash: true,
            })
        );
        assert_eq!(
            compile_yaml("stripPrefix: {prefixes: [/a]}").unwrap(),
            Kind::StripPrefix(pb::StripPrefix {
                prefixes: vec!["/a".to_owned()],
                force_slash: false,
            })
        );
        assert_eq!(
            compile_yaml(r#"stripPrefixRegex: {regex: ["/foo/[a-z0-9]+/[0-9]+/"]}"#).unwrap(),
            Kind::StripPrefixRegex(pb::StripPrefixRegex {
                regex: vec!["/foo/[a-z0-9]+/[0-9]+/".to_owned()],
            })
        );
        assert_eq!(
            error_yaml(r#"stripPrefixRegex: {regex: ["/ok", "/[a-"]}"#),
            "stripPrefixRegex.regex[1] `/[a-`: unclosed character class"
        );
        assert_eq!(
            compile_yaml("replacePath: {path: /foo}").unwrap(),
            Kind::ReplacePath(pb::ReplacePath {
                path: "/foo".to_owned()
            })
        );
        assert_eq!(
            compile_yaml(
                r#"replacePathRegex: {regex: "^/foo/(?P<rest>.*)", replacement: "/bar/${rest}"}"#
            )
            .unwrap(),
            Kind::ReplacePathRegex(pb::ReplacePathRegex {
                regex: "^/foo/(?P<rest>.*)".to_owned(),
                replacement: "/bar/${rest}".to_owned(),
            })
        );
        assert_eq!(
            error_yaml(r#"replacePathRegex: {regex: "^/api3/(.*", replacement: "/api/$1"}"#),
            "replacePathRegex.regex `^/api3/(.*`: unclosed group"
        );
    }

    #[test]
    fn regex_errors_keep_the_full_cause_as_source() {
        let error =
            compile_yaml(r#"replacePathRegex: {regex: "(", replacement: "/"}"#).unwrap_err();
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains("regex parse error"), "{source}");
    }

    #[test]
    fn chain_members_are_qualified() {
        assert_eq!(
            compile_yaml("chain: {middlewares: [https-only, auth@kubernetes]}").unwrap(),
            Kind::Chain(pb::Chain {
                middlewares: vec!["https-only@file".to_owned(), "auth@kubernetes".to_owned()],
            })
        );
        assert_eq!(
            error_yaml(r#"chain: {middlewares: [a, ""]}"#),
            "chain.middlewares[1]: empty name"
        );
    }

    #[test]
    fn errors_parse_statuses_and_qualify_the_service() {
        assert_eq!(
            compile_yaml(
                r#"errors: {status: ["500-599", 404, "401,403"], service: pages,
                   query: "/{status}.html"}"#
            )
            .unwrap(),
            Kind::Errors(pb::Errors {
                status: vec![
                    pb::StatusRange { from: 500, to: 599 },
                    pb::StatusRange { from: 404, to: 404 },
                    pb::StatusRange { from: 401, to: 401 },
                    pb::StatusRange { from: 403, to: 403 },
                ],
                service: "pages@file".to_owned(),
                query: "/{status}.html".to_owned(),
            })
        );
        let errors =
            |status: &str| error_yaml(&format!("errors: {{status: [{status}], service: s}}"));
        assert_eq!(
            errors(r#""404", "5xx""#),
            "errors.status[1] `5xx`: expected a status such as `404` or a range such as `500-599`"
        );
        assert_eq!(
            errors(r#""599-500""#),
            "errors.status[0] `599-500`: the range is reversed"
        );
        assert_eq!(
            errors(r#""404,1000""#),
            "errors.status[0] `404,1000`: status codes are between 100 and 599"
        );
        assert_eq!(
            error_yaml("errors: {status: [404]}"),
            "errors.service: required"
        );
        assert_eq!(
            error_yaml("errors: {status: [404], service: s, statusRewrites: {'404': 200}}"),
            "errors.statusRewrites: not supported by Sluice"
        );
        let Kind::Errors(errors) =
            compile_yaml("errors: {status: [404], service: s@docker}").unwrap()
        else {
            panic!("not errors");
        };
        assert_eq!(errors.service, "s@docker");
    }

    #[test]
    fn redirect_regex_compiles_and_keeps_the_go_replacement() {
        assert_eq!(
            compile_yaml(
                r#"redirectRegex: {regex: "^http://localhost/(.*)",
                   replacement: "http://mydomain/${1}", permanent: true}"#
            )
            .unwrap(),
            Kind::RedirectRegex(pb::RedirectRegex {
                regex: "^http://localhost/(.*)".to_owned(),
                replacement: "http://mydomain/${1}".to_owned(),
                permanent: true,
            })
        );
        assert_eq!(
            error_yaml(r#"redirectRegex: {regex: "a{2,1}", replacement: x}"#),
            "redirectRegex.regex `a{2,1}`: invalid repetition count range, \
             the start must be <= the end"
        );
        assert_eq!(
            error_yaml(r#"redirectRegex: {regex: "^/"}"#),
            "redirectRegex.replacement: required"
        );
    }

    #[test]
    fn redirect_scheme_needs_a_known_scheme_and_a_valid_port() {
        assert_eq!(
            compile_yaml("redirectScheme: {scheme: https, port: 8443, permanent: true}").unwrap(),
            Kind::RedirectScheme(pb::RedirectScheme {
                scheme: "https".to_owned(),
                port: "8443".to_owned(),
                permanent: true,
            })
        );
        assert_eq!(
            error_yaml("redirectScheme: {port: '443'}"),
            "redirectScheme.scheme: required"
        );
        assert_eq!(
            error_yaml("redirectScheme: {scheme: ftp}"),
            "redirectScheme.scheme `ftp`: expected `http` or `https`"
        );
        for port in ["'0'", "'65536'", "'+80'", "https"] {
            let error = error_yaml(&format!("redirectScheme: {{scheme: https, port: {port}}}"));
            assert!(error.starts_with("redirectScheme.port `"), "{error}");
            assert!(
                error.ends_with("`: expected a port number from 1 to 65535"),
                "{error}"
            );
        }
    }

    #[test]
    fn content_type_grpc_web_and_pass_tls_client_cert_map_directly() {
        assert_eq!(
            compile_yaml("contentType: {}").unwrap(),
            Kind::ContentType(pb::ContentType { auto_detect: true })
        );
        assert_eq!(
            compile_yaml("contentType: {autoDetect: false}").unwrap(),
            Kind::ContentType(pb::ContentType { auto_detect: false })
        );
        assert_eq!(
            compile_yaml("grpcWeb: {allowOrigins: ['*']}").unwrap(),
            Kind::GrpcWeb(pb::GrpcWeb {
                allow_origins: vec!["*".to_owned()]
            })
        );
        assert_eq!(
            compile_yaml(
                "passTLSClientCert: {pem: true, info: {notAfter: true, sans: true, \
                 subject: {organizationalUnit: true, commonName: true}, \
                 issuer: {country: true, domainComponent: true}}}"
            )
            .unwrap(),
            Kind::PassTlsClientCert(pb::PassTlsClientCert {
                pem: true,
                info: Some(pb::PassTlsClientCertInfo {
                    not_after: true,
                    sans: true,
                    subject: Some(pb::PassTlsClientCertDn {
                        organizational_unit: true,
                        common_name: true,
                        ..pb::PassTlsClientCertDn::default()
                    }),
                    issuer: Some(pb::PassTlsClientCertDn {
                        country: true,
                        domain_component: true,
                        ..pb::PassTlsClientCertDn::default()
                    }),
                    ..pb::PassTlsClientCertInfo::default()
                }),
            })
        );
    }
}
