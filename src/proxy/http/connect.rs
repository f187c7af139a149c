//! The upstream connector of an HTTP route: HTTP or HTTPS, with `ConnectDelay` faults applied
//! to every new upstream connection (pooled ones are reused as they are, as a real client's
//! would be).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use tower_service::Service;

use crate::faults::{FaultKind, rng};
use crate::rules::Fault;
use crate::store::{RuleSet, Store};
use crate::telemetry::Metrics;

/// A connector that waits out the route's connect delay before dialing.
#[derive(Clone)]
pub struct DelayedConnector<C> {
    inner: C,
    store: Store,
    metrics: Arc<Metrics>,
    route: Arc<str>,
    seed: u64,
    dials: Arc<AtomicU64>,
}

impl<C> DelayedConnector<C> {
    /// Wraps `inner` for `route`.
    pub fn new(inner: C, store: Store, metrics: Arc<Metrics>, route: Arc<str>, seed: u64) -> Self {
        DelayedConnector {
            inner,
            store,
            metrics,
            route,
            seed,
            dials: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The delay for dial number `dial` under `rules` (the enabled connect delays whose draw
    /// says yes) and the route's connect timeout.
    fn delay(&self, rules: &RuleSet, dial: u64) -> (Duration, Duration) {
        let (delay, timeout, faults) = delays(rules, &self.route, self.seed, dial);
        for fault in &faults {
            if matches!(fault.kind, FaultKind::ConnectDelay(d) if d.ms > 0) {
                self.metrics.fault_fired(&fault.name, fault.kind.name());
            }
        }
        (delay, timeout)
    }
}

fn delay_of(rules: &RuleSet, route: &str, seed: u64, dial: u64) -> (Duration, Duration) {
    let (delay, timeout, _) = delays(rules, route, seed, dial);
    (delay, timeout)
}

/// The total delay, the connect timeout, and the faults that make up the delay.
fn delays(
    rules: &RuleSet,
    route: &str,
    seed: u64,
    dial: u64,
) -> (Duration, Duration, Vec<Arc<Fault>>) {
    let timeout = rules
        .route(route)
        .map(|r| r.timeouts.connect)
        .unwrap_or_else(|| crate::rules::RouteTimeouts::default().connect);
    let faults: Vec<Arc<Fault>> = rules
        .faults_for(route)
        .filter(|f| f.enabled && matches!(f.kind, FaultKind::ConnectDelay(_)))
        .filter(|f| rng::decide(seed, route, &f.name, dial, f.probability))
        .cloned()
        .collect();
    let delay = faults
        .iter()
        .map(|f| match f.kind {
            FaultKind::ConnectDelay(d) => Duration::from_millis(d.ms),
            _ => Duration::ZERO,
        })
        .sum();
    (delay, timeout, faults)
}

/// Waits out the connect delay of dial number `dial`, counted from `started`. A change of
/// rules recomputes it, so a lifted or shortened delay releases the dial at once; `false` if
/// the store closed (the process is stopping).
async fn wait_out_delay(
    store: &Store,
    route: &str,
    seed: u64,
    dial: u64,
    started: tokio::time::Instant,
) -> bool {
    let mut rules = store.subscribe();
    loop {
        let (delay, _) = delay_of(&rules.borrow_and_update(), route, seed, dial);
        let until = started + delay;
        if tokio::time::Instant::now() >= until {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => return true,
            changed = rules.changed() => if changed.is_err() {
                return false;
            },
        }
    }
}

impl<C> Service<Uri> for DelayedConnector<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Error: From<std::io::Error>,
{
    type Response = C::Response;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let started = tokio::time::Instant::now();
        let dial_number = self.dials.fetch_add(1, Ordering::Relaxed);
        let (delay, timeout) = self.delay(&self.store.current(), dial_number);
        let dial = self.inner.call(uri);
        let (store, route, seed) = (self.store.clone(), Arc::clone(&self.route), self.seed);
        Box::pin(async move {
            if !delay.is_zero() && !wait_out_delay(&store, &route, seed, dial_number, started).await
            {
                return Err(std::io::Error::other("Switchboard is stopping").into());
            }
            // The injected delay is the fault; the timeout bounds the real dial only.
            match tokio::time::timeout(timeout, dial).await {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "connect timed out after {}",
                        humantime::format_duration(timeout)
                    ),
                )
                .into()),
            }
        })
    }
}
