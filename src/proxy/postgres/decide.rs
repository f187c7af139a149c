//! What happens to each client message: the connection's startup facts, its prepared
//! statements and portals (so an Execute knows which statement it runs), and the faults that
//! match a statement, drawn by their probability.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use rand::rngs::StdRng;

use super::backend::{self, STAND_IN};
use super::frontend::{FrameError, Message, Startup};
use super::matcher::{self, Facts};
use super::replies::{Expect, Injection};
use super::sql::{self, Statement};
use crate::faults::{FaultKind, rng};
use crate::proxy::caps::Permit;
use crate::proxy::gate::Gate;
use crate::rules::Fault;
use crate::store::RuleSet;

/// Where the client's stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the startup message: untyped packets.
    Startup,
    /// Typed messages.
    Ready,
    /// Bytes the route does not read (after a CancelRequest).
    Opaque,
}

/// What to do with one client message once its delay is over.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send `send` on; the server answers as `expect` says.
    Forward {
        send: Bytes,
        expect: Option<Expect>,
        counted: bool,
        inject: Option<Injection>,
    },
    /// Answer here; the server never sees it.
    Answer(Bytes),
    /// After every earlier answer, answer with this FATAL error and close; `counted` when it
    /// answers a statement (not a refused startup).
    Fatal { answer: Bytes, counted: bool },
    /// After every earlier answer, close.
    Close,
}

/// A message decided on.
#[derive(Debug)]
pub struct Decision {
    pub step: Step,
    pub delay: Duration,
    /// Faults that acted when the message was decided on (delays, Shutdown, Drop, Reject);
    /// an SqlError counts when the server's stand-in error is replaced.
    pub fired: Vec<Arc<Fault>>,
    /// Places under capped faults, held until the message is released.
    pub permits: Vec<Permit>,
}

impl Decision {
    /// Send `send` on as it is.
    pub fn forward(send: Bytes, expect: Option<Expect>) -> Self {
        Decision {
            step: Step::Forward {
                send,
                expect,
                counted: false,
                inject: None,
            },
            delay: Duration::ZERO,
            fired: Vec::new(),
            permits: Vec::new(),
        }
    }
}

/// The client side of one connection, as far as faults need it.
pub struct Conn<'a> {
    pub phase: Phase,
    database: String,
    user: String,
    statements: HashMap<String, Arc<Statement>>,
    portals: HashMap<String, Arc<Statement>>,
    /// Statements seen so far; each one's probability draw is keyed by its place.
    count: u64,
    route: &'a str,
    connection: u64,
    seed: u64,
    gate: Gate,
}

