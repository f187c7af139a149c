//! The protocol state of one Redis connection, as the client and the server both see it, and
//! what a fault may do to a command in each state.
//!
//! A fault answers in the server's place only where the server could have answered that way,
//! and never leaves the two sides disagreeing: a command refused inside `MULTI` flags the
//! transaction, as Redis does, and its `EXEC` then goes to the server as `DISCARD`, so the
//! server's transaction ends too and the client gets Redis's `EXECABORT`.

use bytes::Bytes;

use crate::faults::Nil;

/// Redis's answer to an `EXEC` after a command of the transaction was refused.
pub const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";

/// What `DISCARD` looks like on the wire.
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One reply per command.
    Normal,
    /// Inside `MULTI`: commands are queued; `flagged` once one was refused.
    Multi { flagged: bool },
    /// A RESP2 connection with subscriptions: the server sends messages unasked, so replies
    /// no longer line up with commands, and no command is answered in the server's place.
    Subscribed,
    /// After `MONITOR`: the server streams every command it runs, until the connection ends.
    Monitor,
}

/// What a fault asks to do with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Answer with this error reply.
    Error(Bytes),
    /// Answer with a null reply.
    Nil,
    /// Close the connection.
    Drop,
}

/// What happens to a command, once any delay is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward its bytes; the server sends `replies` replies to it.
    Forward { replies: u32, hello: bool },
    /// Forward `send` in its place and answer `answer` instead of the server's one reply.
    Instead { send: Bytes, answer: Bytes },
    /// Answer it here; the server never sees it.
    Answer(Bytes),
    /// Close the connection.
    Close,
}

/// The state both sides share.
#[derive(Debug, Clone)]
pub struct State {
    /// The current mode.
    pub mode: Mode,
    /// The connection speaks RESP3 (after a `HELLO 3`).
    pub resp3: bool,
    /// The protocol before the last `HELLO`, restored if the server refuses it.
    resp3_before_hello: bool,
    replies: Replies,
}

/// Whether the server replies (`CLIENT REPLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replies {
    On,
    Off,
    /// `CLIENT REPLY SKIP`: the next command gets no reply.
    SkipNext,
}

impl Default for State {
    fn default() -> Self {
        State {
            mode: Mode::Normal,
            resp3: false,
            resp3_before_hello: false,
            replies: Replies::On,
        }
    }
}

const SUBSCRIBE: [&str; 3] = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"];
const UNSUBSCRIBE: [&str; 3] = ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"];

impl State {
    /// Decides what happens to the command `args` (name upper-cased in `name`), given what a
    /// fault asks (`act`), and moves the state on as the server will. Returns the step and
    /// whether the fault's act was carried out (it is not where the server could not have
    /// answered that way).
    pub fn admit(&mut self, name: &str, args: &[&[u8]], act: Option<Act>) -> (Step, bool) {
        if args.is_empty() {
            // Redis skips an empty command without a reply.
            return (
                Step::Forward {
                    replies: 0,
                    hello: false,
                },
                false,
            );
        }
        if act == Some(Act::Drop) {
            return (Step::Close, true);
        }
        if !self.answers() {
            return (self.forward(name, args), false);
        }
        match self.mode {
            Mode::Subscribed | Mode::Monitor => (self.forward(name, args), false),
            Mode::Normal => match act {
                Some(Act::Error(reply)) => (Step::Answer(reply), true),
                Some(Act::Nil) => (Step::Answer(self.nil()), true),
                _ => (self.forward(name, args), false),
            },
            Mode::Multi { flagged } => self.admit_in_multi(name, args, flagged, act),
        }
    }

