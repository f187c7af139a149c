//! What an accept loop does when `accept` fails. The usual cause is a process out of file
//! descriptors; `accept` then fails at once, every time, so a loop that simply retries spins
//! a core and writes a log line per turn (386 MB in 5 s was seen). Every accept loop backs
//! off instead, doubling its pause up to a bound, and logs at most one line per interval with
//! the count of failures it stands for.

use std::time::{Duration, Instant};

/// The first pause after a failure; it doubles on each failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause: a freed descriptor is used within this.
const MAX_PAUSE: Duration = Duration::from_millis(500);
/// At most one log line per this much time.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The failure state of one accept loop.
#[derive(Debug)]
pub struct AcceptErrors {
    what: String,
    pause: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// For the loop named `what` in log lines ("control endpoint", "route web").
    pub fn new(what: impl Into<String>) -> Self {
        AcceptErrors {
            what: what.into(),
            pause: Duration::ZERO,
            last_logged: None,
            unlogged: 0,
        }
    }

    /// Records a failure; returns how long to pause before the next `accept`.
    pub fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
        self.unlogged += 1;
        let now = Instant::now();
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= LOG_INTERVAL);
        if due {
            tracing::warn!(
                listener = %self.what,
                error = %error,
                failures = self.unlogged,
                "accept failed; backing off (one line per {}s at most)",
                LOG_INTERVAL.as_secs()
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
        self.pause
    }

    /// Records a success: the next failure starts with a short pause again.
    pub fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_bound_and_reset_on_success() {
        let mut errors = AcceptErrors::new("t");
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(&e)).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(pauses[9], MAX_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        errors.succeeded();
        assert_eq!(errors.failed(&e), FIRST_PAUSE);
    }

    #[test]
    fn logs_once_per_interval_and_counts_the_rest() {
        let mut errors = AcceptErrors::new("t");
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        errors.failed(&e);
        assert_eq!(errors.unlogged, 0, "the first failure is logged at once");
        for _ in 0..99 {
            errors.failed(&e);
        }
        assert_eq!(errors.unlogged, 99, "later ones wait for the interval");
    }
}
