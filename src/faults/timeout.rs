//! Timeout: the stream's data is dropped, and `ms` after the fault took hold the whole
//! connection is closed. With `ms: 0` the connection is held open forever (a blackhole that
//! loses data, as Toxiproxy's timeout does).

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `Timeout(ms: 1000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeout {
    /// Time until the close; 0 never closes.
    pub ms: u64,
}

impl FaultSpec for Timeout {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)
    }
}
