//! `basicAuth`: HTTP Basic authentication against htpasswd users.
//!
//! As Traefik: without valid credentials the answer is `401` with
//! `WWW-Authenticate: Basic realm="<realm>"` (realm `traefik` by default)
//! and the body `401 Unauthorized\n`; with them, the request goes on, with
//! the user name in `headerField` when set and without `Authorization` when
//! `removeHeader` is set.
//!
//! Verification: an unknown user is checked against another user's hash and
//! rejected, so it costs what a known one does; slow hashes run on the
//! blocking pool, not on the async workers, at most two per core at once
//! across the proxy (a password flood queues for [`SLOW_CHECKS`] rather than
//! taking the whole blocking pool); successful checks are cached
//! ([`CredentialCache`]) so bcrypt is paid once per client, not per request.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use sluice_proto::v1;
use tokio::sync::Semaphore;

use super::credential_cache::{CAPACITY, CredentialCache};
use super::htpasswd::Hash;
use super::{BuildContext, MiddlewareBuildError, Next, RequestContext};
use crate::body::ProxyBody;

/// Slow hash checks (bcrypt, SHA-crypt) running at once, for the whole
/// proxy: two per core.
static SLOW_CHECKS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(Semaphore::new(2 * cores))
});

/// Realm when the snapshot leaves it empty.
const DEFAULT_REALM: &str = "traefik";

/// A built `basicAuth` middleware.
#[derive(Debug)]
pub(crate) struct BasicAuth {
    users: HashMap<String, Arc<Hash>>,
    /// The hash unknown users are checked against (none without users).
    decoy: Option<Arc<Hash>>,
    challenge: HeaderValue,
    header_field: Option<HeaderName>,
    remove_header: bool,
    verified: Arc<CredentialCache>,
}

impl BasicAuth {
    /// From the snapshot; the cache of verified credentials comes from the
    /// shared state, keyed by this middleware and its users.
    pub(crate) fn new(
        config: &v1::BasicAuth,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Self, MiddlewareBuildError> {
        let header_field = match config.header_field.as_str() {
            "" => None,
            name => Some(MiddlewareBuildError::header_name(
                "basicAuth.headerField",
                name,
            )?),
        };
        let mut users = HashMap::new();
        let mut fingerprint = Sha256::new();
        let mut decoy = None;
        for user in &config.users {
            let hash = Arc::new(Hash::parse(&user.hash).map_err(|source| {
                MiddlewareBuildError::Htpasswd {
                    user: user.user.clone(),
                    source,
                }
            })?);
            if header_field.is_some() && HeaderValue::from_str(&user.user).is_err() {
                return Err(MiddlewareBuildError::HeaderValue {
                    option: format!(
                        "basicAuth.headerField (user `{}`)",
                        user.user.escape_debug()
                    ),
                });
            }
            fingerprint.update((user.user.len() as u64).to_be_bytes());
            fingerprint.update(&user.user);
            fingerprint.update((user.hash.len() as u64).to_be_bytes());
            fingerprint.update(&user.hash);
            decoy.get_or_insert_with(|| hash.clone());
            users.insert(user.user.clone(), hash);
        }
        let realm = match config.realm.as_str() {
            "" => DEFAULT_REALM,
            realm => realm,
        };
        let challenge = MiddlewareBuildError::header_value(
            "basicAuth.realm",
            &format!("Basic realm=\"{realm}\""),
        )?;
        let verified = ctx.state("basicAuth", fingerprint.finalize().into(), || {
            CredentialCache::new(CAPACITY)
        });
        Ok(Self {
            users,
            decoy,
            challenge,
            header_field,
            remove_header: config.remove_header,
            verified,
        })
    }

    /// Lets authenticated requests through to `next`, answers 401 otherwise.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let Some((user, password)) = credentials(req.headers()) else {
            return self.unauthorized();
        };
        if !self.authenticate(&user, password).await {
            tracing::debug!(router = ctx.router, peer = %ctx.conn.peer, "basic authentication failed");
            return self.unauthorized();
        }
        // Users that are not header values were refused when building.
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

