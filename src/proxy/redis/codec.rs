//! RESP framing, both ways, through `redis-protocol`: commands as clients send them (arrays
//! of bulk strings, or inline lines) and replies as servers send them (RESP2 or RESP3). Pure:
//! no I/O. A frame keeps its original bytes, which are what gets forwarded.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::RangeFrame as Resp2;
use redis_protocol::resp3::types::RangeFrame as Resp3;

/// Redis refuses inline commands longer than this (`PROTO_INLINE_MAX_SIZE`); so do we.
const INLINE_MAX: usize = 64 * 1024;

/// Bytes that are not RESP where RESP was due.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A client sent something that is not a command.
    #[error("not a Redis command: {0}")]
    Command(String),
    /// The server sent something that is not a reply.
    #[error("not a Redis reply: {0}")]
    Reply(String),
}

/// One command as the client sent it.
#[derive(Debug, Clone)]
pub struct Command {
    /// The bytes as they arrived, to forward unchanged.
    pub raw: Bytes,
    args: Vec<Range<usize>>,
}

impl Command {
    /// The command's words: its name first. Empty for the empty command (`*0`, a blank
    /// line), which Redis skips without a reply.
    pub fn args(&self) -> Vec<&[u8]> {
        self.args.iter().map(|r| &self.raw[r.clone()]).collect()
    }

    /// The command's name, upper-cased; empty for the empty command.
    pub fn name(&self) -> String {
        self.args
            .first()
            .map(|r| String::from_utf8_lossy(&self.raw[r.clone()]).to_ascii_uppercase())
            .unwrap_or_default()
    }
}

/// Takes the next whole command off the front of `buf`; `None` until one has arrived.
pub fn next_command(buf: &mut BytesMut) -> Result<Option<Command>, CodecError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => next_array(buf),
        Some(_) => next_inline(buf),
    }
}

fn next_array(buf: &mut BytesMut) -> Result<Option<Command>, CodecError> {
    let decoded = redis_protocol::resp2::decode::decode_range(buf)
        .map_err(|e| CodecError::Command(e.to_string()))?;
    let Some((frame, len)) = decoded else {
        return Ok(None);
    };
    let args = match frame {
        Resp2::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Resp2::BulkString((start, end)) => Ok(start..end),
                other => Err(CodecError::Command(format!(
                    "a command's words are bulk strings, not {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        // `*-1`: nothing to run; Redis skips it.
        Resp2::Null => Vec::new(),
        other => {
            return Err(CodecError::Command(format!(
                "a command is an array, not {other:?}"
            )));
        }
    };
    Ok(Some(Command {
        raw: buf.split_to(len).freeze(),
        args,
    }))
}

/// An inline command: one line of words separated by spaces, as typed into telnet.
fn next_inline(buf: &mut BytesMut) -> Result<Option<Command>, CodecError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(CodecError::Command(format!(
                "an inline command longer than {INLINE_MAX} bytes"
            )));
        }
        return Ok(None);
    };
    let raw = buf.split_to(end + 1).freeze();
    let line_end = if end > 0 && raw[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    let mut args = Vec::new();
    let mut start = None;
    for (i, b) in raw[..line_end].iter().enumerate() {
        match (b.is_ascii_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                args.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        args.push(s..line_end);
    }
    Ok(Some(Command { raw, args }))
}

/// What the session needs to know of one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its length in bytes at the front of the buffer.
    pub len: usize,
    /// What kind of reply it is.
    pub kind: ReplyKind,
}

/// The kinds of reply the session treats differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// An error reply (`-ERR ...`, RESP3's blob error).
    Error,
    /// RESP3 out-of-band data (pub/sub messages, invalidations): answers no command.
    Push,
    /// A RESP2 pub/sub array that confirms an unsubscription, with the number of
    /// subscriptions the connection has left.
    Unsubscribed(i64),
    /// `+RESET`, which also ends a RESP2 subscription.
    Reset,
    /// Any other reply.
    Other,
}

/// Reads the reply at the front of `buf`; `None` until it has all arrived. Replies are read
/// as RESP3, a superset of RESP2 apart from RESP2's nulls (`$-1`, `*-1`), which are read as
/// RESP2.
pub fn next_reply(buf: &[u8]) -> Result<Option<Reply>, CodecError> {
    match redis_protocol::resp3::decode::complete::decode_range(buf) {
        Ok(None) => Ok(None),
        Ok(Some((frame, len))) => Ok(Some(Reply {
            len,
            kind: resp3_kind(buf, &frame),
        })),
        Err(resp3) => match redis_protocol::resp2::decode::decode_range(buf) {
            Ok(None) => Ok(None),
            Ok(Some((frame, len))) => Ok(Some(Reply {
                len,
                kind: resp2_kind(buf, &frame),
            })),
            Err(_) => Err(CodecError::Reply(resp3.to_string())),
        },
    }
}

