//! `ipAllowList` (v2: `ipWhiteList`): only clients whose IP, as the
//! [`IpStrategy`] finds it, is in `sourceRange` go through; the others get
//! `rejectStatusCode` (403 by default) with the status text as body.
//! A client IP that is missing or not an IP is rejected.

use http::{Request, Response, StatusCode};
use ipnet::IpNet;
use sluice_proto::v1;

use super::ip_strategy::{ClientIp, IpStrategy, parse_net};
use super::{MiddlewareBuildError, Next, RequestContext};
use crate::body::{ProxyBody, status_response};

/// A built `ipAllowList` middleware.
#[derive(Debug)]
pub(crate) struct IpAllowList {
    allowed: Vec<IpNet>,
    strategy: IpStrategy,
    reject: StatusCode,
}

impl IpAllowList {
    /// From the snapshot; `sourceRange` is required.
    pub(crate) fn new(config: &v1::IpAllowList) -> Result<Self, MiddlewareBuildError> {
        if config.source_range.is_empty() {
            return Err(MiddlewareBuildError::Required("ipAllowList.sourceRange"));
        }
        let allowed = config
            .source_range
            .iter()
            .enumerate()
            .map(|(index, value)| parse_net(&format!("ipAllowList.sourceRange[{index}]"), value))
            .collect::<Result<_, _>>()?;
        let strategy = IpStrategy::new("ipAllowList.ipStrategy", config.ip_strategy.as_ref())?;
        let reject = match config.reject_status_code {
            0 => StatusCode::FORBIDDEN,
            code => u16::try_from(code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .filter(|status| status.canonical_reason().is_some())
                .ok_or(MiddlewareBuildError::Status {
                    option: "ipAllowList.rejectStatusCode",
                    value: code,
                })?,
        };
        Ok(Self {
            allowed,
            strategy,
            reject,
        })
    }

    /// Lets allowed clients through to `next`, rejects the others.
    pub(crate) async fn call(
        &self,
        req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        let allowed = match self.strategy.client_ip(ctx.conn.peer, req.headers()) {
            ClientIp::Ip(ip) => self.allowed.iter().any(|net| net.contains(&ip)),
            ClientIp::Invalid(text) => {
                tracing::debug!(
                    router = ctx.router,
                    client_ip = text,
                    "rejecting an unparsable client IP"
                );
                false
            }
            ClientIp::Missing => false,
        };
        if !allowed {
            tracing::debug!(router = ctx.router, peer = %ctx.conn.peer, "rejected by ipAllowList");
            return status_response(self.reject);
        }
        next.run(req, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        Backend, build_error, config, request, send_with, shared_state, text,
    };
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn allow_list(
        ranges: &[&str],
        strategy: Option<v1::IpStrategy>,
        reject: u32,
    ) -> v1::Middleware {
        config(
            "allow",
            Kind::IpAllowList(v1::IpAllowList {
                source_range: ranges.iter().map(|r| (*r).to_owned()).collect(),
                ip_strategy: strategy,
                reject_status_code: reject,
            }),
        )
    }

    async fn status(middleware: &v1::Middleware, peer: &str, xff: Option<&str>) -> StatusCode {
        let mut req = Request::get("/");
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        let backend = Backend::new();
        let shared = shared_state();
        let response = send_with(
            &shared,
            std::slice::from_ref(middleware),
            &backend,
            peer,
            request(req.body(()).unwrap()),
        )
        .await;
        response.status()
    }

    #[tokio::test]
    async fn the_peer_decides_by_default() {
        let middleware = allow_list(&["192.168.1.0/24", "10.0.0.7"], None, 0);
        assert_eq!(
            status(&middleware, "192.168.1.20:1", None).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&middleware, "10.0.0.7:1", Some("6.6.6.6")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&middleware, "[::ffff:10.0.0.7]:1", None).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&middleware, "10.0.0.8:1", Some("10.0.0.7")).await,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn rejections_have_the_status_text_as_body() {
        let backend = Backend::new();
        let shared = shared_state();
        let middleware = allow_list(&["10.0.0.0/8"], None, 0);
        let req = request(Request::get("/").body(()).unwrap());
        let response = send_with(&shared, &[middleware], &backend, "1.2.3.4:5", req).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(text(response).await, "Forbidden");
        assert!(backend.seen().is_none());

        let custom = allow_list(&["10.0.0.0/8"], None, 404);
        assert_eq!(
            status(&custom, "1.2.3.4:5", None).await,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn depth_reads_x_forwarded_for() {
        let strategy = v1::IpStrategy {
            depth: 2,
            ..Default::default()
        };
        let middleware = allow_list(&["1.1.1.0/24"], Some(strategy), 0);
        let peer = "10.0.0.1:1";
        assert_eq!(
            status(&middleware, peer, Some("1.1.1.1, 2.2.2.2")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&middleware, peer, Some("2.2.2.2, 1.1.1.1")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&middleware, peer, Some("1.1.1.1")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(&middleware, peer, None).await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn excluded_ips_are_skipped() {
        let strategy = v1::IpStrategy {
            excluded_ips: vec!["10.0.0.0/8".into()],
            ..Default::default()
        };
        let middleware = allow_list(&["1.1.1.1"], Some(strategy), 0);
        let peer = "10.0.0.1:1";
        assert_eq!(
            status(&middleware, peer, Some("1.1.1.1, 10.0.0.2, 10.0.0.3")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&middleware, peer, Some("1.1.1.1, 2.2.2.2, 10.0.0.3")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&middleware, peer, Some("10.0.0.2")).await,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn invalid_options_fail_the_build() {
        assert_eq!(
            build_error(allow_list(&[], None, 0)),
            "middleware `allow@test` (ipAllowList): ipAllowList.sourceRange: required"
        );
        assert_eq!(
            build_error(allow_list(&["10.0.0.0/8", "nope"], None, 0)),
            "middleware `allow@test` (ipAllowList): ipAllowList.sourceRange[1] `nope`: not an IP or a CIDR"
        );
        assert_eq!(
            build_error(allow_list(&["10.0.0.0/8"], None, 999)),
            "middleware `allow@test` (ipAllowList): ipAllowList.rejectStatusCode `999`: not an HTTP status code"
        );
    }
}
