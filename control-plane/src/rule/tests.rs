//! End-to-end tests of the public API, on Traefik's documented examples, and
//! the helpers the per-module tests share.

use sluice_proto::v1::matcher::Kind;
use sluice_proto::v1::{HeaderMatch, Matcher, MatcherList, QueryMatch};

use super::*;

/// Parses a rule that must be valid.
pub(super) fn parse(rule: &str, syntax: RuleSyntax) -> Matcher {
    parse_rule(rule, syntax).unwrap_or_else(|error| panic!("{error}"))
}

pub(super) fn v3(rule: &str) -> Matcher {
    parse(rule, RuleSyntax::V3)
}

pub(super) fn v2(rule: &str) -> Matcher {
    parse(rule, RuleSyntax::V2)
}

/// The column and message of a rule that must be invalid.
pub(super) fn error(rule: &str, syntax: RuleSyntax) -> (usize, String) {
    match parse_rule(rule, syntax) {
        Ok(matcher) => panic!("rule `{rule}` parsed into {matcher:?}"),
        Err(error) => {
            assert_eq!(error.rule, rule);
            (error.column, error.message)
        }
    }
}

pub(super) fn v3_error(rule: &str) -> (usize, String) {
    error(rule, RuleSyntax::V3)
}

pub(super) fn v2_error(rule: &str) -> (usize, String) {
    error(rule, RuleSyntax::V2)
}

fn leaf(kind: Kind) -> Matcher {
    Matcher { kind: Some(kind) }
}

pub(super) fn all(matchers: Vec<Matcher>) -> Matcher {
    leaf(Kind::All(MatcherList { matchers }))
}

pub(super) fn any(matchers: Vec<Matcher>) -> Matcher {
    leaf(Kind::Any(MatcherList { matchers }))
}

pub(super) fn not(matcher: Matcher) -> Matcher {
    leaf(Kind::Not(Box::new(matcher)))
}

pub(super) fn host(host: &str) -> Matcher {
    leaf(Kind::Host(host.into()))
}

pub(super) fn host_regexp(regex: &str) -> Matcher {
    leaf(Kind::HostRegexp(regex.into()))
}

pub(super) fn path(path: &str) -> Matcher {
    leaf(Kind::Path(path.into()))
}

pub(super) fn path_prefix(prefix: &str) -> Matcher {
    leaf(Kind::PathPrefix(prefix.into()))
}

pub(super) fn path_regexp(regex: &str) -> Matcher {
    leaf(Kind::PathRegexp(regex.into()))
}

pub(super) fn method(method: &str) -> Matcher {
    leaf(Kind::Method(method.into()))
}

pub(super) fn header(name: &str, value: &str) -> Matcher {
    leaf(Kind::Header(HeaderMatch {
        name: name.into(),
        value: value.into(),
    }))
}

pub(super) fn header_regexp(name: &str, regex: &str) -> Matcher {
    leaf(Kind::HeaderRegexp(HeaderMatch {
        name: name.into(),
        value: regex.into(),
    }))
}

pub(super) fn query(key: &str, value: Option<&str>) -> Matcher {
    leaf(Kind::Query(QueryMatch {
        key: key.into(),
        value: value.map(Into::into),
    }))
}

pub(super) fn query_regexp(key: &str, regex: &str) -> Matcher {
    leaf(Kind::QueryRegexp(QueryMatch {
        key: key.into(),
        value: Some(regex.into()),
    }))
}

pub(super) fn client_ip(ip: &str) -> Matcher {
    leaf(Kind::ClientIp(ip.into()))
}

#[test]
fn rule_syntax_from_option() {
    assert_eq!(RuleSyntax::default(), RuleSyntax::V3);
    assert_eq!(RuleSyntax::from_option(None), Ok(RuleSyntax::V3));
    assert_eq!(RuleSyntax::from_option(Some("")), Ok(RuleSyntax::V3));
    assert_eq!(RuleSyntax::from_option(Some("v3")), Ok(RuleSyntax::V3));
    assert_eq!(RuleSyntax::from_option(Some("v2")), Ok(RuleSyntax::V2));
    assert_eq!(
        RuleSyntax::from_option(Some("v1")),
        Err("unknown rule syntax `v1`, expected `v3` or `v2`".to_owned())
    );
}

#[test]
fn error_display_names_rule_and_column() {
    let error = parse_rule("Host(`a`) & Path(`/`)", RuleSyntax::V3).unwrap_err();
    assert_eq!(
        error,
        RuleError {
            rule: "Host(`a`) & Path(`/`)".into(),
            column: 11,
            message: "expected `&&`".into(),
        }
    );
    assert_eq!(
        error.to_string(),
        "rule `Host(`a`) & Path(`/`)`: column 11: expected `&&`"
    );
}

#[test]
fn empty_rule() {
    for rule in ["", "   ", "\n\t"] {
        assert_eq!(v3_error(rule), (1, "empty rule".to_owned()));
        assert_eq!(v2_error(rule), (1, "empty rule".to_owned()));
    }
}

#[test]
fn priority_is_the_rule_length_in_bytes() {
    // Traefik's documented priority examples.
    assert_eq!(rule_priority(r"HostRegexp(`[a-z]+\.example\.com`)"), 34);
    assert_eq!(rule_priority("Host(`foobar.example.com`)"), 26);
    // Bytes, like Go's `len`, not characters.
    assert_eq!(rule_priority("Host(`é.fr`)"), 13);
    assert_eq!(rule_priority(""), 0);
}

