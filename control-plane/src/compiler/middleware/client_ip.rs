//! Middlewares keyed on who the client is: `ipAllowList` (and its v2 name
//! `ipWhiteList`), `rateLimit` and `inFlightReq`.
//!
//! IPs and CIDRs come out as canonical CIDRs (`10.0.0.7` -> `10.0.0.7/32`,
//! `10.1.2.3/8` -> `10.0.0.0/8`), so a proxy parses one form. Source criteria
//! come out explicit: the default of each middleware is filled in.

use ipnet::IpNet;
use sluice_proto::v1 as pb;

use super::{MiddlewareError, check_header_name, status_code};
use crate::dynamic::{
    InFlightReqConfig, IpAllowListConfig, IpStrategyConfig, IpWhiteListConfig, RateLimitConfig,
    SourceCriterionConfig,
};

pub(super) fn ip_allow_list(
    config: &IpAllowListConfig,
) -> Result<pb::IpAllowList, MiddlewareError> {
    Ok(pb::IpAllowList {
        source_range: source_range("ipAllowList", &config.source_range)?,
        ip_strategy: config
            .ip_strategy
            .as_ref()
            .map(|strategy| ip_strategy("ipAllowList.ipStrategy", strategy))
            .transpose()?,
        reject_status_code: status_code(
            "ipAllowList.rejectStatusCode",
            config.reject_status_code,
            403,
        )?,
    })
}

pub(super) fn ip_white_list(
    config: &IpWhiteListConfig,
) -> Result<pb::IpAllowList, MiddlewareError> {
    Ok(pb::IpAllowList {
        source_range: source_range("ipWhiteList", &config.source_range)?,
        ip_strategy: config
            .ip_strategy
            .as_ref()
            .map(|strategy| ip_strategy("ipWhiteList.ipStrategy", strategy))
            .transpose()?,
        reject_status_code: 403,
    })
}

fn source_range(middleware: &str, ranges: &[String]) -> Result<Vec<String>, MiddlewareError> {
    if ranges.is_empty() {
        return Err(MiddlewareError::option(
            format!("{middleware}.sourceRange"),
            "required",
        ));
    }
    ranges
        .iter()
        .enumerate()
        .map(|(index, range)| cidr(&format!("{middleware}.sourceRange[{index}]"), range))
        .collect()
}

pub(super) fn rate_limit(config: &RateLimitConfig) -> Result<pb::RateLimit, MiddlewareError> {
    if config.redis.is_some() {
        return Err(MiddlewareError::unsupported("rateLimit.redis", ""));
    }
    if config.average < 0 {
        return Err(MiddlewareError::value(
            "rateLimit.average",
            config.average,
            "must not be negative",
        ));
    }
    let burst = match config.burst {
        Some(burst) if burst < 0 => {
            return Err(MiddlewareError::value(
                "rateLimit.burst",
                burst,
                "must not be negative",
            ));
        }
        // Traefik raises a burst below 1 to 1.
        burst => burst.unwrap_or(1).max(1),
    };
    // Traefik treats a zero period like an absent one.
    let period_ms = match config.period.map(|period| period.as_millis()) {
        None | Some(0) => 1000,
        Some(ms) => ms,
    };
    Ok(pb::RateLimit {
        average: config.average,
        period_ms,
        burst,
        // By default, requests are grouped by client IP.
        source_criterion: Some(source_criterion(
            "rateLimit.sourceCriterion",
            config.source_criterion.as_ref(),
            pb::SourceCriterion {
                ip_strategy: Some(pb::IpStrategy::default()),
                ..pb::SourceCriterion::default()
            },
        )?),
    })
}

pub(super) fn in_flight_req(
    config: &InFlightReqConfig,
) -> Result<pb::InFlightReq, MiddlewareError> {
    if config.amount < 1 {
        return Err(MiddlewareError::value(
            "inFlightReq.amount",
            config.amount,
            "must be at least 1",
        ));
    }
    Ok(pb::InFlightReq {
        amount: config.amount,
        // By default, requests are grouped by host, as in Traefik.
        source_criterion: Some(source_criterion(
            "inFlightReq.sourceCriterion",
            config.source_criterion.as_ref(),
            pb::SourceCriterion {
                request_host: true,
                ..pb::SourceCriterion::default()
            },
        )?),
    })
}

