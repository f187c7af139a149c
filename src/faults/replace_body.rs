//! ReplaceBody: the upstream's response body is replaced (its status and headers are kept,
//! with a new length and, if given, content type).

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `ReplaceBody(body: "{\"items\": []}", content_type: "application/json")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    /// The new body.
    pub body: String,
    /// The new `Content-Type`, if it changes.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl FaultSpec for ReplaceBody {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        match &self.content_type {
            Some(t) if hyper::header::HeaderValue::from_str(t).is_err() => Err(ParamError::new(
                "content_type",
                format!("{t:?} is not a header value"),
            )),
            _ => Ok(()),
        }
    }
}
