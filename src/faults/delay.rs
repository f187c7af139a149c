//! Delay: the request is held `ms ± jitter_ms` before it is forwarded.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FaultSpec, Latency, ParamError, Scope};

/// `Delay(ms: 300, jitter_ms: 50)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    /// The mean hold.
    pub ms: u64,
    /// Each request's hold is drawn from `ms ± jitter_ms`.
    #[serde(default)]
    pub jitter_ms: u64,
}

impl Delay {
    /// One request's hold.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        Latency {
            ms: self.ms,
            jitter_ms: self.jitter_ms,
        }
        .sample(rng)
    }
}

impl FaultSpec for Delay {
    fn scope(&self) -> Scope {
        Scope::Request
    }

    fn validate(&self) -> Result<(), ParamError> {
        super::check_ms("ms", self.ms)?;
        super::check_ms("jitter_ms", self.jitter_ms)
    }
}
