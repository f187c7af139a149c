//! A connection that switched protocols (a WebSocket, say): bytes both ways, under the
//! route's partitions as a TCP route's connections are, and known to shutdown.
//!
//! `Bandwidth` needs nothing here: it paces the client's socket beneath hyper, which the
//! upgraded connection keeps. A `Refuse` or `Reset` partition, or the route going away, cuts
//! the tunnel at once, idle or not; a `Blackhole` holds bytes in both directions until it
//! lifts. The tunnel runs on the route's task tracker, so a stop waits for it through the
//! grace period and then ends it.

use std::sync::Arc;
use std::time::Instant;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::faults::PartitionMode;
use crate::proxy::ProxyContext;
use crate::proxy::gate::Gate;
use crate::proxy::tcp::Plan;
use crate::store::RuleSet;
use crate::telemetry::Metrics;

/// Bytes a direction reads at once.
const CHUNK: usize = 16 * 1024;

/// Once both sides switched protocols, carries bytes between them until either closes, a
/// partition cuts them, or the grace period after a stop runs out.
pub fn spawn(
    client: OnUpgrade,
    upstream: OnUpgrade,
    ctx: ProxyContext,
    route: Arc<str>,
    connection: u64,
    client_ip: std::net::IpAddr,
) {
    let tracker = ctx.tracker.clone();
    tracker.spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "protocol upgrade failed");
                return;
            }
        };
        // Three plans watch one tunnel, so none may take a place under a capped fault: the
        // upgrade request already went through the request phase's caps.
        let plan = || {
            Plan::new(Arc::clone(&route), connection, ctx.seed, Instant::now())
                .with_gate(Gate::client_only(client_ip))
        };
        let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
        let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
        let up = pump(client_read, upstream_write, plan(), ctx.store.subscribe());
        let down = pump(upstream_read, client_write, plan(), ctx.store.subscribe());
        tokio::select! {
            _ = async { tokio::join!(up, down) } => tracing::debug!("tunnel finished"),
            why = cut(plan(), ctx.store.subscribe(), &ctx) => tracing::debug!(why, "tunnel cut"),
        }
    });
}

/// Carries one direction: read a chunk, wait while a blackhole holds, write it on.
async fn pump(
    mut from: tokio::io::ReadHalf<TokioIo<Upgraded>>,
    mut to: tokio::io::WriteHalf<TokioIo<Upgraded>>,
    mut plan: Plan,
    mut rules: watch::Receiver<Arc<RuleSet>>,
) {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !wait_while_held(&mut plan, &mut rules).await {
            return;
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// The pumps' plans see the faults the watcher's plan sees; only the watcher counts them.
static UNCOUNTED: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

async fn wait_while_held(plan: &mut Plan, rules: &mut watch::Receiver<Arc<RuleSet>>) -> bool {
    plan.refresh(&rules.borrow_and_update(), Instant::now(), &UNCOUNTED);
    while plan.partition() == Some(PartitionMode::Blackhole) {
        if rules.changed().await.is_err() {
            return false;
        }
        plan.refresh(&rules.borrow_and_update(), Instant::now(), &UNCOUNTED);
    }
    true
}

/// Resolves when the tunnel must end, saying why: a partition that cuts, the route gone, the
/// store closed, or the grace period over.
async fn cut(
    mut plan: Plan,
    mut rules: watch::Receiver<Arc<RuleSet>>,
    ctx: &ProxyContext,
) -> &'static str {
    loop {
        plan.refresh(&rules.borrow_and_update(), Instant::now(), &ctx.metrics);
        if plan.route_gone() {
            return "route disabled";
        }
        if plan.partition_cut().is_some() {
            return "partition";
        }
        tokio::select! {
            changed = rules.changed() => if changed.is_err() {
                return "stopping";
            },
            () = ctx.abort.cancelled() => return "the grace period after a stop ran out",
        }
    }
}
