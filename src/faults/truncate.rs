//! Truncate: the response body is cut after `after_bytes` and the connection (or, for HTTP/2,
//! the stream) is aborted, so the client sees an incomplete body, not a short one.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Truncate(after_bytes: 1024)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truncate {
    /// How much of the body gets through.
    pub after_bytes: u64,
}

impl FaultSpec for Truncate {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