impl<'a> Conn<'a> {
    pub fn new(route: &'a str, connection: u64, seed: u64, gate: Gate) -> Self {
        Conn {
            phase: Phase::Startup,
            database: String::new(),
            user: String::new(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            count: 0,
            route,
            connection,
            seed,
            gate,
        }
    }

    /// Decides on a startup packet: TLS and GSS requests are declined here, as a server
    /// without them declines; a Reject fault refuses the connection.
    pub fn startup(&mut self, packet: Startup, rules: &RuleSet) -> Decision {
        match packet {
            Startup::Ssl | Startup::Gss => Decision {
                step: Step::Answer(Bytes::from_static(backend::NO_ENCRYPTION)),
                delay: Duration::ZERO,
                fired: Vec::new(),
                permits: Vec::new(),
            },
            Startup::Cancel(raw) => {
                self.phase = Phase::Opaque;
                Decision::forward(raw, None)
            }
            Startup::Start {
                raw,
                user,
                database,
            } => {
                self.phase = Phase::Ready;
                self.user = user;
                self.database = database;
                let reject = rules.faults_for(self.route).find_map(|f| match &f.kind {
                    FaultKind::Reject(r)
                        if f.enabled
                            && self.gate.client_allowed(f)
                            && f.when.as_ref().is_none_or(|w| {
                                matcher::connection_matches(w, &self.database, &self.user)
                            })
                            && rng::decide(
                                self.seed,
                                self.route,
                                &f.name,
                                self.connection << 32,
                                f.probability,
                            ) =>
                    {
                        Some((f, r))
                    }
                    _ => None,
                });
                match reject {
                    Some((fault, r)) => Decision {
                        step: Step::Fatal {
                            answer: backend::error_response("FATAL", &r.code, &r.message),
                            counted: false,
                        },
                        delay: Duration::ZERO,
                        fired: vec![Arc::clone(fault)],
                        permits: Vec::new(),
                    },
                    None => Decision::forward(raw, None),
                }
            }
        }
    }

    /// Decides on a typed message.
    pub fn message(
        &mut self,
        message: Message,
        rules: &RuleSet,
        rng: &mut StdRng,
    ) -> Result<Decision, FrameError> {
        let expect = match message.tag {
            b'Q' => {
                let statements = sql::statements(message.query()?);
                return Ok(self.query(message, &statements, rules, rng));
            }
            b'P' => {
                let (name, query) = message.parse()?;
                let statement = sql::statements(query)
                    .into_iter()
                    .next()
                    .unwrap_or(Statement {
                        text: String::new(),
                        start: 0,
                        keyword: String::new(),
                        copy_from: false,
                        writing_cte: false,
                    });
                self.statements
                    .insert(name.to_string(), Arc::new(statement));
                Expect::Parse
            }
            b'B' => {
                let (portal, statement) = message.bind()?;
                match self.statements.get(statement) {
                    Some(s) => {
                        let s = Arc::clone(s);
                        self.portals.insert(portal.to_string(), s);
                    }
                    None => {
                        self.portals.remove(portal);
                    }
                }
                Expect::Bind
            }
            b'E' => {
                let portal = message.execute()?.to_string();
                return Ok(self.execute(message, &portal, rules, rng));
            }
            b'C' => {
                let (kind, name) = message.close()?;
                match kind {
                    b'S' => self.statements.remove(name),
                    _ => self.portals.remove(name),
                };
                Expect::Close
            }
            b'D' => Expect::Describe,
            b'S' => Expect::Sync,
            b'F' => Expect::Query,
            b'c' | b'f' => Expect::CopyEnd,
            // Flush, Terminate, CopyData/Done/Fail and authentication get no answer of their own.
            _ => return Ok(Decision::forward(message.raw, None)),
        };
        Ok(Decision::forward(message.raw, Some(expect)))
    }

    /// A simple query: the first statement a fault fails ends the query string there, as
    /// the server stops at a failed statement; what came before it runs.
    fn query(
        &mut self,
        message: Message,
        statements: &[Statement],
        rules: &RuleSet,
        rng: &mut StdRng,
    ) -> Decision {
        let mut decision = counted(message.raw.clone(), Expect::Query);
        for statement in statements {
            let chosen = self.choose(statement, rules, rng);
            decision.delay += chosen.delay;
            decision.fired.extend(chosen.delayed);
            decision.permits.extend(chosen.permits);
            let Some((act, fault)) = chosen.act else {
                continue;
            };
            match act {
                Act::Fail(answer) => {
                    let Ok(text) = message.query() else {
                        break;
                    };
                    let mut stand_in = text[..statement.start].to_string();
                    stand_in.push_str(&format!("FETCH ALL FROM \"{STAND_IN}\""));
                    let mut send = BytesMut::new();
                    if frontend::query(&stand_in, &mut send).is_ok() {
                        decision.step = Step::Forward {
                            send: send.freeze(),
                            expect: Some(Expect::Query),
                            counted: true,
                            inject: Some(Injection { answer, fault }),
                        };
                    }
                }
                Act::Fatal(answer) => {
                    decision.step = Step::Fatal {
                        answer,
                        counted: true,
                    };
                    decision.fired.push(fault);
                }
                Act::Close => {
                    decision.step = Step::Close;
                    decision.fired.push(fault);
                }
            }
            break;
        }
        decision
    }

    /// An Execute runs its portal's statement; a fault that fails it sends on an Execute of
    /// a portal that does not exist, which fails on the server as the statement would.
    fn execute(
        &mut self,
        message: Message,
        portal: &str,
        rules: &RuleSet,
        rng: &mut StdRng,
    ) -> Decision {
        let mut decision = counted(message.raw, Expect::Execute);
        let Some(statement) = self.portals.get(portal).cloned() else {
            self.count += 1;
            return decision;
        };
        let chosen = self.choose(&statement, rules, rng);
        decision.delay = chosen.delay;
        decision.fired = chosen.delayed;
        decision.permits = chosen.permits;
        match chosen.act {
            Some((Act::Fail(answer), fault)) => {
                let mut send = BytesMut::new();
                if frontend::execute(STAND_IN, 0, &mut send).is_ok() {
                    decision.step = Step::Forward {
                        send: send.freeze(),
                        expect: Some(Expect::Execute),
                        counted: true,
                        inject: Some(Injection { answer, fault }),
                    };
                }
            }
            Some((Act::Fatal(answer), fault)) => {
                decision.step = Step::Fatal {
                    answer,
                    counted: true,
                };
                decision.fired.push(fault);
            }
            Some((Act::Close, fault)) => {
                decision.step = Step::Close;
                decision.fired.push(fault);
            }
            None => {}
        }
        decision
    }

    /// The faults that act on one statement: its delay, and what answers it.
    fn choose(&mut self, statement: &Statement, rules: &RuleSet, rng: &mut StdRng) -> Chosen {
        let index = self.count;
        self.count += 1;
        let key = (self.connection << 32) ^ index;
        let facts = Facts {
            statement,
            database: &self.database,
            user: &self.user,
        };
        let mut chosen = Chosen::default();
        for fault in rules.faults_for(self.route) {
            if !fault.enabled || statement.keyword.is_empty() || !self.gate.client_allowed(fault) {
                continue;
            }
            let acts = matches!(
                fault.kind,
                FaultKind::Delay(_)
                    | FaultKind::SqlError(_)
                    | FaultKind::Shutdown(_)
                    | FaultKind::Drop(_)
            );
            if !acts
                || fault
                    .when
                    .as_ref()
                    .is_some_and(|w| !matcher::matches(w, &facts))
            {
                continue;
            }
            if !rng::decide(self.seed, self.route, &fault.name, key, fault.probability) {
                continue;
            }
            // An answer already chosen leaves later answering faults out: they take no place.
            let answers = !matches!(fault.kind, FaultKind::Delay(_));
            if answers && chosen.act.is_some() {
                continue;
            }
            let Some(permit) = self.gate.admit(fault) else {
                continue;
            };
            chosen.permits.extend(permit);
            let act = match &fault.kind {
                FaultKind::Delay(d) => {
                    chosen.delay += d.sample(rng);
                    chosen.delayed.push(Arc::clone(fault));
                    continue;
                }
                FaultKind::SqlError(e) => {
                    let message = e.message.replace("{statement}", &statement.keyword);
                    Act::Fail(backend::error_response("ERROR", &e.code, &message))
                }
                FaultKind::Shutdown(s) => {
                    Act::Fatal(backend::error_response("FATAL", &s.code, &s.message))
                }
                _ => Act::Close,
            };
            if chosen.act.is_none() {
                chosen.act = Some((act, Arc::clone(fault)));
            }
        }
        chosen
    }
}

fn counted(raw: Bytes, expect: Expect) -> Decision {
    let mut decision = Decision::forward(raw, Some(expect));
    if let Step::Forward { counted, .. } = &mut decision.step {
        *counted = true;
    }
    decision
}

/// What a fault does in the server's place.
enum Act {
    Fail(Bytes),
    Fatal(Bytes),
    Close,
}

/// The faults chosen for one statement.
#[derive(Default)]
struct Chosen {
    delay: Duration,
    delayed: Vec<Arc<Fault>>,
    act: Option<(Act, Arc<Fault>)>,
    permits: Vec<Permit>,
}
