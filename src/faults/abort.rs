//! Abort: the request is answered at once with `status`, `body` and `headers`; the upstream is
//! never called.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_headers, check_status};

/// `Abort(status: 503, body: "down for the drill", headers: {"retry-after": "5"})`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// The answer's status.
    pub status: u16,
    /// The answer's body.
    #[serde(default)]
    pub body: String,
    /// Extra answer headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl FaultSpec for Abort {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_status("status", self.status)?;
        check_headers("headers", &self.headers)
    }
}
