//! Slicer: data is written in pieces of about `avg_bytes`, with `delay_us` between pieces,
//! which exercises a client's handling of partial reads.

use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Slicer(avg_bytes: 64, variation_bytes: 32, delay_us: 100)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slicer {
    /// The mean piece size.
    pub avg_bytes: usize,
    /// Each piece's size is drawn from `avg_bytes ± variation_bytes`.
    #[serde(default)]
    pub variation_bytes: usize,
    /// The pause after each piece.
    #[serde(default)]
    pub delay_us: u64,
}

impl Slicer {
    /// The size of the next piece, never 0.
    pub fn piece(&self, rng: &mut impl rand::Rng) -> usize {
        if self.variation_bytes == 0 {
            return self.avg_bytes;
        }
        let low = self.avg_bytes - self.variation_bytes;
        rng.random_range(low..=self.avg_bytes + self.variation_bytes)
            .max(1)
    }

    /// The pause after each piece.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us)
    }
}

impl FaultSpec for Slicer {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.avg_bytes == 0 {
            return Err(ParamError::new("avg_bytes", "must be at least 1"));
        }
        if self.variation_bytes >= self.avg_bytes {
            return Err(ParamError::new(
                "variation_bytes",
                format!("must be less than avg_bytes ({})", self.avg_bytes),
            ));
        }
        if self.delay_us > super::MAX_MS * 1000 {
            return Err(ParamError::new("delay_us", "is more than an hour"));
        }
        Ok(())
    }
}
