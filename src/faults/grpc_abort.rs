//! GrpcAbort: a gRPC request is answered at once with `grpc-status: code` (a trailers-only
//! response, as gRPC servers send errors); other requests pass.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `GrpcAbort(code: 14, message: "unavailable")` (14 is UNAVAILABLE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcAbort {
    /// The gRPC status code, 1 to 16.
    pub code: u8,
    /// The `grpc-message`.
    #[serde(default)]
    pub message: String,
}

impl FaultSpec for GrpcAbort {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        if !(1..=16).contains(&self.code) {
            return Err(ParamError::new(
                "code",
                format!("gRPC status {} is not an error code (1 to 16)", self.code),
            ));
        }
        if self.message.contains(['\r', '\n']) {
            return Err(ParamError::new("message", "must be one line"));
        }
        Ok(())
    }
}
