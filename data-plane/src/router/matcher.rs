//! A router's rule, compiled from the control plane's matcher tree: regexes
//! are compiled and CIDRs parsed once per runtime, so a request only runs
//! comparisons.
//!
//! Semantics are Traefik v3's: `Host` compares the lower-cased host without
//! its port, `PathPrefix` is a plain string prefix (``PathPrefix(`/api`)``
//! matches `/apiv2`), regexes are used as written (anchor them to anchor),
//! `Header` compares one of the header's values exactly, `Query` checks a key
//! (and optionally one of its values) and `ClientIP` checks the TCP peer.

use std::borrow::Cow;
use std::net::IpAddr;

use http::{HeaderName, Method};

use crate::headers::{HeaderFields, visible_ascii};
use ipnet::IpNet;
use regex::Regex;
use sluice_proto::v1::{self, matcher::Kind};

use super::path::hex_value;

/// Why a rule could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// A matcher node had no kind (the rule is missing or malformed).
    #[error("empty matcher")]
    Empty,
    /// A regular expression did not compile.
    #[error("invalid regular expression `{pattern}`")]
    Regex {
        /// The expression as written.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// A `ClientIP` value is neither an IP nor a CIDR.
    #[error("invalid ClientIP `{0}`: expected an IP address or a CIDR range")]
    ClientIp(String),
    /// A header name is not a valid HTTP header name.
    #[error("invalid header name `{0}`")]
    HeaderName(String),
}

/// What a matcher looks at in a request, prepared once per request.
#[derive(Debug)]
pub(crate) struct RequestView<'a> {
    /// Lower-cased host, without port.
    pub(crate) host: &'a str,
    /// Normalised path.
    pub(crate) path: &'a str,
    /// Request method.
    pub(crate) method: &'a Method,
    /// Request headers.
    pub(crate) headers: &'a dyn HeaderFields,
    /// Raw query string, without `?`.
    pub(crate) query: Option<&'a str>,
    /// IP of the TCP peer, IPv4-mapped addresses folded to IPv4.
    pub(crate) client_ip: IpAddr,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) enum Matcher {
    /// Every child matches.
    All(Vec<Matcher>),
    /// At least one child matches.
    Any(Vec<Matcher>),
    /// The child does not match.
    Not(Box<Matcher>),
    /// Host equals (lower-cased).
    Host(String),
    /// Regex over the lower-cased host.
    HostRegexp(Regex),
    /// Path equals.
    Path(String),
    /// Path starts with.
    PathPrefix(String),
    /// Regex over the path.
    PathRegexp(Regex),
    /// Method equals (case-insensitively).
    Method(String),
    /// One of the header's values equals.
    Header(HeaderName, String),
    /// One of the header's values matches.
    HeaderRegexp(HeaderName, Regex),
    /// The query has the key, and if given one of its values equals.
    Query(String, Option<String>),
    /// The query has the key and one of its values matches.
    QueryRegexp(String, Regex),
    /// The TCP peer is in the range.
    ClientIp(IpNet),
}

impl Matcher {
    /// Compiles the control plane's matcher tree.
    pub(crate) fn compile(matcher: &v1::Matcher) -> Result<Self, MatcherError> {
        let kind = matcher.kind.as_ref().ok_or(MatcherError::Empty)?;
        Ok(match kind {
            Kind::All(list) => Self::All(compile_list(list)?),
            Kind::Any(list) => Self::Any(compile_list(list)?),
            Kind::Not(inner) => Self::Not(Box::new(Self::compile(inner)?)),
            Kind::Host(host) => Self::Host(canonical_host(host).into_owned()),
            Kind::HostRegexp(pattern) => Self::HostRegexp(regex(pattern)?),
            Kind::Path(path) => Self::Path(path.clone()),
            Kind::PathPrefix(prefix) => Self::PathPrefix(prefix.clone()),
            Kind::PathRegexp(pattern) => Self::PathRegexp(regex(pattern)?),
            Kind::Method(method) => Self::Method(method.clone()),
            Kind::Header(header) => Self::Header(header_name(&header.name)?, header.value.clone()),
            Kind::HeaderRegexp(header) => {
                Self::HeaderRegexp(header_name(&header.name)?, regex(&header.value)?)
            }
            Kind::Query(query) => Self::Query(query.key.clone(), query.value.clone()),
            Kind::QueryRegexp(query) => Self::QueryRegexp(
                query.key.clone(),
                regex(query.value.as_deref().unwrap_or(""))?,
            ),
            Kind::ClientIp(value) => Self::ClientIp(client_ip(value)?),
        })
    }

