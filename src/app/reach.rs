//! What routes created through the control API may bind and dial (`--allow-listen`,
//! `--allow-upstream`). By default anything: the endpoint itself is guarded by loopback, a
//! token and the Host/Origin checks. An operator who exposes it more widely can pin API routes
//! to, say, loopback listeners and the database's subnet, so that a stolen token cannot turn
//! the sidecar into a relay to anywhere. Routes from rules files are the operator's own and
//! are not checked.

use std::net::{IpAddr, SocketAddr};

use super::ChangeError;
use crate::rules::{Protocol, Route};

/// One allowed range: a network and, optionally, a port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRule {
    net: IpAddr,
    prefix: u8,
    ports: (u16, u16),
}

/// Why an allow-list entry did not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "{entry:?} is not an address range: {why} (write 127.0.0.0/8, 10.0.0.0/8:5432, 0.0.0.0/0:1024-65535 or [::1/128]:80)"
)]
pub struct AddrRuleError {
    entry: String,
    why: String,
}

impl std::str::FromStr for AddrRule {
    type Err = AddrRuleError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| AddrRuleError {
            entry: entry.to_string(),
            why: why.to_string(),
        };
        let (net, ports) = match entry.strip_prefix('[') {
            Some(rest) => {
                let (net, after) = rest.split_once(']').ok_or_else(|| bad("no closing ]"))?;
                match after {
                    "" => (net, None),
                    p => (
                        net,
                        Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                    ),
                }
            }
            None if entry.matches(':').count() > 1 => (entry, None),
            None => match entry.split_once(':') {
                Some((net, ports)) => (net, Some(ports)),
                None => (entry, None),
            },
        };
        let (addr, prefix) = match net.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (net, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("the prefix length is out of range"))?,
            None => max,
        };
        let ports = match ports {
            None => (0, u16::MAX),
            Some(p) => {
                let (lo, hi) = p.split_once('-').unwrap_or((p, p));
                let lo: u16 = lo.parse().map_err(|_| bad("not a port"))?;
                let hi: u16 = hi.parse().map_err(|_| bad("not a port"))?;
                if lo > hi {
                    return Err(bad("the port range is backwards"));
                }
                (lo, hi)
            }
        };
        Ok(AddrRule { net, prefix, ports })
    }
}

impl AddrRule {
    /// Whether `addr` is inside.
    pub fn admits(&self, addr: SocketAddr) -> bool {
        let port_ok = (self.ports.0..=self.ports.1).contains(&addr.port());
        let net_ok = match (self.net, addr.ip()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(net.to_bits().into(), ip.to_bits().into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(net.to_bits(), ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        };
        port_ok && net_ok
    }
}

fn masked(net: u128, ip: u128, prefix: u8, width: u32) -> bool {
    let host_bits = width - u32::from(prefix);
    let shift = |x: u128| x.checked_shr(host_bits).unwrap_or(0);
    shift(net) == shift(ip)
}

/// The allow-lists; `None` allows anything.
#[derive(Debug, Clone, Default)]
pub struct RouteReach {
    /// What an API-created route may listen on.
    pub listen: Option<Vec<AddrRule>>,
    /// What an API-created route may forward to (names are resolved, and every address must
    /// be allowed).
    pub upstream: Option<Vec<AddrRule>>,
}

impl RouteReach {
    /// Refuses `route` if it would listen or dial outside the lists.
    pub async fn check(&self, route: &Route) -> Result<(), ChangeError> {
        let refuse = |field: &str, message: String| ChangeError::Invalid {
            field: Some(field.into()),
            message,
        };
        if let Some(rules) = &self.listen {
            let addr: SocketAddr = route.listen.parse().map_err(|_| {
                refuse(
                    "listen",
                    format!("listen {:?} is not an ip:port address", route.listen),
                )
            })?;
            if !rules.iter().any(|r| r.admits(addr)) {
                return Err(refuse(
                    "listen",
                    format!("listen {addr} is outside what --allow-listen permits for API routes"),
                ));
            }
        }
        if let Some(rules) = &self.upstream {
            let authority = match route.protocol {
                Protocol::Tcp
                | Protocol::Redis
                | Protocol::Postgres
                | Protocol::Udp
                | Protocol::Dns => route.upstream.clone(),
                Protocol::Http => http_authority(&route.upstream).ok_or_else(|| {
                    refuse(
                        "upstream",
                        format!("upstream {:?} is not a URL", route.upstream),
                    )
                })?,
            };
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&authority)
                .await
                .map_err(|e| {
                    refuse(
                        "upstream",
                        format!("upstream {authority:?} does not resolve: {e}"),
                    )
                })?
                .collect();
            if addrs.is_empty() || addrs.iter().any(|a| !rules.iter().any(|r| r.admits(*a))) {
                return Err(refuse(
                    "upstream",
                    format!(
                        "upstream {authority:?} ({addrs:?}) is outside what --allow-upstream permits for API routes"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn http_authority(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let host = uri.host()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{}:{port}", host.trim_matches(['[', ']'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_admit() {
        let cases = [
            ("127.0.0.0/8", "127.1.2.3:80", true),
            ("127.0.0.0/8", "10.0.0.1:80", false),
            ("10.0.0.0/8:5432", "10.9.9.9:5432", true),
            ("10.0.0.0/8:5432", "10.9.9.9:5433", false),
            ("0.0.0.0/0:1024-65535", "8.8.8.8:1024", true),
            ("0.0.0.0/0:1024-65535", "8.8.8.8:80", false),
            ("192.168.1.7", "192.168.1.7:1", true),
            ("192.168.1.7", "192.168.1.8:1", false),
            ("[::1/128]:80", "[::1]:80", true),
            ("::/0", "[2001:db8::1]:9", true),
            ("::/0", "10.0.0.1:9", false),
        ];
        for (rule, addr, want) in cases {
            let rule: AddrRule = rule.parse().expect(rule);
            let addr: SocketAddr = addr.parse().expect(addr);
            assert_eq!(rule.admits(addr), want, "{rule:?} {addr}");
        }
        for bad in [
            "",
            "x",
            "10.0.0.0/33",
            "10.0.0.0/8:99999",
            "10.0.0.0/8:9-1",
            "[::1",
        ] {
            assert!(bad.parse::<AddrRule>().is_err(), "{bad:?}");
        }
    }
}
