//! `sourceCriterion`: what groups requests into one "source" for the
//! per-source limits (`rateLimit`, `inFlightReq`), as Traefik's source
//! extractor: the client IP found by an [`IpStrategy`], a request header's
//! value, or the request's host.
//!
//! As in Traefik, a missing value is a source of its own (the empty
//! string): requests without the header share one limit.
//!
//! A source is reduced to a 64-bit keyed hash (SipHash with a per-process
//! random key), so looking a source up allocates nothing and a client
//! cannot pick values that collide.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;

use http::{HeaderName, Request};
use sluice_proto::v1;

use super::MiddlewareBuildError;
use super::ip_strategy::{ClientIp, IpStrategy};
use crate::body::ProxyBody;
use crate::dispatch::request_authority;

/// A built source criterion.
#[derive(Debug, Clone)]
pub(crate) enum SourceCriterion {
    /// The client IP.
    Ip(IpStrategy),
    /// The value of a request header.
    Header(HeaderName),
    /// The request's host (`Host`, or the HTTP/2 authority).
    Host,
}

impl SourceCriterion {
    /// From the snapshot (the control plane fills in each middleware's
    /// default); `option` names it in errors.
    pub(crate) fn new(
        option: &str,
        config: Option<&v1::SourceCriterion>,
    ) -> Result<Self, MiddlewareBuildError> {
        let Some(config) = config else {
            return Ok(Self::Ip(IpStrategy::Peer));
        };
        if let Some(strategy) = &config.ip_strategy {
            return Ok(Self::Ip(IpStrategy::new(
                &format!("{option}.ipStrategy"),
                Some(strategy),
            )?));
        }
        if !config.request_header_name.is_empty() {
            return Ok(Self::Header(MiddlewareBuildError::header_name(
                format!("{option}.requestHeaderName"),
                &config.request_header_name,
            )?));
        }
        if config.request_host {
            return Ok(Self::Host);
        }
        Ok(Self::Ip(IpStrategy::Peer))
    }

    /// The source of `req`, from `peer`, hashed with `hasher`.
    pub(crate) fn key(&self, hasher: &RandomState, req: &Request<ProxyBody>, peer: IpAddr) -> u64 {
        let mut state = hasher.build_hasher();
        match self {
            Self::Ip(strategy) => match strategy.client_ip(peer, req.headers()) {
                ClientIp::Ip(ip) => ip.hash(&mut state),
                ClientIp::Invalid(text) => text.as_bytes().hash(&mut state),
                ClientIp::Missing => b"".hash(&mut state),
            },
            Self::Header(name) => req
                .headers()
                .get(name)
                .map_or(&b""[..], |value| value.as_bytes())
                .hash(&mut state),
            Self::Host => request_authority(req).as_bytes().hash(&mut state),
        }
        state.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<ProxyBody> {
        let mut builder = Request::get("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(ProxyBody::empty()).unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn criteria_group_requests() {
        let hasher = RandomState::new();
        let by_ip = SourceCriterion::new("s", None).unwrap();
        assert_eq!(
            by_ip.key(&hasher, &req(&[]), PEER),
            by_ip.key(&hasher, &req(&[("host", "a")]), PEER)
        );
        assert_ne!(
            by_ip.key(&hasher, &req(&[]), PEER),
            by_ip.key(&hasher, &req(&[]), OTHER)
        );

        let by_header = SourceCriterion::new(
            "s",
            Some(&v1::SourceCriterion {
                request_header_name: "X-Api-Key".into(),
                ..Default::default()
            }),
        )
        .unwrap();
        let key = |headers, peer| by_header.key(&hasher, &req(headers), peer);
        assert_eq!(
            key(&[("x-api-key", "k1")], PEER),
            key(&[("x-api-key", "k1")], OTHER)
        );
        assert_ne!(
            key(&[("x-api-key", "k1")], PEER),
            key(&[("x-api-key", "k2")], PEER)
        );
        assert_eq!(key(&[], PEER), key(&[], OTHER));

        let by_host = SourceCriterion::new(
            "s",
            Some(&v1::SourceCriterion {
                request_host: true,
                ..Default::default()
            }),
        )
        .unwrap();
        let key = |headers, peer| by_host.key(&hasher, &req(headers), peer);
        assert_eq!(
            key(&[("host", "a.test")], PEER),
            key(&[("host", "a.test")], OTHER)
        );
        assert_ne!(
            key(&[("host", "a.test")], PEER),
            key(&[("host", "b.test")], PEER)
        );
    }

    #[test]
    fn the_ip_strategy_reads_forwarded_for() {
        let hasher = RandomState::new();
        let depth = SourceCriterion::new(
            "s",
            Some(&v1::SourceCriterion {
                ip_strategy: Some(v1::IpStrategy {
                    depth: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        )
        .unwrap();
        let key = |xff| depth.key(&hasher, &req(&[("x-forwarded-for", xff)]), PEER);
        assert_eq!(key("1.1.1.1, 2.2.2.2"), key("3.3.3.3, 2.2.2.2"));
        assert_ne!(key("1.1.1.1, 2.2.2.2"), key("1.1.1.1, 3.3.3.3"));
    }

    #[test]
    fn invalid_header_names_fail_the_build() {
        let error = SourceCriterion::new(
            "rateLimit.sourceCriterion",
            Some(&v1::SourceCriterion {
                request_header_name: "bad header".into(),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "rateLimit.sourceCriterion.requestHeaderName `bad header`: invalid header name"
        );
    }
}
