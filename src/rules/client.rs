//! A client address or network, as `when: (client: [...])` names it: `"127.0.0.2"`,
//! `"10.1.0.0/16"`, `"::1"`, `"fd00::/8"`.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One address (a `/32` or `/128`) or network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    base: IpAddr,
    prefix: u8,
}

impl ClientNet {
    /// Parses `"10.1.0.0/16"` or a bare address. Host bits set below the prefix are refused:
    /// `10.1.2.3/16` is more likely a typo for a host than a network.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "client {text:?} is not an IP address or CIDR network (e.g. \"127.0.0.2\" or \"10.1.0.0/16\")"
            )
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
        };
        if prefix > max {
            return Err(format!(
                "client {text:?}: a prefix of /{prefix} is longer than the address (at most /{max})"
            ));
        }
        let net = ClientNet { base, prefix };
        if net.masked(base) != bits(base) {
            return Err(format!(
                "client {text:?} has host bits set below /{prefix}; the network is {}",
                ClientNet {
                    base: from_bits(base, net.masked(base)),
                    prefix
                }
            ));
        }
        Ok(net)
    }

    /// Whether `ip` is in this network. An IPv4 client seen through an IPv6 socket
    /// (`::ffff:127.0.0.2`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.base.is_ipv4() && self.masked(ip) == bits(self.base)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let host_bits = u32::from(width - self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        bits(ip) & mask
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, value: u128) -> IpAddr {
    match like {
        // The value came from masking an IPv4 address, so it fits in 32 bits.
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(value).unwrap_or(0).into()),
        IpAddr::V6(_) => IpAddr::V6(value.into()),
    }
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.base.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.base)
        } else {
            write!(f, "{}/{}", self.base, self.prefix)
        }
    }
}

impl Serialize for ClientNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClientNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ClientNet::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn table() {
        let cases = [
            ("127.0.0.2", "127.0.0.2", true),
            ("127.0.0.2", "127.0.0.1", false),
            ("10.1.0.0/16", "10.1.255.7", true),
            ("10.1.0.0/16", "10.2.0.1", false),
            ("0.0.0.0/0", "192.0.2.1", true),
            ("0.0.0.0/0", "::1", false),
            ("127.0.0.2", "::ffff:127.0.0.2", true),
            ("::1", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
        ];
        for (net, addr, want) in cases {
            let parsed = ClientNet::parse(net).expect(net);
            assert_eq!(parsed.contains(ip(addr)), want, "{net} ∋ {addr}");
            assert_eq!(parsed.to_string(), net, "round trip of {net}");
        }
    }

    #[test]
    fn bad_networks_are_named() {
        for (text, says) in [
            ("localhost", "not an IP address"),
            ("10.0.0.0/33", "longer than the address"),
            ("10.1.2.3/16", "the network is 10.1.0.0/16"),
            ("10.0.0.0/x", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let err = ClientNet::parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
