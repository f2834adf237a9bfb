//! HTTP middlewares: Traefik v3's middleware types, built from the typed
//! configs of the snapshot (`sluice_proto::v1::Middleware`), one module and
//! one type per middleware.
//!
//! Each type has a constructor from its proto message and one entry point,
//! `call(&self, req, ctx, next) -> Response`, so one shape covers all of them:
//! - request modifiers (path rewrites, request headers) change `req` and
//!   return `next.run(req, ctx).await`;
//! - short-circuits (auth, allow lists, redirects, CORS preflight) answer
//!   without calling `next`;
//! - response modifiers (response headers, content sniffing) change what
//!   `next` returned;
//! - wrappers (retry, circuit breaker, buffering) may call `next` zero, one or
//!   several times: [`Next`] is `Copy`.
//!
//! [`Middlewares`] builds them once per runtime, each name once, and lays out
//! the [`Chain`] of each router: entry point middlewares first, then the
//! router's, `chain` middlewares expanded in place. Building fails closed: a
//! middleware that is missing, invalid or of a type this proxy does not
//! implement fails the runtime build, so a router is never served without
//! its middlewares. State that must survive runtime swaps (verified
//! credentials, digest nonces, rate-limit buckets, in-flight counters,
//! circuit-breaker state) comes from
//! [`MiddlewareStates`](crate::shared::MiddlewareStates) through
//! [`BuildContext::state`], keyed by the [`fingerprint`] of the options it
//! depends on. Middlewares that call a service (`errors`) resolve it while
//! building, through the runtime's [`ServiceBuilder`].

mod add_prefix;
mod basic_auth;
mod breaker_metrics;
mod buffering;
mod chain;
mod circuit_breaker;
mod compress;
mod content_type;
mod credential_cache;
mod digest_auth;
mod errors_page;
mod forward_auth;
mod grpc_web;
mod headers;
mod htpasswd;
mod in_flight_req;
mod ip_allow_list;
mod ip_strategy;
mod pass_tls_client_cert;
#[cfg(test)]
mod proxy_tests;
mod rate_limit;
mod redirect_regex;
mod redirect_scheme;
mod replace_path;
mod replace_path_regex;
mod retry;
mod sniff;
mod source_criterion;
mod strip_prefix;
mod strip_prefix_regex;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod traffic_tests;
mod uri;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use http::{Request, Response};
use sha2::{Digest, Sha256};
use sluice_proto::v1::{self, middleware::Kind};

use crate::body::ProxyBody;
use crate::service::{Service, ServiceBuilder, ServiceError};
use crate::shared::{MiddlewareStates, StateKey};

pub(crate) use chain::{Chain, Next, RequestContext};
pub use htpasswd::HtpasswdError;

/// Why the middlewares of a router or an entry point cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MiddlewareError {
    /// A referenced middleware is not in the snapshot.
    #[error("middleware `{0}` does not exist")]
    NotFound(String),
    /// The middleware has no type.
    #[error("middleware `{0}` has no type")]
    Empty(String),
    /// This proxy version does not implement the middleware's type.
    #[error("middleware `{name}` ({kind}) is not supported by this proxy version")]
    Unsupported {
        /// The middleware's qualified name.
        name: String,
        /// Its Traefik type.
        kind: &'static str,
    },
    /// `chain` middlewares include each other.
    #[error("chain middlewares include each other: {0}")]
    Cycle(String),
    /// The middleware's options cannot be built.
    #[error("middleware `{name}` ({kind})")]
    Build {
        /// The middleware's qualified name.
        name: String,
        /// Its Traefik type.
        kind: &'static str,
        /// Why.
        #[source]
        source: Box<MiddlewareBuildError>,
    },
}

