//! `basicAuth`, `digestAuth` and `forwardAuth`.
//!
//! User lists are read now, from `usersFile` (blank lines and `#` comments
//! skipped) then `users`; as in Traefik, a user listed twice keeps the last
//! entry, so `users` overrides the file. Errors show user names and hash
//! schemes, never hashes.

use std::collections::BTreeMap;

use sluice_proto::v1 as pb;

use super::{MiddlewareError, check_header_name, check_header_names, check_regex};
use crate::dynamic::{BasicAuthConfig, ClientTlsConfig, DigestAuthConfig, ForwardAuthConfig};

/// Realm of the authentication challenge when none is set.
const DEFAULT_REALM: &str = "traefik";

/// Hash prefixes Sluice can verify, as `htpasswd` writes them.
const BASIC_SCHEMES: [&str; 8] = [
    "$apr1$", "$1$", "$2y$", "$2a$", "$2b$", "{SHA}", "$5$", "$6$",
];

pub(super) fn basic_auth(config: &BasicAuthConfig) -> Result<pb::BasicAuth, MiddlewareError> {
    let mut users = BTreeMap::new();
    for entry in user_entries("basicAuth", &config.users, &config.users_file)? {
        let mut fields = entry.line.split(':');
        let (user, hash) = match (fields.next(), fields.next(), fields.next()) {
            (Some(user), Some(hash), None) if !user.is_empty() && !hash.is_empty() => (user, hash),
            _ => return Err(entry.error(entry.user(), "expected `user:hash`")),
        };
        match BASIC_SCHEMES
            .iter()
            .find(|scheme| hash.starts_with(*scheme))
        {
            Some(scheme) if hash.len() > scheme.len() => {}
            Some(scheme) => {
                return Err(entry.error(format!("{user}:{scheme}"), "the hash is empty"));
            }
            None => {
                return Err(entry.error(
                    format!("{user}:{}…", scheme_of(hash)),
                    "unsupported hash scheme \
                     (supported: $apr1$, $1$, $2y$/$2a$/$2b$, {SHA}, $5$, $6$)",
                ));
            }
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(pb::BasicAuth {
        users: users
            .into_iter()
            .map(|(user, hash)| pb::HtpasswdUser { user, hash })
            .collect(),
        realm: realm("basicAuth", &config.realm)?,
        header_field: header_field("basicAuth", &config.header_field)?,
        remove_header: config.remove_header,
    })
}

pub(super) fn digest_auth(config: &DigestAuthConfig) -> Result<pb::DigestAuth, MiddlewareError> {
    // Keyed by user and realm, as Traefik keys its digest secrets.
    let mut users = BTreeMap::new();
    for entry in user_entries("digestAuth", &config.users, &config.users_file)? {
        let mut fields = entry.line.split(':');
        let (user, realm, ha1) = match (fields.next(), fields.next(), fields.next(), fields.next())
        {
            (Some(user), Some(realm), Some(ha1), None) if !user.is_empty() => (user, realm, ha1),
            _ => return Err(entry.error(entry.user(), "expected `user:realm:ha1`")),
        };
        if ha1.len() != 32 || !ha1.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(entry.error(
                format!("{user}:{realm}"),
                "the hash must be 32 hexadecimal digits (MD5 of `user:realm:password`)",
            ));
        }
        users.insert(
            (user.to_owned(), realm.to_owned()),
            ha1.to_ascii_lowercase(),
        );
    }
    Ok(pb::DigestAuth {
        users: users
            .into_iter()
            .map(|((user, realm), ha1)| pb::DigestUser { user, realm, ha1 })
            .collect(),
        realm: realm("digestAuth", &config.realm)?,
        header_field: header_field("digestAuth", &config.header_field)?,
        remove_header: config.remove_header,
    })
}

/// One line of a user list, with the option that names it in errors.
struct UserEntry {
    option: String,
    line: String,
}

impl UserEntry {
    /// The user name: the text before the first `:`, which is never secret.
    fn user(&self) -> &str {
        self.line.split(':').next().unwrap_or_default()
    }

    fn error(&self, shown: impl ToString, reason: &str) -> MiddlewareError {
        MiddlewareError::value(&self.option, shown, reason)
    }
}

/// The lines of `usersFile`, then `users`.
fn user_entries(
    middleware: &str,
    users: &[String],
    users_file: &str,
) -> Result<Vec<UserEntry>, MiddlewareError> {
    let mut entries = Vec::new();
    if !users_file.is_empty() {
        let text = std::fs::read_to_string(users_file).map_err(|source| MiddlewareError::File {
            option: format!("{middleware}.usersFile"),
            path: users_file.to_owned(),
            source,
        })?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                entries.push(UserEntry {
                    option: format!("{middleware}.usersFile `{users_file}` line {}", index + 1),
                    line: line.to_owned(),
                });
            }
        }
    }
    entries.extend(users.iter().enumerate().map(|(index, line)| UserEntry {
        option: format!("{middleware}.users[{index}]"),
        line: line.clone(),
    }));
    Ok(entries)
}

