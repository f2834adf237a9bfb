//! Traefik's `ipStrategy`: which IP a request comes from, for `ipAllowList`
//! (and the per-source limits, which key on the same).
//!
//! - no strategy, or neither option set: the TCP peer;
//! - `depth: n` (wins over `excludedIPs`): the n-th address from the right
//!   of `X-Forwarded-For`, none when the header has fewer;
//! - `excludedIPs`: the right-most address of `X-Forwarded-For` outside the
//!   excluded ranges, none when all are excluded.
//!
//! As in Traefik, only the first `X-Forwarded-For` line is read, and only as
//! the client sent it (the entry point drops it for untrusted peers; this
//! proxy's own address is appended later, when forwarding).

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;
use sluice_proto::v1;

use super::MiddlewareBuildError;
use crate::headers::X_FORWARDED_FOR;

/// A built IP strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpStrategy {
    /// The TCP peer.
    Peer,
    /// The n-th `X-Forwarded-For` address from the right (n >= 1).
    Depth(usize),
    /// The right-most `X-Forwarded-For` address outside these ranges.
    Excluded(Vec<IpNet>),
}

/// The client IP a strategy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientIp<'a> {
    /// An IP (IPv4-mapped addresses folded to IPv4).
    Ip(IpAddr),
    /// Text that is not an IP, as found.
    Invalid(&'a str),
    /// Nothing: the header is missing or too short.
    Missing,
}

impl IpStrategy {
    /// From the snapshot; `option` names it in errors (`ipAllowList.ipStrategy`).
    pub(crate) fn new(
        option: &str,
        config: Option<&v1::IpStrategy>,
    ) -> Result<Self, MiddlewareBuildError> {
        let Some(config) = config else {
            return Ok(Self::Peer);
        };
        if !config.ip_header.is_empty() {
            return Err(MiddlewareBuildError::UnsupportedOption(
                "ipStrategy.ipHeader",
            ));
        }
        if config.depth > 0 {
            return Ok(Self::Depth(config.depth as usize));
        }
        if config.excluded_ips.is_empty() {
            return Ok(Self::Peer);
        }
        let excluded = config
            .excluded_ips
            .iter()
            .enumerate()
            .map(|(index, value)| parse_net(&format!("{option}.excludedIPs[{index}]"), value))
            .collect::<Result<_, _>>()?;
        Ok(Self::Excluded(excluded))
    }

    /// The client IP of a request from `peer` with `headers`.
    pub(crate) fn client_ip<'h>(&self, peer: IpAddr, headers: &'h HeaderMap) -> ClientIp<'h> {
        let forwarded_for = || {
            headers
                .get(X_FORWARDED_FOR)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
        };
        let found = match self {
            Self::Peer => return ClientIp::Ip(peer),
            Self::Depth(depth) => {
                let entries: Vec<&str> = forwarded_for().split(',').collect();
                match entries.len().checked_sub(*depth) {
                    Some(index) => entries[index].trim(),
                    None => return ClientIp::Missing,
                }
            }
            Self::Excluded(nets) => {
                let outside = forwarded_for()
                    .rsplit(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .find(|entry| match parse_ip(entry) {
                        Some(ip) => !nets.iter().any(|net| net.contains(&ip)),
                        None => true,
                    });
                match outside {
                    Some(entry) => entry,
                    None => return ClientIp::Missing,
                }
            }
        };
        if found.is_empty() {
            return ClientIp::Missing;
        }
        match parse_ip(found) {
            Some(ip) => ClientIp::Ip(ip),
            None => ClientIp::Invalid(found),
        }
    }
}

/// An IP as Go's `net.ParseIP` reads it, IPv4-mapped folded to IPv4.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// An IP or a CIDR (`10.0.0.0/8`, `10.0.0.1`) named by `option`.
pub(crate) fn parse_net(option: &str, value: &str) -> Result<IpNet, MiddlewareBuildError> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| MiddlewareBuildError::Cidr {
            option: option.to_owned(),
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, value.parse().unwrap());
        headers
    }

    fn strategy(depth: u32, excluded: &[&str]) -> IpStrategy {
        IpStrategy::new(
            "ipStrategy",
            Some(&v1::IpStrategy {
                depth,
                excluded_ips: excluded.iter().map(|e| (*e).to_owned()).collect(),
                ip_header: String::new(),
            }),
        )
        .unwrap()
    }

    fn ip(text: &str) -> ClientIp<'static> {
        ClientIp::Ip(text.parse().unwrap())
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    #[test]
    fn peer_by_default() {
        let headers = xff("1.1.1.1");
        assert_eq!(IpStrategy::new("s", None).unwrap(), IpStrategy::Peer);
        assert_eq!(IpStrategy::Peer.client_ip(PEER, &headers), ip("10.0.0.9"));
        assert_eq!(strategy(0, &[]), IpStrategy::Peer);
    }

    #[test]
    fn depth_counts_from_the_right() {
        let headers = xff("1.1.1.1, 2.2.2.2,3.3.3.3");
        assert_eq!(strategy(1, &[]).client_ip(PEER, &headers), ip("3.3.3.3"));
        assert_eq!(strategy(3, &[]).client_ip(PEER, &headers), ip("1.1.1.1"));
        assert_eq!(
            strategy(4, &[]).client_ip(PEER, &headers),
            ClientIp::Missing
        );
        assert_eq!(
            strategy(1, &[]).client_ip(PEER, &HeaderMap::new()),
            ClientIp::Missing
        );
        assert_eq!(
            strategy(1, &[]).client_ip(PEER, &xff("1.1.1.1, nope")),
            ClientIp::Invalid("nope")
        );
        // Depth wins over excluded IPs.
        assert_eq!(
            strategy(1, &["3.3.3.3"]).client_ip(PEER, &headers),
            ip("3.3.3.3")
        );
    }

    #[test]
    fn excluded_ips_are_skipped_from_the_right() {
        let headers = xff("1.1.1.1, 2.2.2.2, 10.0.0.5, 10.0.0.6");
        let excluded = strategy(0, &["10.0.0.0/8"]);
        assert_eq!(excluded.client_ip(PEER, &headers), ip("2.2.2.2"));
        assert_eq!(
            excluded.client_ip(PEER, &xff("10.0.0.1,10.0.0.2")),
            ClientIp::Missing
        );
        assert_eq!(
            strategy(0, &["10.0.0.6", "2.2.2.2"]).client_ip(PEER, &headers),
            ip("10.0.0.5")
        );
        assert_eq!(
            excluded.client_ip(PEER, &xff("::ffff:1.2.3.4, 10.1.1.1")),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn nets_parse_ips_and_cidrs() {
        assert_eq!(
            parse_net("o", "10.1.2.3/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_net("o", "::1").unwrap(),
            "::1/128".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_net("o[0]", "10.0.0.0/33").unwrap_err().to_string(),
            "o[0] `10.0.0.0/33`: not an IP or a CIDR"
        );
    }
}
