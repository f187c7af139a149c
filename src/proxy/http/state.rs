//! What an HTTP route remembers between requests: a request counter (each request's index in
//! the seeded draws), FailNth counters and RateLimit buckets, all keyed by fault name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket of `per_sec` tokens, refilled continuously.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-route request state. Locks are held for a few arithmetic steps, never across `.await`.
#[derive(Debug, Default)]
pub struct RouteState {
    requests: AtomicU64,
    nth: Mutex<HashMap<String, u64>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RouteState {
    /// The index of a new request.
    pub fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a matching request for `fault`; true on every `n`-th.
    pub fn nth(&self, fault: &str, n: u64) -> bool {
        let mut counts = self.nth.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(fault.to_string()).or_default();
        *count += 1;
        count.is_multiple_of(n)
    }

    /// Takes a token from `fault`'s bucket; when there is none, how long until there is.
    pub fn take(&self, fault: &str, per_sec: u32, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(per_sec.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(fault.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth() {
        let state = RouteState::default();
        let fails: Vec<bool> = (0..7).map(|_| state.nth("f", 3)).collect();
        assert_eq!(fails, [false, false, true, false, false, true, false]);
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let state = RouteState::default();
        let t0 = Instant::now();
        assert!((0..5).all(|_| state.take("r", 5, t0).is_ok()));
        let wait = state.take("r", 5, t0).expect_err("empty");
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        assert!(state.take("r", 5, t0 + Duration::from_millis(200)).is_ok());
    }
}
