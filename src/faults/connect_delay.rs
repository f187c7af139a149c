//! ConnectDelay: a new connection's upstream dial starts only after `ms`.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `ConnectDelay(ms: 300)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectDelay {
    /// The added dial time.
    pub ms: u64,
}

impl FaultSpec for ConnectDelay {
    fn scope(&self) -> Scope {
        Scope::Connection
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)
    }
}
