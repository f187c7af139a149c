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
use crate::store::Store;

/// A connector that waits out the route's connect delay before dialing.
#[derive(Clone)]
pub struct DelayedConnector<C> {
    inner: C,
    store: Store,
    route: Arc<str>,
    seed: u64,
    dials: Arc<AtomicU64>,
}

impl<C> DelayedConnector<C> {
    /// Wraps `inner` for `route`.
    pub fn new(inner: C, store: Store, route: Arc<str>, seed: u64) -> Self {
        DelayedConnector {
            inner,
            store,
            route,
            seed,
            dials: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The delay for the next dial (the enabled connect delays whose draw says yes) and the
    /// route's connect timeout.
    fn delay(&self) -> (Duration, Duration) {
        let dial = self.dials.fetch_add(1, Ordering::Relaxed);
        let rules = self.store.current();
        let timeout = rules
            .route(&self.route)
            .map(|r| r.timeouts.connect)
            .unwrap_or_else(|| crate::rules::RouteTimeouts::default().connect);
        let delay = rules
            .faults_for(&self.route)
            .filter(|f| f.enabled)
            .filter_map(|f| match f.kind {
                FaultKind::ConnectDelay(d) => Some((f, d.ms)),
                _ => None,
            })
            .filter(|(f, _)| rng::decide(self.seed, &self.route, &f.name, dial, f.probability))
            .map(|(_, ms)| Duration::from_millis(ms))
            .sum();
        (delay, timeout)
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
        let (delay, timeout) = self.delay();
        let dial = self.inner.call(uri);
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
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