    fn admit_in_multi(
        &mut self,
        name: &str,
        args: &[&[u8]],
        flagged: bool,
        act: Option<Act>,
    ) -> (Step, bool) {
        let ends = name == "EXEC" || name == "DISCARD";
        if ends {
            // The server's transaction must end whatever the client is told.
            self.mode = Mode::Normal;
            let instead = |answer: Bytes| Step::Instead {
                send: Bytes::from_static(DISCARD),
                answer,
            };
            return match act {
                Some(Act::Error(reply)) => (instead(reply), true),
                // A null EXEC is what a transaction aborted by WATCH answers.
                Some(Act::Nil) if name == "EXEC" => (instead(self.nil()), true),
                _ if name == "EXEC" && flagged => (instead(Bytes::from_static(EXECABORT)), false),
                _ => (
                    Step::Forward {
                        replies: 1,
                        hello: false,
                    },
                    false,
                ),
            };
        }
        match act {
            Some(Act::Error(reply)) => {
                self.mode = Mode::Multi { flagged: true };
                (Step::Answer(reply), true)
            }
            // A queued command's reply is +QUEUED; its result comes in EXEC's array, which a
            // null here could not change.
            _ => (self.forward(name, args), false),
        }
    }

    /// Forwards a command, moving the state as the server will once it runs it.
    fn forward(&mut self, name: &str, args: &[&[u8]]) -> Step {
        let silent = self.silenced(name, args);
        let replies = |n: u32| Step::Forward {
            replies: if silent { 0 } else { n },
            hello: false,
        };
        match self.mode {
            // Replies no longer line up with commands; they pass as they come.
            Mode::Monitor | Mode::Subscribed => return replies(0),
            Mode::Multi { .. } => {
                if name == "RESET" {
                    self.reset();
                }
                return replies(1);
            }
            Mode::Normal => {}
        }
        // SUBSCRIBE a b c is confirmed once per channel; with no channel, an error or (for
        // the UNSUBSCRIBEs) one confirmation.
        let channels = u32::try_from(args.len().saturating_sub(1))
            .unwrap_or(u32::MAX)
            .max(1);
        match name {
            "MULTI" => self.mode = Mode::Multi { flagged: false },
            "RESET" => self.reset(),
            "MONITOR" => self.mode = Mode::Monitor,
            "HELLO" => {
                self.resp3_before_hello = self.resp3;
                match args.get(1).copied() {
                    Some(b"3") => self.resp3 = true,
                    Some(b"2") => self.resp3 = false,
                    _ => {}
                }
                return Step::Forward {
                    replies: if silent { 0 } else { 1 },
                    hello: true,
                };
            }
            // RESP3 confirms (un)subscriptions with push frames, which answer no command.
            n if SUBSCRIBE.contains(&n) || UNSUBSCRIBE.contains(&n) => {
                if self.resp3 {
                    return replies(0);
                }
                if SUBSCRIBE.contains(&n) {
                    self.mode = Mode::Subscribed;
                }
                return replies(channels);
            }
            _ => {}
        }
        replies(1)
    }