    /// True when `password` is `user`'s.
    async fn authenticate(&self, user: &str, password: Vec<u8>) -> bool {
        let key = self.verified.key(user.as_bytes(), &password);
        if self.verified.contains(&key) {
            return true;
        }
        let (hash, known) = match (self.users.get(user), &self.decoy) {
            (Some(hash), _) => (hash.clone(), true),
            (None, Some(decoy)) => (decoy.clone(), false),
            (None, None) => return false,
        };
        let matches = if hash.is_slow() {
            // The semaphore is never closed. The permit goes with the check, so
            // a client that leaves does not free it before the check ends.
            let Ok(permit) = SLOW_CHECKS.clone().acquire_owned().await else {
                return false;
            };
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                hash.verify(&password)
            })
            .await
            .unwrap_or(false)
        } else {
            hash.verify(&password)
        };
        let ok = matches && known;
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    /// Traefik's `401`.
    fn unauthorized(&self) -> Response<ProxyBody> {
        let mut response =
            Response::new(ProxyBody::full(Bytes::from_static(b"401 Unauthorized\n")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(WWW_AUTHENTICATE, self.challenge.clone());
        response
    }
}

/// User and password of `Authorization: Basic base64(user:password)` (the
/// scheme in any case, as Go reads it). A user name that is not UTF-8 is
/// kept lossily: it matches no configured user, and still costs a check.
fn credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let decoded = STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8_lossy(&decoded[..colon]).into_owned();
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        Backend, build_error, config, headers, request, send, send_with, shared_state, text,
    };
    use super::*;
    use crate::service::ServiceBuilder;
    use sluice_proto::v1::middleware::Kind;

    /// `htpasswd -nbm myusername secret` (the issue's `htpasswd -c` line shape).
    const MYUSERNAME: &str = "$apr1$zSyPEMHt$5JiuZjw.wlZhca7gaNbgn1";
    /// `htpasswd -nbB -C 5 user secret`.
    const BCRYPT: &str = "$2y$05$IT03vJ5JhPn9veh.OnZdneiwgZNjOyZboMC..UzTmtPYLfNr49w92";
    /// `htpasswd -nbs user secret`.
    const SHA: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

    fn basic_auth(
        users: &[(&str, &str)],
        realm: &str,
        field: &str,
        remove: bool,
    ) -> v1::Middleware {
        config(
            "auth",
            Kind::BasicAuth(v1::BasicAuth {
                users: users
                    .iter()
                    .map(|(user, hash)| v1::HtpasswdUser {
                        user: (*user).into(),
                        hash: (*hash).into(),
                    })
                    .collect(),
                realm: realm.into(),
                header_field: field.into(),
                remove_header: remove,
            }),
        )
    }

    fn with_credentials(user: &str, password: &str) -> Request<ProxyBody> {
        let token = STANDARD.encode(format!("{user}:{password}"));
        request(
            Request::get("/")
                .header("authorization", format!("Basic {token}"))
                .body(())
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_htpasswd_case_from_the_issue() {
        let middleware = basic_auth(&[("myusername", MYUSERNAME)], "", "", false);

        let backend = Backend::new();
        let anonymous = request(Request::get("/").body(()).unwrap());
        let response = send(std::slice::from_ref(&middleware), &backend, anonymous).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response_headers = headers(&response);
        assert_eq!(
            response_headers["www-authenticate"],
            "Basic realm=\"traefik\""
        );
        assert_eq!(response_headers["content-type"], "text/plain");
        assert_eq!(text(response).await, "401 Unauthorized\n");
        assert!(backend.seen().is_none());

        let wrong = with_credentials("myusername", "wrong");
        let response = send(std::slice::from_ref(&middleware), &backend, wrong).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(backend.seen().is_none());

        let right = with_credentials("myusername", "secret");
        let response = send(&[middleware], &backend, right).await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = backend.seen().unwrap();
        assert!(seen.headers.contains_key("authorization"));
        assert_eq!(backend.user().as_deref(), Some("myusername"));
    }

    #[tokio::test]
    async fn header_field_realm_and_remove_header() {
        let middleware = basic_auth(
            &[("user", BCRYPT), ("sha", SHA)],
            "my realm",
            "X-WebAuth-User",
            true,
        );
        let backend = Backend::new();
        let response = send(
            std::slice::from_ref(&middleware),
            &backend,
            with_credentials("user", "secret"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = backend.seen().unwrap();
        assert_eq!(seen.headers["x-webauth-user"], "user");
        assert!(!seen.headers.contains_key("authorization"));

        let response = send(
            std::slice::from_ref(&middleware),
            &backend,
            with_credentials("sha", "secret"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(backend.seen().unwrap().headers["x-webauth-user"], "sha");

        let anonymous = request(Request::get("/").body(()).unwrap());
        let response = send(&[middleware], &backend, anonymous).await;
        assert_eq!(
            headers(&response)["www-authenticate"],
            "Basic realm=\"my realm\""
        );
    }

    #[tokio::test]
    async fn unknown_users_and_malformed_headers_are_refused() {
        let middleware = basic_auth(&[("user", BCRYPT)], "", "", false);
        for req in [
            with_credentials("nobody", "secret"),
            with_credentials("user", ""),
            with_credentials("", "secret"),
            request(
                Request::get("/")
                    .header("authorization", "Basic !!!")
                    .body(())
                    .unwrap(),
            ),
            request(
                Request::get("/")
                    .header("authorization", "Bearer dXNlcjpzZWNyZXQ=")
                    .body(())
                    .unwrap(),
            ),
            request(
                Request::get("/")
                    .header("authorization", "Basic dXNlcnNlY3JldA==")
                    .body(())
                    .unwrap(),
            ),
        ] {
            let response = send(std::slice::from_ref(&middleware), &Backend::new(), req).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // The scheme is case-insensitive.
        let token = STANDARD.encode("user:secret");
        let req = request(
            Request::get("/")
                .header("authorization", format!("bAsIc {token}"))
                .body(())
                .unwrap(),
        );
        assert_eq!(
            send(&[middleware], &Backend::new(), req).await.status(),
            StatusCode::OK
        );
        // Without users, nobody gets in.
        let nobody = basic_auth(&[], "", "", false);
        let response = send(
            &[nobody],
            &Backend::new(),
            with_credentials("user", "secret"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_per_user_list() {
        let shared = shared_state();
        let middleware = basic_auth(&[("user", BCRYPT)], "", "", false);
        let backend = Backend::new();
        let send = |req| {
            send_with(
                &shared,
                std::slice::from_ref(&middleware),
                &backend,
                "10.0.0.1:1",
                req,
            )
        };
        assert_eq!(
            send(with_credentials("user", "secret")).await.status(),
            StatusCode::OK
        );
        // The same runtime build finds the cache in the shared state.
        let mut ctx_used = Vec::new();
        let mut ctx = BuildContext {
            name: "auth@test",
            states: &shared.middlewares,
            used: &mut ctx_used,
            services: &mut ServiceBuilder::new(&[], &shared),
        };
        let Some(Kind::BasicAuth(config)) = &middleware.kind else {
            unreachable!()
        };
        let rebuilt = BasicAuth::new(config, &mut ctx).unwrap();
        let key = rebuilt.verified.key(b"user", b"secret");
        assert!(rebuilt.verified.contains(&key));
        assert!(
            !rebuilt
                .verified
                .contains(&rebuilt.verified.key(b"user", b"wrong"))
        );
        assert_eq!(ctx_used.len(), 1);

        // Another user list gets another cache.
        let mut changed = config.clone();
        changed.users[0].hash = SHA.into();
        let mut ctx = BuildContext {
            name: "auth@test",
            states: &shared.middlewares,
            used: &mut ctx_used,
            services: &mut ServiceBuilder::new(&[], &shared),
        };
        let rebuilt = BasicAuth::new(&changed, &mut ctx).unwrap();
        assert!(
            !rebuilt
                .verified
                .contains(&rebuilt.verified.key(b"user", b"secret"))
        );
    }

    #[test]
    fn bad_hashes_fail_the_build_without_showing_them() {
        assert_eq!(
            build_error(basic_auth(&[("bob", "$apr1$broken")], "", "", false)),
            "middleware `auth@test` (basicAuth): user `bob`: malformed $apr1$ hash"
        );
        assert_eq!(
            build_error(basic_auth(&[("bob", SHA)], "", "bad header", false)),
            "middleware `auth@test` (basicAuth): basicAuth.headerField `bad header`: invalid header name"
        );
    }
}
