//! `headers`: custom headers, CORS and security headers.

use sluice_proto::v1 as pb;

use super::{MiddlewareError, check_header_name, check_header_names, check_regex, is_token};
use crate::dynamic::HeadersConfig;

pub(super) fn headers(config: &HeadersConfig) -> Result<pb::Headers, MiddlewareError> {
    reject_deprecated(config)?;
    for (option, headers) in [
        ("customRequestHeaders", &config.custom_request_headers),
        ("customResponseHeaders", &config.custom_response_headers),
        ("sslProxyHeaders", &config.ssl_proxy_headers),
    ] {
        for (name, value) in headers {
            check_header_name(format!("headers.{option}"), name)?;
            // The value is not shown: custom headers may carry credentials.
            check_header_value(&format!("headers.{option}.{name}"), value)?;
        }
    }
    for (option, value) in [
        (
            "customFrameOptionsValue",
            &config.custom_frame_options_value,
        ),
        ("customBrowserXSSValue", &config.custom_browser_xss_value),
        ("contentSecurityPolicy", &config.content_security_policy),
        (
            "contentSecurityPolicyReportOnly",
            &config.content_security_policy_report_only,
        ),
        ("publicKey", &config.public_key),
        ("referrerPolicy", &config.referrer_policy),
        ("permissionsPolicy", &config.permissions_policy),
    ] {
        check_header_value(&format!("headers.{option}"), value)?;
    }
    check_header_names(
        "headers.accessControlAllowHeaders",
        &config.access_control_allow_headers,
    )?;
    check_header_names(
        "headers.accessControlExposeHeaders",
        &config.access_control_expose_headers,
    )?;
    check_header_names("headers.hostsProxyHeaders", &config.hosts_proxy_headers)?;
    let access_control_allow_methods = config
        .access_control_allow_methods
        .iter()
        .enumerate()
        .map(|(index, method)| {
            if is_token(method) {
                Ok(method.to_ascii_uppercase())
            } else {
                Err(MiddlewareError::value(
                    format!("headers.accessControlAllowMethods[{index}]"),
                    method,
                    "invalid method",
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    for (index, regex) in config
        .access_control_allow_origin_list_regex
        .iter()
        .enumerate()
    {
        check_regex(
            format!("headers.accessControlAllowOriginListRegex[{index}]"),
            regex,
        )?;
    }
    for (option, seconds) in [
        ("accessControlMaxAge", config.access_control_max_age),
        ("stsSeconds", config.sts_seconds),
    ] {
        if seconds < 0 {
            return Err(MiddlewareError::value(
                format!("headers.{option}"),
                seconds,
                "must not be negative",
            ));
        }
    }
    Ok(pb::Headers {
        custom_request_headers: config.custom_request_headers.clone(),
        custom_response_headers: config.custom_response_headers.clone(),
        access_control_allow_credentials: config.access_control_allow_credentials,
        access_control_allow_headers: config.access_control_allow_headers.clone(),
        access_control_allow_methods,
        access_control_allow_origin_list: config.access_control_allow_origin_list.clone(),
        access_control_allow_origin_list_regex: config
            .access_control_allow_origin_list_regex
            .clone(),
        access_control_expose_headers: config.access_control_expose_headers.clone(),
        access_control_max_age: config.access_control_max_age,
        add_vary_header: config.add_vary_header,
        allowed_hosts: config.allowed_hosts.clone(),
        hosts_proxy_headers: config.hosts_proxy_headers.clone(),
        ssl_proxy_headers: config.ssl_proxy_headers.clone(),
        sts_seconds: config.sts_seconds,
        sts_include_subdomains: config.sts_include_subdomains,
        sts_preload: config.sts_preload,
        force_sts_header: config.force_sts_header,
        frame_deny: config.frame_deny,
        custom_frame_options_value: config.custom_frame_options_value.clone(),
        content_type_nosniff: config.content_type_nosniff,
        browser_xss_filter: config.browser_xss_filter,
        custom_browser_xss_value: config.custom_browser_xss_value.clone(),
        content_security_policy: config.content_security_policy.clone(),
        content_security_policy_report_only: config.content_security_policy_report_only.clone(),
        public_key: config.public_key.clone(),
        referrer_policy: config.referrer_policy.clone(),
        permissions_policy: config.permissions_policy.clone(),
        is_development: config.is_development,
    })
}

/// The deprecated options Traefik v3 still honours but the snapshot cannot
/// express; dropping them silently would, for `sslRedirect`, serve plain HTTP.
fn reject_deprecated(config: &HeadersConfig) -> Result<(), MiddlewareError> {
    const REDIRECT: &str = "; use a `redirectScheme` middleware";
    let set = [
        ("sslRedirect", config.ssl_redirect == Some(true), REDIRECT),
        (
            "sslTemporaryRedirect",
            config.ssl_temporary_redirect == Some(true),
            REDIRECT,
        ),
        (
            "sslHost",
            config
                .ssl_host
                .as_ref()
                .is_some_and(|host| !host.is_empty()),
            "; use a `redirectRegex` middleware",
        ),
        (
            "sslForceHost",
            config.ssl_force_host == Some(true),
            "; use a `redirectRegex` middleware",
        ),
        (
            "featurePolicy",
            config
                .feature_policy
                .as_ref()
                .is_some_and(|policy| !policy.is_empty()),
            "; use `permissionsPolicy`",
        ),
    ];
    match set.into_iter().find(|(_, set, _)| *set) {
        Some((option, _, advice)) => Err(MiddlewareError::unsupported(
            format!("headers.{option}"),
            advice,
        )),
        None => Ok(()),
    }
}

/// A header value must not smuggle another header or end the head.
fn check_header_value(option: &str, value: &str) -> Result<(), MiddlewareError> {
    if value.contains(['\r', '\n', '\0']) {
        Err(MiddlewareError::option(
            option,
            "the value contains a line break or NUL",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_yaml, error_yaml};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    #[test]
    fn maps_every_option() {
        let Kind::Headers(headers) = compile_yaml(
            r#"
headers:
  customRequestHeaders: {X-Script-Name: test, X-Remove: ""}
  customResponseHeaders: {X-Custom-Response-Header: value}
  accessControlAllowCredentials: true
  accessControlAllowHeaders: ["*"]
  accessControlAllowMethods: [get, Options, PUT]
  accessControlAllowOriginList: [https://foo.bar.org]
  accessControlAllowOriginListRegex: ['^https://([a-z]+)\.bar\.org$']
  accessControlExposeHeaders: [X-Total]
  accessControlMaxAge: 100
  addVaryHeader: true
  allowedHosts: [example.com]
  hostsProxyHeaders: [X-Forwarded-Host]
  sslProxyHeaders: {X-Forwarded-Proto: https}
  stsSeconds: 31536000
  stsIncludeSubdomains: true
  stsPreload: true
  forceSTSHeader: true
  frameDeny: true
  customFrameOptionsValue: SAMEORIGIN
  contentTypeNosniff: true
  browserXssFilter: true
  customBrowserXSSValue: "0"
  contentSecurityPolicy: "default-src 'self'"
  contentSecurityPolicyReportOnly: "script-src 'self'"
  publicKey: pin-sha256="base64+primary=="
  referrerPolicy: same-origin
  permissionsPolicy: camera=()
  isDevelopment: true
  sslRedirect: false
"#,
        )
        .unwrap() else {
            panic!("not headers");
        };
        let expected = pb::Headers {
            custom_request_headers: [("X-Remove", ""), ("X-Script-Name", "test")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            custom_response_headers: [("X-Custom-Response-Header".to_owned(), "value".to_owned())]
                .into(),
            access_control_allow_credentials: true,
            access_control_allow_headers: vec!["*".to_owned()],
            access_control_allow_methods: vec![
                "GET".to_owned(),
                "OPTIONS".to_owned(),
                "PUT".to_owned(),
            ],
            access_control_allow_origin_list: vec!["https://foo.bar.org".to_owned()],
            access_control_allow_origin_list_regex: vec![
                r"^https://([a-z]+)\.bar\.org$".to_owned(),
            ],
            access_control_expose_headers: vec!["X-Total".to_owned()],
            access_control_max_age: 100,
            add_vary_header: true,
            allowed_hosts: vec!["example.com".to_owned()],
            hosts_proxy_headers: vec!["X-Forwarded-Host".to_owned()],
            ssl_proxy_headers: [("X-Forwarded-Proto".to_owned(), "https".to_owned())].into(),
            sts_seconds: 31_536_000,
            sts_include_subdomains: true,
            sts_preload: true,
            force_sts_header: true,
            frame_deny: true,
            custom_frame_options_value: "SAMEORIGIN".to_owned(),
            content_type_nosniff: true,
            browser_xss_filter: true,
            custom_browser_xss_value: "0".to_owned(),
            content_security_policy: "default-src 'self'".to_owned(),
            content_security_policy_report_only: "script-src 'self'".to_owned(),
            public_key: r#"pin-sha256="base64+primary==""#.to_owned(),
            referrer_policy: "same-origin".to_owned(),
            permissions_policy: "camera=()".to_owned(),
            is_development: true,
        };
        assert_eq!(headers, expected);
    }

    #[test]
    fn validates_names_values_methods_and_regexes() {
        assert_eq!(
            error_yaml("headers: {customRequestHeaders: {'X Bad': v}}"),
            "headers.customRequestHeaders `X Bad`: invalid header name"
        );
        assert_eq!(
            error_yaml("headers: {customResponseHeaders: {X-Token: \"secret\\r\\nX-Evil: 1\"}}"),
            "headers.customResponseHeaders.X-Token: the value contains a line break or NUL"
        );
        assert_eq!(
            error_yaml("headers: {contentSecurityPolicy: \"a\\nb\"}"),
            "headers.contentSecurityPolicy: the value contains a line break or NUL"
        );
        assert_eq!(
            error_yaml("headers: {accessControlAllowHeaders: [X-Ok, 'X:Bad']}"),
            "headers.accessControlAllowHeaders[1] `X:Bad`: invalid header name"
        );
        assert_eq!(
            error_yaml("headers: {hostsProxyHeaders: ['']}"),
            "headers.hostsProxyHeaders[0] ``: invalid header name"
        );
        assert_eq!(
            error_yaml("headers: {accessControlAllowMethods: ['GET POST']}"),
            "headers.accessControlAllowMethods[0] `GET POST`: invalid method"
        );
        assert_eq!(
            error_yaml("headers: {accessControlAllowOriginListRegex: ['(']}"),
            "headers.accessControlAllowOriginListRegex[0] `(`: unclosed group"
        );
        assert_eq!(
            error_yaml("headers: {stsSeconds: -1}"),
            "headers.stsSeconds `-1`: must not be negative"
        );
        assert_eq!(
            error_yaml("headers: {accessControlMaxAge: -1}"),
            "headers.accessControlMaxAge `-1`: must not be negative"
        );
    }

    #[test]
    fn deprecated_options_the_snapshot_cannot_express_are_errors() {
        assert_eq!(
            error_yaml("headers: {sslRedirect: true}"),
            "headers.sslRedirect: not supported by Sluice; use a `redirectScheme` middleware"
        );
        assert_eq!(
            error_yaml("headers: {sslTemporaryRedirect: true}"),
            "headers.sslTemporaryRedirect: not supported by Sluice; \
             use a `redirectScheme` middleware"
        );
        assert_eq!(
            error_yaml("headers: {sslHost: example.com}"),
            "headers.sslHost: not supported by Sluice; use a `redirectRegex` middleware"
        );
        assert_eq!(
            error_yaml("headers: {sslForceHost: true}"),
            "headers.sslForceHost: not supported by Sluice; use a `redirectRegex` middleware"
        );
        assert_eq!(
            error_yaml("headers: {featurePolicy: \"camera 'none'\"}"),
            "headers.featurePolicy: not supported by Sluice; use `permissionsPolicy`"
        );
        assert!(
            compile_yaml("headers: {sslRedirect: false, sslHost: '', featurePolicy: ''}").is_ok()
        );
    }
}
