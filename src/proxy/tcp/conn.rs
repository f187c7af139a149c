//! One accepted connection: the faults that act before the upstream is dialed (partition,
//! connect delay), the dial, the session, and closing both sockets the way the ending asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::plan::{Cut, Plan};
use super::session::{Ending, Session};
use crate::faults::PartitionMode;
use crate::proxy::gate::Gate;
use crate::proxy::{ProxyContext, postgres, redis};
use crate::rules::Protocol;
use crate::store::RuleSet;
use crate::telemetry::{Failure, RouteStats};

/// Serves one client of `route`, connected from `peer`, until the connection ends.
pub async fn serve(
    client: TcpStream,
    peer: std::net::SocketAddr,
    route: Arc<str>,
    protocol: Protocol,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connection: u64,
    ctx: ProxyContext,
) {
    let stats = ctx.metrics.route(&route);
    let _open = stats.connection_opened();
    let mut rules = ctx.store.subscribe();
    let mut plan = Plan::new(Arc::clone(&route), connection, ctx.seed, Instant::now())
        .with_gate(Gate::new(peer.ip(), Arc::clone(&ctx.caps)));
    plan.refresh(&rules.borrow_and_update(), Instant::now(), &ctx.metrics);

    let accepted = Instant::now();
    loop {
        if !wait_out_partition(&client, &mut plan, &mut rules, &stats, &ctx).await {
            return;
        }
        match wait_out_connect_delay(accepted, &mut plan, &mut rules, &ctx).await {
            Delay::Over => break,
            // The rules changed: a partition may hold now, or the delay be shorter.
            Delay::Changed => continue,
            Delay::Stopped => {
                stats.failed(Failure::Shutdown);
                return;
            }
        }
    }
    let Some(upstream) = dial(&route, &stats, &ctx).await else {
        return;
    };
    // A PostgreSQL route with `tls:` takes up the client's SSLRequest before its session.
    let (client, initial) = match &tls {
        Some(acceptor) if protocol == Protocol::Postgres => {
            match postgres::negotiate(client, acceptor).await {
                Ok(n) => (n.client, n.initial),
                Err(e) => {
                    stats.failed(Failure::Broken);
                    tracing::debug!(error = %e, "TLS negotiation failed");
                    return;
                }
            }
        }
        _ => (client, bytes::Bytes::new()),
    };
    // Small writes must not wait for Nagle: latency faults are measured in milliseconds.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let run = async {
        match protocol {
            Protocol::Redis => {
                let session = redis::Session {
                    client: &client,
                    upstream: &upstream,
                    rng: plan.chunk_rng(),
                    plan,
                    stats: &stats,
                    commands: ctx.metrics.command_route(&route),
                    metrics: &ctx.metrics,
                    route: &route,
                    connection,
                    seed: ctx.seed,
                };
                session.run(&mut rules).await
            }
            Protocol::Postgres => {
                let session = postgres::Session {
                    client: &client,
                    upstream: &upstream,
                    rng: plan.chunk_rng(),
                    plan,
                    stats: &stats,
                    statements: ctx.metrics.command_route(&route),
                    metrics: &ctx.metrics,
                    route: &route,
                    connection,
                    seed: ctx.seed,
                    initial,
                };
                session.run(&mut rules).await
            }
            // Http, Udp and Dns routes are served elsewhere and never get here.
            Protocol::Tcp | Protocol::Http | Protocol::Udp | Protocol::Dns => {
                let session = Session {
                    client: &client,
                    upstream: &upstream,
                    rng: plan.chunk_rng(),
                    plan,
                    stats: &stats,
                    metrics: &ctx.metrics,
                };
                session.run(&mut rules).await
            }
        }
    };
    let ending = tokio::select! {
        ending = run => ending,
        () = ctx.abort.cancelled() => Ending::Cut(Cut::Reset(GRACE_OVER)),
    };
    close(ending, &client, &upstream, &stats);
}

/// Dials the route's upstream as the rules name it now. A dial that takes longer than the
/// route's connect timeout is a failure: the client is closed and the error counted, rather
/// than left hanging on an unreachable upstream. `None` when there is nothing to proxy to.
async fn dial(route: &str, stats: &RouteStats, ctx: &ProxyContext) -> Option<TcpStream> {
    // The upstream is read at dial time, so changing it needs no rebind.
    let Some((upstream_addr, dial_timeout)) = ctx
        .store
        .current()
        .route(route)
        .map(|r| (r.upstream.clone(), r.timeouts.connect))
    else {
        tracing::debug!("route removed before dial");
        stats.failed(Failure::Fault);
        return None;
    };
    let dial = tokio::time::timeout(dial_timeout, TcpStream::connect(&upstream_addr));
    let dialed = tokio::select! {
        dialed = dial => dialed,
        () = ctx.shutdown.cancelled() => {
            stats.failed(Failure::Shutdown);
            return None;
        }
    };
    match dialed {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            stats.dial_failed();
            tracing::warn!(upstream = %upstream_addr, error = %e, "upstream dial failed; closing client");
            None
        }
        Err(_) => {
            stats.dial_failed();
            tracing::warn!(upstream = %upstream_addr, "upstream dial timed out; closing client");
            None
        }
    }
}

