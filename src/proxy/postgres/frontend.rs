//! The client's messages, cut from its byte stream. `postgres-protocol` writes frontend
//! messages but reads only backend ones, so the framing here is ours: the startup packets
//! (a length, then a code) and the typed messages (a tag byte, then a length), with the few
//! fields the route looks at.

use bytes::{Buf, Bytes, BytesMut};

/// PostgreSQL's own limit on a startup packet.
const MAX_STARTUP: usize = 10_000;

/// PostgreSQL's own limit on one message (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1).
const MAX_MESSAGE: usize = (1 << 30) - 1;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// Bytes that are not the PostgreSQL protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(String);

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// The client asks for TLS.
    Ssl,
    /// The client asks for GSSAPI encryption.
    Gss,
    /// A request to cancel another connection's query; the server closes this one after it.
    Cancel(Bytes),
    /// The startup message of protocol 3.x, with its parameters.
    Start {
        raw: Bytes,
        user: String,
        database: String,
    },
}

/// Takes the first whole startup packet off `buf`.
pub fn next_startup(buf: &mut BytesMut) -> Result<Option<Startup>, FrameError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(FrameError(format!(
            "a startup packet of {len} bytes (8 to {MAX_STARTUP})"
        )));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let raw = buf.split_to(len).freeze();
    let code = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
    Ok(Some(match code {
        SSL_REQUEST => Startup::Ssl,
        GSSENC_REQUEST => Startup::Gss,
        CANCEL_REQUEST => Startup::Cancel(raw),
        code if code >> 16 == 3 => {
            let params = parameters(&raw[8..])?;
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let user = get("user").unwrap_or_default();
            // The database defaults to the user's name, as the server takes it.
            let database = get("database").unwrap_or_else(|| user.clone());
            Startup::Start {
                raw,
                user,
                database,
            }
        }
        code => {
            return Err(FrameError(format!(
                "protocol version {}.{} (this route speaks 3.x)",
                code >> 16,
                code & 0xffff
            )));
        }
    }))
}

fn parameters(mut body: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let mut params = Vec::new();
    loop {
        let (name, rest) = cstr(body)?;
        if name.is_empty() {
            return Ok(params);
        }
        let (value, rest) = cstr(rest)?;
        params.push((name.to_string(), value.to_string()));
        body = rest;
    }
}

/// A typed message from the client: its tag and its bytes, header included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tag: u8,
    pub raw: Bytes,
}

/// Takes the first whole typed message off `buf`.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(FrameError(format!(
            "a message {:?} of length {len}",
            char::from(tag)
        )));
    }
    if buf.len() < len + 1 {
        buf.reserve(len + 1 - buf.len());
        return Ok(None);
    }
    Ok(Some(Message {
        tag,
        raw: buf.split_to(len + 1).freeze(),
    }))
}

impl Message {
    fn body(&self) -> &[u8] {
        &self.raw[5..]
    }

    /// Query: the query string.
    pub fn query(&self) -> Result<&str, FrameError> {
        Ok(cstr(self.body())?.0)
    }

    /// Parse: the statement's name and its query string.
    pub fn parse(&self) -> Result<(&str, &str), FrameError> {
        let (name, rest) = cstr(self.body())?;
        Ok((name, cstr(rest)?.0))
    }

    /// Bind: the portal's name and the statement's.
    pub fn bind(&self) -> Result<(&str, &str), FrameError> {
        let (portal, rest) = cstr(self.body())?;
        Ok((portal, cstr(rest)?.0))
    }

    /// Execute: the portal's name.
    pub fn execute(&self) -> Result<&str, FrameError> {
        Ok(cstr(self.body())?.0)
    }

    /// Close: `b'S'` (a statement) or `b'P'` (a portal), and its name.
    pub fn close(&self) -> Result<(u8, &str), FrameError> {
        let mut body = self.body();
        if !body.has_remaining() {
            return Err(FrameError("an empty Close message".into()));
        }
        let kind = body.get_u8();
        Ok((kind, cstr(body)?.0))
    }
}

/// A NUL-terminated UTF-8 string at the start of `bytes`, and what follows it.
fn cstr(bytes: &[u8]) -> Result<(&str, &[u8]), FrameError> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| FrameError("a string without its terminating NUL".into()))?;
    let text = std::str::from_utf8(&bytes[..end])
        .map_err(|_| FrameError("a string that is not UTF-8".into()))?;
    Ok((text, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::message::frontend;

    #[test]
    fn reads_what_postgres_protocol_writes() {
        let mut buf = BytesMut::new();
        frontend::startup_message([("user", "app"), ("database", "shop")], &mut buf).unwrap();
        frontend::parse("s1", "INSERT INTO t VALUES ($1)", [], &mut buf).unwrap();
        frontend::execute("p", 0, &mut buf).unwrap();
        frontend::close(b'S', "s1", &mut buf).unwrap();
        frontend::sync(&mut buf);
        let start = next_startup(&mut buf).unwrap().unwrap();
        assert!(
            matches!(start, Startup::Start { ref user, ref database, .. } if user == "app" && database == "shop")
        );
        let parse = next_message(&mut buf).unwrap().unwrap();
        assert_eq!(parse.parse().unwrap(), ("s1", "INSERT INTO t VALUES ($1)"));
        assert_eq!(
            next_message(&mut buf).unwrap().unwrap().execute().unwrap(),
            "p"
        );
        assert_eq!(
            next_message(&mut buf).unwrap().unwrap().close().unwrap(),
            (b'S', "s1")
        );
        assert_eq!(next_message(&mut buf).unwrap().unwrap().tag, b'S');
        assert!(next_message(&mut buf).unwrap().is_none());
    }

    #[test]
    fn partial_and_broken_input() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x08SEL"[..]);
        assert_eq!(next_message(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0");
        assert!(next_message(&mut buf).unwrap().unwrap().query().is_ok());
        let mut bad = BytesMut::from(&b"Q\0\0\0\x02"[..]);
        assert!(next_message(&mut bad).is_err());
        let mut ssl = BytesMut::from(&b"\0\0\0\x08\x04\xd2\x16\x2f"[..]);
        assert_eq!(next_startup(&mut ssl).unwrap(), Some(Startup::Ssl));
        let mut old = BytesMut::from(&b"\0\0\0\x08\0\x02\0\0"[..]);
        assert!(next_startup(&mut old).is_err());
        let mut huge = BytesMut::from(&b"\x7f\0\0\0\0\x03\0\0"[..]);
        assert!(next_startup(&mut huge).is_err());
    }
}
