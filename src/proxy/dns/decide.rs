//! What the faults of a Dns route do to one query: hold it (`Delay`), answer it in the
//! resolver's place (`Rcode`, `Answer`, `Truncate` over UDP), leave it unanswered (`Drop`),
//! or nothing. Each fault's `probability` is drawn per query from the seed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::query::Asked;
use super::reply;
use crate::faults::{FaultKind, rng};
use crate::proxy::gate::Gate;
use crate::rules::Fault;
use crate::store::RuleSet;

/// The transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What becomes of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Goes to the resolver unchanged.
    Forward,
    /// Answered with these bytes in the resolver's place.
    Reply(Vec<u8>),
    /// Left unanswered.
    Drop,
}

/// The decision for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// How long the query is held first.
    pub delay: Duration,
    pub outcome: Outcome,
    /// The faults that took hold, for the counters.
    pub acted: Vec<(String, &'static str)>,
}

impl Decision {
    fn untouched() -> Self {
        Decision {
            delay: Duration::ZERO,
            outcome: Outcome::Forward,
            acted: Vec::new(),
        }
    }
}

/// Where a query's draws come from.
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    pub seed: u64,
    pub route: &'a str,
    /// The query's number on its route.
    pub index: u64,
}

/// Decides for the query `bytes` from `client`, under the rules in force.
pub fn decide(
    rules: &RuleSet,
    route: &str,
    bytes: &[u8],
    client: IpAddr,
    transport: Transport,
    draw: Draw<'_>,
) -> Decision {
    let faults: Vec<&Arc<Fault>> = rules.faults_for(route).filter(|f| f.enabled).collect();
    if faults.is_empty() {
        return Decision::untouched();
    }
    // A message that is not a query passes as it is: the resolver answers it as it would.
    let Some(asked) = Asked::parse(bytes) else {
        return Decision::untouched();
    };
    let gate = Gate::client_only(client);
    let mut decision = Decision::untouched();
    for fault in faults {
        let aimed =
            gate.client_allowed(fault) && fault.when.as_deref().is_none_or(|w| asked.matches(w));
        if !aimed
            || !rng::decide(
                draw.seed,
                draw.route,
                &fault.name,
                draw.index,
                fault.probability,
            )
        {
            continue;
        }
        let answer = match &fault.kind {
            FaultKind::Delay(d) => {
                let mut jitter = rng::fault_rng(draw.seed, draw.route, &fault.name, draw.index);
                decision.delay += d.sample(&mut jitter);
                decision.acted.push((fault.name.clone(), fault.kind.name()));
                continue;
            }
            FaultKind::Drop(_) => Some(Outcome::Drop),
            FaultKind::Rcode(r) => reply::error(&asked, r.code).map(Outcome::Reply),
            FaultKind::Answer(a) => {
                reply::addresses(&asked, &a.addresses, a.ttl).map(Outcome::Reply)
            }
            // Over TCP there is nothing to truncate to: the query passes.
            FaultKind::Truncate(_) if transport == Transport::Udp => {
                reply::truncated(&asked).map(Outcome::Reply)
            }
            _ => None,
        };
        if let Some(outcome) = answer {
            decision.acted.push((fault.name.clone(), fault.kind.name()));
            decision.outcome = outcome;
            break;
        }
    }
    decision
}
