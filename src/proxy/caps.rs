//! Counts that span every connection of a route, kept by fault name: how many connections,
//! requests or commands are under a fault with `max_active` now, and how many connections
//! have bytes waiting under a shared `Bandwidth`.
//!
//! Holders count themselves in with a guard ([`Permit`], [`Share`]) and out by dropping it,
//! so a connection that ends or stops being under the fault frees its place whatever path it
//! leaves by. Counts outlive rule changes: a fault whose parameters change keeps its holders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

#[derive(Debug, Default)]
struct Counts {
    active: AtomicUsize,
    sharers: AtomicUsize,
}

/// The live counts of every fault that has holders.
#[derive(Debug, Default)]
pub struct Caps {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_fault: HashMap<Arc<str>, Weak<Counts>>,
    /// The map's size after the last sweep of entries nobody holds.
    swept_at: usize,
}

/// One place under a fault with `max_active`; dropping it frees the place.
#[derive(Debug)]
pub struct Permit(Arc<Counts>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's part of a shared bandwidth budget while it has bytes waiting.
#[derive(Debug)]
pub struct Share(Arc<Counts>);

impl Share {
    /// How many connections split the budget now, this one included.
    pub fn sharers(&self) -> usize {
        self.0.sharers.load(Ordering::Acquire).max(1)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.0.sharers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Caps {
    fn counts(&self, fault: &str) -> Arc<Counts> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counts) = entries.by_fault.get(fault).and_then(Weak::upgrade) {
            return counts;
        }
        // Faults come and go by name; forget those nobody holds once the map has doubled, so
        // it stays proportional to the faults in use.
        if entries.by_fault.len() >= 2 * entries.swept_at.max(32) {
            entries.by_fault.retain(|_, w| w.strong_count() > 0);
            entries.swept_at = entries.by_fault.len();
        }
        let counts = Arc::new(Counts::default());
        entries
            .by_fault
            .insert(Arc::from(fault), Arc::downgrade(&counts));
        counts
    }

    /// A place under `fault` if fewer than `max` are taken.
    pub fn try_acquire(&self, fault: &str, max: u32) -> Option<Permit> {
        let counts = self.counts(fault);
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        counts
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit(counts))
    }

    /// Counts a connection in among those sharing `fault`'s budget.
    pub fn join_share(&self, fault: &str) -> Share {
        let counts = self.counts(fault);
        counts.sharers.fetch_add(1, Ordering::AcqRel);
        Share(counts)
    }

    /// How many connections, requests or commands are under `fault` now (counted only for
    /// faults with `max_active`).
    pub fn active(&self, fault: &str) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .by_fault
            .get(fault)
            .and_then(Weak::upgrade)
            .map_or(0, |c| c.active.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_capped_and_freed_on_drop() {
        let caps = Caps::default();
        let held: Vec<_> = (0..3).filter_map(|_| caps.try_acquire("f", 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(caps.try_acquire("f", 3).is_none(), "a fourth is refused");
        assert_eq!(caps.active("f"), 3);
        assert!(
            caps.try_acquire("g", 3).is_some(),
            "another fault counts apart"
        );
        drop(held);
        assert_eq!(caps.active("f"), 0);
        assert!(caps.try_acquire("f", 3).is_some());
    }

    #[test]
    fn shares_count_their_holders() {
        let caps = Caps::default();
        let a = caps.join_share("bw");
        assert_eq!(a.sharers(), 1);
        let b = caps.join_share("bw");
        assert_eq!((a.sharers(), b.sharers()), (2, 2));
        drop(b);
        assert_eq!(a.sharers(), 1);
    }

    #[test]
    fn names_nobody_holds_are_forgotten() {
        let caps = Caps::default();
        for i in 0..1000 {
            drop(caps.try_acquire(&format!("f{i}"), 1));
        }
        let size = caps
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_fault
            .len();
        assert!(size <= 64, "{size} entries kept for faults nobody holds");
    }
}
