//! What the faults of a Udp route do to one stream of one flow: each datagram is dropped, or
//! given the time it leaves (and how many copies), and waits in a queue ordered by that time.
//!
//! Every draw is a pure function of (seed, route, fault, flow, stream, datagram index), so a
//! seeded run drops, delays and duplicates the same datagrams each time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::faults::{FaultKind, rng};
use crate::rules::{Direction, Fault};

/// Where the draws of one stream of one flow come from.
#[derive(Debug, Clone)]
pub struct Draws {
    pub seed: u64,
    pub route: Arc<str>,
    /// The flow's number on its route, from 0 in the order clients appeared.
    pub flow: u64,
}

impl Draws {
    /// The key of datagram `index` of `stream`, unique per flow and stream.
    fn key(&self, stream: Direction, index: u64) -> u64 {
        let stream_bit = u64::from(stream == Direction::Downstream);
        self.flow.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (index.wrapping_mul(2) | stream_bit)
    }

    fn applies(&self, fault: &Fault, key: u64) -> bool {
        rng::decide(self.seed, &self.route, &fault.name, key, fault.probability)
    }
}

/// What the faults decided for one datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<'f> {
    /// Not forwarded; the fault that dropped it.
    Dropped(&'f Fault),
    /// Forwarded `copies` times (1 or 2) at `at`, after the faults in `acted` took hold.
    Send {
        at: Instant,
        copies: u8,
        acted: Vec<&'f Fault>,
    },
}

/// A datagram waiting for its time, ordered by that time and then by arrival.
#[derive(Debug)]
struct Queued {
    at: Instant,
    seq: u64,
    datagram: Bytes,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// How much sending time a `Bandwidth` queue holds before it drops new datagrams (tail drop),
/// as a router's buffer does.
const BANDWIDTH_QUEUE: Duration = Duration::from_secs(1);

/// One stream of one flow.
#[derive(Debug)]
pub struct Shaper {
    stream: Direction,
    draws: Draws,
    /// Datagrams seen on this stream so far.
    index: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    /// The latest time a delayed datagram leaves: later ones never leave before it, so latency
    /// (even with jitter) keeps the order; `Reorder` is what reorders.
    latency_floor: Option<Instant>,
    /// When the `Bandwidth` pacer is free again.
    paced_until: Option<Instant>,
}

impl Shaper {
    /// The shaper of `stream`.
    pub fn new(stream: Direction, draws: Draws) -> Self {
        Shaper {
            stream,
            draws,
            index: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            latency_floor: None,
            paced_until: None,
        }
    }

