//! What lets a fault act on one connection's traffic beyond its own draw: the client's
//! address against `when: (client: [...])`, and a place under the fault's `max_active`.

use std::net::IpAddr;
use std::sync::Arc;

use super::caps::{Caps, Permit};
use crate::rules::{Fault, client_allowed};

/// One connection's client and where capped faults are counted.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Unknown, faults with a `client` condition pass the connection by.
    client: Option<IpAddr>,
    /// Without it, capped faults pass the connection by rather than go over their cap.
    caps: Option<Arc<Caps>>,
}

impl Gate {
    /// The gate of a connection from `client`, counted in `caps`.
    pub fn new(client: IpAddr, caps: Arc<Caps>) -> Self {
        Gate {
            client: Some(client),
            caps: Some(caps),
        }
    }

    /// The gate of a connection from `client` where caps are not counted: capped faults pass
    /// it by.
    pub fn client_only(client: IpAddr) -> Self {
        Gate {
            client: Some(client),
            caps: None,
        }
    }

    /// The client's address, when known.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// Where places and shared budgets are counted, when known.
    pub fn caps(&self) -> Option<&Arc<Caps>> {
        self.caps.as_ref()
    }

    /// Whether `fault`'s `when: (client: ...)` lets it act on this connection.
    pub fn client_allowed(&self, fault: &Fault) -> bool {
        match (fault.when.as_deref(), self.client) {
            (None, _) => true,
            (Some(when), Some(ip)) => client_allowed(Some(when), ip),
            (Some(when), None) => when.client.is_empty(),
        }
    }

    /// A place under `fault`'s `max_active` (`Some(None)` when it has no cap), or `None` when
    /// the cap is full or cannot be counted here: the fault then passes this one by.
    pub fn admit(&self, fault: &Fault) -> Option<Option<Permit>> {
        let Some(max) = fault.max_active else {
            return Some(None);
        };
        self.caps
            .as_ref()
            .and_then(|caps| caps.try_acquire(&fault.name, max))
            .map(Some)
    }
}
