//! Bandwidth: a stream is paced to `bytes_per_sec`. The pacing is applied when bytes are
//! written, so removing the fault speeds up data that is already queued. With `shared: true`
//! the rate is one budget for the whole route: each connection with bytes waiting under the
//! fault gets an equal part of it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `Bandwidth(bytes_per_sec: 100000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// The ceiling on the stream's rate.
    pub bytes_per_sec: u64,
    /// One budget for every connection of the route, split evenly among those with bytes
    /// waiting, instead of one per connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// How much time a pacer lets a stream fall behind before it stops catching up. Without a
/// bound, a stream that was idle for a minute could burst a minute's worth of bytes.
const CATCH_UP: Duration = Duration::from_millis(50);

impl Bandwidth {
    /// The part of a shared budget one of `sharers` connections gets (the whole rate when it
    /// is not shared or alone).
    pub fn share(&self, sharers: usize) -> Bandwidth {
        let sharers = u64::try_from(sharers.max(1)).unwrap_or(u64::MAX);
        Bandwidth {
            bytes_per_sec: (self.bytes_per_sec / sharers).max(1),
            shared: self.shared,
        }
    }

    /// The largest piece to write at once: 50 ms worth, so the rate is smooth at any scale.
    pub fn piece(&self) -> usize {
        usize::try_from(self.bytes_per_sec / 20)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// After `written` bytes went out at `now`, the earliest time the next piece may go.
    pub fn next_after(&self, previous: Option<Instant>, now: Instant, written: usize) -> Instant {
        let floor = now.checked_sub(CATCH_UP).unwrap_or(now);
        let start = previous.map_or(now, |p| p.max(floor));
        start + Duration::from_secs_f64(written as f64 / self.bytes_per_sec as f64)
    }
}

impl FaultSpec for Bandwidth {
    fn scope(&self) -> Scope {
        Scope::Stream
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.bytes_per_sec == 0 {
            return Err(ParamError::new(
                "bytes_per_sec",
                "must be at least 1 (use Timeout or Partition to stop a stream)",
            ));
        }
        Ok(())
    }
}
