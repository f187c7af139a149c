//! Nil (Redis): the command is answered with a null reply and never reaches Redis, as a cache
//! that lost its data answers a read.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Nil()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nil {}

impl Nil {
    /// The null reply in the protocol version the connection speaks.
    pub fn reply(resp3: bool) -> &'static [u8] {
        if resp3 { b"_\r\n" } else { b"$-1\r\n" }
    }
}

impl FaultSpec for Nil {
    fn scope(&self) -> Scope {
        Scope::Command
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
