//! Reorder: a datagram is held back `ms`, so the ones sent after it overtake it. The fault's
//! `probability` chooses which datagrams are held; at 1.0 every one is, and the order stays.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `Reorder(ms: 20)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reorder {
    /// How long a chosen datagram is held back.
    pub ms: u64,
}

impl Reorder {
    /// The hold of a chosen datagram.
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.ms)
    }
}

impl FaultSpec for Reorder {
    fn scope(&self) -> Scope {
        Scope::Datagram
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.ms == 0 {
            return Err(ParamError::new(
                "ms",
                "must be at least 1 (a datagram held for 0 ms is overtaken by none)",
            ));
        }
        check_ms("ms", self.ms)
    }
}
