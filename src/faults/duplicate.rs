//! Duplicate: a datagram is delivered twice, as a network that retransmits below the
//! application can deliver it.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Duplicate()`. The fault's `probability` is the share of datagrams sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duplicate {}

impl FaultSpec for Duplicate {
    fn scope(&self) -> Scope {
        Scope::Datagram
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