/// At most one criterion may be set; none set means `default`.
fn source_criterion(
    option: &str,
    config: Option<&SourceCriterionConfig>,
    default: pb::SourceCriterion,
) -> Result<pb::SourceCriterion, MiddlewareError> {
    let Some(config) = config else {
        return Ok(default);
    };
    let set = [
        config.ip_strategy.is_some(),
        !config.request_header_name.is_empty(),
        config.request_host,
    ];
    match set.iter().filter(|set| **set).count() {
        0 => return Ok(default),
        1 => {}
        _ => {
            return Err(MiddlewareError::option(
                option,
                "set only one of ipStrategy, requestHeaderName and requestHost",
            ));
        }
    }
    if !config.request_header_name.is_empty() {
        check_header_name(
            format!("{option}.requestHeaderName"),
            &config.request_header_name,
        )?;
    }
    Ok(pb::SourceCriterion {
        ip_strategy: config
            .ip_strategy
            .as_ref()
            .map(|strategy| ip_strategy(&format!("{option}.ipStrategy"), strategy))
            .transpose()?,
        request_header_name: config.request_header_name.clone(),
        request_host: config.request_host,
    })
}

/// `depth` wins over `excludedIPs` when both are set, as in Traefik; the
/// proxy applies that rule, both are passed on.
fn ip_strategy(option: &str, config: &IpStrategyConfig) -> Result<pb::IpStrategy, MiddlewareError> {
    if config.ipv6_subnet.is_some() {
        return Err(MiddlewareError::unsupported(
            format!("{option}.ipv6Subnet"),
            "",
        ));
    }
    let depth = u32::try_from(config.depth).map_err(|_| {
        MiddlewareError::value(
            format!("{option}.depth"),
            config.depth,
            "must not be negative",
        )
    })?;
    let excluded_ips = config
        .excluded_ips
        .iter()
        .enumerate()
        .map(|(index, ip)| cidr(&format!("{option}.excludedIPs[{index}]"), ip))
        .collect::<Result<_, _>>()?;
    Ok(pb::IpStrategy {
        depth,
        excluded_ips,
        ip_header: String::new(),
    })
}