/// The scheme marker of an unrecognised hash (`{MD4}`, `$9$`), or nothing
/// when the hash does not look like one: it may be a plain-text password.
fn scheme_of(hash: &str) -> &str {
    let end = match hash.as_bytes().first() {
        Some(b'{') => hash.find('}'),
        Some(b'$') => hash[1..].find('$').map(|end| end + 1),
        _ => None,
    };
    match end {
        Some(end) if end < 12 => &hash[..=end],
        _ => "",
    }
}

fn realm(middleware: &str, realm: &str) -> Result<String, MiddlewareError> {
    if realm.is_empty() {
        return Ok(DEFAULT_REALM.to_owned());
    }
    // The realm is sent as a quoted string in `WWW-Authenticate`.
    if realm.contains(['"', '\\', '\r', '\n', '\0']) {
        return Err(MiddlewareError::value(
            format!("{middleware}.realm"),
            realm.escape_debug(),
            "cannot contain quotes, backslashes or line breaks",
        ));
    }
    Ok(realm.to_owned())
}

fn header_field(middleware: &str, header: &str) -> Result<String, MiddlewareError> {
    if !header.is_empty() {
        check_header_name(format!("{middleware}.headerField"), header)?;
    }
    Ok(header.to_owned())
}

pub(super) fn forward_auth(config: &ForwardAuthConfig) -> Result<pb::ForwardAuth, MiddlewareError> {
    if config.address.is_empty() {
        return Err(MiddlewareError::option("forwardAuth.address", "required"));
    }
    if !is_http_url(&config.address) {
        return Err(MiddlewareError::value(
            "forwardAuth.address",
            &config.address,
            "expected an absolute http:// or https:// URL",
        ));
    }
    check_header_names(
        "forwardAuth.authResponseHeaders",
        &config.auth_response_headers,
    )?;
    check_header_names(
        "forwardAuth.authRequestHeaders",
        &config.auth_request_headers,
    )?;
    if !config.auth_response_headers_regex.is_empty() {
        check_regex(
            "forwardAuth.authResponseHeadersRegex",
            &config.auth_response_headers_regex,
        )?;
    }
    let max_body_size = config.max_body_size.unwrap_or(-1);
    if max_body_size < -1 {
        return Err(MiddlewareError::value(
            "forwardAuth.maxBodySize",
            max_body_size,
            "must be -1 (no limit) or a number of bytes",
        ));
    }
    Ok(pb::ForwardAuth {
        address: config.address.clone(),
        trust_forward_header: config.trust_forward_header,
        auth_response_headers: config.auth_response_headers.clone(),
        auth_response_headers_regex: config.auth_response_headers_regex.clone(),
        auth_request_headers: config.auth_request_headers.clone(),
        add_auth_cookies_to_response: config.add_auth_cookies_to_response.clone(),
        preserve_request_method: config.preserve_request_method,
        header_field: header_field("forwardAuth", &config.header_field)?,
        forward_body: config.forward_body,
        max_body_size,
        preserve_location_header: config.preserve_location_header,
        tls: config.tls.as_ref().map(client_tls).transpose()?,
    })
}