/// Why one middleware cannot be built from its options. The control plane
/// checks the same things; these errors mean a snapshot it did not check.
#[derive(Debug, thiserror::Error)]
pub enum MiddlewareBuildError {
    /// A required option is empty.
    #[error("{0}: required")]
    Required(&'static str),
    /// A regular expression does not compile.
    #[error("{option} `{value}`")]
    Regex {
        /// The option, as Traefik names it.
        option: String,
        /// The expression.
        value: String,
        /// Why.
        #[source]
        source: regex::Error,
    },
    /// An IP or CIDR does not parse.
    #[error("{option} `{value}`: not an IP or a CIDR")]
    Cidr {
        /// The option, as Traefik names it.
        option: String,
        /// The value as written.
        value: String,
    },
    /// A header name is invalid.
    #[error("{option} `{value}`: invalid header name")]
    HeaderName {
        /// The option, as Traefik names it.
        option: String,
        /// The name as written.
        value: String,
    },
    /// A header value is invalid (not shown: it may hold a secret).
    #[error("{option}: invalid header value")]
    HeaderValue {
        /// The option, as Traefik names it.
        option: String,
    },
    /// A status code is not one.
    #[error("{option} `{value}`: not an HTTP status code")]
    Status {
        /// The option, as Traefik names it.
        option: &'static str,
        /// The value.
        value: u32,
    },
    /// An option's value is out of range.
    #[error("{option} `{value}`: {reason}")]
    Invalid {
        /// The option, as Traefik names it.
        option: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A service the middleware calls cannot be built.
    #[error("{option} `{name}`")]
    Service {
        /// The option, as Traefik names it.
        option: &'static str,
        /// The service's qualified name.
        name: String,
        /// Why.
        #[source]
        source: ServiceError,
    },
    /// An option this proxy version cannot honour.
    #[error("{0}: not supported by this proxy version")]
    UnsupportedOption(&'static str),
    /// A user's htpasswd hash is unusable (the hash is never shown).
    #[error("user `{user}`")]
    Htpasswd {
        /// The user.
        user: String,
        /// Why.
        #[source]
        source: HtpasswdError,
    },
}

impl MiddlewareBuildError {
    /// Compiles `value`, an option's regular expression.
    fn regex(option: impl Into<String>, value: &str) -> Result<regex::Regex, Self> {
        regex::Regex::new(value).map_err(|source| Self::Regex {
            option: option.into(),
            value: value.to_owned(),
            source,
        })
    }

    /// Parses `value`, an option's header name.
    fn header_name(option: impl Into<String>, value: &str) -> Result<http::HeaderName, Self> {
        http::HeaderName::from_bytes(value.as_bytes()).map_err(|_| Self::HeaderName {
            option: option.into(),
            value: value.to_owned(),
        })
    }

    /// Parses `value`, an option's header value.
    fn header_value(option: impl Into<String>, value: &str) -> Result<http::HeaderValue, Self> {
        http::HeaderValue::from_str(value).map_err(|_| Self::HeaderValue {
            option: option.into(),
        })
    }
}

/// A fingerprint (SHA-256) of a middleware's options, to key the state
/// that depends on them.
pub(crate) fn fingerprint(config: &impl prost::Message) -> [u8; 32] {
    Sha256::digest(config.encode_to_vec()).into()
}

/// Resolves the services middlewares call, each built once per runtime
/// with the routers' services.
pub(crate) trait Services: std::fmt::Debug {
    /// The service named `name`.
    fn service(&mut self, name: &str) -> Result<Arc<Service>, ServiceError>;
}

impl Services for ServiceBuilder<'_> {
    fn service(&mut self, name: &str) -> Result<Arc<Service>, ServiceError> {
        self.get(name)
    }
}

/// What a constructor may use besides its options.
#[derive(Debug)]
pub(crate) struct BuildContext<'a> {
    /// Qualified name of the middleware being built.
    name: &'a str,
    states: &'a MiddlewareStates,
    used: &'a mut Vec<StateKey>,
    services: &'a mut dyn Services,
}

impl BuildContext<'_> {
    /// The service named `name`, which option `option` references.
    pub(crate) fn service(
        &mut self,
        option: &'static str,
        name: &str,
    ) -> Result<Arc<Service>, MiddlewareBuildError> {
        self.services
            .service(name)
            .map_err(|source| MiddlewareBuildError::Service {
                option,
                name: name.to_owned(),
                source,
            })
    }