    /// Evaluates the rule against a request.
    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Self::All(children) => children.iter().all(|m| m.matches(req)),
            Self::Any(children) => children.iter().any(|m| m.matches(req)),
            Self::Not(inner) => !inner.matches(req),
            Self::Host(host) => req.host == host,
            Self::HostRegexp(re) => re.is_match(req.host),
            Self::Path(path) => req.path == path,
            Self::PathPrefix(prefix) => req.path.starts_with(prefix.as_str()),
            Self::PathRegexp(re) => re.is_match(req.path),
            Self::Method(method) => req.method.as_str().eq_ignore_ascii_case(method),
            Self::Header(name, value) => {
                req.headers.find_value(name, &mut |v| v == value.as_bytes())
            }
            Self::HeaderRegexp(name, re) => req.headers.find_value(name, &mut |v| {
                visible_ascii(v).is_some_and(|v| re.is_match(v))
            }),
            Self::Query(key, value) => query_values(req.query, key).any(|v| match value {
                Some(expected) => v == expected.as_str(),
                None => true,
            }),
            Self::QueryRegexp(key, re) => query_values(req.query, key).any(|v| re.is_match(&v)),
            Self::ClientIp(net) => net.contains(&req.client_ip),
        }
    }

    /// Hosts one of which a request must have to match, when the rule says
    /// so at its top (a `Host`, an `All` containing one, an `Any` of such).
    pub(crate) fn required_hosts(&self) -> Option<Vec<&str>> {
        self.required(&|m| match m {
            Self::Host(host) => Some(host.as_str()),
            _ => None,
        })
    }

    /// Literal prefixes one of which a request path must start with to match
    /// (from `Path` and `PathPrefix`, found the same way as hosts).
    pub(crate) fn required_path_prefixes(&self) -> Option<Vec<&str>> {
        self.required(&|m| match m {
            Self::Path(path) | Self::PathPrefix(path) => Some(path.as_str()),
            _ => None,
        })
    }

    fn required<'a>(&'a self, leaf: &dyn Fn(&'a Self) -> Option<&'a str>) -> Option<Vec<&'a str>> {
        match self {
            Self::All(children) => children.iter().find_map(|c| c.required(leaf)),
            Self::Any(children) if !children.is_empty() => {
                let mut all = Vec::new();
                for child in children {
                    all.extend(child.required(leaf)?);
                }
                Some(all)
            }
            other => leaf(other).map(|value| vec![value]),
        }
    }
}

fn compile_list(list: &v1::MatcherList) -> Result<Vec<Matcher>, MatcherError> {
    list.matchers.iter().map(Matcher::compile).collect()
}

fn regex(pattern: &str) -> Result<Regex, MatcherError> {
    Regex::new(pattern).map_err(|source| MatcherError::Regex {
        pattern: pattern.to_owned(),
        source,
    })
}

fn header_name(name: &str) -> Result<HeaderName, MatcherError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| MatcherError::HeaderName(name.to_owned()))
}

fn client_ip(value: &str) -> Result<IpNet, MatcherError> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| MatcherError::ClientIp(value.to_owned()))
}

/// The host a router compares: lower-cased, without port, brackets or a
/// trailing dot. Borrowed when the input already is.
pub(crate) fn canonical_host(authority: &str) -> Cow<'_, str> {
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        // `[::1]:8080` -> `::1`
        bracketed.split(']').next().unwrap_or(bracketed)
    } else {
        match authority.rsplit_once(':') {
            // One colon: `host:port`. More would be a bare IPv6 address.
            Some((host, _)) if !host.contains(':') => host,
            _ => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Values of `key` in a raw query string, decoded as Go's `url.ParseQuery`
/// does (`+` is a space, percent-escapes decoded).
fn query_values<'a>(query: Option<&'a str>, key: &'a str) -> impl Iterator<Item = Cow<'a, str>> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty())
        .filter_map(move |pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_component(k) == key).then(|| decode_query_component(v))
        })
}

