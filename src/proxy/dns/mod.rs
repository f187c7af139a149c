//! Dns routes: DNS over UDP and TCP on one listen address, forwarded to an upstream
//! resolver. Messages pass exactly as they are (ids, EDNS, DNSSEC records); a query is read,
//! with hickory-proto, only when the route has a fault switched on, and faults act on single
//! queries: `Rcode`, `Answer`, `Delay`, `Drop`, and `Truncate` (UDP answers with the TC bit,
//! so the client asks again over TCP).

mod decide;
mod query;
mod reply;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tracing::Instrument;

use self::decide::{Decision, Draw, Outcome, Transport};
pub use self::query::check_match;
use super::ProxyContext;
use super::tcp::RouteHandle;
use crate::rules::{DEFAULT_MAX_FLOWS, Route};
use crate::telemetry::{AnswerSource, DnsStats};

/// How long a query waits for the upstream when the route sets no `timeouts.response`: what
/// a stub resolver waits before it tries again.
const DEFAULT_RESPONSE: Duration = Duration::from_secs(5);

/// Starts serving a Dns route on the sockets [`crate::proxy::bind::bind`] bound.
pub fn start(udp: UdpSocket, tcp: TcpListener, route: &Route, ctx: ProxyContext) -> RouteHandle {
    let local_addr = udp
        .local_addr()
        .ok()
        .or_else(|| route.listen.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stop = ctx.shutdown.child_token();
    let name: Arc<str> = Arc::from(route.name.as_str());
    tracing::info!(route = %name, listen = %local_addr, upstream = %route.upstream, "route listening (dns, udp and tcp)");
    let shared = Arc::new(Shared {
        stats: ctx.metrics.dns_route(&name),
        route: Arc::clone(&name),
        ctx,
        next_query: AtomicU64::new(0),
        in_flight: Arc::new(AtomicUsize::new(0)),
    });
    let udp_loop = udp::serve(Arc::new(udp), Arc::clone(&shared), stop.clone());
    let tcp_loop = tcp::serve(tcp, shared, stop.clone());
    let task = tokio::spawn(
        async move {
            tokio::join!(udp_loop, tcp_loop);
        }
        .instrument(tracing::debug_span!("dns", route = %name)),
    );
    RouteHandle::new(local_addr, route, stop, task)
}

/// What the UDP and TCP sides of one route share.
#[derive(Debug)]
struct Shared {
    route: Arc<str>,
    ctx: ProxyContext,
    stats: DnsStats,
    next_query: AtomicU64,
    in_flight: Arc<AtomicUsize>,
}

/// A query counted as in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// A place for one more query in flight, or `None` when `max_flows` are (the query is
    /// dropped and counted).
    fn admit(&self) -> Option<InFlight> {
        let max = self
            .ctx
            .store
            .current()
            .route(&self.route)
            .and_then(|r| r.max_flows)
            .unwrap_or(DEFAULT_MAX_FLOWS);
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= max {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.stats.overflowed();
            return None;
        }
        Some(InFlight(Arc::clone(&self.in_flight)))
    }

    /// Counts a query and decides what the faults do to it.
    fn decide(&self, bytes: &[u8], client: IpAddr, transport: Transport) -> Decision {
        self.stats.query(transport == Transport::Tcp);
        let index = self.next_query.fetch_add(1, Ordering::Relaxed);
        let rules = self.ctx.store.current();
        let decision = decide::decide(
            &rules,
            &self.route,
            bytes,
            client,
            transport,
            Draw {
                seed: self.ctx.seed,
                route: &self.route,
                index,
            },
        );
        for (fault, kind) in &decision.acted {
            self.ctx.metrics.fault_fired(fault, kind);
        }
        if decision.outcome == Outcome::Drop {
            self.stats.dropped();
        }
        decision
    }

    /// The upstream as the rules say now.
    fn upstream(&self) -> Option<String> {
        self.ctx
            .store
            .current()
            .route(&self.route)
            .map(|r| r.upstream.clone())
    }

    /// How long a query waits for the upstream's answer.
    fn response_timeout(&self) -> Duration {
        self.ctx
            .store
            .current()
            .route(&self.route)
            .and_then(|r| r.timeouts.response)
            .unwrap_or(DEFAULT_RESPONSE)
    }

    /// How long a TCP client connection may sit without a query.
    fn idle(&self) -> Duration {
        self.ctx
            .store
            .current()
            .route(&self.route)
            .map(|r| r.timeouts.idle)
            .unwrap_or(DEFAULT_RESPONSE)
    }

    /// Counts an answer sent to a client.
    fn answered(&self, answer: &[u8], source: AnswerSource, arrived: Instant) {
        if let Some(rcode) = reply::rcode_of(answer) {
            self.stats.answered(rcode, source, arrived.elapsed());
        }
    }
}

/// The first address `upstream` resolves to.
async fn resolve(upstream: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(upstream)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{upstream} resolves to no address")))
}
