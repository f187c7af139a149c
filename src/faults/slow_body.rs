//! SlowBody: the response body is dripped at `bytes_per_sec`.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `SlowBody(bytes_per_sec: 1024)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowBody {
    /// The body's rate.
    pub bytes_per_sec: u64,
}

impl FaultSpec for SlowBody {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.bytes_per_sec == 0 {
            return Err(ParamError::new("bytes_per_sec", "must be at least 1"));
        }
        Ok(())
    }
}
