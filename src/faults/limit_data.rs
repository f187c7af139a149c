//! LimitData: once `bytes` have passed on the stream since the fault took hold, the connection
//! is closed. The byte that crosses the limit is never sent: exactly `bytes` arrive.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `LimitData(bytes: 1024)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitData {
    /// How many bytes pass before the close.
    pub bytes: u64,
}

impl FaultSpec for LimitData {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