/// `http://` or `https://`, then a non-empty authority, and no whitespace.
fn is_http_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `caOptional` is accepted and, as in Traefik v3, has no effect.
fn client_tls(config: &ClientTlsConfig) -> Result<pb::ClientTls, MiddlewareError> {
    if config.cert.is_empty() != config.key.is_empty() {
        return Err(MiddlewareError::option(
            "forwardAuth.tls",
            "cert and key must be set together",
        ));
    }
    Ok(pb::ClientTls {
        ca_pem: pem("forwardAuth.tls.ca", &config.ca)?,
        cert_pem: pem("forwardAuth.tls.cert", &config.cert)?,
        key_pem: pem("forwardAuth.tls.key", &config.key)?,
        insecure_skip_verify: config.insecure_skip_verify,
    })
}

/// Inline PEM (the value contains `-----BEGIN`) or the path of a PEM file.
fn pem(option: &str, value: &str) -> Result<String, MiddlewareError> {
    if value.is_empty() || value.contains("-----BEGIN") {
        return Ok(value.to_owned());
    }
    let text = std::fs::read_to_string(value).map_err(|source| MiddlewareError::File {
        option: option.to_owned(),
        path: value.to_owned(),
        source,
    })?;
    if !text.contains("-----BEGIN") {
        return Err(MiddlewareError::value(
            option,
            value,
            "the file holds no PEM data",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::tests::{compile_yaml, error_yaml};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    const APR1: &str = "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";
    const BCRYPT: &str = "$2y$05$YwjDhRwtcoKeq6OMqQvZWuu7pqyPmgAfsbhTu3UPSUYSjJxVnpTbi";
    const HA1: &str = "2b5c9b4e7a4dbdfd3c6b7cd7b5ed2b2e";

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    }

    fn basic(yaml: &str) -> pb::BasicAuth {
        match compile_yaml(yaml).unwrap() {
            Kind::BasicAuth(auth) => auth,
            other => panic!("not basic auth: {other:?}"),
        }
    }

    fn user(user: &str, hash: &str) -> pb::HtpasswdUser {
        pb::HtpasswdUser {
            user: user.to_owned(),
            hash: hash.to_owned(),
        }
    }

    #[test]
    fn basic_auth_maps_users_and_defaults_the_realm() {
        let yaml = format!(
            "basicAuth: {{users: ['test:{APR1}', 'test2:{BCRYPT}', \
             'sha:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'md5:$1$salt$hash', 'sha2:$5$salt$hash', \
             'sha5:$6$salt$hash', 'a:$2a$05$x', 'b:$2b$05$x'], \
             headerField: X-WebAuth-User, removeHeader: true}}"
        );
        let auth = basic(&yaml);
        assert_eq!(
            auth,
            pb::BasicAuth {
                users: vec![
                    user("a", "$2a$05$x"),
                    user("b", "$2b$05$x"),
                    user("md5", "$1$salt$hash"),
                    user("sha", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="),
                    user("sha2", "$5$salt$hash"),
                    user("sha5", "$6$salt$hash"),
                    user("test", APR1),
                    user("test2", BCRYPT),
                ],
                realm: "traefik".to_owned(),
                header_field: "X-WebAuth-User".to_owned(),
                remove_header: true,
            }
        );
        assert_eq!(
            basic(&format!(
                "basicAuth: {{users: ['u:{APR1}'], realm: MyRealm}}"
            ))
            .realm,
            "MyRealm"
        );
    }

    #[test]
    fn basic_auth_reads_the_users_file_and_users_override_it() {
        let users_file = file(&format!(
            "# admins\n\nalice:{APR1}\r\n  bob:{BCRYPT}  \n#carol:{APR1}\n"
        ));
        let yaml = format!(
            "basicAuth: {{usersFile: '{}', users: ['bob:{APR1}']}}",
            users_file.path().display()
        );
        assert_eq!(
            basic(&yaml).users,
            vec![user("alice", APR1), user("bob", APR1)]
        );
        // Within one list too, the last entry for a user wins.
        let yaml = format!("basicAuth: {{users: ['bob:{APR1}', 'bob:{BCRYPT}']}}");
        assert_eq!(basic(&yaml).users, vec![user("bob", BCRYPT)]);
    }

    #[test]
    fn basic_auth_errors_name_the_entry_but_never_the_hash() {
        assert_eq!(
            error_yaml(&format!("basicAuth: {{users: ['alice:{APR1}', bob]}}")),
            "basicAuth.users[1] `bob`: expected `user:hash`"
        );
        assert_eq!(
            error_yaml(&format!("basicAuth: {{users: ['bob:{APR1}:extra']}}")),
            "basicAuth.users[0] `bob`: expected `user:hash`"
        );
        assert_eq!(
            error_yaml("basicAuth: {users: ['alice:{MD4}0123456789abcdef']}"),
            "basicAuth.users[0] `alice:{MD4}…`: unsupported hash scheme \
             (supported: $apr1$, $1$, $2y$/$2a$/$2b$, {SHA}, $5$, $6$)"
        );
        let plain = error_yaml("basicAuth: {users: ['alice:hunter2']}");
        assert!(
            plain.starts_with("basicAuth.users[0] `alice:…`: unsupported hash scheme"),
            "{plain}"
        );
        assert!(!plain.contains("hunter2"), "{plain}");
        assert_eq!(
            error_yaml("basicAuth: {users: ['alice:$apr1$']}"),
            "basicAuth.users[0] `alice:$apr1$`: the hash is empty"
        );

        let users_file = file(&format!("alice:{APR1}\n# comment\nbob:$9$secretsecret\n"));
        let path = users_file.path().display().to_string();
        assert_eq!(
            error_yaml(&format!("basicAuth: {{usersFile: '{path}'}}")),
            format!(
                "basicAuth.usersFile `{path}` line 3 `bob:$9$…`: unsupported hash scheme \
                 (supported: $apr1$, $1$, $2y$/$2a$/$2b$, {{SHA}}, $5$, $6$)"
            )
        );

        let missing = error_yaml("basicAuth: {usersFile: /nonexistent/sluice-users}");
        assert!(
            missing.starts_with("basicAuth.usersFile `/nonexistent/sluice-users`: "),
            "{missing}"
        );
        assert!(missing.contains("No such file"), "{missing}");
        assert_eq!(
            error_yaml(&format!(
                "basicAuth: {{users: ['u:{APR1}'], realm: 'a\"b'}}"
            )),
            "basicAuth.realm `a\\\"b`: cannot contain quotes, backslashes or line breaks"
        );
        assert_eq!(
            error_yaml(&format!(
                "basicAuth: {{users: ['u:{APR1}'], headerField: 'X User'}}"
            )),
            "basicAuth.headerField `X User`: invalid header name"
        );
    }

    #[test]
    fn digest_auth_maps_users_and_validates_lines() {
        let users_file = file(&format!("test:traefik:{HA1}\n"));
        let yaml = format!(
            "digestAuth: {{usersFile: '{}', users: ['test2:other:{}'], realm: traefik, \
             removeHeader: true}}",
            users_file.path().display(),
            HA1.to_ascii_uppercase()
        );
        assert_eq!(
            compile_yaml(&yaml).unwrap(),
            Kind::DigestAuth(pb::DigestAuth {
                users: vec![
                    pb::DigestUser {
                        user: "test".to_owned(),
                        realm: "traefik".to_owned(),
                        ha1: HA1.to_owned(),
                    },
                    pb::DigestUser {
                        user: "test2".to_owned(),
                        realm: "other".to_owned(),
                        ha1: HA1.to_owned(),
                    },
                ],
                realm: "traefik".to_owned(),
                header_field: String::new(),
                remove_header: true,
            })
        );
        assert_eq!(
            error_yaml(&format!("digestAuth: {{users: ['test:{HA1}']}}")),
            "digestAuth.users[0] `test`: expected `user:realm:ha1`"
        );
        assert_eq!(
            error_yaml("digestAuth: {users: ['test:traefik:not-hex-not-hex-not-hex-not-he']}"),
            "digestAuth.users[0] `test:traefik`: the hash must be 32 hexadecimal digits \
             (MD5 of `user:realm:password`)"
        );
        let missing = error_yaml("digestAuth: {usersFile: /nonexistent/digest}");
        assert!(
            missing.starts_with("digestAuth.usersFile `/nonexistent/digest`: "),
            "{missing}"
        );
    }

    #[test]
    fn forward_auth_maps_options_and_loads_tls_material() {
        let ca = file("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let key_pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        let yaml = format!(
            r#"
forwardAuth:
  address: https://auth.example.com/verify?x=1
  trustForwardHeader: true
  authResponseHeaders: [X-Auth-User, X-Secret]
  authResponseHeadersRegex: ^X-
  authRequestHeaders: [Accept, X-CustomHeader]
  headerField: X-Auth-User
  forwardBody: true
  maxBodySize: 1000
  preserveLocationHeader: true
  tls:
    ca: {ca}
    cert: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    key: {key:?}
    insecureSkipVerify: true
    caOptional: true
"#,
            ca = ca.path().display(),
            key = key_pem,
        );
        assert_eq!(
            compile_yaml(&yaml).unwrap(),
            Kind::ForwardAuth(pb::ForwardAuth {
                address: "https://auth.example.com/verify?x=1".to_owned(),
                trust_forward_header: true,
                auth_response_headers: vec!["X-Auth-User".to_owned(), "X-Secret".to_owned()],
                auth_response_headers_regex: "^X-".to_owned(),
                auth_request_headers: vec!["Accept".to_owned(), "X-CustomHeader".to_owned()],
                add_auth_cookies_to_response: Vec::new(),
                preserve_request_method: false,
                header_field: "X-Auth-User".to_owned(),
                forward_body: true,
                max_body_size: 1000,
                preserve_location_header: true,
                tls: Some(pb::ClientTls {
                    ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                        .to_owned(),
                    cert_pem: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
                        .to_owned(),
                    key_pem: key_pem.to_owned(),
                    insecure_skip_verify: true,
                }),
            })
        );
        let Kind::ForwardAuth(minimal) =
            compile_yaml("forwardAuth: {address: 'http://auth:4181'}").unwrap()
        else {
            panic!("not forward auth");
        };
        assert_eq!((minimal.max_body_size, minimal.tls), (-1, None));
    }

    #[test]
    fn forward_auth_errors() {
        assert_eq!(
            error_yaml("forwardAuth: {}"),
            "forwardAuth.address: required"
        );
        for address in [
            "auth.example.com/verify",
            "ftp://auth",
            "http://",
            "http:// auth/x",
        ] {
            assert_eq!(
                error_yaml(&format!("forwardAuth: {{address: '{address}'}}")),
                format!(
                    "forwardAuth.address `{address}`: expected an absolute http:// or https:// URL"
                )
            );
        }
        let with =
            |options: &str| error_yaml(&format!("forwardAuth: {{address: 'http://a', {options}}}"));
        assert_eq!(
            with("authResponseHeadersRegex: '^X-('"),
            "forwardAuth.authResponseHeadersRegex `^X-(`: unclosed group"
        );
        assert_eq!(
            with("authResponseHeaders: ['X Bad']"),
            "forwardAuth.authResponseHeaders[0] `X Bad`: invalid header name"
        );
        assert_eq!(
            with("authRequestHeaders: [Ok, '']"),
            "forwardAuth.authRequestHeaders[1] ``: invalid header name"
        );
        assert_eq!(
            with("maxBodySize: -2"),
            "forwardAuth.maxBodySize `-2`: must be -1 (no limit) or a number of bytes"
        );
        assert_eq!(
            with("tls: {cert: /c.pem}"),
            "forwardAuth.tls: cert and key must be set together"
        );
        let missing = with("tls: {ca: /nonexistent/ca.pem}");
        assert!(
            missing.starts_with("forwardAuth.tls.ca `/nonexistent/ca.pem`: "),
            "{missing}"
        );
        let not_pem = file("not a certificate");
        let path = not_pem.path().display().to_string();
        assert_eq!(
            with(&format!("tls: {{ca: '{path}'}}")),
            format!("forwardAuth.tls.ca `{path}`: the file holds no PEM data")
        );
    }

    #[test]
    fn scheme_markers_are_short_and_never_plain_passwords() {
        assert_eq!(scheme_of("{MD4}abc"), "{MD4}");
        assert_eq!(scheme_of("$9$abc$def"), "$9$");
        assert_eq!(scheme_of("hunter2"), "");
        assert_eq!(scheme_of("$averylongsecretpassword$"), "");
        assert_eq!(scheme_of("{"), "");
        assert_eq!(scheme_of(""), "");
    }
}