fn decode_query_component(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::v1::{HeaderMatch, MatcherList, QueryMatch};

    fn leaf(kind: Kind) -> v1::Matcher {
        v1::Matcher { kind: Some(kind) }
    }

    fn all(children: Vec<v1::Matcher>) -> v1::Matcher {
        leaf(Kind::All(MatcherList { matchers: children }))
    }

    fn any(children: Vec<v1::Matcher>) -> v1::Matcher {
        leaf(Kind::Any(MatcherList { matchers: children }))
    }

    use http::HeaderMap;

    struct Req {
        host: &'static str,
        path: &'static str,
        method: Method,
        headers: HeaderMap,
        query: Option<&'static str>,
        ip: IpAddr,
    }

    impl Req {
        fn new(host: &'static str, path: &'static str) -> Self {
            Self {
                host,
                path,
                method: Method::GET,
                headers: HeaderMap::new(),
                query: None,
                ip: "10.0.0.1".parse().unwrap(),
            }
        }

        fn matches(&self, m: &v1::Matcher) -> bool {
            let view = RequestView {
                host: self.host,
                path: self.path,
                method: &self.method,
                headers: &self.headers,
                query: self.query,
                client_ip: self.ip,
            };
            Matcher::compile(m).unwrap().matches(&view)
        }
    }

    #[test]
    fn canonical_host_strips_port_and_case() {
        assert_eq!(canonical_host("Example.COM:8080"), "example.com");
        assert_eq!(canonical_host("example.com"), "example.com");
        assert_eq!(canonical_host("example.com."), "example.com");
        assert_eq!(canonical_host("[::1]:80"), "::1");
        assert_eq!(canonical_host("::1"), "::1");
        assert!(matches!(canonical_host("a.b:1"), Cow::Borrowed("a.b")));
    }

    #[test]
    fn host_and_path_matchers() {
        let req = Req::new("api.example.com", "/apiv2/x");
        assert!(req.matches(&leaf(Kind::Host("api.example.com".into()))));
        assert!(req.matches(&leaf(Kind::Host("API.example.com".into()))));
        assert!(!req.matches(&leaf(Kind::Host("example.com".into()))));
        assert!(req.matches(&leaf(Kind::PathPrefix("/api".into()))));
        assert!(!req.matches(&leaf(Kind::Path("/apiv2".into()))));
        assert!(req.matches(&leaf(Kind::HostRegexp(r"^[a-z]+\.example\.com$".into()))));
        assert!(req.matches(&leaf(Kind::PathRegexp(r"^/api(v\d)?/".into()))));
        let not = leaf(Kind::Not(Box::new(leaf(Kind::PathPrefix("/api".into())))));
        assert!(!req.matches(&not));
    }

    #[test]
    fn method_header_query_client_ip() {
        let mut req = Req::new("h", "/");
        req.method = Method::POST;
        req.headers.insert("x-env", "prod".parse().unwrap());
        req.headers.append("x-env", "blue".parse().unwrap());
        req.query = Some("a=1&b=x+y&c&d=%41");
        assert!(req.matches(&leaf(Kind::Method("POST".into()))));
        assert!(!req.matches(&leaf(Kind::Method("GET".into()))));
        let header = |name: &str, value: &str| HeaderMatch {
            name: name.into(),
            value: value.into(),
        };
        assert!(req.matches(&leaf(Kind::Header(header("X-Env", "blue")))));
        assert!(!req.matches(&leaf(Kind::Header(header("X-Env", "green")))));
        assert!(req.matches(&leaf(Kind::HeaderRegexp(header("x-env", "^pr")))));
        let query = |key: &str, value: Option<&str>| QueryMatch {
            key: key.into(),
            value: value.map(Into::into),
        };
        assert!(req.matches(&leaf(Kind::Query(query("c", None)))));
        assert!(req.matches(&leaf(Kind::Query(query("b", Some("x y"))))));
        assert!(req.matches(&leaf(Kind::Query(query("d", Some("A"))))));
        assert!(!req.matches(&leaf(Kind::Query(query("a", Some("2"))))));
        assert!(!req.matches(&leaf(Kind::Query(query("z", None)))));
        assert!(req.matches(&leaf(Kind::QueryRegexp(query("a", Some("^[0-9]+$"))))));
        assert!(req.matches(&leaf(Kind::ClientIp("10.0.0.0/8".into()))));
        assert!(req.matches(&leaf(Kind::ClientIp("10.0.0.1".into()))));
        assert!(!req.matches(&leaf(Kind::ClientIp("192.168.0.0/16".into()))));
    }

    #[test]
    fn invalid_rules_are_errors() {
        assert!(matches!(
            Matcher::compile(&leaf(Kind::PathRegexp("(".into()))),
            Err(MatcherError::Regex { .. })
        ));
        assert!(matches!(
            Matcher::compile(&leaf(Kind::ClientIp("nope".into()))),
            Err(MatcherError::ClientIp(_))
        ));
        assert!(matches!(
            Matcher::compile(&v1::Matcher { kind: None }),
            Err(MatcherError::Empty)
        ));
    }

    #[test]
    fn required_hosts_and_prefixes() {
        let host = |h: &str| leaf(Kind::Host(h.into()));
        let prefix = |p: &str| leaf(Kind::PathPrefix(p.into()));
        let m = Matcher::compile(&all(vec![host("a"), prefix("/x")])).unwrap();
        assert_eq!(m.required_hosts(), Some(vec!["a"]));
        assert_eq!(m.required_path_prefixes(), Some(vec!["/x"]));
        let m = Matcher::compile(&any(vec![host("a"), host("b")])).unwrap();
        assert_eq!(m.required_hosts(), Some(vec!["a", "b"]));
        let m = Matcher::compile(&any(vec![host("a"), prefix("/x")])).unwrap();
        assert_eq!(m.required_hosts(), None);
        assert_eq!(m.required_path_prefixes(), None);
        let m = Matcher::compile(&leaf(Kind::Not(Box::new(host("a"))))).unwrap();
        assert_eq!(m.required_hosts(), None);
    }
}
