//! Serde types for one rules file. Field names here are the public file format.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::client::ClientNet;
pub use super::guard::{Guard, GuardAction};
use crate::faults::FaultKind;

/// The contents of one `*.ron` file under `rules/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Listening sockets and the upstream each forwards to.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Perturbations attached to routes by name.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// One listening socket bound to one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique across every file of a rule set.
    pub name: String,
    /// What the route speaks.
    pub protocol: Protocol,
    /// An `ip:port` to listen on.
    pub listen: String,
    /// A `host:port` to dial; resolved per connection, so a name that does not resolve yet
    /// is not a load error.
    pub upstream: String,
    /// A disabled route does not listen, and its open connections are closed (Toxiproxy's
    /// "down").
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// HTTP routes: terminate TLS on the listener with these PEM files, so faults apply to
    /// HTTPS traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// An `https://` upstream's certificate is verified against this PEM CA file instead of
    /// the built-in Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<String>,
    /// Do not verify an `https://` upstream's certificate (test environments only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Time limits; every one has a default.
    #[serde(default, skip_serializing_if = "RouteTimeouts::is_default")]
    pub timeouts: RouteTimeouts,
    /// HTTP routes: a request may ask for its own faults with an `x-switchboard-fault`
    /// header (`abort=503`, `delay=200ms`, ...). Off by default; the header is never
    /// forwarded either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_faults: bool,
    /// Switches every fault on the route off when its clients see too many errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// Udp routes: at most this many client addresses are forwarded for at once (4096 when
    /// absent); a datagram from a new client beyond it is dropped and counted, as a full
    /// connection-tracking table drops it. Dns routes: at most this many queries in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_flows: Option<u32>,
}

/// How many flows (Udp) or queries in flight (Dns) a route holds when it does not say.
pub const DEFAULT_MAX_FLOWS: u32 = 4096;

/// A route's time limits: `timeouts: (connect: "5s", response: "30s")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteTimeouts {
    /// HTTP: a client's request head must arrive within this (from accept, or from its first
    /// byte on a kept-alive connection).
    #[serde(with = "humantime_serde")]
    pub header: Duration,
    /// HTTP: a client connection with no request in progress and no bytes moving is closed
    /// after this.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// Dialing the upstream gives up after this (TCP: the connection is closed; HTTP: 502).
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// HTTP: an upstream that has not sent its response head within this is answered 504.
    /// None by default: a slow upstream is often what is being rehearsed.
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response: Option<Duration>,
}

impl Default for RouteTimeouts {
    fn default() -> Self {
        RouteTimeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(300),
            connect: Duration::from_secs(10),
            response: None,
        }
    }
}

impl RouteTimeouts {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Route {
    /// An enabled TCP route with nothing else set.
    pub fn tcp(
        name: impl Into<String>,
        listen: impl Into<String>,
        upstream: impl Into<String>,
    ) -> Self {
        Route {
            name: name.into(),
            protocol: Protocol::Tcp,
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: true,
            tls: None,
            upstream_ca: None,
            insecure_skip_verify: false,
            timeouts: RouteTimeouts::default(),
            request_faults: false,
            guard: None,
            max_flows: None,
        }
    }
}

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: String,
    /// The private key.
    pub key: String,
}

/// The protocol a route forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Bytes, both ways, unchanged unless a fault says otherwise.
    Tcp,
    /// HTTP/1.1 and HTTP/2 (h2c) requests, forwarded to an `http://host:port` upstream.
    Http,
    /// Redis's RESP2 and RESP3: bytes pass as on a Tcp route, and faults can act on single
    /// commands.
    Redis,
    /// PostgreSQL's frontend/backend protocol (v3): bytes pass as on a Tcp route, and faults
    /// can act on single statements and on startup.
    Postgres,
    /// Datagrams, forwarded both ways per client address; faults act on single datagrams.
    Udp,
    /// DNS over UDP and TCP on the same address, forwarded to an upstream resolver; faults act
    /// on single queries.
    Dns,
}