    /// Decides what `faults` do to a datagram of `len` bytes arriving `now`, and counts it.
    pub fn decide<'f>(
        &mut self,
        now: Instant,
        len: usize,
        faults: &'f [Arc<Fault>],
    ) -> Verdict<'f> {
        let key = self.draws.key(self.stream, self.index);
        self.index += 1;
        let mut delay = Duration::ZERO;
        let mut hold = Duration::ZERO;
        let mut copies = 1;
        let mut rate: Option<(u64, &Fault)> = None;
        let mut acted = Vec::new();
        for fault in faults {
            let covers = matches!(fault.kind, FaultKind::Partition(_))
                || fault.direction.covers(self.stream);
            if !covers || !self.draws.applies(fault, key) {
                continue;
            }
            acted.push(fault.as_ref());
            match &fault.kind {
                FaultKind::Partition(_) | FaultKind::Drop(_) => return Verdict::Dropped(fault),
                FaultKind::Latency(l) => {
                    let mut jitter =
                        rng::fault_rng(self.draws.seed, &self.draws.route, &fault.name, key);
                    delay += l.sample(&mut jitter);
                }
                FaultKind::Reorder(r) => hold += r.hold(),
                FaultKind::Duplicate(_) => copies = 2,
                FaultKind::Bandwidth(b) if rate.is_none_or(|(r, _)| b.bytes_per_sec < r) => {
                    rate = Some((b.bytes_per_sec, fault));
                }
                _ => {}
            }
        }
        let mut at = now + delay;
        if delay > Duration::ZERO || self.latency_floor.is_some_and(|f| f > at) {
            at = self.latency_floor.map_or(at, |floor| at.max(floor));
            self.latency_floor = Some(at);
        }
        if let Some((bytes_per_sec, fault)) = rate {
            let start = self.paced_until.map_or(at, |p| p.max(at));
            if start > at + BANDWIDTH_QUEUE {
                return Verdict::Dropped(fault);
            }
            let sending = Duration::from_secs_f64(len as f64 / bytes_per_sec as f64);
            self.paced_until = Some(start + sending);
            at = start + sending;
        }
        Verdict::Send {
            at: at + hold,
            copies,
            acted,
        }
    }

    /// The stream this shaper acts on.
    pub fn stream(&self) -> Direction {
        self.stream
    }

    /// Queues `datagram` to leave at `at`.
    pub fn push(&mut self, at: Instant, datagram: Bytes) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            datagram,
        }));
    }

    /// When the next queued datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(q)| q.at)
    }

    /// The next datagram due by `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        if self.next_due()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse(q)| q.datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Bandwidth, DropRequest, Duplicate, Latency, Reorder};

    fn fault(name: &str, probability: f64, kind: FaultKind) -> Arc<Fault> {
        Arc::new(Fault {
            name: name.into(),
            route: "u".into(),
            enabled: true,
            probability,
            direction: Direction::Upstream,
            kind,
            when: None,
            max_active: None,
        })
    }

    fn shaper(seed: u64) -> Shaper {
        Shaper::new(
            Direction::Upstream,
            Draws {
                seed,
                route: Arc::from("u"),
                flow: 0,
            },
        )
    }

    fn dropped(seed: u64, faults: &[Arc<Fault>], n: usize) -> Vec<usize> {
        let mut s = shaper(seed);
        let now = Instant::now();
        (0..n)
            .filter(|_| matches!(s.decide(now, 10, faults), Verdict::Dropped(_)))
            .collect()
    }

    #[test]
    fn loss_is_drawn_per_datagram_and_repeats_with_the_seed() {
        let faults = [fault("loss", 0.3, FaultKind::Drop(DropRequest {}))];
        let a = dropped(7, &faults, 10_000);
        assert_eq!(a, dropped(7, &faults, 10_000));
        assert_ne!(a, dropped(8, &faults, 10_000));
        assert!((2_800..=3_200).contains(&a.len()), "{} of 10000", a.len());
    }

    #[test]
    fn a_fault_of_the_other_stream_does_not_act() {
        let mut f = (*fault("loss", 1.0, FaultKind::Drop(DropRequest {}))).clone();
        f.direction = Direction::Downstream;
        assert!(dropped(1, &[Arc::new(f)], 100).is_empty());
    }

    #[test]
    fn latency_keeps_order_even_with_jitter() {
        let faults = [fault(
            "slow",
            1.0,
            FaultKind::Latency(Latency {
                ms: 20,
                jitter_ms: 15,
            }),
        )];
        let mut s = shaper(3);
        let start = Instant::now();
        let mut last = start;
        for i in 0..500 {
            let now = start + Duration::from_micros(i * 100);
            let Verdict::Send { at, copies: 1, .. } = s.decide(now, 10, &faults) else {
                panic!("not sent once");
            };
            assert!(at >= last && at >= now + Duration::from_millis(5));
            last = at;
        }
    }

    #[test]
    fn reorder_holds_chosen_datagrams_behind_later_ones() {
        let faults = [fault(
            "shuffle",
            0.5,
            FaultKind::Reorder(Reorder { ms: 10 }),
        )];
        let mut s = shaper(5);
        let now = Instant::now();
        let times: Vec<Instant> = (0..100)
            .map(|_| match s.decide(now, 10, &faults) {
                Verdict::Send { at, .. } => at,
                Verdict::Dropped(_) => panic!("dropped"),
            })
            .collect();
        let held = times.iter().filter(|t| **t > now).count();
        assert!((30..=70).contains(&held), "{held}");
        assert!(times.windows(2).any(|w| w[0] > w[1]), "nothing overtaken");
    }

    #[test]
    fn duplicate_sends_two_copies() {
        let faults = [fault("twice", 1.0, FaultKind::Duplicate(Duplicate {}))];
        let mut s = shaper(1);
        assert!(matches!(
            s.decide(Instant::now(), 10, &faults),
            Verdict::Send { copies: 2, .. }
        ));
    }

    #[test]
    fn bandwidth_paces_and_drops_past_a_second_of_queue() {
        let faults = [fault(
            "thin",
            1.0,
            FaultKind::Bandwidth(Bandwidth {
                bytes_per_sec: 1000,
                shared: false,
            }),
        )];
        let mut s = shaper(1);
        let now = Instant::now();
        let mut sent = Vec::new();
        let mut dropped = 0;
        for _ in 0..20 {
            match s.decide(now, 100, &faults) {
                Verdict::Send { at, .. } => sent.push(at - now),
                Verdict::Dropped(_) => dropped += 1,
            }
        }
        // 100 bytes at 1000 B/s: one every 100 ms, and a second's worth of queue.
        assert_eq!(sent[0], Duration::from_millis(100));
        assert_eq!(sent[4], Duration::from_millis(500));
        assert_eq!(sent.len(), 11, "{sent:?}");
        assert_eq!(dropped, 9);
    }

    #[test]
    fn the_queue_releases_in_time_order() {
        let mut s = shaper(1);
        let now = Instant::now();
        s.push(now + Duration::from_millis(5), Bytes::from_static(b"b"));
        s.push(now, Bytes::from_static(b"a"));
        s.push(now + Duration::from_millis(5), Bytes::from_static(b"c"));
        assert_eq!(s.pop_due(now).as_deref(), Some(&b"a"[..]));
        assert_eq!(s.pop_due(now), None);
        let later = now + Duration::from_millis(5);
        assert_eq!(s.pop_due(later).as_deref(), Some(&b"b"[..]));
        assert_eq!(s.pop_due(later).as_deref(), Some(&b"c"[..]));
        assert!(s.next_due().is_none());
    }
}