    /// The long-lived state of this middleware for options hashing to
    /// `fingerprint`, made by `init` when there is none yet; it survives
    /// runtime swaps as long as a runtime keeps asking for it.
    pub(crate) fn state<T: Any + Send + Sync>(
        &mut self,
        kind: &'static str,
        fingerprint: [u8; 32],
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let key = StateKey::new(kind, self.name, fingerprint);
        let state = self.states.get_or_insert(&key, init);
        self.used.push(key);
        state
    }
}

/// A built middleware.
#[derive(Debug)]
pub(crate) struct Middleware {
    layer: Layer,
}

#[derive(Debug)]
enum Layer {
    AddPrefix(add_prefix::AddPrefix),
    StripPrefix(strip_prefix::StripPrefix),
    StripPrefixRegex(strip_prefix_regex::StripPrefixRegex),
    ReplacePath(replace_path::ReplacePath),
    ReplacePathRegex(replace_path_regex::ReplacePathRegex),
    BasicAuth(basic_auth::BasicAuth),
    DigestAuth(digest_auth::DigestAuth),
    Headers(Box<headers::Headers>),
    RedirectScheme(redirect_scheme::RedirectScheme),
    RedirectRegex(redirect_regex::RedirectRegex),
    IpAllowList(ip_allow_list::IpAllowList),
    ContentType(content_type::ContentType),
    RateLimit(rate_limit::RateLimit),
    InFlightReq(in_flight_req::InFlightReq),
    Retry(retry::Retry),
    CircuitBreaker(circuit_breaker::CircuitBreaker),
    Compress(Box<compress::Compress>),
    Buffering(buffering::Buffering),
    Errors(errors_page::ErrorsPage),
    ForwardAuth(Box<forward_auth::ForwardAuth>),
    GrpcWeb(grpc_web::GrpcWeb),
    PassTlsClientCert(pass_tls_client_cert::PassTlsClientCert),
}

