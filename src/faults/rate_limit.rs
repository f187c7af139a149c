//! RateLimit: matching requests beyond `per_sec` are answered with `status` (429 unless told)
//! and a `Retry-After`, as an API gateway's limiter would.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_status};

/// `RateLimit(per_sec: 10, status: 429)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests let through per second (a token bucket of that size, refilled continuously).
    pub per_sec: u32,
    /// The answer beyond the rate.
    #[serde(default = "too_many_requests")]
    pub status: u16,
}

fn too_many_requests() -> u16 {
    429
}

impl FaultSpec for RateLimit {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.per_sec == 0 {
            return Err(ParamError::new(
                "per_sec",
                "must be at least 1 (use Abort to refuse every request)",
            ));
        }
        check_status("status", self.status)
    }
}
