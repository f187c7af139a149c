//! Fault kinds: a closed set, one file per kind, dispatched by an exhaustive `match` on
//! [`FaultKind`]. Each kind knows its parameters, how to check them, and whether it acts on one
//! stream of a connection or on the connection as a whole. How they are applied to bytes lives
//! in `proxy::tcp`, which reads them through the small helpers here.

mod bandwidth;
mod connect_delay;
mod cut_after;
mod latency;
mod limit_data;
mod partition;
mod reset_peer;
pub mod rng;
mod slicer;
mod slow_close;
mod timeout;

pub use bandwidth::Bandwidth;
pub use connect_delay::ConnectDelay;
pub use cut_after::CutAfter;
pub use latency::Latency;
pub use limit_data::LimitData;
pub use partition::{Partition, PartitionMode};
pub use reset_peer::ResetPeer;
pub use slicer::Slicer;
pub use slow_close::SlowClose;
pub use timeout::Timeout;

use serde::{Deserialize, Serialize};

/// The longest delay any fault accepts: an hour. Longer values are almost always a unit
/// mistake (seconds written as milliseconds twice over), and they would overflow timers.
pub const MAX_MS: u64 = 3_600_000;

/// What a fault does. In RON: `Latency(ms: 200, jitter_ms: 20)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Delay each chunk.
    Latency(Latency),
    /// Throttle a stream.
    Bandwidth(Bandwidth),
    /// Delay the close of a stream.
    SlowClose(SlowClose),
    /// Drop a stream's data, then close the connection.
    Timeout(Timeout),
    /// Reset the connection with a TCP RST.
    ResetPeer(ResetPeer),
    /// Split chunks into small pieces with pauses between them.
    Slicer(Slicer),
    /// Close the connection after a number of bytes.
    LimitData(LimitData),
    /// The dependency is unreachable.
    Partition(Partition),
    /// The upstream dial takes longer.
    ConnectDelay(ConnectDelay),
    /// Close the connection some time after it opened.
    CutAfter(CutAfter),
}

/// Whether a kind acts on one stream or on the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Acts on the stream(s) named by the fault's `direction`.
    Stream,
    /// Acts on the connection; `direction` is ignored.
    Connection,
}

/// A parameter that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    /// The parameter's name as written in the file.
    pub field: &'static str,
    /// Why the value is rejected.
    pub message: String,
}

impl ParamError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        ParamError {
            field,
            message: message.into(),
        }
    }
}

/// What every kind provides.
pub trait FaultSpec {
    /// Where the kind acts.
    fn scope(&self) -> Scope;
    /// Checks the parameters, naming the first one that is out of range.
    fn validate(&self) -> Result<(), ParamError>;
}

pub(crate) fn check_ms(field: &'static str, ms: u64) -> Result<(), ParamError> {
    if ms > MAX_MS {
        return Err(ParamError::new(
            field,
            format!("{ms} ms is more than the maximum of {MAX_MS} ms (one hour)"),
        ));
    }
    Ok(())
}

impl FaultKind {
    fn spec(&self) -> &dyn FaultSpec {
        match self {
            FaultKind::Latency(k) => k,
            FaultKind::Bandwidth(k) => k,
            FaultKind::SlowClose(k) => k,
            FaultKind::Timeout(k) => k,
            FaultKind::ResetPeer(k) => k,
            FaultKind::Slicer(k) => k,
            FaultKind::LimitData(k) => k,
            FaultKind::Partition(k) => k,
            FaultKind::ConnectDelay(k) => k,
            FaultKind::CutAfter(k) => k,
        }
    }

    /// Where this kind acts.
    pub fn scope(&self) -> Scope {
        self.spec().scope()
    }

    /// Checks the kind's parameters.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.spec().validate()
    }

    /// The kind's name as written in RON (`Latency`, `Partition`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency(_) => "Latency",
            FaultKind::Bandwidth(_) => "Bandwidth",
            FaultKind::SlowClose(_) => "SlowClose",
            FaultKind::Timeout(_) => "Timeout",
            FaultKind::ResetPeer(_) => "ResetPeer",
            FaultKind::Slicer(_) => "Slicer",
            FaultKind::LimitData(_) => "LimitData",
            FaultKind::Partition(_) => "Partition",
            FaultKind::ConnectDelay(_) => "ConnectDelay",
            FaultKind::CutAfter(_) => "CutAfter",
        }
    }
}