fn resp3_kind(buf: &[u8], frame: &Resp3) -> ReplyKind {
    match frame {
        Resp3::SimpleError { .. } | Resp3::BlobError { .. } => ReplyKind::Error,
        Resp3::Push { .. } => ReplyKind::Push,
        Resp3::SimpleString { data, .. } if &buf[data.0..data.1] == b"RESET" => ReplyKind::Reset,
        Resp3::Array { data, .. } => {
            let word = match data.first() {
                Some(Resp3::BlobString { data, .. }) => Some(&buf[data.0..data.1]),
                _ => None,
            };
            let count = match data.get(2) {
                Some(Resp3::Number { data, .. }) => Some(*data),
                _ => None,
            };
            unsubscribed(word, count, data.len())
        }
        _ => ReplyKind::Other,
    }
}

fn resp2_kind(buf: &[u8], frame: &Resp2) -> ReplyKind {
    match frame {
        Resp2::Error(_) => ReplyKind::Error,
        Resp2::SimpleString(data) if &buf[data.0..data.1] == b"RESET" => ReplyKind::Reset,
        Resp2::Array(items) => {
            let word = match items.first() {
                Some(Resp2::BulkString(data)) => Some(&buf[data.0..data.1]),
                _ => None,
            };
            let count = match items.get(2) {
                Some(Resp2::Integer(n)) => Some(*n),
                _ => None,
            };
            unsubscribed(word, count, items.len())
        }
        _ => ReplyKind::Other,
    }
}

fn unsubscribed(word: Option<&[u8]>, count: Option<i64>, len: usize) -> ReplyKind {
    match (word, count) {
        (Some(w), Some(n))
            if len == 3
                && [&b"unsubscribe"[..], b"punsubscribe", b"sunsubscribe"]
                    .iter()
                    .any(|u| w.eq_ignore_ascii_case(u)) =>
        {
            ReplyKind::Unsubscribed(n)
        }
        _ => ReplyKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(c) = next_command(&mut buf).expect("command") {
            out.push(
                c.args()
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn commands_arrays_and_inline() {
        assert_eq!(
            commands(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv v\r\nPING\r\nget  k\n\r\n*0\r\n"),
            vec![
                vec!["SET", "k", "v v"],
                vec!["PING"],
                vec!["get", "k"],
                vec![],
                vec![],
            ]
        );
    }

    #[test]
    fn a_partial_command_waits_and_keeps_its_bytes() {
        let whole = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for cut in 1..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(
                next_command(&mut buf).expect("partial").is_none(),
                "cut {cut}"
            );
            assert_eq!(&buf[..], &whole[..cut]);
            buf.extend_from_slice(&whole[cut..]);
            let c = next_command(&mut buf).expect("whole").expect("command");
            assert_eq!(&c.raw[..], &whole[..]);
            assert_eq!(c.name(), "GET");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [&b"*1\r\n:1\r\n"[..], b"*x\r\n"] {
            let mut buf = BytesMut::from(bad);
            assert!(next_command(&mut buf).is_err(), "{bad:?}");
        }
        let mut long = BytesMut::from(&vec![b'a'; INLINE_MAX + 1][..]);
        assert!(next_command(&mut long).is_err());
    }

    #[test]
    fn replies_of_both_protocols() {
        let table: [(&[u8], ReplyKind); 10] = [
            (b"+OK\r\n", ReplyKind::Other),
            (b"-READONLY no\r\n", ReplyKind::Error),
            (b"$-1\r\n", ReplyKind::Other),
            (b"*-1\r\n", ReplyKind::Other),
            (b"*2\r\n$-1\r\n:1\r\n", ReplyKind::Other),
            (b"_\r\n", ReplyKind::Other),
            (b"!3\r\nERR\r\n", ReplyKind::Error),
            (
                b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
                ReplyKind::Push,
            ),
            (
                b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n",
                ReplyKind::Unsubscribed(0),
            ),
            (b"+RESET\r\n", ReplyKind::Reset),
        ];
        for (bytes, kind) in table {
            let reply = next_reply(bytes).expect("reply").expect("whole");
            assert_eq!(reply.len, bytes.len(), "{bytes:?}");
            assert_eq!(reply.kind, kind, "{bytes:?}");
            for cut in 1..bytes.len() {
                assert_eq!(
                    next_reply(&bytes[..cut]),
                    Ok(None),
                    "{bytes:?} cut at {cut}"
                );
            }
        }
        assert!(next_reply(b"?what\r\n").is_err());
    }
}
