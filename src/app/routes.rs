//! Run-time changes to routes: created, changed, enabled, disabled and removed through the
//! control endpoint (the Toxiproxy API's proxies are routes).

use std::net::SocketAddr;

use super::{ChangeError, RouteInfo, Switchboard};
use crate::proxy::bind::{Listener, bind};
use crate::rules::{Fault, Route};
use crate::store::Source;
use crate::telemetry::EventSource;

/// A partial change to a route; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RouteUpdate {
    /// A new listen address (port 0 picks a free port, kept from then on).
    pub listen: Option<String>,
    /// A new upstream, used from the next connection.
    pub upstream: Option<String>,
    /// Listen, or stop listening and close open connections.
    pub enabled: Option<bool>,
}

/// For a route asking for port 0: binds it now and pins the real address into the route, so
/// that it keeps its port across disable and enable (as Toxiproxy does).
async fn pin_port(route: &mut Route) -> Result<Option<(String, Listener)>, ChangeError> {
    let asks_for_any_port = route
        .listen
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.port() == 0);
    if !asks_for_any_port || !route.enabled {
        return Ok(None);
    }
    let listener = bind(route).await.map_err(|e| ChangeError::Bind(vec![e]))?;
    if let Some(addr) = listener.local_addr() {
        route.listen = addr.to_string();
    }
    Ok(Some((route.name.clone(), listener)))
}

impl Switchboard {
    /// Adds a route (source `api`) and binds it unless it is disabled.
    pub async fn create_route(&self, mut route: Route) -> Result<RouteInfo, ChangeError> {
        let mut state = self.inner.state.lock().await;
        if self.store().current().route(&route.name).is_some() {
            return Err(ChangeError::RouteExists(route.name));
        }
        let name = route.name.clone();
        self.inner.reach.check(&route).await?;
        let prebound = pin_port(&mut route).await?.into_iter().collect();
        let mut candidate = state.overrides.clone();
        candidate.create_route(route);
        self.commit_bound(&mut state, candidate, EventSource::Api, prebound)
            .await?;
        drop(state);
        self.route(&name)
            .await
            .ok_or(ChangeError::UnknownRoute(name))
    }

    /// Changes a route, wherever it was defined. A disabled route stops listening and its
    /// open connections are closed; a moved one is rebound.
    pub async fn update_route(
        &self,
        name: &str,
        update: RouteUpdate,
    ) -> Result<RouteInfo, ChangeError> {
        let mut state = self.inner.state.lock().await;
        let mut route = self
            .store()
            .current()
            .route(name)
            .map(|r| Route::clone(r))
            .ok_or_else(|| ChangeError::UnknownRoute(name.to_string()))?;
        if let Some(listen) = update.listen {
            route.listen = listen;
        }
        if let Some(upstream) = update.upstream {
            route.upstream = upstream;
        }
        if let Some(enabled) = update.enabled {
            route.enabled = enabled;
        }
        if self.store().current().route_source(name) == Some(Source::Api) {
            self.inner.reach.check(&route).await?;
        }
        let prebound = pin_port(&mut route).await?.into_iter().collect();
        let mut candidate = state.overrides.clone();
        candidate
            .update_route(name, &state.files, |r| *r = route)
            .map_err(|_| ChangeError::UnknownRoute(name.to_string()))?;
        self.commit_bound(&mut state, candidate, EventSource::Api, prebound)
            .await?;
        drop(state);
        self.route(name)
            .await
            .ok_or_else(|| ChangeError::UnknownRoute(name.to_string()))
    }

    /// Removes an API-created route and its API-created faults; its connections close.
    pub async fn remove_route(&self, name: &str) -> Result<(), ChangeError> {
        let mut state = self.inner.state.lock().await;
        match self.store().current().route_source(name) {
            None => return Err(ChangeError::UnknownRoute(name.to_string())),
            Some(Source::File) => return Err(ChangeError::FileRoute(name.to_string())),
            Some(Source::Api) => {}
        }
        let mut candidate = state.overrides.clone();
        candidate.remove_route(name);
        self.commit(&mut state, candidate, EventSource::Api).await?;
        Ok(())
    }

    /// Removes the API-created faults on `route`; returns their names.
    pub async fn remove_faults_of(&self, route: &str) -> Result<Vec<String>, ChangeError> {
        let mut state = self.inner.state.lock().await;
        let mut candidate = state.overrides.clone();
        let removed = candidate.remove_faults_of(route);
        self.commit(&mut state, candidate, EventSource::Api).await?;
        Ok(removed)
    }
}

impl Switchboard {
    /// Creates or replaces routes, each with the API faults it should carry, in one change:
    /// all or nothing. A route that exists with the same listen address and upstream is kept
    /// as it is; one that differs is replaced (API routes only). A non-empty fault list
    /// replaces the route's API-created faults.
    pub async fn populate(&self, items: Vec<(Route, Vec<Fault>)>) -> Result<(), ChangeError> {
        let mut state = self.inner.state.lock().await;
        let current = self.store().current();
        let mut candidate = state.overrides.clone();
        let mut prebound = Vec::new();
        for (mut route, faults) in items {
            let name = route.name.clone();
            match current.route(&name) {
                Some(existing)
                    if existing.listen == route.listen && existing.upstream == route.upstream => {}
                Some(_) if current.route_source(&name) == Some(Source::File) => {
                    return Err(ChangeError::FileRoute(name));
                }
                existing => {
                    if existing.is_some() {
                        candidate.remove_route(&name);
                    }
                    self.inner.reach.check(&route).await?;
                    prebound.extend(pin_port(&mut route).await?);
                    candidate.create_route(route);
                }
            }
            if !faults.is_empty() {
                candidate.remove_faults_of(&name);
                for fault in faults {
                    candidate.create(fault, None);
                }
            }
        }
        self.commit_bound(&mut state, candidate, EventSource::Api, prebound)
            .await?;
        Ok(())
    }
}