impl Middleware {
    /// Builds `config`, which is not a `chain` (chains are expanded by
    /// [`Middlewares`]).
    fn build(config: &v1::Middleware, ctx: &mut BuildContext<'_>) -> Result<Self, MiddlewareError> {
        let kind = config
            .kind
            .as_ref()
            .ok_or_else(|| MiddlewareError::Empty(config.name.clone()))?;
        let failed = |source| MiddlewareError::Build {
            name: config.name.clone(),
            kind: kind_name(kind),
            source: Box::new(source),
        };
        let layer = match kind {
            Kind::AddPrefix(c) => Layer::AddPrefix(add_prefix::AddPrefix::new(c).map_err(failed)?),
            Kind::StripPrefix(c) => {
                Layer::StripPrefix(strip_prefix::StripPrefix::new(c).map_err(failed)?)
            }
            Kind::StripPrefixRegex(c) => Layer::StripPrefixRegex(
                strip_prefix_regex::StripPrefixRegex::new(c).map_err(failed)?,
            ),
            Kind::ReplacePath(c) => {
                Layer::ReplacePath(replace_path::ReplacePath::new(c).map_err(failed)?)
            }
            Kind::ReplacePathRegex(c) => Layer::ReplacePathRegex(
                replace_path_regex::ReplacePathRegex::new(c).map_err(failed)?,
            ),
            Kind::BasicAuth(c) => {
                Layer::BasicAuth(basic_auth::BasicAuth::new(c, ctx).map_err(failed)?)
            }
            Kind::DigestAuth(c) => {
                Layer::DigestAuth(digest_auth::DigestAuth::new(c, ctx).map_err(failed)?)
            }
            Kind::Headers(c) => Layer::Headers(Box::new(headers::Headers::new(c).map_err(failed)?)),
            Kind::RedirectScheme(c) => {
                Layer::RedirectScheme(redirect_scheme::RedirectScheme::new(c).map_err(failed)?)
            }
            Kind::RedirectRegex(c) => {
                Layer::RedirectRegex(redirect_regex::RedirectRegex::new(c).map_err(failed)?)
            }
            Kind::IpAllowList(c) => {
                Layer::IpAllowList(ip_allow_list::IpAllowList::new(c).map_err(failed)?)
            }
            Kind::ContentType(c) => Layer::ContentType(content_type::ContentType::new(c)),
            Kind::RateLimit(c) => {
                Layer::RateLimit(rate_limit::RateLimit::new(c, ctx).map_err(failed)?)
            }
            Kind::InFlightReq(c) => {
                Layer::InFlightReq(in_flight_req::InFlightReq::new(c, ctx).map_err(failed)?)
            }
            Kind::Retry(c) => Layer::Retry(retry::Retry::new(c).map_err(failed)?),
            Kind::CircuitBreaker(c) => {
                Layer::CircuitBreaker(circuit_breaker::CircuitBreaker::new(c, ctx).map_err(failed)?)
            }
            Kind::Compress(c) => {
                Layer::Compress(Box::new(compress::Compress::new(c).map_err(failed)?))
            }
            Kind::Buffering(c) => Layer::Buffering(buffering::Buffering::new(c).map_err(failed)?),
            Kind::Errors(c) => Layer::Errors(errors_page::ErrorsPage::new(c, ctx).map_err(failed)?),
            Kind::ForwardAuth(c) => {
                Layer::ForwardAuth(Box::new(forward_auth::ForwardAuth::new(c).map_err(failed)?))
            }
            Kind::GrpcWeb(c) => Layer::GrpcWeb(grpc_web::GrpcWeb::new(c)),
            Kind::PassTlsClientCert(c) => {
                Layer::PassTlsClientCert(pass_tls_client_cert::PassTlsClientCert::new(c))
            }
            // `Chain` never gets here: `Middlewares` expands chains in place.
            Kind::Chain(_) => {
                return Err(MiddlewareError::Unsupported {
                    name: config.name.clone(),
                    kind: kind_name(kind),
                });
            }
        };
        Ok(Self { layer })
    }

    /// Serves `req`, calling `next` for the rest of the chain.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        match &self.layer {
            Layer::AddPrefix(m) => m.call(req, ctx, next).await,
            Layer::StripPrefix(m) => m.call(req, ctx, next).await,
            Layer::StripPrefixRegex(m) => m.call(req, ctx, next).await,
            Layer::ReplacePath(m) => m.call(req, ctx, next).await,
            Layer::ReplacePathRegex(m) => m.call(req, ctx, next).await,
            Layer::BasicAuth(m) => m.call(req, ctx, next).await,
            Layer::DigestAuth(m) => m.call(req, ctx, next).await,
            Layer::Headers(m) => m.call(req, ctx, next).await,
            Layer::RedirectScheme(m) => m.call(req, ctx, next).await,
            Layer::RedirectRegex(m) => m.call(req, ctx, next).await,
            Layer::IpAllowList(m) => m.call(req, ctx, next).await,
            Layer::ContentType(m) => m.call(req, ctx, next).await,
            Layer::RateLimit(m) => m.call(req, ctx, next).await,
            Layer::InFlightReq(m) => m.call(req, ctx, next).await,
            Layer::Retry(m) => m.call(req, ctx, next).await,
            Layer::CircuitBreaker(m) => m.call(req, ctx, next).await,
            Layer::Compress(m) => m.call(req, ctx, next).await,
            Layer::Buffering(m) => m.call(req, ctx, next).await,
            Layer::Errors(m) => m.call(req, ctx, next).await,
            Layer::ForwardAuth(m) => m.call(req, ctx, next).await,
            Layer::GrpcWeb(m) => m.call(req, ctx, next).await,
            Layer::PassTlsClientCert(m) => m.call(req, ctx, next).await,
        }
    }
}

