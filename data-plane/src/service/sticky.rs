//! Sticky sessions (`sticky.cookie` of `loadBalancer` and `weighted`
//! services), as Traefik v3 keeps them: a cookie names the target (server or
//! child service) that answered the client's first request, and later
//! requests carrying it go to the same target while it can take traffic.
//!
//! The cookie value is a hash, never a backend address: the first 16 hex
//! digits of the SHA-256 of the target's name, where a server's name is the
//! FNV-1a 64 hash (hex) of its URL and a child service's name is its
//! qualified name — Traefik v3's scheme, so a client stuck to a server by
//! Traefik stays on it behind Sluice. Without a configured name the cookie
//! is called `_` followed by 5 hex digits of a SHA-1 of the service name, as
//! Traefik does.
//!
//! Everything is computed when the runtime is built: the request path parses
//! one cookie and binary-searches a sorted table; a target that has to be
//! (re)assigned costs one ready-made `Set-Cookie` header value.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sluice_proto::v1;

/// The sticky cookie of one balancer.
#[derive(Debug)]
pub(crate) struct Sticky {
    /// Cookie name.
    name: Box<str>,
    /// `(cookie value, target index)`, sorted by value.
    index: Box<[(u64, usize)]>,
    /// The `Set-Cookie` value that sticks a client to each target.
    set_cookie: Box<[HeaderValue]>,
}

impl Sticky {
    /// The cookie of service `service` configured by `config`, over targets
    /// named `targets` (see [`server_name`]), in the balancer's order.
    pub(crate) fn new<T: AsRef<[u8]>>(
        service: &str,
        config: &v1::StickyCookie,
        targets: impl IntoIterator<Item = T>,
    ) -> Self {
        let name = cookie_name(&config.name, service);
        let attributes = Attributes::new(service, config);
        let mut index = Vec::new();
        let mut set_cookie = Vec::new();
        for (i, target) in targets.into_iter().enumerate() {
            let value = cookie_value(target.as_ref());
            index.push((value, i));
            let header = format!("{name}={value:016x}{attributes}");
            set_cookie.push(
                HeaderValue::from_str(&header)
                    .expect("cookie names, values and attributes are sanitised to visible ASCII"),
            );
        }
        index.sort_unstable();
        Self {
            name: name.into_boxed_str(),
            index: index.into_boxed_slice(),
            set_cookie: set_cookie.into_boxed_slice(),
        }
    }

    /// The target the request's cookie names, if it names one of ours.
    pub(crate) fn target(&self, headers: &HeaderMap) -> Option<usize> {
        let value = request_cookie(headers, &self.name)?;
        let value = parse_value(value)?;
        let at = self.index.partition_point(|&(v, _)| v < value);
        self.index
            .get(at)
            .filter(|&&(v, _)| v == value)
            .map(|&(_, i)| i)
    }

    /// The `Set-Cookie` value that sticks a client to `target`.
    pub(crate) fn set_cookie(&self, target: usize) -> &HeaderValue {
        &self.set_cookie[target]
    }