    /// Whether the server will send no reply to this command (`CLIENT REPLY OFF` or `SKIP`
    /// in force), updating what the next commands get.
    fn silenced(&mut self, name: &str, args: &[&[u8]]) -> bool {
        let client_reply = name == "CLIENT"
            && args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"reply"));
        if client_reply {
            let how = args.get(2).copied().unwrap_or_default();
            if how.eq_ignore_ascii_case(b"on") {
                self.replies = Replies::On;
                return false;
            }
            if how.eq_ignore_ascii_case(b"off") {
                self.replies = Replies::Off;
            } else if how.eq_ignore_ascii_case(b"skip") && self.replies == Replies::On {
                self.replies = Replies::SkipNext;
                return true;
            }
        }
        match self.replies {
            Replies::On => false,
            Replies::Off => true,
            Replies::SkipNext => {
                self.replies = Replies::On;
                true
            }
        }
    }

    /// Whether the server would answer a command now, so a fault can answer in its place.
    fn answers(&self) -> bool {
        self.replies == Replies::On
    }

    fn reset(&mut self) {
        self.mode = Mode::Normal;
        self.resp3 = false;
        self.replies = Replies::On;
    }

    /// The server refused a `HELLO`: the protocol stays what it was.
    pub fn hello_refused(&mut self) {
        self.resp3 = self.resp3_before_hello;
    }

    /// A RESP2 subscription ended on the server's word (no subscriptions left, or RESET).
    pub fn unsubscribed(&mut self) {
        if self.mode == Mode::Subscribed {
            self.mode = Mode::Normal;
        }
    }

    fn nil(&self) -> Bytes {
        Bytes::from_static(Nil::reply(self.resp3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(state: &mut State, line: &str, act: Option<Act>) -> (Step, bool) {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let name = line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        state.admit(&name, &args, act)
    }

    fn forward(replies: u32) -> Step {
        Step::Forward {
            replies,
            hello: false,
        }
    }

    fn refused() -> Option<Act> {
        Some(Act::Error(Bytes::from_static(b"-READONLY no\r\n")))
    }

    #[test]
    fn a_refusal_inside_multi_aborts_the_transaction_on_both_sides() {
        let mut s = State::default();
        assert_eq!(admit(&mut s, "MULTI", None), (forward(1), false));
        let (step, acted) = admit(&mut s, "SET k v", refused());
        assert!(acted);
        assert_eq!(step, Step::Answer(Bytes::from_static(b"-READONLY no\r\n")));
        assert_eq!(admit(&mut s, "GET k", None), (forward(1), false));
        let (step, acted) = admit(&mut s, "EXEC", None);
        assert!(!acted);
        assert_eq!(
            step,
            Step::Instead {
                send: Bytes::from_static(DISCARD),
                answer: Bytes::from_static(EXECABORT),
            }
        );
        assert_eq!(s.mode, Mode::Normal);
    }

    #[test]
    fn an_unflagged_exec_goes_to_the_server() {
        let mut s = State::default();
        admit(&mut s, "MULTI", None);
        admit(&mut s, "SET k v", None);
        assert_eq!(admit(&mut s, "EXEC", None), (forward(1), false));
        assert_eq!(s.mode, Mode::Normal);
    }

    #[test]
    fn nothing_is_answered_for_the_server_while_replies_do_not_line_up() {
        let mut s = State::default();
        assert_eq!(admit(&mut s, "SUBSCRIBE a b", None), (forward(2), false));
        assert_eq!(s.mode, Mode::Subscribed);
        assert_eq!(admit(&mut s, "PING", refused()), (forward(0), false));
        s.unsubscribed();
        assert_eq!(s.mode, Mode::Normal);

        let mut s = State::default();
        assert_eq!(admit(&mut s, "CLIENT REPLY OFF", None), (forward(0), false));
        assert_eq!(admit(&mut s, "GET k", Some(Act::Nil)), (forward(0), false));
        assert_eq!(admit(&mut s, "CLIENT REPLY ON", None), (forward(1), false));
        assert_eq!(
            admit(&mut s, "GET k", Some(Act::Nil)),
            (Step::Answer(Bytes::from_static(b"$-1\r\n")), true)
        );
    }

    #[test]
    fn resp3_nulls_and_subscriptions_after_hello_3() {
        let mut s = State::default();
        let (step, _) = admit(&mut s, "HELLO 3", None);
        assert_eq!(
            step,
            Step::Forward {
                replies: 1,
                hello: true
            }
        );
        assert!(s.resp3);
        assert_eq!(
            admit(&mut s, "GET k", Some(Act::Nil)),
            (Step::Answer(Bytes::from_static(b"_\r\n")), true)
        );
        // RESP3 confirms a subscription with a push, which answers no command.
        assert_eq!(admit(&mut s, "SUBSCRIBE a", None), (forward(0), false));
        assert_eq!(s.mode, Mode::Normal);
        let mut s = State::default();
        admit(&mut s, "HELLO 3", None);
        s.hello_refused();
        assert!(!s.resp3);
    }

    #[test]
    fn a_drop_closes_in_any_mode() {
        let mut s = State::default();
        admit(&mut s, "MONITOR", None);
        assert_eq!(admit(&mut s, "PING", Some(Act::Drop)), (Step::Close, true));
    }
}
