//! ResponseDelay: the upstream's response headers are held `ms` before they go to the client.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `ResponseDelay(ms: 500)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseDelay {
    /// The hold.
    pub ms: u64,
}

impl FaultSpec for ResponseDelay {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)
    }
}
