//! The set of bound routes, kept in step with the rule set: only routes whose listen address
//! changed are rebound, and a change that cannot bind every new listener binds none.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ProxyError;
use super::bind::{self, Listener};
use super::tcp::{self, RouteHandle};
use crate::rules::Protocol;
use crate::store::{RuleSet, Store};
use crate::telemetry::Metrics;

/// What every connection task needs, handed down explicitly.
#[derive(Debug, Clone)]
pub struct ProxyContext {
    /// The rules in force.
    pub store: Store,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Counters.
    pub metrics: std::sync::Arc<Metrics>,
    /// Connections register here so shutdown can drain them.
    pub tracker: TaskTracker,
    /// Fires when the process stops.
    pub shutdown: CancellationToken,
    /// Fires when the grace period after a stop is over: open connections reset.
    pub abort: CancellationToken,
    /// Who is under a capped fault or shares a route's bandwidth now.
    pub caps: std::sync::Arc<super::caps::Caps>,
}

/// The bound routes by name.
#[derive(Debug, Default)]
pub struct RouteTable {
    bound: HashMap<String, RouteHandle>,
    /// The bound addresses, readable without whatever lock guards the table: readers of
    /// `/v1/routes` must not wait for a change that is binding sockets or joining tasks.
    addrs: BoundAddrs,
}

/// The addresses of the bound routes by name, published by a [`RouteTable`].
#[derive(Debug, Clone, Default)]
pub struct BoundAddrs(std::sync::Arc<std::sync::RwLock<HashMap<String, SocketAddr>>>);

impl BoundAddrs {
    /// Where `route` listens now.
    pub fn get(&self, route: &str) -> Option<SocketAddr> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(route)
            .copied()
    }

    fn publish(&self, bound: &HashMap<String, RouteHandle>) {
        let addrs = bound
            .iter()
            .map(|(name, handle)| (name.clone(), handle.local_addr()))
            .collect();
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = addrs;
    }
}

/// Listeners bound for a change that is not committed yet. Dropping it releases them.
#[derive(Debug)]
pub struct Prepared {
    listeners: Vec<(String, Listener, Option<super::http::HttpTls>)>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn needs_bind(&self, route: &crate::rules::Route) -> bool {
        self.bound.get(&route.name).is_none_or(|h| !h.serves(route))
    }

    /// Binds the listeners that `rules` adds, moves or enables, taking those in `prebound`
    /// as they are. Fails, binding nothing, if any of them cannot be bound.
    pub async fn prepare(
        &self,
        rules: &RuleSet,
        mut prebound: Vec<(String, Listener)>,
    ) -> Result<Prepared, Vec<ProxyError>> {
        let mut listeners = Vec::new();
        let mut errors = Vec::new();
        for route in rules.routes() {
            if !route.enabled || !self.needs_bind(route) {
                continue;
            }
            // HTTP routes always have TLS settings (for https upstreams); a PostgreSQL route
            // has them when it terminates TLS.
            let tls_settings = route.protocol == Protocol::Http || route.tls.is_some();
            let tls = match tls_settings {
                // Certificate and key files are read with blocking I/O: off the runtime's
                // workers, so a slow disk stalls no connection.
                true => {
                    let owned = route.clone();
                    let read = tokio::task::spawn_blocking(move || super::http::prepare(&owned));
                    match read.await {
                        Ok(Ok(tls)) => Some(tls),
                        Ok(Err(e)) => {
                            errors.push(e);
                            continue;
                        }
                        Err(e) => {
                            errors.push(ProxyError::Task {
                                route: route.name.clone(),
                                message: e.to_string(),
                            });
                            continue;
                        }
                    }
                }
                false => None,
            };
            if let Some(i) = prebound.iter().position(|(name, _)| *name == route.name) {
                let (name, listener) = prebound.swap_remove(i);
                listeners.push((name, listener, tls));
                continue;
            }
            // A route moving to a port another route of this table holds now cannot bind
            // until that one lets go; that is reported like any other bind failure.
            match bind::bind(route).await {
                Ok(listener) => listeners.push((route.name.clone(), listener, tls)),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Prepared { listeners })
        } else {
            Err(errors)
        }
    }

    /// Unbinds routes that `rules` removed, moved or disabled (returning once their sockets
    /// are closed) and starts the prepared listeners.
    pub async fn commit(&mut self, prepared: Prepared, rules: &RuleSet, ctx: &ProxyContext) {
        let stale: Vec<String> = self
            .bound
            .iter()
            .filter(|(name, handle)| rules.route(name).is_none_or(|r| !handle.serves(r)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(handle) = self.bound.remove(&name) {
                handle.stop().await;
            }
        }
        for (name, listener, tls) in prepared.listeners {
            if let Some(route) = rules.route(&name) {
                let handle = match (listener, tls) {
                    (Listener::Tcp(listener), Some(tls)) if route.protocol == Protocol::Http => {
                        super::http::start(listener, route, tls, ctx.clone())
                    }
                    (Listener::Tcp(listener), tls) => {
                        tcp::start(listener, route, tls.and_then(|t| t.acceptor()), ctx.clone())
                    }
                    (Listener::Udp(socket), _) => super::udp::start(socket, route, ctx.clone()),
                    (Listener::Dns { udp, tcp }, _) => {
                        super::dns::start(udp, tcp, route, ctx.clone())
                    }
                };
                self.bound.insert(name, handle);
            }
        }
        self.addrs.publish(&self.bound);
    }

    /// The addresses of this table's routes, kept up to date as it changes.
    pub fn addrs(&self) -> BoundAddrs {
        self.addrs.clone()
    }

    /// The address `route` listens on.
    pub fn local_addr(&self, route: &str) -> Option<SocketAddr> {
        self.bound.get(route).map(RouteHandle::local_addr)
    }

    /// Stops every listener.
    pub async fn clear(&mut self) {
        self.addrs.publish(&HashMap::new());
        for (_, handle) in self.bound.drain() {
            handle.stop().await;
        }
    }
}
