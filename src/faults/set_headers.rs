//! SetHeaders: headers are set on the request before it is forwarded and on the response
//! before it is returned. An empty value removes the header.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_headers};

/// `SetHeaders(request: {"x-chaos": "1"}, response: {"cache-control": ""})`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetHeaders {
    /// Set on the request.
    #[serde(default)]
    pub request: BTreeMap<String, String>,
    /// Set on the response.
    #[serde(default)]
    pub response: BTreeMap<String, String>,
}

impl FaultSpec for SetHeaders {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_headers("request", &self.request)?;
        check_headers("response", &self.response)
    }
}
