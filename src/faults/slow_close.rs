//! SlowClose: when a stream reaches its end, the close (FIN) is passed on only after `ms`.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `SlowClose(ms: 500)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowClose {
    /// How long the close is held.
    pub ms: u64,
}

impl FaultSpec for SlowClose {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)
    }
}
