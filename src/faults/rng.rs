//! Seeded randomness. Every random choice is drawn from an RNG derived from
//! (seed, route, fault, connection index), so a seeded run repeats exactly and no RNG is
//! shared between connections or held globally.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// splitmix64's finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG of one fault on one connection.
pub fn fault_rng(seed: u64, route: &str, fault: &str, connection: u64) -> StdRng {
    let key = mix(seed ^ mix(fnv1a(route.as_bytes())))
        ^ mix(fnv1a(fault.as_bytes()).wrapping_add(1))
        ^ mix(connection.wrapping_add(0x9e37_79b9_7f4a_7c15));
    StdRng::seed_from_u64(mix(key))
}

/// The RNG for per-chunk draws (jitter, slice sizes) of one connection.
pub fn connection_rng(seed: u64, route: &str, connection: u64) -> StdRng {
    fault_rng(seed, route, "", connection)
}

/// Whether a fault with `probability` applies to a connection. The draw is a pure function of
/// its inputs, so it is the same each time it is asked, and raising the probability only adds
/// connections.
pub fn decide(seed: u64, route: &str, fault: &str, connection: u64, probability: f64) -> bool {
    if probability >= 1.0 {
        return true;
    }
    if probability <= 0.0 {
        return false;
    }
    let draw: f64 = rand::RngExt::random(&mut fault_rng(seed, route, fault, connection));
    draw < probability
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_choice() {
        for conn in 0..100 {
            assert_eq!(
                decide(42, "redis", "slow", conn, 0.5),
                decide(42, "redis", "slow", conn, 0.5)
            );
        }
    }

    #[test]
    fn probability_is_honoured_in_proportion() {
        let hits = (0..1000)
            .filter(|&conn| decide(1, "r", "f", conn, 0.3))
            .count();
        assert!((240..=360).contains(&hits), "{hits} of 1000");
    }

    #[test]
    fn seeds_and_names_change_choices() {
        let pattern = |seed, fault| -> Vec<bool> {
            (0..64).map(|c| decide(seed, "r", fault, c, 0.5)).collect()
        };
        assert_ne!(pattern(1, "a"), pattern(2, "a"));
        assert_ne!(pattern(1, "a"), pattern(1, "b"));
    }
}
