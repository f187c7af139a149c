//! The client's side of the reply stream: the server's replies and the answers faults give,
//! merged in the order the client sent its commands.
//!
//! Every command that will be answered holds a slot, in order. A server reply fills the
//! oldest slot that waits for the server; an answer given here waits until every slot before
//! it is filled. Push frames and replies nobody waits for (pub/sub messages, MONITOR's
//! stream) pass straight on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use super::codec::{self, CodecError, ReplyKind};
use super::state::State;
use crate::proxy::message_session::{Answers, write_out};
use crate::proxy::tcp::Sink;
use crate::telemetry::RouteStats;
use crate::telemetry::{CommandOutcome, CommandStats};

/// Replies held for a client that is not reading, before the server's side is read no more.
const OUT_CAP: usize = 1024 * 1024;

/// A command waiting for its answer.
#[derive(Debug)]
enum Slot {
    /// The server answers with `replies` replies.
    Server {
        replies: u32,
        asked: Instant,
        hello: bool,
        error: bool,
    },
    /// The server's one reply is swallowed and `answer` given instead.
    Instead {
        answer: Bytes,
        asked: Instant,
        outcome: CommandOutcome,
    },
    /// Answered here.
    Here {
        answer: Bytes,
        asked: Instant,
        outcome: CommandOutcome,
    },
}

/// The merged reply stream of one connection, and the protocol state it shares with the
/// command side.
#[derive(Debug)]
pub struct Replies {
    inner: RefCell<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    slots: VecDeque<Slot>,
    /// Server bytes not yet a whole reply.
    partial: BytesMut,
    /// Bytes for the client, in order.
    out: BytesMut,
    /// The server's side ended; once `out` drains, so does the client's.
    ended: bool,
    broken: Option<CodecError>,
    stats: CommandStats,
}

impl Replies {
    /// An empty reply stream counting into `stats`.
    pub fn new(stats: CommandStats) -> Self {
        Replies {
            inner: RefCell::new(Inner {
                state: State::default(),
                slots: VecDeque::new(),
                partial: BytesMut::new(),
                out: BytesMut::new(),
                ended: false,
                broken: None,
                stats,
            }),
        }
    }

    /// Works on the shared protocol state.
    pub fn state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.inner.borrow_mut().state)
    }

    /// A forwarded command that the server answers with `replies` replies.
    pub fn expect_server(&self, replies: u32, asked: Instant, hello: bool) {
        if replies == 0 {
            return;
        }
        self.inner.borrow_mut().slots.push_back(Slot::Server {
            replies,
            asked,
            hello,
            error: false,
        });
    }

    /// A forwarded command whose one reply is replaced by `answer`.
    pub fn expect_instead(&self, answer: Bytes, asked: Instant, outcome: CommandOutcome) {
        self.inner.borrow_mut().slots.push_back(Slot::Instead {
            answer,
            asked,
            outcome,
        });
    }

    /// A command answered here, in its turn.
    pub fn answer(&self, answer: Bytes, asked: Instant, outcome: CommandOutcome) {
        let mut inner = self.inner.borrow_mut();
        inner.slots.push_back(Slot::Here {
            answer,
            asked,
            outcome,
        });
        inner.settle(Instant::now());
    }

    /// Whether every answer owed to the client has been written to it.
    pub fn settled(&self) -> bool {
        let inner = self.inner.borrow();
        inner.slots.is_empty() && inner.out.is_empty()
    }
}

impl Answers for Replies {
    fn write_to(&self, client: &TcpStream, stats: &RouteStats) -> io::Result<bool> {
        let mut inner = self.inner.borrow_mut();
        let half_close = inner.ended;
        write_out(&mut inner.out, client, stats, half_close)
    }

    fn broken(&self) -> Option<String> {
        self.inner.borrow().broken.as_ref().map(ToString::to_string)
    }

    fn finished(&self) -> bool {
        let inner = self.inner.borrow();
        inner.ended && inner.out.is_empty()
    }
}

impl Inner {
    /// Reads every whole reply in `partial` into its slot.
    fn take_replies(&mut self, now: Instant) -> Result<(), CodecError> {
        while let Some(reply) = codec::next_reply(&self.partial)? {
            let raw = self.partial.split_to(reply.len);
            match reply.kind {
                ReplyKind::Push => {
                    self.out.extend_from_slice(&raw);
                    continue;
                }
                ReplyKind::Unsubscribed(0) | ReplyKind::Reset => self.state.unsubscribed(),
                _ => {}
            }
            let error = reply.kind == ReplyKind::Error;
            match self.slots.front_mut() {
                Some(Slot::Server {
                    replies,
                    asked,
                    hello,
                    error: any_error,
                }) => {
                    self.out.extend_from_slice(&raw);
                    *replies -= 1;
                    *any_error |= error;
                    if *hello && error {
                        self.state.hello_refused();
                    }
                    if *replies == 0 {
                        let outcome = if *any_error {
                            CommandOutcome::ServerError
                        } else {
                            CommandOutcome::Ok
                        };
                        self.stats.command(outcome, now - *asked);
                        self.slots.pop_front();
                    }
                }
                Some(Slot::Instead {
                    answer,
                    asked,
                    outcome,
                }) => {
                    self.out.extend_from_slice(answer);
                    self.stats.command(*outcome, now - *asked);
                    self.slots.pop_front();
                }
                // Answers given here are settled as soon as they reach the front.
                Some(Slot::Here { .. }) | None => self.out.extend_from_slice(&raw),
            }
            self.settle(now);
        }
        Ok(())
    }

    /// Gives the answers made here whose turn has come.
    fn settle(&mut self, now: Instant) {
        while let Some(Slot::Here {
            answer,
            asked,
            outcome,
        }) = self.slots.front()
        {
            self.out.extend_from_slice(answer);
            self.stats.command(*outcome, now - *asked);
            self.slots.pop_front();
        }
    }
}

impl Sink for Replies {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.borrow_mut();
        if inner.broken.is_some() {
            // Nothing more is read once the server broke the protocol; the session ends.
            return Ok(data.len());
        }
        if inner.out.len() >= OUT_CAP {
            return Err(ErrorKind::WouldBlock.into());
        }
        inner.partial.extend_from_slice(data);
        if let Err(e) = inner.take_replies(Instant::now()) {
            inner.broken = Some(e);
        }
        Ok(data.len())
    }

    fn shutdown_write(&self) {
        let mut inner = self.inner.borrow_mut();
        // Answers that wait for no server reply can still be given.
        inner.settle(Instant::now());
        inner.ended = true;
    }
}
