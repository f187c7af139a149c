//! Checks of the fields that aim a fault or bound what it can hurt: `when: (client: ...)`,
//! `max_active`, a shared `Bandwidth`, and a route's `guard` and `request_faults`. They are
//! kept apart from the rest of validation because each depends on where the fault is applied:
//! a fault that acts on whole connections sees the client and nothing inside the connection.

use super::model::{Fault, Match, Protocol, Route};
use crate::faults::{FaultKind, Scope};

/// Where a fault of this kind is decided on a route of this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    /// Once per connection: only the client is known.
    PerConnection,
    /// Per request, command or statement: everything `when` can name is known.
    PerRequest,
    /// For the upstream's pooled connections, which belong to no one client.
    PerPooledDial,
    /// At a PostgreSQL connection's startup, which is refused at once.
    AtStartup,
    /// Per datagram of a Udp route: only the client is known.
    PerDatagram,
}

fn decided(fault: &Fault, route: &Route) -> Decided {
    match (route.protocol, &fault.kind) {
        (Protocol::Http, FaultKind::ConnectDelay(_)) => Decided::PerPooledDial,
        (Protocol::Http, FaultKind::Bandwidth(_)) => Decided::PerConnection,
        (Protocol::Http, _) => Decided::PerRequest,
        (Protocol::Postgres, FaultKind::Reject(_)) => Decided::AtStartup,
        (Protocol::Udp, _) => Decided::PerDatagram,
        (Protocol::Dns, _) => Decided::PerRequest,
        (_, kind) if matches!(kind.scope(), Scope::Stream | Scope::Connection) => {
            Decided::PerConnection
        }
        _ => Decided::PerRequest,
    }
}

/// The problem with `fault`'s `when` as far as where it is decided goes, if any.
pub fn check_when_fits(when: &Match, fault: &Fault, route: &Route) -> Result<(), String> {
    let kind = fault.kind.name();
    match decided(fault, route) {
        Decided::PerConnection if when.looks_inside() => Err(if route.protocol == Protocol::Tcp {
            format!(
                "route {:?} is Tcp: its when takes only client (a Tcp route sees connections, not requests)",
                route.name
            )
        } else {
            format!(
                "{kind} acts on whole connections of route {:?}, so its when takes only client",
                route.name
            )
        }),
        Decided::PerPooledDial => Err(format!(
            "ConnectDelay on Http route {:?} acts on the upstream's pooled dials, which belong to no one client or request; it takes no when",
            route.name
        )),
        Decided::PerDatagram if when.looks_inside() => Err(format!(
            "route {:?} is Udp: its when takes only client (a Udp route sees datagrams, not requests)",
            route.name
        )),
        _ => Ok(()),
    }
}

/// The problem with `fault`'s `max_active` or a shared `Bandwidth`, naming the field.
pub fn check_caps(fault: &Fault, route: &Route) -> Result<(), (&'static str, String)> {
    if let Some(max) = fault.max_active {
        if max == 0 {
            return Err((
                "max_active",
                "max_active must be at least 1 (switch the fault off to apply it to none)".into(),
            ));
        }
        match decided(fault, route) {
            Decided::PerPooledDial => {
                return Err((
                    "max_active",
                    format!(
                        "ConnectDelay on Http route {:?} acts on pooled dials, which max_active cannot count",
                        route.name
                    ),
                ));
            }
            Decided::AtStartup => {
                return Err((
                    "max_active",
                    "Reject refuses a connection at once, so none is ever under it: max_active does not apply".into(),
                ));
            }
            Decided::PerDatagram => {
                return Err((
                    "max_active",
                    format!(
                        "max_active counts connections or requests; route {:?} is Udp, whose datagrams are neither (aim the fault with when: (client: ...) instead)",
                        route.name
                    ),
                ));
            }
            Decided::PerConnection | Decided::PerRequest => {}
        }
    }
    if let FaultKind::Bandwidth(b) = &fault.kind
        && b.shared
        && !matches!(
            route.protocol,
            Protocol::Tcp | Protocol::Redis | Protocol::Postgres
        )
    {
        return Err((
            "shared",
            format!(
                "Bandwidth(shared: true) splits a budget among the connections of Tcp, Redis and Postgres routes; route {:?} is {:?}",
                route.name, route.protocol
            ),
        ));
    }
    if let FaultKind::Truncate(t) = &fault.kind {
        match (route.protocol, t.after_bytes) {
            (Protocol::Http, None) => {
                return Err((
                    "after_bytes",
                    "Truncate on an Http route cuts the body after after_bytes: give it (Truncate(after_bytes: 1024))".into(),
                ));
            }
            (Protocol::Dns, Some(_)) => {
                return Err((
                    "after_bytes",
                    "Truncate on a Dns route sets the TC bit on a UDP answer and cuts no body: write Truncate()".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The problem with a route's `guard` or `request_faults`, naming the field.
pub fn check_route(route: &Route) -> Result<(), (&'static str, String)> {
    if route.request_faults && route.protocol != Protocol::Http {
        return Err((
            "request_faults",
            format!(
                "request_faults reads an HTTP header; route {:?} is {:?}",
                route.name, route.protocol
            ),
        ));
    }
    if let Some(guard) = &route.guard {
        guard.check()?;
    }
    Ok(())
}
