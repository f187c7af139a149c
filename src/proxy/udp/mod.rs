//! Udp routes: datagrams forwarded both ways per client address. Each client address gets a
//! flow, with a socket of its own connected to the upstream; the route's table of flows is
//! bounded (`max_flows`), and a flow is forgotten after `timeouts.idle` without a datagram
//! either way. Faults act on single datagrams: each draw of a fault's `probability` is made
//! per datagram from the seed.

mod flow;
mod shaper;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::flow::{Flow, MAX_DATAGRAM};
use super::ProxyContext;
use super::accept::AcceptErrors;
use super::tcp::RouteHandle;
use crate::rules::{DEFAULT_MAX_FLOWS, Route};
use crate::telemetry::DatagramStats;

/// How many datagrams from its client a flow holds before it has forwarded them; beyond
/// that they are dropped and counted, as a full socket buffer drops them.
const FLOW_QUEUE: usize = 1024;

/// At most one warning per this much time about a full flow table.
const WARN_INTERVAL: Duration = Duration::from_secs(5);

/// Starts serving a Udp route on a socket from [`crate::proxy::bind::bind`].
pub fn start(socket: UdpSocket, route: &Route, ctx: ProxyContext) -> RouteHandle {
    let local_addr = socket
        .local_addr()
        .ok()
        .or_else(|| route.listen.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stop = ctx.shutdown.child_token();
    let name: Arc<str> = Arc::from(route.name.as_str());
    tracing::info!(route = %name, listen = %local_addr, upstream = %route.upstream, "route listening (udp)");
    let task = tokio::spawn(
        serve(Arc::new(socket), Arc::clone(&name), ctx, stop.clone())
            .instrument(tracing::debug_span!("udp", route = %name)),
    );
    RouteHandle::new(local_addr, route, stop, task)
}

/// A flow as the route's loop knows it.
struct Entry {
    id: u64,
    to_flow: mpsc::Sender<Bytes>,
}

/// The route's flows, by client address.
struct Table {
    route: Arc<str>,
    listen: Arc<UdpSocket>,
    ctx: ProxyContext,
    stop: CancellationToken,
    flows: HashMap<SocketAddr, Entry>,
    next_id: u64,
    ended: mpsc::UnboundedSender<(SocketAddr, u64)>,
    datagrams: DatagramStats,
    last_warned: Option<Instant>,
}

impl Table {
    fn max_flows(&self) -> usize {
        let max = self
            .ctx
            .store
            .current()
            .route(&self.route)
            .and_then(|r| r.max_flows)
            .unwrap_or(DEFAULT_MAX_FLOWS);
        usize::try_from(max).unwrap_or(usize::MAX)
    }

    /// Hands a client's datagram to its flow, starting one for a new client.
    fn deliver(&mut self, client: SocketAddr, datagram: Bytes) {
        let live = self
            .flows
            .get(&client)
            .is_some_and(|e| !e.to_flow.is_closed());
        if !live {
            self.flows.remove(&client);
            if self.flows.len() >= self.max_flows() {
                self.datagrams.flow_refused();
                let now = Instant::now();
                if self.last_warned.is_none_or(|t| now - t >= WARN_INTERVAL) {
                    self.last_warned = Some(now);
                    tracing::warn!(route = %self.route, flows = self.flows.len(), "flow table full: datagrams from new clients are dropped");
                }
                return;
            }
            self.start_flow(client);
        }
        if let Some(entry) = self.flows.get(&client)
            && entry.to_flow.try_send(datagram).is_err()
        {
            self.datagrams.count(
                crate::rules::Direction::Upstream,
                crate::telemetry::DatagramOutcome::Overflowed,
            );
        }
    }

    fn start_flow(&mut self, client: SocketAddr) {
        let (to_flow, from_client) = mpsc::channel(FLOW_QUEUE);
        let id = self.next_id;
        self.next_id += 1;
        let flow = Flow {
            client,
            id,
            route: Arc::clone(&self.route),
            listen: Arc::clone(&self.listen),
            from_client,
            ctx: self.ctx.clone(),
            stop: self.stop.clone(),
            ended: self.ended.clone(),
        };
        let span = tracing::debug_span!("flow", route = %self.route, %client, id);
        self.ctx.tracker.spawn(flow.run().instrument(span));
        self.flows.insert(client, Entry { id, to_flow });
    }
}

async fn serve(
    listen: Arc<UdpSocket>,
    route: Arc<str>,
    ctx: ProxyContext,
    stop: CancellationToken,
) {
    let (ended, mut ended_flows) = mpsc::unbounded_channel();
    let mut table = Table {
        datagrams: ctx.metrics.datagram_route(&route),
        route: Arc::clone(&route),
        listen: Arc::clone(&listen),
        ctx,
        stop: stop.clone(),
        flows: HashMap::new(),
        next_id: 0,
        ended,
        last_warned: None,
    };
    let mut errors = AcceptErrors::new(format!("route {route}"));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some((client, id)) = ended_flows.recv() => {
                if table.flows.get(&client).is_some_and(|e| e.id == id) {
                    table.flows.remove(&client);
                }
            }
            received = listen.recv_from(&mut buf) => match received {
                Ok((n, client)) => {
                    errors.succeeded();
                    table.deliver(client, Bytes::copy_from_slice(&buf[..n]));
                }
                // An unconnected socket reports ICMP errors for datagrams it sent earlier on
                // some systems; they say nothing about this socket, and reading goes on.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    let pause = errors.failed(&e);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
    tracing::debug!(route = %route, "route stopped listening");
}
