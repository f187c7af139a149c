//! A timer precise below a millisecond, for latency faults.
//!
//! tokio's timer wheel ticks in whole milliseconds, so a 50 ms sleep overshoots by 1–2 ms;
//! a latency fault asked for 50 ms should add 50 ms. One thread here sleeps on a condition
//! variable until the earliest deadline (the kernel's futex timeout, precise to tens of
//! microseconds) and wakes the tasks that are due. How late it wakes is measured in
//! `benches/timer.rs`.
//!
//! Each sleep holds at most one entry, removed the moment it is reset, cancelled or dropped,
//! so the timer holds no more entries than there are sleeps waiting. Should the thread fail to
//! start, sleeps fall back to tokio's timer rather than never waking.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Sleeps until `at`, waking within tens of microseconds of it.
pub fn sleep_until(at: Instant) -> Sleep {
    Sleep {
        at,
        entry: None,
        fallback: None,
    }
}

/// The future [`sleep_until`] returns. It can be reset to a new deadline and awaited again,
/// so that a loop keeps one sleep rather than making one per pass.
#[derive(Debug)]
pub struct Sleep {
    at: Instant,
    entry: Option<Key>,
    fallback: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A deadline and a number that makes it unique.
type Key = (Instant, u64);

impl Sleep {
    /// Moves the deadline to `at`; the next poll waits for it.
    pub fn reset(&mut self, at: Instant) {
        self.at = at;
    }

    fn cancel(&mut self) {
        if let (Some(key), Some(timer)) = (self.entry.take(), timer()) {
            timer.remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_with(timer(), cx)
    }
}

impl Sleep {
    fn poll_with(&mut self, timer: Option<&Timer>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        if Instant::now() >= this.at {
            this.cancel();
            return Poll::Ready(());
        }
        match timer {
            Some(timer) => {
                this.entry = Some(timer.register(this.at, this.entry.take(), cx.waker()));
                Poll::Pending
            }
            None => {
                let at = tokio::time::Instant::from_std(this.at);
                let sleep = this
                    .fallback
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep.as_mut().poll(cx)
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

struct Timer {
    due: Mutex<BTreeMap<Key, Waker>>,
    next: AtomicU64,
    changed: Condvar,
}

/// The timer, with its thread running; `None` if the thread could not be started.
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            due: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            changed: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("switchboard-timer".into())
            .spawn(move || timer.run())
        {
            Ok(_) => Some(timer),
            Err(e) => {
                tracing::error!(error = %e, "the precise timer thread did not start; latency faults use tokio's timer (about 1 ms coarser)");
                None
            }
        }
    })
}

/// Sleeps waiting in the precise timer now: one per pending [`Sleep`] at most.
pub fn waiting() -> usize {
    timer().map_or(0, |t| t.lock().len())
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, Waker>> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a waker for `at`, replacing the sleep's previous entry; returns the new key.
    fn register(&self, at: Instant, previous: Option<Key>, waker: &Waker) -> Key {
        let mut due = self.lock();
        if let Some(key) = previous {
            if key.0 == at
                && let Some(existing) = due.get_mut(&key)
            {
                if !existing.will_wake(waker) {
                    existing.clone_from(waker);
                }
                return key;
            }
            due.remove(&key);
        }
        let key = (at, self.next.fetch_add(1, Ordering::Relaxed));
        let earliest = due.first_key_value().is_none_or(|(first, _)| key < *first);
        due.insert(key, waker.clone());
        drop(due);
        if earliest {
            self.changed.notify_one();
        }
        key
    }

    fn remove(&self, key: Key) {
        self.lock().remove(&key);
    }

    fn run(&self) {
        let mut ready = Vec::new();
        let mut due = self.lock();
        loop {
            let now = Instant::now();
            while let Some(entry) = due.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                ready.push(entry.remove());
            }
            if !ready.is_empty() {
                drop(due);
                ready.drain(..).for_each(Waker::wake);
                due = self.lock();
                continue;
            }
            due = match due.first_key_value().map(|(key, _)| key.0) {
                Some(at) => {
                    let wait = at.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(due, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(due)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The timer is shared by every test of the crate: count only this test's entries.
    fn waiting_until(far: Instant) -> usize {
        timer().map_or(0, |t| t.lock().keys().filter(|k| k.0 == far).count())
    }

    #[tokio::test]
    async fn a_reset_sleep_holds_one_entry_and_a_dropped_one_none() {
        let far = Instant::now() + Duration::from_secs(7200);
        let farther = far + Duration::from_secs(1);
        let mut sleep = sleep_until(far);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            sleep.reset(far);
            assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
            sleep.reset(farther);
            assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        }
        assert_eq!(
            waiting_until(far),
            0,
            "the old deadline's entry went with the reset"
        );
        assert_eq!(waiting_until(farther), 1);
        drop(sleep);
        assert_eq!(waiting_until(farther), 0);
    }

    #[tokio::test]
    async fn cancelled_sleeps_leave_nothing_behind() {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..10_000 {
            // Registered, then given up: a select that another branch won.
            let mut sleep = sleep_until(far);
            assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        }
        assert_eq!(waiting_until(far), 0);
    }

    #[tokio::test]
    async fn without_the_timer_thread_a_sleep_still_wakes() {
        let at = Instant::now() + Duration::from_millis(20);
        let mut sleep = sleep_until(at);
        let woke = tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| sleep.poll_with(None, cx)),
        )
        .await;
        assert!(woke.is_ok(), "tokio's timer woke it");
        assert!(Instant::now() >= at);
    }

    #[tokio::test]
    async fn a_far_sleep_does_not_keep_a_near_one_from_waking() {
        let far = sleep_until(Instant::now() + Duration::from_secs(3600));
        let near = Instant::now() + Duration::from_millis(2);
        let woke = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                () = far => false,
                () = sleep_until(near) => true,
            }
        })
        .await;
        assert_eq!(woke, Ok(true), "the near sleep woke, within seconds");
    }
}
