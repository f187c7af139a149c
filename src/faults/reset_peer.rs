//! ResetPeer: `after_ms` after the fault took hold on a connection, both sides are closed with
//! `SO_LINGER` 0, so each sees a TCP RST ("connection reset by peer"). Unlike Toxiproxy, whose
//! timer starts only when data arrives, the timer starts at once: an idle connection is reset
//! too, which is what a crashed dependency does.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `ResetPeer(after_ms: 100)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPeer {
    /// Time until the reset; 0 resets at once.
    #[serde(default)]
    pub after_ms: u64,
}

impl FaultSpec for ResetPeer {
    fn scope(&self) -> Scope {
        Scope::Connection
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("after_ms", self.after_ms)
    }
}
