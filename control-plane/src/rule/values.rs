//! Checks and normalisation of matcher arguments: what the data plane can
//! rely on without checking again (lower-cased hosts, compiled regexes,
//! parsed IPs).

use std::net::IpAddr;

use ipnet::IpNet;
use sluice_proto::v1::matcher::Kind;

use super::matchers::Arg;
use super::template::{self, Target};
use super::{ErrorAt, RuleSyntax};

/// A host name, lower-cased and without the trailing dot of a fully
/// qualified name, since the data plane compares it with the request's
/// lower-cased host.
pub(super) fn host(arg: &Arg) -> Result<String, ErrorAt> {
    ascii_host(arg, "Host")?;
    let host = arg.value.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host.is_empty() {
        return Err(arg.error(format!("empty host `{}`", arg.value)));
    }
    Ok(host.to_owned())
}

/// `HostRegexp`: a regex as written in v3; a template converted in v2.
pub(super) fn host_regexp(arg: &Arg, syntax: RuleSyntax) -> Result<String, ErrorAt> {
    ascii_host(arg, "HostRegexp")?;
    match syntax {
        RuleSyntax::V3 => compiled(arg, arg.value.clone()).map_err(|mut error| {
            // The usual v2-to-v3 migration mistake: say how to keep the v2
            // meaning rather than only that the regex is bad.
            if template::has_placeholders(&arg.value) {
                error
                    .message
                    .push_str(" (v2 `{name:regex}` placeholders need `ruleSyntax: v2`)");
            }
            error
        }),
        RuleSyntax::V2 => compiled(arg, v2_template(arg, Target::Host)?),
    }
}

/// Traefik rejects non-ASCII hosts: requests carry IDNs in their ASCII
/// (punycode) form, so a Unicode host could never match.
fn ascii_host(arg: &Arg, matcher: &str) -> Result<(), ErrorAt> {
    if arg.value.is_ascii() {
        Ok(())
    } else {
        Err(arg.error(format!(
            "invalid value `{}` for `{matcher}`: non-ASCII characters are not allowed \
             (use the punycode form)",
            arg.value
        )))
    }
}

/// `Path` or `PathPrefix`: literal in v3; in v2, a template becomes a regex.
pub(super) fn path(arg: &Arg, syntax: RuleSyntax, target: Target) -> Result<Kind, ErrorAt> {
    if !arg.value.starts_with('/') {
        return Err(arg.error(format!("path `{}` does not start with `/`", arg.value)));
    }
    if syntax == RuleSyntax::V2 && template::has_placeholders(&arg.value) {
        let regex = v2_template(arg, target)?;
        return compiled(arg, regex).map(Kind::PathRegexp);
    }
    Ok(match target {
        Target::PathPrefix => Kind::PathPrefix(arg.value.clone()),
        Target::Path | Target::Host => Kind::Path(arg.value.clone()),
    })
}

fn v2_template(arg: &Arg, target: Target) -> Result<String, ErrorAt> {
    template::to_regex(&arg.value, target).map_err(|message| arg.error(message))
}

/// Checks that `regex` (from `arg`, possibly converted) compiles, and returns
/// it.
pub(super) fn compiled(arg: &Arg, regex: String) -> Result<String, ErrorAt> {
    match regex::Regex::new(&regex) {
        Ok(_) => Ok(regex),
        Err(error) => {
            // regex draws a multi-line caret diagram under the pattern; a rule
            // error is one line and already has a column, so keep the last
            // line, which says what is wrong.
            let text = error.to_string();
            let reason = text.lines().next_back().map_or(text.as_str(), |line| {
                line.trim().trim_start_matches("error: ")
            });
            Err(arg.error(format!("invalid regular expression `{regex}`: {reason}")))
        }
    }
}

/// An HTTP method, upper-cased as Traefik does.
pub(super) fn method(arg: &Arg) -> Result<String, ErrorAt> {
    if is_token(&arg.value) {
        Ok(arg.value.to_ascii_uppercase())
    } else {
        Err(arg.error(format!("invalid HTTP method `{}`", arg.value)))
    }
}

/// A header name is kept as written: names are case-insensitive and the data
/// plane compares them that way.
pub(super) fn header_name(arg: &Arg) -> Result<String, ErrorAt> {
    if is_token(&arg.value) {
        Ok(arg.value.clone())
    } else {
        Err(arg.error(format!("invalid header name `{}`", arg.value)))
    }
}

/// RFC 9110 `token`: what method and header names are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An IP address or CIDR range, in canonical form (IPv6 compressed).
pub(super) fn client_ip(arg: &Arg) -> Result<String, ErrorAt> {
    let value = arg.value.as_str();
    let parsed = if value.contains('/') {
        value.parse::<IpNet>().map(|net| net.to_string()).ok()
    } else {
        value.parse::<IpAddr>().map(|ip| ip.to_string()).ok()
    };
    parsed.ok_or_else(|| arg.error(format!("invalid IP address or CIDR range `{value}`")))
}

#[cfg(test)]
mod tests {
    use super::super::RuleSyntax;
    use super::super::tests::*;

    fn err(result: (usize, String), column: usize, message: &str) {
        assert_eq!(result, (column, message.to_owned()));
    }

    #[test]
    fn hosts_are_lower_cased_without_trailing_dot() {
        assert_eq!(v3("Host(`Example.COM.`)"), host("example.com"));
        assert_eq!(v3("HostHeader(`A.b`)"), host("a.b"));
        assert_eq!(
            v3("Host(`a.com`, `B.com`)"),
            any(vec![host("a.com"), host("b.com")])
        );
    }

