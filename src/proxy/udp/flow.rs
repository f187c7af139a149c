//! One flow of a Udp route: the datagrams of one client address, forwarded through a socket
//! of their own connected to the upstream, so that the upstream's answers come back to that
//! client and to no other. The flow ends when nothing moved either way for the route's
//! `timeouts.idle`, or when the route stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::shaper::{Draws, Shaper, Verdict};
use crate::proxy::gate::Gate;
use crate::proxy::{ProxyContext, timer};
use crate::rules::{Direction, Fault};
use crate::store::RuleSet;
use crate::telemetry::{DatagramOutcome, DatagramStats, RouteStats};

/// The largest datagram UDP carries over IPv4 or IPv6 without jumbograms.
pub const MAX_DATAGRAM: usize = 65_535;

/// Everything a flow needs from the route that made it.
#[derive(Debug)]
pub struct Flow {
    pub client: SocketAddr,
    /// The flow's number on its route.
    pub id: u64,
    pub route: Arc<str>,
    /// The route's listening socket, which answers go out of.
    pub listen: Arc<UdpSocket>,
    /// Datagrams from the client, as the route's loop read them.
    pub from_client: mpsc::Receiver<Bytes>,
    pub ctx: ProxyContext,
    pub stop: CancellationToken,
    /// Told (client, id) when the flow ends, so the route forgets it.
    pub ended: mpsc::UnboundedSender<(SocketAddr, u64)>,
}

/// The enabled faults of the route that may act on this client.
fn faults_of(rules: &RuleSet, route: &str, gate: &Gate) -> Vec<Arc<Fault>> {
    rules
        .faults_for(route)
        .filter(|f| f.enabled && gate.client_allowed(f))
        .cloned()
        .collect()
}

/// Where a flow's upstream is now, resolved when the flow starts.
async fn connect(route: &str, rules: &RuleSet) -> std::io::Result<UdpSocket> {
    let upstream = rules
        .route(route)
        .map(|r| r.upstream.clone())
        .ok_or_else(|| std::io::Error::other("the route is gone"))?;
    let addr = tokio::net::lookup_host(&upstream)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{upstream} resolves to no address")))?;
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

impl Flow {
    /// Forwards until the flow is idle or the route stops.
    pub async fn run(mut self) {
        let stats = self.ctx.metrics.route(&self.route);
        let datagrams = self.ctx.metrics.datagram_route(&self.route);
        let _open = stats.connection_opened();
        let mut rules = self.ctx.store.subscribe();
        let current = rules.borrow_and_update().clone();
        let idle = current
            .route(&self.route)
            .map(|r| r.timeouts.idle)
            .unwrap_or_default();
        match connect(&self.route, &current).await {
            Ok(upstream) => {
                let gate = Gate::client_only(self.client.ip());
                let faults = faults_of(&current, &self.route, &gate);
                let pump = Pump {
                    flow: &mut self,
                    upstream,
                    stats: &stats,
                    datagrams: &datagrams,
                    gate,
                    faults,
                    idle,
                };
                pump.run(&mut rules).await;
                stats.ended();
            }
            Err(e) => {
                tracing::debug!(route = %self.route, client = %self.client, error = %e, "upstream unreachable");
                stats.dial_failed();
                while let Ok(_lost) = self.from_client.try_recv() {
                    datagrams.count(Direction::Upstream, DatagramOutcome::Overflowed);
                }
            }
        }
        let _ = self.ended.send((self.client, self.id));
    }
}

struct Pump<'a> {
    flow: &'a mut Flow,
    upstream: UdpSocket,
    stats: &'a RouteStats,
    datagrams: &'a DatagramStats,
    gate: Gate,
    faults: Vec<Arc<Fault>>,
    idle: std::time::Duration,
}

