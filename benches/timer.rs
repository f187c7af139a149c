//! How late the precise timer wakes, against tokio's timer, on the same runtime in the same
//! run: the timer's promise to latency faults is "within tens of microseconds", and this is
//! where that promise is measured (tests only check what a noisy machine cannot blur).
//!
//! `cargo bench --bench timer`: one Markdown table, lateness p50 / p99 / max per delay.

use std::time::{Duration, Instant};

use switchboard::proxy::timer;

const SAMPLES: usize = 400;

/// Lateness of `SAMPLES` sleeps of `delay`, in microseconds, sorted.
async fn lateness(delay: Duration, precise: bool) -> Vec<f64> {
    let mut late = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let at = Instant::now() + delay;
        if precise {
            timer::sleep_until(at).await;
        } else {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
        late.push(Instant::now().duration_since(at).as_secs_f64() * 1e6);
    }
    late.sort_by(f64::total_cmp);
    late
}

fn at(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| delay | timer | lateness p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for ms in [1u64, 5, 50] {
        for (name, precise) in [("switchboard", true), ("tokio", false)] {
            let late = runtime.block_on(lateness(Duration::from_millis(ms), precise));
            println!(
                "| {ms} ms | {name} | {:.0} µs | {:.0} µs | {:.0} µs |",
                at(&late, 0.5),
                at(&late, 0.99),
                late[late.len() - 1]
            );
        }
    }
}