/// Counts how the connection ended and closes both sockets the way the ending asks.
fn close(ending: Ending, client: &TcpStream, upstream: &TcpStream, stats: &RouteStats) {
    match ending {
        Ending::Finished => {
            stats.ended();
            tracing::debug!("connection finished");
        }
        Ending::Stopped => {}
        Ending::Cut(Cut::Close(why)) => {
            stats.failed(Failure::Fault);
            tracing::debug!(why, "connection closed by fault");
        }
        Ending::Cut(Cut::Reset(why)) => {
            stats.failed(if why == GRACE_OVER {
                Failure::Shutdown
            } else {
                Failure::Fault
            });
            tracing::debug!(why, "connection reset by fault");
            reset(client);
            reset(upstream);
        }
        Ending::Broken(direction, e) => {
            stats.failed(Failure::Broken);
            // Pass a peer's abort on to the other side instead of a clean close, so the
            // client sees what a direct connection would have shown.
            tracing::debug!(?direction, error = %e, "connection broke");
            reset(client);
            reset(upstream);
        }
    }
}

const GRACE_OVER: &str = "the grace period after a stop ran out";

/// How a wait for `ConnectDelay` ended.
enum Delay {
    Over,
    Changed,
    Stopped,
}

/// Holds the dial for the connect delay in force, counted from `accepted`. A change of rules
/// ends the wait at once, so a lifted or shortened delay releases the waiting dial.
async fn wait_out_connect_delay(
    accepted: Instant,
    plan: &mut Plan,
    rules: &mut watch::Receiver<Arc<RuleSet>>,
    ctx: &ProxyContext,
) -> Delay {
    let until = accepted + plan.connect_delay();
    if Instant::now() >= until {
        return Delay::Over;
    }
    tokio::select! {
        () = tokio::time::sleep_until(until.into()) => Delay::Over,
        changed = rules.changed() => {
            if changed.is_err() {
                return Delay::Stopped;
            }
            let snapshot = rules.borrow_and_update().clone();
            plan.refresh(&snapshot, Instant::now(), &ctx.metrics);
            Delay::Changed
        }
        () = ctx.shutdown.cancelled() => Delay::Stopped,
    }
}

/// Applies a partition that holds at accept time. Returns whether to go on and dial.
async fn wait_out_partition(
    client: &TcpStream,
    plan: &mut Plan,
    rules: &mut watch::Receiver<Arc<RuleSet>>,
    stats: &RouteStats,
    ctx: &ProxyContext,
) -> bool {
    loop {
        if plan.route_gone() {
            stats.failed(Failure::Fault);
            return false;
        }
        match plan.partition() {
            None => return true,
            Some(PartitionMode::Refuse) => {
                stats.failed(Failure::Fault);
                return false;
            }
            Some(PartitionMode::Reset) => {
                stats.failed(Failure::Fault);
                reset(client);
                return false;
            }
            Some(PartitionMode::Blackhole) => {
                tokio::select! {
                    changed = rules.changed() => {
                        if changed.is_err() {
                            return false;
                        }
                        let snapshot = rules.borrow_and_update().clone();
                        plan.refresh(&snapshot, Instant::now(), &ctx.metrics);
                    }
                    () = ctx.shutdown.cancelled() => {
                        stats.failed(Failure::Shutdown);
                        return false;
                    }
                    // The client left: nothing is waiting for the partition to lift.
                    () = client_gone(client) => {
                        stats.failed(Failure::GaveUp);
                        return false;
                    }
                }
            }
        }
    }
}

/// Resolves once a client held without an upstream has hung up (EOF or error). Bytes it sends
/// meanwhile stay queued for when the partition lifts.
async fn client_gone(client: &TcpStream) {
    let mut probe = [0u8; 1];
    loop {
        if client.readable().await.is_err() {
            return;
        }
        match client.peek(&mut probe).await {
            Ok(0) | Err(_) => return,
            // Data waits for the upstream; look again only when the client's state changes.
            Ok(_) => std::future::pending::<()>().await,
        }
    }
}

/// Makes the coming close send RST instead of FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}
