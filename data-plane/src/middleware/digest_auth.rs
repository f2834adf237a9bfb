//! `digestAuth`: HTTP Digest authentication (RFC 2617, MD5, `qop=auth`)
//! against `user:realm:HA1` users, as Traefik's (goauth) does it.
//!
//! - The challenge is `401` with `WWW-Authenticate: Digest realm="..",
//!   nonce="..", opaque="..", algorithm=MD5, qop="auth"` and the body
//!   `401 Unauthorized\n`; each challenge issues a fresh nonce.
//! - An answer is accepted when its opaque, algorithm (MD5 when absent) and
//!   qop match, its `uri` is the request target (or a path prefix of it, as
//!   goauth allows), its response is right (compared in constant time), its
//!   nonce was issued here and its nonce count grows.
//! - Only users whose realm is the middleware's can log in; an unknown user
//!   costs the same hashing as a known one.
//!
//! Issued nonces live in the shared middleware state (keyed by this
//! middleware, its realm and users), so a snapshot swap does not log
//! clients out; at most about 1000 are kept, the least recently used
//! dropped first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;
use sluice_proto::v1;
use subtle::ConstantTimeEq;

use super::{BuildContext, MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// Realm when the snapshot leaves it empty.
const DEFAULT_REALM: &str = "traefik";
/// Nonces kept before the oldest are dropped (goauth's cache size).
const NONCES: usize = 1000;
/// Nonces above [`NONCES`] tolerated before purging (goauth's tolerance).
const TOLERANCE: usize = 100;

/// A built `digestAuth` middleware.
#[derive(Debug)]
pub(crate) struct DigestAuth {
    realm: String,
    /// HA1 (lower-case hex) by user, for users of this realm.
    users: HashMap<String, String>,
    header_field: Option<HeaderName>,
    remove_header: bool,
    sessions: Arc<Sessions>,
}

/// Nonces issued by one middleware, and the opaque value of its challenges.
#[derive(Debug)]
pub(crate) struct Sessions {
    opaque: String,
    nonces: DashMap<String, Nonce>,
}

#[derive(Debug, Clone, Copy)]
struct Nonce {
    /// Highest nonce count seen (0: none yet).
    count: u64,
    last_seen: Instant,
}

impl DigestAuth {
    /// From the snapshot.
    pub(crate) fn new(
        config: &v1::DigestAuth,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        let header_field = match config.header_field.as_str() {
            "" => None,
            name => Some(MiddlewareBuildError::header_name(
                "digestAuth.headerField",
                name,
            )?),
        };
        let realm = match config.realm.as_str() {
            "" => DEFAULT_REALM.to_owned(),
            realm => realm.to_owned(),
        };
        let mut fingerprint = Sha256::new();
        fingerprint.update(realm.as_bytes());
        let mut users = HashMap::new();
        for user in &config.users {
            if user.realm != realm {
                continue;
            }
            if header_field.is_some() && HeaderValue::from_str(&user.user).is_err() {
                return Err(MiddlewareBuildError::HeaderValue {
                    option: format!(
                        "digestAuth.headerField (user `{}`)",
                        user.user.escape_debug()
                    ),
                });
            }
            fingerprint.update([0]);
            fingerprint.update(user.user.as_bytes());
            fingerprint.update([0]);
            fingerprint.update(user.ha1.as_bytes());
            users.insert(user.user.clone(), user.ha1.to_ascii_lowercase());
        }
        let sessions = ctx.state("digestAuth", fingerprint.finalize().into(), || Sessions {
            opaque: random_hex(),
            nonces: DashMap::new(),
        });
        Ok(Self {
            realm,
            users,
            header_field,
            remove_header: config.remove_header,
            sessions,
        })
    }

    /// Lets authenticated requests through to `next`, challenges the others.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let Some(user) = self.check(&req) else {
            tracing::debug!(router = ctx.router, peer = %ctx.conn.peer, "digest authentication failed");
            return self.challenge();
        };
        if let Some(field) = &self.header_field
            && let Ok(value) = HeaderValue::from_str(&user)
        {
            req.headers_mut().insert(field.clone(), value);
        }
        if self.remove_header {
            req.headers_mut().remove(AUTHORIZATION);
        }
        ctx.user = Some(user);
        next.run(req, ctx).await
    }

    /// The user a valid `Authorization: Digest` answer authenticates.
    fn check(&self, req: &Request<ProxyBody>) -> Option<String> {
        let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let params = digest_params(header)?;
        let param = |name: &str| params.get(name).map_or("", String::as_str);
        let algorithm = params.get("algorithm").map_or("MD5", String::as_str);
        if param("opaque") != self.sessions.opaque || algorithm != "MD5" || param("qop") != "auth" {
            return None;
        }
        let uri = param("uri");
        let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        if uri != target {
            let path = uri.split(['?', '#']).next().unwrap_or("");
            if !req.uri().path().starts_with(path) {
                return None;
            }
        }
        let user = param("username");
        let known = self.users.get(user);
        let ha1 = known.map_or("", String::as_str);
        let ha2 = md5_hex(&[req.method().as_str(), ":", uri]);
        let expected = md5_hex(&[
            ha1,
            ":",
            param("nonce"),
            ":",
            param("nc"),
            ":",
            param("cnonce"),
            ":",
            "auth",
            ":",
            &ha2,
        ]);
        let response_ok: bool = expected
            .as_bytes()
            .ct_eq(param("response").as_bytes())
            .into();
        if !(response_ok && known.is_some()) {
            return None;
        }
        let count = u64::from_str_radix(param("nc"), 16).ok()?;
        let mut nonce = self.sessions.nonces.get_mut(param("nonce"))?;
        if nonce.count != 0 && nonce.count >= count {
            return None;
        }
        nonce.count = count;
        nonce.last_seen = Instant::now();
        Some(user.to_owned())
    }

    /// A `401` with a fresh nonce.
    fn challenge(&self) -> Response<ProxyBody> {
        self.sessions.purge();
        let nonce = random_hex();
        self.sessions.nonces.insert(
            nonce.clone(),
            Nonce {
                count: 0,
                last_seen: Instant::now(),
            },
        );
        let value = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm, self.sessions.opaque
        );
        let mut response =
            Response::new(ProxyBody::full(Bytes::from_static(b"401 Unauthorized\n")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl Sessions {
    /// Drops the least recently used nonces once there are too many.
    fn purge(&self) {
        if self.nonces.len() <= NONCES + TOLERANCE {
            return;
        }
        let mut ages: Vec<(Instant, String)> = self
            .nonces
            .iter()
            .map(|entry| (entry.value().last_seen, entry.key().clone()))
            .collect();
        ages.sort_unstable();
        for (_, nonce) in ages.into_iter().take(TOLERANCE * 2) {
            self.nonces.remove(&nonce);
        }
    }
}

/// 16 random bytes in hex.
fn random_hex() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex MD5 of the concatenated `parts`.
fn md5_hex(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    format!("{:x}", md5.finalize())
}

/// The parameters of `Digest k=v, k="v"` (goauth's `DigestAuthParams`:
/// comma-separated, quoted strings with escapes, quotes removed).
fn digest_params(header: &str) -> Option<HashMap<String, String>> {
    let (scheme, rest) = header.split_once(' ')?;
    if scheme != "Digest" {
        return None;
    }
    let mut params = HashMap::new();
    for item in split_list(rest.trim()) {
        match item.split_once('=') {
            None => params.insert(item, String::new()),
            Some((key, value)) => {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                params.insert(key.to_owned(), value.to_owned())
            }
        };
    }
    Some(params)
}

/// Items of a comma-separated list whose quoted strings may hold commas and
/// backslash escapes (kept unescaped, as Go's `ParseList` does).
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current).trim().to_owned()),
            _ => current.push(c),
        }
    }
    items.push(current.trim().to_owned());
    items.retain(|item| !item.is_empty());
    items
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        Backend, build_error, config, headers, request, send_with, shared_state, text,
    };
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    /// MD5 of `user:traefik:secret`.
    fn ha1(user: &str, realm: &str, password: &str) -> String {
        md5_hex(&[user, ":", realm, ":", password])
    }

    fn digest_auth(users: &[(&str, &str, &str)], field: &str, remove: bool) -> v1::Middleware {
        config(
            "digest",
            Kind::DigestAuth(v1::DigestAuth {
                users: users
                    .iter()
                    .map(|(user, realm, password)| v1::DigestUser {
                        user: (*user).into(),
                        realm: (*realm).into(),
                        ha1: ha1(user, realm, password),
                    })
                    .collect(),
                realm: String::new(),
                header_field: field.into(),
                remove_header: remove,
            }),
        )
    }

    /// The parameters of a challenge.
    fn challenge(response: &Response<ProxyBody>) -> HashMap<String, String> {
        digest_params(&headers(response)["www-authenticate"]).unwrap()
    }

    /// An answer to `challenge` for `uri`.
    fn answer(
        challenge: &HashMap<String, String>,
        user: &str,
        password: &str,
        uri: &str,
        nc: &str,
    ) -> String {
        let ha1 = ha1(user, "traefik", password);
        let ha2 = md5_hex(&["GET:", uri]);
        let nonce = &challenge["nonce"];
        let response = md5_hex(&[&ha1, ":", nonce, ":", nc, ":", "c0ffee", ":auth:", &ha2]);
        format!(
            "Digest username=\"{user}\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\", response=\"{response}\", \
             opaque=\"{}\"",
            challenge["opaque"]
        )
    }

    fn get(uri: &str, authorization: Option<&str>) -> Request<ProxyBody> {
        let mut req = Request::get(uri);
        if let Some(authorization) = authorization {
            req = req.header("authorization", authorization);
        }
        request(req.body(()).unwrap())
    }

    #[test]
    fn md5_matches_rfc_2617() {
        // RFC 2617 section 3.5.
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let ha2 = md5_hex(&["GET:/dir/index.html"]);
        let response = md5_hex(&[
            &ha1,
            ":dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:",
            &ha2,
        ]);
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[tokio::test]
    async fn challenge_then_answer() {
        let shared = shared_state();
        let middleware = digest_auth(
            &[("bob", "traefik", "secret"), ("eve", "other", "secret")],
            "X-User",
            true,
        );
        let configs = std::slice::from_ref(&middleware);
        let backend = Backend::new();
        let send = |req| send_with(&shared, configs, &backend, "10.0.0.1:1", req);

        let response = send(get("/dir/index.html", None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let params = challenge(&response);
        assert_eq!(params["realm"], "traefik");
        assert_eq!(params["algorithm"], "MD5");
        assert_eq!(params["qop"], "auth");
        assert_eq!(text(response).await, "401 Unauthorized\n");

        let ok = answer(&params, "bob", "secret", "/dir/index.html", "00000001");
        let response = send(get("/dir/index.html", Some(&ok))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = backend.seen().unwrap();
        assert_eq!(seen.headers["x-user"], "bob");
        assert!(!seen.headers.contains_key("authorization"));

        // A replayed nonce count is refused; a higher one is fine, for a
        // path under the answered `uri` too.
        assert_eq!(
            send(get("/dir/index.html", Some(&ok))).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let next = answer(&params, "bob", "secret", "/dir/", "00000002");
        assert_eq!(
            send(get("/dir/index.html", Some(&next))).await.status(),
            StatusCode::OK
        );

        for refused in [
            answer(&params, "bob", "wrong", "/dir/index.html", "00000003"),
            // Not this realm.
            answer(&params, "eve", "secret", "/dir/index.html", "00000003"),
            answer(&params, "nobody", "secret", "/dir/index.html", "00000003"),
            // Another path.
            answer(&params, "bob", "secret", "/other", "00000003"),
            ok.replace(&params["opaque"], "forged"),
            ok.replace(&params["nonce"], "0123"),
        ] {
            let response = send(get("/dir/index.html", Some(&refused))).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{refused}");
        }
    }

    #[test]
    fn params_handle_quotes_and_commas() {
        let params = digest_params(r#"Digest a="x, y", b=z, c="q\"uote", flag"#).unwrap();
        assert_eq!(params["a"], "x, y");
        assert_eq!(params["b"], "z");
        assert_eq!(params["c"], "q\"uote");
        assert_eq!(params["flag"], "");
        assert!(digest_params("Basic abc").is_none());
    }

    #[test]
    fn a_bad_header_field_fails_the_build() {
        assert_eq!(
            build_error(digest_auth(&[], "bad field", false)),
            "middleware `digest@test` (digestAuth): digestAuth.headerField `bad field`: invalid header name"
        );
    }
}
