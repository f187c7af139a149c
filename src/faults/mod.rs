//! Fault kinds: a closed set, one file per kind, dispatched by an exhaustive `match` on
//! [`FaultKind`]. Each kind knows its parameters, how to check them, and whether it acts on one
//! stream of a connection or on the connection as a whole. How they are applied to bytes lives
//! in `proxy::tcp`, which reads them through the small helpers here.

mod abort;
mod answer;
mod bandwidth;
pub mod catalogue;
mod connect_delay;
mod cut_after;
mod delay;
mod drop_request;
mod duplicate;
mod fail_nth;
mod grpc_abort;
mod latency;
mod limit_data;
mod nil;
mod partition;
mod rate_limit;
mod rcode;
mod redis_error;
mod reject;
mod reorder;
mod replace_body;
mod reset_peer;
mod response_delay;
pub mod rng;
mod set_headers;
mod shutdown;
mod slicer;
mod slow_body;
mod slow_close;
mod sql_error;
mod timeout;
mod truncate;

pub use abort::Abort;
pub use answer::Answer;
pub use bandwidth::Bandwidth;
pub use connect_delay::ConnectDelay;
pub use cut_after::CutAfter;
pub use delay::Delay;
pub use drop_request::DropRequest;
pub use duplicate::Duplicate;
pub use fail_nth::FailNth;
pub use grpc_abort::GrpcAbort;
pub use latency::Latency;
pub use limit_data::LimitData;
pub use nil::Nil;
pub use partition::{Partition, PartitionMode};
pub use rate_limit::RateLimit;
pub use rcode::{DnsErrorCode, Rcode};
pub use redis_error::RedisError;
pub use reject::Reject;
pub use reorder::Reorder;
pub use replace_body::ReplaceBody;
pub use reset_peer::ResetPeer;
pub use response_delay::ResponseDelay;
pub use set_headers::SetHeaders;
pub use shutdown::Shutdown;
pub use slicer::Slicer;
pub use slow_body::SlowBody;
pub use slow_close::SlowClose;
pub use sql_error::SqlError;
pub use timeout::Timeout;
pub use truncate::Truncate;

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
    /// HTTP: answer at once, without calling the upstream.
    Abort(Abort),
    /// HTTP: answer a gRPC request with an error status.
    GrpcAbort(GrpcAbort),
    /// HTTP: hold the request before forwarding it.
    Delay(Delay),
    /// HTTP: hold the response headers.
    ResponseDelay(ResponseDelay),
    /// HTTP: drip the response body.
    SlowBody(SlowBody),
    /// HTTP: cut the response body and abort.
    Truncate(Truncate),
    /// HTTP: close without any response. In RON: `Drop()`.
    Drop(DropRequest),
    /// HTTP: answer requests beyond a rate with an error.
    RateLimit(RateLimit),
    /// HTTP: set request and response headers.
    SetHeaders(SetHeaders),
    /// HTTP: replace the response body.
    ReplaceBody(ReplaceBody),
    /// HTTP: fail every n-th request.
    FailNth(FailNth),
    /// Redis: answer the command with an error reply. In RON: `Error(message: "...")`.
    Error(RedisError),
    /// Redis: answer the command with a null reply.
    Nil(Nil),
    /// PostgreSQL: fail the statement with an SQLSTATE.
    SqlError(SqlError),
    /// PostgreSQL: a FATAL error on the statement, then the connection closes.
    Shutdown(Shutdown),
    /// PostgreSQL: a FATAL error at startup.
    Reject(Reject),
    /// UDP: deliver a datagram twice.
    Duplicate(Duplicate),
    /// UDP: hold a datagram back so later ones overtake it.
    Reorder(Reorder),
    /// DNS: answer the query with an error code.
    Rcode(Rcode),
    /// DNS: answer an address query with these addresses.
    Answer(Answer),
}

/// Whether a kind acts on one stream or on the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Acts on the stream(s) named by the fault's `direction`.
    Stream,
    /// Acts on the connection; `direction` is ignored.
    Connection,
    /// Acts on HTTP requests or protocol commands; `direction` is ignored.
    Request,
    /// Acts on the commands or statements of a protocol route (Redis, PostgreSQL);
    /// `direction` is ignored.
    Command,
    /// Acts on single datagrams of a Udp route, in the streams `direction` names.
    Datagram,
    /// Acts on the queries of a Dns route; `direction` is ignored.
    Query,
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

pub(crate) fn check_status(field: &'static str, status: u16) -> Result<(), ParamError> {
    if hyper::StatusCode::from_u16(status).is_err() || status < 200 {
        return Err(ParamError::new(
            field,
            format!("{status} is not a final HTTP status (200 to 999)"),
        ));
    }
    Ok(())
}