impl Pump<'_> {
    async fn run(mut self, rules: &mut watch::Receiver<Arc<RuleSet>>) {
        let draws = Draws {
            seed: self.flow.ctx.seed,
            route: Arc::clone(&self.flow.route),
            flow: self.flow.id,
        };
        let mut up = Shaper::new(Direction::Upstream, draws.clone());
        let mut down = Shaper::new(Direction::Downstream, draws);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last_active = Instant::now();
        let mut wake = timer::sleep_until(last_active + self.idle);
        let stop = self.flow.stop.clone();
        loop {
            let due = match (up.next_due(), down.next_due()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            wake.reset(due.unwrap_or(last_active + self.idle));
            tokio::select! {
                () = stop.cancelled() => return,
                changed = rules.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = rules.borrow_and_update().clone();
                    if now.route(&self.flow.route).is_none() {
                        return;
                    }
                    self.faults = faults_of(&now, &self.flow.route, &self.gate);
                }
                got = self.flow.from_client.recv() => {
                    let Some(datagram) = got else { return };
                    last_active = Instant::now();
                    if self.offer(&mut up, last_active, datagram) {
                        self.release(&mut up, &mut down, last_active).await;
                    }
                }
                got = self.upstream.recv(&mut buf) => match got {
                    Ok(n) => {
                        last_active = Instant::now();
                        let datagram = Bytes::copy_from_slice(&buf[..n]);
                        if self.offer(&mut down, last_active, datagram) {
                            self.release(&mut up, &mut down, last_active).await;
                        }
                    }
                    // ICMP port unreachable for an earlier datagram: nothing listens upstream
                    // (yet); the client sees what it would see without the proxy, silence.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        self.datagrams.upstream_unreachable();
                    }
                    Err(e) => {
                        tracing::debug!(route = %self.flow.route, error = %e, "upstream socket failed");
                        return;
                    }
                },
                () = &mut wake => {
                    let now = Instant::now();
                    if due.is_none() && now >= last_active + self.idle {
                        return;
                    }
                    self.release(&mut up, &mut down, now).await;
                }
            }
        }
    }

    /// Decides what becomes of `datagram` and queues it; returns whether it is due now.
    fn offer(&self, shaper: &mut Shaper, now: Instant, datagram: Bytes) -> bool {
        let stream = shaper.stream();
        self.datagrams.count(stream, DatagramOutcome::Received);
        match shaper.decide(now, datagram.len(), &self.faults) {
            Verdict::Dropped(fault) => {
                self.flow
                    .ctx
                    .metrics
                    .fault_fired(&fault.name, fault.kind.name());
                self.datagrams.count(stream, DatagramOutcome::Dropped);
                false
            }
            Verdict::Send { at, copies, acted } => {
                for fault in acted {
                    self.flow
                        .ctx
                        .metrics
                        .fault_fired(&fault.name, fault.kind.name());
                }
                if copies > 1 {
                    self.datagrams.count(stream, DatagramOutcome::Duplicated);
                    shaper.push(at, datagram.clone());
                }
                shaper.push(at, datagram);
                at <= now
            }
        }
    }

    async fn release(&self, up: &mut Shaper, down: &mut Shaper, now: Instant) {
        while let Some(datagram) = up.pop_due(now) {
            match self.upstream.send(&datagram).await {
                Ok(n) => {
                    self.stats.add_bytes(true, n);
                    self.datagrams
                        .count(Direction::Upstream, DatagramOutcome::Forwarded);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    self.datagrams.upstream_unreachable();
                }
                Err(_) => self
                    .datagrams
                    .count(Direction::Upstream, DatagramOutcome::Overflowed),
            }
        }
        while let Some(datagram) = down.pop_due(now) {
            match self.flow.listen.send_to(&datagram, self.flow.client).await {
                Ok(n) => {
                    self.stats.add_bytes(false, n);
                    self.datagrams
                        .count(Direction::Downstream, DatagramOutcome::Forwarded);
                }
                Err(_) => self
                    .datagrams
                    .count(Direction::Downstream, DatagramOutcome::Overflowed),
            }
        }
    }
}
