//! FailNth: every `n`-th matching request is answered with `status`: a deterministic
//! brown-out, exact whatever the seed.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_status};

/// `FailNth(n: 3, status: 503)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNth {
    /// Every n-th request fails (the n-th, 2n-th, ...).
    pub n: u64,
    /// The failing answer's status.
    #[serde(default = "service_unavailable")]
    pub status: u16,
}

fn service_unavailable() -> u16 {
    503
}

impl FaultSpec for FailNth {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.n == 0 {
            return Err(ParamError::new("n", "must be at least 1"));
        }
        check_status("status", self.status)
    }
}