/// A named perturbation attached to a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Unique across every file of a rule set.
    pub name: String,
    /// The route this fault applies to.
    pub route: String,
    /// A disabled fault stays in the rule set and can be switched on later.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// For TCP routes, decided once per connection (Toxiproxy's "toxicity").
    #[serde(default = "default_probability")]
    pub probability: f64,
    /// Which stream the fault acts on; connection-level kinds ignore it.
    #[serde(default)]
    pub direction: Direction,
    /// What the fault does.
    pub kind: FaultKind,
    /// Which clients, HTTP requests, Redis commands or SQL statements it applies to; all of
    /// them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Box<Match>>,
    /// At most this many connections (connection and stream kinds) or requests and commands
    /// (the others) are under the fault at once; the rest pass untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
}

/// Which clients, HTTP requests, Redis commands, SQL statements or DNS queries a fault applies to. Every
/// condition given must hold; `client` fits every route, each other condition one protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The client's source address must be one of these addresses or in one of these
    /// networks (`"127.0.0.2"`, `"10.1.0.0/16"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client: Vec<ClientNet>,
    /// The method, e.g. `"POST"` (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `/orders` (exact), `/api/*` (that prefix and everything below it), or `*` standing
    /// for exactly one segment anywhere else (`/orders/*/items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers that must be present with these values (names in any case).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Query parameters that must be present with these values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub query: std::collections::BTreeMap<String, String>,
    /// Redis: command names (any case) or Redis ACL categories (`@write`, `@read`, ...); the
    /// command must match one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Redis: a glob (`*`, `?`, `[abc]`) on the command's first key; a command without keys
    /// does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// PostgreSQL: the statement's first keyword (`"INSERT"`, any case; for `WITH ...`, the
    /// main statement's) or `@write`, `@read`, `@ddl`, `@transaction`; one must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statement: Vec<String>,
    /// PostgreSQL: a regular expression that must find a match in the statement's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Pattern>,
    /// PostgreSQL: the database named in the connection's startup message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// PostgreSQL: the user named in the connection's startup message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// DNS: the queried name, exactly or as a glob whose `*` stands for one or more whole
    /// labels (`"*.primary.shop.internal"`); any case, with or without the final dot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// DNS: query types (`"A"`, `"AAAA"`, `"SRV"`, ...); the query must ask for one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qtype: Vec<String>,
}

impl Match {
    /// Whether the `client` condition holds for a client at `ip` (it does when none is given).
    pub fn client_matches(&self, ip: std::net::IpAddr) -> bool {
        self.client.is_empty() || self.client.iter().any(|net| net.contains(ip))
    }

    /// Whether a condition other than `client` is given: one that looks inside requests,
    /// commands or statements.
    pub fn looks_inside(&self) -> bool {
        self != &Match {
            client: self.client.clone(),
            ..Match::default()
        }
    }
}

/// Whether a fault's `when` lets it act on a client at `ip`.
pub fn client_allowed(when: Option<&Match>, ip: std::net::IpAddr) -> bool {
    when.is_none_or(|w| w.client_matches(ip))
}

/// A regular expression, kept compiled, written in the rules as its source text.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles `source`, or says why it is not a regular expression.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        regex::RegexBuilder::new(source)
            // A rules file must not be able to make the proxy build a huge automaton.
            .size_limit(1 << 20)
            .build()
            .map(Pattern)
    }

    /// Whether the pattern finds a match anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// The pattern's source.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Pattern::new(&source).map_err(|e| {
            serde::de::Error::custom(format!("matches: not a regular expression: {e}"))
        })
    }
}

fn default_enabled() -> bool {
    true
}

fn default_probability() -> f64 {
    1.0
}

/// A stream of a proxied connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Client to upstream.
    Upstream,
    /// Upstream to client (Toxiproxy's default).
    #[default]
    Downstream,
    /// Both streams.
    Both,
}

impl Direction {
    /// Whether a fault declared with `self` acts on the stream `stream`.
    pub fn covers(self, stream: Direction) -> bool {
        self == Direction::Both || self == stream
    }
}
