//! Drop: the connection is closed (for HTTP/2, the stream is reset) without any response.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Drop()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRequest {}

impl FaultSpec for DropRequest {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