#[test]
fn documented_v3_examples() {
    assert_eq!(
        v3("Host(`example.com`) && (PathPrefix(`/api`) || PathPrefix(`/v2`))"),
        all(vec![
            host("example.com"),
            any(vec![path_prefix("/api"), path_prefix("/v2")]),
        ])
    );
    assert_eq!(
        v3(r"HostRegexp(`[a-z]+\.traefik\.com`)"),
        host_regexp(r"[a-z]+\.traefik\.com")
    );
    assert_eq!(
        v3(r"HostRegexp(`^.+\.example\.com$`)"),
        host_regexp(r"^.+\.example\.com$")
    );
    assert_eq!(
        v3("!ClientIP(`10.0.0.0/8`) && Method(`GET`)"),
        all(vec![not(client_ip("10.0.0.0/8")), method("GET")])
    );
    assert_eq!(v3("Query(`mobile`, `true`)"), query("mobile", Some("true")));
    assert_eq!(
        v3("QueryRegexp(`mobile`, `^(true|yes)$`)"),
        query_regexp("mobile", "^(true|yes)$")
    );
    assert_eq!(
        v3("Header(`Content-Type`, `application/json`)"),
        header("Content-Type", "application/json")
    );
    assert_eq!(
        v3("HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)"),
        header_regexp("Content-Type", "^application/(json|yaml)$")
    );
    assert_eq!(v3("Path(`/products`)"), path("/products"));
    assert_eq!(v3("PathPrefix(`/products/`)"), path_prefix("/products/"));
    assert_eq!(
        v3(r"PathRegexp(`\.(jpeg|jpg|png)$`)"),
        path_regexp(r"\.(jpeg|jpg|png)$")
    );
    assert_eq!(v3("ClientIP(`10.76.105.11`)"), client_ip("10.76.105.11"));
    assert_eq!(v3("ClientIP(`::1`)"), client_ip("::1"));
    assert_eq!(
        v3("ClientIP(`192.168.1.0/24`)"),
        client_ip("192.168.1.0/24")
    );
    assert_eq!(v3("ClientIP(`fe80::/10`)"), client_ip("fe80::/10"));
    assert_eq!(
        v3("Host(`example.com`) || (Host(`example.org`) && Path(`/traefik`))"),
        any(vec![
            host("example.com"),
            all(vec![host("example.org"), path("/traefik")]),
        ])
    );
    assert_eq!(
        v3("(Host(`example.com`) || Host(`example.org`)) && !Path(`/traefik`)"),
        all(vec![
            any(vec![host("example.com"), host("example.org")]),
            not(path("/traefik")),
        ])
    );
}

#[test]
fn documented_v2_examples() {
    assert_eq!(
        v2("Host(`example.com`, `example.org`)"),
        any(vec![host("example.com"), host("example.org")])
    );
    assert_eq!(
        v2("HostRegexp(`example.com`, `{subdomain:[a-z]+}.example.com`)"),
        any(vec![
            host_regexp(r"^example\.com$"),
            host_regexp(r"^(?:[a-z]+)\.example\.com$"),
        ])
    );
    assert_eq!(
        v2("Headers(`Content-Type`, `application/json`)"),
        header("Content-Type", "application/json")
    );
    assert_eq!(
        v2("HeadersRegexp(`Content-Type`, `application/(text|json)`)"),
        header_regexp("Content-Type", "application/(text|json)")
    );
    assert_eq!(
        v2("Query(`foo=bar`, `bar=baz`)"),
        all(vec![query("foo", Some("bar")), query("bar", Some("baz"))])
    );
    assert_eq!(
        v2("Path(`/articles/{category}/{id:[0-9]+}`)"),
        path_regexp("^/articles/(?:[^/]+)/(?:[0-9]+)$")
    );
    assert_eq!(
        v2("PathPrefix(`/products/`, `/articles/{category}/{id:[0-9]+}`)"),
        any(vec![
            path_prefix("/products/"),
            path_regexp("^/articles/(?:[^/]+)/(?:[0-9]+)"),
        ])
    );
    assert_eq!(
        v2("Method(`GET`, `POST`)"),
        any(vec![method("GET"), method("POST")])
    );
    assert_eq!(
        v2("ClientIP(`10.0.0.0/16`, `::1`)"),
        any(vec![client_ip("10.0.0.0/16"), client_ip("::1")])
    );
    assert_eq!(
        v2("Host(`example.com`) && (PathPrefix(`/api`) || HostHeader(`api.example.com`))"),
        all(vec![
            host("example.com"),
            any(vec![path_prefix("/api"), host("api.example.com")]),
        ])
    );
}

#[test]
fn both_quote_styles_give_the_same_tree() {
    assert_eq!(
        v3(r#"Host("example.com") && PathRegexp("^/a\\.b$")"#),
        v3(r"Host(`example.com`) && PathRegexp(`^/a\.b$`)")
    );
    assert_eq!(
        v3(r#"Header("X-Quote", "say \"hi\"")"#),
        header("X-Quote", "say \"hi\"")
    );
}

#[test]
fn whitespace_anywhere_between_tokens() {
    assert_eq!(
        v3(" \n Host ( `a` ,\t`b` )\n&&\n! ( Path(`/`) )  "),
        all(vec![any(vec![host("a"), host("b")]), not(path("/"))])
    );
}

#[test]
fn columns_count_characters() {
    // `é` is two bytes; the column of `&` is still its position in characters.
    assert_eq!(
        v3_error("Path(`/é`) & Path(`/`)"),
        (12, "expected `&&`".to_owned())
    );
}
