//! CutAfter: the connection is closed `ms` after it was accepted, whatever it is doing.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `CutAfter(ms: 5000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutAfter {
    /// The connection's lifetime.
    pub ms: u64,
}

impl FaultSpec for CutAfter {
    fn scope(&self) -> Scope {
        Scope::Connection
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)
    }
}
