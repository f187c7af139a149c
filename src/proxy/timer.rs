//! A timer precise below a millisecond, for latency faults.
//!
//! tokio's timer wheel ticks in whole milliseconds, so a 50 ms sleep overshoots by 1–2 ms;
//! a latency fault asked for 50 ms should add 50 ms. One thread here sleeps on a condition
//! variable until the earliest deadline (the kernel's futex timeout, precise to tens of
//! microseconds) and wakes the tasks that are due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Sleeps until `at`, waking within tens of microseconds of it.
pub fn sleep_until(at: Instant) -> Sleep {
    Sleep { at, slot: None }
}

/// The future [`sleep_until`] returns.
#[derive(Debug)]
pub struct Sleep {
    at: Instant,
    slot: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.at {
            if let Some(slot) = this.slot.take() {
                timer().cancel(slot);
            }
            return Poll::Ready(());
        }
        this.slot = Some(timer().register(this.at, this.slot, cx.waker()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            timer().cancel(slot);
        }
    }
}

struct Timer {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Deadlines, earliest first; entries whose slot was cancelled are skipped when popped.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: HashMap<u64, Waker>,
    next_slot: u64,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("switchboard-timer".into())
            .spawn(move || timer.run())
            .map_err(|e| tracing::error!(error = %e, "the precise timer thread did not start"))
            .ok();
        timer
    })
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or refreshes) a waker for `at`; returns its slot.
    fn register(&self, at: Instant, slot: Option<u64>, waker: &Waker) -> u64 {
        let mut state = self.lock();
        if let Some(slot) = slot
            && let Some(existing) = state.wakers.get_mut(&slot)
        {
            if !existing.will_wake(waker) {
                existing.clone_from(waker);
            }
            return slot;
        }
        let slot = state.next_slot;
        state.next_slot += 1;
        let earliest = state.due.peek().is_none_or(|Reverse((t, _))| at < *t);
        state.due.push(Reverse((at, slot)));
        state.wakers.insert(slot, waker.clone());
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
        slot
    }

    fn cancel(&self, slot: u64) {
        self.lock().wakers.remove(&slot);
    }

    fn run(&self) {
        let mut ready = Vec::new();
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, slot))) = state.due.peek().copied() {
                if at > now {
                    break;
                }
                state.due.pop();
                if let Some(waker) = state.wakers.remove(&slot) {
                    ready.push(waker);
                }
            }
            if !ready.is_empty() {
                drop(state);
                ready.drain(..).for_each(Waker::wake);
                state = self.lock();
                continue;
            }
            // Cancelled entries would otherwise pile up in the heap until their time.
            if state.wakers.is_empty() {
                state.due.clear();
            }
            state = match state.due.peek() {
                Some(Reverse((at, _))) => {
                    let wait = at.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wakes_at_its_deadline_not_before() {
        for ms in [1, 5, 20] {
            let at = Instant::now() + Duration::from_millis(ms);
            sleep_until(at).await;
            assert!(Instant::now() >= at);
        }
    }

    #[tokio::test]
    async fn a_dropped_sleep_does_not_keep_others_from_waking() {
        let far = sleep_until(Instant::now() + Duration::from_secs(3600));
        let near = Instant::now() + Duration::from_millis(2);
        tokio::select! {
            () = far => panic!("an hour passed"),
            () = sleep_until(near) => {}
        }
        assert!(Instant::now() >= near);
    }
}
