//! Error (Redis): the command is answered with an error reply and never reaches Redis, as a
//! read-only replica answers a write or a loading server answers everything.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Error(message: "READONLY You can't write against a read only replica.")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisError {
    /// The error reply's text. Its first word is the error code clients branch on
    /// (`READONLY`, `LOADING`, `MASTERDOWN`, `ERR`, ...).
    pub message: String,
}

impl RedisError {
    /// The reply as Redis writes it: a simple error, the same in RESP2 and RESP3.
    pub fn reply(&self) -> Vec<u8> {
        let mut reply = Vec::with_capacity(self.message.len() + 3);
        reply.push(b'-');
        reply.extend_from_slice(self.message.as_bytes());
        reply.extend_from_slice(b"\r\n");
        reply
    }
}

impl FaultSpec for RedisError {
    fn scope(&self) -> Scope {
        Scope::Command
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.message.is_empty() {
            return Err(ParamError::new(
                "message",
                "is empty; Redis errors start with a code such as READONLY or ERR",
            ));
        }
        // A simple error is one line: a line break would end the reply early and the rest
        // would read as the next reply.
        if self.message.contains(['\r', '\n']) {
            return Err(ParamError::new(
                "message",
                "contains a line break; a Redis error reply is one line",
            ));
        }
        Ok(())
    }
}