/// Builds the middlewares of one snapshot, each once, and the chains that
/// use them.
#[derive(Debug)]
pub(crate) struct Middlewares<'a> {
    configs: HashMap<&'a str, &'a v1::Middleware>,
    built: HashMap<&'a str, Arc<Middleware>>,
    states: &'a MiddlewareStates,
    used_states: Vec<StateKey>,
}

impl<'a> Middlewares<'a> {
    /// Middlewares from `configs`, their long-lived state in `states`.
    pub(crate) fn new(
        configs: impl IntoIterator<Item = &'a v1::Middleware>,
        states: &'a MiddlewareStates,
    ) -> Self {
        Self {
            configs: configs.into_iter().map(|m| (m.name.as_str(), m)).collect(),
            built: HashMap::new(),
            states,
            used_states: Vec::new(),
        }
    }

    /// The chain of the middlewares named in `lists`, in order, `chain`
    /// middlewares expanded in place; the services they call come from
    /// `services`.
    pub(crate) fn chain(
        &mut self,
        lists: &[&[String]],
        services: &mut dyn Services,
    ) -> Result<Chain, MiddlewareError> {
        let mut chain = Vec::new();
        let mut including = Vec::new();
        for name in lists.iter().flat_map(|list| list.iter()) {
            self.expand(name, &mut including, &mut chain, services)?;
        }
        Ok(Chain::new(chain))
    }

    /// The state keys the built middlewares use (to prune the others).
    pub(crate) fn into_state_keys(self) -> Vec<StateKey> {
        self.used_states
    }

    fn expand(
        &mut self,
        name: &str,
        including: &mut Vec<&'a str>,
        chain: &mut Vec<Arc<Middleware>>,
        services: &mut dyn Services,
    ) -> Result<(), MiddlewareError> {
        let config = *self
            .configs
            .get(name)
            .ok_or_else(|| MiddlewareError::NotFound(name.to_owned()))?;
        let name = config.name.as_str();
        if let Some(Kind::Chain(members)) = &config.kind {
            if including.contains(&name) {
                including.push(name);
                return Err(MiddlewareError::Cycle(including.join(" -> ")));
            }
            including.push(name);
            for member in &members.middlewares {
                self.expand(member, including, chain, services)?;
            }
            including.pop();
            return Ok(());
        }
        if let Some(built) = self.built.get(name) {
            chain.push(built.clone());
            return Ok(());
        }
        let mut ctx = BuildContext {
            name,
            states: self.states,
            used: &mut self.used_states,
            services,
        };
        let built = Arc::new(Middleware::build(config, &mut ctx)?);
        self.built.insert(name, built.clone());
        chain.push(built);
        Ok(())
    }
}

/// Traefik's name for a middleware type.
pub(crate) fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::AddPrefix(_) => "addPrefix",
        Kind::StripPrefix(_) => "stripPrefix",
        Kind::StripPrefixRegex(_) => "stripPrefixRegex",
        Kind::ReplacePath(_) => "replacePath",
        Kind::ReplacePathRegex(_) => "replacePathRegex",
        Kind::BasicAuth(_) => "basicAuth",
        Kind::DigestAuth(_) => "digestAuth",
        Kind::Headers(_) => "headers",
        Kind::RedirectScheme(_) => "redirectScheme",
        Kind::RedirectRegex(_) => "redirectRegex",
        Kind::IpAllowList(_) => "ipAllowList",
        Kind::RateLimit(_) => "rateLimit",
        Kind::InFlightReq(_) => "inFlightReq",
        Kind::Retry(_) => "retry",
        Kind::CircuitBreaker(_) => "circuitBreaker",
        Kind::Compress(_) => "compress",
        Kind::Buffering(_) => "buffering",
        Kind::Chain(_) => "chain",
        Kind::Errors(_) => "errors",
        Kind::ForwardAuth(_) => "forwardAuth",
        Kind::ContentType(_) => "contentType",
        Kind::GrpcWeb(_) => "grpcWeb",
        Kind::PassTlsClientCert(_) => "passTLSClientCert",
    }
}