/// An IP or a CIDR, as its canonical CIDR.
fn cidr(option: &str, text: &str) -> Result<String, MiddlewareError> {
    let net = if text.contains('/') {
        text.parse::<IpNet>()
            .map_err(|_| MiddlewareError::value(option, text, "invalid CIDR"))?
            .trunc()
    } else {
        text.parse::<std::net::IpAddr>()
            .map(IpNet::from)
            .map_err(|_| MiddlewareError::value(option, text, "invalid IP address"))?
    };
    Ok(net.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_yaml, error_yaml};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn allow_lists_canonicalise_ranges_and_default_the_status() {
        assert_eq!(
            compile_yaml(
                "ipAllowList: {sourceRange: [127.0.0.1/32, 192.168.1.7, 10.1.2.3/8, '::1', \
                 '2001:db8::1/32']}"
            )
            .unwrap(),
            Kind::IpAllowList(pb::IpAllowList {
                source_range: strings(&[
                    "127.0.0.1/32",
                    "192.168.1.7/32",
                    "10.0.0.0/8",
                    "::1/128",
                    "2001:db8::/32"
                ]),
                ip_strategy: None,
                reject_status_code: 403,
            })
        );
        assert_eq!(
            compile_yaml(
                "ipAllowList: {sourceRange: [10.0.0.0/8], rejectStatusCode: 404, \
                 ipStrategy: {depth: 2, excludedIPs: [127.0.0.1, 192.168.0.0/16]}}"
            )
            .unwrap(),
            Kind::IpAllowList(pb::IpAllowList {
                source_range: strings(&["10.0.0.0/8"]),
                ip_strategy: Some(pb::IpStrategy {
                    depth: 2,
                    excluded_ips: strings(&["127.0.0.1/32", "192.168.0.0/16"]),
                    ip_header: String::new(),
                }),
                reject_status_code: 404,
            })
        );
        assert_eq!(
            compile_yaml("ipWhiteList: {sourceRange: [10.0.0.0/8], ipStrategy: {}}").unwrap(),
            Kind::IpAllowList(pb::IpAllowList {
                source_range: strings(&["10.0.0.0/8"]),
                ip_strategy: Some(pb::IpStrategy::default()),
                reject_status_code: 403,
            })
        );
    }

    #[test]
    fn allow_list_errors_name_the_entry() {
        assert_eq!(
            error_yaml("ipAllowList: {sourceRange: [10.0.0.1, 10.0.0.0/33]}"),
            "ipAllowList.sourceRange[1] `10.0.0.0/33`: invalid CIDR"
        );
        assert_eq!(
            error_yaml("ipWhiteList: {sourceRange: [10.0.0.300]}"),
            "ipWhiteList.sourceRange[0] `10.0.0.300`: invalid IP address"
        );
        assert_eq!(
            error_yaml("ipAllowList: {}"),
            "ipAllowList.sourceRange: required"
        );
        assert_eq!(
            error_yaml(
                "ipAllowList: {sourceRange: [10.0.0.0/8], ipStrategy: {excludedIPs: [nope]}}"
            ),
            "ipAllowList.ipStrategy.excludedIPs[0] `nope`: invalid IP address"
        );
        assert_eq!(
            error_yaml("ipAllowList: {sourceRange: [10.0.0.0/8], ipStrategy: {depth: -1}}"),
            "ipAllowList.ipStrategy.depth `-1`: must not be negative"
        );
        assert_eq!(
            error_yaml("ipAllowList: {sourceRange: [10.0.0.0/8], rejectStatusCode: 600}"),
            "ipAllowList.rejectStatusCode `600`: not an HTTP status code (100 to 599)"
        );
        assert_eq!(
            error_yaml("ipAllowList: {sourceRange: ['::/0'], ipStrategy: {ipv6Subnet: 64}}"),
            "ipAllowList.ipStrategy.ipv6Subnet: not supported by Sluice"
        );
    }

    #[test]
    fn rate_limit_fills_defaults() {
        assert_eq!(
            compile_yaml("rateLimit: {average: 100}").unwrap(),
            Kind::RateLimit(pb::RateLimit {
                average: 100,
                period_ms: 1000,
                burst: 1,
                source_criterion: Some(pb::SourceCriterion {
                    ip_strategy: Some(pb::IpStrategy::default()),
                    ..pb::SourceCriterion::default()
                }),
            })
        );
        assert_eq!(
            compile_yaml(
                "rateLimit: {average: 6, period: 1m, burst: 50, \
                 sourceCriterion: {requestHeaderName: username}}"
            )
            .unwrap(),
            Kind::RateLimit(pb::RateLimit {
                average: 6,
                period_ms: 60_000,
                burst: 50,
                source_criterion: Some(pb::SourceCriterion {
                    request_header_name: "username".to_owned(),
                    ..pb::SourceCriterion::default()
                }),
            })
        );
        let Kind::RateLimit(limit) =
            compile_yaml("rateLimit: {average: 1, period: 0, burst: 0, sourceCriterion: {}}")
                .unwrap()
        else {
            panic!("not a rate limit");
        };
        assert_eq!((limit.period_ms, limit.burst), (1000, 1));
        assert_eq!(
            limit.source_criterion.unwrap().ip_strategy,
            Some(pb::IpStrategy::default())
        );
    }

    #[test]
    fn rate_limit_errors() {
        assert_eq!(
            error_yaml("rateLimit: {average: -1}"),
            "rateLimit.average `-1`: must not be negative"
        );
        assert_eq!(
            error_yaml("rateLimit: {average: 1, burst: -1}"),
            "rateLimit.burst `-1`: must not be negative"
        );
        assert_eq!(
            error_yaml(
                "rateLimit: {average: 1, \
                 sourceCriterion: {requestHost: true, ipStrategy: {depth: 1}}}"
            ),
            "rateLimit.sourceCriterion: \
             set only one of ipStrategy, requestHeaderName and requestHost"
        );
        assert_eq!(
            error_yaml("rateLimit: {average: 1, sourceCriterion: {requestHeaderName: 'a b'}}"),
            "rateLimit.sourceCriterion.requestHeaderName `a b`: invalid header name"
        );
        assert_eq!(
            error_yaml(
                "rateLimit: {average: 1, \
                 sourceCriterion: {ipStrategy: {excludedIPs: [1.2.3.4/40]}}}"
            ),
            "rateLimit.sourceCriterion.ipStrategy.excludedIPs[0] `1.2.3.4/40`: invalid CIDR"
        );
        assert_eq!(
            error_yaml("rateLimit: {average: 1, redis: {endpoints: ['localhost:6379']}}"),
            "rateLimit.redis: not supported by Sluice"
        );
    }

    #[test]
    fn in_flight_req_groups_by_host_by_default() {
        assert_eq!(
            compile_yaml("inFlightReq: {amount: 10}").unwrap(),
            Kind::InFlightReq(pb::InFlightReq {
                amount: 10,
                source_criterion: Some(pb::SourceCriterion {
                    request_host: true,
                    ..pb::SourceCriterion::default()
                }),
            })
        );
        assert_eq!(
            compile_yaml("inFlightReq: {amount: 1, sourceCriterion: {ipStrategy: {depth: 2}}}")
                .unwrap(),
            Kind::InFlightReq(pb::InFlightReq {
                amount: 1,
                source_criterion: Some(pb::SourceCriterion {
                    ip_strategy: Some(pb::IpStrategy {
                        depth: 2,
                        ..pb::IpStrategy::default()
                    }),
                    ..pb::SourceCriterion::default()
                }),
            })
        );
        assert_eq!(
            error_yaml("inFlightReq: {amount: 0}"),
            "inFlightReq.amount `0`: must be at least 1"
        );
        assert_eq!(
            error_yaml(
                "inFlightReq: {amount: 5, \
                 sourceCriterion: {requestHost: true, requestHeaderName: X-User}}"
            ),
            "inFlightReq.sourceCriterion: \
             set only one of ipStrategy, requestHeaderName and requestHost"
        );
    }
}
