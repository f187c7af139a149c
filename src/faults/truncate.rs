//! Truncate: on an HTTP route, the response body is cut after `after_bytes` and the connection
//! (or, for HTTP/2, the stream) is aborted, so the client sees an incomplete body, not a short
//! one. On a DNS route, `Truncate()` answers a query over UDP with the TC bit set and no
//! records, so the client asks again over TCP (where the query passes).

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Truncate(after_bytes: 1024)` (HTTP), `Truncate()` (DNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truncate {
    /// HTTP: how much of the body gets through (required there; DNS takes none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<u64>,
}

impl FaultSpec for Truncate {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