pub(crate) fn check_headers(
    field: &'static str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(), ParamError> {
    for (name, value) in headers {
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ParamError::new(
                field,
                format!("{name:?} is not a header name"),
            ));
        }
        if hyper::header::HeaderValue::from_str(value).is_err() {
            return Err(ParamError::new(
                field,
                format!("the value of {name:?} is not a header value"),
            ));
        }
    }
    Ok(())
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
            FaultKind::Abort(k) => k,
            FaultKind::GrpcAbort(k) => k,
            FaultKind::Delay(k) => k,
            FaultKind::ResponseDelay(k) => k,
            FaultKind::SlowBody(k) => k,
            FaultKind::Truncate(k) => k,
            FaultKind::Drop(k) => k,
            FaultKind::RateLimit(k) => k,
            FaultKind::SetHeaders(k) => k,
            FaultKind::ReplaceBody(k) => k,
            FaultKind::FailNth(k) => k,
            FaultKind::Error(k) => k,
            FaultKind::Nil(k) => k,
            FaultKind::SqlError(k) => k,
            FaultKind::Shutdown(k) => k,
            FaultKind::Reject(k) => k,
            FaultKind::Duplicate(k) => k,
            FaultKind::Reorder(k) => k,
            FaultKind::Rcode(k) => k,
            FaultKind::Answer(k) => k,
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
            FaultKind::Abort(_) => "Abort",
            FaultKind::GrpcAbort(_) => "GrpcAbort",
            FaultKind::Delay(_) => "Delay",
            FaultKind::ResponseDelay(_) => "ResponseDelay",
            FaultKind::SlowBody(_) => "SlowBody",
            FaultKind::Truncate(_) => "Truncate",
            FaultKind::Drop(_) => "Drop",
            FaultKind::RateLimit(_) => "RateLimit",
            FaultKind::SetHeaders(_) => "SetHeaders",
            FaultKind::ReplaceBody(_) => "ReplaceBody",
            FaultKind::FailNth(_) => "FailNth",
            FaultKind::Error(_) => "Error",
            FaultKind::Nil(_) => "Nil",
            FaultKind::SqlError(_) => "SqlError",
            FaultKind::Shutdown(_) => "Shutdown",
            FaultKind::Reject(_) => "Reject",
            FaultKind::Duplicate(_) => "Duplicate",
            FaultKind::Reorder(_) => "Reorder",
            FaultKind::Rcode(_) => "Rcode",
            FaultKind::Answer(_) => "Answer",
        }
    }

    /// Whether a route of `protocol` can carry this kind; if not, why, naming the kinds that
    /// fit such a route.
    pub fn fits(&self, protocol: crate::rules::Protocol) -> Result<(), String> {
        use crate::rules::Protocol;
        let fits = match protocol {
            Protocol::Tcp => matches!(self.scope(), Scope::Stream | Scope::Connection),
            // Stream faults on an HTTP route would cut through requests; only the ones that
            // act on a whole connection, or pace it, make sense there.
            Protocol::Http => {
                self.scope() == Scope::Request
                    || matches!(
                        self,
                        FaultKind::Partition(_)
                            | FaultKind::ConnectDelay(_)
                            | FaultKind::Bandwidth(_)
                    )
            }
            Protocol::Redis => {
                matches!(self.scope(), Scope::Stream | Scope::Connection)
                    || matches!(
                        self,
                        FaultKind::Error(_)
                            | FaultKind::Nil(_)
                            | FaultKind::Delay(_)
                            | FaultKind::Drop(_)
                    )
            }
            Protocol::Postgres => {
                matches!(self.scope(), Scope::Stream | Scope::Connection)
                    || matches!(
                        self,
                        FaultKind::SqlError(_)
                            | FaultKind::Shutdown(_)
                            | FaultKind::Reject(_)
                            | FaultKind::Delay(_)
                            | FaultKind::Drop(_)
                    )
            }
            Protocol::Udp => matches!(
                self,
                FaultKind::Latency(_)
                    | FaultKind::Drop(_)
                    | FaultKind::Duplicate(_)
                    | FaultKind::Reorder(_)
                    | FaultKind::Bandwidth(_)
                    | FaultKind::Partition(Partition {
                        mode: PartitionMode::Blackhole
                    })
            ),
            Protocol::Dns => matches!(
                self,
                FaultKind::Rcode(_)
                    | FaultKind::Answer(_)
                    | FaultKind::Delay(_)
                    | FaultKind::Drop(_)
                    | FaultKind::Truncate(_)
            ),
        };
        if fits {
            return Ok(());
        }
        let kinds = match protocol {
            Protocol::Tcp => TCP_KINDS.to_string(),
            Protocol::Http => format!("{HTTP_KINDS}, Partition, ConnectDelay or Bandwidth"),
            Protocol::Redis => format!("Error, Nil, Delay, Drop or a TCP kind ({TCP_KINDS})"),
            Protocol::Postgres => {
                format!("SqlError, Shutdown, Reject, Delay, Drop or a TCP kind ({TCP_KINDS})")
            }
            Protocol::Udp => UDP_KINDS.to_string(),
            Protocol::Dns => DNS_KINDS.to_string(),
        };
        Err(format!(
            "{} does not fit a {protocol:?} route; it takes {kinds}",
            self.name()
        ))
    }
}

/// The kinds a TCP route takes, for error messages.
const TCP_KINDS: &str = "Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, Partition, ConnectDelay, CutAfter";

/// The kinds a UDP route takes, for error messages.
const UDP_KINDS: &str =
    "Latency, Drop, Duplicate, Reorder, Bandwidth or Partition(mode: Blackhole)";

/// The kinds a DNS route takes, for error messages.
const DNS_KINDS: &str = "Rcode, Answer, Delay, Drop or Truncate";

/// The request kinds of HTTP routes, for error messages.
const HTTP_KINDS: &str = "Abort, GrpcAbort, Delay, ResponseDelay, SlowBody, Truncate, Drop, RateLimit, SetHeaders, ReplaceBody, FailNth";
