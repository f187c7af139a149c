//! Rcode: a DNS query is answered with an error code in the resolver's place, as a failing
//! or misconfigured resolver answers it.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Rcode(code: ServFail)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rcode {
    /// The response code the answer carries.
    pub code: DnsErrorCode,
}

/// The response codes a fault can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnsErrorCode {
    /// The name does not exist (RCODE 3).
    NxDomain,
    /// The resolver failed (RCODE 2), as when the authoritative servers are unreachable.
    ServFail,
    /// The resolver will not answer this client (RCODE 5).
    Refused,
}

impl DnsErrorCode {
    /// The code's number in the DNS header.
    pub fn value(self) -> u8 {
        match self {
            DnsErrorCode::ServFail => 2,
            DnsErrorCode::NxDomain => 3,
            DnsErrorCode::Refused => 5,
        }
    }
}

impl FaultSpec for Rcode {
    fn scope(&self) -> Scope {
        Scope::Query
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
