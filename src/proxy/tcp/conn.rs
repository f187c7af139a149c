//! One accepted connection: the faults that act before the upstream is dialed (partition,
//! connect delay), the dial, the session, and closing both sockets the way the ending asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::plan::{Cut, Plan};
use super::session::{Ending, Session};
use crate::faults::PartitionMode;
use crate::proxy::ProxyContext;
use crate::store::RuleSet;

/// Serves one client of `route` until the connection ends.
pub async fn serve(client: TcpStream, route: Arc<str>, connection: u64, ctx: ProxyContext) {
    let stats = ctx.metrics.route(&route);
    let _open = stats.connection_opened();
    let mut rules = ctx.store.subscribe();
    let mut plan = Plan::new(Arc::clone(&route), connection, ctx.seed, Instant::now());
    plan.refresh(&rules.borrow_and_update(), Instant::now(), &ctx.metrics);

    if !wait_out_partition(&client, &mut plan, &mut rules, &ctx).await {
        return;
    }
    let delay = plan.connect_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // The upstream is read at dial time, so changing it needs no rebind.
    // A dial that takes longer than the route's connect timeout is a failure: the client is
    // closed and the error counted, rather than left hanging on an unreachable upstream.
    let Some((upstream_addr, dial_timeout)) = ctx
        .store
        .current()
        .route(&route)
        .map(|r| (r.upstream.clone(), r.timeouts.connect))
    else {
        tracing::debug!("route removed before dial");
        return;
    };
    let upstream = match tokio::time::timeout(dial_timeout, TcpStream::connect(&upstream_addr))
        .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            stats.dial_failed();
            tracing::warn!(upstream = %upstream_addr, error = %e, "upstream dial failed; closing client");
            return;
        }
        Err(_) => {
            stats.dial_failed();
            tracing::warn!(upstream = %upstream_addr, "upstream dial timed out; closing client");
            return;
        }
    };
    // Small writes must not wait for Nagle: latency faults are measured in milliseconds.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let session = Session {
        client: &client,
        upstream: &upstream,
        rng: plan.chunk_rng(),
        plan,
        stats: &stats,
        metrics: &ctx.metrics,
    };
    let ending = tokio::select! {
        ending = session.run(&mut rules) => ending,
        () = ctx.abort.cancelled() => Ending::Cut(Cut::Reset("the grace period after a stop ran out")),
    };
    match ending {
        Ending::Finished => tracing::debug!("connection finished"),
        Ending::Stopped => {}
        Ending::Cut(Cut::Close(why)) => tracing::debug!(why, "connection closed by fault"),
        Ending::Cut(Cut::Reset(why)) => {
            tracing::debug!(why, "connection reset by fault");
            reset(&client);
            reset(&upstream);
        }
        Ending::Broken(direction, e) => {
            // Pass a peer's abort on to the other side instead of a clean close, so the
            // client sees what a direct connection would have shown.
            tracing::debug!(?direction, error = %e, "connection broke");
            reset(&client);
            reset(&upstream);
        }
    }
}

/// Applies a partition that holds at accept time. Returns whether to go on and dial.
async fn wait_out_partition(
    client: &TcpStream,
    plan: &mut Plan,
    rules: &mut watch::Receiver<Arc<RuleSet>>,
    ctx: &ProxyContext,
) -> bool {
    loop {
        if plan.route_gone() {
            return false;
        }
        match plan.partition() {
            None => return true,
            Some(PartitionMode::Refuse) => return false,
            Some(PartitionMode::Reset) => {
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
                    () = ctx.shutdown.cancelled() => return false,
                    // The client left: nothing is waiting for the partition to lift.
                    () = client_gone(client) => return false,
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
