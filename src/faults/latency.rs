//! Latency: every chunk is held until its arrival time plus `ms ± jitter_ms`. Measuring from
//! arrival means chunks queued behind a delayed one do not wait twice.

use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope, check_ms};

/// `Latency(ms: 200, jitter_ms: 20)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The mean delay.
    pub ms: u64,
    /// Each chunk's delay is drawn uniformly from `ms - jitter_ms ..= ms + jitter_ms`.
    #[serde(default)]
    pub jitter_ms: u64,
}

impl Latency {
    /// One chunk's delay, drawn from the connection's RNG.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        if self.jitter_ms == 0 {
            return Duration::from_millis(self.ms);
        }
        let low = self.ms.saturating_sub(self.jitter_ms) * 1000;
        let high = (self.ms + self.jitter_ms) * 1000;
        Duration::from_micros(rng.random_range(low..=high))
    }
}

impl FaultSpec for Latency {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_ms("ms", self.ms)?;
        check_ms("jitter_ms", self.jitter_ms)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn samples_stay_within_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let latency = Latency {
            ms: 10,
            jitter_ms: 15,
        };
        for _ in 0..1000 {
            let d = latency.sample(&mut rng);
            assert!(d <= Duration::from_millis(25), "{d:?}");
        }
        let fixed = Latency {
            ms: 5,
            jitter_ms: 0,
        };
        assert_eq!(fixed.sample(&mut rng), Duration::from_millis(5));
    }
}
