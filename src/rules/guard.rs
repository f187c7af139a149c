//! A route's guard: `guard: (max_error_rate: 0.5, window: "30s", then: Lift)` switches every
//! fault on the route off when the errors its clients see go over a rate, so a fault left on by
//! mistake cannot hurt more than planned.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a guard trips and what it does then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// The share of the window's requests (HTTP), connections (TCP) or commands (Redis,
    /// PostgreSQL) that may fail; the guard trips when more do.
    pub max_error_rate: f64,
    /// How far back the rate looks.
    #[serde(with = "humantime_serde", default = "default_window")]
    pub window: Duration,
    /// What happens when it trips.
    #[serde(default)]
    pub then: GuardAction,
    /// Whether failures a fault injected (an `Abort`, a `Drop`, a `ResetPeer`, an injected
    /// Redis error) count too. Off: they are left out of the rate altogether, and only what
    /// the dependency or the network did counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub count_injected: bool,
    /// Fewer outcomes than this in the window never trip it: one failed request out of one is
    /// not a rate.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

// Route compares by value; a rate that is NaN never passes validation, so equality on the
// rules in force is an equivalence.
impl Eq for Guard {}

/// What a tripped guard does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardAction {
    /// Switch off every fault on the route.
    #[default]
    Lift,
}

fn default_window() -> Duration {
    Duration::from_secs(30)
}

fn default_min_requests() -> u64 {
    10
}

/// The shortest window a guard may look over: its rate is sampled ten times per window.
pub const MIN_WINDOW: Duration = Duration::from_millis(500);

/// The longest window.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl Guard {
    /// Checks the values, naming the field at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..1.0).contains(&self.max_error_rate) {
            return Err((
                "guard",
                format!(
                    "guard.max_error_rate {} must be at least 0.0 and below 1.0 (a rate of 1.0 could never be exceeded)",
                    self.max_error_rate
                ),
            ));
        }
        if self.window < MIN_WINDOW || self.window > MAX_WINDOW {
            return Err((
                "guard",
                format!(
                    "guard.window {} must be between 500ms and 24h",
                    humantime::format_duration(self.window)
                ),
            ));
        }
        if self.min_requests == 0 {
            return Err(("guard", "guard.min_requests must be at least 1".into()));
        }
        Ok(())
    }
}