    #[test]
    fn invalid_hosts() {
        err(v3_error("Host(``)"), 6, "empty host ``");
        err(v3_error("Host(`.`)"), 6, "empty host `.`");
        err(v3_error("Host(`a`, ``)"), 11, "empty host ``");
        err(
            v3_error("Host(`bücher.de`)"),
            6,
            "invalid value `bücher.de` for `Host`: non-ASCII characters are not allowed \
             (use the punycode form)",
        );
        err(
            v3_error("HostRegexp(`bü.*`)"),
            12,
            "invalid value `bü.*` for `HostRegexp`: non-ASCII characters are not allowed \
             (use the punycode form)",
        );
    }

    #[test]
    fn host_regexp_is_used_as_written_in_v3_and_templated_in_v2() {
        assert_eq!(
            v3(r"HostRegexp(`^[a-z]+\.a\.com$`)"),
            host_regexp(r"^[a-z]+\.a\.com$")
        );
        assert_eq!(
            v3(r"HostRegexp(`^[a-z]{3}\.com$`)"),
            host_regexp(r"^[a-z]{3}\.com$")
        );
        err(
            v3_error("HostRegexp(`{sub:[a-z]+}.a.com`)"),
            12,
            "invalid regular expression `{sub:[a-z]+}.a.com`: repetition operator missing \
             expression (v2 `{name:regex}` placeholders need `ruleSyntax: v2`)",
        );
        assert_eq!(
            v2("HostRegexp(`{sub:[a-z]+}.example.com`)"),
            host_regexp(r"^(?:[a-z]+)\.example\.com$")
        );
        assert_eq!(
            v2("HostRegexp(`{sub}.Example.com`)"),
            host_regexp(r"^(?:[^.]+)\.example\.com$")
        );
    }

    #[test]
    fn v2_template_errors_point_at_the_argument() {
        err(
            v2_error("Path(`/`) && HostRegexp(`{sub.a.com`)"),
            25,
            "unbalanced braces in `{sub.a.com`",
        );
        err(
            v2_error("Path(`/a/{:[0-9]+}`)"),
            6,
            "missing name or pattern in placeholder `{:[0-9]+}` of `/a/{:[0-9]+}`",
        );
        err(
            v2_error("PathPrefix(`/a/{id:[0-9}`)"),
            12,
            "invalid regular expression `^/a/(?:[0-9)`: unclosed character class",
        );
    }

    #[test]
    fn paths() {
        assert_eq!(v3("Path(`/a/b`)"), path("/a/b"));
        assert_eq!(v3("PathPrefix(`/a/`)"), path_prefix("/a/"));
        assert_eq!(v3("Path(`/a`, `/b`)"), any(vec![path("/a"), path("/b")]));
        // Braces are plain text in v3.
        assert_eq!(v3("Path(`/users/{id}`)"), path("/users/{id}"));
        // v2 paths without placeholders stay plain.
        assert_eq!(v2("Path(`/a.b`)"), path("/a.b"));
        assert_eq!(v2("PathPrefix(`/a`)"), path_prefix("/a"));
        assert_eq!(
            v2("Path(`/users/{id:[0-9]+}`)"),
            path_regexp("^/users/(?:[0-9]+)$")
        );
        assert_eq!(
            v2("PathPrefix(`/users/{id}`)"),
            path_regexp("^/users/(?:[^/]+)")
        );
    }

    #[test]
    fn paths_must_start_with_a_slash() {
        err(
            v3_error("Path(`api`)"),
            6,
            "path `api` does not start with `/`",
        );
        err(
            v3_error("PathPrefix(``)"),
            12,
            "path `` does not start with `/`",
        );
        err(
            v3_error("Path(`/a`, `b`)"),
            12,
            "path `b` does not start with `/`",
        );
        err(
            v2_error("Path(`{x}`)"),
            6,
            "path `{x}` does not start with `/`",
        );
    }

    #[test]
    fn path_regexp_is_a_regex_in_both_syntaxes() {
        for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
            assert_eq!(
                parse(r"PathRegexp(`^/[0-9]{3}$`)", syntax),
                path_regexp(r"^/[0-9]{3}$")
            );
        }
        err(
            v3_error("PathRegexp(`/(a`)"),
            12,
            "invalid regular expression `/(a`: unclosed group",
        );
    }

    #[test]
    fn methods_are_upper_cased() {
        assert_eq!(v3("Method(`get`)"), method("GET"));
        assert_eq!(
            v3("Method(`GET`, `post`)"),
            any(vec![method("GET"), method("POST")])
        );
        err(v3_error("Method(`GE T`)"), 8, "invalid HTTP method `GE T`");
        err(v3_error("Method(``)"), 8, "invalid HTTP method ``");
    }

    #[test]
    fn client_ips_are_canonical() {
        assert_eq!(v3("ClientIP(`2001:DB8:0:0::1`)"), client_ip("2001:db8::1"));
        assert_eq!(v3("ClientIP(`2001:db8::/32`)"), client_ip("2001:db8::/32"));
        assert_eq!(
            v3("ClientIP(`10.0.0.1`, `192.168.0.0/16`)"),
            any(vec![client_ip("10.0.0.1"), client_ip("192.168.0.0/16")])
        );
        assert_eq!(
            v3("!ClientIP(`10.0.0.0/8`, `::1`)"),
            not(any(vec![client_ip("10.0.0.0/8"), client_ip("::1")]))
        );
    }

    #[test]
    fn invalid_client_ips() {
        for (value, rule) in [
            ("10.0.0.256", "ClientIP(`10.0.0.256`)"),
            ("10.0.0.0/33", "ClientIP(`10.0.0.0/33`)"),
            ("example.com", "ClientIP(`example.com`)"),
            ("", "ClientIP(``)"),
        ] {
            err(
                v3_error(rule),
                10,
                &format!("invalid IP address or CIDR range `{value}`"),
            );
        }
    }
}