    /// The cookie's name.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// The name Traefik v3 gives a load balancer's server: the FNV-1a 64 hash
/// of its URL, in hex.
pub(crate) fn server_name(url: &str) -> String {
    format!("{:016x}", fnv1a64(url.as_bytes()))
}

/// The cookie's name: the configured one with characters a cookie name
/// cannot hold replaced by `_`, else one derived from the service name.
pub(crate) fn cookie_name(configured: &str, service: &str) -> String {
    if configured.is_empty() {
        let digest = Sha1::digest(format!("_TRAEFIK_BACKEND_{service}").as_bytes());
        let mut name = String::from("_");
        name.push_str(&hex(&digest[..3])[..5]);
        return name;
    }
    configured
        .chars()
        .map(|c| match c {
            'a'..='z'
            | 'A'..='Z'
            | '0'..='9'
            | '!'
            | '#'
            | '$'
            | '%'
            | '&'
            | '\''
            | '*'
            | '+'
            | '-'
            | '.'
            | '^'
            | '`'
            | '|'
            | '~' => c,
            _ => '_',
        })
        .collect()
}

/// The cookie value of a target named `name`: the first 8 bytes of its
/// SHA-256 (written as 16 hex digits).
fn cookie_value(name: &[u8]) -> u64 {
    let digest = Sha256::digest(name);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A cookie value as written by [`Sticky::new`]: 16 lower-case hex digits.
fn parse_value(value: &str) -> Option<u64> {
    if value.len() != 16
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(value, 16).ok()
}

/// The value of the first cookie named `name` in the request's `Cookie`
/// headers (Go's `Request.Cookie`: pairs split on `;`, spaces trimmed,
/// surrounding double quotes removed).
fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
        .map(|value| {
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
}

/// The attributes after `name=value`, in the order Go writes them.
struct Attributes(String);

impl Attributes {
    fn new(service: &str, config: &v1::StickyCookie) -> Self {
        let mut out = String::new();
        // An empty path is the default, `/` (the snapshot cannot tell unset
        // from empty). Bytes a path cannot hold are dropped, as Go does.
        let path: String = config
            .path
            .chars()
            .filter(|&c| (' '..'\x7f').contains(&c) && c != ';')
            .collect();
        out.push_str("; Path=");
        out.push_str(if path.is_empty() { "/" } else { &path });
        let domain = config.domain.strip_prefix('.').unwrap_or(&config.domain);
        if !domain.is_empty() {
            if valid_domain(domain) {
                out.push_str("; Domain=");
                out.push_str(domain);
            } else {
                tracing::warn!(
                    service,
                    domain = %config.domain,
                    "sticky.cookie.domain is not a valid cookie domain; the attribute is dropped"
                );
            }
        }
        match config.max_age {
            0 => {}
            age if age < 0 => out.push_str("; Max-Age=0"),
            age => out.push_str(&format!("; Max-Age={age}")),
        }
        if config.http_only {
            out.push_str("; HttpOnly");
        }
        if config.secure {
            out.push_str("; Secure");
        }
        match config.same_site.to_ascii_lowercase().as_str() {
            "none" => out.push_str("; SameSite=None"),
            "lax" => out.push_str("; SameSite=Lax"),
            "strict" => out.push_str("; SameSite=Strict"),
            _ => {}
        }
        Self(out)
    }
}

impl std::fmt::Display for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host name (labels of letters, digits, `-` and `_`, separated by dots)
/// or an IP address, as Go accepts for `Domain`.
fn valid_domain(domain: &str) -> bool {
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    domain.len() <= 255
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(name: &str) -> v1::StickyCookie {
        v1::StickyCookie {
            name: name.into(),
            path: "/".into(),
            ..Default::default()
        }
    }

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn names_are_traefiks() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(server_name("a"), "af63dc4c8601ec8c");
        // `_` and 5 hex digits of SHA-1("_TRAEFIK_BACKEND_" + service).
        let digest = hex(&Sha1::digest(b"_TRAEFIK_BACKEND_app@file"));
        assert_eq!(cookie_name("", "app@file"), format!("_{}", &digest[..5]));
        assert_eq!(cookie_name("", "app@file").len(), 6);
        assert_eq!(cookie_name("my cookie;=", "app@file"), "my_cookie__");
        assert_eq!(cookie_name("Session-1.x", "app@file"), "Session-1.x");
    }

    #[test]
    fn values_hash_the_target_and_find_it_again() {
        let sticky = Sticky::new(
            "app@file",
            &cookie("lb"),
            ["http://10.0.0.1:80", "http://10.0.0.2:80"].map(server_name),
        );
        let first = sticky.set_cookie(0).to_str().unwrap().to_owned();
        let value = first
            .strip_prefix("lb=")
            .and_then(|rest| rest.split(';').next())
            .unwrap();
        assert_eq!(value.len(), 16);
        let expected = hex(&Sha256::digest(
            server_name("http://10.0.0.1:80").as_bytes(),
        ));
        assert_eq!(value, &expected[..16]);
        assert!(!first.contains("10.0.0.1"), "{first}");

        assert_eq!(sticky.target(&headers(&[&format!("lb={value}")])), Some(0));
        // Among other cookies, in another header line, quoted.
        let second = sticky.set_cookie(1).to_str().unwrap();
        let other = &second[3..19];
        assert_eq!(
            sticky.target(&headers(&["a=b", &format!("x=1; lb=\"{other}\"; y=2")])),
            Some(1)
        );
        // Unknown, malformed, another cookie's.
        assert_eq!(sticky.target(&headers(&["lb=0123456789abcdef"])), None);
        assert_eq!(sticky.target(&headers(&["lb=http://10.0.0.1:80"])), None);
        assert_eq!(sticky.target(&headers(&[&format!("other={value}")])), None);
        assert_eq!(sticky.target(&HeaderMap::new()), None);
    }

    #[test]
    fn attributes_as_configured() {
        let config = v1::StickyCookie {
            name: "s".into(),
            secure: true,
            http_only: true,
            same_site: "Strict".into(),
            max_age: 3600,
            path: "/app".into(),
            domain: ".example.com".into(),
        };
        let sticky = Sticky::new("app@file", &config, ["a"]);
        let header = sticky.set_cookie(0).to_str().unwrap();
        let attributes = header.split_once(';').unwrap().1;
        assert_eq!(
            attributes,
            " Path=/app; Domain=example.com; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
        );

        let defaults = Sticky::new("app@file", &v1::StickyCookie::default(), ["a"]);
        let header = defaults.set_cookie(0).to_str().unwrap();
        assert!(header.starts_with(defaults.name()), "{header}");
        assert!(header.ends_with("; Path=/"), "{header}");

        let odd = v1::StickyCookie {
            max_age: -1,
            same_site: "none".into(),
            domain: "bad domain".into(),
            path: "/a;b\u{7}".into(),
            ..Default::default()
        };
        let header = Sticky::new("app@file", &odd, ["a"]).set_cookie(0).clone();
        let header = header.to_str().unwrap();
        assert!(
            header.ends_with("; Path=/ab; Max-Age=0; SameSite=None"),
            "{header}"
        );
    }
}
