//! Answer: a DNS query for an address is answered with the addresses given, in the resolver's
//! place; the failover of a traffic manager that now points a name at the secondary region.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Answer(addresses: ["127.0.0.2"], ttl: 5)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// What the name resolves to now: A queries get the IPv4 ones, AAAA queries the IPv6
    /// ones; a query of either type with none of its family gets an empty answer (NODATA).
    /// Queries of other types (MX, SRV, ...) pass to the resolver.
    pub addresses: Vec<IpAddr>,
    /// The answers' time to live, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    5
}

/// The longest TTL an answer may carry (RFC 2181: 2^31 - 1 seconds).
const MAX_TTL: u32 = i32::MAX as u32;

impl FaultSpec for Answer {
    fn scope(&self) -> Scope {
        Scope::Query
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.addresses.is_empty() {
            return Err(ParamError::new(
                "addresses",
                "give at least one address (use Rcode(code: NxDomain) for a name that is gone)",
            ));
        }
        if self.ttl > MAX_TTL {
            return Err(ParamError::new(
                "ttl",
                format!("{} is more than the maximum of {MAX_TTL} seconds", self.ttl),
            ));
        }
        Ok(())
    }
}
