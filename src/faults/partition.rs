//! Partition: the dependency is gone. It acts on the whole connection, and on connections that
//! arrive while it is on.

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Partition(mode: Refuse)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// How the loss shows.
    pub mode: PartitionMode,
}

/// How a partition shows to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionMode {
    /// New connections are closed at once; open ones are closed.
    Refuse,
    /// Nothing moves: new connections are accepted and held without dialing the upstream, open
    /// ones stop reading and writing. As in a real partition nothing is lost: when it is
    /// lifted, held connections dial and held bytes flow.
    Blackhole,
    /// New and open connections are reset (TCP RST).
    Reset,
}

impl FaultSpec for Partition {
    fn scope(&self) -> Scope {
        Scope::Connection
    }

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
