//! A `Route` probe's reading: Switchboard's own counters of one route, compared with the
//! previous reading. On HTTP routes requests and failed requests with request latency; on
//! Redis and PostgreSQL routes commands or statements, those answered with an error (by the
//! server or a fault) and their latency; on TCP routes connections that ended, those that failed as their clients
//! saw it, and round trips. An interval with nothing through the route is "no traffic", not health.

use super::probe::Answer;
use crate::telemetry::LATENCY_BUCKETS_MS;

/// A route's counters as a route probe compares them.
#[derive(Debug, Clone)]
pub(super) struct Counts {
    attempts: u64,
    errors: u64,
    latency: Vec<u64>,
}

/// What a route's clients experienced, from its `/v1/routes/{name}` answer: requests and
/// failed requests on an HTTP route; on a TCP route, connections that ended (cleanly or not)
/// and those that failed (refused, reset or cut by a fault or the upstream, failed dials,
/// clients that gave up on a held connection), with round-trip latency.
pub(super) fn counts(info: &serde_json::Value) -> Option<Counts> {
    let number = |v: &serde_json::Value| v.as_u64();
    let buckets = |v: &serde_json::Value| -> Option<Vec<u64>> {
        Some(v.as_array()?.iter().filter_map(number).collect())
    };
    if let Some(commands) = info.get("commands").filter(|c| !c.is_null()) {
        // Failed connections count as failed attempts: refused or cut before any command,
        // or dropped on one (that command is counted once, as the connection).
        let failed = number(&info["stats"]["failed"])?;
        let answered = number(&commands["commands"])?.saturating_sub(number(&commands["dropped"])?);
        return Some(Counts {
            attempts: answered + failed,
            errors: number(&commands["errors"])? + number(&commands["injected"])? + failed,
            latency: buckets(&commands["latency_counts"])?,
        });
    }
    match info.get("http").filter(|h| !h.is_null()) {
        Some(http) => Some(Counts {
            attempts: number(&http["requests"])?,
            errors: number(&http["errors"])?,
            latency: buckets(&http["latency_counts"])?,
        }),
        None => {
            let stats = &info["stats"];
            let failed = number(&stats["failed"])?;
            Some(Counts {
                attempts: number(&stats["ended"])? + failed,
                errors: failed,
                latency: buckets(&stats["round_trip_counts"])?,
            })
        }
    }
}

/// What happened on a route between two readings.
pub(super) fn interval(before: &Counts, now: &Counts, max_error_rate: f64) -> Answer {
    let attempts = now.attempts.saturating_sub(before.attempts);
    let errors = now.errors.saturating_sub(before.errors);
    let counts: Vec<u64> = now
        .latency
        .iter()
        .zip(before.latency.iter().chain(std::iter::repeat(&0)))
        .map(|(n, b)| n.saturating_sub(*b))
        .collect();
    let timed: u64 = counts.iter().sum();
    if attempts == 0 && timed == 0 {
        return Answer::NoTraffic;
    }
    let rate = if attempts == 0 {
        0.0
    } else {
        errors as f64 / attempts as f64
    };
    Answer::Interval {
        ok: rate <= max_error_rate,
        p99_ms: p99_of_buckets(&counts),
        summary: format!(
            "{errors} of {attempts} failed ({:.1}%) since the previous reading",
            rate * 100.0
        ),
    }
}

/// The upper bound of the bucket holding the 99th percentile (twice the last bound for the
/// overflow bucket); 0 with no requests.
fn p99_of_buckets(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (total as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for (i, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return LATENCY_BUCKETS_MS
                .get(i)
                .map_or(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] * 2, |b| *b)
                as f64;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_interval_counts_errors_and_the_p99_since_the_previous_reading() {
        let before = Counts {
            attempts: 100,
            errors: 1,
            latency: vec![90, 10, 0],
        };
        let now = Counts {
            attempts: 300,
            errors: 5,
            latency: vec![190, 100, 10],
        };
        let Answer::Interval { ok, p99_ms, .. } = interval(&before, &now, 0.01) else {
            panic!("an interval");
        };
        // 4 errors in 200 requests is 2%: above 1%.
        assert!(!ok);
        // 100 ≤ 1 ms, 90 ≤ 2 ms, 10 ≤ 4 ms: the 198th is in the 4 ms bucket.
        assert_eq!(p99_ms, 4.0);
        let Answer::Interval { ok, .. } = interval(&before, &now, 0.05) else {
            panic!("an interval");
        };
        assert!(ok);
    }
}
